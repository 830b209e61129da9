import CProtobufC
import GraphIR
import ONNXProto

/// Owns a `ModelProto` unpacked by protobuf-c. Tensors whose bytes live in its `raw_data` fields keep it alive.
/// Large raw_data payloads are not parsed at all: `WireScanner` swaps them for tokens, and `rawData(_:)` turns a
/// token back into a view of the mapped model file.
final class UnpackedModel: @unchecked Sendable {
    let proto: UnsafeMutablePointer<Onnx__ModelProto>
    private let scanner: WireScanner
    private let file: MappedFile?

    enum Failure: Error {
        /// The wire format is broken (the message says where) or nested too deeply.
        case framing(String)
        /// protobuf-c refused the bytes.
        case rejected
    }

    /// Parses `bytes` as a `ModelProto`. With `file` (the mapping `bytes` lie in), large raw_data fields stay in
    /// the file; without it, protobuf-c copies everything and `bytes` may go away after this returns.
    init(bytes: UnsafeRawBufferPointer, file: MappedFile?) throws(Failure) {
        var scanner = WireScanner(bytes: bytes, extractThreshold: file == nil ? Int.max : 1024)
        let edits: WireScanner.MessageEdits?
        do {
            edits = try scanner.scan()
        } catch {
            throw .framing(error.message)
        }
        let parsed: UnsafeMutablePointer<Onnx__ModelProto>?
        if let edits {
            let slim = scanner.slimmed(edits)
            parsed = slim.withUnsafeBufferPointer { onnx__model_proto__unpack(nil, $0.count, $0.baseAddress) }
        } else {
            var empty: UInt8 = 0
            let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
            parsed = withUnsafePointer(to: &empty) { onnx__model_proto__unpack(nil, bytes.count, base ?? $0) }
        }
        guard let parsed else { throw .rejected }
        proto = parsed
        self.scanner = scanner
        self.file = file
    }

    deinit { onnx__model_proto__free_unpacked(proto, nil) }

    /// The bytes of a parsed raw_data field: in place in the file if it was extracted, else in the parsed message.
    func rawData(_ data: ProtobufCBinaryData) -> ByteView {
        guard data.len > 0, let base = data.data else { return .empty }
        let parsed = UnsafeRawBufferPointer(start: base, count: data.len)
        if let file, let range = scanner.range(ofToken: parsed) { return file.view(range) }
        return ByteView(bytes: parsed, owner: self)
    }
}

// Views of protobuf-c's C arrays and strings.

@inline(__always)
func cArray<T>(_ pointer: UnsafeMutablePointer<T>?, _ count: Int) -> UnsafeBufferPointer<T> {
    guard let pointer, count > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
    return UnsafeBufferPointer(start: pointer, count: count)
}

@inline(__always)
func cMessages<T>(_ pointer: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ count: Int) -> [UnsafeMutablePointer<T>] {
    cArray(pointer, count).compactMap { $0 }
}

@inline(__always)
func cString(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    guard let pointer else { return "" }
    return String(cString: pointer)
}

func cStrings(_ pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ count: Int) -> [String] {
    cArray(pointer, count).map { cString($0) }
}

@inline(__always)
func cBytes(_ data: ProtobufCBinaryData) -> [UInt8] {
    guard data.len > 0, let base = data.data else { return [] }
    return Array(UnsafeBufferPointer(start: base, count: data.len))
}

func cEntries(_ pointer: UnsafeMutablePointer<UnsafeMutablePointer<Onnx__StringStringEntryProto>?>?,
              _ count: Int) -> [(key: String, value: String)] {
    cMessages(pointer, count).map { (cString($0.pointee.key), cString($0.pointee.value)) }
}
