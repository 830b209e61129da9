import CoreMLExport
import Foundation
import GraphIR
import Passes
import Quantization
import Testing
@testable import Conversion

/// `convert model.onnx -o Model.mlpackage` as one library call: the graph pipeline runs once, and the exporter and
/// the conversion read the same prepared model.
@Suite("one-step Core ML conversion")
struct CoreMLConverterTests {
    func scratch() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mlpkg-coreml-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("the graph pipeline runs once per conversion; the weights are re-encoded and reported", arguments: ["transformer.onnx", "cnn.onnx"])
    func preparesOnce(fixture: String) throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pins: [String: [Int]] = fixture == "cnn.onnx" ? ["input": [1, 3, 32, 32]] : ["tokens": [1, 8, 64]]
        let options = CoreMLConverter.Options(
            conversion: PackageConverter.Options(weights: .int8, inputShapes: try InputShapes(pins.mapValues { $0.map { Dim.value($0) } })),
            export: CoreMLExporter.Options())
        let result = try CoreMLConverter.convert(input: Paths.fixture(fixture), output: dir + "/M.mlpackage", options: options)
        #expect(result.pipelineRuns == 1)
        #expect(!result.conversion.converted.isEmpty)
        #expect(result.export.operations.values.reduce(0, +) > 0)
        #expect(FileManager.default.fileExists(atPath: dir + "/M.mlpackage/Data/com.apple.CoreML/weights/weight.bin"))
    }

    @Test("weights streamed through a scratch package give the same bytes as weights converted in memory; the scratch folder is gone",
          arguments: [("transformer.onnx", WeightFormat.int8), ("cnn.onnx", .fp16), ("transformer.onnx", .lut4), ("bn_fold.onnx", .int4)])
    func streamedEqualsInMemory(fixture: String, format: WeightFormat) throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pins: [String: [Int]] = fixture == "cnn.onnx" ? ["input": [1, 3, 32, 32]] : fixture == "transformer.onnx" ? ["tokens": [1, 8, 64]] : [:]
        func convert(limit: Int, to name: String) throws -> [String: Data] {
            var options = CoreMLConverter.Options(
                conversion: PackageConverter.Options(weights: format, inputShapes: try InputShapes(pins.mapValues { $0.map { Dim.value($0) } })),
                export: CoreMLExporter.Options())
            options.inMemoryWeightLimit = limit
            let out = dir + "/" + name
            _ = try CoreMLConverter.convert(input: Paths.fixture(fixture), output: out, options: options)
            var files: [String: Data] = [:]
            for case let file as String in FileManager.default.enumerator(atPath: out) ?? FileManager.DirectoryEnumerator() {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: out + "/" + file, isDirectory: &isDirectory), !isDirectory.boolValue {
                    files[file] = FileManager.default.contents(atPath: out + "/" + file)
                }
            }
            return files
        }
        let inMemory = try convert(limit: Int.max, to: "A.mlpackage")
        let streamed = try convert(limit: 0, to: "B.mlpackage")
        #expect(inMemory.keys.sorted() == streamed.keys.sorted())
        for (name, bytes) in inMemory { #expect(streamed[name] == bytes, "\(name) differs") }
        #expect(inMemory["Data/com.apple.CoreML/weights/weight.bin"] != nil)
        // Nothing left beside the outputs: the scratch package was removed.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["A.mlpackage", "B.mlpackage"])
    }

    @Test("a model the exporter refuses is named as the file at fault, not the output path; nothing is written")
    func refusalNamesTheModel() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let options = CoreMLConverter.Options(conversion: PackageConverter.Options(weights: .fp32), export: CoreMLExporter.Options())
        #expect {
            try CoreMLConverter.convert(input: Paths.fixture("custom_domain.onnx"), output: dir + "/M.mlpackage", options: options)
        } throws: { error in
            "\(error)".hasPrefix(Paths.fixture("custom_domain.onnx"))
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/M.mlpackage"))
    }
}
