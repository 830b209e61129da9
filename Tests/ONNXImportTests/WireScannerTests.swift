import Foundation
import Testing
@testable import ONNXImport

/// Minimal protobuf writing for hand-made hostile files.
private enum Wire {
    static func varint(_ value: UInt64) -> [UInt8] {
        var v = value
        var out: [UInt8] = []
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        return out + [UInt8(v)]
    }

    static func field(_ number: UInt64, _ payload: [UInt8]) -> [UInt8] {
        varint(number << 3 | 2) + varint(UInt64(payload.count)) + payload
    }

    static func int(_ number: UInt64, _ value: UInt64) -> [UInt8] { varint(number << 3) + varint(value) }

    /// A model whose graph holds an If whose then_branch holds an If… `depth` times.
    static func nestedIfs(depth: Int) -> [UInt8] {
        var graph: [UInt8] = field(2, Array("leaf".utf8))
        for _ in 0..<depth {
            let attribute = field(1, Array("then_branch".utf8)) + int(20, 5) + field(6, graph)
            let node = field(1, Array("cond".utf8)) + field(2, Array("y".utf8)) + field(4, Array("If".utf8)) + field(5, attribute)
            graph = field(1, node) + field(2, Array("g".utf8))
        }
        return int(1, 10) + field(7, graph) + field(8, field(1, []) + int(2, 17))
    }
}

@Suite struct WireScannerTests {
    @Test("3,000 nested If subgraphs are refused before protobuf-c recurses into them")
    func deepNestingRefused() throws {
        let bytes = Wire.nestedIfs(depth: 3000)
        #expect(bytes.count > 50_000)
        #expect {
            try bytes.withUnsafeBytes { try ONNXImporter.load(bytes: $0, file: "deep.onnx", folder: "/nonexistent") }
        } throws: { error in
            (error as? ImportError)?.message.contains("nested deeper than 100") == true
        }
    }

    @Test("nesting within the limit still parses (and is then checked as a graph)")
    func shallowNestingParses() {
        let bytes = Wire.nestedIfs(depth: 20)
        #expect {
            try bytes.withUnsafeBytes { try ONNXImporter.load(bytes: $0, file: "shallow.onnx", folder: "/nonexistent") }
        } throws: { error in
            // The structure parses; the graph fails verification because 'cond' is produced nowhere.
            (error as? ImportError)?.message.contains("'cond'") == true
        }
    }

    @Test("a length past the end of its message is reported with its byte offset")
    func truncatedLength() {
        let bytes = Wire.int(1, 10) + Wire.varint(7 << 3 | 2) + Wire.varint(1000) + [1, 2, 3]
        #expect {
            try bytes.withUnsafeBytes { try ONNXImporter.load(bytes: $0, file: "cut.onnx", folder: "/nonexistent") }
        } throws: { error in
            (error as? ImportError)?.message.contains("at byte 2 claims 1000 bytes") == true
        }
    }

    @Test("tokens are recognised only with this scan's nonce, index and length")
    func tokens() throws {
        let payload = [UInt8](repeating: 7, count: 2048)
        let tensor = Wire.int(1, 512) + Wire.int(2, 1) + Wire.field(9, payload)
        let bytes = Wire.field(7, Wire.field(5, tensor))
        try bytes.withUnsafeBytes { raw in
            var scanner = WireScanner(bytes: raw, extractThreshold: 1024)
            let edits = try #require(try scanner.scan())
            let slim = scanner.slimmed(edits)
            #expect(slim.count < 64)
            #expect(scanner.extracted.count == 1 && scanner.extracted[0].count == 2048)
            let token = Array(slim.suffix(WireScanner.tokenLength))
            token.withUnsafeBytes { #expect(scanner.range(ofToken: $0) == scanner.extracted[0]) }
            var forged = token
            forged[0] ^= 1
            forged.withUnsafeBytes { #expect(scanner.range(ofToken: $0) == nil) }
        }
    }
}
