import CKernels
import GraphIR

/// float32 ⇄ IEEE 754 half precision. `encode(_:into:)` and `decode` run the SIMD kernels (F16C where the CPU has
/// it); `halfBits` and `float(fromHalf:)` are the scalar reference the kernels are tested against.
public enum Float16Codec {
    /// Largest finite half.
    public static let maxFinite: Float = 65504

    /// Error statistics of one encoding pass, summed in double precision.
    public struct Stats: Sendable, Equatable {
        /// Values beyond ±65504, clamped to the largest finite half.
        public var clamped = 0
        /// inf or NaN inputs; when non-zero the output is not a faithful encoding and must not be used.
        public var nonFinite = 0
        /// Largest absolute difference between a value and its half.
        public var maxAbsError: Float = 0
        /// Σw² over the values.
        public var signalEnergy: Double = 0
        /// Σ(w − ŵ)²: the squared error of the halves.
        public var errorEnergy: Double = 0
        /// Empty statistics: all counts and sums zero.
        public init() {}
    }

    /// Encodes the little-endian float32 values in `source` into `destination` (2 bytes per value) with the kernel.
    public static func encode(_ source: ByteView, into destination: OwnedBuffer) -> Stats {
        let count = source.count / 4
        precondition(destination.mutableBytes.count == count * 2)
        var raw = mlpkg_f16_stats()
        // The kernel reads unaligned floats; the source may be a mapped file at any offset.
        mlpkg_f32_to_f16(source.bytes.baseAddress?.assumingMemoryBound(to: Float.self),
                         destination.mutableBytes.baseAddress?.assumingMemoryBound(to: UInt16.self), count, &raw)
        var stats = Stats()
        stats.clamped = raw.clamped
        stats.nonFinite = raw.non_finite
        stats.maxAbsError = raw.max_abs_error
        stats.signalEnergy = raw.signal_energy
        stats.errorEnergy = raw.error_energy
        return stats
    }

    /// The half-precision bytes of `values` (little-endian), with the kernel.
    public static func encode(_ values: [Float]) -> ByteView {
        let buffer = OwnedBuffer(uninitializedCount: values.count * 2)
        var raw = mlpkg_f16_stats()
        values.withUnsafeBufferPointer {
            mlpkg_f32_to_f16($0.baseAddress, buffer.mutableBytes.baseAddress?.assumingMemoryBound(to: UInt16.self),
                             $0.count, &raw)
        }
        return buffer.view
    }

    /// Widens little-endian half values in `source` to float32 in `destination` (4 bytes per value).
    public static func decode(_ source: ByteView, into destination: OwnedBuffer) {
        let count = source.count / 2
        precondition(destination.mutableBytes.count == count * 4)
        mlpkg_f16_to_f32(source.bytes.baseAddress?.assumingMemoryBound(to: UInt16.self),
                         destination.mutableBytes.baseAddress?.assumingMemoryBound(to: Float.self), count)
    }

    /// Scalar reference: writes the half-precision bit patterns of `source` (all finite) into `destination`,
    /// rounding to nearest even and clamping magnitudes beyond 65504.
    public static func encode(_ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableBufferPointer<UInt16>) -> Stats {
        precondition(source.count == destination.count)
        var stats = Stats()
        for i in source.indices {
            var v = source[i]
            if abs(v) > maxFinite {
                stats.clamped += 1
                v = v < 0 ? -maxFinite : maxFinite
            }
            let half = halfBits(v)
            destination[i] = half
            let back = float(fromHalf: half)
            let err = abs(source[i] - back)
            stats.maxAbsError = max(stats.maxAbsError, err)
            stats.signalEnergy += Double(source[i]) * Double(source[i])
            stats.errorEnergy += Double(err) * Double(err)
        }
        return stats
    }

    /// Widens half bit patterns to float32 (exact).
    public static func decode(_ source: UnsafeBufferPointer<UInt16>, into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(source.count == destination.count)
        for i in source.indices { destination[i] = float(fromHalf: source[i]) }
    }

    /// Round-to-nearest-even conversion of a finite or non-finite float to half bits.
    @inline(__always)
    public static func halfBits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF)
        var mantissa = bits & 0x7F_FFFF
        if exponent == 0xFF {  // inf or NaN (NaN keeps a quiet payload bit)
            return sign | 0x7C00 | (mantissa != 0 ? 0x0200 | UInt16(mantissa >> 13) : 0)
        }
        let halfExponent = exponent - 127 + 15
        if halfExponent >= 0x1F { return sign | 0x7C00 }  // overflow → inf
        if halfExponent <= 0 {
            // Subnormal half (or zero): shift the implicit-one mantissa right, rounding to nearest even.
            if halfExponent < -10 { return sign }
            mantissa |= 0x80_0000
            let shift = UInt32(14 - halfExponent)
            let halfMantissa = mantissa >> shift
            let remainder = mantissa & ((1 << shift) - 1)
            let halfway = UInt32(1) << (shift - 1)
            var result = UInt32(halfMantissa)
            if remainder > halfway || (remainder == halfway && (halfMantissa & 1) != 0) { result += 1 }
            return sign | UInt16(result)
        }
        var result = UInt32(halfExponent) << 10 | (mantissa >> 13)
        let remainder = mantissa & 0x1FFF
        if remainder > 0x1000 || (remainder == 0x1000 && (result & 1) != 0) { result += 1 }  // may carry into exponent
        return sign | UInt16(result)
    }

    /// The float32 value of the half bit pattern `half`, exactly (zeros, subnormals, infinities and NaN included).
    @inline(__always)
    public static func float(fromHalf half: UInt16) -> Float {
        let sign = UInt32(half & 0x8000) << 16
        let exponent = UInt32(half >> 10) & 0x1F
        let mantissa = UInt32(half & 0x3FF)
        if exponent == 0 {
            if mantissa == 0 { return Float(bitPattern: sign) }
            // Subnormal: value = mantissa × 2^-24.
            let magnitude = Float(mantissa) * Float(bitPattern: 0x3380_0000)
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }
}
