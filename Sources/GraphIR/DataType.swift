/// Element types of ONNX tensors, with ONNX's `TensorProto.DataType` numbers as raw values.
public enum DataType: Int32, Sendable, CaseIterable, Hashable {
    /// 32-bit IEEE 754 float (`FLOAT`).
    case float = 1
    /// 8-bit unsigned integer.
    case uint8 = 2
    /// 8-bit signed integer.
    case int8 = 3
    /// 16-bit unsigned integer.
    case uint16 = 4
    /// 16-bit signed integer.
    case int16 = 5
    /// 32-bit signed integer.
    case int32 = 6
    /// 64-bit signed integer.
    case int64 = 7
    /// Byte strings, one per element.
    case string = 8
    /// Boolean, one byte per element (0 or 1).
    case bool = 9
    /// 16-bit IEEE 754 half-precision float.
    case float16 = 10
    /// 64-bit IEEE 754 float.
    case double = 11
    /// 32-bit unsigned integer.
    case uint32 = 12
    /// 64-bit unsigned integer.
    case uint64 = 13
    /// Complex number as two 32-bit floats (real, imaginary).
    case complex64 = 14
    /// Complex number as two 64-bit floats (real, imaginary).
    case complex128 = 15
    /// 16-bit brain float: float32's sign and 8-bit exponent with a 7-bit mantissa.
    case bfloat16 = 16
    /// 8-bit float with 4 exponent and 3 mantissa bits; no infinities.
    case float8e4m3fn = 17
    /// 8-bit float with 4 exponent and 3 mantissa bits; no infinities and no negative zero.
    case float8e4m3fnuz = 18
    /// 8-bit float with 5 exponent and 2 mantissa bits, with infinities and NaN.
    case float8e5m2 = 19
    /// 8-bit float with 5 exponent and 2 mantissa bits; no infinities and no negative zero.
    case float8e5m2fnuz = 20
    /// 4-bit unsigned integer, two per byte.
    case uint4 = 21
    /// 4-bit signed integer, two per byte.
    case int4 = 22
    /// 4-bit float with 2 exponent bits and 1 mantissa bit, two per byte.
    case float4e2m1 = 23
    /// 8-bit unsigned exponent with no mantissa: a power-of-two scale.
    case float8e8m0 = 24
    /// 2-bit unsigned integer, four per byte.
    case uint2 = 25
    /// 2-bit signed integer, four per byte.
    case int2 = 26
    /// 6-bit float with 2 exponent and 3 mantissa bits, packed as a 6-bit stream.
    case float6e2m3 = 27
    /// 6-bit float with 3 exponent and 2 mantissa bits, packed as a 6-bit stream.
    case float6e3m2 = 28

    /// ONNX's enum name in lower case (`float`, `float16`, `int4`…): the name used in reports and manifests.
    public var name: String { String(describing: self) }

    /// The type whose `name` is `name` (`float16`, `int4`…), or nil when no type has that name.
    public init?(name: String) {
        guard let match = DataType.allCases.first(where: { $0.name == name }) else { return nil }
        self = match
    }

    /// Bits one element occupies in packed little-endian storage (ONNX `raw_data` layout); nil for strings.
    public var bitWidth: Int? {
        switch self {
        case .string: return nil
        case .bool, .uint8, .int8, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float8e8m0: return 8
        case .uint16, .int16, .float16, .bfloat16: return 16
        case .float, .int32, .uint32: return 32
        case .int64, .uint64, .double, .complex64: return 64
        case .complex128: return 128
        case .uint4, .int4, .float4e2m1: return 4
        case .uint2, .int2: return 2
        case .float6e2m3, .float6e3m2: return 6
        }
    }

    /// True for float, double, float16, bfloat16 and the float8, float6 and float4 types; false for integers, bool,
    /// strings and complex types.
    public var isFloatingPoint: Bool {
        switch self {
        case .float, .float16, .double, .bfloat16, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz,
             .float4e2m1, .float8e8m0, .float6e2m3, .float6e3m2:
            return true
        default:
            return false
        }
    }

    /// Bytes needed to store `elements` packed values (sub-byte types round up to whole bytes);
    /// nil for strings or when the size does not fit in `Int`.
    public func storageBytes(elements: Int) -> Int? {
        guard let bits = bitWidth, elements >= 0 else { return nil }
        let (totalBits, overflow) = elements.multipliedReportingOverflow(by: bits)
        if overflow { return nil }
        return totalBits / 8 + (totalBits % 8 == 0 ? 0 : 1)
    }
}
