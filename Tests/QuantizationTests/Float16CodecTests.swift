import Testing
@testable import Quantization

@Suite struct Float16CodecTests {
    @Test("every half bit pattern widens and narrows back to itself (NaNs stay NaN)")
    func exhaustiveRoundTrip() {
        for bits in 0...0xFFFF {
            let half = UInt16(bits)
            let value = Float16Codec.float(fromHalf: half)
            if value.isNaN {
                #expect(Float16Codec.float(fromHalf: Float16Codec.halfBits(value)).isNaN)
                continue
            }
            #expect(Float16Codec.halfBits(value) == half, "half 0x\(String(bits, radix: 16))")
        }
    }

    #if arch(x86_64) || arch(arm64)
    @Test("narrowing matches Swift's Float16 (IEEE round to nearest even) on a sweep of floats")
    func matchesSwiftFloat16() {
        var rng = SplitMix(seed: 7)
        for _ in 0..<200_000 {
            // Random bit patterns cover subnormals, ties and overflow.
            let value = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            if value.isNaN { continue }
            #expect(Float16Codec.halfBits(value) == Float16(value).bitPattern, "\(value)")
        }
        // Exact ties between two halves round to the even one.
        let tie = Float(1) + Float(1) / 2048  // halfway between 1 and 1 + 2^-10
        #expect(Float16Codec.halfBits(tie) == 0x3C00)
        let tieUp = Float(1) + Float(3) / 2048
        #expect(Float16Codec.halfBits(tieUp) == 0x3C02)
    }
    #endif

    @Test func encodeClampsAndMeasures() {
        let values: [Float] = [1, -70000, 65504, 65519, 0.1, 1e-8]
        var halves = [UInt16](repeating: 0, count: values.count)
        let stats = values.withUnsafeBufferPointer { src in
            halves.withUnsafeMutableBufferPointer { Float16Codec.encode(src, into: $0) }
        }
        #expect(stats.clamped == 2)  // -70000 and 65519; 65504 is representable
        #expect(halves[1] == 0xFBFF && halves[3] == 0x7BFF)
        #expect(stats.maxAbsError == 70000 - 65504)
        #expect(stats.errorEnergy > 0 && stats.signalEnergy > stats.errorEnergy)
    }

    @Test("each format's round-trip error stays within the bound kept in its row", arguments: WeightFormat.allCases)
    func formatErrorBound(format: WeightFormat) {
        guard format.floatEncoding != nil else { return }
        var rng = SplitMix(seed: 3)
        var values = (0..<10_000).map { _ in Float(Int64(bitPattern: rng.next()) % 1_000_000) / 1000 }
        values += [0, -0.0, 1e-3, 65000]
        var halves = [UInt16](repeating: 0, count: values.count)
        _ = values.withUnsafeBufferPointer { src in halves.withUnsafeMutableBufferPointer { Float16Codec.encode(src, into: $0) } }
        for (v, h) in zip(values, halves) {
            let back = Float16Codec.float(fromHalf: h)
            // Relative bound for normal halves; absolute bound (half the smallest subnormal step) below them.
            #expect(abs(back - v) <= max(abs(v) * format.relativeErrorBound, Float(bitPattern: 0x3300_0000)), "\(v)")
        }
    }
}

/// Deterministic 64-bit generator for tests.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
