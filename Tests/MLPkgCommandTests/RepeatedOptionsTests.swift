import Testing
@testable import mlpkg

/// `--exclude` and `--include` patterns are lifted out of the arguments in one pass (issue 28: 10,000 of them took
/// 8.6 s in swift-argument-parser, which is quadratic in the number of arguments). Work is counted, never timed.
@Suite struct RepeatedOptionsTests {
    static func arguments(patterns: Int) -> [String] {
        var a = ["convert", "model.onnx", "-o", "out.mlpkg", "--weights", "int8"]
        for k in 0..<patterns { a += k % 2 == 0 ? ["--exclude", "w\(k)*"] : ["--include=op:Conv\(k)"] }
        return a
    }

    @Test("doubling the patterns doubles the work, and the parser's share does not grow at all")
    func liftingIsLinear() {
        let small = RepeatedOptions(Self.arguments(patterns: 5_000))
        let large = RepeatedOptions(Self.arguments(patterns: 10_000))
        #expect(large.steps <= small.steps * 5 / 2, "doubling the patterns took \(large.steps) steps after \(small.steps)")
        #expect(small.remaining == ["convert", "model.onnx", "-o", "out.mlpkg", "--weights", "int8"])
        #expect(large.remaining == small.remaining)
        #expect(large.values["--exclude"]?.count == 5_000 && large.values["--include"]?.count == 5_000)
        #expect(large.values["--exclude"]?.prefix(2) == ["w0*", "w2*"])
        #expect(large.values["--include"]?.first == "op:Conv1")
    }

    @Test("what the parser must judge stays with the parser")
    func leftAlone() {
        // Another subcommand, a value the parser would not take, a missing value: nothing is lifted.
        for a in [["inspect", "--exclude", "x"], ["convert", "m.onnx", "--exclude", "-x"], ["convert", "m.onnx", "--exclude"]] {
            let lifted = RepeatedOptions(a)
            #expect(lifted.remaining == a && lifted.values.isEmpty)
        }
        // After `--` everything is positional.
        let lifted = RepeatedOptions(["convert", "--exclude", "a", "--", "--exclude", "b"])
        #expect(lifted.remaining == ["convert", "--", "--exclude", "b"])
        #expect(lifted.values == ["--exclude": ["a"]])
        #expect(lifted.values(of: "--include", parsed: ["p"]) == ["p"])
    }
}
