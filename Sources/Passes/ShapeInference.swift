import GraphIR
import Ops

/// The sizes a dim may take; each bound nil when unknown.
public struct DimInterval: Sendable, Hashable, CustomStringConvertible {
    /// The smallest size.
    public var lower: Int?
    /// The largest size (nil: unbounded or unknown).
    public var upper: Int?
    /// An interval; nil for an unknown bound.
    public init(lower: Int?, upper: Int?) {
        self.lower = lower
        self.upper = upper
    }
    /// `1..512`, `0..?`.
    public var description: String { "\(lower.map(String.init) ?? "?")..\(upper.map(String.init) ?? "?")" }
}

/// What shape inference knows about a model.
public struct ShapeInferenceResult: Sendable {
    /// The model with every graph's value_info holding the inferred type of each node output (graph outputs
    /// excepted: their declared types are the interface and stay as they are).
    public var model: Model
    /// Every value of every graph — inputs, initializers, node outputs — in graph order, subgraphs after their node.
    public var values: [InferredValue]
    /// Nodes whose outputs stayed (partly) unknown, with the reason.
    public var unresolved: [UnresolvedNode]
    /// Declared types that contradict the inferred ones.
    public var conflicts: [TypeConflict]
    /// Nodes whose op's inference failed (the op's rules reject its inputs, or the op is unknown), as `graph/node`
    /// (`main/NAME`, or `main/#INDEX` for an unnamed node): their declared output types are not to be trusted.
    public var failedNodes: Set<String> = []
    /// The elements of small values known before run time (concrete only), by name.
    public var knownValues: [String: TensorValue]
    /// The type of every value by name (a name defined in two sibling subgraphs gets what both agree on).
    public let types: [String: ValueType]
    /// The names of values fixed before run time.
    public let constants: Set<String>

    init(model: Model, values: [InferredValue], unresolved: [UnresolvedNode], conflicts: [TypeConflict],
         knownValues: [String: TensorValue]) {
        self.model = model
        self.values = values
        self.unresolved = unresolved
        self.conflicts = conflicts
        self.knownValues = knownValues
        var types: [String: ValueType] = [:]
        for v in values {
            if let existing = types[v.name], existing != v.type {
                types[v.name] = joinTypes(existing, v.type, fresh: { .unknown })
            } else {
                types[v.name] = v.type
            }
        }
        self.types = types
        constants = Set(values.filter(\.constant).map(\.name))
    }

    /// With ranged inputs, the interval of every symbolic dim in `types`.
    public internal(set) var symbolIntervals: [String: DimInterval] = [:]

    /// The smallest and largest size of a dim (each nil when unknown): flexible symbols' ranges carried through
    /// the expressions inference built from them (`sequence*2` on 1…512 is 2…1024).
    public func interval(_ dim: Dim) -> DimInterval {
        switch dim {
        case .value(let v): return DimInterval(lower: v, upper: v)
        case .symbol(let s): return symbolIntervals[s] ?? DimInterval(lower: nil, upper: nil)
        case .unknown: return DimInterval(lower: nil, upper: nil)
        }
    }

    /// The type of a value as text (`float[batch, seq*2]`), for tests and messages.
    public func describe(_ name: String) -> String? { types[name]?.description }
}

/// Shape and type inference over a whole model: every node of every graph (If/Loop/Scan bodies, model-local
/// function calls) in topological order, with symbolic dims (docs/SHAPES.md). It never guesses: an op it does not
/// know, or an input it cannot interpret, leaves that node's outputs unknown and lists the node with the reason.
public struct ShapeInference: GraphPass {
    /// The pass's name, as `PipelineError` reports it.
    public let name = "infer-shapes"

    /// The pass; its limits come from the `PassContext`.
    public init() {}

    /// Infers the model's types; `pinned` dims replace the declared ones of those main-graph inputs first.
    public static func run(_ model: Model, pinned: InputShapes = InputShapes(),
                           limits: InferenceLimits = InferenceLimits()) throws(InputShapeError) -> ShapeInferenceResult {
        let pinnedModel = try pinned.apply(to: model)
        return infer(pinnedModel, limits: limits)
    }

    /// The same, with pins given as a dictionary.
    public static func run(_ model: Model, pinned: [String: [Dim]], limits: InferenceLimits = InferenceLimits()) throws(InputShapeError) -> ShapeInferenceResult {
        try run(model, pinned: try InputShapes(pinned), limits: limits)
    }

    static func infer(_ model: Model, limits: InferenceLimits, ranges: [String: DimRange] = [:]) -> ShapeInferenceResult {
        let engine = InferenceEngine(model: model, limits: limits, folding: nil)
        for (s, r) in ranges { engine.algebra.declare(symbol: s, lowerBound: r.lower, upperBound: r.upper) }
        let (annotated, findings) = engine.run()
        var known: [String: TensorValue] = [:]
        for (name, value) in findings.known where known[name] == nil { known[name] = value }
        var result = ShapeInferenceResult(model: annotated, values: findings.values, unresolved: findings.unresolved,
                                          conflicts: findings.conflicts, knownValues: known)
        result.failedNodes = findings.failed
        if !ranges.isEmpty {
            // The interval of every symbolic dim inference wrote (expressions of the ranged symbols included).
            for type in result.types.values {
                guard case .tensor(let t) = type, let shape = t.shape else { continue }
                for case .symbol(let s) in shape where result.symbolIntervals[s] == nil {
                    let i = engine.algebra.interval(.symbol(s))
                    result.symbolIntervals[s] = DimInterval(lower: i.lower, upper: i.upper)
                }
            }
        }
        return result
    }

    /// The model with the main graph's declared output types made as specific as inference showed them to be: a
    /// symbolic or unknown declared dim becomes the inferred number. Used once inputs are pinned (the interface is
    /// specialised anyway); names, dtypes, ranks and known dims never change.
    public static func specializingOutputs(of model: Model, with result: ShapeInferenceResult) -> Model {
        var model = model
        let inferred = Dictionary(result.values.filter { $0.graph == "main" }.map { ($0.name, $0.type) }, uniquingKeysWith: { a, _ in a })
        for i in model.graph.outputs.indices {
            guard case .tensor(let declared) = model.graph.outputs[i].type,
                  case .tensor(let found)? = inferred[model.graph.outputs[i].name], let shape = found.shape else { continue }
            let element = declared.elementType ?? found.elementType
            guard let dims = declared.shape else {
                model.graph.outputs[i].type = .tensor(TensorType(elementType: element, shape: shape.map { $0.isNumber ? $0 : .unknown }))
                continue
            }
            guard dims.count == shape.count else { continue }
            let merged = zip(dims, shape).map { d, f -> Dim in d.isNumber || !f.isNumber ? d : f }
            model.graph.outputs[i].type = .tensor(TensorType(elementType: element, shape: merged))
        }
        return model
    }

    /// The pass: annotates value_info; changes nothing else.
    public func run(_ model: inout Model, context: PassContext) throws -> Bool {
        let result = Self.infer(model, limits: context.limits, ranges: context.symbolRanges)
        model = result.model
        context.inference = result
        return false
    }
}

extension Dim {
    var isNumber: Bool {
        if case .value = self { return true }
        return false
    }
}
