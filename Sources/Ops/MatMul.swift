import GraphIR

/// MatMul with numpy semantics (1-D operands promoted and the added axis removed, batch dims broadcast), and its
/// quantized forms: MatMulInteger (int32 out), QLinearMatMul (the output zero point's type).
public enum MatMulOp: Operator {
    /// `MatMul`, `MatMulInteger` and `QLinearMatMul`, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("MatMul", [1, 9, 13]), OpSchema("MatMulInteger", [10]), OpSchema("QLinearMatMul", [10, 21])]

    /// The numpy matmul shape; throws on a scalar operand, differing inner dims or batch dims that cannot broadcast.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        let (a, b, type): (Int, Int, DataType?)
        switch ctx.opType {
        case "MatMulInteger": (a, b, type) = (0, 1, .int32)
        case "QLinearMatMul": (a, b, type) = (0, 3, ctx.elementType(7))
        default: (a, b, type) = (0, 1, ctx.elementType(0))
        }
        guard ctx.has(a), ctx.has(b) else { throw ctx.fail("needs two operands") }
        guard let x = ctx.shape(a), let y = ctx.shape(b) else { return [tensorType(type, nil)] }
        return [tensorType(type, try shape(x, y, ctx))]
    }

    static func shape(_ x: [Dim], _ y: [Dim], _ ctx: OpContext) throws -> [Dim] {
        guard !x.isEmpty, !y.isEmpty else { throw ctx.fail("an operand is a scalar") }
        let a = x.count == 1 ? [.value(1)] + x : x
        let b = y.count == 1 ? y + [.value(1)] : y
        let k1 = a[a.count - 1], k2 = b[b.count - 2]
        if case .value(let p) = k1, case .value(let q) = k2, p != q {
            throw ctx.fail("inner dims differ: \(p) and \(q)")
        }
        let batchA = Array(a.dropLast(2)), batchB = Array(b.dropLast(2))
        guard let batch = try ctx.broadcast([batchA, batchB]) else { throw ctx.fail("batch dims cannot broadcast") }
        var out = batch
        if x.count > 1 { out.append(a[a.count - 2]) }
        if y.count > 1 { out.append(b[b.count - 1]) }
        return out
    }
}

/// Gemm: [M, K] × [K, N] → [M, N] with transA/transB (C broadcasts into the result).
public enum GemmOp: Operator {
    /// `Gemm`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Gemm", [1, 6, 7, 9, 11, 13])]

    /// [M, N] in A's type; throws when A or B is not 2-D or the inner dims differ.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), ctx.has(1) else { throw ctx.fail("needs A and B") }
        let type = ctx.elementType(0)
        guard let a = ctx.shape(0), let b = ctx.shape(1) else { return [tensorType(type, nil)] }
        guard a.count == 2, b.count == 2 else { throw ctx.fail("A and B must be 2-D (ranks \(a.count), \(b.count))") }
        let transA = try ctx.int("transA", default: 0) != 0, transB = try ctx.int("transB", default: 0) != 0
        let m = transA ? a[1] : a[0], k1 = transA ? a[0] : a[1]
        let k2 = transB ? b[1] : b[0], n = transB ? b[0] : b[1]
        if case .value(let p) = k1, case .value(let q) = k2, p != q { throw ctx.fail("inner dims differ: \(p) and \(q)") }
        return [tensorType(type, [m, n])]
    }
}

/// Einsum: the output's labels (explicit after `->`, else the labels used once, sorted) with their dims; an
/// ellipsis stands for the broadcast of the operands' remaining dims.
public enum EinsumOp: Operator {
    /// `Einsum`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Einsum", [12])]

    /// The output labels' dims as described above; throws on a malformed equation or labels with different dims.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard let equation = try ctx.string("equation") else { throw ctx.fail("attribute 'equation' is missing") }
        let type = (0..<ctx.inputCount).lazy.compactMap { ctx.elementType($0) }.first
        let text = equation.filter { $0 != " " }
        let sides = text.components(separatedBy: "->")
        guard sides.count <= 2 else { throw ctx.fail("equation '\(equation)' has more than one '->'") }
        let terms = sides[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard terms.count == ctx.inputCount else { throw ctx.fail("equation has \(terms.count) operands, the node \(ctx.inputCount)") }
        var labelDims: [Character: Dim] = [:]
        var counts: [Character: Int] = [:]
        var ellipsis: [Dim]? = nil
        var ellipsisShapes: [[Dim]] = []
        for (i, term) in terms.enumerated() {
            guard let shape = ctx.shape(i) else { return [tensorType(type, nil)] }
            let hasEllipsis = term.contains("...")
            let parts = term.components(separatedBy: "...")
            guard parts.count <= 2 else { throw ctx.fail("operand \(i) has more than one ellipsis") }
            let before = Array(parts[0]), after = parts.count == 2 ? Array(parts[1]) : []
            let labels = before.count + after.count
            guard labels <= shape.count, hasEllipsis || labels == shape.count else {
                throw ctx.fail("operand \(i) has \(labels) labels for rank \(shape.count)")
            }
            for c in before + after where !c.isLetter { throw ctx.fail("'\(c)' is not a label") }
            let middle = Array(shape[before.count..<(shape.count - after.count)])
            if hasEllipsis { ellipsisShapes.append(middle) }
            for (c, d) in zip(before + after, Array(shape[..<before.count]) + Array(shape[(shape.count - after.count)...])) {
                counts[c, default: 0] += 1
                if let known = labelDims[c] {
                    // A label on a dim of 1 broadcasts.
                    if case .value(1) = known { labelDims[c] = d } else if case .value(1) = d {} else {
                        if case .value(let p) = known, case .value(let q) = d, p != q { throw ctx.fail("label '\(c)' has dims \(p) and \(q)") }
                        labelDims[c] = ctx.algebra.unify(known, d)
                    }
                } else {
                    labelDims[c] = d
                }
            }
        }
        if !ellipsisShapes.isEmpty { ellipsis = try ctx.broadcast(ellipsisShapes) }
        var out: [Dim] = []
        if sides.count == 2 {
            let rhs = sides[1]
            let parts = rhs.components(separatedBy: "...")
            guard parts.count <= 2 else { throw ctx.fail("the output has more than one ellipsis") }
            for c in parts[0] {
                guard let d = labelDims[c] else { throw ctx.fail("output label '\(c)' is not in any operand") }
                out.append(d)
            }
            if parts.count == 2 {
                out += ellipsis ?? []
                for c in parts[1] {
                    guard let d = labelDims[c] else { throw ctx.fail("output label '\(c)' is not in any operand") }
                    out.append(d)
                }
            }
        } else {
            out = (ellipsis ?? []) + counts.keys.filter { counts[$0] == 1 }.sorted().map { labelDims[$0]! }
        }
        return [tensorType(type, out)]
    }
}
