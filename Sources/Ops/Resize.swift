import GraphIR

/// Resize and Upsample. Output dims come from `sizes` when given (opset 11 on; with `axes` and
/// `keep_aspect_ratio_policy` from 18), else ⌊dim × scale⌋ computed in float32 as onnxruntime does (`scales` an
/// input from Resize-10 and Upsample-9, an attribute in Upsample-7). Inputs: Resize-10 (X, scales); from 11
/// (X, roi, scales, sizes). On a symbolic dim an integer scale multiplies and 1/n divides; other scales give a
/// fresh symbol.
public enum ResizeOp: Operator {
    /// `Resize` and `Upsample`, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("Resize", [10, 11, 13, 18, 19]), OpSchema("Upsample", [7, 9, 10])]

    /// The input's shape with each resized axis from `sizes` or the scales, as described above.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        let type = ctx.elementType(0)
        guard let shape = ctx.shape(0) else { return [tensorType(type, nil)] }
        let rank = shape.count
        var axes = Array(0..<rank)
        if ctx.opType == "Resize", ctx.since >= 18, let a = try ctx.ints("axes") { axes = try ctx.axes(a, rank: rank) }
        let alg = ctx.algebra
        let unknown = { () -> [ValueType] in
            ctx.note("the scales or sizes are not known before run time")
            let set = Set(axes)
            return [tensorType(type, shape.enumerated().map { set.contains($0.offset) ? alg.fresh() : $0.element })]
        }
        let scalesIndex: Int?, sizesIndex: Int?
        if ctx.opType == "Upsample" {
            (scalesIndex, sizesIndex) = (ctx.since >= 9 ? 1 : nil, nil)
        } else {
            (scalesIndex, sizesIndex) = ctx.since >= 11 ? (2, 3) : (1, nil)
        }
        // Only one of scales and sizes may hold elements (an empty tensor stands for a left-out input).
        func elements(_ i: Int?) -> Int? {  // nil: not known
            guard let i, ctx.has(i) else { return 0 }
            return ctx.shape(i).flatMap(ctx.elementCount)
        }
        let sizesCount = elements(sizesIndex), scalesCount = elements(scalesIndex)
        if let a = sizesCount, a > 0, let b = scalesCount, b > 0 {
            throw ctx.fail("both scales and sizes are given; ONNX allows only one of them")
        }
        if let si = sizesIndex, ctx.has(si), sizesCount != 0 {
            guard let sizes = ctx.dimsValue(si) else { return unknown() }
            guard sizes.count == axes.count else { throw ctx.fail("sizes has \(sizes.count) elements for \(axes.count) axes") }
            for case .value(let v) in sizes where v < 0 || v > maxSize {
                throw ctx.fail("sizes \(sizes) has \(v), outside 0…\(maxSize)")
            }
            let policy = ctx.since >= 18 ? try ctx.string("keep_aspect_ratio_policy", default: "stretch") : "stretch"
            var out = shape
            if policy == "stretch" {
                for (k, a) in axes.enumerated() { out[a] = sizes[k] }
                return [tensorType(type, out)]
            }
            guard policy == "not_larger" || policy == "not_smaller" else { throw ctx.fail("keep_aspect_ratio_policy '\(policy)' is not known") }
            guard let inDims = ctx.concrete(axes.map { shape[$0] }), let wanted = ctx.concrete(sizes) else { return unknown() }
            let ratios = zip(wanted, inDims).map { Float($0) / Float($1) }
            guard let scale = policy == "not_larger" ? ratios.min() : ratios.max() else { return [tensorType(type, shape)] }
            for (k, a) in axes.enumerated() {
                let v = (scale * Float(inDims[k])).rounded(.toNearestOrEven)
                guard v.isFinite, v >= 0, v < floatLimit else { throw ctx.fail("sizes \(wanted) give an implausible scale") }
                out[a] = .value(Int(v))
            }
            return [tensorType(type, out)]
        }
        let scales: [Float]
        if let si = scalesIndex {
            guard ctx.has(si) else { throw ctx.fail("neither scales nor sizes is given") }
            guard let v = ctx.value(si), case .floats(let f) = v.elements else { return unknown() }
            scales = f.map { Float($0) }
        } else {
            guard let f = try ctx.floats("scales") else { throw ctx.fail("attribute 'scales' is missing") }
            scales = f
        }
        guard scales.count == axes.count else { throw ctx.fail("scales has \(scales.count) elements for \(axes.count) axes") }
        guard scales.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw ctx.fail("scales \(scales) must be positive") }
        var out = shape
        for (k, a) in axes.enumerated() {
            let s = scales[k]
            switch shape[a] {
            case .value(let d):
                let v = (Float(d) * s).rounded(.down)
                guard v < floatLimit else { throw ctx.fail("scale \(s) makes axis \(a) (\(d)) larger than \(maxSize)") }
                out[a] = .value(Int(v))
            default:
                if s == s.rounded(), s < 1_048_576 { out[a] = alg.multiply(shape[a], Int(s)) } else if let n = exactInverse(s) {
                    out[a] = alg.floorDiv(shape[a], n)
                } else {
                    out[a] = alg.fresh()
                }
            }
        }
        return [tensorType(type, out)]
    }

    /// Largest resized dim believed: 2^31 − 1. A bigger one is a hostile scale or size, never an image, and Core ML and
    /// most runtimes hold sizes as int32.
    public static let maxSize = Int(Int32.max)
    /// 2^31 exactly: a float below it converts to a size of at most `maxSize`.
    static let floatLimit = Float(1 << 31)

    /// n when s is exactly 1/n for a power of two n (0.5, 0.25…): then ⌊d·s⌋ = ⌊d/n⌋ in float32 too.
    static func exactInverse(_ s: Float) -> Int? {
        let n = (1 / s).rounded()
        guard n >= 2, n < 1_048_576, 1 / n == s else { return nil }
        let i = Int(n)
        return i & (i - 1) == 0 ? i : nil
    }
}
