import MIL

/// Compressed weights, decoded as Core ML decodes them when the model loads: iOS16/constexpr_ops.py
/// (constexpr_affine_dequantize: (q − zero_point) · scale along `axis`) and iOS18/compression.py
/// (constexpr_blockwise_shift_scale: scale · (data − offset) per block; constexpr_lut_to_dense: palette lookup,
/// one palette per group of indices, iOS16's packed form too).
extension Kernels {
    /// Each element's parameter index for a block-wise parameter of shape `param` over data of shape `data`.
    static func blockOffsets(data: [Int], param: [Int]) throws(EvaluationError) -> [Int] {
        guard data.count == param.count else { throw EvaluationError("parameter rank \(param.count) for data rank \(data.count)") }
        let strides = stridesOf(param)
        var maps: [[Int]] = []
        for (d, p) in zip(data, param) {
            guard p > 0, d % p == 0 else { throw EvaluationError("parameter \(param) does not divide data \(data) into blocks") }
            maps.append((0..<d).map { $0 / (d / p) })
        }
        return dimMapOffsets(maps, strides: strides)
    }

    static let constexpr: [String: Kernel] = {
        var t: [String: Kernel] = [:]
        t["constexpr_affine_dequantize"] = { a in
            let q = try a.tensor("quantized_data"), zero = try a.tensor("zero_point"), scale = try a.tensor("scale")
            let axis = try a.axis("axis", rank: q.rank)
            let (_, size, inner) = around(q.shape, axis)
            let qv = q.ints, zv = zero.floats, sv = scale.floats
            var out = [Float](repeating: 0, count: qv.count)
            for i in out.indices {
                let c = (i / inner) % size
                let z = zv.count == 1 ? zv[0] : zv[c], s = sv.count == 1 ? sv[0] : sv[c]
                out[i] = (Float(qv[i]) - z) * s
            }
            return [EvalTensor(floats: out, shape: q.shape, dtype: scale.dtype)]
        }
        t["constexpr_blockwise_shift_scale"] = { a in
            let data = try a.tensor("data"), scale = try a.tensor("scale")
            let so = try blockOffsets(data: data.shape, param: scale.shape)
            let dv = data.floats, sv = scale.floats
            var out = [Float](repeating: 0, count: dv.count)
            if let offset = try a.optional("offset") {
                let ov = offset.floats
                for i in out.indices { out[i] = sv[so[i]] * (dv[i] - ov[so[i]]) }
            } else {
                for i in out.indices { out[i] = sv[so[i]] * dv[i] }
            }
            return [EvalTensor(floats: out, shape: data.shape, dtype: scale.dtype)]
        }
        t["constexpr_lut_to_dense"] = { a in
            let lut = try a.tensor("lut")
            let lv = lut.floats
            if a.has("shape") {
                // iOS16: lut [2^n], indices packed n bits each (LSB first) in uint8 bytes, shape the output's.
                let shape = try a.ints("shape")
                let count = shape.reduce(1, *)
                let bits = lv.count.trailingZeroBitCount
                guard lut.rank == 1, lv.count == 1 << bits, [1, 2, 4, 6, 8].contains(bits) else { throw EvaluationError("lut of shape \(lut.shape)") }
                let packed = try a.tensor("indices").ints
                guard packed.count * 8 >= count * bits else { throw EvaluationError("\(packed.count) index bytes for \(count) \(bits)-bit indices") }
                var out = [Float](repeating: 0, count: count)
                for i in 0..<count {
                    var v = 0
                    for b in 0..<bits { let bit = i * bits + b; if packed[bit >> 3] & (1 << Int32(bit & 7)) != 0 { v |= 1 << b } }
                    out[i] = lv[v]
                }
                return [EvalTensor(floats: out, shape: shape, dtype: lut.dtype)]
            }
            // iOS18: indices [*S], lut [*G, 2^n, V] with S[i] % G[i] == 0.
            let indices = try a.tensor("indices")
            let k = indices.rank
            guard lut.rank == k + 2 else { throw EvaluationError("lut rank \(lut.rank) for indices rank \(k)") }
            let entries = lut.shape[k], vector = lut.shape[k + 1]
            let groups = try blockOffsets(data: indices.shape, param: Array(lut.shape[..<k]))
            let iv = indices.ints
            var out = [Float](repeating: 0, count: iv.count * vector)
            if vector == 1 {
                for i in iv.indices {
                    guard iv[i] >= 0, Int(iv[i]) < entries else { throw EvaluationError("index \(iv[i]) past the palette of \(entries)") }
                    out[i] = lv[groups[i] * entries + Int(iv[i])]
                }
                return [EvalTensor(floats: out, shape: indices.shape, dtype: lut.dtype)]
            }
            let va = try a.axis("vector_axis", rank: k)
            // [*S, V] with V moved after S[va]: build as [*S, V], then transpose.
            for i in iv.indices {
                guard iv[i] >= 0, Int(iv[i]) < entries else { throw EvaluationError("index \(iv[i]) past the palette of \(entries)") }
                for j in 0..<vector { out[i * vector + j] = lv[(groups[i] * entries + Int(iv[i])) * vector + j] }
            }
            var perm = Array(0..<k)
            perm.insert(k, at: va + 1)
            let moved = EvalTensor(floats: out, shape: indices.shape + [vector], dtype: lut.dtype).transposed(perm)
            var shape = indices.shape
            shape[va] *= vector
            return [moved.reshaped(shape)]
        }
        return t
    }()
}
