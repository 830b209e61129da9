/// Per-channel affine ops after a `conv`, `conv_transpose` or `linear` fold into its weight and bias (coremltools'
/// `fuse_conv_bias`, `fuse_conv_scale`, `fuse_conv_batchnorm` and `fuse_linear_bias` do the same): add or sub of a
/// constant, mul or real_div by a constant, and batch_norm with constant statistics, in any sequence. A constant
/// qualifies when it broadcasts along the channel axis only (axis 1 for convolutions: [C, 1, 1], [1, C, 1, 1] or one
/// value; the last axis for linear: [C] or [1, 1, C]) and the result keeps the op's type. Adding changes the bias
/// only, so it folds over compressed (constexpr) and fp16 weights too; scaling rewrites the weight and needs a plain
/// fp32 `const` weight (a compressed weight keeps its mul: rescaling would change the stored integers; an fp16 weight
/// is the package's fp16 encoding, kept bit for bit). Every intermediate has one use. One walk, each convolution or linear an anchor.
public enum FuseConvBiasScale: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_conv_bias_scale"

    static let anchors: Set<String> = ["conv", "conv_transpose", "linear"]

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let r = MILRewriter(program)
        for i in 0..<r.count where !r.isRemoved(i) {
            let anchor = r.op(i)
            guard anchors.contains(anchor.type), anchor.outputs.count == 1 else { continue }
            fuse(r, at: i, anchor)
        }
        r.finish()
    }

    static func fuse(_ r: MILRewriter, at index: Int, _ anchor: MILOperation) {
        let out = anchor.outputs[0].type
        guard out.dtype.isFloat, out.rank >= 1, let w = r.arg(anchor, "weight"), let wt = r.type(w) else { return }
        let axis = anchor.type == "linear" ? out.rank - 1 : 1
        guard axis < out.rank else { return }
        let channels = out.shape[axis]
        // Scaling rewrites the weight: a plain fp32 constant only. An fp16 weight is the package's fp16 encoding,
        // written to weight.bin bit for bit; rescaling it would round a second time.
        // (Checked from the type here; the values are decoded only when a scale is folded.)
        let scalable = r.constant(w).map { $0.type.dtype == .fp32 && $0.type.count <= 1 << 20 } ?? false
        var scale = [Float](repeating: 1, count: channels), shift = [Float](repeating: 0, count: channels)
        var current = anchor.outputs[0].name
        var absorbed: [Int] = []
        var last = index
        while let u = r.soleUser(current) {
            let op = r.op(u)
            guard op.outputs.count == 1, op.outputs[0].type == out else { break }
            var s: [Float]? = nil, b: [Float]? = nil
            switch op.type {
            case "add":
                b = r.other(op, current).flatMap { channelValues(r, $0, out, axis: axis) }
            case "sub" where r.arg(op, "x") == current:
                b = r.arg(op, "y").flatMap { channelValues(r, $0, out, axis: axis) }.map { $0.map { -$0 } }
            case "mul":
                s = r.other(op, current).flatMap { channelValues(r, $0, out, axis: axis) }
            case "real_div" where r.arg(op, "x") == current:
                if let d = r.arg(op, "y").flatMap({ channelValues(r, $0, out, axis: axis) }), !d.contains(0) { s = d.map { 1 / $0 } }
            case "batch_norm" where axis == 1 && r.arg(op, "x") == current:
                if let (bs, bb) = batchNorm(r, op, channels: channels) { s = bs; b = bb }
            default:
                break
            }
            if let s {
                guard scalable, s.allSatisfy(\.isFinite) else { break }
                for c in 0..<channels { scale[c] *= s[c]; shift[c] *= s[c] }
            }
            if let b { for c in 0..<channels { shift[c] += b[c] } }
            guard s != nil || b != nil else { break }
            absorbed.append(u)
            last = u
            current = op.outputs[0].name
        }
        guard !absorbed.isEmpty else { return }
        var bias = [Float](repeating: 0, count: channels)
        if let bn = r.arg(anchor, "bias") {
            guard let (_, values) = r.floatConstant(bn), values.count == channels else { return }
            bias = values
        }
        let final = r.op(last)
        var inputs = anchor.inputs
        func set(_ param: String, _ name: String) {
            if let k = inputs.firstIndex(where: { $0.name == param }) { inputs[k].arguments = [.variable(name)] }
            else { inputs.append((param, [.variable(name)])) }
        }
        let needsScale = scale.contains { $0 != 1 }
        let weightValues = needsScale ? r.floatConstant(w) : nil
        if needsScale && weightValues == nil { return }
        if let (wc, values) = weightValues {
            let scaled = scaledWeight(values, shape: wt.shape, scale: scale, transposed: anchor.type == "conv_transpose",
                                      groups: r.constantArgument(anchor, "groups")?.intValues?.first ?? 1)
            set("weight", r.insertConst(.floats(scaled, wc.type.dtype, shape: wc.type.shape), name: final.name + "_weight", before: last,
                                        source: final.source))
        }
        for c in 0..<channels { bias[c] = bias[c] * scale[c] + shift[c] }
        set("bias", r.insertConst(.floats(bias, out.dtype, shape: [channels]), name: final.name + "_bias", before: last, source: final.source))
        r.replace(last, with: MILOperation(type: anchor.type, name: final.name, inputs: inputs, outputs: final.outputs, source: final.source))
        r.remove(index)
        for u in absorbed where u != last { r.remove(u) }
    }

    /// The per-channel values of constant `v` when it broadcasts along `axis` of `out` only (one value: every channel).
    static func channelValues(_ r: MILRewriter, _ v: String, _ out: MILTensorType, axis: Int) -> [Float]? {
        guard let (c, values) = r.floatConstant(v), c.type.dtype == out.dtype, c.type.rank <= out.rank else { return nil }
        let channels = out.shape[axis]
        if values.count == 1 { return values.allSatisfy(\.isFinite) ? Array(repeating: values[0], count: channels) : nil }
        let offset = out.rank - c.type.rank
        for (j, d) in c.type.shape.enumerated() where d != 1 {
            guard j + offset == axis, d == channels else { return nil }
        }
        guard values.count == channels, values.allSatisfy(\.isFinite) else { return nil }
        return values
    }

    /// batch_norm's y = (x − mean) · gamma / √(variance + ε) + beta as a scale and a shift per channel.
    static func batchNorm(_ r: MILRewriter, _ op: MILOperation, channels: Int) -> ([Float], [Float])? {
        func vector(_ p: String, _ fallback: Float) -> [Float]? {
            guard let v = r.arg(op, p) else { return Array(repeating: fallback, count: channels) }
            guard let (_, values) = r.floatConstant(v), values.count == channels else { return nil }
            return values
        }
        guard let mean = vector("mean", 0), let variance = vector("variance", 1), let gamma = vector("gamma", 1),
              let beta = vector("beta", 0) else { return nil }
        var epsilon: Float = 1e-5
        if let e = r.arg(op, "epsilon") {
            guard let value = r.scalar(e) else { return nil }
            epsilon = value
        }
        var s = [Float](repeating: 1, count: channels), b = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            s[c] = gamma[c] / (variance[c] + epsilon).squareRoot()
            b[c] = beta[c] - mean[c] * s[c]
        }
        return (s, b)
    }

    /// The weight with each output channel's elements multiplied by its scale. conv and linear weights hold output
    /// channels on axis 0; conv_transpose's [C_in, C_out / groups, k…] holds them on axis 1, per group.
    static func scaledWeight(_ values: [Float], shape: [Int], scale: [Float], transposed: Bool, groups: Int) -> [Float] {
        var out = values
        if !transposed {
            let block = values.count / scale.count
            for c in scale.indices { for k in 0..<block { out[c * block + k] *= scale[c] } }
            return out
        }
        let cin = shape[0], perGroupOut = shape[1], inner = shape.dropFirst(2).reduce(1, *)
        let cinPerGroup = max(1, cin / max(1, groups))
        for row in 0..<cin {
            let g = row / cinPerGroup
            for j in 0..<perGroupOut {
                let s = scale[g * perGroupOut + j]
                let base = (row * perGroupOut + j) * inner
                for k in 0..<inner { out[base + k] *= s }
            }
        }
        return out
    }
}
