/// A multiplication (or division) by a one-element constant moves into a constant weight upstream and disappears:
/// mul(linear(x, W, b), s) → linear(x, s·W, s·b), mul(matmul(x, W), s) → matmul(x, s·W) (coremltools' torch
/// frontend writes the scaled attention this way once its `fuse_matmul_weight_bias` and const folding run). The
/// scale passes through single-use reshape, transpose, squeeze and expand_dims (a scalar commutes with them) and
/// through a matmul of two variables into either operand, so attention's q·kᵀ / √d lands in the query (or key)
/// projection: ViT/DeiT/BERT exports write `matmul(q, k) / √d`, or `q · √s` and `k · √s`. The weight must be a plain
/// fp32 `const` read only there (a compressed or fp16 weight — the package's encoding, kept bit for bit — keeps its
/// mul); every op on the way has one use. One walk, each
/// scalar mul or real_div an anchor.
public enum FuseMatmulScale: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_matmul_scale"

    static let layout: Set<String> = ["reshape", "transpose", "squeeze", "expand_dims"]

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let r = MILRewriter(program)
        for i in 0..<r.count where !r.isRemoved(i) {
            let op = r.op(i)
            guard op.type == "mul" || op.type == "real_div", let (x, y) = r.operands(op), op.outputs.count == 1,
                  !r.blockOutputs.contains(op.outputs[0].name) else { continue }
            var candidates: [(value: String, scale: Float)] = []
            if op.type == "mul" {
                if let s = r.scalar(y) { candidates.append((x, s)) }
                if let s = r.scalar(x) { candidates.append((y, s)) }
            } else if let s = r.scalar(y), s != 0 {
                candidates.append((x, 1 / s))
            }
            for (value, scale) in candidates where scale.isFinite && r.type(value) == op.outputs[0].type {
                guard let target = landing(r, value, reader: i, depth: 0) else { continue }
                guard fold(r, at: target, scale: scale) else { continue }
                let out = op.outputs[0].name
                for reader in r.readers(out) { r.redirect(reader, from: out, to: value) }
                r.remove(i)
                break
            }
        }
        r.finish()
    }

    /// The op whose constant weight can take a scale applied to `v` (read only by op `reader`).
    static func landing(_ r: MILRewriter, _ v: String, reader: Int, depth: Int) -> Int? {
        guard depth < 16, r.soleUser(v) == reader, let (p, op) = r.producer(v) else { return nil }
        if layout.contains(op.type), let x = r.arg(op, "x") { return landing(r, x, reader: p, depth: depth + 1) }
        if op.type == "linear", let w = r.arg(op, "weight"), plainWeight(r, w) { return p }
        if op.type == "matmul", let x = r.arg(op, "x"), let y = r.arg(op, "y") {
            if plainWeight(r, y) || plainWeight(r, x) { return p }
            return landing(r, x, reader: p, depth: depth + 1) ?? (x == y ? nil : landing(r, y, reader: p, depth: depth + 1))
        }
        return nil
    }

    /// A plain fp32 const read by one op (an fp16 weight is the package's fp16 encoding, written bit for bit).
    static func plainWeight(_ r: MILRewriter, _ v: String) -> Bool {
        guard r.useCount(v) == 1, let c = r.constant(v) else { return false }
        return c.type.dtype == .fp32 && c.type.count <= 1 << 20
    }

    /// Multiplies the constant weight (and bias) of op `index` by `scale`.
    static func fold(_ r: MILRewriter, at index: Int, scale: Float) -> Bool {
        var op = r.op(index)
        let params = op.type == "linear" ? ["weight", "bias"] : (plainWeight(r, r.arg(op, "y") ?? "") ? ["y"] : ["x"])
        for p in params {
            guard let v = r.arg(op, p) else { continue }
            guard let (c, values) = r.floatConstant(v) else { return false }
            let scaled = MILConst.floats(values.map { $0 * scale }, c.type.dtype, shape: c.type.shape)
            let name = r.insertConst(scaled, name: v + "_scaled", before: index, source: op.source)
            if let k = op.inputs.firstIndex(where: { $0.name == p }) { op.inputs[k].arguments = [.variable(name)] }
        }
        r.replace(index, with: op)
        return true
    }
}
