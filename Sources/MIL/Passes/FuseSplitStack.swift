/// A stack of every piece of one split, in order, rearranges the split's input without computing anything: split x
/// along axis a into n equal pieces, stack them at axis b, and the result is x reshaped so that axis a becomes
/// [n, size / n], then transposed to move the n axis to position b (identity when b = a: a reshape alone). The
/// ONNX lowering of a bidirectional LSTM writes exactly this (MIL's lstm returns the directions side by side on the
/// last axis; ONNX's Y has them on an axis of their own), and the exporter's next transpose and reshape undo it:
/// as a reshape and a transpose the chain merges with them (`merge_layout_chains`) and cancels (`no_op_elimination`).
/// The split's pieces must be read by the stack alone.
public enum FuseSplitStack: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_split_stack"

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let r = MILRewriter(program)
        for i in 0..<r.count where !r.isRemoved(i) {
            let stack = r.op(i)
            guard stack.type == "stack", let values = stack.arguments("values")?.compactMap(\.variableName),
                  values.count >= 2, let first = values.first, let (s, split) = r.producer(first), split.type == "split",
                  split.outputs.map(\.name) == values, values.allSatisfy({ r.soleUser($0) == i }),
                  let x = r.arg(split, "x"), let xt = r.type(x), xt.isStatic, xt.rank > 0,
                  let axisValue = r.constantArgument(split, "axis")?.intValues?.first,
                  let stackAxisValue = r.constantArgument(stack, "axis")?.intValues?.first else { continue }
            let n = values.count
            let a = axisValue < 0 ? axisValue + xt.rank : axisValue
            let b = stackAxisValue < 0 ? stackAxisValue + xt.rank + 1 : stackAxisValue
            guard a >= 0, a < xt.rank, b >= 0, b <= xt.rank, xt.shape[a] % n == 0,
                  split.outputs.allSatisfy({ $0.type.shape.count == xt.rank && $0.type.shape[a] == xt.shape[a] / n }) else { continue }
            var reshaped = xt.shape
            reshaped.replaceSubrange(a...a, with: [n, xt.shape[a] / n])
            // Output axis o reads the piece's axis o (o < b) or o - 1 (o > b); the piece's axis j is axis j (j < a)
            // or j + 1 (j ≥ a) of the reshaped tensor, whose axis a is the n axis.
            let perm = (0...xt.rank).map { o -> Int in
                if o == b { return a }
                let j = o < b ? o : o - 1
                return j < a ? j : j + 1
            }
            let out = stack.outputs[0]
            guard perm.map({ reshaped[$0] }) == out.type.shape else { continue }
            let shapeName = r.insertConst(.ints(reshaped), name: stack.name + "_shape", before: i, source: stack.source)
            if perm == Array(0...xt.rank) {
                r.replace(i, with: MILOperation(type: "reshape", name: stack.name, inputs: [("x", [.variable(x)]), ("shape", [.variable(shapeName)])],
                                                outputs: [out], source: stack.source))
            } else {
                let mid = r.fresh(stack.name + "_split_axis")
                r.insert(MILOperation(type: "reshape", name: mid, inputs: [("x", [.variable(x)]), ("shape", [.variable(shapeName)])],
                                      outputs: [MILVar(name: mid, type: xt.with(shape: reshaped))], source: stack.source), before: i)
                let permName = r.insertConst(.ints(perm), name: stack.name + "_perm", before: i, source: stack.source)
                r.replace(i, with: MILOperation(type: "transpose", name: stack.name, inputs: [("x", [.variable(mid)]), ("perm", [.variable(permName)])],
                                                outputs: [out], source: stack.source))
            }
            r.remove(s)
        }
        r.finish()
    }
}
