import GraphIR

/// Concat along `axis` (required from opset 4, default 1 before; negative from 11): the axis dims add up
/// (symbolically), the others must agree.
public enum ConcatOp: Operator {
    /// `Concat`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Concat", [1, 4, 11, 13])]

    /// One output: the inputs' common shape with the `axis` dims summed; throws when ranks or known dims differ.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.inputCount > 0 else { throw ctx.fail("needs at least one input") }
        let present = (0..<ctx.inputCount).filter { ctx.has($0) }
        let type = present.lazy.compactMap { ctx.elementType($0) }.first
        let shapes = present.map { ctx.shape($0) }
        guard let rank = shapes.lazy.compactMap({ $0?.count }).first else { return [tensorType(type, nil)] }
        guard let rawAxis = try ctx.int("axis") ?? (ctx.since < 4 ? 1 : nil) else { throw ctx.fail("attribute 'axis' is missing") }
        let axis = try ctx.axis(rawAxis, rank: rank)
        var out: [Dim]?
        var sum: Dim? = .value(0)
        for shape in shapes {
            guard let shape else { sum = nil; continue }
            guard shape.count == rank else { throw ctx.fail("input ranks differ: \(rank) and \(shape.count)") }
            sum = sum.map { ctx.algebra.add($0, shape[axis]) }
            if let o = out {
                out = try zip(o, shape).enumerated().map { i, pair in
                    if i == axis { return pair.0 }
                    if case .value(let a) = pair.0, case .value(let b) = pair.1, a != b {
                        throw ctx.fail("dims of axis \(i) differ: \(a) and \(b)")
                    }
                    return ctx.algebra.unify(pair.0, pair.1)
                }
            } else {
                out = shape
            }
        }
        guard var result = out else { return [tensorType(type, nil)] }
        result[axis] = sum ?? ctx.algebra.fresh()
        return [tensorType(type, result)]
    }

    /// Joins the inputs along `axis` once every present input is known and the other dims match.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        var values: [TensorValue] = []
        for i in 0..<ctx.inputCount where ctx.has(i) {
            guard let v = ctx.value(i) else { return nil }
            values.append(v)
        }
        guard let first = values.first, let rawAxis = try ctx.int("axis") ?? (ctx.since < 4 ? 1 : nil) else { return nil }
        let rank = first.dims.count
        let axis = try ctx.axis(rawAxis, rank: rank)
        guard values.allSatisfy({ $0.dims.count == rank }),
              let joined = TensorValue.Elements.concatenated(values.map(\.elements)) else { return nil }
        let outer = first.dims[..<axis].reduce(1, *)
        guard values.allSatisfy({ Array($0.dims[..<axis]) == Array(first.dims[..<axis]) && Array($0.dims[(axis + 1)...]) == Array(first.dims[(axis + 1)...]) }) else { return nil }
        var indices: [Int] = []
        indices.reserveCapacity(joined.count)
        var bases: [Int] = []
        var base = 0
        for v in values { bases.append(base); base += v.count }
        for o in 0..<outer {
            for (k, v) in values.enumerated() {
                let chunk = v.dims[axis...].reduce(1, *)
                indices.append(contentsOf: (0..<chunk).map { bases[k] + o * chunk + $0 })
            }
        }
        var dims = first.dims
        dims[axis] = values.reduce(0) { $0 + $1.dims[axis] }
        var result = TensorValue(dataType: first.dataType, dims: dims, elements: joined.select(indices))
        if case .symbolic(let d) = result.elements { result = TensorValue(dataType: first.dataType, dims: dims, symbolic: d) }
        return [result]
    }
}

/// Split along `axis`: sizes from the `split` attribute (before 13) or input (13 on; opset 1 also took it as
/// input 1), else equal parts — exact division before 18, `num_outputs` with a shorter last part from 18.
public enum SplitOp: Operator {
    /// `Split`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Split", [1, 2, 11, 13, 18])]

    /// The part sizes, or nil when they are not known before run time.
    static func sizes(_ ctx: OpContext, dim: Dim) throws -> [Dim]? {
        let outputs = ctx.node.outputs.count
        var explicit: [Dim]?
        if ctx.since >= 13 || ctx.since == 1, ctx.has(1) {
            guard let s = ctx.dimsValue(1) else { return nil }
            explicit = s
        } else if ctx.since < 13, let s = try ctx.ints("split") {
            explicit = s.map { .value($0) }
        }
        if let explicit {
            guard explicit.count == outputs else { throw ctx.fail("split has \(explicit.count) sizes for \(outputs) outputs") }
            for case .value(let v) in explicit where v < 0 { throw ctx.fail("split size \(v) is negative") }
            if case .value(let total) = dim, let parts = ctx.concrete(explicit) {
                // Checked sum: sizes come from the file and may be anything up to Int64.max.
                var sum = 0
                for part in parts {
                    let (next, overflow) = sum.addingReportingOverflow(part)
                    guard !overflow, next <= total else { throw ctx.fail("split sizes \(parts) do not add up to \(total)") }
                    sum = next
                }
                guard sum == total else { throw ctx.fail("split sizes \(parts) do not add up to \(total)") }
            }
            return explicit
        }
        let alg = ctx.algebra
        if ctx.since >= 18 {
            guard let n = try ctx.int("num_outputs") else { throw ctx.fail("needs 'split' or 'num_outputs'") }
            guard n > 0, n == outputs else { throw ctx.fail("num_outputs \(n) differs from the \(outputs) outputs") }
            let chunk = alg.ceilDiv(dim, n)
            let last = alg.subtract(dim, alg.multiply(chunk, n - 1))
            if case .value(let l) = last, l < 0 { throw ctx.fail("cannot split \(dim) into \(n) parts") }
            return Array(repeating: chunk, count: n - 1) + [last]
        }
        guard outputs > 0 else { throw ctx.fail("has no outputs") }
        if case .value(let v) = dim, v % outputs != 0 { throw ctx.fail("cannot split \(v) into \(outputs) equal parts") }
        return Array(repeating: alg.exactQuotient(dim, .value(outputs)) ?? alg.floorDiv(dim, outputs), count: outputs)
    }

    /// One type per output: input 0's shape with the `axis` dim set to that part's size (fresh symbols when the
    /// sizes are not known before run time).
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        let type = ctx.elementType(0)
        let outputs = ctx.node.outputs.count
        guard let shape = ctx.shape(0) else { return Array(repeating: tensorType(type, nil), count: outputs) }
        let axis = try ctx.axis(try ctx.int("axis", default: 0), rank: shape.count)
        guard let parts = try sizes(ctx, dim: shape[axis]) else {
            ctx.note("the split sizes '\(ctx.node.inputs[1])' are not known before run time")
            return (0..<outputs).map { _ in
                var s = shape
                s[axis] = ctx.algebra.fresh()
                return tensorType(type, s)
            }
        }
        return parts.map { part in
            var s = shape
            s[axis] = part
            return tensorType(type, s)
        }
    }

    /// Cuts a known input into the known part sizes along `axis`.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard let x = ctx.value(0) else { return nil }
        let axis = try ctx.axis(try ctx.int("axis", default: 0), rank: x.dims.count)
        guard let parts = try sizes(ctx, dim: .value(x.dims[axis])), let sizes = ctx.concrete(parts) else { return nil }
        var offset = 0
        var out: [TensorValue?] = []
        for size in sizes {
            var dims = x.dims
            dims[axis] = size
            let inStrides = Evaluation.strides(x.dims)
            var indices: [Int] = []
            let start = offset
            Evaluation.forEachIndex(dims) { index in
                var flat = 0
                for (a, i) in index.enumerated() { flat += (a == axis ? i + start : i) * inStrides[a] }
                indices.append(flat)
            }
            var v = TensorValue(dataType: x.dataType, dims: dims, elements: x.elements.select(indices))
            if case .symbolic(let d) = v.elements { v = TensorValue(dataType: x.dataType, dims: dims, symbolic: d) }
            out.append(v)
            offset += size
        }
        return out
    }
}
