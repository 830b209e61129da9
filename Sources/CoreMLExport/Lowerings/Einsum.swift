/// Einsum with one or two operands → transpose, reduce_sum, reshape and one batched matmul (MIL has no einsum before
/// iOS17, and iOS17's takes only a few equations). The equation's labels are sorted into
/// - batch labels (both operands and the output), contracted labels (both operands, not the output),
/// - labels of one operand kept in the output, and labels of one operand summed away (reduce_sum first);
/// operand A becomes [batch, A's kept, contracted], B becomes [batch, contracted, B's kept], one matmul multiplies
/// them, and the product is reshaped and transposed into the output's label order. An ellipsis stands for the same
/// dims in every operand (no broadcasting of different sizes). A label repeated within one operand (a diagonal),
/// three or more operands and integer inputs are refused.
enum EinsumLowering: OpLowering {
    static let opTypes = ["Einsum"]

    /// The equation's operand and output labels, with an ellipsis expanded to one label per dim it covers.
    struct Equation {
        var operands: [[String]]
        var output: [String]
    }

    static func parse(_ text: String, ranks: [Int]) throws(LoweringRefusal) -> Equation {
        let compact = text.filter { !$0.isWhitespace }
        let sides = compact.components(separatedBy: "->")
        guard sides.count <= 2 else { throw LoweringRefusal("equation '\(text)' has more than one '->'") }
        let inputs = sides[0].components(separatedBy: ",")
        guard inputs.count == ranks.count else { throw LoweringRefusal("equation '\(text)' names \(inputs.count) operands; the node has \(ranks.count)") }
        var ellipsisRank: Int? = nil
        func labels(_ term: String, rank: Int?) throws(LoweringRefusal) -> [String] {
            var out: [String] = []
            let parts = term.components(separatedBy: "...")
            guard parts.count <= 2 else { throw LoweringRefusal("equation '\(text)': more than one ellipsis in '\(term)'") }
            for ch in parts[0] {
                guard ch.isASCII, ch.isLetter else { throw LoweringRefusal("equation '\(text)': '\(ch)' is not a label") }
                out.append(String(ch))
            }
            if parts.count == 2 {
                let explicit = parts[0].count + parts[1].count
                let covered: Int
                if let rank {
                    covered = rank - explicit
                    guard covered >= 0 else { throw LoweringRefusal("equation '\(text)': '\(term)' has more labels than rank \(rank)") }
                    if let known = ellipsisRank, known != covered {
                        throw LoweringRefusal("equation '\(text)': the ellipsis covers \(known) and \(covered) dims; broadcasting ellipses is not lowered")
                    }
                    ellipsisRank = covered
                } else {
                    covered = ellipsisRank ?? 0
                }
                out += (0..<covered).map { "…\($0)" }
                for ch in parts[1] {
                    guard ch.isASCII, ch.isLetter else { throw LoweringRefusal("equation '\(text)': '\(ch)' is not a label") }
                    out.append(String(ch))
                }
            }
            if let rank, out.count != rank { throw LoweringRefusal("equation '\(text)': '\(term)' has \(out.count) labels for rank \(rank)") }
            return out
        }
        var operands: [[String]] = []
        for (term, rank) in zip(inputs, ranks) { operands.append(try labels(term, rank: rank)) }
        let output: [String]
        if sides.count == 2 {
            output = try labels(sides[1], rank: nil)
        } else {
            // Implicit output: the ellipsis dims, then the labels used once, in alphabetical order.
            var counts: [String: Int] = [:]
            for op in operands { for l in op where !l.hasPrefix("…") { counts[l, default: 0] += 1 } }
            output = (0..<(ellipsisRank ?? 0)).map { "…\($0)" } + counts.filter { $0.value == 1 }.keys.sorted()
        }
        return Equation(operands: operands, output: output)
    }

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let count = v.node.inputs.count
        guard count == 1 || count == 2 else { throw LoweringRefusal("Einsum of \(count) operands; lowered for one or two") }
        let types = try (0..<count).map { i throws(LoweringRefusal) in try v.requireFloat(i) }
        let out = try v.outputType()
        guard types.allSatisfy({ $0.dtype == types[0].dtype }) else { throw LoweringRefusal("operands of different types") }
        let equation = try parse(v.string("equation", default: ""), ranks: types.map(\.rank))
        var size: [String: Int] = [:]
        for (labels, t) in zip(equation.operands, types) {
            guard Set(labels).count == labels.count else {
                throw LoweringRefusal("equation '\(v.string("equation", default: ""))' repeats a label within an operand (a diagonal); not lowered")
            }
            for (l, d) in zip(labels, t.shape) {
                if let known = size[l], known != d {
                    throw LoweringRefusal("label '\(l)' has sizes \(known) and \(d); Einsum broadcasting is not lowered")
                }
                size[l] = d
            }
        }
        guard Set(equation.output).count == equation.output.count, equation.output.allSatisfy({ size[$0] != nil }) else {
            throw LoweringRefusal("equation '\(v.string("equation", default: ""))': an output label is repeated or not among the operands'")
        }
        guard equation.output.map({ size[$0]! }) == out.shape else {
            throw LoweringRefusal("output shape \(out.shape) does not match the equation")
        }
        let outputSet = Set(equation.output)
        let dtype = types[0].dtype
        func shape(_ labels: [String]) -> [Int] { labels.map { size[$0]! } }

        return { e throws(LoweringRefusal) in
            /// `x` (labels `have`) with the labels not in `keep` summed away, then transposed to `order`.
            func arrange(_ x: MILVar, _ have: [String], keep: Set<String>, order: [String], suffix: String) -> MILVar {
                var x = x, have = have
                let summed = have.indices.filter { !keep.contains(have[$0]) }
                if !summed.isEmpty {
                    have = have.filter { keep.contains($0) }
                    x = e.op("reduce_sum", [("x", .v(x)), ("axes", .c(.ints(summed))), ("keep_dims", .c(.scalar(false)))],
                             output: MILTensorType(dtype, shape(have)), suffix: suffix + "_sum")
                }
                if have != order {
                    x = e.op("transpose", [("x", .v(x)), ("perm", .c(.ints(order.map { have.firstIndex(of: $0)! })))],
                             output: MILTensorType(dtype, shape(order)), suffix: suffix + "_perm")
                }
                return x
            }
            let a = equation.operands[0]
            if count == 1 {
                let input = try e.input(0)
                let y = arrange(input, a, keep: outputSet, order: equation.output, suffix: "")
                // The op must produce the node's output: an equation that changes nothing still gets one op.
                return [y == input ? e.op("identity", [("x", .v(y))], output: out) : y]
            }
            let b = equation.operands[1]
            let inA = Set(a), inB = Set(b)
            let batch = equation.output.filter { inA.contains($0) && inB.contains($0) }
            let contracted = a.filter { inB.contains($0) && !outputSet.contains($0) }
            let leftKept = a.filter { !inB.contains($0) && outputSet.contains($0) }
            let rightKept = b.filter { !inA.contains($0) && outputSet.contains($0) }
            let keepA = Set(batch + leftKept + contracted), keepB = Set(batch + contracted + rightKept)
            let product = { (labels: [String]) in labels.reduce(1) { $0 * size[$1]! } }
            let (nb, nl, nk, nr) = (product(batch), product(leftKept), product(contracted), product(rightKept))
            var x = arrange(try e.input(0), a, keep: keepA, order: batch + leftKept + contracted, suffix: "_a")
            var y = arrange(try e.input(1), b, keep: keepB, order: batch + contracted + rightKept, suffix: "_b")
            x = e.op("reshape", [("x", .v(x)), ("shape", .c(.ints([nb, nl, nk])))], output: MILTensorType(dtype, [nb, nl, nk]), suffix: "_a3")
            y = e.op("reshape", [("x", .v(y)), ("shape", .c(.ints([nb, nk, nr])))], output: MILTensorType(dtype, [nb, nk, nr]), suffix: "_b3")
            var z = e.op("matmul", [("x", .v(x)), ("y", .v(y)), ("transpose_x", .c(.scalar(false))), ("transpose_y", .c(.scalar(false)))],
                         output: MILTensorType(dtype, [nb, nl, nr]), suffix: "_matmul")
            let produced = batch + leftKept + rightKept
            if produced == equation.output {
                return [e.op("reshape", [("x", .v(z)), ("shape", .c(.ints(out.shape)))], output: out)]
            }
            z = e.op("reshape", [("x", .v(z)), ("shape", .c(.ints(shape(produced))))], output: MILTensorType(dtype, shape(produced)), suffix: "_unflat")
            return [e.op("transpose", [("x", .v(z)), ("perm", .c(.ints(equation.output.map { produced.firstIndex(of: $0)! })))], output: out)]
        }
    }
}
