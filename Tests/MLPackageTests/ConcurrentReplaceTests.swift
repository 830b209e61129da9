import Foundation
import GraphIR
import Quantization
import Testing
@testable import MLPackage
@testable import Conversion

/// A package replaced by `convert` while it is read (issue 28): the reader holds one version, whatever the timing.
@Suite(.serialized) struct ConcurrentReplaceTests {
    private func convert(_ weights: WeightFormat, to path: String) throws {
        _ = try PackageConverter.convert(input: Paths.fixture("cnn.onnx"), output: path, options: .init(weights: weights))
    }

    @Test("files opened with the directory keep their version after a replace removed them")
    func openedFilesArePinned() throws {
        let folder = Paths.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/m.mlpkg"
        try convert(.fp32, to: path)
        let files = try PackageFiles(path: path)
        try convert(.int8, to: path)  // exchanges the directories, then removes the old one's files
        let manifest = try PackageReader.readManifest(files)
        let weights = try PackageReader.mapWeights(files, manifest: manifest)
        let loaded = try PackageReader.load(path: path, manifest: manifest, weights: weights, checksums: true)
        #expect(loaded.manifest.provenance.options["weights"] == "fp32")
        #expect(try files.report() != nil)
        #expect(try PackageReader.load(path: path, checksums: true).manifest.provenance.options["weights"] == "int8")
    }

    @Test("a replace between the directory's open and its files' makes the reader start again from the path")
    func replaceWhileOpeningRetries() throws {
        let folder = Paths.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/m.mlpkg"
        try convert(.fp32, to: path)
        PackageFiles.afterOpeningDirectory.set { opened, attempt in
            guard opened == path, attempt == 1 else { return }
            try? PackageConverter.convert(input: Paths.fixture("cnn.onnx"), output: path, options: .init(weights: .int8))
        }
        defer { PackageFiles.afterOpeningDirectory.set(nil) }
        let files = try PackageFiles(path: path)
        #expect(files.openings == 2)
        let manifest = try PackageReader.readManifest(files)
        #expect(manifest.provenance.options["weights"] == "int8")
        let weights = try PackageReader.mapWeights(files, manifest: manifest)
        _ = try PackageReader.load(path: path, manifest: manifest, weights: weights, checksums: true)
    }

    @Test("a file missing from a package nobody replaced is reported when read, without a retry")
    func missingFileIsNotARace() throws {
        let folder = Paths.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/m.mlpkg"
        try convert(.fp16, to: path)
        try FileManager.default.removeItem(atPath: path + "/weights.bin")
        let files = try PackageFiles(path: path)
        #expect(files.openings == 1)
        #expect(throws: PackageError.self) { _ = try files.map("weights.bin") }
        try FileManager.default.removeItem(atPath: path + "/report.json")
        #expect(try PackageFiles(path: path).report() == nil)
    }
}
