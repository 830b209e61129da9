/// LayerNorm as exporters decompose it (TorchScript exports before opset 17; ConvNeXt's channel LayerNorm):
/// mean = reduce_mean(x, axes, keep_dims), d = x − mean, var = reduce_mean(d² or d·d, same axes),
/// y = d / sqrt(var + eps), then optionally · gamma and + beta (constants) → layer_norm(x, axes, gamma, beta, eps).
/// MIL's layer_norm takes gamma and beta of exactly the normalized shape: constants that broadcast the same way
/// ([C, 1, 1] for axis 1 of NCHW) are reshaped; other shapes leave the pattern alone.
public enum FuseLayerNorm: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_layer_norm"

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        while fuseOne(program) {}
    }

    static func fuseOne(_ program: MILProgram) -> Bool {
        let producers = program.producers()
        let uses = program.uses()
        let constants = program.constants()
        let types = program.types()
        let outputs = Set(program.outputs)
        func count(_ v: String) -> Int { (uses[v]?.count ?? 0) + (outputs.contains(v) ? 1 : 0) }
        func only(_ v: String) -> Int? { count(v) == 1 ? uses[v]?.first : nil }
        func arg(_ op: MILOperation, _ p: String) -> String? { op.arguments(p)?.first?.variableName }
        func other(_ op: MILOperation, _ v: String) -> String? {
            guard let x = arg(op, "x"), let y = arg(op, "y") else { return nil }
            return x == v ? y : (y == v ? x : nil)
        }
        func axes(_ op: MILOperation, rank: Int) -> [Int]? {
            guard let n = arg(op, "axes"), let a = constants[n]?.intValues, let keep = arg(op, "keep_dims"),
                  case .bools(let k)? = constants[keep]?.data, k == [true] else { return nil }
            return a.map { $0 < 0 ? $0 + rank : $0 }.sorted()
        }
        for (m, mean) in program.operations.enumerated() where mean.type == "reduce_mean" {
            guard let x = arg(mean, "x"), let xt = types[x], xt.dtype.isFloat, let ax = axes(mean, rank: xt.rank),
                  let s = only(mean.outputs[0].name), program.operations[s].type == "sub",
                  arg(program.operations[s], "x") == x, arg(program.operations[s], "y") == mean.outputs[0].name else { continue }
            let sub = program.operations[s], d = sub.outputs[0].name
            // d is read by the square (twice when it is d·d) and by the division, by nothing else.
            guard count(d) == 2 || count(d) == 3, let dUses = uses[d] else { continue }
            // d² (pow 2 or mul d·d) and the division by the deviation.
            var squareIndex: Int? = nil, divIndex: Int? = nil
            for u in dUses {
                let op = program.operations[u]
                if op.type == "pow", arg(op, "x") == d, let e = arg(op, "y"), PassSupport.isScalar(constants[e], 2) { squareIndex = u }
                else if op.type == "mul", arg(op, "x") == d, arg(op, "y") == d { squareIndex = u }
                else if op.type == "real_div", arg(op, "x") == d { divIndex = u }
            }
            if let sq = squareIndex, program.operations[sq].type == "pow", count(d) != 2 { continue }
            if let sq = squareIndex, program.operations[sq].type == "mul", count(d) != 3 { continue }
            guard let sq = squareIndex, let dv = divIndex, let v = only(program.operations[sq].outputs[0].name),
                  program.operations[v].type == "reduce_mean", axes(program.operations[v], rank: xt.rank) == ax,
                  let a = only(program.operations[v].outputs[0].name), program.operations[a].type == "add",
                  let epsName = other(program.operations[a], program.operations[v].outputs[0].name),
                  let eps = constants[epsName], eps.type.count == 1, let epsValue = eps.floatValues?.first,
                  let r = only(program.operations[a].outputs[0].name), program.operations[r].type == "sqrt",
                  arg(program.operations[dv], "y") == program.operations[r].outputs[0].name,
                  count(program.operations[r].outputs[0].name) == 1 else { continue }
            let normalized = ax.map { xt.shape[$0] }
            // Optional affine: · gamma, + beta (constants that broadcast like the normalized dims).
            func affine(_ value: MILConst, axes ax: [Int]) -> MILConst? {
                // The constant must hold exactly the normalized dims once its size-1 dims are dropped.
                guard value.type.count == normalized.reduce(1, *), value.type.shape.filter({ $0 != 1 }) == normalized.filter({ $0 != 1 }) else { return nil }
                return MILConst(MILTensorType(value.type.dtype, normalized), value.data)
            }
            var chain: Set<Int> = [m, s, sq, v, a, r]
            var last = dv
            var gamma: MILConst? = nil, beta: MILConst? = nil
            if let u = only(program.operations[last].outputs[0].name), program.operations[u].type == "mul",
               let gName = other(program.operations[u], program.operations[last].outputs[0].name), let g = constants[gName],
               g.type.dtype == xt.dtype, let gg = affine(g, axes: ax) {
                gamma = gg
                chain.insert(last)
                last = u
                if let w = only(program.operations[last].outputs[0].name), program.operations[w].type == "add",
                   let bName = other(program.operations[w], program.operations[last].outputs[0].name), let bv = constants[bName],
                   bv.type.dtype == xt.dtype, let bb = affine(bv, axes: ax) {
                    beta = bb
                    chain.insert(last)
                    last = w
                }
            }
            guard program.operations[last].outputs[0].type == xt else { continue }
            let final = program.operations[last]
            let source = final.source
            var consts: [MILOperation] = []
            func constOp(_ base: String, _ c: MILConst) -> String {
                let n = program.unusedName(base)
                consts.append(MILOperation(type: "const", name: n, inputs: [], outputs: [MILVar(name: n, type: c.type)], value: c, source: source))
                return n
            }
            var inputs: [(name: String, arguments: [MILArgument])] = [("x", [.variable(x)]), ("axes", [.variable(constOp(final.name + "_axes", .ints(ax)))])]
            if let gamma { inputs.append(("gamma", [.variable(constOp(final.name + "_gamma", gamma))])) }
            if let beta { inputs.append(("beta", [.variable(constOp(final.name + "_beta", beta))])) }
            inputs.append(("epsilon", [.variable(constOp(final.name + "_epsilon", .float(epsValue, xt.dtype)))]))
            program.operations[last] = MILOperation(type: "layer_norm", name: final.name, inputs: inputs, outputs: final.outputs, source: source)
            program.operations.insert(contentsOf: consts, at: last)
            program.remove(Set(chain.map { $0 >= last ? $0 + consts.count : $0 }))
            return true
        }
        return false
    }
}
