import CKernels
import GraphIR
import Testing
@testable import Quantization

@Suite struct Float16KernelTests {
    /// Random bit patterns (all classes: subnormal, normal, overflow, inf, NaN) plus hand-picked edges.
    static func sample(count: Int) -> [Float] {
        var rng = SplitMix(seed: 11)
        var values = (0..<count).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        values += [0, -0.0, 65504, 65519.99, 65520, -70000, 1e-8, 5.96e-8, 2.98e-8, 6.1e-5, 1 + 1.0 / 2048, .infinity, .nan]
        return values
    }

    private func run(_ values: [Float], portable: Bool) -> ([UInt16], mlpkg_f16_stats) {
        var out = [UInt16](repeating: 0, count: values.count)
        var stats = mlpkg_f16_stats()
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                if portable {
                    mlpkg_f32_to_f16_portable(src.baseAddress, dst.baseAddress, values.count, &stats)
                } else {
                    mlpkg_f32_to_f16(src.baseAddress, dst.baseAddress, values.count, &stats)
                }
            }
        }
        return (out, stats)
    }

    @Test("both kernel paths give the reference's bits for every finite value", arguments: [false, true])
    func matchesReference(portable: Bool) {
        let values = Self.sample(count: 100_003)  // not a multiple of 8: exercises the scalar tail
        let (halves, stats) = run(values, portable: portable)
        var nonFinite = 0
        var clamped = 0
        for (v, h) in zip(values, halves) {
            guard v.isFinite else { nonFinite += 1; continue }
            if abs(v) > Float16Codec.maxFinite { clamped += 1 }
            let reference = Float16Codec.halfBits(min(max(v, -Float16Codec.maxFinite), Float16Codec.maxFinite))
            #expect(h == reference, "\(v)")
        }
        #expect(stats.non_finite == nonFinite)
        #expect(stats.clamped == clamped)
    }

    @Test("SIMD and portable paths agree on the statistics")
    func statisticsAgree() {
        var rng = SplitMix(seed: 5)
        let values = (0..<50_000).map { _ in Float(Int64(bitPattern: rng.next()) % 100_000) / 997 }
        let (fast, a) = run(values, portable: false)
        let (slow, b) = run(values, portable: true)
        #expect(fast == slow)
        #expect(a.max_abs_error == b.max_abs_error)
        #expect(abs(a.signal_energy - b.signal_energy) <= 1e-5 * b.signal_energy)
        #expect(abs(a.error_energy - b.error_energy) <= 1e-3 * b.error_energy)
    }

    @Test("widening is exact for every half")
    func widen() {
        let halves = (0...0xFFFF).map { UInt16($0) }
        var floats = [Float](repeating: 0, count: halves.count)
        halves.withUnsafeBufferPointer { src in
            floats.withUnsafeMutableBufferPointer { mlpkg_f16_to_f32(src.baseAddress, $0.baseAddress, halves.count) }
        }
        for (h, f) in zip(halves, floats) {
            let reference = Float16Codec.float(fromHalf: h)
            #expect(f.bitPattern == reference.bitPattern || (f.isNaN && reference.isNaN), "0x\(String(h, radix: 16))")
        }
    }
}
