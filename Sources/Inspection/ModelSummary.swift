import GraphIR

/// What `mlpkg inspect` reports about a model: a Codable summary, printed as JSON or as a text table.
public struct ModelSummary: Codable, Sendable, Equatable {
    public struct Producer: Codable, Sendable, Equatable {
        public var name: String
        public var version: String
    }

    public struct Opset: Codable, Sendable, Equatable {
        public var domain: String
        public var version: Int64
    }

    public struct Value: Codable, Sendable, Equatable {
        public var name: String
        public var type: TypeSummary
    }

    public struct NodeCounts: Codable, Sendable, Equatable {
        /// Nodes of the main graph and of every subgraph.
        public var total: Int
        public var mainGraph: Int
    }

    public struct OpCount: Codable, Sendable, Equatable {
        public var domain: String
        public var opType: String
        public var count: Int
    }

    public struct DtypeTotal: Codable, Sendable, Equatable {
        public var dtype: String
        public var tensors: Int
        public var count: Int
        public var bytes: Int
    }

    public struct Parameters: Codable, Sendable, Equatable {
        public var count: Int
        public var bytes: Int
        public var byDtype: [DtypeTotal]
    }

    public struct TensorEntry: Codable, Sendable, Equatable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        public var bytes: Int
        public var external: Bool
    }

    public struct ExternalFile: Codable, Sendable, Equatable {
        public var location: String
        public var tensors: Int
        public var bytes: Int
    }

    public struct FunctionEntry: Codable, Sendable, Equatable {
        public var domain: String
        public var name: String
        public var nodes: Int
    }

    public var file: String
    public var irVersion: Int64
    public var producer: Producer
    public var domain: String
    public var modelVersion: Int64
    public var opsetImports: [Opset]
    public var inputs: [Value]
    public var outputs: [Value]
    public var nodes: NodeCounts
    public var opCounts: [OpCount]
    public var subgraphCount: Int
    public var initializerCount: Int
    public var parameters: Parameters
    public var largestTensors: [TensorEntry]
    public var externalDataFiles: [ExternalFile]
    public var functions: [FunctionEntry]
    public var metadata: [String: String]
}

/// A value's type as JSON: `{"kind": "tensor", "dtype": "float", "shape": [ "batch", 3, null ]}` and so on.
public indirect enum TypeSummary: Codable, Sendable, Equatable {
    case tensor(kind: String, dtype: String?, shape: [DimSummary]?)
    case element(kind: String, element: TypeSummary)
    case map(key: String?, value: TypeSummary)
    case opaque(domain: String, name: String)
    case unknown

    init(_ type: ValueType) {
        switch type {
        case .tensor(let t): self = .tensor(kind: "tensor", dtype: t.elementType?.name, shape: t.shape?.map(DimSummary.init))
        case .sparseTensor(let t):
            self = .tensor(kind: "sparse_tensor", dtype: t.elementType?.name, shape: t.shape?.map(DimSummary.init))
        case .sequence(let e): self = .element(kind: "sequence", element: TypeSummary(e))
        case .optional(let e): self = .element(kind: "optional", element: TypeSummary(e))
        case .map(let k, let v): self = .map(key: k?.name, value: TypeSummary(v))
        case .opaque(let d, let n): self = .opaque(domain: d, name: n)
        case .unknown: self = .unknown
        }
    }

    private enum Keys: String, CodingKey { case kind, dtype, shape, element, key, value, domain, name }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        switch self {
        case .tensor(let kind, let dtype, let shape):
            try c.encode(kind, forKey: .kind)
            try c.encode(dtype, forKey: .dtype)
            try c.encode(shape, forKey: .shape)
        case .element(let kind, let element):
            try c.encode(kind, forKey: .kind)
            try c.encode(element, forKey: .element)
        case .map(let key, let value):
            try c.encode("map", forKey: .kind)
            try c.encode(key, forKey: .key)
            try c.encode(value, forKey: .value)
        case .opaque(let domain, let name):
            try c.encode("opaque", forKey: .kind)
            try c.encode(domain, forKey: .domain)
            try c.encode(name, forKey: .name)
        case .unknown:
            try c.encode("unknown", forKey: .kind)
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let kind = try c.decode(String.self, forKey: .kind)
        switch kind {
        case "tensor", "sparse_tensor":
            self = .tensor(kind: kind, dtype: try c.decodeIfPresent(String.self, forKey: .dtype),
                           shape: try c.decodeIfPresent([DimSummary].self, forKey: .shape))
        case "sequence", "optional":
            self = .element(kind: kind, element: try c.decode(TypeSummary.self, forKey: .element))
        case "map":
            self = .map(key: try c.decodeIfPresent(String.self, forKey: .key), value: try c.decode(TypeSummary.self, forKey: .value))
        case "opaque":
            self = .opaque(domain: try c.decode(String.self, forKey: .domain), name: try c.decode(String.self, forKey: .name))
        default:
            self = .unknown
        }
    }

    /// Compact text form: `float[batch, 3, 224, 224]`.
    public var text: String {
        switch self {
        case .tensor(let kind, let dtype, let shape):
            let dims = shape.map { "[" + $0.map(\.text).joined(separator: ", ") + "]" } ?? "[?]"
            return (kind == "tensor" ? "" : "sparse ") + (dtype ?? "?") + dims
        case .element(let kind, let element): return "\(kind)(\(element.text))"
        case .map(let key, let value): return "map(\(key ?? "?"), \(value.text))"
        case .opaque(let domain, let name): return "opaque(\(domain).\(name))"
        case .unknown: return "?"
        }
    }
}

/// One dim as JSON: an integer, a symbol's name, or null when unknown.
public enum DimSummary: Codable, Sendable, Equatable {
    case value(Int)
    case symbol(String)
    case unknown

    init(_ dim: Dim) {
        switch dim {
        case .value(let v): self = .value(v)
        case .symbol(let s): self = .symbol(s)
        case .unknown: self = .unknown
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .value(let v): try c.encode(v)
        case .symbol(let s): try c.encode(s)
        case .unknown: try c.encodeNil()
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .unknown } else if let v = try? c.decode(Int.self) { self = .value(v) } else {
            self = .symbol(try c.decode(String.self))
        }
    }

    var text: String {
        switch self {
        case .value(let v): return String(v)
        case .symbol(let s): return s
        case .unknown: return "?"
        }
    }
}
