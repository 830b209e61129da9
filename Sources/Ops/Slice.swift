import GraphIR

/// Slice (starts/ends/axes attributes before opset 10; inputs with optional axes and steps from 10). Starts and
/// ends are clamped as ONNX specifies; on a symbolic axis the clamps become `min`/`max`, simplified where the
/// bounds allow (`x[1:]` on `seq` is `seq-1`; an end of at least 2^31−1 means "to the end").
public enum SliceOp: Operator {
    /// `Slice`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Slice", [1, 10, 11, 13])]

    /// Ends at or beyond this mean "to the end" on a symbolic axis (exporters write INT_MAX or INT64_MAX).
    static let openEnd = Int(Int32.max)

    struct Parameters {
        var starts: [Dim]
        var ends: [Dim]
        var axes: [Int]
        var steps: [Int]
    }

    /// The slicing parameters; nil when some are not known before run time.
    static func parameters(_ ctx: OpContext, rank: Int) throws -> Parameters? {
        var starts: [Dim], ends: [Dim], axes: [Int]?, steps: [Int]?
        if ctx.since < 10 {
            guard let s = try ctx.ints("starts"), let e = try ctx.ints("ends") else { throw ctx.fail("attributes 'starts' and 'ends' are required") }
            starts = s.map { .value($0) }
            ends = e.map { .value($0) }
            axes = try ctx.ints("axes")
        } else {
            guard ctx.has(1), ctx.has(2) else { throw ctx.fail("inputs starts and ends are required") }
            guard let s = ctx.dimsValue(1), let e = ctx.dimsValue(2) else { return nil }
            starts = s
            ends = e
            if ctx.has(3) { guard let a = ctx.intsValue(3) else { return nil }; axes = a }
            if ctx.has(4) { guard let st = ctx.intsValue(4) else { return nil }; steps = st }
        }
        guard starts.count == ends.count else { throw ctx.fail("starts has \(starts.count) elements, ends \(ends.count)") }
        let resolvedAxes = try ctx.axes(axes ?? Array(0..<starts.count), rank: rank)
        guard resolvedAxes.count == starts.count else { throw ctx.fail("axes has \(resolvedAxes.count) elements, starts \(starts.count)") }
        let resolvedSteps = steps ?? Array(repeating: 1, count: starts.count)
        guard resolvedSteps.count == starts.count else { throw ctx.fail("steps has \(resolvedSteps.count) elements, starts \(starts.count)") }
        guard !resolvedSteps.contains(0) else { throw ctx.fail("a step is 0") }
        return Parameters(starts: starts, ends: ends, axes: resolvedAxes, steps: resolvedSteps)
    }

    /// (clamped start, output length) of one axis.
    static func slice(dim: Dim, start: Dim, end: Dim, step: Int, _ alg: DimAlgebra) -> (start: Dim, length: Dim) {
        if case .value(let d) = dim, case .value(var s) = start, case .value(var e) = end {
            if s < 0 { s = s < -d ? 0 : s + d }
            if e < 0 { e = e < -d ? -1 : e + d }
            let magnitude = step == Int.min ? Int.max : Swift.abs(step)
            if step > 0 {
                s = min(max(s, 0), d); e = min(max(e, 0), d)
                return (.value(s), .value(e > s ? (e - s - 1) / magnitude + 1 : 0))
            }
            s = min(max(s, 0), d - 1); e = min(max(e, -1), d - 1)
            return (.value(s), .value(s > e ? (s - e - 1) / magnitude + 1 : 0))
        }
        // Symbolic: resolve negative positions against the dim, then clamp.
        func position(_ p: Dim, open: Int) -> Dim {
            if case .value(let v) = p {
                if v >= openEnd { return step > 0 ? dim : alg.subtract(dim, .value(1)) }
                if v <= -openEnd { return .value(open) }
                if v < 0 { return alg.add(dim, v) }
                return p
            }
            return alg.isAtLeast(p, 0) ? p : alg.fresh()
        }
        if step > 0 {
            let s = alg.minimum(alg.maximum(position(start, open: 0), .value(0)), dim)
            let e = alg.minimum(alg.maximum(position(end, open: 0), .value(0)), dim)
            let span = alg.maximum(alg.subtract(e, s), .value(0))
            return (s, step == 1 ? span : alg.ceilDiv(span, step))
        }
        let last = alg.subtract(dim, .value(1))
        let s = alg.minimum(alg.maximum(position(start, open: 0), .value(0)), last)
        let e = alg.minimum(alg.maximum(position(end, open: -1), .value(-1)), last)
        let span = alg.maximum(alg.subtract(s, e), .value(0))
        return (s, step == -1 ? span : alg.ceilDiv(span, step == Int.min ? Int.max : -step))
    }

    /// The input's shape with each sliced axis' length (fresh symbols when the bounds are unknown).
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        let type = ctx.elementType(0)
        guard let shape = ctx.shape(0) else { return [tensorType(type, nil)] }
        guard let p = try parameters(ctx, rank: shape.count) else {
            ctx.note("the slice bounds are not known before run time")
            // Axes not sliced keep their dims when the axes are known.
            if ctx.has(3), let axes = ctx.intsValue(3) {
                let sliced = Set(try ctx.axes(axes, rank: shape.count))
                return [tensorType(type, shape.enumerated().map { sliced.contains($0.offset) ? ctx.algebra.fresh() : $0.element })]
            }
            return [tensorType(type, shape.map { _ in ctx.algebra.fresh() })]
        }
        var out = shape
        for (k, axis) in p.axes.enumerated() {
            out[axis] = slice(dim: shape[axis], start: p.starts[k], end: p.ends[k], step: p.steps[k], ctx.algebra).length
        }
        return [tensorType(type, out)]
    }

    /// The slice of a known input, when the bounds are known.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard let x = ctx.value(0), let p = try parameters(ctx, rank: x.dims.count) else { return nil }
        var starts = [Int](repeating: 0, count: x.dims.count)
        var steps = [Int](repeating: 1, count: x.dims.count)
        var outDims = x.dims
        for (k, axis) in p.axes.enumerated() {
            let r = slice(dim: .value(x.dims[axis]), start: p.starts[k], end: p.ends[k], step: p.steps[k], ctx.algebra)
            guard case .value(let s) = r.start, case .value(let n) = r.length else { return nil }
            starts[axis] = s
            steps[axis] = p.steps[k]
            outDims[axis] = n
        }
        guard ctx.canEvaluate(Evaluation.count(outDims)) else { return nil }
        let inStrides = Evaluation.strides(x.dims)
        var indices: [Int] = []
        Evaluation.forEachIndex(outDims) { index in
            var flat = 0
            for (a, i) in index.enumerated() { flat += (starts[a] + i * steps[a]) * inStrides[a] }
            indices.append(flat)
        }
        var v = TensorValue(dataType: x.dataType, dims: outDims, elements: x.elements.select(indices))
        if case .symbolic(let d) = v.elements { v = TensorValue(dataType: x.dataType, dims: outDims, symbolic: d) }
        return [v]
    }
}
