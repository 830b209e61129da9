/// The tanh approximation of GELU, 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))), → gelu(x,
/// mode=TANH_APPROXIMATION) (the modes are those of coremltools' iOS15/activation.py `gelu`). Matched in the orders
/// exporters write it: torch.onnx's decomposition of `gelu(approximate='tanh')` (x³ as x · (x · x)) and Hugging Face's
/// NewGELU (x³ as pow(x, 3)); the cube as pow(x, 3), mul(x, mul(x, x)) or mul(mul(x, x), x); every product and sum
/// with operands in either order, and the final 0.5 · x · (1 + tanh) in any association. Every intermediate has one
/// use. One walk, each tanh an anchor.
public enum FuseGeluTanh: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_gelu_tanh"

    /// √(2/π).
    static let sqrtTwoOverPi: Float = 0.7978845608
    static let cubeFactor: Float = 0.044715

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let r = MILRewriter(program)
        for t in 0..<r.count where !r.isRemoved(t) {
            let tanh = r.op(t)
            guard tanh.type == "tanh", let inner = r.arg(tanh, "x"), let match = matchInner(r, inner, tanhIndex: t) else { continue }
            let t1 = tanh.outputs[0].name
            guard let a = r.soleUser(t1), case let add = r.op(a), add.type == "add", let one = r.other(add, t1),
                  r.isScalar(one, 1, tolerance: 1e-6), let (last, intermediates) = r.halfProduct(x: match.x, a: add.outputs[0].name) else { continue }
            FuseGelu.replaceWithGelu(r, last: last, x: match.x, mode: "TANH_APPROXIMATION", chain: match.chain + [t, a] + intermediates)
        }
        r.finish()
    }

    /// √(2/π) · (x + 0.044715 · x³) ending in `v`, read only by the tanh: x and the ops of the chain.
    static func matchInner(_ r: MILRewriter, _ v: String, tanhIndex: Int) -> (x: String, chain: [Int])? {
        // mul(√(2/π), sum)
        guard r.soleUser(v) == tanhIndex, let (m, scale) = r.producer(v), scale.type == "mul", let (sx, sy) = r.operands(scale) else { return nil }
        let sum: String
        if r.isScalar(sx, sqrtTwoOverPi) { sum = sy } else if r.isScalar(sy, sqrtTwoOverPi) { sum = sx } else { return nil }
        // add(x, 0.044715 · x³), either order
        guard r.soleUser(sum) == m, let (s, add) = r.producer(sum), add.type == "add", let (ax, ay) = r.operands(add) else { return nil }
        for (x, term) in [(ax, ay), (ay, ax)] {
            guard r.soleUser(term) == s, let (k, kmul) = r.producer(term), kmul.type == "mul", let (kx, ky) = r.operands(kmul) else { continue }
            let cube: String
            if r.isScalar(kx, cubeFactor) { cube = ky } else if r.isScalar(ky, cubeFactor) { cube = kx } else { continue }
            guard r.soleUser(cube) == k, let cubeOps = matchCube(r, cube, of: x) else { continue }
            return (x, [m, s, k] + cubeOps)
        }
        return nil
    }

    /// x³ written as pow(x, 3), x · (x · x) or (x · x) · x: the ops.
    static func matchCube(_ r: MILRewriter, _ v: String, of x: String) -> [Int]? {
        guard let (c, cube) = r.producer(v) else { return nil }
        if cube.type == "pow", r.arg(cube, "x") == x, let e = r.arg(cube, "y"), r.isScalar(e, 3, tolerance: 0) { return [c] }
        guard cube.type == "mul", let sq = r.other(cube, x), r.soleUser(sq) == c, let (q, square) = r.producer(sq),
              square.type == "mul", r.arg(square, "x") == x, r.arg(square, "y") == x else { return nil }
        return [c, q]
    }
}
