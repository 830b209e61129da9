import Foundation
import GraphIR
import Testing
@testable import MLPackage
@testable import Conversion
@testable import ONNXExport
import ONNXImport
import Quantization

enum Paths {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static func fixture(_ name: String) -> String { root + "/fixtures/" + name }

    static var fixtures: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root + "/fixtures")) ?? []).filter { $0.hasSuffix(".onnx") }.sorted()
    }

    /// A new empty folder, removed by the caller.
    static func temporaryFolder() -> String {
        let path = NSTemporaryDirectory() + "mlpkg-tests-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

private func bytes(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }

/// Flattens a tensor's contents for comparison.
private func contents(_ t: Tensor) -> [UInt8] {
    switch t.data {
    case .bytes(let v): return v.array
    case .strings(let s): return StringBlob.encode(s)
    }
}

/// Everything about a graph that a round trip must keep, as comparable text.
private func fingerprint(_ g: Graph) -> [String] {
    var lines: [String] = []
    g.forEachGraph { graph, depth in
        lines.append("graph \(depth) \(graph.name) in=\(graph.inputs.map { "\($0.name):\($0.type)" }) out=\(graph.outputs.map { "\($0.name):\($0.type)" })")
        for t in graph.initializers { lines.append("init \(t.name) \(t.dataType.name) \(t.dims) \(contents(t).hashValue)") }
        for s in graph.sparseInitializers { lines.append("sparse \(s.name) \(s.dims) \(contents(s.values).hashValue) \(contents(s.indices).hashValue)") }
        for n in graph.nodes {
            let attrs = n.attributes.map { a -> String in
                switch a.value {
                case .tensor(let t): return "\(a.name)=T(\(t.dataType.name)\(t.dims)\(contents(t).hashValue))"
                case .graph, .graphs: return "\(a.name)=G"
                case .sparseTensor(let s):
                    return "\(a.name)=S(\(s.dims)\(contents(s.values).hashValue)\(contents(s.indices).hashValue))"
                default: return "\(a.name)=\(a.value)"
                }
            }
            lines.append("node \(n.name) \(n.domain):\(n.opType) \(n.inputs)->\(n.outputs) \(attrs) ref=\(n.attributes.map { $0.referencedAttribute ?? "" })")
        }
    }
    return lines
}

@Suite struct PackageRoundTripTests {
    @Test("ONNX → package → ONNX keeps the model exactly (fp32, --no-fold), read back by protobuf-c", arguments: Paths.fixtures)
    func roundTrip(name: String) throws {
        let folder = Paths.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let original = try ONNXImporter.load(path: Paths.fixture(name))
        _ = try PackageConverter.convert(input: Paths.fixture(name), output: folder + "/m.mlpkg",
                                         options: .init(weights: .fp32, fold: false))
        let package = try PackageReader.load(path: folder + "/m.mlpkg", checksums: true)
        #expect(fingerprint(package.model.graph) == fingerprint(original.graph))
        #expect(package.model.opsetImports == original.opsetImports)
        #expect(package.model.functions.map(\.name) == original.functions.map(\.name))
        #expect(package.model.metadata == original.metadata)

        _ = try ONNXExporter.export(package.model, to: folder + "/back.onnx", options: .init())
        let back = try ONNXImporter.load(path: folder + "/back.onnx")
        #expect(fingerprint(back.graph) == fingerprint(original.graph))
        #expect(back.irVersion == original.irVersion && back.producerName == original.producerName)
        #expect(back.functions.map(\.nodes.count) == original.functions.map(\.nodes.count))

        _ = try ONNXExporter.export(package.model, to: folder + "/ext.onnx", options: .init(forceExternalData: true))
        let external = try ONNXImporter.load(path: folder + "/ext.onnx")
        #expect(fingerprint(external.graph) == fingerprint(original.graph))
    }

    @Test("fp16 export: float16 initializers feed Casts that take over the original names")
    func fp16ExportStructure() throws {
        let folder = Paths.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        _ = try PackageConverter.convert(input: Paths.fixture("cnn.onnx"), output: folder + "/m.mlpkg", options: .init(weights: .fp16))
        let package = try PackageReader.load(path: folder + "/m.mlpkg", checksums: true)
        var preparation = ExportPreparation(dequantize: false)
        let prepared = preparation.prepare(package.model)
        let halves = prepared.graph.initializers.filter { $0.dataType == .float16 }
        // 10 initializers, less bn1's four parameters: the BatchNormalization is folded into conv1.
        #expect(halves.count == 6)
        let casts = prepared.graph.nodes.filter { $0.opType == "Cast" }
        #expect(Set(casts.flatMap(\.inputs)) == Set(halves.map(\.name)))
        #expect(Set(casts.flatMap(\.outputs)) == Set(package.model.graph.initializers.map(\.name)))
        _ = try GraphVerifier.verified(prepared.graph)

        var dequantizing = ExportPreparation(dequantize: true)
        let dequantized = dequantizing.prepare(package.model)
        #expect(dequantized.graph.initializers.allSatisfy { $0.dataType == .float && $0.encoding.isRaw })
        #expect(!dequantized.graph.nodes.contains { $0.opType == "Cast" })
    }

    @Test("the same model and options give byte-identical packages", arguments: ["transformer.onnx", "constant_weights.onnx"])
    func deterministic(name: String) throws {
        let folder = Paths.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for out in ["a.mlpkg", "b.mlpkg"] {
            _ = try PackageConverter.convert(input: Paths.fixture(name), output: folder + "/" + out, options: .init(weights: .fp16))
        }
        for file in ["manifest.json", "weights.bin", "report.json"] {
            #expect(bytes(folder + "/a.mlpkg/" + file) == bytes(folder + "/b.mlpkg/" + file), "\(file)")
        }
    }

    @Test func manifestStartsWithFormatAndVersion() throws {
        let folder = Paths.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        _ = try PackageConverter.convert(input: Paths.fixture("cnn.onnx"), output: folder + "/m.mlpkg", options: .init(weights: .fp32))
        let text = String(decoding: bytes(folder + "/m.mlpkg/manifest.json"), as: UTF8.self)
        #expect(text.hasPrefix(#"{"format":"mlpkg","formatVersion":"1.0","#))
        let manifest = try PackageReader.readManifest(path: folder + "/m.mlpkg")
        #expect(manifest.tensors.allSatisfy { $0.offset % 64 == 0 })
    }
}

@Suite struct PackageSafetyTests {
    @Test("a failed conversion leaves an existing package untouched and no temporary behind")
    func failureKeepsOldPackage() throws {
        let folder = Paths.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let target = folder + "/m.mlpkg"
        _ = try PackageConverter.convert(input: Paths.fixture("cnn.onnx"), output: target, options: .init(weights: .fp32))
        let before = bytes(target + "/weights.bin")
        #expect(throws: (any Error).self) {
            try PackageConverter.convert(input: Paths.fixture("malformed/truncated.onnx"), output: target, options: .init(weights: .fp16))
        }
        #expect(bytes(target + "/weights.bin") == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["m.mlpkg"])
    }

    @Test("an existing package is replaced whole")
    func replace() throws {
        let folder = Paths.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let target = folder + "/m.mlpkg"
        _ = try PackageConverter.convert(input: Paths.fixture("cnn.onnx"), output: target, options: .init(weights: .fp32))
        _ = try PackageConverter.convert(input: Paths.fixture("gru.onnx"), output: target, options: .init(weights: .fp16))
        #expect(try PackageReader.readManifest(path: target).provenance.source.file == "gru.onnx")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["m.mlpkg"])
    }

    @Test("refuses to replace what is not a package, to follow a symlink, or to overwrite the input")
    func refusals() throws {
        let folder = Paths.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        FileManager.default.createFile(atPath: folder + "/notes.txt", contents: Data("keep".utf8))
        try FileManager.default.createDirectory(atPath: folder + "/src", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: folder + "/link.mlpkg", withDestinationPath: folder + "/src")
        for target in ["notes.txt", "src", "link.mlpkg", "missing-folder/m.mlpkg"] {
            #expect(throws: PackageError.self) {
                try PackageConverter.convert(input: Paths.fixture("cnn.onnx"), output: folder + "/" + target, options: .init(weights: .fp16))
            }
        }
        #expect(bytes(folder + "/notes.txt") == Array("keep".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder + "/src").isEmpty)
        let copy = folder + "/model.onnx"
        try FileManager.default.copyItem(atPath: Paths.fixture("cnn.onnx"), toPath: copy)
        #expect(throws: PackageError.self) {
            try PackageConverter.convert(input: copy, output: copy, options: .init(weights: .fp16))
        }
    }

    @Test("temporaries left by a killed process are removed by the next write")
    func staleTemporaryRemoved() throws {
        let folder = Paths.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // PID 2^22 + 1 is above Linux's pid_max default range: no such process.
        let stale = folder + "/.m.mlpkg.partial-4194305"
        try FileManager.default.createDirectory(atPath: stale, withIntermediateDirectories: true)
        _ = try PackageConverter.convert(input: Paths.fixture("cnn.onnx"), output: folder + "/m.mlpkg", options: .init(weights: .fp16))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["m.mlpkg"])
    }
}

@Suite struct VerifierTests {
    private func package() throws -> (folder: String, path: String) {
        let folder = Paths.temporaryFolder()
        _ = try PackageConverter.convert(input: Paths.fixture("transformer.onnx"), output: folder + "/m.mlpkg", options: .init(weights: .fp16))
        return (folder, folder + "/m.mlpkg")
    }

    private func edit(_ path: String, _ change: (inout [UInt8]) -> Void) {
        var data = bytes(path)
        change(&data)
        FileManager.default.createFile(atPath: path, contents: Data(data))
    }

    @Test func soundPackageVerifies() throws {
        let (folder, path) = try package()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let result = PackageVerifier.verify(path: path)
        #expect(result.ok && result.faults.isEmpty)
    }

    @Test("every flipped byte of weights.bin is found: in a blob it names the tensor, in padding the offset")
    func flippedBytes() throws {
        let (folder, path) = try package()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let manifest = try PackageReader.readManifest(path: path)
        let weights = path + "/weights.bin"
        let original = bytes(weights)
        let owner = { (offset: Int) in manifest.tensors.first { $0.offset <= offset && offset < $0.offset + $0.length }?.name }
        for offset in stride(from: 0, to: original.count, by: 797) {
            edit(weights) { $0[offset] ^= 0x10 }
            let result = PackageVerifier.verify(path: path)
            #expect(!result.ok, "flip at \(offset) not found")
            if let name = owner(offset) { #expect(result.faults.contains { $0.tensor == name }) }
            FileManager.default.createFile(atPath: weights, contents: Data(original))
        }
    }

    @Test func truncatedWeightsFail() throws {
        let (folder, path) = try package()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        edit(path + "/weights.bin") { $0.removeLast($0.count / 2) }
        let result = PackageVerifier.verify(path: path)
        #expect(!result.ok)
        #expect(result.faults.first?.message.contains("truncated") == true)
        #expect(throws: PackageError.self) { try PackageReader.load(path: path, checksums: false) }
    }

    @Test("a newer major version is refused, a newer minor one read")
    func versions() throws {
        let (folder, path) = try package()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let manifestPath = path + "/manifest.json"
        let text = String(decoding: bytes(manifestPath), as: UTF8.self)
        FileManager.default.createFile(atPath: manifestPath, contents: Data(text.replacingOccurrences(of: #""formatVersion":"1.0""#, with: #""formatVersion":"2.0""#).utf8))
        let newer = PackageVerifier.verify(path: path)
        #expect(!newer.ok && newer.faults.count == 1)
        #expect(newer.faults[0].message.contains("2.0 is newer"))
        FileManager.default.createFile(atPath: manifestPath, contents: Data(text.replacingOccurrences(of: #""formatVersion":"1.0""#, with: #""formatVersion":"1.9""#).utf8))
        #expect(PackageVerifier.verify(path: path).ok)
        FileManager.default.createFile(atPath: manifestPath, contents: Data(text.replacingOccurrences(of: #""format":"mlpkg""#, with: #""format":"other""#).utf8))
        #expect(PackageVerifier.verify(path: path).faults.first?.message.contains("'other'") == true)
    }

    @Test("a manifest whose graph reads an unknown value fails verification")
    func brokenGraph() throws {
        let (folder, path) = try package()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let manifestPath = path + "/manifest.json"
        var manifest = try PackageReader.readManifest(path: path)
        manifest.graph.nodes[3].inputs[0] = "nowhere"
        FileManager.default.createFile(atPath: manifestPath, contents: try PackageWriter.encoder(pretty: false).encode(manifest))
        let result = PackageVerifier.verify(path: path)
        #expect(!result.ok)
        #expect(result.faults.contains { $0.message.contains("'nowhere'") })
    }
}
