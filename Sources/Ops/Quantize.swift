import GraphIR

/// QuantizeLinear (the zero point's type, else `output_dtype` (21), else uint8), DequantizeLinear (the scale's
/// type, or `output_dtype` from 23), DynamicQuantizeLinear (uint8 data, float scale, uint8 zero point): the data
/// keeps its shape.
public enum QuantizeOp: Operator {
    /// `QuantizeLinear`, `DequantizeLinear` and `DynamicQuantizeLinear`, with the opsets their ONNX definitions
    /// changed at.
    public static let schemas = [OpSchema("QuantizeLinear", [10, 13, 19, 21, 23, 24, 25]),
                                 OpSchema("DequantizeLinear", [10, 13, 19, 21, 23, 24, 25]),
                                 OpSchema("DynamicQuantizeLinear", [11])]

    /// The data's shape in the output type described above (DynamicQuantizeLinear adds two scalars).
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        let shape = ctx.shape(0)
        switch ctx.opType {
        case "QuantizeLinear":
            let requested = ctx.since >= 21 ? try ctx.int("output_dtype", default: 0) : 0
            let out = ctx.has(2) ? ctx.elementType(2) : requested != 0 ? DataType(rawValue: Int32(clamping: requested)) : .uint8
            return [tensorType(out, shape)]
        case "DequantizeLinear":
            let requested = ctx.since >= 23 ? try ctx.int("output_dtype", default: 0) : 0
            let out = requested != 0 ? DataType(rawValue: Int32(clamping: requested)) : (ctx.elementType(1) ?? .float)
            return [tensorType(out, shape)]
        default:
            return [tensorType(.uint8, shape), tensorType(.float, []), tensorType(.uint8, [])]
        }
    }
}
