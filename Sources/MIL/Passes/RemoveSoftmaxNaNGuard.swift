/// The dynamo exporter writes attention's softmax as where(isnan(p), 0, p) with p = softmax(scores) — lowered to
/// select(not_equal(p, p), 0, p) — so that a row whose mask is all −inf gives zeros instead of NaN. When the scores
/// cannot hold a −inf from a mask (they are a matmul, optionally scaled by a constant and shifted by a constant mask
/// whose every element is finite), softmax of a finite row is finite (the row's maximum is subtracted, the sum is at
/// least 1), so the guard returns p itself: the select and the not_equal go, and attention stays in the form the
/// scaled-dot-product-attention and scale fusions take. The two programs differ only where q·kᵀ itself overflowed to
/// ±inf or an input carried NaN (the guarded one writes 0 there, the other NaN) — an activation no program computes
/// correctly either way. A run-time mask (a model input) keeps the guard.
public enum RemoveSoftmaxNaNGuard: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "remove_softmax_nan_guard"

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let r = MILRewriter(program)
        for i in 0..<r.count where !r.isRemoved(i) {
            let select = r.op(i)
            guard select.type == "select", let cond = r.arg(select, "cond"), let a = r.arg(select, "a"), let p = r.arg(select, "b"),
                  r.type(p) == select.outputs[0].type, let zero = r.floatConstant(a)?.1, zero.allSatisfy({ $0 == 0 }),
                  let (n, ne) = r.producer(cond), ne.type == "not_equal", r.arg(ne, "x") == p, r.arg(ne, "y") == p,
                  r.soleUser(cond) == i, let (_, softmax) = r.producer(p), softmax.type == "softmax",
                  let scores = r.arg(softmax, "x"), finiteScores(r, scores) else { continue }
            let out = select.outputs[0].name
            if r.blockOutputs.contains(out) { continue }
            for reader in r.readers(out) { r.redirect(reader, from: out, to: p) }
            r.remove(i)
            r.remove(n)
        }
        r.finish()
    }

    /// Whether `v` is a matmul, a constant multiple of one, or one of those plus a constant with finite elements.
    static func finiteScores(_ r: MILRewriter, _ v: String, depth: Int = 0) -> Bool {
        guard depth < 3, let (_, op) = r.producer(v) else { return false }
        switch op.type {
        case "matmul":
            return true
        case "mul", "real_div", "add", "sub":
            guard let (x, y) = r.operands(op) else { return false }
            let constant: (String) -> Bool = { c in
                guard let values = r.floatConstant(c)?.1 else { return false }
                return values.allSatisfy(\.isFinite) && (op.type != "real_div" || !values.contains(0))
            }
            if constant(y) { return finiteScores(r, x, depth: depth + 1) }
            if op.type != "real_div", op.type != "sub", constant(x) { return finiteScores(r, y, depth: depth + 1) }
            return false
        default:
            return false
        }
    }
}
