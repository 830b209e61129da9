import GraphIR

/// Expand: the input broadcast with the shape input (whose elements may be symbolic).
public enum ExpandOp: Operator {
    /// `Expand`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Expand", [8, 13])]

    /// The input broadcast with the known shape input; with only its length known, fresh symbols where input dims
    /// may grow.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), ctx.has(1) else { throw ctx.fail("needs input and shape") }
        let type = ctx.elementType(0)
        if let target = ctx.dimsValue(1) {
            guard let input = ctx.shape(0) else { return [tensorType(type, nil)] }
            return [tensorType(type, try ctx.broadcast([input, target]))]
        }
        // Unknown shape values but known length: an input dim other than 1 survives (the target's is 1 or equal).
        ctx.note("the target shape '\(ctx.node.inputs[1])' is not known before run time")
        guard let lengthDims = ctx.shape(1), lengthDims.count == 1, case .value(let k) = lengthDims[0], k <= OpContext.maxRank,
              let input = ctx.shape(0) else { return [tensorType(type, nil)] }
        let rank = max(k, input.count)
        let padded = Array(repeating: Dim.value(1), count: rank - input.count) + input
        return [tensorType(type, padded.map { d in
            if case .value(let v) = d, v == 1 { return ctx.algebra.fresh(lowerBound: 1) }
            return d.isValue ? d : ctx.algebra.fresh(lowerBound: 1)
        })]
    }

    /// Broadcasts a known input to the inferred shape when every output dim is a number.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard let x = ctx.value(0), let outDims = ctx.concrete(types.first.flatMap(shapeOf)),
              ctx.canEvaluate(Evaluation.count(outDims)), Evaluation.broadcastDims([x.dims, outDims]) == outDims else { return nil }
        let indices = Evaluation.broadcastIndices(from: x.dims, to: outDims)
        var v = TensorValue(dataType: x.dataType, dims: outDims, elements: x.elements.select(indices))
        if case .symbolic(let d) = v.elements { v = TensorValue(dataType: x.dataType, dims: outDims, symbolic: d) }
        return [v]
    }
}

extension Dim {
    var isValue: Bool {
        if case .value = self { return true }
        return false
    }
}

/// Tile: each dim times its repeat (repeats input from opset 6; opset 1's tiles/axis form is not inferred).
public enum TileOp: Operator {
    /// `Tile`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Tile", [1, 6, 13])]

    /// Each dim times its repeat (fresh symbols when the repeats are unknown); throws on opset 1, a count
    /// mismatch or a negative repeat.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), ctx.has(1) else { throw ctx.fail("needs input and repeats") }
        let type = ctx.elementType(0)
        guard ctx.since >= 6 else { throw ctx.fail("Tile-1 (tiles and axis inputs) is not inferred") }
        guard let shape = ctx.shape(0) else { return [tensorType(type, nil)] }
        guard let repeats = ctx.dimsValue(1) else {
            ctx.note("the repeats '\(ctx.node.inputs[1])' are not known before run time")
            return [tensorType(type, shape.map { _ in ctx.algebra.fresh() })]
        }
        guard repeats.count == shape.count else { throw ctx.fail("repeats has \(repeats.count) elements for rank \(shape.count)") }
        for case .value(let r) in repeats where r < 0 { throw ctx.fail("repeat \(r) is negative") }
        return [tensorType(type, zip(shape, repeats).map { ctx.algebra.multiply($0, $1) })]
    }

    /// Repeats a known input to the inferred shape when every output dim is a number.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard ctx.since >= 6, let x = ctx.value(0), let outDims = ctx.concrete(types.first.flatMap(shapeOf)),
              outDims.count == x.dims.count, ctx.canEvaluate(Evaluation.count(outDims)) else { return nil }
        let inStrides = Evaluation.strides(x.dims)
        var indices: [Int] = []
        Evaluation.forEachIndex(outDims) { index in
            var flat = 0
            for (a, i) in index.enumerated() where x.dims[a] > 0 { flat += (i % x.dims[a]) * inStrides[a] }
            indices.append(flat)
        }
        guard x.count > 0 || indices.isEmpty else { return nil }
        var v = TensorValue(dataType: x.dataType, dims: outDims, elements: x.elements.select(indices))
        if case .symbolic(let d) = v.elements { v = TensorValue(dataType: x.dataType, dims: outDims, symbolic: d) }
        return [v]
    }
}

/// Pad: each dim plus its begin and end pads (`paddings` attribute in opset 1, `pads` in 2, an input from 11;
/// `axes` input from 18). Pads may be negative (cropping) and symbolic.
public enum PadOp: Operator {
    /// `Pad`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Pad", [1, 2, 11, 13, 18, 19, 21])]

    /// Each padded dim plus its begin and end pads (fresh symbols when the pads are unknown); throws when a dim
    /// would be negative.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        let type = ctx.elementType(0)
        guard let shape = ctx.shape(0) else { return [tensorType(type, nil)] }
        let pads: [Dim]
        if ctx.since < 11 {
            guard let p = try ctx.ints(ctx.since < 2 ? "paddings" : "pads") else { throw ctx.fail("attribute 'pads' is missing") }
            pads = p.map { .value($0) }
        } else {
            guard ctx.has(1) else { throw ctx.fail("input 1 (pads) is missing") }
            guard let p = ctx.dimsValue(1) else {
                ctx.note("the pads '\(ctx.node.inputs[1])' are not known before run time")
                var axes = Set(0..<shape.count)
                if ctx.since >= 18, ctx.has(3) {
                    guard let a = ctx.intsValue(3) else { return [tensorType(type, shape.map { _ in ctx.algebra.fresh() })] }
                    axes = Set(try ctx.axes(a, rank: shape.count))
                }
                return [tensorType(type, shape.enumerated().map { axes.contains($0.offset) ? ctx.algebra.fresh() : $0.element })]
            }
            pads = p
        }
        var axes = Array(0..<shape.count)
        if ctx.since >= 18, ctx.has(3) {
            guard let a = ctx.intsValue(3) else {
                ctx.note("the axes '\(ctx.node.inputs[3])' are not known before run time")
                return [tensorType(type, shape.map { _ in ctx.algebra.fresh() })]
            }
            axes = try ctx.axes(a, rank: shape.count)
        }
        guard pads.count == 2 * axes.count else { throw ctx.fail("pads has \(pads.count) elements for \(axes.count) axes") }
        var out = shape
        for (k, axis) in axes.enumerated() {
            out[axis] = ctx.algebra.add(ctx.algebra.add(shape[axis], pads[k]), pads[k + axes.count])
            if case .value(let v) = out[axis], v < 0 { throw ctx.fail("pads make axis \(axis) negative (\(v))") }
        }
        return [tensorType(type, out)]
    }
}
