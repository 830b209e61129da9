import GraphIR
import Ops
import Passes
import Testing

/// Tiny models built in code for the inference tests.
struct ModelBuilder {
    var opset: Int64 = 17
    var inputs: [ValueInfo] = []
    var initializers: [Tensor] = []
    var nodes: [Node] = []
    var outputs: [String] = []
    var valueInfo: [ValueInfo] = []

    init(opset: Int64 = 17) { self.opset = opset }

    /// Declares an input; dims are Ints (values), Strings (symbols) or nil (unknown).
    mutating func input(_ name: String, _ type: DataType, _ dims: [Any?]?) {
        inputs.append(ValueInfo(name: name, type: .tensor(TensorType(elementType: type, shape: dims.map(Self.dims)))))
    }

    static func dims(_ list: [Any?]) -> [Dim] {
        list.map { d in
            if let i = d as? Int { return .value(i) }
            if let s = d as? String { return .symbol(s) }
            return .unknown
        }
    }

    mutating func ints(_ name: String, _ values: [Int64], dims: [Int]? = nil) {
        initializers.append(Tensor(name: name, dataType: .int64, dims: dims ?? [values.count], data: .bytes(LittleEndian.bytes(of: values))))
    }

    mutating func floats(_ name: String, _ values: [Float], dims: [Int]? = nil) {
        initializers.append(Tensor(name: name, dataType: .float, dims: dims ?? [values.count], data: .bytes(LittleEndian.bytes(of: values))))
    }

    /// Adds a node; `attributes` values: Int, [Int], Float, [Float], String, Graph, Tensor.
    mutating func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String = "", domain: String = "",
                       _ attributes: [String: Any] = [:]) {
        let attrs = attributes.keys.sorted().map { key -> Attribute in
            let v = attributes[key]!
            let value: AttributeValue
            switch v {
            case let i as Int: value = .int(Int64(i))
            case let a as [Int]: value = .ints(a.map(Int64.init))
            case let f as Float: value = .float(f)
            case let f as Double: value = .float(Float(f))
            case let a as [Float]: value = .floats(a)
            case let s as String: value = .string(Array(s.utf8))
            case let g as Graph: value = .graph(g)
            case let t as Tensor: value = .tensor(t)
            default: fatalError("unsupported attribute \(key)")
            }
            return Attribute(name: key, value: value)
        }
        nodes.append(Node(name: name, opType: op, domain: domain, inputs: inputs, outputs: outputs, attributes: attrs))
    }

    var model: Model {
        let outs = outputs.isEmpty ? (nodes.last?.outputs.filter { !$0.isEmpty } ?? []) : outputs
        let graph = Graph(name: "test", inputs: inputs, outputs: outs.map { ValueInfo(name: $0, type: .unknown) },
                          valueInfo: valueInfo, initializers: initializers, nodes: nodes)
        return Model(irVersion: 10, opsetImports: [OpsetImport(domain: "", version: opset)], graph: graph)
    }

    /// Infers the model (verifying it first).
    func infer(pinned: [String: [Dim]] = [:]) throws -> ShapeInferenceResult {
        var m = model
        m.graph = try GraphVerifier.verified(m.graph)
        return try ShapeInference.run(m, pinned: pinned)
    }
}

extension ShapeInferenceResult {
    /// `float[batch, 3]`, or "missing".
    func type(_ name: String) -> String { describe(name) ?? "missing" }
}
