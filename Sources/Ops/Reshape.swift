import GraphIR

/// Reshape (shape attribute before opset 5, input from 5; `0` copies the input dim unless `allowzero` (14); one
/// `-1` takes what is left, divided symbolically: [batch, seq, 64] → [0, -1, 4, 16] gives [batch, seq, 4, 16]).
public enum ReshapeOp: Operator {
    /// `Reshape`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Reshape", [1, 5, 13, 14, 19, 21])]

    /// The requested shape with `0` and `-1` resolved; throws when the element counts cannot match.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        let type = ctx.elementType(0)
        let requested: [Dim]
        if ctx.since < 5 {
            guard let s = try ctx.ints("shape") else { throw ctx.fail("attribute 'shape' is missing") }
            requested = s.map { .value($0) }
        } else {
            guard ctx.has(1) else { throw ctx.fail("input 1 (shape) is missing") }
            guard let s = ctx.dimsValue(1) else {
                // The target's length gives the rank even when its elements are unknown.
                if let length = ctx.shape(1), length.count == 1, case .value(let n) = length[0], n <= OpContext.maxRank {
                    ctx.note("the target shape '\(ctx.node.inputs[1])' is not known before run time")
                    return [tensorType(type, (0..<n).map { _ in ctx.algebra.fresh() })]
                }
                throw ctx.fail("the target shape '\(ctx.node.inputs[1])' is not known before run time")
            }
            requested = s
        }
        let allowZero = ctx.since >= 14 ? try ctx.int("allowzero", default: 0) != 0 : false
        return [tensorType(type, try output(requested, input: ctx.shape(0), allowZero: allowZero, ctx))]
    }

    static func output(_ requested: [Dim], input: [Dim]?, allowZero: Bool, _ ctx: OpContext) throws -> [Dim] {
        let alg = ctx.algebra
        var out: [Dim] = []
        var inferred: Int?
        for (i, d) in requested.enumerated() {
            switch d {
            case .value(0) where !allowZero:
                guard let input else { out.append(alg.fresh()); continue }
                guard i < input.count else { throw ctx.fail("shape element \(i) is 0 (copy) but the input has rank \(input.count)") }
                out.append(input[i])
            case .value(-1):
                guard inferred == nil else { throw ctx.fail("the target shape has more than one -1") }
                inferred = i
                out.append(.value(1))
            case .value(let v) where v < 0:
                throw ctx.fail("shape element \(i) is \(v)")
            case .unknown:
                out.append(alg.fresh())
            default:
                out.append(d)
            }
        }
        if let i = inferred {
            guard let input else { out[i] = alg.fresh(); return out }
            let total = alg.product(input)
            let known = alg.product(out)
            if case .value(let t) = total, case .value(let k) = known {
                guard k != 0, t % k == 0 else { throw ctx.fail("cannot reshape \(t) elements into \(requested)") }
                out[i] = .value(t / k)
            } else {
                out[i] = alg.exactQuotient(total, known) ?? alg.fresh()
            }
        } else if let input, case .value(let t) = alg.product(input), case .value(let k) = alg.product(out), t != k {
            throw ctx.fail("cannot reshape \(t) elements into \(requested)")
        }
        return out
    }

    /// The known input's elements with the inferred shape, when every dim is a number.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard let x = ctx.value(0), let dims = ctx.concrete(types.first.flatMap(shapeOf)), Evaluation.count(dims) == x.count else { return nil }
        return [TensorValue(dataType: x.dataType, dims: dims, elements: x.elements)]
    }
}

/// The shape of a tensor type.
func shapeOf(_ t: ValueType) -> [Dim]? {
    if case .tensor(let tt) = t { return tt.shape }
    return nil
}

/// Flatten to 2-D at `axis` (negative from opset 11).
public enum FlattenOp: Operator {
    /// `Flatten`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Flatten", [1, 9, 11, 13, 21])]

    /// [product of the dims before `axis`, product of the rest].
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        guard let shape = ctx.shape(0) else { return [tensorType(ctx.elementType(0), [ctx.algebra.fresh(), ctx.algebra.fresh()])] }
        var axis = try ctx.int("axis", default: 1)
        if axis < 0 { axis += shape.count }
        guard axis >= 0 && axis <= shape.count else { throw ctx.fail("axis \(axis) is out of range for rank \(shape.count)") }
        return [tensorType(ctx.elementType(0), [ctx.algebra.product(Array(shape[..<axis])), ctx.algebra.product(Array(shape[axis...]))])]
    }

    /// The known input's elements with the inferred 2-D shape.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        try ReshapeOp.evaluate(ctx, types: types)
    }
}

/// Squeeze (axes attribute before opset 13, input from 13; no axes: every dim known to be 1).
public enum SqueezeOp: Operator {
    /// `Squeeze`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Squeeze", [1, 11, 13, 21])]

    static func axesList(_ ctx: OpContext) throws -> [Int]?? {
        if ctx.since < 13 { return .some(try ctx.ints("axes")) }
        guard ctx.has(1) else { return .some(nil) }
        guard let a = ctx.intsValue(1) else { return nil }  // given but unknown
        return .some(a)
    }

    /// The input's shape without the squeezed axes; throws when a squeezed axis is known not to be 1.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        let type = ctx.elementType(0)
        guard let shape = ctx.shape(0) else { return [tensorType(type, nil)] }
        guard let given = try axesList(ctx) else {
            ctx.note("the axes '\(ctx.node.inputs[1])' are not known before run time")
            return [tensorType(type, nil)]
        }
        if let axes = given {
            let normalized = try ctx.axes(axes, rank: shape.count)
            for a in normalized {
                if case .value(let v) = shape[a], v != 1 { throw ctx.fail("axis \(a) has size \(v), not 1") }
            }
            return [tensorType(type, shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element))]
        }
        var out: [Dim] = []
        for d in shape {
            if case .value(1) = d { continue }
            if case .value = d { out.append(d); continue }
            if ctx.algebra.isAtLeast(d, 2) { out.append(d); continue }
            ctx.note("without axes, whether dim \(d) is 1 is not known before run time")
            return [tensorType(type, nil)]
        }
        return [tensorType(type, out)]
    }

    /// The known input's elements with the squeezed shape.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        try ReshapeOp.evaluate(ctx, types: types)
    }
}

/// Unsqueeze (axes attribute before opset 13, input from 13; axes index the output).
public enum UnsqueezeOp: Operator {
    /// `Unsqueeze`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Unsqueeze", [1, 11, 13, 21])]

    /// The input's shape with a 1 inserted at each axis of the output.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        let type = ctx.elementType(0)
        let axes: [Int]
        if ctx.since < 13 {
            guard let a = try ctx.ints("axes") else { throw ctx.fail("attribute 'axes' is missing") }
            axes = a
        } else {
            guard ctx.has(1) else { throw ctx.fail("input 1 (axes) is missing") }
            guard let a = ctx.intsValue(1) else {
                ctx.note("the axes '\(ctx.node.inputs[1])' are not known before run time")
                return [tensorType(type, nil)]
            }
            axes = a
        }
        guard let shape = ctx.shape(0) else { return [tensorType(type, nil)] }
        let rank = shape.count + axes.count
        let normalized = Set(try ctx.axes(axes, rank: rank))
        var input = shape.makeIterator()
        let out = (0..<rank).map { normalized.contains($0) ? Dim.value(1) : input.next()! }
        return [tensorType(type, out)]
    }

    /// The known input's elements with the unsqueezed shape.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        try ReshapeOp.evaluate(ctx, types: types)
    }
}

/// Transpose by `perm` (default: reversed axes).
public enum TransposeOp: Operator {
    /// `Transpose`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Transpose", [1, 13, 21])]

    static func permutation(_ ctx: OpContext, rank: Int) throws -> [Int] {
        guard let perm = try ctx.ints("perm") else { return Array((0..<rank).reversed()) }
        guard perm.count == rank, Set(perm) == Set(0..<rank) else { throw ctx.fail("perm \(perm) is not a permutation of \(rank) axes") }
        return perm
    }

    /// The input's dims in `perm` order; throws when `perm` is not a permutation of the axes.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        guard let shape = ctx.shape(0) else {
            if let perm = try ctx.ints("perm") { return [tensorType(ctx.elementType(0), perm.map { _ in ctx.algebra.fresh() })] }
            return [tensorType(ctx.elementType(0), nil)]
        }
        let perm = try permutation(ctx, rank: shape.count)
        return [tensorType(ctx.elementType(0), perm.map { shape[$0] })]
    }

    /// The known input's elements transposed.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard let x = ctx.value(0) else { return nil }
        let perm = try permutation(ctx, rank: x.dims.count)
        let outDims = perm.map { x.dims[$0] }
        let inStrides = Evaluation.strides(x.dims)
        var indices: [Int] = []
        indices.reserveCapacity(x.count)
        Evaluation.forEachIndex(outDims) { index in
            var flat = 0
            for (axis, i) in index.enumerated() { flat += i * inStrides[perm[axis]] }
            indices.append(flat)
        }
        return [TensorValue(dataType: x.dataType, dims: outDims, elements: x.elements.select(indices))]
    }
}
