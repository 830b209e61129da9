import GraphIR
import Testing
@testable import Quantization

/// `Tensor.selecting(slice:rows:)` on every linear format and granularity (channel axes 0, 1 and 2, blocks along
/// axis 2), and on palettes with one table and with tables per slice: decoding the selection gives exactly the
/// selected elements of the whole tensor decoded. Selections that straddle a group are refused.
@Suite struct EncodedSelectionTests {
    /// [2, 12, 10]: a recurrent weight's [directions, gates·hidden, input] with 3 gates of 4 rows.
    static let dims = [2, 12, 10]
    /// Direction 1, MIL's GRU order from ONNX's (r, h, z rows: 4..<8, 8..<12, 0..<4), and a shorter pick.
    static let picks: [(slice: Int, rows: [Int])] = [(1, Array(4..<12) + Array(0..<4)), (0, [11, 3, 3, 0])]

    static func weights() -> [Float] {
        var rng = SplitMix(seed: 29)
        return (0..<240).map { _ in Float(Int64(bitPattern: rng.next()) % 10_000) / 7_000 }
    }

    /// The float32 values `tensor` decodes to.
    static func decoded(_ tensor: Tensor) throws -> [Float] {
        let bytes = try #require(LinearCodec.dequantize(tensor) ?? PaletteCodec.dequantize(tensor))
        return (0..<tensor.elementCount).map { bytes.bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
    }

    /// Expects the selection to decode to the whole tensor's decoded elements at (slice, rows).
    static func check(_ tensor: Tensor) throws {
        let whole = try decoded(tensor)
        for pick in picks {
            let part = try #require(tensor.selecting(slice: pick.slice, rows: pick.rows))
            #expect(part.dims == [pick.rows.count, 10])
            let want = pick.rows.flatMap { r in whole[((pick.slice * 12 + r) * 10)..<((pick.slice * 12 + r + 1) * 10)] }
            #expect(try decoded(part) == want, "\(tensor.encoding.name) slice \(pick.slice) rows \(pick.rows)")
        }
    }

    struct Linear: CustomTestStringConvertible, Sendable {
        var format: WeightFormat
        var axis: Int?
        var blocked: Bool
        var symmetric: Bool
        var testDescription: String {
            "\(format) \(blocked ? "blocks along" : "channel") \(axis.map(String.init) ?? "none") \(symmetric ? "sym" : "asym")"
        }
    }

    static let linearCases: [Linear] = WeightFormat.allCases.filter(\.isLinear).flatMap { f in
        [(nil, false), (0, false), (1, false), (2, false), (2, true)].flatMap { axis, blocked in
            [true, false].map { Linear(format: f, axis: axis, blocked: blocked, symmetric: $0) }
        }
    }

    @Test("a linear tensor's selection decodes to the selected elements", arguments: linearCases)
    func linear(c: Linear) throws {
        let granularity: Granularity = c.blocked ? .perBlock : c.axis == nil ? .perTensor : .perChannel
        let layout = GroupLayout(dims: Self.dims, granularity: granularity, axis: c.axis, blockSize: c.blocked ? 4 : nil)
        let w = Self.weights()
        let outcome = try w.withUnsafeBytes {
            try LinearQuantizer(format: c.format, symmetric: c.symmetric, scaleType: .float16).quantize($0, layout: layout, name: "w")
        }
        let tensor = Tensor(name: "w", dataType: .float, dims: Self.dims, data: .bytes(outcome.values.view),
                            encoding: .linear(outcome.encoding))
        try Self.check(tensor)
    }

    @Test("a palettized tensor's selection decodes to the selected elements", arguments: [1, 2, 3, 4, 6, 8])
    func palette(bits: Int) throws {
        let w = Self.weights()
        for group in [nil, 1] as [Int?] {
            let outcome = try w.withUnsafeBytes { try Palettizer(bits: bits, groupSize: group).palettize($0, dims: Self.dims, name: "w") }
            let tensor = Tensor(name: "w", dataType: .float, dims: Self.dims, data: .bytes(outcome.indices.view),
                                encoding: .palette(outcome.encoding))
            try Self.check(tensor)
            if let part = tensor.selecting(slice: 1, rows: [0]), case .palette(let p) = part.encoding {
                #expect(p.groupSize == nil && p.lut.dims == [1 << bits], "one table serves one slice")
            }
        }
    }

    @Test("blocks along axis 0 or 1, float storage, short bytes and out-of-range picks are refused")
    func refusals() throws {
        let w = Self.weights()
        let layout = GroupLayout(dims: Self.dims, granularity: .perBlock, axis: 1, blockSize: 4)
        let outcome = try w.withUnsafeBytes { try LinearQuantizer(format: .int8, symmetric: true).quantize($0, layout: layout, name: "w") }
        let blocked = Tensor(name: "w", dataType: .float, dims: Self.dims, data: .bytes(outcome.values.view), encoding: .linear(outcome.encoding))
        #expect(blocked.selecting(slice: 0, rows: [0]) == nil)
        let raw = w.withUnsafeBytes { Tensor(name: "w", dataType: .float, dims: Self.dims, data: .bytes(ByteView(copying: Array($0)))) }
        #expect(raw.selecting(slice: 0, rows: [0]) == nil)
        var short = blocked
        short.encoding = .linear(LinearQuantization(storage: .int8, axis: nil, blockSize: nil, scale: outcome.encoding.scale, zeroPoint: nil))
        short.data = .bytes(ByteView(copying: [UInt8](repeating: 0, count: 100)))
        #expect(short.selecting(slice: 0, rows: [0]) == nil)
        var whole = blocked
        whole.encoding = short.encoding
        #expect(whole.selecting(slice: 2, rows: [0]) == nil)
        #expect(whole.selecting(slice: 0, rows: [12]) == nil)
        #expect(whole.selecting(slice: 0, rows: [-1]) == nil)
    }
}
