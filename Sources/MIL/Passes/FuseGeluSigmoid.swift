/// x · sigmoid(1.702 · x) → gelu(x, mode=SIGMOID_APPROXIMATION) (the mode of coremltools' iOS15/activation.py
/// `gelu`; CLIP's QuickGELU writes it this way). Operands in either order; the scaled x and the sigmoid each have one
/// use. One walk, each sigmoid an anchor. (x · sigmoid(x), factor 1, is `fuse_silu`'s.)
public enum FuseGeluSigmoid: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_gelu_sigmoid"

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let r = MILRewriter(program)
        for s in 0..<r.count where !r.isRemoved(s) {
            let sigmoid = r.op(s)
            guard sigmoid.type == "sigmoid", let scaled = r.arg(sigmoid, "x"), r.soleUser(scaled) == s,
                  let (k, scale) = r.producer(scaled), scale.type == "mul", let (kx, ky) = r.operands(scale) else { continue }
            let x: String
            if r.isScalar(ky, 1.702) { x = kx } else if r.isScalar(kx, 1.702) { x = ky } else { continue }
            let g = sigmoid.outputs[0].name
            guard let m = r.soleUser(g), case let mul = r.op(m), mul.type == "mul", r.other(mul, g) == x else { continue }
            FuseGelu.replaceWithGelu(r, last: m, x: x, mode: "SIGMOID_APPROXIMATION", chain: [k, s])
        }
        r.finish()
    }
}
