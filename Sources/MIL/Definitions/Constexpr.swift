/// Weights decompressed when the model loads: iOS16/constexpr_ops.py (constexpr_affine_dequantize) and
/// iOS18/compression.py (constexpr_blockwise_shift_scale, constexpr_lut_to_dense). Every parameter is constant.
enum MILConstexprDefinitions {
    static let all: [MILOpDefinition] = [
        MILOpDefinition("constexpr_affine_dequantize", since: .iOS16, file: "iOS16/constexpr_ops.py",
                        domains: ["quantized_data": [.int8, .uint8], "zero_point": [.int8, .uint8], "scale": Shapes.floats]) { c throws(MILTypeError) in
            let data = try c.type("quantized_data"), zero = try c.type("zero_point"), scale = try c.type("scale")
            let axis = try Shapes.axis(try c.int("axis"), rank: max(data.rank, 1))
            guard zero.dtype == data.dtype else { throw MILTypeError("zero_point is \(zero.dtype), data \(data.dtype)") }
            for p in [zero, scale] where p.rank > 1 || (p.rank == 1 && p.shape[0] != data.shape[axis]) {
                throw MILTypeError("scale and zero_point must be scalars or [\(data.shape[axis])] along axis \(axis)")
            }
            return [MILTensorType(scale.dtype, data.shape)]
        },
        MILOpDefinition("constexpr_blockwise_shift_scale", since: .iOS18, file: "iOS18/compression.py",
                        domains: ["data": [.int4, .uint4, .int8, .uint8], "scale": Shapes.floats, "offset": [.int4, .uint4, .int8, .uint8, .fp16, .fp32]]) { c throws(MILTypeError) in
            let data = try c.type("data"), scale = try c.type("scale")
            guard scale.rank == data.rank else { throw MILTypeError("scale rank \(scale.rank) differs from data rank \(data.rank)") }
            for (d, s) in zip(data.shape, scale.shape) where s <= 0 || d % s != 0 {
                throw MILTypeError("scale \(scale.shape) does not divide data \(data.shape) into whole blocks")
            }
            if let offset = try c.optionalType("offset"), offset.shape != scale.shape {
                throw MILTypeError("offset \(offset.shape) differs from scale \(scale.shape)")
            }
            return [MILTensorType(scale.dtype, data.shape)]
        },
        // Two forms under one name: iOS16/iOS17 (iOS16/constexpr_ops.py: one table [2^N] with N in 1, 2, 4, 6, 8,
        // the indices packed LSB first into uint8 [ceil(N · count / 8)], the output shape as a uint32 vector) and
        // iOS18 (iOS18/compression.py: indices shaped like the output, tables grouped along any axis).
        MILOpDefinition("constexpr_lut_to_dense", since: .iOS16, file: "iOS18/compression.py",
                        domains: ["indices": [.uint1, .uint2, .uint3, .uint4, .uint6, .uint8], "lut": Shapes.floats]) { c throws(MILTypeError) in
            guard c.target >= .iOS18 else {
                let indices = try c.type("indices"), lut = try c.type("lut"), shape = try c.required("shape")
                guard shape.type.dtype == .uint32, shape.type.rank == 1, let dims = shape.intValues, dims.allSatisfy({ $0 > 0 }) else {
                    throw MILTypeError("shape must be a const uint32 vector of positive dims (iOS16 form)")
                }
                guard lut.rank == 1, [2, 4, 16, 64, 256].contains(lut.shape[0]) else {
                    throw MILTypeError("lut \(lut.shape) must be a vector of 2, 4, 16, 64 or 256 entries (iOS16 form)")
                }
                let bits = lut.shape[0].trailingZeroBitCount
                let count = dims.reduce(1, *)
                guard indices.dtype == .uint8, indices.rank == 1, indices.shape[0] == (count * bits + 7) / 8 else {
                    throw MILTypeError("indices \(indices) must be uint8 [\((count * bits + 7) / 8)] for \(count) \(bits)-bit indices (iOS16 form)")
                }
                return [MILTensorType(lut.dtype, dims)]
            }
            let indices = try c.type("indices"), lut = try c.type("lut")
            guard lut.rank == indices.rank + 2 else { throw MILTypeError("lut rank \(lut.rank) for indices rank \(indices.rank)") }
            let entries = 1 << indices.dtype.bitWidth
            guard lut.shape[indices.rank] == entries, lut.shape[indices.rank + 1] == 1 else {
                throw MILTypeError("lut \(lut.shape) does not hold \(entries) scalar entries for \(indices.dtype) indices")
            }
            for d in 0..<indices.rank where lut.shape[d] <= 0 || indices.shape[d] % lut.shape[d] != 0 {
                throw MILTypeError("lut \(lut.shape) does not divide indices \(indices.shape) into whole groups")
            }
            return [MILTensorType(lut.dtype, indices.shape)]
        },
    ]
}
