/// Builds protobuf wire-format bytes. Large byte fields are kept as views (never copied) and written out in order,
/// so a model's weights go straight from their source to the output file.
public final class ProtoBuilder {
    /// Creates an empty builder.
    public init() {}

    /// One piece of the output: bytes the builder copied, or a large byte field referenced in place.
    public enum Segment {
        /// Encoded bytes the builder holds.
        case bytes([UInt8])
        /// A large bytes field's content, referenced in place.
        case view(ByteView)
    }

    /// The output so far, in order; bytes written since the last `flush()` are not in it yet.
    public private(set) var segments: [Segment] = []
    private var current: [UInt8] = []
    /// Bytes written so far, flushed or not.
    public private(set) var size = 0
    /// Levels of messages this one holds, itself included (1 without embedded messages): readers refuse files
    /// nested deeper than their recursion limit (protobuf's default and the `onnx` package's: 100).
    public private(set) var depth = 1

    private enum WireType: UInt64 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5
    }

    private func tag(_ field: Int, _ wire: WireType) {
        appendVarint(UInt64(field) << 3 | wire.rawValue)
    }

    private func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            current.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
            size += 1
        }
        current.append(UInt8(v))
        size += 1
    }

    private func appendBytes<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        current.append(contentsOf: bytes)
        size += bytes.count
    }

    /// A bare varint with no tag (inside packed fields).
    public func rawVarint(_ value: UInt64) {
        appendVarint(value)
    }

    // MARK: Scalars

    /// An int64 varint field; negative values take ten bytes (two's complement).
    public func int64(_ field: Int, _ value: Int64) {
        tag(field, .varint)
        appendVarint(UInt64(bitPattern: value))
    }

    /// int32 fields are sign-extended to 64 bits on the wire, as protobuf requires.
    public func int32(_ field: Int, _ value: Int32) {
        int64(field, Int64(value))
    }

    /// A uint64 varint field.
    public func uint64(_ field: Int, _ value: UInt64) {
        tag(field, .varint)
        appendVarint(value)
    }

    /// A float field as four little-endian bytes (fixed32).
    public func float(_ field: Int, _ value: Float) {
        tag(field, .fixed32)
        var bits = value.bitPattern.littleEndian
        withUnsafeBytes(of: &bits) { appendBytes($0) }
    }

    /// Omitted when empty (proto2 optional strings read back as "").
    public func string(_ field: Int, _ value: String) {
        guard !value.isEmpty else { return }
        bytes(field, Array(value.utf8))
    }

    /// A length-delimited bytes field, copied; written even when empty.
    public func bytes(_ field: Int, _ value: [UInt8]) {
        tag(field, .lengthDelimited)
        appendVarint(UInt64(value.count))
        appendBytes(value)
    }

    /// A bytes field whose content is referenced, not copied.
    public func view(_ field: Int, _ value: ByteView) {
        tag(field, .lengthDelimited)
        appendVarint(UInt64(value.count))
        guard value.count > 0 else { return }
        if value.count < 4096 {
            appendBytes(value.bytes)
            return
        }
        flush()
        segments.append(.view(value))
        size += value.count
    }

    // MARK: Repeated

    /// One length-delimited field per string (UTF-8), empty strings included.
    public func repeatedStrings(_ field: Int, _ values: [String]) {
        for v in values { bytes(field, Array(v.utf8)) }
    }

    /// Repeated int64 written one element per tag (the unpacked form ONNX's schema declares for attribute ints).
    public func repeatedInt64(_ field: Int, _ values: [Int64]) {
        for v in values { int64(field, v) }
    }

    /// Repeated float written one element per tag (the unpacked form ONNX's schema declares for attribute floats).
    public func repeatedFloat(_ field: Int, _ values: [Float]) {
        for v in values { float(field, v) }
    }

    /// A packed repeated float field (proto3's default encoding of `repeated float`).
    public func packedFloats(_ field: Int, _ values: [Float]) {
        var payload: [UInt8] = []
        payload.reserveCapacity(values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { payload.append(contentsOf: $0) } }
        bytes(field, payload)
    }

    /// A packed repeated varint field (`repeated int32/int64/bool`); negative values are sign-extended to 64 bits.
    public func packedVarints(_ field: Int, _ values: [Int64]) {
        let child = ProtoBuilder()
        for v in values { child.appendVarint(UInt64(bitPattern: v)) }
        bytes(field, child.data)
    }

    // MARK: Messages

    /// An embedded message field whose content `build` writes into a child builder; the child's views are kept.
    public func message(_ field: Int, _ build: (ProtoBuilder) -> Void) {
        let child = ProtoBuilder()
        build(child)
        child.flush()
        depth = max(depth, child.depth + 1)
        tag(field, .lengthDelimited)
        appendVarint(UInt64(child.size))
        for segment in child.segments {
            switch segment {
            case .bytes(let b): appendBytes(b)
            case .view(let v):
                flush()
                segments.append(.view(v))
                size += v.count
            }
        }
    }

    /// Moves the bytes written since the last flush into a new segment; call it before reading `segments`.
    public func flush() {
        guard !current.isEmpty else { return }
        segments.append(.bytes(current))
        current = []
    }

    /// All bytes in one array (for small messages and tests).
    public var data: [UInt8] {
        flush()
        var out: [UInt8] = []
        out.reserveCapacity(size)
        for segment in segments {
            switch segment {
            case .bytes(let b): out.append(contentsOf: b)
            case .view(let v): out.append(contentsOf: v.bytes)
            }
        }
        return out
    }
}
