/// A concat whose input is another concat along the same axis (neither interleaving, the inner one read only there)
/// takes the inner one's values in its place: concat(a, concat(b, c), d) → concat(a, b, c, d). The dynamo exporter
/// writes Inception v3's 3×3 branches this way (torch.cat of a list that holds torch.cat results). One walk in
/// program order, so nesting of any depth flattens.
public enum MergeNestedConcats: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "merge_nested_concats"

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let r = MILRewriter(program)
        for i in 0..<r.count where !r.isRemoved(i) {
            let outer = r.op(i)
            guard outer.type == "concat", let axis = normalizedAxis(r, outer), let values = outer.arguments("values") else { continue }
            var merged: [MILArgument] = []
            var absorbed: [Int] = []
            for a in values {
                if let v = a.variableName, r.soleUser(v) == i, let (p, inner) = r.producer(v), inner.type == "concat", normalizedAxis(r, inner) == axis,
                   let innerValues = inner.arguments("values") {
                    merged += innerValues
                    absorbed.append(p)
                } else {
                    merged.append(a)
                }
            }
            guard !absorbed.isEmpty else { continue }
            var op = outer
            if let k = op.inputs.firstIndex(where: { $0.name == "values" }) { op.inputs[k].arguments = merged }
            r.replace(i, with: op)
            for p in absorbed { r.remove(p) }
        }
        r.finish()
    }

    /// The concat's axis in [0, rank), nil when it interleaves or the axis is not a constant.
    static func normalizedAxis(_ r: MILRewriter, _ op: MILOperation) -> Int? {
        if r.flag(op, "interleave") { return nil }
        guard let a = r.constantArgument(op, "axis")?.intValues?.first, let rank = op.outputs.first?.type.rank else { return nil }
        let axis = a < 0 ? a + rank : a
        return axis >= 0 && axis < rank ? axis : nil
    }
}
