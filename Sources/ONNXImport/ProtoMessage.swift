import CProtobufC
import ONNXProto

/// Owns a `ModelProto` unpacked by protobuf-c. Tensors whose bytes live in its `raw_data` fields keep it alive.
final class UnpackedModel: @unchecked Sendable {
    let proto: UnsafeMutablePointer<Onnx__ModelProto>

    /// Parses `bytes` as a `ModelProto`; nil when protobuf-c rejects them (truncated or not a protobuf).
    init?(bytes: UnsafeRawBufferPointer) {
        let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        var empty: UInt8 = 0
        let parsed = withUnsafePointer(to: &empty) { fallback in
            onnx__model_proto__unpack(nil, bytes.count, base ?? fallback)
        }
        guard let parsed else { return nil }
        proto = parsed
    }

    deinit { onnx__model_proto__free_unpacked(proto, nil) }
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
