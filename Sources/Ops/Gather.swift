import GraphIR

/// Gather along `axis`: data[:axis] + indices + data[axis+1:]. Folds (negative indices wrap; an index out of
/// range refuses), which is how `Shape → Gather` picks a symbolic dim.
public enum GatherOp: Operator {
    /// `Gather`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Gather", [1, 11, 13])]

    /// data[:axis] + indices + data[axis+1:]; throws when a known index is out of range.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), ctx.has(1) else { throw ctx.fail("needs data and indices") }
        let type = ctx.elementType(0)
        guard let data = ctx.shape(0), let indices = ctx.shape(1) else { return [tensorType(type, nil)] }
        guard !data.isEmpty else { throw ctx.fail("data is a scalar") }
        let axis = try ctx.axis(try ctx.int("axis", default: 0), rank: data.count)
        if let idx = ctx.intsValue(1), case .value(let n) = data[axis] {
            for i in idx where i < -n || i >= n { throw ctx.fail("index \(i) is out of range for axis \(axis) of size \(n)") }
        }
        return [tensorType(type, Array(data[..<axis]) + indices + Array(data[(axis + 1)...]))]
    }

    /// Gathers from a known input with known, in-range indices (negative ones wrap).
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard let x = ctx.value(0), let idxValue = ctx.value(1), let idx = idxValue.ints, !x.dims.isEmpty else { return nil }
        let axis = try ctx.axis(try ctx.int("axis", default: 0), rank: x.dims.count)
        let n = x.dims[axis]
        var resolved: [Int] = []
        for i in idx {
            guard i >= -Int64(n) && i < Int64(n) else { return nil }
            resolved.append(Int(i < 0 ? i + Int64(n) : i))
        }
        let outer = x.dims[..<axis].reduce(1, *)
        let inner = x.dims[(axis + 1)...].reduce(1, *)
        let outDims = Array(x.dims[..<axis]) + idxValue.dims + Array(x.dims[(axis + 1)...])
        guard ctx.canEvaluate(Evaluation.count(outDims)) else { return nil }
        var indices: [Int] = []
        for o in 0..<outer {
            for i in resolved {
                let base = (o * n + i) * inner
                indices.append(contentsOf: base..<(base + inner))
            }
        }
        var v = TensorValue(dataType: x.dataType, dims: outDims, elements: x.elements.select(indices))
        if case .symbolic(let d) = v.elements { v = TensorValue(dataType: x.dataType, dims: outDims, symbolic: d) }
        return [v]
    }
}

/// GatherElements: the output has the indices' shape.
public enum GatherElementsOp: Operator {
    /// `GatherElements`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("GatherElements", [11, 13])]

    /// The data's element type with the indices' shape; throws when their ranks differ.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), ctx.has(1) else { throw ctx.fail("needs data and indices") }
        if let d = ctx.rank(0), let i = ctx.rank(1), d != i { throw ctx.fail("data has rank \(d), indices \(i)") }
        if let r = ctx.rank(0) { _ = try ctx.axis(try ctx.int("axis", default: 0), rank: r) }
        return [tensorType(ctx.elementType(0), ctx.shape(1))]
    }
}

/// GatherND (batch_dims from opset 12): indices[:-1] + data[batch_dims + indices[-1]:].
public enum GatherNDOp: Operator {
    /// `GatherND`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("GatherND", [11, 12, 13])]

    /// indices[:-1] + data[batch_dims + k:] for a known index depth k; throws when the depth does not fit the data.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), ctx.has(1) else { throw ctx.fail("needs data and indices") }
        let type = ctx.elementType(0)
        guard let data = ctx.shape(0), let indices = ctx.shape(1), let last = indices.last else { return [tensorType(type, nil)] }
        let batch = ctx.since >= 12 ? try ctx.int("batch_dims", default: 0) : 0
        guard case .value(let k) = last else {
            ctx.note("the last dim of the indices is not known")
            return [tensorType(type, nil)]
        }
        guard batch >= 0, k >= 1, k <= data.count, batch <= data.count - k, batch < indices.count else {
            throw ctx.fail("indices of depth \(k) with batch_dims \(batch) do not fit data of rank \(data.count)")
        }
        return [tensorType(type, Array(indices.dropLast()) + Array(data[(batch + k)...]))]
    }
}

/// Scatter, ScatterElements, ScatterND, TensorScatter: the output is the data.
public enum ScatterOp: Operator {
    /// `Scatter`, `ScatterElements` and `ScatterND`, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("Scatter", [9, 11]), OpSchema("ScatterElements", [11, 13, 16, 18]),
                                 OpSchema("ScatterND", [11, 13, 16, 18])]

    /// The data's type unchanged.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), let t = ctx.type(0) else { throw ctx.fail("input 0 is missing") }
        return [t]
    }
}
