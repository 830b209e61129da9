/// Scalar multiplications of a matmul's operands become one multiplication of its result: matmul(q · a, k · b) →
/// matmul(q, k) · (a·b). PyTorch's scaled_dot_product_attention, exported by torch.onnx, scales q and k by √scale
/// each (DeiT, timm's ViTs), where the projections are one shared qkv `linear` split afterwards, so neither scale can
/// move into a weight. When the result is already multiplied or divided by a scalar, the factor joins that constant
/// and no op is added; otherwise one mul follows the matmul (two muls become one). Either way the scores are then
/// matmul → scale → softmax, the form `fuse_scaled_dot_product_attention` takes on iOS18. The scaled operands must
/// be read only by the matmul and keep their type. One walk, each matmul an anchor.
public enum MergeMatmulOperandScales: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "merge_matmul_operand_scales"

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let r = MILRewriter(program)
        for i in 0..<r.count where !r.isRemoved(i) {
            var mm = r.op(i)
            guard mm.type == "matmul", mm.outputs.count == 1, mm.outputs[0].type.dtype.isFloat else { continue }
            var factor: Float = 1
            var absorbed: [Int] = []
            for param in ["x", "y"] {
                guard let v = r.arg(mm, param), r.soleUser(v) == i, let (p, mul) = r.producer(v), mul.type == "mul",
                      let (x, y) = r.operands(mul) else { continue }
                let (u, s): (String, Float)
                if let c = r.scalar(y), r.scalar(x) == nil { (u, s) = (x, c) } else if let c = r.scalar(x), r.scalar(y) == nil { (u, s) = (y, c) } else { continue }
                guard r.type(u) == r.type(v), s.isFinite else { continue }
                factor *= s
                absorbed.append(p)
                if let k = mm.inputs.firstIndex(where: { $0.name == param }) { mm.inputs[k].arguments = [.variable(u)] }
            }
            // Two scaled operands, or one with a scalar op after the matmul to take it: otherwise nothing is saved.
            let out = mm.outputs[0]
            let after = scalarAfter(r, out.name)
            guard absorbed.count == 2 || (absorbed.count == 1 && after != nil), factor.isFinite, factor != 0 else { continue }
            if let (a, op, param, value) = after {
                // The scale after the matmul takes the factor: mul by value·factor, or real_div by value/factor.
                let merged = op.type == "mul" ? value * factor : value / factor
                let name = r.insertConst(.float(merged, out.type.dtype), name: op.name + "_scale", before: a, source: op.source)
                var rewritten = op
                if let k = rewritten.inputs.firstIndex(where: { $0.name == param }) { rewritten.inputs[k].arguments = [.variable(name)] }
                r.replace(a, with: rewritten)
                r.replace(i, with: mm)
            } else {
                let raw = r.fresh(out.name + "_unscaled")
                mm.outputs[0].name = raw
                r.replace(i, with: mm)
                let c = r.insertConst(.float(factor, out.type.dtype), name: out.name + "_scale", before: i + 1, source: mm.source)
                r.insert(MILOperation(type: "mul", name: out.name, inputs: [("x", [.variable(raw)]), ("y", [.variable(c)])],
                                      outputs: [out], source: mm.source), before: i + 1)
            }
            for p in absorbed { r.remove(p) }
        }
        r.finish()
    }

    /// A mul by a scalar constant or a real_div by one, the only reader of `v`: its index, the op, the constant's
    /// parameter and value.
    static func scalarAfter(_ r: MILRewriter, _ v: String) -> (Int, MILOperation, String, Float)? {
        guard let a = r.soleUser(v), case let op = r.op(a), let (x, y) = r.operands(op) else { return nil }
        if op.type == "mul", x == v, let c = r.scalar(y) { return (a, op, "y", c) }
        if op.type == "mul", y == v, let c = r.scalar(x) { return (a, op, "x", c) }
        if op.type == "real_div", x == v, let c = r.scalar(y), c != 0 { return (a, op, "y", c) }
        return nil
    }
}
