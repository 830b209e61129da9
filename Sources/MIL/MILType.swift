import GraphIR
import Quantization

/// MIL element types, with the numbers of Core ML's `MILSpec.DataType` (MIL.proto) as raw values.
public enum MILDataType: Int, Sendable, Hashable, CustomStringConvertible {
    case bool = 1
    case string = 2
    case fp16 = 10
    case fp32 = 11
    case int8 = 21
    case int16 = 22
    case int32 = 23
    case int64 = 24
    case int4 = 25
    case uint8 = 31
    case uint16 = 32
    /// Only the `shape` of the iOS16 `constexpr_lut_to_dense` (iOS16/constexpr_ops.py); inline values are
    /// little-endian `bytes` (coremltools' IMMEDIATE_VALUE_TYPES_IN_BYTES, types/__init__.py, lists uint32).
    case uint32 = 33
    case uint4 = 35
    case uint2 = 36
    case uint1 = 37
    case uint6 = 38
    case uint3 = 39

    /// The name MIL's `cast` op takes (`dtype="fp16"`) and coremltools prints.
    public var description: String {
        switch self {
        case .bool: return "bool"
        case .string: return "string"
        case .fp16: return "fp16"
        case .fp32: return "fp32"
        case .int8: return "int8"
        case .int16: return "int16"
        case .int32: return "int32"
        case .int64: return "int64"
        case .int4: return "int4"
        case .uint8: return "uint8"
        case .uint16: return "uint16"
        case .uint32: return "uint32"
        case .uint4: return "uint4"
        case .uint1: return "uint1"
        case .uint2: return "uint2"
        case .uint3: return "uint3"
        case .uint6: return "uint6"
        }
    }

    /// True for fp16 and fp32.
    public var isFloat: Bool { self == .fp16 || self == .fp32 }

    /// Bits per element in blob storage.
    public var bitWidth: Int {
        switch self {
        case .bool, .int8, .uint8: return 8
        case .fp16, .int16, .uint16: return 16
        case .fp32, .int32, .uint32: return 32
        case .int64: return 64
        case .int4, .uint4: return 4
        case .uint1: return 1
        case .uint2: return 2
        case .uint3: return 3
        case .uint6: return 6
        case .string: return 0
        }
    }

    /// The blob storage data type (MILBlob's `BlobDataType`), for the types weight.bin can hold.
    var blobType: UInt32? {
        switch self {
        case .fp16: return 1
        case .fp32: return 2
        case .uint8: return 3
        case .int8: return 4
        case .int16: return 6
        case .uint16: return 7
        case .int4: return 8
        case .uint1: return 9
        case .uint2: return 10
        case .uint4: return 11
        case .uint3: return 12
        case .uint6: return 13
        case .int32: return 14
        default: return nil
        }
    }
}

/// A MIL tensor type (rank 0 is a scalar). Dims are static unless an input has a flexible dim
/// (`--input-shape NAME=1,1..512`): a dim known only at run time is `MILTensorType.unknownDim` (written as MIL.proto's
/// `Dimension.unknown`, as coremltools writes a symbolic dim).
public struct MILTensorType: Sendable, Hashable, CustomStringConvertible {
    /// A dim known only at run time.
    public static let unknownDim = -1

    /// The element type.
    public var dtype: MILDataType
    /// The dims; empty for a scalar.
    public var shape: [Int]

    /// A tensor type of `dtype` and `shape`.
    public init(_ dtype: MILDataType, _ shape: [Int]) {
        self.dtype = dtype
        self.shape = shape
    }

    /// Number of dims (0 for a scalar).
    public var rank: Int { shape.count }
    /// Number of elements (1 for a scalar); only meaningful when `isStatic`.
    public var count: Int { shape.reduce(1, *) }
    /// True when every dim is known before run time.
    public var isStatic: Bool { !shape.contains(Self.unknownDim) }
    /// The element type followed by the dims, e.g. `fp16[1, 3, 224, 224]`.
    public var description: String {
        isStatic ? "\(dtype)\(shape)" : "\(dtype)[" + shape.map { $0 == Self.unknownDim ? "?" : String($0) }.joined(separator: ", ") + "]"
    }

    /// The same shape with another element type.
    public func with(dtype: MILDataType) -> MILTensorType { MILTensorType(dtype, shape) }
    /// The same element type with another shape.
    public func with(shape: [Int]) -> MILTensorType { MILTensorType(dtype, shape) }
}

/// A named value of a MIL program: a function input or an op output.
public struct MILVar: Sendable, Hashable {
    /// The MIL identifier.
    public var name: String
    /// Its tensor type.
    public var type: MILTensorType

    /// A variable `name` of `type`.
    public init(name: String, type: MILTensorType) {
        self.name = name
        self.type = type
    }
}

/// The elements of a constant, in the form MIL stores them.
public enum MILConstData: Sendable {
    case floats([Float])
    case ints([Int32])
    case bools([Bool])
    case strings([String])
    /// Packed little-endian bytes of `dtype` (fp16 bits, int8, packed sub-byte values), possibly a view of a package.
    case bytes(ByteView)
}

/// A constant value: its type and elements.
public struct MILConst: Sendable {
    /// The constant's tensor type.
    public var type: MILTensorType
    /// Its elements.
    public var data: MILConstData

    /// A constant of `type` holding `data`.
    public init(_ type: MILTensorType, _ data: MILConstData) {
        self.type = type
        self.data = data
    }

    /// An int32 scalar.
    public static func scalar(_ value: Int32) -> MILConst { MILConst(MILTensorType(.int32, []), .ints([value])) }
    /// A bool scalar.
    public static func scalar(_ value: Bool) -> MILConst { MILConst(MILTensorType(.bool, []), .bools([value])) }
    /// A string scalar (e.g. the `dtype` of a `cast` op).
    public static func scalar(_ value: String) -> MILConst { MILConst(MILTensorType(.string, []), .strings([value])) }
    /// A rank-1 int32 constant; values beyond Int32's range are clamped.
    public static func ints(_ values: [Int]) -> MILConst {
        MILConst(MILTensorType(.int32, [values.count]), .ints(values.map { Int32(clamping: $0) }))
    }
    /// A rank-1 bool constant.
    public static func bools(_ values: [Bool]) -> MILConst { MILConst(MILTensorType(.bool, [values.count]), .bools(values)) }

    /// A float scalar of `dtype` (fp16 stored as its bits).
    public static func float(_ value: Float, _ dtype: MILDataType, shape: [Int] = []) -> MILConst {
        floats(Array(repeating: value, count: shape.reduce(1, *)), dtype, shape: shape)
    }

    /// A constant of `values` shaped `shape`: fp16 stored as its bits when `dtype` is fp16, else fp32.
    public static func floats(_ values: [Float], _ dtype: MILDataType, shape: [Int]) -> MILConst {
        if dtype == .fp16 {
            return MILConst(MILTensorType(.fp16, shape), .bytes(Float16Codec.encode(values)))
        }
        return MILConst(MILTensorType(.fp32, shape), .floats(values))
    }
}

extension MILConst {
    /// The elements as integers, for int32 constants (inline or packed bytes).
    public var intValues: [Int]? {
        switch data {
        case .ints(let values): return values.map(Int.init)
        case .bytes(let view) where type.dtype == .int32 && view.count == type.count * 4:
            return (0..<type.count).map { Int(view.bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
        case .bytes(let view) where type.dtype == .uint32 && view.count == type.count * 4:
            return (0..<type.count).map { Int(UInt32(littleEndian: view.bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        default: return nil
        }
    }

    /// The number of elements the data holds (packed bytes are checked against the type's bit width).
    var storedElementsMatch: Bool {
        switch data {
        case .floats(let v): return v.count == type.count
        case .ints(let v): return v.count == type.count
        case .bools(let v): return v.count == type.count
        case .strings(let v): return v.count == type.count
        case .bytes(let view): return view.count == (type.count * type.dtype.bitWidth + 7) / 8
        }
    }
}

extension MILConst {
    /// The elements as floats, for fp32 and fp16 constants (nil for other types or above 1 Mi elements).
    public var floatValues: [Float]? {
        guard type.count <= 1 << 20 else { return nil }
        switch (type.dtype, data) {
        case (.fp32, .floats(let v)): return v
        case (.fp32, .bytes(let view)) where view.count == type.count * 4:
            return (0..<type.count).map { view.bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        case (.fp16, .bytes(let view)) where view.count == type.count * 2:
            return (0..<type.count).map { Float16Codec.float(fromHalf: view.bytes.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
        default: return nil
        }
    }
}
