import CKernels
import GraphIR

/// Palettization (`--weights lut1` … `lut8`): each weight becomes an N-bit index into a lookup table of 2^N float16
/// values, one table per tensor or per group of consecutive slices along the first axis.
///
/// The table is an exact 1-D k-means: the weights are rounded to float16 first, so a group holds at most 63,490
/// distinct finite values; their sorted histogram is split into 2^N contiguous clusters minimising the squared
/// error (optimal 1-D clustering is always contiguous), by dynamic programming over the histogram with the
/// divide-and-conquer optimisation (the best split point is monotone in the prefix length), O(2^N · u · log u) for u
/// distinct values. Each cluster's centre is its weighted mean, rounded to float16; each value then takes the
/// nearest entry of the rounded table. Memory: the histogram (256 KiB), the DP rows and the split table
/// (2^N · u · 2 bytes, at most 32 MiB for 8 bits), and the indices.
public struct Palettizer: Sendable {
    /// Index width, 1 to 8 bits: each table has 2^bits entries.
    public var bits: Int
    /// Slices along axis 0 that share a table; nil: one table for the tensor.
    public var groupSize: Int?

    /// A palettizer with `bits`-bit indices and one table per `groupSize` slices along axis 0 (nil: one per tensor).
    public init(bits: Int, groupSize: Int? = nil) {
        precondition((1...8).contains(bits))
        self.bits = bits
        self.groupSize = groupSize
    }

    /// A palettized tensor and its error.
    public struct Outcome: Sendable {
        /// Indices, `bits` each, packed little-endian from the least significant bit.
        public var indices: OwnedBuffer
        /// The float16 tables and the index layout that decode `indices`.
        public var encoding: PaletteQuantization
        /// Largest absolute difference between an original float32 value and its table entry.
        public var maxAbsError: Float
        /// Σw² over the original values.
        public var signalEnergy: Double
        /// Σ(w − ŵ)²: the squared error of the table entries.
        public var errorEnergy: Double
    }

    /// Why a tensor cannot be palettized: inf/NaN, or values float16 cannot hold.
    public enum Refusal: Error, Sendable {
        case nonFinite(Int)
        case beyondHalf(Int)
    }

    /// Palettizes the little-endian float32 values in `bytes` (any alignment), shaped `dims`.
    public func palettize(_ bytes: UnsafeRawBufferPointer, dims: [Int], name: String) throws(Refusal) -> Outcome {
        let count = bytes.count / 4
        let slices = dims.first ?? 1
        let perSlice = slices == 0 ? 0 : count / slices
        let group = groupSize.map { min($0, max(slices, 1)) }
        let groups = group.map { slices == 0 ? 0 : (slices + $0 - 1) / $0 } ?? 1
        let entries = 1 << bits

        var halves = [UInt16](repeating: 0, count: count)
        var stats = mlpkg_f16_stats()
        halves.withUnsafeMutableBufferPointer {
            mlpkg_f32_to_f16(bytes.baseAddress?.assumingMemoryBound(to: Float.self), $0.baseAddress, count, &stats)
        }
        if stats.non_finite > 0 { throw .nonFinite(stats.non_finite) }
        if stats.clamped > 0 { throw .beyondHalf(stats.clamped) }

        var table = [UInt16](repeating: 0, count: groups * entries)
        let indices = OwnedBuffer(count: (count * bits + 7) / 8)
        var signal = 0.0, error = 0.0
        var maxError: Float = 0
        let out = indices.mutableBytes
        for g in 0..<groups {
            let start = group.map { g * $0 * perSlice } ?? 0
            let end = group.map { min((g + 1) * $0, slices) * perSlice } ?? count
            let lut = halves.withUnsafeBufferPointer { Self.table(UnsafeBufferPointer(rebasing: $0[start..<end]), entries: entries) }
            for (k, h) in lut.halves.enumerated() { table[g * entries + k] = h }
            let values = lut.halves.map(Float16Codec.float(fromHalf:))
            for e in start..<end {
                let index = lut.index[Int(halves[e])]
                let w = bytes.loadUnaligned(fromByteOffset: e * 4, as: Float.self)
                let d = abs(w - values[Int(index)])
                maxError = max(maxError, d)
                signal += Double(w) * Double(w)
                error += Double(d) * Double(d)
                Self.put(index, at: e, bits: bits, into: out)
            }
        }
        let lutShape = group == nil ? [entries] : [groups, entries]
        let lutBytes = OwnedBuffer(uninitializedCount: table.count * 2)
        table.withUnsafeBytes { lutBytes.mutableBytes.copyMemory(from: $0) }
        let lutTensor = Tensor(name: name + "_lut", dataType: .float16, dims: lutShape, data: .bytes(lutBytes.view))
        return Outcome(indices: indices, encoding: PaletteQuantization(bits: bits, groupSize: group, lut: lutTensor),
                       maxAbsError: maxError, signalEnergy: signal, errorEnergy: error)
    }

    /// Writes `value` as element `i` of an LSB-first packed stream of `bits`-bit values.
    @inline(__always)
    static func put(_ value: UInt8, at i: Int, bits: Int, into out: UnsafeMutableRawBufferPointer) {
        var bit = i * bits
        var v = Int(value), left = bits
        while left > 0 {
            let byte = bit >> 3, shift = bit & 7
            let take = min(left, 8 - shift)
            out[byte] |= UInt8((v & ((1 << take) - 1)) << shift)
            v >>= take
            left -= take
            bit += take
        }
    }

    /// Element `i` of an LSB-first packed stream of `bits`-bit values.
    @inline(__always)
    public static func element(_ bytes: UnsafeRawBufferPointer, _ i: Int, bits: Int) -> Int {
        var bit = i * bits
        var value = 0, got = 0
        while got < bits {
            let byte = bit >> 3, shift = bit & 7
            let take = min(bits - got, 8 - shift)
            value |= ((Int(bytes[byte]) >> shift) & ((1 << take) - 1)) << got
            got += take
            bit += take
        }
        return value
    }

    /// One group's table: `entries` float16 values (ascending; unused entries repeat the last) and, for every half
    /// bit pattern that occurs, the index of its nearest entry.
    static func table(_ halves: UnsafeBufferPointer<UInt16>, entries: Int) -> (halves: [UInt16], index: [UInt8]) {
        let histogram = Histogram(halves)
        let centres = optimalCentres(values: histogram.values, counts: histogram.counts, clusters: entries)
        var lut = centres.map(Float16Codec.halfBits)
        if lut.isEmpty { lut = [0] }
        while lut.count < entries { lut.append(lut[lut.count - 1]) }
        let sortedValues = lut.map(Float16Codec.float(fromHalf:))
        var index = [UInt8](repeating: 0, count: 65536)
        var k = 0
        for (v, pattern) in zip(histogram.values, histogram.patterns) {
            // Values ascend, so the nearest entry's index never decreases.
            while k + 1 < sortedValues.count && abs(sortedValues[k + 1] - Float(v)) < abs(sortedValues[k] - Float(v)) { k += 1 }
            for p in pattern { index[Int(p)] = UInt8(k) }
        }
        return (lut, index)
    }

    /// The sorted distinct values of a group (−0 and +0 merged) with their counts and bit patterns.
    struct Histogram {
        var values: [Double] = []
        var counts: [Double] = []
        var patterns: [[UInt16]] = []

        init(_ halves: UnsafeBufferPointer<UInt16>) {
            // Order key of a half: negative values reversed below positive ones.
            @inline(__always) func key(_ h: UInt16) -> Int { h & 0x8000 != 0 ? Int(~h & 0x7FFF) : Int(h) | 0x8000 }
            @inline(__always) func pattern(_ key: Int) -> UInt16 { key & 0x8000 != 0 ? UInt16(key & 0x7FFF) : ~UInt16(key) | 0x8000 }
            var tally = [Int](repeating: 0, count: 65536)
            if halves.count >= 8192 {
                for h in halves { tally[key(h)] += 1 }
                for k in 0..<65536 where tally[k] > 0 { append(pattern(k), tally[k]) }
            } else {
                var keys = halves.map(key)
                keys.sort()
                var i = 0
                while i < keys.count {
                    var j = i
                    while j < keys.count && keys[j] == keys[i] { j += 1 }
                    append(pattern(keys[i]), j - i)
                    i = j
                }
            }
        }

        private mutating func append(_ pattern: UInt16, _ count: Int) {
            let v = Double(Float16Codec.float(fromHalf: pattern))
            if let last = values.last, last == v {  // −0 after +0's neighbour: the same value
                counts[counts.count - 1] += Double(count)
                patterns[patterns.count - 1].append(pattern)
                return
            }
            values.append(v)
            counts.append(Double(count))
            patterns.append([pattern])
        }
    }

    /// The centres of the optimal partition of sorted `values` (with `counts`) into at most `clusters` contiguous
    /// clusters, minimising Σ count·(value − centre)².
    static func optimalCentres(values: [Double], counts: [Double], clusters: Int) -> [Float] {
        let u = values.count
        guard u > 0 else { return [] }
        if u <= clusters { return values.map { Float($0) } }
        let splits = optimalSplits(values: values, counts: counts, clusters: clusters)
        var centres: [Float] = []
        var start = 0
        for end in splits + [u] {
            var c = 0.0, s = 0.0
            for i in start..<end { c += counts[i]; s += counts[i] * values[i] }
            centres.append(Float(s / c))
            start = end
        }
        return centres
    }

    /// The start index of clusters 2…K of the optimal partition.
    static func optimalSplits(values: [Double], counts: [Double], clusters: Int) -> [Int] {
        let u = values.count
        // Prefix sums, centred on the weighted mean for accuracy.
        let total = counts.reduce(0, +)
        let mean = zip(values, counts).reduce(0.0) { $0 + $1.0 * $1.1 } / total
        var c = [Double](repeating: 0, count: u + 1), s1 = c, s2 = c
        for i in 0..<u {
            let v = values[i] - mean
            c[i + 1] = c[i] + counts[i]
            s1[i + 1] = s1[i] + counts[i] * v
            s2[i + 1] = s2[i] + counts[i] * v * v
        }
        // split[k·(u+1) + i]: where the last of k+1 clusters starts in the best partition of the first i values.
        var split = [UInt16](repeating: 0, count: clusters * (u + 1))
        var previous = [Double](repeating: 0, count: u + 1)
        var current = [Double](repeating: .infinity, count: u + 1)
        c.withUnsafeBufferPointer { c in
            s1.withUnsafeBufferPointer { s1 in
                s2.withUnsafeBufferPointer { s2 in
                    split.withUnsafeMutableBufferPointer { split in
                        previous.withUnsafeMutableBufferPointer { prev in
                            current.withUnsafeMutableBufferPointer { cur in
                                for i in 0...u { prev[i] = Self.cost(c, s1, s2, 0, i) }
                                var prevBase = prev.baseAddress!, curBase = cur.baseAddress!
                                for k in 1..<clusters {
                                    Self.layer(c, s1, s2, previous: prevBase, current: curBase,
                                               split: split.baseAddress! + k * (u + 1), k: k, u: u)
                                    swap(&prevBase, &curBase)
                                }
                            }
                        }
                    }
                }
            }
        }
        // Walk back from the full prefix.
        var starts: [Int] = []
        var i = u
        for k in stride(from: clusters - 1, through: 1, by: -1) {
            let j = Int(split[k * (u + 1) + i])
            starts.append(j)
            i = j
        }
        return starts.reversed()
    }

    /// Squared error of values j..<i around their mean, from the prefix sums.
    @inline(__always)
    static func cost(_ c: UnsafeBufferPointer<Double>, _ s1: UnsafeBufferPointer<Double>, _ s2: UnsafeBufferPointer<Double>,
                     _ j: Int, _ i: Int) -> Double {
        let n = c[i] - c[j]
        guard n > 0 else { return 0 }
        let s = s1[i] - s1[j]
        return max(0, s2[i] - s2[j] - s * s / n)
    }

    /// One DP layer: current[i] = min over j in [k, i) of previous[j] + cost(j, i), for i in [k+1, u], by divide
    /// and conquer on i (the best j never decreases as i grows), with an explicit stack.
    static func layer(_ c: UnsafeBufferPointer<Double>, _ s1: UnsafeBufferPointer<Double>, _ s2: UnsafeBufferPointer<Double>,
                      previous: UnsafeMutablePointer<Double>, current: UnsafeMutablePointer<Double>,
                      split: UnsafeMutablePointer<UInt16>, k: Int, u: Int) {
        guard k + 1 <= u else { return }
        let cp = c.baseAddress!, p1 = s1.baseAddress!, p2 = s2.baseAddress!
        var stack: [(lo: Int, hi: Int, optLo: Int, optHi: Int)] = [(k + 1, u, k, u - 1)]
        stack.reserveCapacity(64)
        while let (lo, hi, optLo, optHi) = stack.popLast() {
            guard lo <= hi else { continue }
            let mid = (lo + hi) >> 1
            var best = Double.infinity, bestJ = optLo
            let upper = min(optHi, mid - 1)
            let ci = cp[mid], s1i = p1[mid], s2i = p2[mid]
            var j = optLo
            while j <= upper {
                let n = ci - cp[j]
                let s = s1i - p1[j]
                let e = n > 0 ? max(0, s2i - p2[j] - s * s / n) : 0
                let value = previous[j] + e
                if value < best { best = value; bestJ = j }
                j += 1
            }
            current[mid] = best
            split[mid] = UInt16(truncatingIfNeeded: bestJ)
            stack.append((lo, mid - 1, optLo, bestJ))
            stack.append((mid + 1, hi, bestJ, optHi))
        }
    }
}

/// Decodes palettized tensors back to float32.
public enum PaletteCodec {
    /// The float32 values of a tensor with a `.palette` encoding, as little-endian bytes.
    public static func dequantize(_ tensor: Tensor) -> ByteView? {
        guard case .palette(let p) = tensor.encoding, case .bytes(let indices) = tensor.data,
              case .bytes(let lutBytes) = p.lut.data else { return nil }
        let count = tensor.elementCount
        let entries = 1 << p.bits
        let slices = tensor.dims.first ?? 1
        let perSlice = slices == 0 ? 0 : count / slices
        let table = (0..<p.lut.elementCount).map { k -> Float in
            p.lut.dataType == .float16
                ? Float16Codec.float(fromHalf: lutBytes.bytes.loadUnaligned(fromByteOffset: k * 2, as: UInt16.self))
                : lutBytes.bytes.loadUnaligned(fromByteOffset: k * 4, as: Float.self)
        }
        let out = OwnedBuffer(uninitializedCount: count * 4)
        let floats = out.mutableBytes.bindMemory(to: Float.self)
        for e in 0..<count {
            let group = p.groupSize.map { perSlice == 0 ? 0 : (e / perSlice) / $0 } ?? 0
            floats[e] = table[group * entries + Palettizer.element(indices.bytes, e, bits: p.bits)]
        }
        return out.view
    }
}
