#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernels
import GraphIR

/// Which elements share a scale. The tensor is viewed as [outer, axisDim, inner] around `axis`:
/// per tensor one group; per channel the group of element (o, d, i) is d; per block it is (o·nb + d/B)·inner + i,
/// the row-major index into a scale of the weight's shape with the blocked axis cut to nb = ⌈axisDim/B⌉ — the layout
/// ONNX DequantizeLinear uses.
public struct GroupLayout: Sendable, Equatable {
    /// The tensor's shape.
    public let dims: [Int]
    /// Which elements share a scale.
    public let granularity: Granularity
    /// The channel or blocked axis; nil per tensor.
    public let axis: Int?
    /// Elements per block along `axis`; nil unless per block.
    public let blockSize: Int?
    let outer: Int
    let axisDim: Int
    let inner: Int

    /// A layout of `dims`; `axis` is dropped per tensor, and `blockSize` unless per block.
    public init(dims: [Int], granularity: Granularity, axis: Int?, blockSize: Int?) {
        self.dims = dims
        self.granularity = granularity
        self.axis = granularity == .perTensor ? nil : axis
        self.blockSize = granularity == .perBlock ? blockSize : nil
        if let a = self.axis {
            outer = dims[..<a].reduce(1, *)
            axisDim = dims[a]
            inner = dims[(a + 1)...].reduce(1, *)
        } else {
            outer = 1
            axisDim = dims.reduce(1, *)
            inner = 1
        }
    }

    /// ⌈axisDim / B⌉, without overflow for any positive B.
    var blocks: Int { blockSize.map { axisDim == 0 ? 0 : (axisDim - 1) / $0 + 1 } ?? 1 }

    /// Number of groups, i.e. of scales (and zero points).
    public var groupCount: Int {
        switch granularity {
        case .perTensor: return 1
        case .perChannel: return axisDim
        case .perBlock: return outer * blocks * inner
        }
    }

    /// The shape of the scale (and zero point) tensor.
    public var scaleShape: [Int] {
        switch granularity {
        case .perTensor: return []
        case .perChannel: return [axisDim]
        case .perBlock:
            var shape = dims
            shape[axis!] = blocks
            return shape
        }
    }

    /// The same grouping as [outer, depth, inner] with blocks of `block` along depth, the form the SIMD kernel
    /// takes; nil for per-channel scales on a middle axis (both outer and inner > 1).
    var kernelView: (outer: Int, depth: Int, inner: Int, block: Int)? {
        switch granularity {
        case .perTensor: return (1, axisDim, 1, max(axisDim, 1))
        case .perBlock: return (outer, axisDim, inner, blockSize!)
        case .perChannel:
            // Channel axis first: one contiguous run per channel. Last: channels are the contiguous inner dimension.
            if outer == 1 { return (axisDim, inner, 1, max(inner, 1)) }
            if inner == 1 { return (1, outer, axisDim, max(outer, 1)) }
            return nil
        }
    }

    /// Calls `body(element, group)` for every element in memory order.
    @inline(__always)
    public func forEach(_ body: (Int, Int) -> Void) {
        var e = 0
        switch granularity {
        case .perTensor:
            for i in 0..<axisDim { body(i, 0) }
        case .perChannel:
            for _ in 0..<outer {
                for d in 0..<axisDim {
                    for _ in 0..<inner {
                        body(e, d)
                        e += 1
                    }
                }
            }
        case .perBlock:
            let b = blockSize!
            let nb = blocks
            for o in 0..<outer {
                for d in 0..<axisDim {
                    let rowGroup = (o * nb + d / b) * inner
                    for i in 0..<inner {
                        body(e, rowGroup + i)
                        e += 1
                    }
                }
            }
        }
    }
}

/// inf or NaN values in a tensor to quantize: they have no linear encoding, so the tensor is not quantized.
public struct NonFiniteValues: Error, Sendable {
    /// Number of inf and NaN values in the tensor.
    public var count: Int
}

/// Quantizes float32 tensors linearly (w ≈ scale · (q − zero point)) in a `WeightFormat`, and dequantizes them.
public struct LinearQuantizer: Sendable {
    /// The linear format (int2 … int8) the integers take.
    public var format: WeightFormat
    /// Symmetric levels without a zero point, or asymmetric ones with a zero point per group.
    public var symmetric: Bool
    /// The element type scales are stored in: float, or float16 (half the bytes; scales are rounded before the
    /// integers are chosen, so the reported error is the stored result's).
    public var scaleType: DataType

    /// A quantizer for a linear `format`; `scaleType` must be float or float16.
    public init(format: WeightFormat, symmetric: Bool, scaleType: DataType = .float) {
        precondition(format.isLinear && (scaleType == .float || scaleType == .float16))
        self.format = format
        self.symmetric = symmetric
        self.scaleType = scaleType
    }

    /// The bytes `quantize` stores for `count` elements in `layout` (values, scales, zero points): what the
    /// encoding costs, known without quantizing.
    public func encodedBytes(count: Int, layout: GroupLayout) -> Int {
        let storage = format.storage(symmetric: symmetric)!
        let values = format.packedBits.map { (count * $0 + 7) / 8 } ?? storage.storageBytes(elements: count)!
        let groups = layout.groupCount
        let scales = groups * (scaleType == .float16 ? 2 : 4)
        return values + scales + (symmetric ? 0 : storage.storageBytes(elements: groups)!)
    }

    /// A quantized tensor and its error.
    public struct Outcome: Sendable {
        /// The stored integers, packed at the format's width when ONNX has no type for it.
        public var values: OwnedBuffer
        /// The storage type, scales, zero points and layout that decode `values`.
        public var encoding: LinearQuantization
        /// Largest absolute difference between an original value and its dequantized one.
        public var maxAbsError: Float
        /// Σw² over the original values.
        public var signalEnergy: Double
        /// Σ(w − ŵ)²: the squared error of the stored result.
        public var errorEnergy: Double
        /// Error energy of plain round-to-nearest with the max-range scale (the search's starting point).
        public var roundToNearestErrorEnergy: Double

        /// Whether every float16 scale is a normal half short of the clamp: a group whose scale was clamped to
        /// ±65504 or fell into the subnormal range (below 2⁻¹⁴) lost accuracy to the scale's storage.
        var scalesFitHalf: Bool {
            guard encoding.scale.dataType == .float16, case .bytes(let view) = encoding.scale.data else { return true }
            return stride(from: 0, to: view.count - 1, by: 2).allSatisfy { offset in
                let magnitude = UInt16(littleEndian: view.bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)) & 0x7FFF
                return magnitude == 0 || (magnitude >= 0x0400 && magnitude < 0x7BFF)  // normal, below 65504
            }
        }
    }

    /// Scale multipliers tried per group, relative to the round-to-nearest scale max|w|/7 (first): the search keeps,
    /// per group, the one with the least squared error, then refits the scale by least squares for the integers it
    /// chose (kernel path). Below 1 they clip the largest values; negative ones are signed scales that map the
    /// largest-magnitude weight to −8 whatever its sign (llama.cpp's Q4_0 idea; ONNX allows negative scales).
    var candidates: [Float] {
        guard format.searchesClipping else { return [1] }
        return symmetric ? [1, 0.95, 0.9, -1, -0.95, -0.9]
                         : [1, 0.95, 0.9, 0.85, 0.8, 0.75]
    }

    /// Quantizes the little-endian float32 values in `bytes` (any alignment) laid out as `layout.dims`. A tensor
    /// holding inf or NaN is refused: those values have no linear encoding.
    public func quantize(_ bytes: UnsafeRawBufferPointer, layout: GroupLayout, name: String) throws(NonFiniteValues) -> Outcome {
        let outcome = try quantizeOnce(bytes, layout: layout, name: name)
        guard scaleType == .float16, !outcome.scalesFitHalf else { return outcome }
        // A group needs a scale float16 cannot hold well (beyond ±65504, or subnormal, where it keeps few bits):
        // the whole tensor keeps float32 scales rather than lose accuracy silently.
        var wide = self
        wide.scaleType = .float
        return try wide.quantizeOnce(bytes, layout: layout, name: name)
    }

    private func quantizeOnce(_ bytes: UnsafeRawBufferPointer, layout: GroupLayout, name: String) throws(NonFiniteValues) -> Outcome {
        if let view = layout.kernelView {
            precondition(view.outer * (view.depth == 0 ? 0 : (view.depth - 1) / view.block + 1) * view.inner == layout.groupCount)
            return try quantizeWithKernel(bytes, layout: layout, view: view, name: name)
        }
        let count = bytes.count / 4
        let nonFinite = mlpkg_count_nonfinite(bytes.baseAddress?.assumingMemoryBound(to: Float.self), count)
        if nonFinite > 0 { throw NonFiniteValues(count: nonFinite) }
        // The reference path reads typed floats: copy them when the source is not 4-byte aligned.
        if Int(bitPattern: bytes.baseAddress) % 4 == 0 {
            return quantizeGeneric(UnsafeBufferPointer(start: bytes.baseAddress?.assumingMemoryBound(to: Float.self), count: count),
                                   layout: layout, name: name)
        }
        let aligned = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<count * 4]))
            initialized = count
        }
        return aligned.withUnsafeBufferPointer { quantizeGeneric($0, layout: layout, name: name) }
    }

    /// The SIMD kernel path (every layout but per-channel on a middle axis); reads `bytes` in place.
    func quantizeWithKernel(_ bytes: UnsafeRawBufferPointer, layout: GroupLayout,
                            view: (outer: Int, depth: Int, inner: Int, block: Int), name: String) throws(NonFiniteValues) -> Outcome {
        let groups = layout.groupCount
        let range = format.range(symmetric: symmetric)
        let count = bytes.count / 4
        let storage = format.storage(symmetric: symmetric)!
        // 2, 3, 5, 6 and 7 bits: the kernel writes one level per byte, packed at the format's width afterwards.
        let levelsBuffer = OwnedBuffer(uninitializedCount: format.packedBits != nil ? count : storage.storageBytes(elements: count)!)
        let levels = levelsBuffer.mutableBytes.baseAddress
        let packed = format.bits == 4
        var scales = [Float](repeating: 0, count: groups)
        var zeros = [Float](repeating: 0, count: groups)
        var stats = mlpkg_quant_stats()
        let multipliers = candidates
        let done = scales.withUnsafeMutableBufferPointer { sp in
            zeros.withUnsafeMutableBufferPointer { zp in
                multipliers.withUnsafeBufferPointer { mp in
                    mlpkg_quantize_blocked(bytes.baseAddress, view.outer, view.depth, view.inner, view.block,
                                           symmetric ? 1 : 0, Int32(range.lowerBound), Int32(range.upperBound),
                                           mp.baseAddress, mp.count, scaleType == .float16 ? 1 : 0,
                                           packed ? nil : levels?.assumingMemoryBound(to: Int8.self),
                                           packed ? levels?.assumingMemoryBound(to: UInt8.self) : nil,
                                           sp.baseAddress, zp.baseAddress, &stats)
                }
            }
        }
        precondition(done != 0, "out of memory quantizing \(name)")
        if stats.non_finite > 0 { throw NonFiniteValues(count: stats.non_finite) }
        let values = format.packedBits.map { Self.pack(UnsafeRawBufferPointer(levelsBuffer.mutableBytes), count: count, bits: $0) }
            ?? levelsBuffer
        return outcome(values: values, scales: scales, zeros: zeros, layout: layout, name: name,
                       maxAbsError: stats.max_abs_error, signal: stats.signal_energy, error: stats.error_energy,
                       rtnError: stats.rtn_error_energy)
    }

    /// Packs stored values and builds the encoding.
    private func outcome(q: [Int8], scales: [Float], zeros: [Float], layout: GroupLayout, name: String, maxAbsError: Float,
                         signal: Double, error: Double, rtnError: Double) -> Outcome {
        let storage = format.storage(symmetric: symmetric)!
        if let bits = format.packedBits {
            let values = q.withUnsafeBytes { Self.pack($0, count: q.count, bits: bits) }
            return outcome(values: values, scales: scales, zeros: zeros, layout: layout, name: name, maxAbsError: maxAbsError,
                           signal: signal, error: error, rtnError: rtnError)
        }
        let values = OwnedBuffer(uninitializedCount: storage.storageBytes(elements: q.count)!)
        let out = values.mutableBytes
        if format.bits == 4 {
            q.withUnsafeBufferPointer { mlpkg_pack_nibbles($0.baseAddress, out.baseAddress?.assumingMemoryBound(to: UInt8.self), $0.count) }
        } else {
            q.withUnsafeBytes { out.copyMemory(from: $0) }
        }
        return outcome(values: values, scales: scales, zeros: zeros, layout: layout, name: name, maxAbsError: maxAbsError,
                       signal: signal, error: error, rtnError: rtnError)
    }

    /// Builds the encoding around stored values.
    private func outcome(values: OwnedBuffer, scales: [Float], zeros: [Float], layout: GroupLayout, name: String,
                         maxAbsError: Float, signal: Double, error: Double, rtnError: Double) -> Outcome {
        let storage = format.storage(symmetric: symmetric)!
        let packed = storage == .int4 || storage == .uint4  // zero points are stored in the storage type's layout
        let stored = scales.map { $0 != 0 ? $0 : 1 }
        let scaleData = scaleType == .float16 ? Float16Codec.encode(stored) : LittleEndian.bytes(of: stored)
        let scaleTensor = Tensor(name: name + "_scale", dataType: scaleType, dims: layout.scaleShape, data: .bytes(scaleData))
        var zeroTensor: Tensor?
        if !symmetric {
            let zp = OwnedBuffer(count: storage.storageBytes(elements: zeros.count)!)
            for (g, z) in zeros.enumerated() {
                let bits = UInt8(truncatingIfNeeded: Int(z))
                if packed { zp.mutableBytes[g >> 1] |= (bits & 0x0F) << UInt8((g & 1) * 4) } else { zp.mutableBytes[g] = bits }
            }
            zeroTensor = Tensor(name: name + "_zero_point", dataType: storage, dims: layout.scaleShape, data: .bytes(zp.view))
        }
        let encoding = LinearQuantization(storage: storage, axis: layout.axis, blockSize: layout.blockSize,
                                          scale: scaleTensor, zeroPoint: zeroTensor, bits: format.packedBits)
        return Outcome(values: values, encoding: encoding, maxAbsError: maxAbsError, signalEnergy: signal,
                       errorEnergy: error, roundToNearestErrorEnergy: rtnError)
    }

    /// Packs one int8 level per byte into an LSB-first stream of `bits`-bit two's-complement (or unsigned) values.
    static func pack(_ levels: UnsafeRawBufferPointer, count: Int, bits: Int) -> OwnedBuffer {
        let out = OwnedBuffer(count: (count * bits + 7) / 8)
        let mask = UInt8((1 << bits) - 1)
        for i in 0..<count { Palettizer.put(levels[i] & mask, at: i, bits: bits, into: out.mutableBytes) }
        return out
    }

    /// Reference path in Swift, for layouts the kernel does not take.
    func quantizeGeneric(_ floats: UnsafeBufferPointer<Float>, layout: GroupLayout, name: String) -> Outcome {
        let groups = layout.groupCount
        let range = format.range(symmetric: symmetric)
        let qmin = Float(range.lowerBound), qmax = Float(range.upperBound)

        // Per-group range.
        var low = [Float](repeating: 0, count: groups)
        var high = [Float](repeating: 0, count: groups)
        low.withUnsafeMutableBufferPointer { lo in
            high.withUnsafeMutableBufferPointer { hi in
                layout.forEach { e, g in
                    let w = floats[e]
                    if w < lo[g] { lo[g] = w }
                    if w > hi[g] { hi[g] = w }
                }
            }
        }
        // Round-to-nearest scale and zero point per group (ranges include 0, so zero is exact).
        var baseScale = [Float](repeating: 1, count: groups)
        var zero = [Float](repeating: 0, count: groups)
        for g in 0..<groups {
            if symmetric {
                let amax = max(-low[g], high[g])
                baseScale[g] = amax > 0 ? amax / Float(range.upperBound == 7 ? 7 : range.upperBound) : 0
            } else {
                let span = high[g] - low[g]
                baseScale[g] = span > 0 ? span / (qmax - qmin) : 0
                zero[g] = span > 0 ? min(max((qmin - low[g] / baseScale[g]).rounded(.toNearestOrEven), qmin), qmax) : 0
            }
        }

        // Search: per group, the candidate scale with the least squared error.
        let multipliers = candidates
        var bestScale = baseScale
        var rtnError = 0.0
        if multipliers.count > 1 {
            var bestError = [Double](repeating: .infinity, count: groups)
            var error = [Double](repeating: 0, count: groups)
            for (k, m) in multipliers.enumerated() {
                for g in 0..<groups { error[g] = 0 }
                let scales = (0..<groups).map { g -> Float in
                    if m > 0 || !symmetric { return baseScale[g] * abs(m) }
                    let extreme = -low[g] > high[g] ? low[g] : high[g]
                    return extreme / qmin * -m
                }
                let inverse = scales.map { $0 != 0 ? 1 / $0 : 0 }
                error.withUnsafeMutableBufferPointer { err in
                    layout.forEach { e, g in
                        let w = floats[e]
                        let q = min(max((w * inverse[g]).rounded(.toNearestOrEven) + zero[g], qmin), qmax)
                        let d = w - scales[g] * (q - zero[g])
                        err[g] += Double(d * d)
                    }
                }
                if k == 0 { rtnError = error.reduce(0, +) }
                for g in 0..<groups where error[g] < bestError[g] {
                    bestError[g] = error[g]
                    bestScale[g] = scales[g]
                }
            }
        }

        // Final pass: store q, measure error.
        if scaleType == .float16 { bestScale = bestScale.map(mlpkg_round_scale_to_half) }
        var q = [Int8](repeating: 0, count: floats.count)
        let inverse = bestScale.map { $0 != 0 ? 1 / $0 : 0 }
        var maxError: Float = 0
        var signal = 0.0, errorEnergy = 0.0
        layout.forEach { e, g in
            let w = floats[e]
            let v = min(max((w * inverse[g]).rounded(.toNearestOrEven) + zero[g], qmin), qmax)
            let d = abs(w - bestScale[g] * (v - zero[g]))
            if d > maxError { maxError = d }
            signal += Double(w) * Double(w)
            errorEnergy += Double(d) * Double(d)
            q[e] = Int8(truncatingIfNeeded: Int(v))
        }
        if multipliers.count == 1 { rtnError = errorEnergy }
        return outcome(q: q, scales: bestScale, zeros: zero, layout: layout, name: name, maxAbsError: maxError,
                       signal: signal, error: errorEnergy, rtnError: rtnError)
    }
}

/// Decodes linear-quantized tensors back to float32.
public enum LinearCodec {
    /// The float32 values of a tensor with a `.linear` encoding, as little-endian bytes.
    public static func dequantize(_ tensor: Tensor) -> ByteView? {
        guard case .linear(let q) = tensor.encoding, case .bytes(let values) = tensor.data,
              case .bytes(let scaleBytes) = q.scale.data else { return nil }
        let granularity: Granularity = q.blockSize != nil ? .perBlock : q.axis != nil ? .perChannel : .perTensor
        let layout = GroupLayout(dims: tensor.dims, granularity: granularity, axis: q.axis, blockSize: q.blockSize)
        let groups = layout.groupCount
        let scales = (0..<groups).map { g -> Float in
            q.scale.dataType == .float16
                ? Float16Codec.float(fromHalf: scaleBytes.bytes.loadUnaligned(fromByteOffset: g * 2, as: UInt16.self))
                : scaleBytes.bytes.loadUnaligned(fromByteOffset: g * 4, as: Float.self)
        }
        var zeros = [Float](repeating: 0, count: groups)
        if let zp = q.zeroPoint, case .bytes(let zb) = zp.data {
            for g in 0..<groups { zeros[g] = Float(element(zb.bytes, g, q.storage)) }
        }
        let out = OwnedBuffer(uninitializedCount: tensor.elementCount * 4)
        let floats = out.mutableBytes.bindMemory(to: Float.self)
        if let bits = q.bits {
            layout.forEach { e, g in
                floats[e] = scales[g] * (Float(packedElement(values.bytes, e, bits: bits, signed: q.storage.isSignedStorage)) - zeros[g])
            }
        } else {
            layout.forEach { e, g in
                floats[e] = scales[g] * (Float(element(values.bytes, e, q.storage)) - zeros[g])
            }
        }
        return out.view
    }

    /// Element `i` of an LSB-first stream of `bits`-bit values, sign-extended when `signed`.
    @inline(__always)
    public static func packedElement(_ bytes: UnsafeRawBufferPointer, _ i: Int, bits: Int, signed: Bool) -> Int {
        let v = Palettizer.element(bytes, i, bits: bits)
        return signed && v >= 1 << (bits - 1) ? v - (1 << bits) : v
    }

    /// The stored integers of a linear tensor in the plain layout of its storage type (int8/uint8 one per byte,
    /// int4/uint4 two per byte): the form ONNX DequantizeLinear and Core ML take. Packed widths are widened.
    public static func storageLayout(_ tensor: Tensor) -> ByteView? {
        guard case .linear(let q) = tensor.encoding, case .bytes(let values) = tensor.data else { return nil }
        guard let bits = q.bits else { return values }
        let count = tensor.elementCount
        let signed = q.storage.isSignedStorage
        if q.storage == .int4 || q.storage == .uint4 {
            let out = OwnedBuffer(count: (count + 1) / 2)
            for i in 0..<count {
                let v = UInt8(truncatingIfNeeded: packedElement(values.bytes, i, bits: bits, signed: signed)) & 0x0F
                out.mutableBytes[i >> 1] |= v << UInt8((i & 1) * 4)
            }
            return out.view
        }
        let out = OwnedBuffer(uninitializedCount: count)
        for i in 0..<count { out.mutableBytes[i] = UInt8(truncatingIfNeeded: packedElement(values.bytes, i, bits: bits, signed: signed)) }
        return out.view
    }

    /// Element `i` of packed integer storage.
    @inline(__always)
    static func element(_ bytes: UnsafeRawBufferPointer, _ i: Int, _ type: DataType) -> Int {
        switch type {
        case .int8: return Int(Int8(bitPattern: bytes[i]))
        case .uint8: return Int(bytes[i])
        case .int4:
            let nibble = (bytes[i >> 1] >> UInt8((i & 1) * 4)) & 0x0F
            return nibble >= 8 ? Int(nibble) - 16 : Int(nibble)
        case .uint4: return Int((bytes[i >> 1] >> UInt8((i & 1) * 4)) & 0x0F)
        default: return 0
        }
    }
}

extension DataType {
    /// int8 and int4 hold signed levels; uint8 and uint4 unsigned ones.
    var isSignedStorage: Bool { self == .int8 || self == .int4 }
}
