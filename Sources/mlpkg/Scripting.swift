import Foundation
import GraphIR

/// The scripting contract every command follows (docs/CLI.md#scripting): `--json` (or `--format json`) makes the
/// result one JSON document on stdout and an error also a JSON object there; `--quiet` prints nothing but errors.
/// Read from the raw arguments before parsing, so even a usage error answers in the mode that was asked for.
enum ScriptingMode {
    nonisolated(unsafe) static var json = false
    nonisolated(unsafe) static var quiet = false
    /// Something was written to stdout: an error object would make it two documents, so it goes to stderr only.
    nonisolated(unsafe) static var wroteStdout = false

    static func configure(arguments: [String]) {
        var previous = ""
        for a in arguments {
            if a == "--" { break }
            if a == "--json" || a == "--format=json" || (previous == "--format" && a == "json") { json = true }
            if a == "--quiet" || a == "-q" { quiet = true }
            previous = a
        }
    }
}

/// An error as a JSON object (`{"error": {...}}`): the exit code, its kind, the one-line message, and the file,
/// tensor and node the message names, when it names them.
struct ErrorObject: Encodable {
    struct Body: Encodable {
        var code: Int32
        /// `failure` (exit 1: the input or the work), `usage` (exit 2), `gate` (exit 3: a quality gate).
        var kind: String
        var message: String
        var file: String?
        var tensor: String?
        var node: String?
    }
    var error: Body

    init(code: Int32, message: String) {
        let kind = code == 2 ? "usage" : code == 3 ? "gate" : "failure"
        error = Body(code: code, kind: kind, message: message, file: Self.file(in: message),
                     tensor: Self.quoted(after: ["tensor ", "initializer ", "weight "], in: message),
                     node: Self.quoted(after: ["node "], in: message))
    }

    /// The leading `PATH:` of a message, when it is a path (messages name their file first).
    static func file(in message: String) -> String? {
        var text = message
        for prefix in ["unknown command"] where text.hasPrefix(prefix) { return nil }
        if text.hasPrefix("--") { return nil }
        guard let colon = text.range(of: ": ") else { return nil }
        text = String(text[..<colon.lowerBound])
        guard !text.isEmpty, !text.contains(" ") || FileManager.default.fileExists(atPath: text) else { return nil }
        let known = [".onnx", ".mlpkg", ".mlpackage", ".json", ".data", ".bin", ".md", ".html"]
        guard FileManager.default.fileExists(atPath: text) || known.contains(where: { text.hasSuffix($0) }) || text.contains("/") else {
            return nil
        }
        return text
    }

    /// The first quoted name after one of `markers` ("tensor 'w'", "node 3 'conv'").
    static func quoted(after markers: [String], in message: String) -> String? {
        for marker in markers {
            var search = message[...]
            while let r = search.range(of: marker) {
                var rest = search[r.upperBound...]
                while let c = rest.first, c.isNumber || c == " " { rest = rest.dropFirst() }
                if rest.first == "'", let end = rest.dropFirst().firstIndex(of: "'") {
                    return String(rest[rest.index(after: rest.startIndex)..<end])
                }
                search = search[r.upperBound...]
            }
        }
        return nil
    }
}
