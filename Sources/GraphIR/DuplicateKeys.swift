import Foundation

/// Finds a key that appears twice in one JSON object. JSON readers disagree on duplicates (Foundation keeps the
/// first, most others the last), so a manifest or a `--config` file with one could be read differently by mlpkg and
/// by another tool: mlpkg refuses both (docs/FORMAT.md, docs/QUANTIZATION.md). One linear scan over the bytes; keys are compared after decoding escapes.
///
/// Linear in the size of the document, whatever its shape: each open object's keys are held in one set that is
/// only ever inserted into (a reference, never copied). Before, the set of the innermost object was copied on every
/// key, so one object of 80,000 keys (a legal 1 MB manifest) took every reader ~47 s.
public struct DuplicateKeys {
    /// The keys seen so far in one open object.
    private final class Keys {
        var seen = Set<String>()
    }

    /// Work done: bytes visited plus keys looked up. Tests check that it grows linearly with the document.
    public private(set) var steps = 0

    /// A scanner that has done no work yet.
    public init() {}

    /// The first duplicated key (decoded), or nil. Malformed JSON returns nil: the decoder reports it.
    public static func first(in data: Data) -> String? {
        var scanner = DuplicateKeys()
        return scanner.scan(data)
    }

    /// The first duplicated key in `data` (decoded), or nil; counts its work in `steps`.
    public mutating func scan(_ data: Data) -> String? {
        var steps = 0
        defer { self.steps += steps }
        return data.withUnsafeBytes { raw -> String? in
            let bytes = raw.bindMemory(to: UInt8.self)
            var i = 0
            // One entry per open container: its keys (objects) or nil (arrays).
            var stack: [Keys?] = []
            var expectingKey = false
            while i < bytes.count {
                let c = bytes[i]
                steps += 1
                switch c {
                case UInt8(ascii: "{"):
                    stack.append(Keys())
                    expectingKey = true
                    i += 1
                case UInt8(ascii: "["):
                    stack.append(nil)
                    expectingKey = false
                    i += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    if !stack.isEmpty { stack.removeLast() }
                    expectingKey = false
                    i += 1
                case UInt8(ascii: ","):
                    expectingKey = stack.last.map { $0 != nil } ?? false
                    i += 1
                case UInt8(ascii: "\""):
                    guard let (text, next) = Self.string(bytes, from: i) else { return nil }
                    steps += next - i
                    if expectingKey, let keys = stack.last ?? nil {
                        steps += 1
                        if !keys.seen.insert(text).inserted { return text }
                        expectingKey = false
                    }
                    i = next
                default:
                    i += 1
                }
            }
            return nil
        }
    }

    /// The decoded string starting at the quote at `start`, and the index after its closing quote.
    private static func string(_ b: UnsafeBufferPointer<UInt8>, from start: Int) -> (String, Int)? {
        guard let base = b.baseAddress else { return nil }
        func find(_ byte: UInt8, _ range: Range<Int>) -> Int? {
            guard !range.isEmpty, let p = memchr(base + range.lowerBound, Int32(byte), range.count) else { return nil }
            return base.distance(to: p.assumingMemoryBound(to: UInt8.self))
        }
        // The closing quote: the first one not escaped (found with memchr: a 20 MB string is one call, not a loop).
        var i = start + 1
        var plain = true
        while true {
            guard i < b.count, let q = find(UInt8(ascii: "\""), i..<b.count) else { return nil }
            guard let backslash = find(UInt8(ascii: "\\"), i..<q) else {
                i = q
                break
            }
            plain = false
            i = backslash + 2
        }
        let slice = UnsafeBufferPointer(rebasing: b[(start + 1)..<i])
        if plain { return (String(decoding: slice, as: UTF8.self), i + 1) }
        // Escapes: let the JSON decoder decode the string literal itself.
        let literal = Data(UnsafeBufferPointer(rebasing: b[start...i]))
        guard let decoded = try? JSONDecoder().decode(String.self, from: literal) else { return nil }
        return (decoded, i + 1)
    }
}
