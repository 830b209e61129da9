import GraphIR

/// The known elements of a small tensor, held in memory for constant folding and for shape arithmetic.
///
/// Integers (every signed type, uint8…uint32, uint64 up to Int64.max) are `ints`; float, double, float16 and
/// bfloat16 are `floats` (exactly representable as Double); bool is `bools`. A rank-0 or rank-1 integer tensor may
/// also be `symbolic`: elements that are dims (`[batch, seq, 64]`, the output of Shape on a dynamic tensor), so
/// `Shape → Gather → Concat → Reshape` chains carry symbols through. Strings and sub-byte types are not held.
public struct TensorValue: Sendable, Equatable, CustomStringConvertible {
    /// The elements in row-major order, in the form their type is held.
    public enum Elements: Sendable, Equatable {
        /// Integer elements (every integer type; uint64 only up to Int64.max).
        case ints([Int64])
        /// Float elements (float, double, float16, bfloat16), exactly as doubles.
        case floats([Double])
        /// Bool elements.
        case bools([Bool])
        /// Integer elements that are dims, some of them symbolic.
        case symbolic([Dim])

        /// The number of elements.
        public var count: Int {
            switch self {
            case .ints(let v): return v.count
            case .floats(let v): return v.count
            case .bools(let v): return v.count
            case .symbolic(let v): return v.count
            }
        }

        /// Element `i` of each output is element `indices[i]` of self.
        public func select(_ indices: [Int]) -> Elements {
            switch self {
            case .ints(let v): return .ints(indices.map { v[$0] })
            case .floats(let v): return .floats(indices.map { v[$0] })
            case .bools(let v): return .bools(indices.map { v[$0] })
            case .symbolic(let v): return .symbolic(indices.map { v[$0] })
            }
        }

        /// As dims, when integer.
        public var dims: [Dim]? {
            switch self {
            case .ints(let v): return v.map { .value(Int($0)) }
            case .symbolic(let v): return v
            default: return nil
            }
        }

        /// Concatenation of element lists of one kind (integers and symbolic integers mix).
        public static func concatenated(_ parts: [Elements]) -> Elements? {
            guard let first = parts.first else { return nil }
            switch first {
            case .floats:
                var out: [Double] = []
                for p in parts { guard case .floats(let v) = p else { return nil }; out += v }
                return .floats(out)
            case .bools:
                var out: [Bool] = []
                for p in parts { guard case .bools(let v) = p else { return nil }; out += v }
                return .bools(out)
            case .ints, .symbolic:
                if parts.allSatisfy({ if case .ints = $0 { return true }; return false }) {
                    var out: [Int64] = []
                    for p in parts { if case .ints(let v) = p { out += v } }
                    return .ints(out)
                }
                var out: [Dim] = []
                for p in parts { guard let d = p.dims else { return nil }; out += d }
                return .symbolic(out)
            }
        }
    }

    /// The ONNX element type the elements stand for.
    public var dataType: DataType
    /// The shape; empty for a scalar.
    public var dims: [Int]
    /// The elements in row-major order.
    public var elements: Elements

    /// A value with these elements; the caller makes their count match `dims`.
    public init(dataType: DataType, dims: [Int], elements: Elements) {
        self.dataType = dataType
        self.dims = dims
        self.elements = elements
    }

    /// Integer tensor whose elements are dims; concrete (`ints`) when every dim is a value.
    public init(dataType: DataType = .int64, dims: [Int], symbolic: [Dim]) {
        self.dataType = dataType
        self.dims = dims
        if symbolic.allSatisfy({ if case .value = $0 { return true }; return false }) {
            elements = .ints(symbolic.map { if case .value(let v) = $0 { return Int64(v) }; return 0 })
        } else {
            elements = .symbolic(symbolic)
        }
    }

    /// A rank-0 integer value `v` of `type` (int64 by default).
    public static func scalar(_ v: Int64, _ type: DataType = .int64) -> TensorValue {
        TensorValue(dataType: type, dims: [], elements: .ints([v]))
    }

    /// The number of elements.
    public var count: Int { elements.count }

    /// Bytes the elements take as a tensor of `dataType` (Int.max when they cannot be stored).
    public var byteCount: Int { dataType.storageBytes(elements: count) ?? Int.max }

    /// Every element is a number (no symbol).
    public var isConcrete: Bool {
        if case .symbolic = elements { return false }
        return true
    }

    /// The value's type: `dataType` with every dim known.
    public var type: ValueType { .tensor(TensorType(elementType: dataType, shape: dims.map { .value($0) })) }

    /// The integer elements, when all are concrete integers.
    public var ints: [Int64]? {
        if case .ints(let v) = elements { return v }
        return nil
    }

    /// Type, shape and up to eight elements, for messages (`int64[3][1, 2, 3]`).
    public var description: String {
        let shown: String
        switch elements {
        case .ints(let v): shown = v.prefix(8).map(String.init).joined(separator: ", ")
        case .floats(let v): shown = v.prefix(8).map { "\($0)" }.joined(separator: ", ")
        case .bools(let v): shown = v.prefix(8).map { $0 ? "true" : "false" }.joined(separator: ", ")
        case .symbolic(let v): shown = v.prefix(8).map(\.description).joined(separator: ", ")
        }
        return "\(dataType.name)\(dims)[\(shown)\(count > 8 ? ", …" : "")]"
    }

    // MARK: element types

    /// How a data type's elements are held: as `ints`, `floats` or `bools`.
    public enum Kind { case int, float, bool }

    /// How a data type's elements are held, or nil when they are not (strings, sub-byte types, complex, float8).
    public static func kind(of type: DataType) -> Kind? {
        switch type {
        case .int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64: return .int
        case .float, .double, .float16, .bfloat16: return .float
        case .bool: return .bool
        default: return nil
        }
    }

    /// The range of an integer type's values (uint64 held up to Int64.max).
    public static func range(of type: DataType) -> ClosedRange<Int64>? {
        switch type {
        case .int8: return Int64(Int8.min)...Int64(Int8.max)
        case .int16: return Int64(Int16.min)...Int64(Int16.max)
        case .int32: return Int64(Int32.min)...Int64(Int32.max)
        case .int64: return Int64.min...Int64.max
        case .uint8: return 0...Int64(UInt8.max)
        case .uint16: return 0...Int64(UInt16.max)
        case .uint32: return 0...Int64(UInt32.max)
        case .uint64: return 0...Int64.max
        default: return nil
        }
    }

    /// A float rounded to what `type` can hold (float32, float16, bfloat16 round to nearest even).
    public static func rounded(_ v: Double, to type: DataType) -> Double {
        switch type {
        case .float: return Double(Float(v))
        case .float16: return Double(Float(halfBits: halfBits(of: Float(v))))
        case .bfloat16: return Double(Float(bfloatBits: bfloatBits(of: Float(v))))
        default: return v
        }
    }

    // MARK: decoding and encoding

    /// The elements of a raw-encoded tensor with at most `limit` elements; nil for anything else.
    public static func decode(_ tensor: Tensor, limit: Int) -> TensorValue? {
        guard tensor.encoding.isRaw, let kind = kind(of: tensor.dataType),
              let count = Tensor.elementCount(of: tensor.dims), count <= limit,
              case .bytes(let view) = tensor.data,
              let width = tensor.dataType.bitWidth.map({ $0 / 8 }), view.count == count * width else { return nil }
        let b = view.bytes
        func load<T: FixedWidthInteger>(_: T.Type, _ i: Int) -> T {
            var v: T = 0
            withUnsafeMutableBytes(of: &v) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: b[(i * width)..<((i + 1) * width)])) }
            return T(littleEndian: v)
        }
        let elements: Elements
        switch kind {
        case .bool:
            elements = .bools((0..<count).map { b[$0] != 0 })
        case .int:
            var out: [Int64] = []
            out.reserveCapacity(count)
            for i in 0..<count {
                switch tensor.dataType {
                case .int8: out.append(Int64(load(Int8.self, i)))
                case .int16: out.append(Int64(load(Int16.self, i)))
                case .int32: out.append(Int64(load(Int32.self, i)))
                case .int64: out.append(load(Int64.self, i))
                case .uint8: out.append(Int64(load(UInt8.self, i)))
                case .uint16: out.append(Int64(load(UInt16.self, i)))
                case .uint32: out.append(Int64(load(UInt32.self, i)))
                default:
                    let u = load(UInt64.self, i)
                    guard u <= UInt64(Int64.max) else { return nil }
                    out.append(Int64(u))
                }
            }
            elements = .ints(out)
        case .float:
            var out: [Double] = []
            out.reserveCapacity(count)
            for i in 0..<count {
                switch tensor.dataType {
                case .float: out.append(Double(Float(bitPattern: load(UInt32.self, i))))
                case .double: out.append(Double(bitPattern: load(UInt64.self, i)))
                case .float16: out.append(Double(Float(halfBits: load(UInt16.self, i))))
                default: out.append(Double(Float(bfloatBits: load(UInt16.self, i))))
                }
            }
            elements = .floats(out)
        }
        return TensorValue(dataType: tensor.dataType, dims: tensor.dims, elements: elements)
    }

    /// A raw-encoded tensor of the concrete elements; nil for symbolic values or values the type cannot hold.
    public func tensor(named name: String) -> Tensor? {
        guard let width = dataType.bitWidth.map({ $0 / 8 }), width > 0, Tensor.elementCount(of: dims) == count else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(count * width)
        func put<T: FixedWidthInteger>(_ v: T) {
            withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
        }
        switch (elements, TensorValue.kind(of: dataType)) {
        case (.bools(let v), .bool?):
            bytes = v.map { $0 ? 1 : 0 }
        case (.ints(let v), .int?):
            guard let range = TensorValue.range(of: dataType), v.allSatisfy(range.contains) else { return nil }
            for x in v {
                switch dataType {
                case .int8: put(Int8(x))
                case .int16: put(Int16(x))
                case .int32: put(Int32(x))
                case .int64: put(x)
                case .uint8: put(UInt8(x))
                case .uint16: put(UInt16(x))
                case .uint32: put(UInt32(x))
                default: put(UInt64(x))
                }
            }
        case (.floats(let v), .float?):
            for x in v {
                switch dataType {
                case .float: put(Float(x).bitPattern)
                case .double: put(x.bitPattern)
                case .float16: put(halfBits(of: Float(x)))
                default: put(bfloatBits(of: Float(x)))
                }
            }
        default:
            return nil
        }
        return Tensor(name: name, dataType: dataType, dims: dims, data: .bytes(ByteView(copying: bytes)))
    }
}

// IEEE half and bfloat16 conversions (round to nearest even), written out so they work wherever Float16 does not.

extension Float {
    init(halfBits h: UInt16) {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F {
            self = Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        } else if exponent == 0 {
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            self = sign == 0 ? magnitude : -magnitude
        } else {
            self = Float(bitPattern: sign | (UInt32(exponent + 112) << 23) | (mantissa << 13))
        }
    }

    init(bfloatBits b: UInt16) {
        self = Float(bitPattern: UInt32(b) << 16)
    }
}

func halfBits(of f: Float) -> UInt16 {
    let bits = f.bitPattern
    let sign = UInt16((bits >> 16) & 0x8000)
    if f.isNaN { return sign | 0x7E00 }
    let magnitude = abs(f)
    if magnitude >= 65520 { return sign | 0x7C00 }  // rounds to infinity
    if magnitude < Float(sign: .plus, exponent: -25, significand: 1) { return sign }  // below half the smallest subnormal
    if magnitude < Float(sign: .plus, exponent: -14, significand: 1) {
        // Subnormal: units of 2^-24, round to nearest even.
        let scaled = Double(magnitude) * Double(1 << 24)
        let r = scaled.rounded(.toNearestOrEven)
        return sign | UInt16(r)
    }
    let exponent = Int((bits >> 23) & 0xFF) - 127 + 15
    var mantissa = bits & 0x7F_FFFF
    let rest = mantissa & 0x1FFF
    mantissa >>= 13
    var h = UInt32(exponent) << 10 | mantissa
    if rest > 0x1000 || (rest == 0x1000 && (mantissa & 1) == 1) { h += 1 }
    return sign | UInt16(h)
}

func bfloatBits(of f: Float) -> UInt16 {
    if f.isNaN { return UInt16(f.bitPattern >> 16) | 0x40 }
    let bits = f.bitPattern
    let rounding = 0x7FFF + ((bits >> 16) & 1)
    return UInt16((bits &+ rounding) >> 16)
}
