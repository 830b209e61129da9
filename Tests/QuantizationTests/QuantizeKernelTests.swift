import CKernels
import Testing

/// The blocked quantization kernel called directly: its AVX2 and portable paths must give the same bytes (packages
/// are byte-identical whatever the CPU), on shapes that exercise full tiles, partial tiles, packed and in-place slabs,
/// odd nibble offsets and the transposed path for contiguous groups.
@Suite(.serialized) struct QuantizeKernelTests {
    struct Shape: CustomTestStringConvertible, Sendable {
        var outer: Int, depth: Int, inner: Int, block: Int
        var testDescription: String { "[\(outer), \(depth), \(inner)] block \(block)" }
    }

    static let shapes: [Shape] = [
        Shape(outer: 1, depth: 96, inner: 64, block: 32),     // full tiles, packed
        Shape(outer: 2, depth: 40, inner: 13, block: 16),     // partial tile, odd inner: nibbles straddle bytes
        Shape(outer: 1, depth: 33, inner: 2100, block: 32),   // slabs of 1024 columns and a partial last block
        Shape(outer: 37, depth: 100, inner: 1, block: 32),    // contiguous groups (blocks along the last axis)
        Shape(outer: 1, depth: 777, inner: 1, block: 777),    // one group: per-tensor
        Shape(outer: 1, depth: 20000, inner: 9, block: 20000), // blocks too tall to pack: read in place
        Shape(outer: 3, depth: 7, inner: 8, block: 7),        // per-channel on the middle of three axes
        Shape(outer: 2, depth: 300, inner: 21, block: 300),   // tall blocks: streamed rows without search (int8)
        Shape(outer: 1, depth: 70, inner: 8200, block: 70),   // streamed slabs of 8192 columns and a tail of 8
        Shape(outer: 40, depth: 200, inner: 1, block: 200),   // tall contiguous groups (per-channel Conv weights)
    ]

    struct Run: Equatable {
        var levels: [UInt8], scales: [Float], zeros: [Float]
        var signal: Double, error: Double, rtn: Double, maxError: Float, nonFinite: Int
    }

    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix(seed: seed)
        return (0..<count).map { i in
            let u = Float(rng.next() % 1_000_000) / 1_000_000 - 0.5
            return i % 97 == 0 ? u * 40 : u * u * u * 3  // heavy tails and outliers
        }
    }

    /// Runs the kernel on `values` placed `offset` bytes into a buffer (misaligned when offset % 4 != 0).
    static func run(_ values: [Float], _ s: Shape, bits: Int, symmetric: Bool, halfScales: Bool, nibbles: Bool,
                    portable: Bool, offset: Int = 0) -> Run {
        let count = values.count
        let groups = s.outer * ((s.depth + s.block - 1) / s.block) * s.inner
        let multipliers: [Float] = bits == 4 ? (symmetric ? [1, 7 / 7.5, 0.95, 0.9, 0.85, -1, -0.95, -0.9] : [1, 0.9, 0.8]) : [1]
        let (qmin, qmax): (Int32, Int32) = bits == 4 ? (symmetric ? (-8, 7) : (0, 15)) : (symmetric ? (-127, 127) : (0, 255))
        var raw = [UInt8](repeating: 0xAB, count: count * 4 + offset)
        values.withUnsafeBytes { src in
            raw.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: offset).copyMemory(from: src.baseAddress!, byteCount: src.count) }
        }
        var levels = [UInt8](repeating: 0x5A, count: nibbles ? (count + 1) / 2 : count)
        var scales = [Float](repeating: .nan, count: groups), zeros = [Float](repeating: .nan, count: groups)
        var stats = mlpkg_quant_stats()
        mlpkg_quantize_force_portable(portable ? 1 : 0)
        defer { mlpkg_quantize_force_portable(0) }
        let done = raw.withUnsafeBytes { w in
            levels.withUnsafeMutableBytes { out in
                mlpkg_quantize_blocked(w.baseAddress!.advanced(by: offset), s.outer, s.depth, s.inner, s.block,
                                       symmetric ? 1 : 0, qmin, qmax, multipliers, multipliers.count, halfScales ? 1 : 0,
                                       nibbles ? nil : out.baseAddress!.assumingMemoryBound(to: Int8.self),
                                       nibbles ? out.baseAddress!.assumingMemoryBound(to: UInt8.self) : nil,
                                       &scales, &zeros, &stats)
            }
        }
        #expect(done == 1)
        return Run(levels: levels, scales: scales, zeros: zeros, signal: stats.signal_energy, error: stats.error_energy,
                   rtn: stats.rtn_error_energy, maxError: stats.max_abs_error, nonFinite: stats.non_finite)
    }

    // Without AVX2 (an ARM Mac, an old x86) only the portable path exists and the test is reported as skipped.
    @Test("AVX2 and portable paths give identical bytes and statistics",
          .enabled(if: mlpkg_quantize_simd_available() == 1, "this CPU has no AVX2 path"), arguments: shapes)
    func pathsAgree(s: Shape) throws {
        let values = Self.values(s.outer * s.depth * s.inner, seed: UInt64(s.depth * 31 + s.inner))
        for (bits, symmetric, half) in [(4, true, false), (4, true, true), (4, false, false), (8, true, false), (8, false, true)] {
            for offset in [0, 2] {
                let fast = Self.run(values, s, bits: bits, symmetric: symmetric, halfScales: half, nibbles: bits == 4,
                                    portable: false, offset: offset)
                let slow = Self.run(values, s, bits: bits, symmetric: symmetric, halfScales: half, nibbles: bits == 4,
                                    portable: true, offset: offset)
                #expect(fast == slow, "int\(bits) \(symmetric ? "sym" : "asym") half=\(half) offset \(offset)")
                #expect(fast.nonFinite == 0 && fast.error > 0 && fast.error <= fast.rtn)
            }
        }
    }

    @Test("nibble output equals int8 output packed two per byte", arguments: shapes)
    func nibblesMatchBytes(s: Shape) {
        let values = Self.values(s.outer * s.depth * s.inner, seed: 7)
        for portable in [false, true] {
            let bytes = Self.run(values, s, bits: 4, symmetric: true, halfScales: false, nibbles: false, portable: portable)
            let packed = Self.run(values, s, bits: 4, symmetric: true, halfScales: false, nibbles: true, portable: portable)
            var expected = [UInt8](repeating: 0, count: (bytes.levels.count + 1) / 2)
            for (i, v) in bytes.levels.enumerated() { expected[i / 2] |= (v & 0x0F) << UInt8(4 * (i % 2)) }
            #expect(packed.levels == expected)
            #expect(packed.scales == bytes.scales && packed.error == bytes.error)
            #expect(bytes.levels.allSatisfy { Int8(bitPattern: $0) >= -8 && Int8(bitPattern: $0) <= 7 })
        }
    }

    @Test("inf and NaN are counted on both paths, and nothing traps")
    func nonFiniteCounted() {
        var values = Self.values(96 * 64, seed: 3)
        values[5] = .infinity
        values[700] = -.infinity
        values[4000] = .nan
        let s = Shape(outer: 1, depth: 96, inner: 64, block: 32)
        for portable in [false, true] {
            let r = Self.run(values, s, bits: 4, symmetric: true, halfScales: true, nibbles: true, portable: portable)
            #expect(r.nonFinite == 3)
        }
    }
}

/// Random shapes, block sizes, formats and values (including exact zeros, constants and outliers), each quantized on
/// both paths: the bytes must agree and every stored integer must lie in its format's range.
@Suite(.serialized) struct QuantizeKernelPropertyTests {
    @Test("300 random configurations: AVX2 = portable, levels in range, error ≤ round-to-nearest's",
          .enabled(if: mlpkg_quantize_simd_available() == 1, "this CPU has no AVX2 path"))
    func randomConfigurations() {
        var rng = SplitMix(seed: 20261127)
        func pick(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        for trial in 0..<300 {
            let outer = 1 + pick(4), depth = 1 + pick(150), inner = 1 + pick(40)
            let block = [1 + pick(depth), 16, 32, depth][pick(4)]
            let shape = QuantizeKernelTests.Shape(outer: outer, depth: depth, inner: inner, block: block)
            let bits = [4, 8][pick(2)], symmetric = pick(2) == 0, half = pick(2) == 0
            let kind = pick(4)
            let values = QuantizeKernelTests.values(outer * depth * inner, seed: rng.next()).enumerated().map { i, v -> Float in
                switch kind {
                case 0: return i % 5 == 0 ? 0 : v      // exact zeros
                case 1: return (i / 37) % 2 == 0 ? 0.25 : v  // constant runs
                case 2: return v * 1e-30               // tiny (subnormal scales)
                default: return v
                }
            }
            let nibbles = bits == 4 && pick(2) == 0
            let fast = QuantizeKernelTests.run(values, shape, bits: bits, symmetric: symmetric, halfScales: half,
                                               nibbles: nibbles, portable: false, offset: pick(4))
            let slow = QuantizeKernelTests.run(values, shape, bits: bits, symmetric: symmetric, halfScales: half,
                                               nibbles: nibbles, portable: true, offset: pick(4))
            #expect(fast == slow, "trial \(trial): \(shape.testDescription) int\(bits) sym=\(symmetric) half=\(half) kind \(kind)")
            if !nibbles {
                let range: ClosedRange<Int> = bits == 4 ? (symmetric ? -8...7 : 0...15) : (symmetric ? -127...127 : 0...255)
                let stored = fast.levels.map { symmetric ? Int(Int8(bitPattern: $0)) : Int($0) }
                #expect(stored.allSatisfy(range.contains), "trial \(trial): a level out of range")
            }
            #expect(fast.error <= fast.rtn, "trial \(trial): the search did worse than round-to-nearest")
        }
    }
}
