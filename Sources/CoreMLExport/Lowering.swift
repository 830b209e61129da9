import GraphIR
import Ops

/// Why a node cannot be lowered to MIL: the precondition that failed, in words a user can act on.
public struct LoweringRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// The precondition that failed, in words a user can act on.
    public var reason: String
    /// The lowest deployment target at which the node would lower (when only the target is at fault).
    public var needs: DeploymentTarget?
    /// The refusal comes from something not known before run time (a dynamic dim, an untyped value), not from a
    /// precondition that is known to fail: the audit reports it as "not checked".
    public var unknown: Bool
    /// The rule that refuses (a `LoweringRule` id); nil until the exporter names the lowering that threw it.
    public var rule: String?

    /// A refusal for `reason`; the other parameters set `needs`, `unknown` and `rule`.
    public init(_ reason: String, needs: DeploymentTarget? = nil, unknown: Bool = false, rule: String? = nil) {
        self.reason = reason
        self.needs = needs
        self.unknown = unknown
        self.rule = rule
    }

    /// The reason.
    public var description: String { reason }
}

/// Emits the MIL ops of one node once its preconditions hold; returns one variable per ONNX output (nil for an
/// output that is absent or unused).
typealias Emission = (Emitter) throws(LoweringRefusal) -> [MILVar?]

/// One ONNX op family's lowering to MIL (see docs/COREML.md). `plan` checks every precondition (static shapes,
/// dtypes, constant inputs, attribute values, deployment target) without emitting anything and returns the
/// emission; the audit calls `plan` alone, the exporter both, so they can never disagree.
protocol OpLowering: Sendable {
    /// ONNX op types (default domain) this lowering handles.
    static var opTypes: [String] { get }
    /// The MIL definition the lowering follows, with its type and rank conditions (LoweringRules.swift).
    static var rule: LoweringRule { get }
    static func plan(_ node: NodeView) throws(LoweringRefusal) -> Emission
}

/// What a lowering sees of a node: its attributes, the static MIL types of its inputs and outputs, and the values
/// of inputs known before run time.
struct NodeView {
    let node: Node
    /// ai.onnx opset of the model.
    let opset: Int
    let target: DeploymentTarget
    /// The float type the program computes in (fp16 or fp32).
    let compute: MILDataType
    let values: ValueTable
    /// Lowers subgraph nodes (If branches, Loop bodies) with the exporter's machinery; nil where none is given.
    var nested: NestedLowering? = nil

    var opType: String { node.opType }

    func has(_ i: Int) -> Bool { i < node.inputs.count && !node.inputs[i].isEmpty }

    /// The static MIL type of input `i`, or a refusal naming it.
    func type(_ i: Int) throws(LoweringRefusal) -> MILTensorType {
        guard has(i) else { throw LoweringRefusal("input \(i) is missing") }
        return try values.type(of: node.inputs[i])
    }

    func outputType(_ i: Int = 0) throws(LoweringRefusal) -> MILTensorType {
        guard i < node.outputs.count, !node.outputs[i].isEmpty else { throw LoweringRefusal("output \(i) is missing") }
        return try values.type(of: node.outputs[i])
    }

    /// Whether output `i` exists and anything uses it.
    func outputUsed(_ i: Int) -> Bool { i < node.outputs.count && !node.outputs[i].isEmpty && values.isUsed(node.outputs[i]) }

    func isConstant(_ i: Int) -> Bool { has(i) && values.constant(node.inputs[i]) != nil }

    /// The integer elements of a constant input.
    func ints(_ i: Int) throws(LoweringRefusal) -> [Int] {
        guard has(i), let c = values.constant(node.inputs[i]), let v = c.ints else {
            throw LoweringRefusal("input \(i) '\(has(i) ? node.inputs[i] : "")' must be a constant integer tensor")
        }
        return v
    }

    /// The float elements of a constant input.
    func floats(_ i: Int) throws(LoweringRefusal) -> [Float] {
        guard has(i), let c = values.constant(node.inputs[i]), let v = c.floats else {
            throw LoweringRefusal("input \(i) '\(has(i) ? node.inputs[i] : "")' must be a constant float tensor")
        }
        return v
    }

    func requireConstant(_ i: Int, _ what: String) throws(LoweringRefusal) {
        guard has(i) else { throw LoweringRefusal("input \(i) (\(what)) is missing") }
        guard isConstant(i) else { throw LoweringRefusal("\(what) '\(node.inputs[i])' must be constant") }
    }

    // MARK: Attributes

    func int(_ name: String) -> Int? {
        if case .int(let v)? = node.attribute(name)?.value { return Int(clamping: v) }
        return nil
    }

    func int(_ name: String, default value: Int) -> Int { int(name) ?? value }

    func ints(_ name: String) -> [Int]? {
        if case .ints(let v)? = node.attribute(name)?.value { return v.map { Int(clamping: $0) } }
        return nil
    }

    func float(_ name: String, default value: Float) -> Float {
        if case .float(let v)? = node.attribute(name)?.value { return v }
        return value
    }

    func string(_ name: String, default value: String) -> String {
        if case .string(let v)? = node.attribute(name)?.value { return String(decoding: v, as: UTF8.self) }
        return value
    }

    /// An axis in [-rank, rank) made non-negative.
    func axis(_ value: Int, rank: Int) throws(LoweringRefusal) -> Int {
        guard value >= -rank, value < max(rank, 1) else { throw LoweringRefusal("axis \(value) is out of range for rank \(rank)") }
        return value < 0 ? value + rank : value
    }

    /// A float-typed input in the compute precision.
    func requireFloat(_ i: Int) throws(LoweringRefusal) -> MILTensorType {
        let t = try type(i)
        guard t.dtype.isFloat else { throw LoweringRefusal("input \(i) '\(node.inputs[i])' is \(t.dtype); \(opType) takes floats") }
        return t
    }
}

/// Emission-time access: input variables (constants materialized on first use), the builder, output naming.
struct Emitter {
    let view: NodeView
    let builder: MILBuilder

    /// The MIL variable of input `i` (a constant becomes a const op, or a constexpr for compressed weights).
    func input(_ i: Int) throws(LoweringRefusal) -> MILVar {
        try view.values.variable(view.node.inputs[i], builder: builder)
    }

    /// A name for the op producing output `i` (the node's name, or its first output, when output `i` is absent).
    func name(_ i: Int = 0) -> String {
        if view.node.outputs.indices.contains(i), !view.node.outputs[i].isEmpty { return view.node.outputs[i] }
        return view.node.name.isEmpty ? view.node.outputs.first { !$0.isEmpty } ?? "" : view.node.name
    }

    func op(_ type: String, _ params: [(String, MILArg)], output: MILTensorType, suffix: String = "") -> MILVar {
        builder.op1(type, name: name() + suffix, params, output: output)
    }

    /// Zeros of `type` (a loop's initial state): a constant up to 1 MiB, as coremltools' const elimination folds a
    /// `fill` of a constant shape, else a `fill` (an op is dearer than a small blob, a big blob dearer than an op).
    /// The values are built only for the constant.
    func zeros(_ type: MILTensorType, suffix: String) -> MILVar {
        guard type.count <= (1 << 20) / 4 else {
            let zero: MILConst = type.dtype == .int32 ? .scalar(Int32(0)) : .float(0, type.dtype)
            return op("fill", [("shape", .c(.ints(type.shape))), ("value", .c(zero))], output: type, suffix: suffix)
        }
        let value: MILConst = type.dtype == .int32 ? MILConst(type, .ints([Int32](repeating: 0, count: type.count)))
            : .floats([Float](repeating: 0, count: type.count), type.dtype, shape: type.shape)
        return builder.const(value, name: name() + suffix)
    }

    /// `v` broadcast to `shape` (numpy rules, which the caller has checked): reshape to the full rank, then tile.
    func broadcast(_ v: MILVar, to shape: [Int], suffix: String) -> MILVar {
        guard v.type.shape != shape else { return v }
        var x = v
        let padded = [Int](repeating: 1, count: shape.count - x.type.rank) + x.type.shape
        if padded != x.type.shape {
            x = op("reshape", [("x", .v(x)), ("shape", .c(.ints(padded)))], output: x.type.with(shape: padded), suffix: suffix + "_rank")
        }
        let reps = zip(shape, padded).map { $0 / $1 }
        if reps.contains(where: { $0 != 1 }) {
            x = op("tile", [("x", .v(x)), ("reps", .c(.ints(reps)))], output: x.type.with(shape: shape), suffix: suffix + "_tile")
        }
        return x
    }
}

/// Every lowering, by ONNX op type. The single source of truth for "converts to Core ML".
public enum LoweringRegistry {
    static let lowerings: [any OpLowering.Type] = [
        BinaryLowering.self, VariadicLowering.self, UnaryLowering.self, ActivationLowering.self, ClipLowering.self,
        MatMulLowering.self, GemmLowering.self, ConvLowering.self, ConvTransposeLowering.self, PoolLowering.self,
        GlobalPoolLowering.self, BatchNormLowering.self, LayerNormLowering.self, InstanceNormLowering.self, GroupNormLowering.self, EinsumLowering.self, GridSampleLowering.self,
        SoftmaxLowering.self, ReduceLowering.self, ArgReduceLowering.self, ReshapeLowering.self,
        TransposeLowering.self, ConcatLowering.self, SplitLowering.self, SliceLowering.self, ExpandLowering.self,
        TileLowering.self, GatherLowering.self, GatherElementsLowering.self, WhereLowering.self, CastLowering.self,
        PadLowering.self, ResizeLowering.self, IdentityLowering.self, DequantizeLowering.self, FloatClassLowering.self,
        GatherNDLowering.self, CumSumLowering.self, TopKLowering.self, TriluLowering.self, DepthSpaceLowering.self,
        LRNLowering.self, ScatterLowering.self,
        RecurrentLowering.self, ShapeLowering.self, ConstantOfShapeLowering.self, RangeLowering.self, ControlFlowLowering.self,
    ]

    static let byOpType: [String: any OpLowering.Type] = {
        var table: [String: any OpLowering.Type] = [:]
        for l in lowerings { for op in l.opTypes { table[op] = l } }
        return table
    }()

    /// Every ONNX op type with a lowering (for docs and the audit).
    public static var opTypes: [String] { byOpType.keys.sorted() }

    /// Every rule a Core ML verdict can cite: each lowering's, then the limits and refusals that hold for all.
    public static var rules: [LoweringRule] {
        lowerings.map { $0.rule } + [CoreMLLimits.maxRankRule, CoreMLLimits.noLowering, CoreMLLimits.controlFlow,
                                     CoreMLLimits.subgraph, CoreMLLimits.customDomain, CoreMLLimits.folded,
                                     CoreMLLimits.constant, CoreMLLimits.inference, CoreMLLimits.dims, FlexibleShapes.rule,
                                     CoreMLLimits.encoding]
    }

    /// The ONNX op types a lowering rule covers.
    public static func opTypes(ofRule id: String) -> [String] {
        lowerings.first { $0.rule.id == id }?.opTypes.sorted() ?? []
    }

    /// The rule of the lowering for an op type, if any.
    public static func rule(forOpType opType: String) -> LoweringRule? { byOpType[opType]?.rule }
}
