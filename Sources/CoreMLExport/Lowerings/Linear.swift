import Ops

/// MatMul → matmul: numpy matmul semantics (rank-1 operands, broadcast batch dims) on both sides.
enum MatMulLowering: OpLowering {
    static let opTypes = ["MatMul"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let a = try v.requireFloat(0), b = try v.type(1), out = try v.outputType()
        guard a.dtype == b.dtype else { throw LoweringRefusal("inputs are \(a.dtype) and \(b.dtype)") }
        guard a.rank >= 1, b.rank >= 1 else { throw LoweringRefusal("MatMul of a scalar") }
        // MIL's matmul takes a rank-1 x (as [1, K]) but needs y of rank ≥ 2 (iOS15/linear.py): a vector y becomes
        // [K, 1] and the added dim is squeezed away after.
        return { e throws(LoweringRefusal) in
            var y = try e.input(1)
            if a.rank == 1, b.rank > 2 {
                // A vector x against batched y: MIL would drop the batch dim, not the promoted one.
                let x = e.op("expand_dims", [("x", .v(try e.input(0))), ("axes", .c(.ints([0])))], output: a.with(shape: [1] + a.shape), suffix: "_row")
                var rowShape = out.shape
                rowShape.insert(1, at: rowShape.count - 1)
                let product = e.op("matmul", [("x", .v(x)), ("y", .v(y)), ("transpose_x", .c(.scalar(false))),
                                              ("transpose_y", .c(.scalar(false)))], output: out.with(shape: rowShape), suffix: "_matmul")
                return [e.op("squeeze", [("x", .v(product)), ("axes", .c(.ints([-2])))], output: out)]
            }
            guard b.rank == 1 else {
                return [e.op("matmul", [("x", .v(try e.input(0))), ("y", .v(y)),
                                        ("transpose_x", .c(.scalar(false))), ("transpose_y", .c(.scalar(false)))], output: out)]
            }
            y = e.op("expand_dims", [("x", .v(y)), ("axes", .c(.ints([1])))], output: b.with(shape: b.shape + [1]), suffix: "_column")
            let product = e.op("matmul", [("x", .v(try e.input(0))), ("y", .v(y)), ("transpose_x", .c(.scalar(false))),
                                          ("transpose_y", .c(.scalar(false)))], output: out.with(shape: out.shape + [1]), suffix: "_matmul")
            return [e.op("squeeze", [("x", .v(product)), ("axes", .c(.ints([-1])))], output: out)]
        }
    }
}

/// Gemm: Y = alpha · A'·B' + beta · C → matmul (transposes as flags), then mul by alpha and add of beta · C where
/// they are not 1. A constant C is scaled by beta at export time.
enum GemmLowering: OpLowering {
    static let opTypes = ["Gemm"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let a = try v.requireFloat(0), b = try v.type(1), out = try v.outputType()
        guard a.rank == 2, b.rank == 2 else { throw LoweringRefusal("Gemm takes 2-D A and B, got ranks \(a.rank) and \(b.rank)") }
        // ONNX binds A, B and C to one type T; MIL's matmul, mul and add need them alike too.
        guard b.dtype == a.dtype else { throw LoweringRefusal("inputs are \(a.dtype) and \(b.dtype)") }
        let transA = v.int("transA", default: 0) != 0, transB = v.int("transB", default: 0) != 0
        let alpha = v.float("alpha", default: 1), beta = v.float("beta", default: 1)
        var cType: MILTensorType? = nil
        if v.has(2) {
            let c = try v.type(2)
            guard c.dtype == a.dtype else { throw LoweringRefusal("C '\(v.node.inputs[2])' is \(c.dtype), A is \(a.dtype)") }
            _ = try broadcastType(c, out)
            cType = c
        }
        let f = a.dtype
        return { e throws(LoweringRefusal) in
            var y = e.op("matmul", [("x", .v(try e.input(0))), ("y", .v(try e.input(1))),
                                    ("transpose_x", .c(.scalar(transA))), ("transpose_y", .c(.scalar(transB)))],
                         output: out, suffix: cType == nil && alpha == 1 ? "" : "_matmul")
            if alpha != 1 {
                y = e.op("mul", [("x", .v(y)), ("y", .c(.float(alpha, f)))], output: out, suffix: cType == nil ? "" : "_alpha")
            }
            guard let cType else { return [y] }
            var bias: MILVar
            if beta != 1, let values = v.values.constant(v.node.inputs[2])?.floats {
                bias = e.builder.const(.floats(values.map { $0 * beta }, f, shape: cType.shape), name: v.node.inputs[2] + "_beta")
            } else {
                bias = try e.input(2)
                if beta != 1 { bias = e.op("mul", [("x", .v(bias)), ("y", .c(.float(beta, f)))], output: cType, suffix: "_beta") }
            }
            return [e.op("add", [("x", .v(y)), ("y", .v(bias))], output: out)]
        }
    }
}

/// Spatial attributes shared by Conv, ConvTranspose and pooling: explicit pads in MIL's [begin0, end0, begin1,
/// end1, …] order, from `pads` ([begins…, ends…] in ONNX) or from auto_pad computed on the static input shape.
struct Window {
    var kernel: [Int]
    var strides: [Int]
    var dilations: [Int]
    var pads: [Int]

    static func resolve(_ v: NodeView, spatial: [Int], kernel: [Int], transposed: Bool = false) throws(LoweringRefusal) -> Window {
        let n = kernel.count
        guard spatial.count == n else { throw LoweringRefusal("kernel rank \(n) does not match the input's \(spatial.count) spatial dims") }
        let strides = v.ints("strides") ?? Array(repeating: 1, count: n)
        let dilations = v.ints("dilations") ?? Array(repeating: 1, count: n)
        guard strides.count == n, dilations.count == n, strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 }) else {
            throw LoweringRefusal("strides \(strides) or dilations \(dilations) do not fit \(n) spatial dims")
        }
        var begins = [Int](repeating: 0, count: n), ends = begins
        let autoPad = v.string("auto_pad", default: "NOTSET")
        switch autoPad {
        case "NOTSET":
            let pads = v.ints("pads") ?? Array(repeating: 0, count: 2 * n)
            guard pads.count == 2 * n, pads.allSatisfy({ $0 >= 0 }) else { throw LoweringRefusal("pads \(pads) do not fit \(n) spatial dims") }
            begins = Array(pads[..<n])
            ends = Array(pads[n...])
        case "VALID":
            break
        case "SAME_UPPER", "SAME_LOWER":
            guard !transposed else { throw LoweringRefusal("ConvTranspose auto_pad \(autoPad) is not lowered; give pads") }
            for i in 0..<n {
                let out = (spatial[i] + strides[i] - 1) / strides[i]
                let total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - spatial[i])
                let small = total / 2, large = total - small
                begins[i] = autoPad == "SAME_UPPER" ? small : large
                ends[i] = autoPad == "SAME_UPPER" ? large : small
            }
        default:
            throw LoweringRefusal("auto_pad '\(autoPad)'")
        }
        var pads: [Int] = []
        for i in 0..<n { pads += [begins[i], ends[i]] }
        return Window(kernel: kernel, strides: strides, dilations: dilations, pads: pads)
    }
}

/// Conv → conv (1-D to 3-D, groups, dilations, explicit pads). The bias must be constant; the weight may be computed
/// at run time (weight normalization, `g · v / ‖v‖`, as Wav2Vec2 exports it) when the conv is not dilated, the condition
/// MIL's conv puts on a non-constant weight (coremltools mil/ops/defs/iOS15/conv.py: "When dilations is not all 1,
/// weight has to be const").
enum ConvLowering: OpLowering {
    static let opTypes = ["Conv"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.requireFloat(0), w = try v.type(1), out = try v.outputType()
        guard (3...5).contains(x.rank) else { throw LoweringRefusal("Conv on rank \(x.rank); MIL conv takes 1-D to 3-D (rank 3 to 5)") }
        guard w.rank == x.rank else { throw LoweringRefusal("weight rank \(w.rank) differs from input rank \(x.rank)") }
        try requireBias(v, channels: w.shape[0])
        if let k = v.ints("kernel_shape"), k != Array(w.shape[2...]) {
            throw LoweringRefusal("kernel_shape \(k) contradicts the weight's spatial dims \(Array(w.shape[2...]))")
        }
        let window = try Window.resolve(v, spatial: Array(x.shape[2...]), kernel: Array(w.shape[2...]))
        if !v.isConstant(1) {
            guard window.dilations.allSatisfy({ $0 == 1 }) else {
                throw LoweringRefusal("weight '\(v.node.inputs[1])' is computed at run time and the conv is dilated \(window.dilations); MIL's conv needs a constant weight then")
            }
            _ = try v.requireFloat(1)
        }
        let groups = v.int("group", default: 1)
        guard groups >= 1, x.shape[1] == w.shape[1] * groups else {
            throw LoweringRefusal("group \(groups) does not fit \(x.shape[1]) input channels and weight \(w.shape)")
        }
        return { e throws(LoweringRefusal) in
            var params: [(String, MILArg)] = [("x", .v(try e.input(0))), ("weight", .v(try e.input(1)))]
            if v.has(2) { params.append(("bias", .v(try e.input(2)))) }
            params += [("strides", .c(.ints(window.strides))), ("pad_type", .c(.scalar("custom"))), ("pad", .c(.ints(window.pads))),
                       ("dilations", .c(.ints(window.dilations))), ("groups", .c(.scalar(Int32(groups))))]
            return [e.op("conv", params, output: out)]
        }
    }

    /// A bias, when given, must be constant and hold one value per output channel (MIL's conv and conv_transpose
    /// check it; a model with another bias reached the verifier before: found by the Core ML fuzz target).
    static func requireBias(_ v: NodeView, channels: Int) throws(LoweringRefusal) {
        guard v.has(2) else { return }
        try v.requireConstant(2, "bias")
        let b = try v.type(2)
        guard b.shape == [channels] else {
            throw LoweringRefusal("bias '\(v.node.inputs[2])' has shape \(b.shape); \(channels) output channels need [\(channels)]")
        }
    }
}

/// ConvTranspose → conv_transpose; output_padding or output_shape become an explicit output_shape.
enum ConvTransposeLowering: OpLowering {
    static let opTypes = ["ConvTranspose"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.requireFloat(0), w = try v.type(1), out = try v.outputType()
        guard (3...5).contains(x.rank), w.rank == x.rank else { throw LoweringRefusal("ConvTranspose on rank \(x.rank)") }
        try v.requireConstant(1, "weight")
        let groups = v.int("group", default: 1)
        guard w.shape[0] == x.shape[1], groups >= 1 else {
            throw LoweringRefusal("weight \(w.shape) in \(groups) group(s) does not fit \(x.shape[1]) input channels")
        }
        try ConvLowering.requireBias(v, channels: w.shape[1] * groups)
        guard v.ints("output_shape") == nil else { throw LoweringRefusal("output_shape attribute is not lowered; give pads") }
        let window = try Window.resolve(v, spatial: Array(x.shape[2...]), kernel: Array(w.shape[2...]), transposed: true)
        let outputPadding = v.ints("output_padding") ?? []
        let explicitShape = outputPadding.contains { $0 != 0 }
        return { e throws(LoweringRefusal) in
            var params: [(String, MILArg)] = [("x", .v(try e.input(0))), ("weight", .v(try e.input(1)))]
            if v.has(2) { params.append(("bias", .v(try e.input(2)))) }
            params += [("pad", .c(.ints(window.pads))), ("pad_type", .c(.scalar("custom")))]
            if explicitShape { params.append(("output_shape", .c(.ints(out.shape)))) }
            params += [("strides", .c(.ints(window.strides))), ("dilations", .c(.ints(window.dilations))),
                       ("groups", .c(.scalar(Int32(groups))))]
            return [e.op("conv_transpose", params, output: out)]
        }
    }
}

/// MaxPool, AveragePool, LpPool (p = 2) → max_pool, avg_pool, l2_pool.
enum PoolLowering: OpLowering {
    static let opTypes = ["MaxPool", "AveragePool", "LpPool"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.requireFloat(0), out = try v.outputType()
        guard (3...5).contains(x.rank) else { throw LoweringRefusal("pooling on rank \(x.rank)") }
        guard let kernel = v.ints("kernel_shape") else { throw LoweringRefusal("kernel_shape is missing") }
        let window = try Window.resolve(v, spatial: Array(x.shape[2...]), kernel: kernel)
        guard window.dilations.allSatisfy({ $0 == 1 }) else { throw LoweringRefusal("dilated pooling has no MIL op") }
        if v.opType == "MaxPool" {
            guard !v.outputUsed(1) else { throw LoweringRefusal("MaxPool's Indices output has no MIL op") }
            guard v.int("storage_order", default: 0) == 0 else { throw LoweringRefusal("storage_order=1") }
        }
        if v.opType == "LpPool" { guard v.int("p", default: 2) == 2 else { throw LoweringRefusal("LpPool with p=\(v.int("p", default: 2)); MIL has l2_pool only") } }
        // ceil_mode exists from the opset shape inference reads it at (MaxPool-7 carrying one computes with floor).
        let ceil = PoolOp.windowAttributes(v.opType, opset: v.opset).ceilMode && v.int("ceil_mode", default: 0) != 0
        let excludePad = v.int("count_include_pad", default: 0) == 0
        var pads = window.pads
        if ceil {
            // ONNX's ceil_mode adds a last window that may start in the end padding (never past it), and drops one
            // that would. MIL's ceil rule differs at that edge, so the size shape inference gave the output is made
            // explicit instead: end padding that MIL's floor rule turns into exactly that size (more for an added
            // window, less for a dropped one). Max pooling ignores padding; an average excluding padding divides by
            // the real elements only.
            for i in 0..<kernel.count {
                let padded = x.shape[2 + i] + window.pads[2 * i] + window.pads[2 * i + 1]
                let floorSize = (padded - kernel[i]) / window.strides[i] + 1, want = out.shape[2 + i]
                guard want != floorSize else { continue }
                guard v.opType == "MaxPool" || (v.opType == "AveragePool" && excludePad) else {
                    throw LoweringRefusal("ceil_mode=1 changes the output size; only MaxPool and AveragePool with count_include_pad=0 are lowered then")
                }
                let end = window.pads[2 * i + 1] + (want - 1) * window.strides[i] + kernel[i] - padded
                guard end >= 0 else {
                    throw LoweringRefusal("ceil_mode=1 with end padding \(window.pads[2 * i + 1]) on spatial axis \(i) drops windows that start in the padding; no MIL padding gives \(want)")
                }
                pads[2 * i + 1] = end
            }
        }
        let op = ["MaxPool": "max_pool", "AveragePool": "avg_pool", "LpPool": "l2_pool"][v.opType]!
        return { e throws(LoweringRefusal) in
            var params: [(String, MILArg)] = [("x", .v(try e.input(0))), ("kernel_sizes", .c(.ints(kernel))),
                                              ("strides", .c(.ints(window.strides))), ("pad_type", .c(.scalar("custom"))),
                                              ("pad", .c(.ints(pads)))]
            if op == "avg_pool" { params.append(("exclude_padding_from_average", .c(.scalar(excludePad)))) }
            if op != "l2_pool" { params.append(("ceil_mode", .c(.scalar(false)))) }
            return [e.op(op, params, output: out)]
        }
    }
}

/// GlobalAveragePool / GlobalMaxPool / GlobalLpPool (p = 2) → a reduction over every spatial axis (any rank ≥ 3).
enum GlobalPoolLowering: OpLowering {
    static let opTypes = ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.requireFloat(0), out = try v.outputType()
        guard x.rank >= 3 else { throw LoweringRefusal("global pooling needs rank ≥ 3") }
        if v.opType == "GlobalLpPool" { guard v.int("p", default: 2) == 2 else { throw LoweringRefusal("GlobalLpPool p≠2") } }
        let op = ["GlobalAveragePool": "reduce_mean", "GlobalMaxPool": "reduce_max", "GlobalLpPool": "reduce_l2_norm"][v.opType]!
        let axes = Array(2..<x.rank)
        return { e throws(LoweringRefusal) in
            [e.op(op, [("x", .v(try e.input(0))), ("axes", .c(.ints(axes))), ("keep_dims", .c(.scalar(true)))], output: out)]
        }
    }
}
