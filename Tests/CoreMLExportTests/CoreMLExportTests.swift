import CoreMLExport
import CoreMLProto
import CProtobufC
import Foundation
import GraphIR
import Testing

/// The exporter end to end in process: the written model decodes with the protoc-c reader of proto/coreml.proto,
/// weight.bin is MIL blob storage v2, the output is deterministic, and refusals write nothing.
@Suite struct CoreMLExportTests {
    static func folder() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mlpkg-coreml-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func floats(_ name: String, _ dims: [Int]) -> Tensor {
        let n = dims.reduce(1, *)
        let values = (0..<n).map { Float(($0 * 7919) % 97) / 97 - 0.5 }
        return Tensor(name: name, dataType: .float, dims: dims, data: .bytes(LittleEndian.bytes(of: values)))
    }

    static func model(extra: [Node] = []) -> Model {
        let nodes = [
            Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["c"],
                 attributes: [Attribute(name: "pads", value: .ints([1, 1, 1, 1]))]),
            Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["r"]),
            Node(name: "mean", opType: "ReduceMean", inputs: ["r"], outputs: ["y"], attributes: [Attribute(name: "axes", value: .ints([2, 3]))]),
        ] + extra
        let graph = Graph(name: "g", inputs: [ValueInfo(name: "x", type: .tensor(TensorType(elementType: .float, shape: [.value(1), .value(2), .value(5), .value(5)])))],
                          outputs: [ValueInfo(name: "y", type: .tensor(TensorType(elementType: .float, shape: nil)))],
                          initializers: [floats("w", [3, 2, 3, 3]), floats("b", [3])], nodes: nodes)
        return Model(irVersion: 10, opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph)
    }

    @Test("the written model decodes with the protoc-c reader; weight.bin is blob storage v2; output is deterministic")
    func writesAndReadsBack() throws {
        let dir = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try CoreMLExporter.export(Self.model(), to: dir + "/A.mlpackage", options: .init(compute: .fp32))
        #expect(result.target == .iOS15)
        #expect(result.operations["conv"] == 1 && result.operations["relu"] == 1 && result.operations["reduce_mean"] == 1)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/A.mlpackage/Data/com.apple.CoreML/model.mlmodel")))
        let decoded = try #require(bytes.withUnsafeBufferPointer { coreml__model__unpack(nil, $0.count, $0.baseAddress) })
        defer { coreml__model__free_unpacked(decoded, nil) }
        #expect(decoded.pointee.specificationversion == 6)
        let program = try #require(decoded.pointee.mlprogram?.pointee)
        let function = try #require(program.functions[0]?.pointee.value?.pointee)
        #expect(String(cString: function.opset) == "CoreML5")
        let block = try #require(function.block_specializations[0]?.pointee.value?.pointee)
        let types = (0..<block.n_operations).map { String(cString: block.operations[$0]!.pointee.type) }
        // The output's producer takes the interface name: no trailing identity (MIL no-op elimination).
        #expect(types.contains("conv") && types.last == "reduce_mean" && !types.contains("identity"))
        #expect((0..<block.n_outputs).map { String(cString: block.outputs[$0]!) } == ["y"])

        // Blob storage: header (count, version 2), and every blob's metadata starts with the sentinel.
        let weights = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/A.mlpackage/Data/com.apple.CoreML/weights/weight.bin")))
        func u32(_ o: Int) -> UInt32 { weights[o..<o + 4].enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * $1.offset) } }
        #expect(u32(4) == 2)
        #expect(u32(0) == 1)  // the conv weight (54 values); the bias (3 values) is inline
        #expect(u32(64) == 0xDEAD_BEEF && u32(68) == 2)  // fp32
        #expect(weights.count == 64 + 64 + 54 * 4)

        // The same model and options give the same bytes.
        _ = try CoreMLExporter.export(Self.model(), to: dir + "/B.mlpackage", options: .init(compute: .fp32))
        for file in ["Manifest.json", "Data/com.apple.CoreML/model.mlmodel", "Data/com.apple.CoreML/weights/weight.bin"] {
            #expect(FileManager.default.contents(atPath: dir + "/A.mlpackage/" + file) == FileManager.default.contents(atPath: dir + "/B.mlpackage/" + file))
        }
    }

    @Test("a node with no lowering fails the export with every refused node, and nothing is written")
    func refusalWritesNothing() throws {
        let dir = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var model = Self.model(extra: [Node(name: "mystery", opType: "Frobnicate", inputs: ["y"], outputs: ["z"])])
        model.graph.outputs = [ValueInfo(name: "z", type: .tensor(TensorType(elementType: .float, shape: [.value(1), .value(3)])))]
        do {
            _ = try CoreMLExporter.export(model, to: dir + "/C.mlpackage", options: .init())
            Issue.record("the export succeeded")
        } catch let error as CoreMLExportError {
            #expect(error.refusals.map(\.name) == ["mystery"])
            #expect(error.description.contains("no Core ML lowering for Frobnicate"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test("a model declaring no outputs is refused as the model's fault, not an invalid program (fuzz/regressions/coreml)")
    func noOutputsIsARefusal() throws {
        let dir = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var model = Self.model()
        model.graph.outputs = []
        do {
            _ = try CoreMLExporter.export(model, to: dir + "/N.mlpackage", options: .init())
            Issue.record("the export succeeded")
        } catch let error as CoreMLExportError {
            #expect(!error.isInternal)
            #expect(error.description.contains("the graph: the model declares no outputs"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test("an output that is also an input gets an interface name of its own (fuzz/regressions/coreml)")
    func passThroughOutputIsRenamed() throws {
        let dir = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var model = Self.model()
        model.graph.outputs.append(model.graph.inputs[0])
        for compute in [MILDataType.fp32, .fp16] {
            let result = try CoreMLExporter.export(model, to: dir + "/P.mlpackage", options: .init(compute: compute))
            #expect(result.renamed.map { "\($0.0)=\($0.1)" } == ["x=x_1"])
        }
    }

    @Test("a node missing an input its lowering needs constant is refused naming it, not a trap (fuzz/regressions/coreml)")
    func missingConstantInputIsARefusal() throws {
        let dir = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var model = Self.model(extra: [Node(name: "bn", opType: "BatchNormalization", inputs: ["c", "s", "s", "s"], outputs: ["z"])])
        model.graph.initializers.append(Self.floats("s", [3]))
        model.graph.outputs = [ValueInfo(name: "z", type: .tensor(TensorType(elementType: .float, shape: nil)))]
        do {
            _ = try CoreMLExporter.export(model, to: dir + "/B.mlpackage", options: .init())
            Issue.record("the export succeeded")
        } catch let error as CoreMLExportError {
            #expect(error.description.contains("input 4 (variance) is missing"))
        }
    }

    @Test("every deployment target spelling maps to its specification version and opset")
    func targets() {
        #expect(DeploymentTarget(parsing: "macOS13")?.specificationVersion == 7)
        #expect(DeploymentTarget(parsing: "ios18")?.opset == "CoreML8")
        #expect(DeploymentTarget(parsing: "watchOS8") == .iOS15)
        #expect(DeploymentTarget(parsing: "iOS14") == nil)
    }
}
