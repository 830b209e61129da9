import CKernels
import GraphIR
import MIL
import Quantization

/// A tensor while a program runs: its MIL element type, its shape and its elements. Float types hold Float values
/// (an fp16 tensor holds values fp16 can represent), the integer types and bool hold Int32 (bool as 0 or 1), and a
/// float32 weight of the package stays a view of the memory-mapped weight file until a kernel needs a copy.
public struct EvalTensor: @unchecked Sendable {
    /// Where the elements are.
    public enum Storage {
        case floats([Float])
        case ints([Int32])
        /// Little-endian float32 values in a view of a mapped file, 4-byte aligned.
        case mapped(ByteView)
        /// A string scalar (op parameters such as `pad_type`).
        case string(String)
    }

    /// The element type.
    public var dtype: MILDataType
    /// The dims (empty for a scalar).
    public var shape: [Int]
    /// The elements.
    public var storage: Storage

    /// A tensor of `dtype` and `shape` holding `storage`.
    public init(_ dtype: MILDataType, _ shape: [Int], _ storage: Storage) {
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
    }

    /// A float tensor (`dtype` fp32 unless given).
    public init(floats: [Float], shape: [Int], dtype: MILDataType = .fp32) {
        self.init(dtype, shape, .floats(floats))
    }

    /// An int32 tensor (or another integer type, or bool).
    public init(ints: [Int32], shape: [Int], dtype: MILDataType = .int32) {
        self.init(dtype, shape, .ints(ints))
    }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// Number of dims.
    public var rank: Int { shape.count }
    /// True for fp16 and fp32 tensors.
    public var isFloat: Bool { dtype.isFloat }

    /// The elements as floats (integers converted), copied out of a mapped view when needed.
    public var floats: [Float] {
        switch storage {
        case .floats(let f): return f
        case .ints(let i): return i.map(Float.init)
        case .mapped(let view):
            return [Float](unsafeUninitializedCapacity: count) { buffer, n in
                _ = view.bytes.copyBytes(to: UnsafeMutableRawBufferPointer(buffer))
                n = count
            }
        case .string: return []
        }
    }

    /// The elements as Int32 (floats truncated toward zero).
    public var ints: [Int32] {
        switch storage {
        case .ints(let i): return i
        case .string: return []
        default: return floats.map(Rounding.int32)
        }
    }

    /// The elements as Ints.
    public var intValues: [Int] { ints.map(Int.init) }

    /// A string scalar's text.
    public var string: String? {
        if case .string(let s) = storage { return s }
        return nil
    }

    /// Calls `body` with the float elements in place (no copy for owned arrays and aligned mapped views).
    public func withFloats<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        switch storage {
        case .floats(let f): return try f.withUnsafeBufferPointer(body)
        case .mapped(let view) where Int(bitPattern: view.bytes.baseAddress) % 4 == 0:
            return try body(view.bytes.bindMemory(to: Float.self))
        default:
            return try floats.withUnsafeBufferPointer(body)
        }
    }

    /// The same elements with another shape.
    public func reshaped(_ newShape: [Int]) -> EvalTensor { EvalTensor(dtype, newShape, storage) }

    /// A tensor of `dtype` and `shape` whose element i is this tensor's element `indices[i]` (layout ops).
    func gathered(_ indices: [Int], shape newShape: [Int], dtype newType: MILDataType? = nil) -> EvalTensor {
        switch storage {
        case .ints(let v): return EvalTensor(newType ?? dtype, newShape, .ints(indices.map { v[$0] }))
        case .string: return self
        default:
            return withFloats { p in EvalTensor(newType ?? dtype, newShape, .floats(indices.map { p[$0] })) }
        }
    }
}

/// Row-major strides of `shape`.
@inline(__always) func stridesOf(_ shape: [Int]) -> [Int] {
    var s = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for d in stride(from: shape.count - 1, through: 0, by: -1) {
        s[d] = acc
        acc *= shape[d]
    }
    return s
}

/// Float rounding to what a MIL element type holds.
enum Rounding {
    /// Every value rounded to the nearest fp16 (ties to even); beyond ±65504 it becomes ±inf, as fp16 compute
    /// overflows.
    static func toHalf(_ values: inout [Float]) {
        let n = values.count
        guard n > 0 else { return }
        var bits = [UInt16](repeating: 0, count: n)
        values.withUnsafeMutableBufferPointer { v in
            bits.withUnsafeMutableBufferPointer { b in
                for i in 0..<n { b[i] = halfBits(v[i]) }
                mlpkg_f16_to_f32(b.baseAddress!, v.baseAddress!, n)
            }
        }
    }

    /// IEEE half bits of `f`, round to nearest even, overflow to infinity (NaN stays NaN).
    @inline(__always) static func halfBits(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16((x >> 16) & 0x8000)
        let exp = Int((x >> 23) & 0xFF)
        var mant = x & 0x7FFFFF
        if exp == 0xFF { return sign | 0x7C00 | (mant != 0 ? 0x200 : 0) }
        let e = exp - 127 + 15
        if e >= 0x1F { return sign | 0x7C00 }
        if e <= 0 {
            if e < -10 { return sign }
            mant |= 0x800000
            let shift = UInt32(14 - e)
            let half = UInt32(1) << (shift - 1)
            var r = mant >> shift
            let rest = mant & ((UInt32(1) << shift) - 1)
            if rest > half || (rest == half && (r & 1) == 1) { r += 1 }
            return sign | UInt16(r)
        }
        var r = UInt32(e) << 10 | (mant >> 13)
        let rest = mant & 0x1FFF
        if rest > 0x1000 || (rest == 0x1000 && (r & 1) == 1) { r += 1 }
        return sign | UInt16(truncatingIfNeeded: r)
    }

    /// A float truncated toward zero into Int32's range (inf and NaN become 0; never a trap).
    static func int32(_ v: Float) -> Int32 {
        guard v.isFinite else { return 0 }
        return Int32(max(min(Double(v).rounded(.towardZero), 2_147_483_647), -2_147_483_648))
    }

    /// The value of an integer type after a conversion: wrapped like a C cast into the type's range.
    static func wrap(_ v: Int64, to dtype: MILDataType) -> Int32 {
        switch dtype {
        case .int8: return Int32(Int8(truncatingIfNeeded: v))
        case .uint8: return Int32(UInt8(truncatingIfNeeded: v))
        case .int16: return Int32(Int16(truncatingIfNeeded: v))
        case .uint16: return Int32(UInt16(truncatingIfNeeded: v))
        case .bool: return v != 0 ? 1 : 0
        default: return Int32(truncatingIfNeeded: v)
        }
    }
}

extension EvalTensor {
    /// A constant of the program as a tensor: fp32 blobs stay mapped, fp16 is decoded, sub-byte integers unpacked
    /// (LSB first, as Core ML's blob storage packs them).
    init(const c: MILConst) throws(EvaluationError) {
        let t = c.type
        switch c.data {
        case .floats(let f): self.init(floats: f, shape: t.shape, dtype: t.dtype == .fp16 ? .fp16 : .fp32)
            if t.dtype == .fp16, case .floats(var v) = storage { Rounding.toHalf(&v); storage = .floats(v) }
        case .ints(let i): self.init(ints: i, shape: t.shape, dtype: t.dtype)
        case .bools(let b): self.init(ints: b.map { $0 ? 1 : 0 }, shape: t.shape, dtype: .bool)
        case .strings(let s):
            guard s.count == 1 else { throw EvaluationError("a string constant of \(s.count) elements") }
            self.init(.string, [], .string(s[0]))
        case .bytes(let view):
            let n = t.count
            let bytes = view.bytes
            switch t.dtype {
            case .fp32:
                guard bytes.count >= n * 4 else { throw EvaluationError("an fp32 constant of \(bytes.count) bytes for \(t)") }
                self.init(.fp32, t.shape, .mapped(view.slice(0..<(n * 4))))
                if Int(bitPattern: bytes.baseAddress) % 4 != 0 { storage = .floats(floats) }
            case .fp16:
                guard bytes.count >= n * 2 else { throw EvaluationError("an fp16 constant of \(bytes.count) bytes for \(t)") }
                var out = [Float](repeating: 0, count: n)
                if n > 0 {
                    let half = [UInt16](unsafeUninitializedCapacity: n) { b, k in
                        _ = bytes.copyBytes(to: UnsafeMutableRawBufferPointer(b), count: n * 2)
                        k = n
                    }
                    half.withUnsafeBufferPointer { h in out.withUnsafeMutableBufferPointer { mlpkg_f16_to_f32(h.baseAddress!, $0.baseAddress!, n) } }
                }
                self.init(floats: out, shape: t.shape, dtype: .fp16)
            case .int32:
                guard bytes.count >= n * 4 else { throw EvaluationError("an int32 constant of \(bytes.count) bytes for \(t)") }
                self.init(ints: (0..<n).map { bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self) }, shape: t.shape)
            case .uint32:
                // constexpr_lut_to_dense's iOS16 `shape` parameter (dims, far below 2^31).
                guard bytes.count >= n * 4 else { throw EvaluationError("a uint32 constant of \(bytes.count) bytes for \(t)") }
                self.init(ints: (0..<n).map { Int32(clamping: bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }, shape: t.shape, dtype: .uint32)
            case .int16, .uint16:
                guard bytes.count >= n * 2 else { throw EvaluationError("a \(t.dtype) constant of \(bytes.count) bytes for \(t)") }
                let signed = t.dtype == .int16
                self.init(ints: (0..<n).map {
                    let u = bytes.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)
                    return signed ? Int32(Int16(bitPattern: u)) : Int32(u)
                }, shape: t.shape, dtype: t.dtype)
            case .int8, .uint8, .int4, .uint4, .uint1, .uint2, .uint3, .uint6:
                let bits = t.dtype.bitWidth
                guard bytes.count * 8 >= n * bits else { throw EvaluationError("a \(t.dtype) constant of \(bytes.count) bytes for \(t)") }
                let signed = t.dtype == .int8 || t.dtype == .int4
                var out = [Int32](repeating: 0, count: n)
                if bits == 8 {
                    for i in 0..<n { out[i] = signed ? Int32(Int8(bitPattern: bytes[i])) : Int32(bytes[i]) }
                } else if bits == 4 {
                    for i in 0..<n {
                        let v = Int32((bytes[i >> 1] >> UInt8((i & 1) * 4)) & 0xF)
                        out[i] = signed && v >= 8 ? v - 16 : v
                    }
                } else {
                for i in 0..<n {
                    var v: UInt32 = 0
                    for b in 0..<bits {
                        let bit = i * bits + b
                        if bytes[bit >> 3] & (1 << UInt8(bit & 7)) != 0 { v |= 1 << UInt32(b) }
                    }
                    out[i] = signed && v & (1 << UInt32(bits - 1)) != 0 ? Int32(v) - (1 << Int32(bits)) : Int32(v)
                }
                }
                self.init(ints: out, shape: t.shape, dtype: t.dtype)
            case .bool:
                self.init(ints: (0..<n).map { bytes[$0] != 0 ? 1 : 0 }, shape: t.shape, dtype: .bool)
            case .int64:
                self.init(ints: (0..<n).map { Int32(truncatingIfNeeded: bytes.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) },
                          shape: t.shape, dtype: .int32)
            case .string:
                throw EvaluationError("a string constant stored as bytes")
            }
        }
    }
}

/// Why a program cannot be run: the op (type and name) and what is wrong.
public struct EvaluationError: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    /// An error with `message`.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}
