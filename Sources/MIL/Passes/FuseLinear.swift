import GraphIR

/// matmul(x, W) with a constant 2-D W, then optionally add(·, b) with a constant bias along the last dim →
/// linear(x, weight, bias) (what coremltools writes for nn.Linear). MIL's linear takes weight [D_out, D_in]: W
/// [D_in, D_out] is transposed once here; with transpose_y W is used as it is (so compressed weights, which are
/// constexpr outputs, fuse too). x has rank 1 to 5: iOS15/linear.py's docstring says rank ≤ 3, but its type inference
/// takes any rank, coremltools' PyTorch frontend (`_create_linear_layer` in frontend/torch/ops.py) emits `linear` for
/// nn.Linear on inputs of any rank (ConvNeXt's rank-4 MLP), and its `fuse_matmul_weight_bias` pass
/// (passes/defs/optimize_linear.py) sets no upper bound. The bias may be [D_out] or [1, …, 1, D_out]. One walk over
/// the ops, each matmul an anchor.
public enum FuseLinear: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_linear"

    /// Weights larger than this stay a matmul when fusing would transpose them: the transposed copy is held in memory
    /// until the package is written (the 1 GiB MLP's 32 MiB layers stay matmul, BERT-base's layers fuse).
    public static let maxTransposedBytes = 8 << 20

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let r = MILRewriter(program)
        for i in 0..<r.count where !r.isRemoved(i) {
            let op = r.op(i)
            if op.type == "matmul" { fuse(r, at: i, op) }
        }
        r.finish()
    }

    /// Fuses the matmul at `index` if it matches.
    static func fuse(_ r: MILRewriter, at index: Int, _ mm: MILOperation) {
        guard let x = r.arg(mm, "x"), let w = r.arg(mm, "y"), let xt = r.type(x), let wt = r.type(w), xt.dtype.isFloat,
              (1...MILVerifier.maxRank).contains(xt.rank), wt.rank == 2, !r.flag(mm, "transpose_x"),
              let (_, weightOp) = r.producer(w) else { return }
        let transposeY = r.flag(mm, "transpose_y")
        var weight: MILConst? = nil
        var weightConstexpr: MILOperation? = nil
        if !transposeY {
            let bytes = wt.count * (wt.dtype == .fp32 ? 4 : 2)
            guard bytes <= maxTransposedBytes else { return }
            if weightOp.type == "const", let value = weightOp.value, let t = transposed(value) {
                weight = t
            } else if let t = transposedConstexpr(weightOp, name: r.fresh(weightOp.name + "_transposed")) {
                weightConstexpr = t
            } else {
                return
            }
        } else {
            guard weightOp.type == "const" || weightOp.type.hasPrefix("constexpr_") else { return }
        }
        let out = mm.outputs[0]
        let dOut = transposeY ? wt.shape[0] : wt.shape[1]
        // An add of a constant bias along the last dim, when the matmul's only use is that add.
        var bias: MILConst? = nil
        var target = index
        if let a = r.soleUser(out.name), case let add = r.op(a), add.type == "add", let other = r.other(add, out.name),
           add.outputs[0].type == out.type, let b = r.constant(other), b.type.dtype == out.type.dtype, b.type.count == dOut,
           b.type.shape.last == dOut {
            bias = MILConst(MILTensorType(b.type.dtype, [dOut]), b.data)
            target = a
        }
        let final = r.op(target)
        var inputs: [(name: String, arguments: [MILArgument])] = [("x", [.variable(x)])]
        if let weight {
            inputs.append(("weight", [.variable(r.insertConst(weight, name: mm.name + "_weight", before: target, source: mm.source))]))
        } else if let weightConstexpr {
            r.insert(weightConstexpr, before: target)
            inputs.append(("weight", [.variable(weightConstexpr.outputs[0].name)]))
        } else {
            inputs.append(("weight", [.variable(w)]))
        }
        if let bias {
            inputs.append(("bias", [.variable(r.insertConst(bias, name: mm.name + "_bias", before: target, source: mm.source))]))
        }
        r.replace(target, with: MILOperation(type: "linear", name: final.name, inputs: inputs, outputs: final.outputs, source: final.source))
        if target != index { r.remove(index) }
    }

    /// A 2-D constexpr weight with 8-bit data, rebuilt transposed ([K, N] → [N, K]): the stored integers are
    /// permuted (bit for bit), per-axis scales and zero points follow their axis, blockwise scales and offsets are
    /// transposed with the data. Other forms (sub-byte data, tables) are left alone.
    static func transposedConstexpr(_ op: MILOperation, name: String) -> MILOperation? {
        guard op.outputs.count == 1, op.outputs[0].type.rank == 2 else { return nil }
        func value(_ param: String) -> MILConst? {
            guard let a = op.arguments(param), a.count == 1, case .value(let c) = a[0] else { return nil }
            return c
        }
        var inputs = op.inputs
        func replace(_ param: String, _ c: MILConst) {
            if let k = inputs.firstIndex(where: { $0.name == param }) { inputs[k].arguments = [.value(c)] }
        }
        switch op.type {
        case "constexpr_affine_dequantize":
            guard let data = value("quantized_data"), [.int8, .uint8].contains(data.type.dtype), let t = transposedBytes(data, width: 1),
                  let axis = value("axis")?.intValues?.first else { return nil }
            replace("quantized_data", t)
            replace("axis", .scalar(Int32(axis < 0 ? axis + 2 : axis) == 0 ? 1 : 0))
        case "constexpr_blockwise_shift_scale":
            guard let data = value("data"), [.int8, .uint8].contains(data.type.dtype), let t = transposedBytes(data, width: 1),
                  let scale = value("scale"), let ts = transposed(scale) ?? transposedBytes(scale, width: scale.type.dtype == .fp16 ? 2 : 4) else { return nil }
            replace("data", t)
            replace("scale", ts)
            if let offset = value("offset") {
                guard let to = transposedBytes(offset, width: offset.type.dtype.isFloat ? (offset.type.dtype == .fp16 ? 2 : 4) : 1) else { return nil }
                replace("offset", to)
            }
        default:
            return nil
        }
        let out = op.outputs[0]
        return MILOperation(type: op.type, name: name, inputs: inputs,
                            outputs: [MILVar(name: name, type: out.type.with(shape: out.type.shape.reversed()))], source: op.source)
    }

    /// A 2-D constant's packed bytes (elements `width` bytes wide) transposed.
    static func transposedBytes(_ c: MILConst, width: Int) -> MILConst? {
        guard c.type.rank == 2, case .bytes(let view) = c.data, view.count == c.type.count * width else { return nil }
        let rows = c.type.shape[0], cols = c.type.shape[1]
        let out = OwnedBuffer(uninitializedCount: rows * cols * width)
        let dst = out.mutableBytes.baseAddress!, src = view.bytes.baseAddress!
        for r in 0..<rows {
            for k in 0..<cols { (dst + (k * rows + r) * width).copyMemory(from: src + (r * cols + k) * width, byteCount: width) }
        }
        return MILConst(MILTensorType(c.type.dtype, [cols, rows]), .bytes(out.view))
    }

    /// A 2-D float constant transposed ([K, N] → [N, K]).
    static func transposed(_ c: MILConst) -> MILConst? {
        guard c.type.rank == 2, c.type.dtype.isFloat else { return nil }
        let rows = c.type.shape[0], cols = c.type.shape[1]
        let size = c.type.dtype == .fp16 ? 2 : 4
        let source: ByteView
        switch c.data {
        case .bytes(let view): source = view
        case .floats(let values): source = LittleEndian.bytes(of: values)
        default: return nil
        }
        guard source.count == rows * cols * size else { return nil }
        let out = OwnedBuffer(uninitializedCount: rows * cols * size)
        let dst = out.mutableBytes.baseAddress!
        let src = source.bytes.baseAddress!
        for r in 0..<rows {
            for k in 0..<cols {
                (dst + (k * rows + r) * size).copyMemory(from: src + (r * cols + k) * size, byteCount: size)
            }
        }
        return MILConst(MILTensorType(c.type.dtype, [cols, rows]), .bytes(out.view))
    }
}
