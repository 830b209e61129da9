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

    /// A name as a markdown code span: HTML-escaped like `markdown`, backticks replaced by `&#96;` so the span
    /// cannot be closed early.
    public static func markdownCode(_ text: String) -> String {
        "`" + markdown(text).replacingOccurrences(of: "`", with: "&#96;") + "`"
    }
}
