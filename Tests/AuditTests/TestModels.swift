import Foundation
@testable import Audit
import GraphIR
import Profiles

/// Small hand-built models for the audit tests.
enum TestModels {
    static func tensor(_ name: String, _ dtype: DataType = .float, _ dims: [Dim]?) -> ValueInfo {
        ValueInfo(name: name, type: .tensor(TensorType(elementType: dtype, shape: dims)))
    }

    static func dims(_ values: Int...) -> [Dim] { values.map { .value($0) } }

    static func floats(_ name: String, _ dims: [Int], _ values: [Float]? = nil) -> Tensor {
        let count = Tensor.elementCount(of: dims) ?? 0
        return Tensor(name: name, dataType: .float, dims: dims,
                      data: .bytes(LittleEndian.bytes(of: values ?? Array(repeating: 0.5, count: count))))
    }

    static func int64s(_ name: String, _ values: [Int64]) -> Tensor {
        Tensor(name: name, dataType: .int64, dims: [values.count], data: .bytes(LittleEndian.bytes(of: values)))
    }

    static func model(_ nodes: [Node], inputs: [ValueInfo], outputs: [ValueInfo], valueInfo: [ValueInfo] = [],
                      initializers: [Tensor] = [], functions: [Function] = []) -> Model {
        Model(irVersion: 10, opsetImports: [OpsetImport(domain: "", version: 17)],
              graph: Graph(name: "g", inputs: inputs, outputs: outputs, valueInfo: valueInfo, initializers: initializers,
                           nodes: nodes),
              functions: functions)
    }

    static func builtInOptions(target: ComputeUnit = .neuralEngine, units: ComputeUnitSet = .all) throws -> AuditOptions {
        AuditOptions(target: target, computeUnits: units, profiles: try ProfileLibrary.builtInUnitProfiles())
    }

    static func audit(_ model: Model, pins: [InputShapePin] = [], options: AuditOptions? = nil) throws -> AuditReport {
        let input = try AuditInput.fromDeclaredTypes(model: model, pinning: pins)
        return try Auditor.audit(input, modelName: "test.onnx", options: options ?? builtInOptions())
    }

    /// Facts of the model's first node, as the audit builds them.
    static func facts(_ model: Model, node index: Int = 0) throws -> NodeFacts {
        let input = try AuditInput.fromDeclaredTypes(model: model)
        var tensors: [String: Tensor] = [:]
        for t in model.graph.initializers { tensors[t.name] = t }
        return NodeFacts(node: model.graph.nodes[index], types: input.types, constants: input.constants,
                         constantTensor: { tensors[$0] })
    }

    static func rule(_ kind: RuleKind, ops: [String]? = nil, max: Int? = nil, inputs: [Int]? = nil, input: Int? = nil,
                     allowed: [String]? = nil, attribute: String? = nil, defaultValue: [Int]? = nil,
                     eachAtMost: Int? = nil, oneOf: [Int]? = nil) -> Rule {
        Rule(id: "test-\(kind.rawValue)", kind: kind, ops: ops, max: max, inputs: inputs, input: input, allowed: allowed,
             attribute: attribute, defaultValue: defaultValue, eachAtMost: eachAtMost, oneOf: oneOf,
             reason: "test reason", source: "https://example.org/source", confidence: .documented, profile: "test")
    }
}
