/// LayerNorm as exporters decompose it (TorchScript exports before opset 17; ConvNeXt's channel LayerNorm):
/// mean = reduce_mean(x, axes, keep_dims), d = x − mean, var = reduce_mean(d² or d·d, same axes),
/// y = d / sqrt(var + eps), then optionally · gamma and + beta (constants) → layer_norm(x, axes, gamma, beta, eps).
/// MIL's layer_norm takes gamma and beta of exactly the normalized shape: constants that broadcast the same way
/// ([C, 1, 1] for axis 1 of NCHW) are reshaped; other shapes leave the pattern alone.
public enum FuseLayerNorm: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_layer_norm"

    /// Rewrites `program` in place (see the type's description). One walk over the ops, each reduce_mean an anchor.
    public static func run(_ program: MILProgram) {
        let r = MILRewriter(program)
        for m in 0..<r.count where !r.isRemoved(m) {
            let mean = r.op(m)
            if mean.type == "reduce_mean" { fuse(r, at: m, mean) }
        }
        r.finish()
    }

    /// The reduction axes of a keep_dims reduce_mean, non-negative and sorted.
    static func axes(_ r: MILRewriter, _ op: MILOperation, rank: Int) -> [Int]? {
        guard let a = r.constantArgument(op, "axes")?.intValues, case .bools(let k)? = r.constantArgument(op, "keep_dims")?.data,
              k == [true] else { return nil }
        return a.map { $0 < 0 ? $0 + rank : $0 }.sorted()
    }

    /// The normalization part of the pattern, anchored at the first reduce_mean: x, its type, the axes, ε, the ops
    /// up to and including the division (the last one).
    struct Match {
        var x: String
        var type: MILTensorType
        var axes: [Int]
        var epsilon: Float
        var chain: [Int]
        var last: Int
    }

    static func fuse(_ r: MILRewriter, at m: Int, _ mean: MILOperation) {
        guard let match = match(r, at: m, mean) else { return }
        replace(r, match, type: "layer_norm", affine: { affine(r, match, $0) }, axes: true)
    }

    /// Constant `name` as layer_norm's gamma or beta: it must hold exactly the normalized dims once its size-1 dims
    /// are dropped (reshaped to them).
    static func affine(_ r: MILRewriter, _ match: Match, _ name: String) -> MILConst? {
        let normalized = match.axes.map { match.type.shape[$0] }
        guard let value = r.constant(name), value.type.dtype == match.type.dtype, value.type.count == normalized.reduce(1, *),
              value.type.shape.filter({ $0 != 1 }) == normalized.filter({ $0 != 1 }) else { return nil }
        return MILConst(MILTensorType(value.type.dtype, normalized), value.data)
    }

    /// How many of the · gamma and + beta after the match `affine` accepts (0, 1 or 2).
    static func affineCount(_ r: MILRewriter, _ match: Match, affine: (String) -> MILConst?) -> Int {
        let n = r.op(match.last).outputs[0].name
        guard let u = r.soleUser(n), case let mul = r.op(u), mul.type == "mul", r.other(mul, n).flatMap(affine) != nil else { return 0 }
        guard let w = r.soleUser(mul.outputs[0].name), case let shift = r.op(w), shift.type == "add",
              r.other(shift, mul.outputs[0].name).flatMap(affine) != nil else { return 1 }
        return 2
    }

    /// Matches mean, sub, square, mean, add ε, sqrt and the division from the reduce_mean at `m`.
    static func match(_ r: MILRewriter, at m: Int, _ mean: MILOperation) -> Match? {
        guard let x = r.arg(mean, "x"), let xt = r.type(x), xt.dtype.isFloat, let ax = axes(r, mean, rank: xt.rank),
              let s = r.soleUser(mean.outputs[0].name), case let sub = r.op(s), sub.type == "sub",
              r.arg(sub, "x") == x, r.arg(sub, "y") == mean.outputs[0].name else { return nil }
        let d = sub.outputs[0].name
        // d is read by the square (twice when it is d·d) and by the division, by nothing else.
        let dCount = r.useCount(d)
        guard dCount == 2 || dCount == 3 else { return nil }
        var squareIndex: Int? = nil, divIndex: Int? = nil
        for u in r.readers(d) {
            let op = r.op(u)
            if op.type == "pow", r.arg(op, "x") == d, let e = r.arg(op, "y"), r.isScalar(e, 2, tolerance: 0) { squareIndex = u }
            else if op.type == "mul", r.arg(op, "x") == d, r.arg(op, "y") == d { squareIndex = u }
            else if op.type == "real_div", r.arg(op, "x") == d { divIndex = u }
        }
        guard let sq = squareIndex, let dv = divIndex, dCount == (r.op(sq).type == "pow" ? 2 : 3),
              let v = r.soleUser(r.op(sq).outputs[0].name), case let variance = r.op(v), variance.type == "reduce_mean",
              axes(r, variance, rank: xt.rank) == ax,
              let a = r.soleUser(variance.outputs[0].name), case let add = r.op(a), add.type == "add",
              let epsName = r.other(add, variance.outputs[0].name), let epsValue = r.scalar(epsName),
              let q = r.soleUser(add.outputs[0].name), case let root = r.op(q), root.type == "sqrt",
              r.arg(r.op(dv), "y") == root.outputs[0].name, r.useCount(root.outputs[0].name) == 1 else { return nil }
        return Match(x: x, type: xt, axes: ax, epsilon: epsValue, chain: [m, s, sq, v, a, q], last: dv)
    }

    /// Takes the optional · gamma and + beta after the match (constants `affine` accepts, reshaped by it), then
    /// writes op `type` (layer_norm with its axes, or instance_norm) in place of the last op.
    static func replace(_ r: MILRewriter, _ match: Match, type: String, affine: (String) -> MILConst?, axes withAxes: Bool) {
        var chain = match.chain
        var last = match.last
        var gamma: MILConst? = nil, beta: MILConst? = nil
        if let u = r.soleUser(r.op(last).outputs[0].name), case let mul = r.op(u), mul.type == "mul",
           let g = r.other(mul, r.op(last).outputs[0].name).flatMap(affine) {
            gamma = g
            chain.append(last)
            last = u
            if let w = r.soleUser(mul.outputs[0].name), case let shift = r.op(w), shift.type == "add",
               let b = r.other(shift, mul.outputs[0].name).flatMap(affine) {
                beta = b
                chain.append(last)
                last = w
            }
        }
        let final = r.op(last)
        guard final.outputs[0].type == match.type else { return }
        let source = final.source
        var inputs: [(name: String, arguments: [MILArgument])] = [("x", [.variable(match.x)])]
        if withAxes {
            inputs.append(("axes", [.variable(r.insertConst(.ints(match.axes), name: final.name + "_axes", before: last, source: source))]))
        }
        if let gamma { inputs.append(("gamma", [.variable(r.insertConst(gamma, name: final.name + "_gamma", before: last, source: source))])) }
        if let beta { inputs.append(("beta", [.variable(r.insertConst(beta, name: final.name + "_beta", before: last, source: source))])) }
        inputs.append(("epsilon", [.variable(r.insertConst(.float(match.epsilon, match.type.dtype), name: final.name + "_epsilon",
                                                           before: last, source: source))]))
        r.replace(last, with: MILOperation(type: type, name: final.name, inputs: inputs, outputs: final.outputs, source: source))
        for i in chain { r.remove(i) }
    }
}
