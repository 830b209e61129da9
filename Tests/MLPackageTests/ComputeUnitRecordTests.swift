import Audit
import Foundation
import GraphIR
import Testing
@testable import MLPackage
@testable import Conversion
import ONNXImport
import Profiles

/// `convert --profile`: units recorded per node (subgraphs too) under format 1.1; without a profile, 1.0 as before.
@Suite struct ComputeUnitRecordTests {
    @Test("convert with an audit records every node's unit and the summary; verify accepts it")
    func recordsUnits() throws {
        let folder = Paths.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let audit = AuditOptions(profiles: try ProfileLibrary.builtInUnitProfiles())
        let result = try PackageConverter.convert(input: Paths.fixture("if_branches.onnx"), output: folder + "/p.mlpkg",
                                                  options: .init(weights: .fp16, audit: audit))
        #expect(result.manifest.formatVersion == "1.1")
        #expect(result.manifest.graph.nodes.map(\.computeUnit) == ["neural-engine"])
        let branches = result.manifest.graph.nodes[0].attributes.compactMap(\.g)
        #expect(branches.flatMap { $0.nodes.map(\.computeUnit) } == ["neural-engine", "neural-engine"])
        #expect(result.manifest.provenance.options["profile"] == "neural-engine")
        let report = try JSONDecoder().decode(PackageReport.self,
                                              from: Data(contentsOf: URL(fileURLWithPath: folder + "/p.mlpkg/report.json")))
        #expect(report.audit?.summary["coverage"]?.doubleValue == 100 && report.formatVersion == "1.1")
        #expect(PackageVerifier.verify(path: folder + "/p.mlpkg").ok)

        let plain = try PackageConverter.convert(input: Paths.fixture("if_branches.onnx"), output: folder + "/q.mlpkg",
                                                 options: .init(weights: .fp16))
        #expect(plain.manifest.formatVersion == "1.0")
        #expect(plain.manifest.graph.nodes.allSatisfy { $0.computeUnit == nil })
    }

    @Test("verify flags a compute unit readers do not know")
    func unknownUnitIsAFault() throws {
        let folder = Paths.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let audit = AuditOptions(profiles: try ProfileLibrary.builtInUnitProfiles())
        _ = try PackageConverter.convert(input: Paths.fixture("custom_domain.onnx"), output: folder + "/p.mlpkg",
                                         options: .init(weights: .fp32, audit: audit))
        let path = folder + "/p.mlpkg/manifest.json"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try text.replacingOccurrences(of: #""computeUnit":"unsupported""#, with: #""computeUnit":"tpu""#)
            .write(toFile: path, atomically: true, encoding: .utf8)
        let result = PackageVerifier.verify(path: folder + "/p.mlpkg")
        #expect(!result.ok)
        #expect(result.faults.contains { $0.message.contains("unknown computeUnit 'tpu'") })
    }
}
