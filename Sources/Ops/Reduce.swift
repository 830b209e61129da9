import GraphIR

/// Reductions: axes as an attribute until ReduceSum-13 / the others' 18, then an optional input; no axes reduce
/// everything unless `noop_with_empty_axes` (from the same versions). `keepdims` (default 1) keeps reduced axes
/// as 1. Folds ReduceSum/Prod/Max/Min on integers and symbolic dims (`ReduceProd(Shape(x))` is the element count).
public enum ReduceOp: Operator {
    /// The ten Reduce ops, with the opsets their ONNX definitions changed at.
    public static let schemas = [
        OpSchema("ReduceSum", [1, 11, 13]), OpSchema("ReduceMean", [1, 11, 13, 18]), OpSchema("ReduceMax", [1, 11, 12, 13, 18, 20]),
        OpSchema("ReduceMin", [1, 11, 12, 13, 18, 20]), OpSchema("ReduceProd", [1, 11, 13, 18]), OpSchema("ReduceL1", [1, 11, 13, 18]),
        OpSchema("ReduceL2", [1, 11, 13, 18]), OpSchema("ReduceLogSum", [1, 11, 13, 18]),
        OpSchema("ReduceLogSumExp", [1, 11, 13, 18]), OpSchema("ReduceSumSquare", [1, 11, 13, 18]),
    ]

    /// The version from which axes are an input.
    static func axesInputSince(_ opType: String) -> Int { opType == "ReduceSum" ? 13 : 18 }

    enum Axes { case all, none, some([Int]), unknown }

    static func axes(_ ctx: OpContext, rank: Int) throws -> Axes {
        let fromInput = ctx.since >= axesInputSince(ctx.opType)
        var given: [Int]?
        if fromInput {
            if ctx.has(1) {
                guard let a = ctx.intsValue(1) else { return .unknown }
                given = a
            }
        } else {
            given = try ctx.ints("axes")
        }
        if let given, !given.isEmpty { return .some(try ctx.axes(given, rank: rank)) }
        if fromInput, try ctx.int("noop_with_empty_axes", default: 0) != 0 { return .none }
        return .all
    }

    /// The input's shape without the reduced axes, or with them as 1 (`keepdims`); fresh symbols or an
    /// unknown rank when the axes are unknown.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        let type = ctx.elementType(0)
        let keep = try ctx.int("keepdims", default: 1) != 0
        guard let shape = ctx.shape(0) else { return [tensorType(type, nil)] }
        switch try axes(ctx, rank: shape.count) {
        case .none: return [tensorType(type, shape)]
        case .all: return [tensorType(type, keep ? shape.map { _ in .value(1) } : [])]
        case .some(let a):
            let set = Set(a)
            return [tensorType(type, shape.enumerated().compactMap { set.contains($0.offset) ? (keep ? .value(1) : nil) : $0.element })]
        case .unknown:
            ctx.note("the axes '\(ctx.node.inputs[1])' are not known before run time")
            return [tensorType(type, keep ? shape.map { _ in ctx.algebra.fresh() } : nil)]
        }
    }

    /// Folds ReduceSum, ReduceProd, ReduceMax and ReduceMin on known integer or symbolic elements.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard ["ReduceSum", "ReduceProd", "ReduceMax", "ReduceMin"].contains(ctx.opType), let x = ctx.value(0),
              let outDims = ctx.concrete(types.first.flatMap(shapeOf)) else { return nil }
        let reduced: Set<Int>
        switch try axes(ctx, rank: x.dims.count) {
        case .none: return [x]
        case .all: reduced = Set(0..<x.dims.count)
        case .some(let a): reduced = Set(a)
        case .unknown: return nil
        }
        guard x.count > 0 else { return nil }
        // Group input elements by the output element they reduce into.
        let keptDims = x.dims.enumerated().map { reduced.contains($0.offset) ? 1 : $0.element }
        let outStrides = Evaluation.strides(keptDims)
        var groups = [[Int]](repeating: [], count: keptDims.reduce(1, *))
        var flat = 0
        Evaluation.forEachIndex(x.dims) { index in
            var o = 0
            for (a, i) in index.enumerated() where !reduced.contains(a) { o += i * outStrides[a] }
            groups[o].append(flat)
            flat += 1
        }
        let alg = ctx.algebra
        switch x.elements {
        case .ints(let v):
            var out: [Int64] = []
            for g in groups {
                let items = g.map { v[$0] }
                var acc: Int64? = items[0]
                for item in items.dropFirst() {
                    switch ctx.opType {
                    case "ReduceSum": acc = acc.flatMap { IntMath.add($0, item) }
                    case "ReduceProd": acc = acc.flatMap { IntMath.mul($0, item) }
                    case "ReduceMax": acc = acc.map { Swift.max($0, item) }
                    default: acc = acc.map { Swift.min($0, item) }
                    }
                }
                guard let acc, TensorValue.range(of: x.dataType)?.contains(acc) ?? false else { return nil }
                out.append(acc)
            }
            return [TensorValue(dataType: x.dataType, dims: outDims, elements: .ints(out))]
        case .symbolic(let v):
            let out: [Dim] = groups.map { g in
                let items = g.map { v[$0] }
                return items.dropFirst().reduce(items[0]) { acc, d in
                    switch ctx.opType {
                    case "ReduceSum": return alg.add(acc, d)
                    case "ReduceProd": return alg.multiply(acc, d)
                    case "ReduceMax": return alg.maximum(acc, d)
                    default: return alg.minimum(acc, d)
                    }
                }
            }
            return [TensorValue(dataType: x.dataType, dims: outDims, symbolic: out)]
        default:
            return nil
        }
    }
}

/// ArgMax / ArgMin: int64, the axis removed or kept as 1 (`keepdims`).
public enum ArgReduceOp: Operator {
    /// `ArgMax` and `ArgMin`, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("ArgMax", [1, 11, 12, 13]), OpSchema("ArgMin", [1, 11, 12, 13])]

    /// An int64 tensor of the input's shape with `axis` removed or kept as 1.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        guard let shape = ctx.shape(0) else { return [tensorType(.int64, nil)] }
        let axis = try ctx.axis(try ctx.int("axis", default: 0), rank: shape.count)
        let keep = try ctx.int("keepdims", default: 1) != 0
        var out = shape
        if keep { out[axis] = .value(1) } else { out.remove(at: axis) }
        return [tensorType(.int64, out)]
    }
}

/// TopK: values and int64 indices with the axis (default −1) replaced by k (attribute before opset 10, a
/// one-element input from 10; may be symbolic).
public enum TopKOp: Operator {
    /// `TopK`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("TopK", [1, 10, 11, 24])]

    /// Values and int64 indices of the input's shape with `axis` replaced by k; throws when a known k is
    /// negative or larger than the axis.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        let type = ctx.elementType(0)
        guard let shape = ctx.shape(0) else { return [tensorType(type, nil), tensorType(.int64, nil)] }
        let axis = try ctx.axis(try ctx.int("axis", default: -1), rank: shape.count)
        let k: Dim
        if ctx.since < 10 {
            guard let v = try ctx.int("k") else { throw ctx.fail("attribute 'k' is missing") }
            k = .value(v)
        } else {
            guard ctx.has(1) else { throw ctx.fail("input 1 (K) is missing") }
            if let v = ctx.scalarDim(1) { k = v } else {
                ctx.note("K '\(ctx.node.inputs[1])' is not known before run time")
                k = ctx.algebra.fresh()
            }
        }
        if case .value(let kv) = k {
            guard kv >= 0 else { throw ctx.fail("k \(kv) is negative") }
            if case .value(let n) = shape[axis], kv > n { throw ctx.fail("k \(kv) is larger than axis \(axis) (\(n))") }
        }
        var out = shape
        out[axis] = k
        return [tensorType(type, out), tensorType(.int64, out)]
    }
}
