/// slice_by_index ops of one tensor that tile one axis exactly — each the whole tensor on every other axis, stride 1,
/// nothing squeezed, the ranges side by side from 0 to the dim — become one split(x, split_sizes, axis) (torch's
/// `chunk` and qkv `unbind` as exporters write them: ShuffleNet v2's channel halves, the dynamo export's attention
/// q/k/v slices). The split takes the place of the first slice; its outputs keep the slices' names, in the order of
/// their ranges. One walk, each sliced tensor examined once. Static shapes only (a flexible dim has no known tiling).
public enum FuseSlicesToSplit: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_slices_to_split"

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let r = MILRewriter(program)
        var seen: Set<String> = []
        for i in 0..<r.count where !r.isRemoved(i) {
            let first = r.op(i)
            guard first.type == "slice_by_index", let x = r.arg(first, "x"), seen.insert(x).inserted, let xt = r.type(x),
                  xt.isStatic else { continue }
            // Each simple slice of x: its output and its [begin, end) per dim.
            var slices: [(index: Int, op: MILOperation, ranges: [Range<Int>])] = []
            for u in r.readers(x) {
                let op = r.op(u)
                guard op.type == "slice_by_index", r.arg(op, "x") == x, let ranges = ranges(r, op, xt) else { continue }
                slices.append((u, op, ranges))
            }
            guard slices.count >= 2 else { continue }
            // The one axis where the slices are not whole.
            let partial = Set(slices.flatMap { s in (0..<xt.rank).filter { s.ranges[$0] != 0..<xt.shape[$0] } })
            guard partial.count == 1, let axis = partial.first else { continue }
            slices.sort { $0.ranges[axis].lowerBound < $1.ranges[axis].lowerBound }
            var next = 0
            for s in slices {
                guard s.ranges[axis].lowerBound == next else { next = -1; break }
                next = s.ranges[axis].upperBound
            }
            guard next == xt.shape[axis], let at = slices.map(\.index).min() else { continue }
            let head = r.op(at)
            let sizes = r.insertConst(.ints(slices.map { $0.ranges[axis].count }), name: head.name + "_split_sizes", before: at, source: head.source)
            let axisName = r.insertConst(.scalar(Int32(axis)), name: head.name + "_axis", before: at, source: head.source)
            r.replace(at, with: MILOperation(type: "split", name: head.name,
                                             inputs: [("x", [.variable(x)]), ("split_sizes", [.variable(sizes)]), ("axis", [.variable(axisName)])],
                                             outputs: slices.map { $0.op.outputs[0] }, source: head.source))
            for s in slices where s.index != at { r.remove(s.index) }
        }
        r.finish()
    }

    /// The [begin, end) of a stride-1, unsqueezed slice on every dim of `xt`, from its begin (or begin_mask) and
    /// its output shape.
    static func ranges(_ r: MILRewriter, _ op: MILOperation, _ xt: MILTensorType) -> [Range<Int>]? {
        let n = xt.rank
        guard op.outputs.count == 1, op.outputs[0].type.rank == n, op.outputs[0].type.isStatic, let begin = r.constantArgument(op, "begin")?.intValues,
              begin.count == n else { return nil }
        if let stride = op.arguments("stride") {
            guard stride.count == 1, r.constantArgument(op, "stride")?.intValues == Array(repeating: 1, count: n) else { return nil }
        }
        func mask(_ p: String) -> [Bool]? {
            guard op.arguments(p) != nil else { return Array(repeating: false, count: n) }
            if case .bools(let b)? = r.constantArgument(op, p)?.data, b.count == n { return b }
            return nil
        }
        guard let beginMask = mask("begin_mask"), let squeezeMask = mask("squeeze_mask"), !squeezeMask.contains(true) else { return nil }
        var out: [Range<Int>] = []
        for d in 0..<n {
            var b = beginMask[d] ? 0 : begin[d]
            if b < 0 { b += xt.shape[d] }
            b = min(max(b, 0), xt.shape[d])
            let len = op.outputs[0].type.shape[d]
            guard b + len <= xt.shape[d] else { return nil }
            out.append(b..<(b + len))
        }
        return out
    }
}
