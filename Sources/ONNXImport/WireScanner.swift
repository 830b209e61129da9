/// A pass over the protobuf wire format of a model file before protobuf-c sees it. It
/// - checks the framing (tags, varints, lengths inside their message), naming the byte where a file is truncated or
///   corrupt;
/// - bounds message nesting: libprotobuf-c recurses once per nested message with no limit, so a few thousand nested
///   subgraphs or types would overflow the stack inside the C library; deeper files are refused here;
/// - finds large `TensorProto.raw_data` fields. protobuf-c copies every bytes field it parses; these are instead
///   replaced by small tokens in a slimmed copy of the structure, and the tensors then view their bytes in the mapped
///   file (no copy, and pages are read only when a tensor is used).
struct WireScanner {
    /// Message kinds of proto/onnx.proto that can contain tensors or nest (leaf messages are skipped as bytes).
    enum Kind {
        case model, graph, node, attribute, tensor, sparse, function, valueInfo, type, typeTensor, typeElement, typeMap,
             shape, leaf

        /// The kind of the message held in field `field`, if it is a message field worth entering.
        func child(_ field: UInt64) -> Kind? {
            switch (self, field) {
            case (.model, 7): return .graph
            case (.model, 25): return .function
            case (.model, 8), (.model, 14): return .leaf
            case (.graph, 1): return .node
            case (.graph, 5): return .tensor
            case (.graph, 11), (.graph, 12), (.graph, 13): return .valueInfo
            case (.graph, 15): return .sparse
            case (.graph, 14), (.graph, 16): return .leaf
            case (.node, 5): return .attribute
            case (.node, 9): return .leaf
            case (.attribute, 5), (.attribute, 10): return .tensor
            case (.attribute, 6), (.attribute, 11): return .graph
            case (.attribute, 14), (.attribute, 15): return .type
            case (.attribute, 22), (.attribute, 23): return .sparse
            case (.tensor, 3), (.tensor, 13), (.tensor, 16): return .leaf
            case (.sparse, 1), (.sparse, 2): return .tensor
            case (.function, 7): return .node
            case (.function, 11): return .attribute
            case (.function, 12): return .valueInfo
            case (.function, 9), (.function, 14): return .leaf
            case (.valueInfo, 2): return .type
            case (.valueInfo, 4): return .leaf
            case (.type, 1), (.type, 8): return .typeTensor
            case (.type, 4), (.type, 9): return .typeElement
            case (.type, 5): return .typeMap
            case (.type, 7): return .leaf
            case (.typeTensor, 2): return .shape
            case (.typeElement, 1): return .type
            case (.typeMap, 2): return .type
            case (.shape, 1): return .leaf
            default: return nil
            }
        }
    }

    struct Failure: Error {
        var message: String
    }

    /// A field replaced in the slimmed copy: [start, end) of the whole field (tag included) in the original.
    struct Edit {
        var start: Int
        var end: Int
        var tag: UInt64
        var replacement: Replacement
    }

    enum Replacement {
        case token(index: Int)
        case message(MessageEdits)
    }

    final class MessageEdits {
        let start: Int
        let end: Int
        var edits: [Edit] = []
        var newLength = 0
        init(start: Int, end: Int) {
            self.start = start
            self.end = end
        }
    }

    /// Deepest message nesting accepted (protobuf's own default recursion limit is 100).
    static let maxDepth = 100
    /// raw_data fields at least this long are left in the file instead of copied.
    let extractThreshold: Int
    let bytes: UnsafeRawBufferPointer
    /// Ranges of the extracted raw_data payloads, by token index.
    private(set) var extracted: [Range<Int>] = []
    /// Marks tokens as ours: random per import, so no real 24-byte tensor can pass for one.
    let nonce: UInt64 = UInt64.random(in: 1...UInt64.max)
    static let tokenLength = 24

    init(bytes: UnsafeRawBufferPointer, extractThreshold: Int) {
        self.bytes = bytes
        self.extractThreshold = extractThreshold
    }

    /// Scans the whole file as a ModelProto; returns the edits, or nil when nothing needs rewriting.
    mutating func scan() throws(Failure) -> MessageEdits? {
        try scan(0..<bytes.count, kind: .model, depth: 1)
    }

    private func varint(at offset: inout Int, limit: Int) throws(Failure) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < limit else { throw Failure(message: "truncated varint at byte \(offset)") }
            let byte = bytes[offset]
            offset += 1
            guard shift < 64 else { throw Failure(message: "varint longer than 10 bytes at byte \(offset - 1)") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    private mutating func scan(_ range: Range<Int>, kind: Kind, depth: Int) throws(Failure) -> MessageEdits? {
        guard depth <= Self.maxDepth else {
            throw Failure(message: "messages nested deeper than \(Self.maxDepth) levels (subgraphs or types) at byte \(range.lowerBound); refusing to parse")
        }
        var edits: MessageEdits?
        var offset = range.lowerBound
        while offset < range.upperBound {
            let fieldStart = offset
            let tag = try varint(at: &offset, limit: range.upperBound)
            let field = tag >> 3
            guard field > 0 else { throw Failure(message: "invalid field number 0 at byte \(fieldStart)") }
            switch tag & 7 {
            case 0:
                _ = try varint(at: &offset, limit: range.upperBound)
            case 1, 5:
                let width = tag & 7 == 1 ? 8 : 4
                guard range.upperBound - offset >= width else { throw Failure(message: "truncated field at byte \(fieldStart)") }
                offset += width
            case 2:
                let length = try varint(at: &offset, limit: range.upperBound)
                guard length <= UInt64(range.upperBound - offset) else {
                    throw Failure(message: "field at byte \(fieldStart) claims \(length) bytes, past the end of its message at byte \(range.upperBound) (truncated file?)")
                }
                let payload = offset..<(offset + Int(length))
                offset = payload.upperBound
                var replacement: Replacement?
                if kind == .tensor && field == 9 && payload.count >= extractThreshold {
                    extracted.append(payload)
                    replacement = .token(index: extracted.count - 1)
                } else if let child = kind.child(field) {
                    if child == .leaf {
                        guard depth + 1 <= Self.maxDepth else {
                            throw Failure(message: "messages nested deeper than \(Self.maxDepth) levels at byte \(payload.lowerBound); refusing to parse")
                        }
                    } else if let nested = try scan(payload, kind: child, depth: depth + 1) {
                        replacement = .message(nested)
                    }
                }
                if let replacement {
                    let message = edits ?? MessageEdits(start: range.lowerBound, end: range.upperBound)
                    message.edits.append(Edit(start: fieldStart, end: offset, tag: tag, replacement: replacement))
                    edits = message
                }
            default:
                throw Failure(message: "unsupported wire type \(tag & 7) at byte \(fieldStart) (not an ONNX model?)")
            }
        }
        if let edits {
            var length = range.count
            for edit in edits.edits {
                length -= edit.end - edit.start
                length += Self.varintSize(edit.tag) + Self.fieldSize(edit.replacement)
            }
            edits.newLength = length
        }
        return edits
    }

    static func varintSize(_ value: UInt64) -> Int {
        var v = value
        var n = 1
        while v >= 0x80 {
            v >>= 7
            n += 1
        }
        return n
    }

    private static func fieldSize(_ replacement: Replacement) -> Int {
        let payload: Int
        switch replacement {
        case .token: payload = tokenLength
        case .message(let m): payload = m.newLength
        }
        return varintSize(UInt64(payload)) + payload
    }

    /// The slimmed copy of the file: everything as it was, extracted payloads replaced by tokens.
    func slimmed(_ root: MessageEdits) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(root.newLength)
        write(root, into: &out)
        return out
    }

    private func write(_ message: MessageEdits, into out: inout [UInt8]) {
        var cursor = message.start
        for edit in message.edits {
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[cursor..<edit.start]))
            Self.appendVarint(edit.tag, to: &out)
            switch edit.replacement {
            case .token(let index):
                Self.appendVarint(UInt64(Self.tokenLength), to: &out)
                for value in [nonce, UInt64(index), UInt64(extracted[index].count)] {
                    withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
                }
            case .message(let child):
                Self.appendVarint(UInt64(child.newLength), to: &out)
                write(child, into: &out)
            }
            cursor = edit.end
        }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[cursor..<message.end]))
    }

    private static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    /// The extracted range a raw_data token stands for, or nil if `raw` is not one of this scan's tokens.
    func range(ofToken raw: UnsafeRawBufferPointer) -> Range<Int>? {
        guard raw.count == Self.tokenLength else { return nil }
        let words = (0..<3).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self).littleEndian }
        guard words[0] == nonce, words[1] < UInt64(extracted.count) else { return nil }
        let range = extracted[Int(words[1])]
        return UInt64(range.count) == words[2] ? range : nil
    }
}
