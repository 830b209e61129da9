import GraphIR
import Testing
@testable import Quantization

/// Every linear format × granularity × symmetry, on a tensor whose last block is partial and which holds an
/// all-zero channel, a constant channel and an outlier: the round trip keeps the bounds kept in the format's row.
@Suite struct LinearQuantizerTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var format: WeightFormat
        var granularity: Granularity
        var symmetric: Bool
        var scaleType: DataType = .float
        var testDescription: String {
            "\(format) \(granularity.rawValue) \(symmetric ? "sym" : "asym") \(scaleType.name) scales"
        }
    }

    static let cases: [Case] = WeightFormat.allCases.filter(\.isLinear).flatMap { f in
        Granularity.allCases.flatMap { g in
            [true, false].flatMap { sym in [DataType.float, .float16].map { Case(format: f, granularity: g, symmetric: sym, scaleType: $0) } }
        }
    }

    /// [6, 40]: channel axis 0, blocks of 16 along axis 1 (the last block is partial: 40 = 16 + 16 + 8).
    static func weights() -> [Float] {
        var rng = SplitMix(seed: 21)
        var w = (0..<240).map { _ in Float(Int64(bitPattern: rng.next()) % 10_000) / 10_000 }
        for i in 40..<80 { w[i] = 0 }          // channel 1: all zero
        for i in 80..<120 { w[i] = -0.375 }    // channel 2: constant
        w[200] = 9                             // an outlier in channel 5
        return w
    }

    @Test("round trip within the row's bound; stored values in range", arguments: cases)
    func roundTrip(c: Case) throws {
        let w = Self.weights()
        let axis = c.granularity == .perChannel ? 0 : c.granularity == .perBlock ? 1 : nil
        let layout = GroupLayout(dims: [6, 40], granularity: c.granularity, axis: axis, blockSize: 16)
        let quantizer = LinearQuantizer(format: c.format, symmetric: c.symmetric, scaleType: c.scaleType)
        let outcome = try w.withUnsafeBytes { try quantizer.quantize($0, layout: layout, name: "w") }
        #expect(outcome.encoding.scale.dataType == c.scaleType)
        var tensor = Tensor(name: "w", dataType: .float, dims: [6, 40], data: .bytes(outcome.values.view))
        tensor.encoding = .linear(outcome.encoding)
        #expect(outcome.encoding.scale.dims == layout.scaleShape)
        #expect(outcome.encoding.bits == c.format.packedBits)
        let width = c.format.packedBits ?? (c.format.bits == 4 ? 4 : 8)
        #expect(outcome.values.view.count == (240 * width + 7) / 8)
        let back = try #require(LinearCodec.dequantize(tensor))
        guard case .bytes(let scaleBytes) = outcome.encoding.scale.data else { return }
        let scales = (0..<layout.groupCount).map { g -> Float in
            c.scaleType == .float16
                ? Float16Codec.float(fromHalf: scaleBytes.bytes.loadUnaligned(fromByteOffset: g * 2, as: UInt16.self))
                : scaleBytes.bytes.loadUnaligned(fromByteOffset: g * 4, as: Float.self)
        }
        let range = c.format.range(symmetric: c.symmetric)
        var zeros = [Float](repeating: 0, count: layout.groupCount)
        if let zp = outcome.encoding.zeroPoint, case .bytes(let zb) = zp.data {
            for g in zeros.indices { zeros[g] = Float(LinearCodec.element(zb.bytes, g, zp.dataType)) }
        }
        var errorEnergy = 0.0
        layout.forEach { e, g in
            let storage = c.format.storage(symmetric: c.symmetric)!
            let q = c.format.packedBits.map {
                LinearCodec.packedElement(outcome.values.view.bytes, e, bits: $0, signed: storage == .int8 || storage == .int4)
            } ?? LinearCodec.element(outcome.values.view.bytes, e, storage)
            #expect(range.contains(q))
            let restored = back.bytes.loadUnaligned(fromByteOffset: e * 4, as: Float.self)
            // Scales may be negative (signed int4 scales): the representable interval runs either way.
            let a = scales[g] * (Float(range.lowerBound) - zeros[g]), b = scales[g] * (Float(range.upperBound) - zeros[g])
            let low = min(a, b), high = max(a, b)
            let error = abs(w[e] - restored)
            errorEnergy += Double(error * error)
            if w[e] >= low && w[e] <= high {
                #expect(error <= abs(scales[g]) * c.format.scaleErrorBound * 1.0001 + 1e-7, "element \(e): \(w[e]) → \(restored)")
            } else {
                #expect(restored == (w[e] < low ? low : high), "clamped to the nearest end")
            }
        }
        // Zero and constant channels come back exactly wherever a group covers only them.
        if c.granularity != .perTensor {
            for e in 40..<80 { #expect(back.bytes.loadUnaligned(fromByteOffset: e * 4, as: Float.self) == 0) }
        }
        #expect(abs(errorEnergy - outcome.errorEnergy) <= 1e-9 + 1e-5 * errorEnergy)  // the kernel sums rows in float
        #expect(outcome.errorEnergy <= outcome.roundToNearestErrorEnergy * (1 + 1e-9), "the search never loses to RTN")
        if c.format == .int8 && c.symmetric {
            #expect(outcome.errorEnergy == outcome.roundToNearestErrorEnergy, "int8 is plain round-to-nearest")
        }
    }

    @Test("the clipping search gains on Gaussian-like weights (int4 per-block)")
    func clippingGain() throws {
        var rng = SplitMix(seed: 4)
        // Sum of uniforms ≈ normal: heavy enough tails for clipping to pay.
        let w = (0..<(64 * 256)).map { _ in (0..<4).reduce(Float(0)) { s, _ in s + Float(rng.next() % 10_000) / 10_000 - 0.5 } }
        let layout = GroupLayout(dims: [64, 256], granularity: .perBlock, axis: 0, blockSize: 32)
        let outcome = try w.withUnsafeBytes { try LinearQuantizer(format: .int4, symmetric: true).quantize($0, layout: layout, name: "w") }
        let gain = 10 * log10(outcome.roundToNearestErrorEnergy / outcome.errorEnergy)
        #expect(gain > 0.5, "gain \(gain) dB")
    }
}

import Foundation

@Suite struct LinearKernelTests {
    @Test("the SIMD kernel and the Swift reference agree", arguments: LinearQuantizerTests.cases)
    func kernelMatchesReference(c: LinearQuantizerTests.Case) throws {
        let w = LinearQuantizerTests.weights()
        let axis = c.granularity == .perChannel ? 0 : c.granularity == .perBlock ? 1 : nil
        let layout = GroupLayout(dims: [6, 40], granularity: c.granularity, axis: axis, blockSize: 16)
        let view = try #require(layout.kernelView)
        let quantizer = LinearQuantizer(format: c.format, symmetric: c.symmetric, scaleType: c.scaleType)
        let fast = try w.withUnsafeBytes { try quantizer.quantizeWithKernel($0, layout: layout, view: view, name: "w") }
        let slow = w.withUnsafeBufferPointer { quantizer.quantizeGeneric($0, layout: layout, name: "w") }
        let snr = { (o: LinearQuantizer.Outcome) in 10 * log10(o.signalEnergy / o.errorEnergy) }
        if c.format.searchesClipping {
            // The kernel also refits each group's scale by least squares: never worse than the reference search.
            #expect(snr(fast) >= snr(slow) - 0.01)
        } else {
            #expect(abs(snr(fast) - snr(slow)) < 0.01)
            #expect(fast.values.view.array == slow.values.view.array)
        }
    }

    @Test("per-channel scales on a middle axis (LSTM W [dirs, G·H, in]) take the reference path")
    func middleAxis() throws {
        var rng = SplitMix(seed: 9)
        let w = (0..<(2 * 8 * 5)).map { _ in Float(Int64(bitPattern: rng.next()) % 1000) / 1000 }
        let layout = GroupLayout(dims: [2, 8, 5], granularity: .perChannel, axis: 1, blockSize: nil)
        #expect(layout.kernelView == nil)
        let outcome = try w.withUnsafeBytes { try LinearQuantizer(format: .int8, symmetric: true).quantize($0, layout: layout, name: "w") }
        var tensor = Tensor(name: "w", dataType: .float, dims: [2, 8, 5], data: .bytes(outcome.values.view))
        tensor.encoding = .linear(outcome.encoding)
        let back = try #require(LinearCodec.dequantize(tensor))
        #expect(outcome.encoding.scale.dims == [8])
        for e in w.indices {
            #expect(abs(back.bytes.loadUnaligned(fromByteOffset: e * 4, as: Float.self) - w[e]) <= 1.0 / 127 / 2 + 1e-6)
        }
    }
}
