#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The escaping rules for text that comes from a model file (tensor, node, producer and metadata names, op types,
/// domains) and reaches a terminal or a markdown document (docs/HARDENING.md). Names are data: they must never move
/// the cursor, retitle a window, swallow output (an OSC sequence cut at a table's width) or inject HTML.
public enum Printable {
    /// Control characters (C0 except — with `keepLayout` — newline and tab, DEL, C1) and the bidirectional
    /// overrides and isolates shown as `\u{XX}` escapes; everything else unchanged.
    public static func terminal(_ text: String, keepLayout: Bool = false) -> String {
        guard text.unicodeScalars.contains(where: { isUnsafe($0, keepLayout: keepLayout) }) else { return text }
        var out = ""
        out.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            if isUnsafe(scalar, keepLayout: keepLayout) {
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func isUnsafe(_ s: Unicode.Scalar, keepLayout: Bool) -> Bool {
        switch s.value {
        case 0x0A, 0x09: return !keepLayout
        case 0x00...0x1F, 0x7F...0x9F: return true
        case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true  // bidi marks, overrides, isolates
        default: return false
        }
    }

    /// Text in a markdown table cell: terminal-safe, HTML-escaped (so `<script>` or `</table>` in a name is text),
    /// with `|` escaped and newlines as spaces.
    public static func markdown(_ text: String) -> String {
        var out = ""
        for ch in terminal(text.replacingOccurrences(of: "\n", with: " ")) {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "|": out += "\\|"
            default: out.append(ch)
            }
        }
        return out
    }

    /// Longest quoted value an error line shows whole (`boundingQuotes`).
    public static let quoteLimit = 200

    /// `message` with every quoted value ('…') longer than `limit` characters cut to its first `limit`, an ellipsis
    /// and its full length: `'AAAA…' (20000000 characters)`. Values come from files (a config's setting, a node's
    /// name) and a 20 MB one made a 20 MB error line. A quote opens after a non-letter (or at the start) and closes
    /// before one (or at the end), so apostrophes inside words ("model's") are not taken for quotes. Characters are
    /// Unicode scalars; one pass over the UTF-8 bytes.
    public static func boundingQuotes(_ message: String, limit: Int = quoteLimit) -> String {
        guard message.utf8.count > limit + 2 else { return message }
        var text = message
        return text.withUTF8 { bytes -> String in
            let quote = UInt8(ascii: "\'")
            // Non-ASCII bytes count as letters: a quote beside them is not taken for one.
            func isLetter(_ k: Int) -> Bool {
                let b = bytes[k]
                return b >= 0x80 || (b | 0x20 >= UInt8(ascii: "a") && b | 0x20 <= UInt8(ascii: "z"))
            }
            func nextQuote(_ from: Int) -> Int? {
                guard from < bytes.count, let p = memchr(bytes.baseAddress! + from, Int32(quote), bytes.count - from) else { return nil }
                return bytes.baseAddress!.distance(to: p.assumingMemoryBound(to: UInt8.self))
            }
            var out: [UInt8] = []
            var copied = 0  // bytes[..<copied] are in `out`
            var searched = 0  // no closing quote lies in [searched, closing) but at `closing`
            var closing: Int?
            var i = nextQuote(0)
            while let open = i {
                guard open == 0 || !isLetter(open - 1) else {
                    i = nextQuote(open + 1)
                    continue
                }
                // The closing quote: the first quote after `open` followed by a non-letter or the end. Searches
                // only move forward, so the scan stays linear however many quotes the text holds.
                if closing == nil || closing! <= open {
                    var k = max(open + 1, searched)
                    closing = nil
                    while let q = nextQuote(k) {
                        if q + 1 == bytes.count || !isLetter(q + 1) { closing = q; break }
                        k = q + 1
                    }
                    searched = closing ?? bytes.count
                }
                guard let j = closing else { break }
                let value = UnsafeBufferPointer(rebasing: bytes[(open + 1)..<j])
                let scalars = String(decoding: value, as: UTF8.self).unicodeScalars.count
                if scalars > limit {
                    var cut = open + 1, taken = 0
                    while taken < limit {
                        cut += 1
                        while cut < j, bytes[cut] & 0xC0 == 0x80 { cut += 1 }
                        taken += 1
                    }
                    out += bytes[copied..<cut]
                    out += Array("…' (\(scalars) characters)".utf8)
                    copied = j + 1
                }
                i = nextQuote(j + 1)
            }
            guard copied > 0 else { return String(decoding: bytes, as: UTF8.self) }
            out += bytes[copied...]
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// A name as a markdown code span: HTML-escaped like `markdown`, backticks replaced by `&#96;` so the span
    /// cannot be closed early.
    public static func markdownCode(_ text: String) -> String {
        "`" + markdown(text).replacingOccurrences(of: "`", with: "&#96;") + "`"
    }
}
