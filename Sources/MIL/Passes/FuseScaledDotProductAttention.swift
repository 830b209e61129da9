/// Attention written out — matmul(q, k, transpose_y) → mul or real_div by a scalar → optionally add(·, mask) →
/// softmax over the last axis → matmul(·, v) — becomes scaled_dot_product_attention(q, k, v, mask) on iOS18 targets
/// (the op is iOS18's; other targets are left alone). The op's scale is fixed to 1/√E (iOS18/transformers.py: 
/// `np.matmul(query, key.swapaxes(-2, -1)) / np.sqrt(query.shape[-1])`): when the program's scale is another value
/// (or missing), q is multiplied by scale · √E first, a mul that `fuse_matmul_scale` can then fold into the query's
/// projection. q, k and v have the same rank (≥ 3) and batch dims, as the op requires; the mask is a float tensor of
/// the scores' type whose last dim is the key's sequence. Every intermediate has one use. One walk, each softmax an
/// anchor. Runs before `fuse_matmul_scale`, which would otherwise move the scale away from the scores.
public enum FuseScaledDotProductAttention: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_scaled_dot_product_attention"

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        guard program.target >= .iOS18 else { return }
        let r = MILRewriter(program)
        for i in 0..<r.count where !r.isRemoved(i) {
            let softmax = r.op(i)
            if softmax.type == "softmax" { fuse(r, at: i, softmax) }
        }
        r.finish()
    }

    static func fuse(_ r: MILRewriter, at i: Int, _ softmax: MILOperation) {
        guard let scores = r.arg(softmax, "x"), let st = r.type(scores), st.rank >= 3, st.dtype.isFloat else { return }
        let axis = r.constantArgument(softmax, "axis")?.intValues?.first ?? -1
        guard axis == -1 || axis == st.rank - 1 else { return }
        var chain: [Int] = [i]
        // Optional mask.
        var current = scores
        var reader = i
        var mask: String? = nil
        if let (a, add) = r.producer(current), add.type == "add", r.soleUser(current) == reader, let (ax, ay) = r.operands(add) {
            // The scores operand is the one coming from the scaled matmul; the other one is the mask.
            for (s, m) in [(ax, ay), (ay, ax)] where isScaledScores(r, s) {
                guard let mt = r.type(m), mt.dtype == st.dtype, mt.rank >= 1, mt.rank <= st.rank, mt.shape.last == st.shape.last,
                      (try? Shapes.broadcast(mt.shape, st.shape)) == st.shape else { continue }
                mask = m
                current = s
                chain.append(a)
                reader = a
                break
            }
            if mask == nil { return }
        }
        // Optional scale.
        var scale: Float = 1
        if let (s, op) = r.producer(current), op.type == "mul" || op.type == "real_div", r.soleUser(current) == reader,
           let (x, y) = r.operands(op) {
            if op.type == "mul", let c = r.scalar(y) { scale = c; current = x }
            else if op.type == "mul", let c = r.scalar(x) { scale = c; current = y }
            else if op.type == "real_div", let c = r.scalar(y), c != 0 { scale = 1 / c; current = x }
            else { return }
            chain.append(s)
            reader = s
        }
        guard r.soleUser(current) == reader, let (m, qk) = r.producer(current), qk.type == "matmul", !r.flag(qk, "transpose_x"),
              let q = r.arg(qk, "x"), var k = r.arg(qk, "y"), let qt = r.type(q), var kt = r.type(k) else { return }
        // Without transpose_y the key arrives transposed: a transpose read only here (merged with the heads'
        // transpose by `merge_layout_chains`) is changed to give the key itself, [B, *, S, E].
        var keyTranspose: (index: Int, op: MILOperation, perm: [Int], type: MILTensorType)? = nil
        if !r.flag(qk, "transpose_y") {
            guard r.soleUser(k) == m, let (ti, tr) = r.producer(k), tr.type == "transpose", let src = r.arg(tr, "x"),
                  let srcType = r.type(src), var perm = r.constantArgument(tr, "perm")?.intValues, perm.count == srcType.rank,
                  perm.count >= 2 else { return }
            perm = perm.map { $0 < 0 ? $0 + srcType.rank : $0 }
            perm.swapAt(perm.count - 2, perm.count - 1)
            kt = srcType.with(shape: perm.map { srcType.shape[$0] })
            keyTranspose = (ti, tr, perm, kt)
        }
        guard qt.rank == st.rank, kt.rank == st.rank, qt.shape.dropLast(2) == kt.shape.dropLast(2), qt.dtype == st.dtype,
              qt.shape.last == kt.shape.last else { return }
        chain.append(m)
        // softmax → matmul(·, v)
        let p = softmax.outputs[0].name
        guard let f = r.soleUser(p), case let pv = r.op(f), pv.type == "matmul", r.arg(pv, "x") == p, !r.flag(pv, "transpose_x"),
              !r.flag(pv, "transpose_y"), let v = r.arg(pv, "y"), let vt = r.type(v), vt.rank == qt.rank,
              vt.shape.dropLast(2) == qt.shape.dropLast(2), vt.shape[vt.rank - 2] == kt.shape[kt.rank - 2] else { return }
        let e = Float(qt.shape[qt.rank - 1])
        let factor = scale * e.squareRoot()
        var query = q
        if abs(factor - 1) > 1e-4 {
            guard factor.isFinite, factor != 0 else { return }
            let c = r.insertConst(.float(factor, qt.dtype), name: pv.name + "_query_scale", before: f, source: pv.source)
            query = r.fresh(pv.name + "_query")
            r.insert(MILOperation(type: "mul", name: query, inputs: [("x", [.variable(q)]), ("y", [.variable(c)])],
                                  outputs: [MILVar(name: query, type: qt)], source: pv.source), before: f)
        }
        if let (ti, tr, perm, type) = keyTranspose {
            if perm == Array(0..<perm.count), let src = r.arg(tr, "x") {
                k = src
                r.remove(ti)
            } else {
                let permName = r.insertConst(.ints(perm), name: tr.name + "_perm", before: ti, source: tr.source)
                var op = tr
                if let j = op.inputs.firstIndex(where: { $0.name == "perm" }) { op.inputs[j].arguments = [.variable(permName)] }
                op.outputs[0].type = type
                r.replace(ti, with: op)
            }
        }
        var inputs: [(name: String, arguments: [MILArgument])] = [("query", [.variable(query)]), ("key", [.variable(k)]), ("value", [.variable(v)])]
        if let mask { inputs.append(("attn_mask", [.variable(mask)])) }
        r.replace(f, with: MILOperation(type: "scaled_dot_product_attention", name: pv.name, inputs: inputs, outputs: pv.outputs, source: pv.source))
        for c in chain { r.remove(c) }
    }

    /// Whether `v` is a matmul's output or a scalar multiple of one (the scores side of the mask's add).
    static func isScaledScores(_ r: MILRewriter, _ v: String) -> Bool {
        guard let (_, op) = r.producer(v) else { return false }
        if op.type == "matmul" { return true }
        guard op.type == "mul" || op.type == "real_div", let (x, y) = r.operands(op) else { return false }
        return [x, y].contains { r.producer($0)?.op.type == "matmul" } && (r.scalar(x) != nil || r.scalar(y) != nil)
    }
}
