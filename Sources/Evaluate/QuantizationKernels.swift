import MIL

/// Activation quantization, as iOS17/quantization_ops.py defines it: `quantize` is clip(round(x / scale) +
/// zero_point) to int8 [−128, 127] or uint8 [0, 255], rounding half to even (numpy's `around`, which coremltools'
/// value inference uses); `dequantize` is scale · (q − zero_point). Scale and zero point are scalars, or vectors
/// along `axis`. The division runs in float32 for fp16 inputs too (the op computes in float32, as the other kernels).
extension Kernels {
    /// For element i of a tensor of `shape`, the index of its scale: 0 for a scalar, the coordinate along `axis`.
    static func parameterIndex(_ shape: [Int], axis: Int?, count: Int) -> (Int) -> Int {
        guard let axis, count > 1 else { return { _ in 0 } }
        let (_, size, inner) = around(shape, axis)
        return { ($0 / inner) % size }
    }

    static func quantizationAxis(_ a: OpArguments, rank: Int) throws(EvaluationError) -> Int? {
        a.has("axis") ? try a.axis("axis", rank: rank) : nil
    }

    static let quantization: [String: Kernel] = {
        var t: [String: Kernel] = [:]
        t["quantize"] = { a in
            let x = try a.tensor("input"), scale = try a.tensor("scale")
            let dtypeName = try a.string("output_dtype")
            guard let dtype: MILDataType = ["int8": .int8, "uint8": .uint8][dtypeName] else {
                throw EvaluationError("output_dtype '\(dtypeName)' is not int8 or uint8")
            }
            let (low, high): (Float, Float) = dtype == .int8 ? (-128, 127) : (0, 255)
            let axis = try quantizationAxis(a, rank: x.rank)
            let sv = scale.floats, zv = try a.optional("zero_point")?.floats ?? [0]
            let si = parameterIndex(x.shape, axis: axis, count: sv.count), zi = parameterIndex(x.shape, axis: axis, count: zv.count)
            let out: [Int32] = x.withFloats { xv in
                (0..<xv.count).map { i in
                    let q = (xv[i] / sv[si(i)]).rounded(.toNearestOrEven) + zv[zi(i)]
                    // NaN (0/0) becomes the zero point's level after clipping; numpy leaves it undefined.
                    return Int32(q.isNaN ? zv[zi(i)] : min(max(q, low), high))
                }
            }
            return [EvalTensor(ints: out, shape: x.shape, dtype: dtype)]
        }
        t["dequantize"] = { a in
            let q = try a.tensor("input"), scale = try a.tensor("scale")
            let axis = try quantizationAxis(a, rank: q.rank)
            let sv = scale.floats, zv = try a.optional("zero_point")?.floats ?? [0]
            let si = parameterIndex(q.shape, axis: axis, count: sv.count), zi = parameterIndex(q.shape, axis: axis, count: zv.count)
            let qv = q.ints
            let out = (0..<qv.count).map { i in (Float(qv[i]) - zv[zi(i)]) * sv[si(i)] }
            return [EvalTensor(floats: out, shape: q.shape, dtype: scale.dtype)]
        }
        return t
    }()
}
