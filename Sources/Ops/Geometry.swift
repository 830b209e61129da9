import GraphIR

/// Ops whose output shape is a simple function of the inputs: Det (drop the last two dims), GridSample
/// ([N, C] + the grid's spatial dims), AffineGrid ([N, H, W, 2] or [N, D, H, W, 3] from `size`),
/// CenterCropPad (the `shape` input on `axes`), RotaryEmbedding (the input's shape).
public enum GeometryOp: Operator {
    /// `Det`, `GridSample`, `AffineGrid`, `CenterCropPad` and `RotaryEmbedding`, with the opsets their ONNX
    /// definitions changed at.
    public static let schemas = [OpSchema("Det", [11, 22]), OpSchema("GridSample", [16, 20, 22]), OpSchema("AffineGrid", [20]),
                                 OpSchema("CenterCropPad", [18]), OpSchema("RotaryEmbedding", [23])]

    /// Input 0's element type with the shape listed above for the op; throws when a rank does not fit.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        let type = ctx.elementType(0)
        switch ctx.opType {
        case "Det":
            guard let s = ctx.shape(0) else { return [tensorType(type, nil)] }
            guard s.count >= 2 else { throw ctx.fail("input has rank \(s.count); Det needs at least 2") }
            return [tensorType(type, Array(s.dropLast(2)))]
        case "GridSample":
            guard ctx.has(1) else { throw ctx.fail("input 1 (grid) is missing") }
            guard let x = ctx.shape(0), let grid = ctx.shape(1) else { return [tensorType(type, nil)] }
            guard x.count >= 3, grid.count == x.count else { throw ctx.fail("X has rank \(x.count), grid \(grid.count)") }
            return [tensorType(type, [ctx.algebra.unify(x[0], grid[0]), x[1]] + Array(grid[1..<(grid.count - 1)]))]
        case "AffineGrid":
            guard ctx.has(1) else { throw ctx.fail("input 1 (size) is missing") }
            guard let size = ctx.dimsValue(1) else { return [tensorType(type, nil)] }
            guard size.count == 4 || size.count == 5 else { throw ctx.fail("size has \(size.count) elements, not 4 or 5") }
            return [tensorType(type, [size[0]] + Array(size[2...]) + [.value(size.count - 2)])]
        case "CenterCropPad":
            guard ctx.has(1) else { throw ctx.fail("input 1 (shape) is missing") }
            guard let s = ctx.shape(0) else { return [tensorType(type, nil)] }
            let axes = try ctx.axes(try ctx.ints("axes") ?? Array(0..<s.count), rank: s.count)
            guard let wanted = ctx.dimsValue(1) else {
                return [tensorType(type, s.enumerated().map { axes.contains($0.offset) ? ctx.algebra.fresh() : $0.element })]
            }
            guard wanted.count == axes.count else { throw ctx.fail("shape has \(wanted.count) elements for \(axes.count) axes") }
            var out = s
            for (k, a) in axes.enumerated() { out[a] = wanted[k] }
            return [tensorType(type, out)]
        default:
            return [tensorType(type, ctx.shape(0))]
        }
    }
}
