/// The erf form of GELU, 0.5 · x · (1 + erf(x / √2)), as exporters decompose it (BERT, ViT, ConvNeXt), →
/// gelu(x, mode=EXACT). Matched: erf of real_div(x, √2) or mul(x, 1/√2); add of 1; then 0.5 · x · (1 + erf) in any
/// association (`MILRewriter.halfProduct`), operands in either order. Every intermediate has one use. One walk over
/// the ops, each erf an anchor.
public enum FuseGelu: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_gelu"

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let r = MILRewriter(program)
        for e in 0..<r.count where !r.isRemoved(e) {
            let erf = r.op(e)
            guard erf.type == "erf", let scaledName = r.arg(erf, "x"), r.soleUser(scaledName) == e,
                  let (s, scaled) = r.producer(scaledName), let (sx, sy) = r.operands(scaled) else { continue }
            let x: String
            if scaled.type == "real_div", r.isScalar(sy, 1.41421356) { x = sx }
            else if scaled.type == "mul", r.isScalar(sy, 0.70710678) { x = sx }
            else if scaled.type == "mul", r.isScalar(sx, 0.70710678) { x = sy }
            else { continue }
            let e1 = erf.outputs[0].name
            guard let a = r.soleUser(e1), case let add = r.op(a), add.type == "add", let one = r.other(add, e1),
                  r.isScalar(one, 1, tolerance: 1e-6), let (last, intermediates) = r.halfProduct(x: x, a: add.outputs[0].name) else { continue }
            replaceWithGelu(r, last: last, x: x, mode: "EXACT", chain: [s, e, a] + intermediates)
        }
        r.finish()
    }

    /// Op `last` becomes gelu(x, mode) (keeping its output) and the ops of `chain` go.
    static func replaceWithGelu(_ r: MILRewriter, last: Int, x: String, mode: String, chain: [Int]) {
        let final = r.op(last)
        let modeName = r.insertConst(.scalar(mode), name: final.name + "_mode", before: last, source: final.source)
        r.replace(last, with: MILOperation(type: "gelu", name: final.name, inputs: [("x", [.variable(x)]), ("mode", [.variable(modeName)])],
                                           outputs: final.outputs, source: final.source))
        for i in chain { r.remove(i) }
    }
}
