import Foundation
import Testing

/// Runs the built `mlpkg` binary end to end.
struct CommandLine {
    static let binary: String = {
        if let path = ProcessInfo.processInfo.environment["MLPKG"] { return path }
        return Fixtures.root + "/.build/debug/mlpkg"
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: Fixtures.root)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationReason == .exit, "mlpkg was killed by a signal")
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }
}

@Suite(.serialized) struct CommandLineTests {
    @Test func binaryIsBuilt() {
        #expect(FileManager.default.isExecutableFile(atPath: CommandLine.binary), "run `swift build` first")
    }

    @Test func inspectPrintsATable() throws {
        let result = try CommandLine.run(["inspect", "fixtures/cnn.onnx"])
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty)
        #expect(result.stdout.contains("Conv"))
        #expect(result.stdout.contains("float[batch, 3, 32, 32]"))
    }

    @Test("--json prints exactly one JSON document", arguments: ["cnn.onnx", "transformer.onnx", "if_branches.onnx"])
    func inspectJSON(name: String) throws {
        let result = try CommandLine.run(["inspect", "fixtures/" + name, "--json"])
        #expect(result.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(object?["file"] as? String == "fixtures/" + name)
    }

    @Test("malformed input: exit 1, one error line naming the culprit", arguments: Fixtures.malformed)
    func malformed(file: String, culprit: String) throws {
        let result = try CommandLine.run(["inspect", "fixtures/malformed/" + file])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.hasPrefix("error: fixtures/malformed/\(file): ") == true)
        #expect(result.stderr.contains(culprit))
    }

    @Test func missingFileIsExit1() throws {
        let result = try CommandLine.run(["inspect", "fixtures/no-such-model.onnx"])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("error: fixtures/no-such-model.onnx: "))
    }

    @Test("usage errors exit with 2", arguments: [["inspect"], ["inspect", "a.onnx", "--bogus"], ["frobnicate"]])
    func usageError(arguments: [String]) throws {
        let result = try CommandLine.run(arguments)
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("error: "))
    }

    @Test func helpExitsZero() throws {
        let result = try CommandLine.run(["inspect", "--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("--json"))
    }

    @Test func directoryIsRefused() throws {
        let result = try CommandLine.run(["inspect", "fixtures"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("fixtures"))
    }
}
