import Foundation
import MLPkgKit
import Testing

/// The DocC article `GettingStarted.md` is one program; its code is compiled here, as the body of `gettingStarted()`,
/// and run on a fixture. A second test checks that the body is the article's code, line for line, so the article
/// cannot drift from what compiles. (The article's `import` lines are this file's imports.)
@Suite struct GettingStartedTests {
    @Test("the article's code is this file's code")
    func articleMatches() throws {
        let repo = Self.repository
        let article = try String(contentsOf: repo.appendingPathComponent(
            "Sources/MLPkgKit/MLPkgKit.docc/GettingStarted.md"), encoding: .utf8)
        var articleLines: [String] = []
        var inCode = false
        for line in article.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "```swift" { inCode = true; continue }
            if line == "```" { inCode = false; continue }
            if inCode && !line.hasPrefix("import ") { articleLines.append(String(line)) }
        }
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        let begin = try #require(lines.firstIndex { $0.hasSuffix("// article: begin") })
        let end = try #require(lines.firstIndex { $0.hasSuffix("// article: end") })
        let body = lines[(begin + 1)..<end].map { $0.hasPrefix("    ") ? String($0.dropFirst(4)) : String($0) }
        let nonBlank = { (lines: [String]) in lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty } }
        #expect(nonBlank(articleLines).count >= 15, "the article lost its code")
        #expect(nonBlank(body) == nonBlank(articleLines))
    }

    @Test("the article's program converts, reads back and audits a fixture")
    func articleRuns() throws {
        let onnx = Self.repository.appendingPathComponent("fixtures/cnn.onnx").path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("getting-started-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("cnn.mlpkg").path
        try CommandLine.$arguments.withValue(["GettingStarted", onnx, out]) { try gettingStarted() }
        #expect(PackageVerifier.verify(path: out).ok)
        #expect(PackageVerifier.verify(path: out + ".one.mlpkg").ok)
        let package = try PackageReader.load(path: out, checksums: true)
        #expect(package.manifest.tensors.contains { $0.encoding.kind == "linear" && $0.encoding.storage == .int8 })
    }

    static var repository: URL {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }
}

/// Stands in for the standard library's `CommandLine` inside this file, so the article's
/// `CommandLine.arguments[1]` reads the test's arguments.
private enum CommandLine {
    @TaskLocal static var arguments: [String] = []
}

private func gettingStarted() throws {
    // article: begin
    let onnxPath = CommandLine.arguments[1]
    let packagePath = CommandLine.arguments[2]

    let model = try ONNXImporter.load(path: onnxPath)
    print("loaded \(model.graph.nodes.count) nodes, \(model.graph.initializers.count) initializers")

    let context = PassContext()
    let folded = try Pipeline.foldAndInfer.run(model, context: context)
    print("folded \(context.foldedNodes) nodes; \(context.inference?.values.count ?? 0) values typed")

    let converter = WeightConverter(options: .init(format: .int8))
    let source = Provenance.Source(file: URL(fileURLWithPath: onnxPath).lastPathComponent, bytes: 0,
                                   sha256: String(repeating: "0", count: 64))
    let provenance = Provenance(source: source, options: ["weights": "int8"])
    let (manifest, report) = try PackageWriter.write(model: folded, converting: converter,
                                                     provenance: { provenance }, to: packagePath)
    print("wrote \(manifest.tensors.count) blobs; \(report.converted.count) tensors converted")

    let onePath = packagePath + ".one.mlpkg"
    let result = try PackageConverter.convert(input: onnxPath, output: onePath, options: .init(weights: .fp16))
    print("one call: \(result.sourceBytes) → \(result.packageBytes) bytes")

    let package = try PackageReader.load(path: packagePath, checksums: true)
    let verification = PackageVerifier.verify(path: packagePath)
    print("read \(package.model.graph.nodes.count) nodes; sound: \(verification.ok)")

    let auditOptions = AuditOptions(profiles: try ProfileLibrary.builtInUnitProfiles(), coreMLLowering: true)
    let audit = try AuditAdvice.audit(package.model, pins: InputShapes(), modelName: packagePath, options: auditOptions)
    print(AuditText.render(audit, compact: true))
    // article: end
    #expect(verification.ok && audit.summary.nodes > 0)
    #expect(AuditText.render(audit, compact: true).contains("neural-engine coverage"))
}
