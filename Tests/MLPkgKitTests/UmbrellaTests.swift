import Foundation
import MLPkgKit
import Testing

/// `import MLPkgKit` alone reaches every layer: load ONNX, convert, write, read back, audit.
@Suite struct UmbrellaTests {
    @Test("one import: convert a fixture step by step and read it back")
    func stepByStep() throws {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let onnx = url.appendingPathComponent("fixtures/cnn.onnx").path
        let model = try ONNXImporter.load(path: onnx)
        let folded = try Pipeline.foldAndInfer.run(model, context: PassContext())
        let converter = WeightConverter(options: .init(format: .fp16))
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("umbrella-\(UUID().uuidString).mlpkg").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let provenance = Provenance(source: .init(file: "cnn.onnx", bytes: 0, sha256: String(repeating: "0", count: 64)),
                                    options: ["weights": "fp16"])
        let (manifest, report) = try PackageWriter.write(model: folded, converting: converter, provenance: { provenance }, to: out)
        #expect(!report.converted.isEmpty && manifest.provenance.producer == .mlpkg)
        let package = try PackageReader.load(path: out, checksums: true)
        #expect(package.model.graph.nodes.count == folded.graph.nodes.count)
        #expect(PackageVerifier.verify(path: out).ok)
        let audit = try Auditor.audit(try AuditInput.forModel(package.model), modelName: out,
                                      options: AuditOptions(profiles: try ProfileLibrary.builtInUnitProfiles(), coreMLLowering: true))
        #expect(audit.summary.nodes > 0)
    }
}
