import GraphIR

/// NonZero [rank, n], Unique, Compress and NonMaxSuppression [n, 3]: the counts are data-dependent and get
/// fresh symbols (which may be 0).
public enum DataDependentOp: Operator {
    /// `NonZero`, `Unique`, `Compress` and `NonMaxSuppression`, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("NonZero", [9, 13]), OpSchema("Unique", [11]), OpSchema("Compress", [9, 11]),
                                 OpSchema("NonMaxSuppression", [10, 11])]

    /// The output types with each data-dependent count a fresh symbol.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        let alg = ctx.algebra
        switch ctx.opType {
        case "NonZero":
            return [tensorType(.int64, [ctx.rank(0).map { .value($0) } ?? alg.fresh(), alg.fresh(lowerBound: 0)])]
        case "NonMaxSuppression":
            return [tensorType(.int64, [alg.fresh(lowerBound: 0), .value(3)])]
        case "Compress":
            guard ctx.has(1) else { throw ctx.fail("input 1 (condition) is missing") }
            let type = ctx.elementType(0)
            guard let axisValue = try ctx.int("axis") else { return [tensorType(type, [alg.fresh(lowerBound: 0)])] }
            guard let shape = ctx.shape(0) else { return [tensorType(type, nil)] }
            var out = shape
            out[try ctx.axis(axisValue, rank: shape.count)] = alg.fresh(lowerBound: 0)
            return [tensorType(type, out)]
        default:  // Unique: Y, indices, inverse_indices, counts
            let type = ctx.elementType(0)
            let count = alg.fresh(lowerBound: 1)
            var y: ValueType = tensorType(type, [count])
            var inverse: ValueType = tensorType(.int64, ctx.shape(0).map { [alg.product($0)] })
            if let axisValue = try ctx.int("axis") {
                if let shape = ctx.shape(0) {
                    let axis = try ctx.axis(axisValue, rank: shape.count)
                    var s = shape
                    s[axis] = count
                    y = tensorType(type, s)
                    inverse = tensorType(.int64, [shape[axis]])
                } else {
                    y = tensorType(type, nil)
                }
            }
            let outputs: [ValueType] = [y, tensorType(.int64, [count]), inverse, tensorType(.int64, [count])]
            return Array(outputs.prefix(ctx.node.outputs.count))
        }
    }
}

/// OneHot: the indices' shape with `depth` inserted at `axis` (default −1), the values' type.
public enum OneHotOp: Operator {
    /// `OneHot`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("OneHot", [9, 11])]

    /// The indices' shape with the depth inserted at `axis` (a fresh symbol when not known), in the values' type.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), ctx.has(1), ctx.has(2) else { throw ctx.fail("needs indices, depth and values") }
        let type = ctx.elementType(2)
        guard let shape = ctx.shape(0) else { return [tensorType(type, nil)] }
        let axis = try ctx.axis(try ctx.int("axis", default: -1), rank: shape.count + 1)
        var depth = ctx.scalarDim(1) ?? ctx.algebra.fresh()
        if let v = ctx.value(1), case .floats(let f) = v.elements, f.count == 1, f[0].isFinite, abs(f[0]) < 1e15 {
            depth = .value(Int(f[0]))
        }
        var out = shape
        out.insert(depth, at: axis)
        return [tensorType(type, out)]
    }
}
