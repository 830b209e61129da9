import GraphIR

/// One ONNX op family: its schemas (op types and the opset versions whose changes matter for shapes), type and
/// shape inference, and optionally evaluation on constant inputs (constant folding).
///
/// Adding an op: one type conforming to `Operator`, one line in `OpRegistry.standard`, and a test.
public protocol Operator: Sendable {
    /// The op types this operator covers, each with the opset versions its definition changed at.
    static var schemas: [OpSchema] { get }
    /// The type of every output of `ctx.node` (`.unknown` where nothing can be said), or a thrown `OpFailure`
    /// naming what is wrong with the node.
    static func infer(_ ctx: OpContext) throws -> [ValueType]
    /// The values of the outputs when they can be computed from known inputs (see `OpContext.value`);
    /// nil (or nil elements) where they cannot. `types` are what `infer` returned.
    static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]?
    /// Random generators: never constant, never folded.
    static var isDeterministic: Bool { get }
}

extension Operator {
    /// By default an op does not fold: nil.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? { nil }
    /// By default an op is deterministic.
    public static var isDeterministic: Bool { true }
}

/// An op type and the opset versions its definition changed at (the first one is where the op appeared).
/// Only changes that affect inference need to be listed, but listing the whole history does no harm.
public struct OpSchema: Sendable {
    /// The op's domain; "" for the default ONNX domain.
    public var domain: String
    /// The op type, as `NodeProto.op_type` spells it.
    public var opType: String
    /// The opset versions the definition changed at, ascending.
    public var versions: [Int]

    /// A schema of `opType`; `versions` may be listed in any order.
    public init(_ opType: String, _ versions: [Int], domain: String = "") {
        self.domain = domain
        self.opType = opType
        self.versions = versions.sorted()
    }
}

/// Why a node's outputs could not be (fully) inferred.
public struct OpFailure: Error, CustomStringConvertible, Sendable {
    /// What is wrong, as one sentence for reports.
    public var reason: String
    /// A failure with the given reason.
    public init(_ reason: String) { self.reason = reason }
    /// The reason.
    public var description: String { reason }
}

/// What inference knows about one value: its type, whether it is fixed before run time (an initializer, a Constant,
/// anything computed only from those), and, for small tensors, its elements. A tensor source is decoded lazily.
public final class ValueState {
    /// The value's type as far as inference knows it.
    public var type: ValueType
    /// Whether the value is fixed before run time.
    public var isConstant: Bool
    private var source: Tensor?
    private var known: TensorValue?

    /// A state; `value` gives known elements, `source` a tensor decoded only when its elements are asked for.
    public init(type: ValueType, isConstant: Bool = false, value: TensorValue? = nil, source: Tensor? = nil) {
        self.type = type
        self.isConstant = isConstant
        self.known = value
        self.source = source
    }

    /// The elements, decoding the source tensor when it has at most `limit` elements.
    public func value(limit: Int) -> TensorValue? {
        if known == nil, let t = source {
            source = nil
            known = TensorValue.decode(t, limit: limit)
        }
        return known
    }

    /// Elements already known (without decoding).
    public var knownValue: TensorValue? { known }

    /// Replaces the known elements; nil clears them.
    public func set(value: TensorValue?) { known = value }
}

/// Limits that keep inference and folding cheap.
public struct InferenceLimits: Sendable {
    /// Largest tensor whose elements are decoded or computed in memory.
    public var evaluationElements: Int
    /// Largest symbolic (dim-valued) tensor tracked.
    public var symbolicElements: Int
    /// Elements of computed values kept over a whole model (2^24: at most ~128 MiB as doubles). Past it values are
    /// no longer computed; types still are (10,000 Expand nodes just under the per-value limit took 5.2 GB before).
    public var totalElements: Int

    /// Limits; the defaults evaluate up to 2^16 elements, track up to 64 symbolic ones and keep 2^24 in all.
    public init(evaluationElements: Int = 1 << 16, symbolicElements: Int = 64, totalElements: Int = 1 << 24) {
        self.evaluationElements = evaluationElements
        self.symbolicElements = symbolicElements
        self.totalElements = totalElements
    }
}

/// How an op reaches a subgraph attribute: the inference engine binds `inputs` to the subgraph's inputs (the
/// declared types refine them), infers it in the scope of the node, and returns the states of its outputs.
public protocol SubgraphInferring: AnyObject {
    func inferSubgraph(attribute: String, of node: Node, inputs: [ValueType]) throws -> [ValueState]
}

/// Everything an op sees of its node during inference.
public struct OpContext {
    /// Ranks beyond this are not believed (a shape vector declared with a million elements is malformed).
    public static let maxRank = 1024

    /// The node being inferred.
    public let node: Node
    /// The model's opset version for the node's domain.
    public let opsetVersion: Int
    /// The schema version in effect: the newest listed version ≤ `opsetVersion`.
    public let since: Int
    /// The dim arithmetic of this inference run, shared by its nodes so symbols stay consistent.
    public let algebra: DimAlgebra
    /// The limits on evaluating and tracking values.
    public let limits: InferenceLimits
    private let inputStates: [ValueState?]
    private let subgraphs: SubgraphInferring?
    private let notes: NoteBox

    /// A context for `node`: one state per input, nil where an optional input is left out.
    public init(node: Node, opsetVersion: Int, since: Int, algebra: DimAlgebra, limits: InferenceLimits,
                inputs: [ValueState?], subgraphs: SubgraphInferring?) {
        self.node = node
        self.opsetVersion = opsetVersion
        self.since = since
        self.algebra = algebra
        self.limits = limits
        self.inputStates = inputs
        self.subgraphs = subgraphs
        self.notes = NoteBox()
    }

    /// The node's op type.
    public var opType: String { node.opType }

    /// Notes left by the op about outputs it could not fully infer.
    public var note: String? { notes.text }

    /// Records why part of an output stays unknown (kept with the node in the inference result).
    public func note(_ text: String) {
        if notes.text == nil { notes.text = text }
    }

    // MARK: inputs

    /// The number of input slots the node lists, left-out optional ones included.
    public var inputCount: Int { node.inputs.count }

    /// Whether optional input `i` is given.
    public func has(_ i: Int) -> Bool { i < inputStates.count && inputStates[i] != nil }

    /// What inference knows about input `i`; nil when it is left out or past the node's inputs.
    public func state(_ i: Int) -> ValueState? { i < inputStates.count ? inputStates[i] : nil }

    /// The type of input `i`; nil when it is left out.
    public func type(_ i: Int) -> ValueType? { state(i)?.type }

    /// The tensor type of input `i`; nil when absent or not known to be a tensor.
    public func tensor(_ i: Int) -> TensorType? {
        if case .tensor(let t)? = type(i) { return t }
        return nil
    }

    /// The shape of input `i`; nil when absent, not a tensor, or of unknown rank.
    public func shape(_ i: Int) -> [Dim]? { tensor(i)?.shape }
    /// The element type of input `i`; nil when absent, not a tensor, or undefined.
    public func elementType(_ i: Int) -> DataType? { tensor(i)?.elementType }
    /// The rank of input `i`; nil when its shape is not known.
    public func rank(_ i: Int) -> Int? { shape(i)?.count }
    /// Whether input `i` is given and fixed before run time.
    public func isConstant(_ i: Int) -> Bool { state(i)?.isConstant ?? false }

    /// The shape of a required input, or a failure naming it.
    public func requireShape(_ i: Int) throws -> [Dim] {
        guard has(i) else { throw OpFailure("input \(i) is missing") }
        guard let s = shape(i) else { throw OpFailure("the rank of input \(i) ('\(node.inputs[i])') is unknown") }
        return s
    }

    /// The elements of input `i` when known and small enough.
    public func value(_ i: Int) -> TensorValue? {
        state(i)?.value(limit: limits.evaluationElements)
    }

    /// The elements of a rank-0 or rank-1 integer input as dims (symbolic elements included).
    public func dimsValue(_ i: Int) -> [Dim]? {
        guard let v = value(i), v.dims.count <= 1 else { return nil }
        return v.elements.dims
    }

    /// The elements of an integer input when all are concrete.
    public func intsValue(_ i: Int) -> [Int]? {
        guard let v = value(i)?.ints else { return nil }
        return v.map { Int($0) }
    }

    /// The single element of a scalar (or one-element) input.
    public func scalarDim(_ i: Int) -> Dim? {
        guard let d = dimsValue(i), d.count == 1 else { return nil }
        return d[0]
    }

    // MARK: attributes

    /// The value of the node's attribute `name`; nil when it is not set.
    public func attribute(_ name: String) -> AttributeValue? { node.attribute(name)?.value }

    /// INT attribute `name`; nil when not set; throws when it has another type.
    public func int(_ name: String) throws -> Int? {
        guard let a = attribute(name) else { return nil }
        guard case .int(let v) = a else { throw OpFailure("attribute '\(name)' is \(a.typeName), not INT") }
        return Int(v)
    }

    /// INT attribute `name`, or `value` when not set; throws when it has another type.
    public func int(_ name: String, default value: Int) throws -> Int { try int(name) ?? value }

    /// Largest count attribute believed (`group` and the like): runtimes and Core ML hold these as int32.
    public static let maxCount = Int(Int32.max)

    /// A count attribute (`group`…): `value` when not set; throws unless it is in 1…`maxCount`, so that
    /// arithmetic with it and conversions to int32 downstream cannot overflow.
    public func count(_ name: String, default value: Int) throws -> Int {
        let n = try int(name) ?? value
        guard n >= 1, n <= Self.maxCount else { throw OpFailure("attribute '\(name)' = \(n) is not a count from 1 to \(Self.maxCount)") }
        return n
    }

    /// INTS attribute `name`; nil when not set; throws when it has another type.
    public func ints(_ name: String) throws -> [Int]? {
        guard let a = attribute(name) else { return nil }
        guard case .ints(let v) = a else { throw OpFailure("attribute '\(name)' is \(a.typeName), not INTS") }
        return v.map { Int($0) }
    }

    /// FLOAT attribute `name`; nil when not set; throws when it has another type.
    public func float(_ name: String) throws -> Float? {
        guard let a = attribute(name) else { return nil }
        guard case .float(let v) = a else { throw OpFailure("attribute '\(name)' is \(a.typeName), not FLOAT") }
        return v
    }

    /// FLOATS attribute `name`; nil when not set; throws when it has another type.
    public func floats(_ name: String) throws -> [Float]? {
        guard let a = attribute(name) else { return nil }
        guard case .floats(let v) = a else { throw OpFailure("attribute '\(name)' is \(a.typeName), not FLOATS") }
        return v
    }

    /// STRING attribute `name` decoded as UTF-8; nil when not set; throws when it has another type.
    public func string(_ name: String) throws -> String? {
        guard let a = attribute(name) else { return nil }
        guard case .string(let v) = a else { throw OpFailure("attribute '\(name)' is \(a.typeName), not STRING") }
        return String(decoding: v, as: UTF8.self)
    }

    /// STRING attribute `name`, or `value` when not set; throws when it has another type.
    public func string(_ name: String, default value: String) throws -> String { try string(name) ?? value }

    /// A data type attribute (`to`, `dtype`, `output_dtype`…), checked against ONNX's type numbers.
    public func dataType(_ name: String) throws -> DataType? {
        guard let v = try int(name) else { return nil }
        guard let t = DataType(rawValue: Int32(clamping: v)) else { throw OpFailure("attribute '\(name)' = \(v) is not an ONNX data type") }
        return t
    }

    // MARK: subgraphs

    /// The output states of graph attribute `attribute` inferred with `inputs`; throws when no subgraph inference
    /// is available.
    public func inferSubgraph(_ attribute: String, inputs: [ValueType]) throws -> [ValueState] {
        guard let subgraphs else { throw OpFailure("subgraphs cannot be inferred here") }
        return try subgraphs.inferSubgraph(attribute: attribute, of: node, inputs: inputs)
    }

    // MARK: helpers

    /// A failure naming the node's problem.
    public func fail(_ reason: String) -> OpFailure { OpFailure(reason) }

    /// An axis in [-rank, rank) made non-negative, or a failure.
    public func axis(_ axis: Int, rank: Int, name: String = "axis") throws -> Int {
        guard axis >= -rank && axis < rank else { throw OpFailure("\(name) \(axis) is out of range for rank \(rank)") }
        return axis < 0 ? axis + rank : axis
    }

    /// Axes made non-negative, checked for range and duplicates.
    public func axes(_ axes: [Int], rank: Int, name: String = "axes") throws -> [Int] {
        let normalized = try axes.map { try axis($0, rank: rank, name: name) }
        guard Set(normalized).count == normalized.count else { throw OpFailure("\(name) \(axes) repeat an axis") }
        return normalized
    }

    /// Multidirectional broadcasting of input shapes; nil when a rank is unknown.
    public func broadcast(_ shapes: [[Dim]?]) throws -> [Dim]? {
        var result: [Dim] = []
        for case let shape? in shapes {
            let rank = max(result.count, shape.count)
            let a = Array(repeating: Dim.value(1), count: rank - result.count) + result
            let b = Array(repeating: Dim.value(1), count: rank - shape.count) + shape
            result = try zip(a, b).map { x, y in
                guard let d = algebra.broadcast(x, y) else { throw OpFailure("shapes cannot broadcast: \(x) against \(y)") }
                return d
            }
        }
        return shapes.contains { $0 == nil } ? nil : result
    }

    /// The number of elements a shape holds, when every dim is a value.
    public func elementCount(_ shape: [Dim]) -> Int? {
        var n = 1
        for d in shape {
            guard case .value(let v) = d, v >= 0 else { return nil }
            let (p, o) = n.multipliedReportingOverflow(by: v)
            if o { return nil }
            n = p
        }
        return n
    }

    /// The concrete dims of a shape, or nil.
    public func concrete(_ shape: [Dim]?) -> [Int]? {
        guard let shape else { return nil }
        var out: [Int] = []
        for d in shape {
            guard case .value(let v) = d else { return nil }
            out.append(v)
        }
        return out
    }

    /// Whether an output of this many elements may be computed.
    public func canEvaluate(_ count: Int?) -> Bool {
        guard let count else { return false }
        return count <= limits.evaluationElements
    }
}

final class NoteBox {
    var text: String?
}

/// A tensor value type.
public func tensorType(_ elementType: DataType?, _ shape: [Dim]?) -> ValueType {
    .tensor(TensorType(elementType: elementType, shape: shape))
}
