import Foundation
import Testing
import GraphIR

/// Readers stay linear in the manifest's size whatever its shape (issue 28). Work is counted, never timed: doubling
/// the input must not quadruple it.
@Suite struct LinearTimeTests {
    /// `{"format":"mlpkg","options":{"k0":"v","k1":"v",…}}` with `keys` keys in one object, plus `extra` at its end.
    static func manifest(keys: Int, extra: String = "") -> Data {
        var text = #"{"format":"mlpkg","options":{"#
        for k in 0..<keys { text += (k == 0 ? "" : ",") + #""k\#(k)":"v""# }
        return Data((text + extra + "}}").utf8)
    }

    static func steps(_ data: Data) -> (Int, String?) {
        var scanner = DuplicateKeys()
        let key = scanner.scan(data)
        return (scanner.steps, key)
    }

    @Test("the duplicate-key check of one object of many keys is linear (80,000 keys took ~47 s)")
    func duplicateKeyCheckIsLinear() {
        let (small, none) = Self.steps(Self.manifest(keys: 20_000))
        let (large, alsoNone) = Self.steps(Self.manifest(keys: 40_000))
        #expect(none == nil && alsoNone == nil)
        #expect(large <= small * 5 / 2, "doubling the keys took \(large) steps after \(small)")
    }

    @Test("a duplicate at the end of a large object is still found, and escaped spellings count")
    func duplicateInLargeObject() {
        #expect(DuplicateKeys.first(in: Self.manifest(keys: 40_000, extra: #","k17":"w""#)) == "k17")
        #expect(DuplicateKeys.first(in: Self.manifest(keys: 100, extra: #","k\u0031":"w""#)) == "k1")
        #expect(DuplicateKeys.first(in: Data(#"{"a":{"x":1},"b":{"x":1},"c":[{"x":1},{"x":2}]}"#.utf8)) == nil)
    }
}

/// Quoted values in error lines are bounded (issue 28: a 20 MB config value came back as a 20 MB error line).
@Suite struct BoundedQuoteTests {
    @Test("long quoted values are cut with their length; short ones, apostrophes in words and unclosed quotes stay")
    func boundingQuotes() {
        let long = String(repeating: "A", count: 1_000)
        #expect(Printable.boundingQuotes("f.json: '\(long)' is not a format", limit: 10)
                == "f.json: 'AAAAAAAAAA…' (1000 characters) is not a format")
        let short = "the model's input 'x' and node 'y' (\(long))"
        #expect(Printable.boundingQuotes(short, limit: 10) == short)
        let unclosed = "'" + long
        #expect(Printable.boundingQuotes(unclosed, limit: 10) == unclosed)
        // Characters are Unicode scalars: a multi-byte value is never cut inside a scalar.
        #expect(Printable.boundingQuotes("'" + String(repeating: "é", count: 300) + "'", limit: 3) == "'ééé…' (300 characters)")
        #expect(Printable.boundingQuotes("a '\(long)' b '\(long)'", limit: 1) == "a 'A…' (1000 characters) b 'A…' (1000 characters)")
    }
}
