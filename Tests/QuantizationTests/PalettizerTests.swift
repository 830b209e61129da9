import GraphIR
@testable import Quantization
import Testing

@Suite struct PalettizerTests {
    /// Squared error of a partition of sorted values into clusters starting at `starts` (0 first).
    static func sse(_ values: [Double], _ counts: [Double], starts: [Int]) -> Double {
        var total = 0.0
        for (k, start) in starts.enumerated() {
            let end = k + 1 < starts.count ? starts[k + 1] : values.count
            let n = counts[start..<end].reduce(0, +)
            let mean = (start..<end).reduce(0.0) { $0 + counts[$1] * values[$1] } / n
            total += (start..<end).reduce(0.0) { $0 + counts[$1] * (values[$1] - mean) * (values[$1] - mean) }
        }
        return total
    }

    /// Every way to cut u sorted values into k non-empty contiguous clusters.
    static func partitions(_ u: Int, _ k: Int) -> [[Int]] {
        if k == 1 { return [[0]] }
        var result: [[Int]] = []
        func extend(_ starts: [Int]) {
            if starts.count == k { result.append(starts); return }
            let last = starts.last!
            for next in (last + 1)..<u where u - next >= k - starts.count - 1 { extend(starts + [next]) }
        }
        extend([0])
        return result
    }

    @Test("the dynamic programme finds the optimal clustering (brute force over every contiguous partition)")
    func optimalAgainstBruteForce() {
        var rng = SplitMix(seed: 11)
        for trial in 0..<300 {
            let u = 3 + trial % 8
            let k = 2 + trial % 3
            guard k < u else { continue }
            var values = (0..<u).map { _ in Double(Int64(bitPattern: rng.next()) % 10_000) / 997 }
            values = Array(Set(values)).sorted()
            guard values.count > k else { continue }
            let counts = values.map { _ in Double(1 + rng.next() % 20) }
            let splits = Palettizer.optimalSplits(values: values, counts: counts, clusters: k)
            let found = Self.sse(values, counts, starts: [0] + splits)
            let best = Self.partitions(values.count, k).map { Self.sse(values, counts, starts: $0) }.min()!
            #expect(abs(found - best) <= 1e-9 * max(1, best), "trial \(trial): \(found) vs brute force \(best)")
        }
    }

    @Test("indices pack LSB-first and read back, for every width", arguments: [1, 2, 3, 4, 5, 6, 7, 8])
    func packing(bits: Int) {
        var rng = SplitMix(seed: UInt64(bits))
        let values = (0..<101).map { _ in UInt8(rng.next() % UInt64(1 << bits)) }
        let buffer = OwnedBuffer(count: (values.count * bits + 7) / 8)
        for (i, v) in values.enumerated() { Palettizer.put(v, at: i, bits: bits, into: buffer.mutableBytes) }
        for (i, v) in values.enumerated() {
            #expect(Palettizer.element(UnsafeRawBufferPointer(buffer.mutableBytes), i, bits: bits) == Int(v))
        }
        if bits == 4 {  // the same nibble order as int4: element 2i in the low nibble
            #expect(buffer.mutableBytes[0] == values[0] | values[1] << 4)
        }
    }

    @Test("every weight decodes to its nearest table entry (within its own float16 rounding); ties, zeros and constants",
          arguments: [1, 2, 3, 4, 6, 8])
    func nearestEntry(bits: Int) throws {
        var rng = SplitMix(seed: 5)
        var w = (0..<3000).map { _ in Float(Int64(bitPattern: rng.next()) % 100_000) / 37_000 }
        w += [0, -0.0, 1e-6, -1e-6] + [Float](repeating: 0.25, count: 50)
        let dims = [w.count]
        let outcome = try w.withUnsafeBytes { try Palettizer(bits: bits).palettize($0, dims: dims, name: "w") }
        let tensor = Tensor(name: "w", dataType: .float, dims: dims, data: .bytes(outcome.indices.view),
                            encoding: .palette(outcome.encoding))
        let decoded = try #require(PaletteCodec.dequantize(tensor))
        guard case .bytes(let lutBytes) = outcome.encoding.lut.data else { Issue.record("no table"); return }
        let table = (0..<(1 << bits)).map { Float16Codec.float(fromHalf: lutBytes.bytes.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
        #expect(table == table.sorted())
        var error = 0.0, signal = 0.0
        for (e, v) in w.enumerated() {
            let got = decoded.bytes.loadUnaligned(fromByteOffset: e * 4, as: Float.self)
            let half = Float16Codec.float(fromHalf: Float16Codec.halfBits(v))
            let nearest = table.map { abs($0 - half) }.min()!
            #expect(abs(got - half) <= nearest * 1.0001 + 1e-12, "element \(e)")
            error += Double(got - v) * Double(got - v)
            signal += Double(v) * Double(v)
        }
        #expect(abs(outcome.errorEnergy - error) <= 1e-6 * max(error, 1e-12))
        #expect(abs(outcome.signalEnergy - signal) <= 1e-9 * signal)
    }

    @Test("few distinct values are stored exactly; grouped tables follow axis 0; inf and out-of-range are refused")
    func exactGroupsAndRefusals() throws {
        let rows = 8, cols = 16
        // Row r holds only r and −r: two values per group of 2 rows, 4 per group... exact with a 2-bit table per 2 rows.
        let w = (0..<rows * cols).map { e -> Float in let r = e / cols; return e % 2 == 0 ? Float(r) : -Float(r) }
        let outcome = try w.withUnsafeBytes { try Palettizer(bits: 2, groupSize: 2).palettize($0, dims: [rows, cols], name: "g") }
        #expect(outcome.encoding.lut.dims == [4, 4])
        #expect(outcome.errorEnergy == 0)
        let inf = [Float](repeating: 1, count: 10) + [.infinity]
        #expect(throws: Palettizer.Refusal.self) { try inf.withUnsafeBytes { try Palettizer(bits: 4).palettize($0, dims: [11], name: "i") } }
        let huge = [Float](repeating: 1, count: 10) + [1e6]
        #expect(throws: Palettizer.Refusal.self) { try huge.withUnsafeBytes { try Palettizer(bits: 4).palettize($0, dims: [11], name: "h") } }
    }
}

@Suite struct RandomShapeTests {
    /// Random shapes (rank 1–4, dims 1–24), magnitudes from 1e-6 to 1e4, with zero and constant runs mixed in.
    static func sample(_ rng: inout SplitMix) -> (dims: [Int], values: [Float]) {
        let rank = 1 + Int(rng.next() % 4)
        let dims = (0..<rank).map { _ in 1 + Int(rng.next() % 24) }
        let count = dims.reduce(1, *)
        let scale = Float([1e-6, 1e-3, 1, 30, 1e4][Int(rng.next() % 5)])
        var values = (0..<count).map { _ in Float(Int64(bitPattern: rng.next()) % 100_000) / 100_000 * scale }
        if count > 8 {
            for i in 0..<(count / 4) { values[i] = 0 }
            for i in (count / 2)..<(count / 2 + count / 8) { values[i] = scale / 3 }
        }
        return (dims, values)
    }

    @Test("tables over random shapes and scales: every weight decodes to its nearest entry, the energies add up",
          arguments: [1, 2, 3, 4, 6, 8])
    func tables(bits: Int) throws {
        var rng = SplitMix(seed: UInt64(100 + bits))
        for _ in 0..<15 {
            let (dims, w) = Self.sample(&rng)
            let group = dims[0] > 1 && dims[0] % 2 == 0 ? 2 : nil
            let outcome = try w.withUnsafeBytes { try Palettizer(bits: bits, groupSize: group).palettize($0, dims: dims, name: "w") }
            let tensor = Tensor(name: "w", dataType: .float, dims: dims, data: .bytes(outcome.indices.view),
                                encoding: .palette(outcome.encoding))
            let decoded = try #require(PaletteCodec.dequantize(tensor))
            guard case .bytes(let lut) = outcome.encoding.lut.data else { Issue.record("no table"); return }
            let entries = 1 << bits
            let perSlice = w.count / dims[0]
            var error = 0.0
            for (e, v) in w.enumerated() {
                let table = (group.map { (e / perSlice) / $0 } ?? 0) * entries
                let got = decoded.bytes.loadUnaligned(fromByteOffset: e * 4, as: Float.self)
                let half = Float16Codec.float(fromHalf: Float16Codec.halfBits(v))
                let nearest = (0..<entries).map {
                    abs(Float16Codec.float(fromHalf: lut.bytes.loadUnaligned(fromByteOffset: (table + $0) * 2, as: UInt16.self)) - half)
                }.min()!
                #expect(abs(got - half) <= nearest * 1.0001 + 1e-30)
                error += Double(got - v) * Double(got - v)
            }
            #expect(abs(outcome.errorEnergy - error) <= 1e-6 * max(error, 1e-30))
        }
    }

    @Test("packed linear widths over random shapes and scales: levels in range, decode equals the reported error",
          arguments: [WeightFormat.int2, .int3, .int5, .int6, .int7])
    func packedLinear(format: WeightFormat) throws {
        var rng = SplitMix(seed: UInt64(200 + format.bits))
        for trial in 0..<16 {
            let (dims, w) = Self.sample(&rng)
            let symmetric = trial % 2 == 0
            let axis = dims.count - 1
            let granularity: Granularity = dims[axis] >= 8 ? .perBlock : .perTensor
            let layout = GroupLayout(dims: dims, granularity: granularity, axis: axis, blockSize: 8)
            let outcome = try w.withUnsafeBytes {
                try LinearQuantizer(format: format, symmetric: symmetric, scaleType: .float16).quantize($0, layout: layout, name: "w")
            }
            #expect(outcome.encoding.bits == format.bits)
            #expect(outcome.values.view.count == (w.count * format.bits + 7) / 8)
            let range = format.range(symmetric: symmetric)
            for e in w.indices {
                let q = LinearCodec.packedElement(outcome.values.view.bytes, e, bits: format.bits, signed: symmetric)
                #expect(range.contains(q))
            }
            var tensor = Tensor(name: "w", dataType: .float, dims: dims, data: .bytes(outcome.values.view))
            tensor.encoding = .linear(outcome.encoding)
            let back = try #require(LinearCodec.dequantize(tensor))
            let error = w.indices.reduce(0.0) {
                let d = Double(w[$1]) - Double(back.bytes.loadUnaligned(fromByteOffset: $1 * 4, as: Float.self))
                return $0 + d * d
            }
            #expect(abs(outcome.errorEnergy - error) <= 1e-4 * max(error, 1e-30) + 1e-30)  // the kernel sums rows in float
            #expect(outcome.errorEnergy <= outcome.roundToNearestErrorEnergy * (1 + 1e-9))
        }
    }
}
