/// Activation quantization at run time: iOS17/quantization_ops.py (`quantize`, `dequantize`). Both take a constant
/// scale and optional zero point that are scalars, or vectors along `axis` (given exactly when they are vectors);
/// `quantize` computes clip(round(x / scale) + zero_point) into int8 or uint8 (`output_dtype`, which the zero point's
/// type must equal), `dequantize` scale · (q − zero_point) in the scale's float type.
enum MILQuantizationDefinitions {
    static let file = "iOS17/quantization_ops.py"

    /// coremltools' `_check_scale_zp_shapes`: scalars without an axis, or vectors of input.shape[axis] with one.
    static func checkParameters(_ c: MILOpContext, input: MILTensorType) throws(MILTypeError) {
        let scale = try c.type("scale")
        let zero = try c.optionalType("zero_point")
        guard c.constant("scale") != nil else { throw MILTypeError("parameter 'scale' must be constant") }
        if c.has("zero_point"), c.constant("zero_point") == nil { throw MILTypeError("parameter 'zero_point' must be constant") }
        switch scale.rank {
        case 0:
            guard !c.has("axis") else { throw MILTypeError("axis must not be given when scale is a scalar") }
            if let zero, zero.rank != 0 { throw MILTypeError("zero_point must be a scalar when scale is a scalar") }
        case 1:
            guard c.has("axis") else { throw MILTypeError("axis must be given when scale is a vector") }
            let axis = try c.int("axis")
            guard axis >= -input.rank, axis < input.rank else {
                throw MILTypeError("axis \(axis) is out of range for rank \(input.rank)")
            }
            let length = input.shape[axis < 0 ? axis + input.rank : axis]
            guard Shapes.mayEqual(scale.shape[0], length) else {
                throw MILTypeError("scale has \(scale.shape[0]) entries for dim \(length) along axis \(axis)")
            }
            if let zero {
                guard zero.rank == 1, Shapes.mayEqual(zero.shape[0], length) else {
                    throw MILTypeError("zero_point must be a vector of \(length) when scale is a vector")
                }
            }
        default:
            throw MILTypeError("scale and zero_point must be scalars or vectors, got rank \(scale.rank)")
        }
    }

    static let all: [MILOpDefinition] = [
        MILOpDefinition("quantize", since: .iOS17, file: file,
                        domains: ["input": Shapes.floats, "scale": Shapes.floats, "zero_point": [.int8, .uint8]]) { c throws(MILTypeError) in
            let input = try c.type("input"), scale = try c.type("scale")
            guard input.rank >= 1 else { throw MILTypeError("input must have rank 1 or more") }
            guard scale.dtype == input.dtype else { throw MILTypeError("scale is \(scale.dtype), input \(input.dtype) (both SrcT)") }
            let name = try c.string("output_dtype")
            guard let out: MILDataType = ["int8": .int8, "uint8": .uint8][name] else {
                throw MILTypeError("output_dtype '\(name)' is not int8 or uint8")
            }
            if let zero = try c.optionalType("zero_point"), zero.dtype != out {
                throw MILTypeError("zero_point is \(zero.dtype), output_dtype \(out)")
            }
            if let values = c.constant("scale")?.floatValues, values.allSatisfy({ $0 == 0 }) {
                throw MILTypeError("scale cannot be 0")
            }
            try checkParameters(c, input: input)
            return [input.with(dtype: out)]
        },
        MILOpDefinition("dequantize", since: .iOS17, file: file,
                        domains: ["input": [.int8, .uint8], "zero_point": [.int8, .uint8], "scale": Shapes.floats]) { c throws(MILTypeError) in
            let input = try c.type("input"), scale = try c.type("scale")
            guard input.rank >= 1 else { throw MILTypeError("input must have rank 1 or more") }
            if let zero = try c.optionalType("zero_point"), zero.dtype != input.dtype {
                throw MILTypeError("zero_point is \(zero.dtype), input \(input.dtype) (both SrcT)")
            }
            try checkParameters(c, input: input)
            return [input.with(dtype: scale.dtype)]
        },
    ]
}
