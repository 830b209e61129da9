import GraphIR

/// A lowering's conditions and the definition they come from: the MIL ops it emits, where coremltools defines them,
/// what that definition says, and the element types and ranks it allows. The exporter checks them before a
/// lowering's own preconditions, and the audit cites the rule for every node the lowering handles — converted or
/// refused — so "converts to Core ML" has one source of truth (docs/AUDIT.md lists every rule).
public struct LoweringRule: Sendable {
    /// `mil-…`, as reports cite it.
    public let id: String
    /// The MIL ops emitted.
    public let milOps: String
    /// Where the MIL ops are defined (coremltools' op definitions for the lowest target mlpkg writes, iOS15).
    public let source: String
    /// What the definition says about the conditions checked here: type domains, const inputs, ranks.
    public let says: String
    /// MIL element types each ONNX input may have, by input position; the key is an ONNX op type, or "*" for every
    /// op of the lowering without its own entry. mlpkg's MIL values are fp16, fp32, int32 or bool (every integer
    /// is int32), so only those four are ever checked.
    let inputTypes: [String: [Int: [MILDataType]]]
    /// Rank bounds on input 0 stated by the definition, by ONNX op type ("*": the rest).
    let ranks: [String: ClosedRange<Int>]

    init(_ id: String, mil: String, file: String = "", source: String? = nil, says: String,
         types: [String: [Int: [MILDataType]]] = [:], ranks: [String: ClosedRange<Int>] = [:]) {
        self.id = id
        self.milOps = mil
        self.source = source ?? LoweringRule.definitions + file
        self.says = says
        self.inputTypes = types
        self.ranks = ranks
    }

    static let definitions = "https://github.com/apple/coremltools/blob/main/coremltools/converters/mil/mil/ops/defs/"

    /// Checks the definition's element types and ranks on the inputs whose types are known (an unknown type is
    /// the lowering's own "not checked").
    func check(_ v: NodeView) throws(LoweringRefusal) {
        if let allowed = inputTypes[v.opType] ?? inputTypes["*"] {
            for (i, types) in allowed.sorted(by: { $0.key < $1.key }) where v.has(i) {
                guard let t = try? v.type(i) else { continue }
                guard types.contains(t.dtype) else {
                    throw LoweringRefusal("input \(i) '\(v.node.inputs[i])' is \(t.dtype); MIL \(milOps) takes \(types.map(\.description).joined(separator: ", "))",
                                          rule: id)
                }
            }
        }
        if let range = ranks[v.opType] ?? ranks["*"], v.has(0), let t = try? v.type(0), !range.contains(t.rank) {
            throw LoweringRefusal("input 0 '\(v.node.inputs[0])' has rank \(t.rank); MIL \(milOps) takes rank \(range.lowerBound) to \(range.upperBound)", rule: id)
        }
    }
}

/// Conditions that hold for every lowering.
public enum CoreMLLimits {
    /// Core ML tensors have rank 5 at most.
    public static let maxRank = 5
    /// The rule a node fails when an input or output has a rank above `maxRank`.
    public static let maxRankRule = LoweringRule(
        "coreml-max-rank", mil: "every op",
        source: "https://github.com/microsoft/onnxruntime/blob/main/onnxruntime/core/providers/coreml/builders/helper.cc",
        says: "ONNX Runtime's CoreML provider refuses rank > 5 (IsInputSupported in builders/helper.cc, citing apple/coremltools#832); coremltools' Program checks every output's rank (_check_invalid_tensor_rank)")

    /// Why a node has no lowering at all, and nodes folded away before lowering.
    public static let noLowering = LoweringRule(
        "coreml-no-lowering", mil: "none", source: "docs/COREML.md#lowering-table",
        says: "mlpkg's exporter has no lowering for the op (docs/COREML.md lists every lowered op), so an ML Program cannot hold it")
    /// Refuses ops holding subgraphs other than If, Loop and Scan (SequenceMap).
    public static let controlFlow = LoweringRule(
        "coreml-control-flow", mil: "none", source: "docs/COREML.md#lowering-table",
        says: "ops holding subgraphs other than If, Loop and Scan (SequenceMap) are not lowered; their subgraphs are not converted")
    /// Refuses every node inside a subgraph, since its control-flow node is not lowered.
    public static let subgraph = LoweringRule(
        "coreml-subgraph", mil: "none", source: "docs/COREML.md#lowering-table",
        says: "a node inside a subgraph converts only with its control-flow node, which is not lowered here")
    /// Refuses ops outside the ONNX domain and model-local functions that were not inlined.
    public static let customDomain = LoweringRule(
        "coreml-custom-domain", mil: "none", source: "docs/COREML.md#lowering-table",
        says: "ops outside the ONNX domain (com.microsoft contrib ops, custom ops, model-local functions not inlined) have no lowering")
    /// Cited for nodes whose outputs are all known before run time: written as constants, with no op.
    public static let folded = LoweringRule(
        "coreml-folded", mil: "const", source: "docs/COREML.md",
        says: "every output is known before run time: the values are written as constants where used, no op")
    /// Cited for sparse Constant nodes: refused when the values cannot be densified into a const.
    public static let constant = LoweringRule(
        "coreml-constant", mil: "const", source: "docs/COREML.md",
        says: "a sparse constant must densify; its values become a const")

    /// Refuses a node whose shape inference failed: its declared output types contradict its inputs, so lowering
    /// from them would write a program Core ML rejects (or computes differently).
    public static let inference = LoweringRule(
        "coreml-inference", mil: "none", source: "docs/COREML.md#validity",
        says: "a node is lowered only when mlpkg's shape inference accepts it; declared output types alone are never trusted")

    /// Refuses a node with an empty tensor or a dim MIL's int32 shapes cannot hold.
    public static let dims = LoweringRule(
        "coreml-dims", mil: "every op", source: "https://github.com/apple/coremltools/blob/main/mlmodel/format/MIL.proto",
        says: "MIL tensor dims are positive and shapes are written as int32 values (MIL has no empty tensors; a dim of 2^31 or more cannot be a reshape, tile or pad parameter)")

    /// Refuses a node that reads a weight stored in an encoding the deployment target cannot write (blocks that do
    /// not divide their axis, 4-bit or blocked scales before iOS18, grouped or 3-bit tables before iOS18, any
    /// compressed weight on iOS15). The facts are `CoreMLWeightTarget`'s, which conversion follows with `--for coreml`.
    public static let encoding = LoweringRule(
        "coreml-encoding", mil: "constexpr_affine_dequantize, constexpr_blockwise_shift_scale, constexpr_lut_to_dense",
        source: "https://github.com/apple/coremltools/blob/main/coremltools/converters/mil/mil/ops/defs/iOS18/compression.py",
        says: "a compressed weight must be one the target writes: int8/uint8 per tensor or channel from iOS16 (iOS16/constexpr_ops.py); int4 or blocks from iOS18, each block dividing its axis; one table of 1, 2, 4, 6 or 8 bits from iOS16, grouped or 3-bit tables from iOS18")

    static func checkRanks(_ v: NodeView) throws(LoweringRefusal) {
        func check(_ t: MILTensorType, _ what: String) throws(LoweringRefusal) {
            if t.rank > maxRank {
                throw LoweringRefusal("\(what) has rank \(t.rank); Core ML tensors have rank \(maxRank) at most", rule: maxRankRule.id)
            }
            if t.shape.contains(0) { throw LoweringRefusal("\(what) is empty \(t.shape); MIL has no empty tensors", rule: dims.id) }
            if t.shape.contains(where: { $0 > Int(Int32.max) }) {
                throw LoweringRefusal("\(what) has a dim of 2^31 or more \(t.shape); MIL shapes are int32", rule: dims.id)
            }
            // Every dim in range can still multiply past what any tensor holds (the MIL verifier's bound, 2^53
            // elements): refused here, as the model's fault, not caught later as an invalid program.
            guard let elements = Tensor.elementCount(of: t.shape.filter { $0 > 0 }), elements <= 1 << 53 else {
                throw LoweringRefusal("\(what) \(t.shape) has more elements than any tensor Core ML holds (2^53 at most)", rule: dims.id)
            }
        }
        for (i, name) in v.node.inputs.enumerated() where !name.isEmpty {
            // Concat drops empty parts (exporters concatenate an empty slice of a shape), so they are no MIL tensor.
            if let t = try? v.type(i), !(v.opType == "Concat" && t.shape.contains(0)) { try check(t, "input \(i) '\(name)'") }
        }
        for (i, name) in v.node.outputs.enumerated() where !name.isEmpty {
            if let t = try? v.outputType(i) { try check(t, "output \(i) '\(name)'") }
        }
    }
}

private let float: [MILDataType] = [.fp16, .fp32]
private let numeric: [MILDataType] = [.fp16, .fp32, .int32]
private let any: [MILDataType] = [.fp16, .fp32, .int32, .bool]

extension BinaryLowering {
    static let rule = LoweringRule(
        "mil-elementwise-binary", mil: "add, sub, mul, real_div, pow, maximum, minimum, mod, equal, greater, less, greater_equal, less_equal, logical_and, logical_or, logical_xor",
        file: "iOS15/elementwise_binary.py",
        says: "x and y share type T = (fp16, fp32, int32), broadcast like numpy; logical_and/or/xor take T = (bool)",
        types: ["*": [0: numeric, 1: numeric], "And": [0: [.bool], 1: [.bool]], "Or": [0: [.bool], 1: [.bool]],
                "Xor": [0: [.bool], 1: [.bool]], "PRelu": [0: float, 1: float]])
}

extension VariadicLowering {
    static let rule = LoweringRule(
        "mil-elementwise-variadic", mil: "add, maximum, minimum, real_div", file: "iOS15/elementwise_binary.py",
        says: "x and y share type T = (fp16, fp32, int32); a chain of binary ops, one per extra input",
        types: ["*": [0: numeric, 1: numeric, 2: numeric, 3: numeric], "Mean": [0: float, 1: float, 2: float, 3: float]])
}

extension UnaryLowering {
    static let rule = LoweringRule(
        "mil-elementwise-unary", mil: "relu, sigmoid, tanh, exp, log, sqrt, abs, inverse, floor, ceil, sin, cos, tan, asin, acos, atan, sinh, cosh, erf, sign, softplus, logical_not",
        file: "iOS15/elementwise_unary.py",
        says: "x: T = (fp16, fp32); abs and sign also int32 (elementwise_unary_with_int); logical_not takes bool; log and inverse take a const epsilon (relu, sigmoid, softplus are in iOS15/activation.py with T = (fp16, fp32))",
        types: ["*": [0: float], "Abs": [0: numeric], "Sign": [0: numeric], "Neg": [0: numeric], "Not": [0: [.bool]]])
}

extension ActivationLowering {
    static let rule = LoweringRule(
        "mil-activation", mil: "leaky_relu, elu, sigmoid_hard, gelu, thresholded_relu, softplus, tanh, mul", file: "iOS15/activation.py",
        says: "x: T = (fp16, fp32); alpha and beta const; gelu's mode is EXACT, TANH_APPROXIMATION or SIGMOID_APPROXIMATION",
        types: ["*": [0: float]])
}

extension ClipLowering {
    static let rule = LoweringRule(
        "mil-clip", mil: "clip, relu6, maximum, minimum", file: "iOS15/elementwise_unary.py",
        says: "clip: x: T = (fp16, fp32), alpha and beta const T (iOS17 also requires alpha < beta); integer Clip: maximum and minimum, T = (fp16, fp32, int32)", types: ["*": [0: numeric]])
}

extension MatMulLowering {
    static let rule = LoweringRule(
        "mil-matmul", mil: "matmul", file: "iOS15/linear.py",
        says: "x and y: T = (fp16, fp32, int32), 1-D or higher, numpy matmul broadcasting; transpose flags const",
        types: ["*": [0: numeric, 1: numeric]], ranks: ["*": 1...5])
}

extension GemmLowering {
    static let rule = LoweringRule(
        "mil-gemm", mil: "matmul, mul, add", file: "iOS15/linear.py",
        says: "matmul: x and y: T = (fp16, fp32, int32), transpose_x/transpose_y const; alpha and beta become a mul and an add",
        types: ["*": [0: numeric, 1: numeric, 2: numeric]], ranks: ["*": 2...2])
}

extension ConvLowering {
    static let rule = LoweringRule(
        "mil-conv", mil: "conv", file: "iOS15/conv.py",
        says: "x: T = (fp16, fp32) of rank 3 to 5 (1 <= len(d_in) <= 3); bias const; weight need not be const, but dilations other than 1 need a const weight (a weight computed at run time, as weight normalization exports it, is lowered when the conv is not dilated)",
        types: ["*": [0: float, 1: float, 2: float]], ranks: ["*": 3...5])
}

extension ConvTransposeLowering {
    static let rule = LoweringRule(
        "mil-conv-transpose", mil: "conv_transpose", file: "iOS15/conv.py",
        says: "x: T = (fp16, fp32) of rank 3 to 5; weight const (iOS15); bias const",
        types: ["*": [0: float, 1: float, 2: float]], ranks: ["*": 3...5])
}

extension PoolLowering {
    static let rule = LoweringRule(
        "mil-pool", mil: "max_pool, avg_pool, l2_pool", file: "iOS15/pool.py",
        says: "x: T = (fp16, fp32); avg_pool and max_pool: 3 <= rank <= 5; l2_pool: 1-D and 2-D pooling only; kernel_sizes, strides, pad const",
        types: ["*": [0: float]], ranks: ["*": 3...5, "LpPool": 3...4])
}

extension GlobalPoolLowering {
    static let rule = LoweringRule(
        "mil-global-pool", mil: "reduce_mean, reduce_max, reduce_l2_norm", file: "iOS15/reduction.py",
        says: "x: T = (fp16, fp32, int32), 1-dimensional or higher; axes and keep_dims const",
        types: ["*": [0: float]], ranks: ["*": 3...5])
}

extension BatchNormLowering {
    static let rule = LoweringRule(
        "mil-batch-norm", mil: "batch_norm (rank 2: expand_dims before, squeeze after)", file: "iOS15/normalization.py",
        says: "x: T = (fp16, fp32), 3 <= rank <= 5 (mlpkg gives a rank-2 x a trailing dim); mean and variance const, gamma, beta and epsilon const",
        types: ["*": [0: float, 1: float, 2: float, 3: float, 4: float]], ranks: ["*": 2...5])
}

extension LayerNormLowering {
    static let rule = LoweringRule(
        "mil-layer-norm", mil: "layer_norm", file: "iOS15/normalization.py",
        says: "x: T = (fp16, fp32); axes, gamma, beta and epsilon const (no rank limit stated)", types: ["*": [0: float, 1: float, 2: float]])
}

extension GridSampleLowering {
    static let rule = LoweringRule(
        "mil-resample", mil: "resample", file: "iOS15/image_resizing.py",
        says: "x: T = (fp16, fp32) of rank 4; coordinates: U = (int32, fp32) of rank 4 [B, H2, W2, 2] in (x, y) order; sampling_mode bilinear or nearest; padding_mode constant, border, reflection or symmetric",
        types: ["*": [0: float, 1: float]], ranks: ["*": 4...4])
}

extension EinsumLowering {
    static let rule = LoweringRule(
        "mil-einsum", mil: "transpose, reduce_sum, reshape, matmul", file: "iOS15/linear.py",
        says: "matmul: x, y: T = (fp16, fp32), batched over leading dims; one or two operands, no repeated label within an operand, no broadcasting between operands",
        types: ["*": [0: float, 1: float]], ranks: ["*": 1...5])
}

extension GroupNormLowering {
    static let rule = LoweringRule(
        "mil-group-norm", mil: "reshape, instance_norm (mul, add from opset 21)", file: "iOS15/normalization.py",
        says: "instance_norm: x: T = (fp16, fp32), 3 <= rank(x) <= 4; gamma, beta and epsilon const (x is reshaped to rank 3 [N, groups, rest])",
        types: ["*": [0: float, 1: float, 2: float]], ranks: ["*": 3...5])
}

extension InstanceNormLowering {
    static let rule = LoweringRule(
        "mil-instance-norm", mil: "instance_norm", file: "iOS15/normalization.py",
        says: "x: T = (fp16, fp32), 3 <= rank(x) <= 4; gamma, beta and epsilon const", types: ["*": [0: float, 1: float, 2: float]], ranks: ["*": 3...4])
}

extension SoftmaxLowering {
    static let rule = LoweringRule(
        "mil-softmax", mil: "softmax, reduce_log_sum_exp, sub, reshape", file: "iOS15/activation.py",
        says: "softmax: x: T = (fp16, fp32), axis const; reduce_log_sum_exp (iOS15/reduction.py): T = (fp16, fp32, int32)",
        types: ["*": [0: float]])
}

extension ReduceLowering {
    static let rule = LoweringRule(
        "mil-reduce", mil: "reduce_sum, reduce_mean, reduce_max, reduce_min, reduce_prod, reduce_l1_norm, reduce_l2_norm, reduce_log_sum, reduce_log_sum_exp, reduce_sum_square",
        file: "iOS15/reduction.py", says: "x: T = (fp16, fp32, int32), 1-dimensional or higher; axes and keep_dims const",
        types: ["*": [0: numeric]], ranks: ["*": 1...5])
}

extension ArgReduceLowering {
    static let rule = LoweringRule(
        "mil-arg-reduce", mil: "reduce_argmax, reduce_argmin", file: "iOS15/reduction.py",
        says: "x: T = (fp16, fp32, int32); axis and keep_dims const; the output is int32", types: ["*": [0: numeric]])
}

extension ReshapeLowering {
    static let rule = LoweringRule(
        "mil-reshape", mil: "reshape, squeeze", file: "iOS15/tensor_transformation.py",
        says: "x: T = (fp16, fp32, int32, bool); iOS17 widens T with int8, uint8, int16, uint16", types: ["*": [0: any]])
}

extension TransposeLowering {
    static let rule = LoweringRule(
        "mil-transpose", mil: "transpose", file: "iOS15/tensor_transformation.py",
        says: "x: T = (fp16, fp32, int32, bool), at least 1-D; perm const", types: ["*": [0: any]], ranks: ["*": 1...5])
}

extension ConcatLowering {
    static let rule = LoweringRule(
        "mil-concat", mil: "concat", file: "iOS15/tensor_operation.py",
        says: "values: fp16, fp32, i32 or bool (docstring), every value of the same rank and dtype; axis const",
        types: ["*": [0: any, 1: any, 2: any, 3: any]])
}

extension SplitLowering {
    static let rule = LoweringRule(
        "mil-split", mil: "split", file: "iOS15/tensor_operation.py",
        says: "x: T = (fp16, fp32, int32, bool); split_sizes and axis const", types: ["*": [0: any]])
}

extension SliceLowering {
    static let rule = LoweringRule(
        "mil-slice", mil: "slice_by_index", file: "iOS15/tensor_transformation.py",
        says: "x: T = (fp16, fp32, int32, bool); begin and end int32 (need not be const in MIL; mlpkg needs ONNX's starts, ends, axes and steps constant to apply ONNX's clamping); stride const",
        types: ["*": [0: any]])
}

extension ExpandLowering {
    static let rule = LoweringRule(
        "mil-expand", mil: "reshape, tile", file: "iOS15/tensor_operation.py",
        says: "tile: x: T = (fp16, fp32, int32, bool), reps int32; reshape (iOS15/tensor_transformation.py): the same T",
        types: ["*": [0: any]])
}

extension TileLowering {
    static let rule = LoweringRule(
        "mil-tile", mil: "tile", file: "iOS15/tensor_operation.py",
        says: "x: T = (fp16, fp32, int32, bool); reps int32 (mlpkg needs it constant)", types: ["*": [0: any]])
}

extension GatherLowering {
    static let rule = LoweringRule(
        "mil-gather", mil: "gather (bool data: cast to int32 and back)", file: "iOS15/scatter_gather.py",
        says: "x: T = (fp16, fp32, int32) (no bool, even from iOS17; mlpkg casts bool data to int32 around it); indices int32; axis const; iOS17: indices must be non-negative",
        types: ["*": [0: any, 1: [.int32]]])
}

extension GatherElementsLowering {
    static let rule = LoweringRule(
        "mil-gather-along-axis", mil: "gather_along_axis (bool data: cast to int32 and back)", file: "iOS15/scatter_gather.py",
        says: "x: T = (fp16, fp32, int32) (bool cast around); indices int32 with rank(indices) == rank(x) and the same dims as x except on axis; axis const",
        types: ["*": [0: any, 1: [.int32]]])
}

extension LRNLowering {
    static let rule = LoweringRule(
        "mil-lrn", mil: "local_response_norm", file: "iOS15/normalization.py",
        says: "x: T = (fp16, fp32), rank ≥ 3; size const; alpha, beta, k const floats; x / (k + alpha/size · Σ x²)^beta over size channels",
        types: ["*": [0: float]], ranks: ["*": 3...5])
}

extension ScatterLowering {
    static let rule = LoweringRule(
        "mil-scatter", mil: "scatter_nd, scatter_along_axis", file: "iOS15/scatter_gather.py",
        says: "data and updates: T = (fp16, fp32, int32); indices int32 (scatter_nd: updates shaped indices.shape[:-1] + data.shape[indices.shape[-1]:]; scatter_along_axis: indices and updates of one shape, data's rank); mode update, add, sub, mul, div, max or min",
        types: ["*": [0: numeric, 1: [.int32], 2: numeric]])
}

extension FloatClassLowering {
    static let rule = LoweringRule(
        "mil-float-class", mil: "not_equal (IsNaN: x ≠ x), abs + equal (IsInf)", file: "iOS15/elementwise_binary.py",
        says: "not_equal and equal: x and y of T = (fp16, fp32, int32), broadcast; the result is bool",
        types: ["*": [0: float]])
}

extension GatherNDLowering {
    static let rule = LoweringRule(
        "mil-gather-nd", mil: "gather_nd (bool data: cast to int32 and back)", file: "iOS15/scatter_gather.py",
        says: "x: T = (fp16, fp32, int32); indices int32 with indices.shape[-1] <= rank(x); output indices.shape[:-1] + x.shape[indices.shape[-1]:] (iOS15 has no batch_dims)",
        types: ["*": [0: any, 1: [.int32]]])
}

extension CumSumLowering {
    static let rule = LoweringRule(
        "mil-cumsum", mil: "cumsum", file: "iOS15/tensor_operation.py",
        says: "x: T = (fp16, fp32, int32); axis, exclusive and reverse const",
        types: ["*": [0: numeric]])
}

extension TopKLowering {
    static let rule = LoweringRule(
        "mil-topk", mil: "topk", file: "iOS15/tensor_operation.py",
        says: "x: T = (fp16, fp32, int32); k and axis const; ascending flag; outputs the values and int32 indices, sorted",
        types: ["*": [0: numeric]])
}

extension TriluLowering {
    static let rule = LoweringRule(
        "mil-trilu", mil: "band_part (k = 0), select with a const mask (k ≠ 0)", file: "iOS15/tensor_operation.py",
        says: "band_part: x: T = (fp16, fp32, int32, bool), lower and upper const (-1 keeps the whole triangle); select: cond bool, a and b of one type",
        types: ["*": [0: any]])
}

extension DepthSpaceLowering {
    static let rule = LoweringRule(
        "mil-depth-space", mil: "depth_to_space (DCR), pixel_shuffle (CRD), space_to_depth", file: "iOS15/tensor_transformation.py",
        says: "x: T = (fp16, fp32), rank 4; block_size / upscale_factor const",
        types: ["*": [0: float]], ranks: ["*": 4...4])
}

extension WhereLowering {
    static let rule = LoweringRule(
        "mil-select", mil: "select", file: "iOS15/control_flow.py",
        says: "cond: bool; a and b: T = (fp16, fp32, bool, int32), broadcast", types: ["*": [0: [.bool], 1: any, 2: any]])
}

extension CastLowering {
    static let rule = LoweringRule(
        "mil-cast", mil: "cast, identity", file: "iOS15/elementwise_unary.py",
        says: "x: T = (fp16, fp32, int32, bool); dtype const, one of int32, fp16, fp32, bool (iOS17 adds int8, uint8, int16, uint16)",
        types: ["*": [0: any]])
}

extension PadLowering {
    static let rule = LoweringRule(
        "mil-pad", mil: "pad", file: "iOS15/tensor_operation.py",
        says: "x: T = (fp16, fp32); mode constant, reflect or replicate (reflect and replicate on the last two dims); constant_val const",
        types: ["*": [0: float]])
}

extension ResizeLowering {
    static let rule = LoweringRule(
        "mil-resize", mil: "upsample_nearest_neighbor, resize_bilinear", file: "iOS15/image_resizing.py",
        says: "x: T = (fp16, fp32), at least rank 3; scale factors (nearest) and target sizes (bilinear) const",
        types: ["*": [0: float]], ranks: ["*": 3...5])
}

extension IdentityLowering {
    static let rule = LoweringRule(
        "mil-identity", mil: "identity", file: "iOS15/tensor_operation.py",
        says: "x: any tensor (the docstring lists fp16, fp32, i32, bool)", types: ["*": [0: any]])
}

extension DequantizeLowering {
    static let rule = LoweringRule(
        "mil-dequantize", mil: "constexpr_affine_dequantize (iOS16), constexpr_blockwise_shift_scale (iOS18)",
        file: "iOS16/constexpr_ops.py",
        says: "every input const: quantized data uint8/int8 (int4/uint4 from iOS18), zero point of the data's type, fp16/fp32 scale of rank 0 or 1 (blockwise scales from iOS18)")
}

extension ControlFlowLowering {
    static let rule = LoweringRule(
        "mil-control-flow", mil: "cond (If decided at run time), while_loop (Loop, Scan), squeeze, identity, less, logical_and, add, sub, reshape, expand_dims, gather (Scan's steps), scatter_nd (scan outputs), transpose (scan_output_axes)",
        file: "iOS15/control_flow.py",
        says: "cond: pred a bool scalar, two blocks without inputs returning the same types; while_loop: a condition block returning one bool and a body block returning one value per loop variable, each of its loop variable's type")
}

extension RecurrentLowering {
    static let rule = LoweringRule(
        "mil-recurrent", mil: "lstm, gru, rnn (GRU with linear_before_reset=1 or batch > 1: a while_loop per direction whose body is the cell — gather_nd, linear, sigmoid/tanh, mul, add, sub, scatter_nd —, unrolled for a one-step sequence), split, reverse, stack, expand_dims, transpose, cast",
        file: "iOS15/recurrent.py",
        says: "x: T = (fp32) of rank 3 [s, b, I] (iOS17/recurrent.py adds fp16; below iOS17 mlpkg casts fp16 around the op); weights, bias and peephole const; lstm gates input, forget, output, cell (peepholes input, forget, output); gru gates reset, output, update, the reset applied before the recurrent product; direction forward or reverse (lstm also bidirectional); activations with their default parameters",
        types: ["*": [0: float, 1: float, 2: float, 3: float, 5: float, 6: float, 7: float]], ranks: ["*": 3...3])
}
