/// ShuffleNet's channel shuffle after a concat — concat(v₁…vₙ, axis=1) → reshape [B, n, C, H, W] → transpose
/// [0, 2, 1, 3, 4] → reshape [B, n·C, H, W] — is one concat with interleave=true (output channel i·n + j is
/// channel i of vⱼ: iOS15/tensor_operation.py's `concat`). coremltools' `detect_concat_interleave`
/// (passes/defs/optimize_tensor_operation.py) recognises the same chain on rank-4 values of equal shape. Every
/// intermediate has one use. One walk, each concat an anchor.
public enum FuseConcatInterleave: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_concat_interleave"

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let r = MILRewriter(program)
        for i in 0..<r.count where !r.isRemoved(i) {
            let concat = r.op(i)
            guard concat.type == "concat", let values = concat.arguments("values"), values.count >= 2,
                  !r.flag(concat, "interleave") else { continue }
            let names = values.compactMap(\.variableName)
            guard names.count == values.count, let first = r.type(names[0]), first.rank == 4,
                  names.allSatisfy({ r.type($0) == first }),
                  let axis = r.constantArgument(concat, "axis")?.intValues?.first, axis == 1 || axis == -3 else { continue }
            let n = names.count, (b, c, h, w) = (first.shape[0], first.shape[1], first.shape[2], first.shape[3])
            guard let r1 = r.soleUser(concat.outputs[0].name), case let split = r.op(r1), split.type == "reshape",
                  r.arg(split, "x") == concat.outputs[0].name, split.outputs[0].type.shape == [b, n, c, h, w],
                  let t = r.soleUser(split.outputs[0].name), case let transpose = r.op(t), transpose.type == "transpose",
                  r.constantArgument(transpose, "perm")?.intValues == [0, 2, 1, 3, 4],
                  let r2 = r.soleUser(transpose.outputs[0].name), case let merge = r.op(r2), merge.type == "reshape",
                  merge.outputs[0].type.shape == [b, n * c, h, w] else { continue }
            let yes = r.insertConst(.scalar(true), name: merge.name + "_interleave", before: r2, source: merge.source)
            let axisName = r.insertConst(.scalar(Int32(1)), name: merge.name + "_axis", before: r2, source: merge.source)
            r.replace(r2, with: MILOperation(type: "concat", name: merge.name,
                                             inputs: [("values", values), ("axis", [.variable(axisName)]), ("interleave", [.variable(yes)])],
                                             outputs: merge.outputs, source: merge.source))
            for k in [i, r1, t] { r.remove(k) }
        }
        r.finish()
    }
}
