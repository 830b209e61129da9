import Foundation
import GraphIR
import Passes

/// What the audit reads: the model, the type of every value it knows (value name → type), and the values known to be
/// constant: what shape inference provides (`forModel`).
public struct AuditInput: Sendable {
    /// The model audited.
    public var model: Model
    /// The type of every value the audit knows, by value name.
    public var types: [String: ValueType]
    /// Names of the values known before run time.
    public var constants: Set<String>

    /// An input from types and constants computed elsewhere (`forModel` computes them by shape inference).
    public init(model: Model, types: [String: ValueType], constants: Set<String>) {
        self.model = model
        self.types = types
        self.constants = constants
    }
}

/// `--input-shape NAME=D0,D1,...`: fixes a graph input's shape (a dynamic model made static for the audit).
public struct InputShapePin: Sendable, Equatable, CustomStringConvertible {
    /// The graph input's name.
    public var name: String
    /// The dims to pin (empty pins a scalar).
    public var dims: [Int]

    /// A pin of input `name` to `dims`.
    public init(name: String, dims: [Int]) {
        self.name = name
        self.dims = dims
    }

    /// Parses `NAME=D0,D1,...` (dims ≥ 1; `NAME=` alone pins a scalar). The name is everything before the last '='.
    public init?(argument: String) {
        guard let equals = argument.lastIndex(of: "=") else { return nil }
        let name = String(argument[..<equals])
        let list = argument[argument.index(after: equals)...]
        guard !name.isEmpty else { return nil }
        var dims: [Int] = []
        if !list.isEmpty {
            for part in list.split(separator: ",", omittingEmptySubsequences: false) {
                guard let d = Int(part.trimmingCharacters(in: .whitespaces)), d >= 1, d <= 1 << 40 else { return nil }
                dims.append(d)
            }
        }
        self.init(name: name, dims: dims)
    }

    /// The pin as `--input-shape` takes it: `NAME=D0,D1,...`.
    public var description: String { "\(name)=" + dims.map(String.init).joined(separator: ",") }
}

/// A pin that does not fit the model.
public struct PinError: Error, CustomStringConvertible, Sendable {
    /// What does not fit, as one line for an `error:` message.
    public var message: String
    /// The message.
    public var description: String { message }

    /// A pin problem described in one line.
    public init(message: String) { self.message = message }
}

extension AuditInput {
    /// The one place shape information enters the audit (`mlpkg audit`): the shape inference pass (symbolic dims,
    /// shape chains evaluated, `pins` applied to the inputs) gives every value's type and the values fixed before
    /// run time.
    public static func forModel(_ model: Model, pinning pins: InputShapes = InputShapes()) throws(InputShapeError) -> AuditInput {
        let result = try ShapeInference.run(model, pinned: pins)
        return inferred(result)
    }

    /// The audit's view of a shape inference result (its model carries the pins and the inferred value_info).
    public static func inferred(_ result: ShapeInferenceResult) -> AuditInput {
        // A value inference could not type is unknown to the audit ("not checked"), not a non-tensor.
        AuditInput(model: result.model, types: result.types.filter { $0.value != .unknown }, constants: result.constants)
    }

    /// Only what the model declares (used by unit tests of the rules): the types the model itself declares (graph inputs, outputs and value_info of every
    /// graph, initializer and Constant shapes), with `pins` applied to the graph inputs. A symbolic dim a pin fixes
    /// (e.g. `batch` = 1) is replaced wherever the model uses that symbol, so annotated values become static too.
    /// Values the model does not annotate stay unknown. Constants: initializers and Constant node outputs.
    public static func fromDeclaredTypes(model: Model, pinning pins: [InputShapePin] = []) throws(PinError) -> AuditInput {
        var types: [String: ValueType] = [:]
        var constants = Set<String>()
        func record(_ graph: Graph) {
            for v in graph.inputs + graph.outputs + graph.valueInfo where v.type != .unknown { types[v.name] = v.type }
            for t in graph.initializers {
                types[t.name] = .tensor(t.type)
                constants.insert(t.name)
            }
            for s in graph.sparseInitializers {
                types[s.name] = .tensor(TensorType(elementType: s.values.dataType, shape: s.dims.map { .value($0) }))
                constants.insert(s.name)
            }
            for node in graph.nodes where node.isConstant {
                for output in node.outputs where !output.isEmpty { constants.insert(output) }
                if let t = node.constantTensor, let output = node.outputs.first { types[output] = .tensor(t.type) }
                if let s = node.constantSparseTensor, let output = node.outputs.first {
                    types[output] = .tensor(TensorType(elementType: s.values.dataType, shape: s.dims.map { .value($0) }))
                }
            }
        }
        model.graph.forEachGraph { graph, _ in record(graph) }

        var bindings: [String: Int] = [:]
        let runtimeInputs = model.graph.runtimeInputs
        for pin in pins {
            guard let input = runtimeInputs.first(where: { $0.name == pin.name }) else {
                let names = runtimeInputs.map(\.name).joined(separator: ", ")
                throw PinError(message: "--input-shape \(pin): the model has no input '\(pin.name)' (inputs: \(names.isEmpty ? "none" : names))")
            }
            guard case .tensor(let t) = input.type else {
                throw PinError(message: "--input-shape \(pin): input '\(pin.name)' is not a tensor (\(input.type))")
            }
            if let shape = t.shape {
                guard shape.count == pin.dims.count else {
                    throw PinError(message: "--input-shape \(pin): input '\(pin.name)' has rank \(shape.count) (\(t.shapeDescription)), the pin gives \(pin.dims.count) dims")
                }
                for (dim, value) in zip(shape, pin.dims) {
                    switch dim {
                    case .value(let v) where v != value:
                        throw PinError(message: "--input-shape \(pin): input '\(pin.name)' has the fixed shape \(t.shapeDescription); the pin contradicts it")
                    case .symbol(let s):
                        if let bound = bindings[s], bound != value {
                            throw PinError(message: "--input-shape \(pin): symbol '\(s)' is already pinned to \(bound)")
                        }
                        bindings[s] = value
                    default: break
                    }
                }
            }
            types[pin.name] = .tensor(TensorType(elementType: t.elementType, shape: pin.dims.map { .value($0) }))
        }
        if !bindings.isEmpty {
            let pinned = Set(pins.map(\.name))
            for (name, type) in types where !pinned.contains(name) { types[name] = type.binding(bindings) }
        }
        return AuditInput(model: model, types: types, constants: constants)
    }
}
