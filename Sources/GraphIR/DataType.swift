/// Element types of ONNX tensors, with ONNX's `TensorProto.DataType` numbers as raw values.
public enum DataType: Int32, Sendable, CaseIterable, Hashable {
    case float = 1
    case uint8 = 2
    case int8 = 3
    case uint16 = 4
    case int16 = 5
    case int32 = 6
    case int64 = 7
    case string = 8
    case bool = 9
    case float16 = 10
    case double = 11
    case uint32 = 12
    case uint64 = 13
    case complex64 = 14
    case complex128 = 15
    case bfloat16 = 16
    case float8e4m3fn = 17
    case float8e4m3fnuz = 18
    case float8e5m2 = 19
    case float8e5m2fnuz = 20
    case uint4 = 21
    case int4 = 22
    case float4e2m1 = 23
    case float8e8m0 = 24
    case uint2 = 25
    case int2 = 26
    case float6e2m3 = 27
    case float6e3m2 = 28

    /// ONNX's enum name in lower case (`float`, `float16`, `int4`…): the name used in reports and manifests.
    public var name: String { String(describing: self) }

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
