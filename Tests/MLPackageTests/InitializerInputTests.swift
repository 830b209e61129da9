import Foundation
import GraphIR
import Testing
import Conversion
import MLPackage
import ONNXExport
import ONNXImport

/// Initializers a model also lists as graph inputs (IR < 4 style), through convert: constants by default,
/// overridable inputs with `ImportOptions.initializerInputs = .overridable` (`--keep-initializer-inputs`).
@Suite struct InitializerInputTests {
    /// IR 3: x float[1, 4]; `shape` = [4, 3] is an initializer and a graph input; w = ConstantOfShape(shape, 0.5);
    /// y = MatMul(x, w); z = Relu(y). A light model of the onnx wheel generates its weights this way.
    static func writeModel(to path: String) throws {
        let shape = Tensor(name: "shape", dataType: .int64, dims: [2], data: .bytes(LittleEndian.bytes(of: [Int64(4), 3])))
        let half = Tensor(name: "", dataType: .float, dims: [1], data: .bytes(LittleEndian.bytes(of: [Float(0.5)])))
        let graph = Graph(
            name: "ir3",
            inputs: [ValueInfo(name: "x", type: .tensor(TensorType(elementType: .float, shape: [.value(1), .value(4)]))),
                     ValueInfo(name: "shape", type: .tensor(TensorType(elementType: .int64, shape: [.value(2)])))],
            outputs: [ValueInfo(name: "z", type: .tensor(TensorType(elementType: .float, shape: nil)))],
            initializers: [shape],
            nodes: [Node(opType: "ConstantOfShape", inputs: ["shape"], outputs: ["w"],
                         attributes: [Attribute(name: "value", value: .tensor(half))]),
                    Node(opType: "MatMul", inputs: ["x", "w"], outputs: ["y"]),
                    Node(opType: "Relu", inputs: ["y"], outputs: ["z"])])
        let model = Model(irVersion: 3, opsetImports: [OpsetImport(domain: "", version: 9)], graph: graph)
        _ = try ONNXExporter.export(model, to: path, options: .init())
    }

    @Test("convert: an initializer listed as an input is a constant, so what it shapes is static")
    func constantByDefault() throws {
        let folder = Paths.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.writeModel(to: folder + "/ir3.onnx")
        let result = try PackageConverter.convert(input: folder + "/ir3.onnx", output: folder + "/c.mlpkg",
                                                  options: .init(weights: .fp32))
        #expect(result.manifest.provenance.options["initializerInputs"] == nil)
        let model = try PackageReader.load(path: folder + "/c.mlpkg", checksums: true).model
        #expect(model.graph.inputs.map(\.name) == ["x"])
        // ConstantOfShape folds into an initializer; MatMul's output has static dims.
        #expect(!model.graph.nodes.contains { $0.opType == "ConstantOfShape" })
        #expect(model.graph.valueInfo.first { $0.name == "y" }?.type.description == "float[1, 3]")
        // IR 3 required every initializer to be an input: the export says IR 4.
        _ = try ONNXExporter.export(model, to: folder + "/back.onnx", options: .init())
        #expect(try ONNXImporter.load(path: folder + "/back.onnx").irVersion == 4)
    }

    @Test("convert with overridable initializer inputs: the input stays, its value is unknown to inference")
    func overridableOnRequest() throws {
        let folder = Paths.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.writeModel(to: folder + "/ir3.onnx")
        let options = PackageConverter.Options(weights: .fp32, importing: ImportOptions(initializerInputs: .overridable))
        let result = try PackageConverter.convert(input: folder + "/ir3.onnx", output: folder + "/k.mlpkg", options: options)
        #expect(result.manifest.provenance.options["initializerInputs"] == "overridable")
        let model = try PackageReader.load(path: folder + "/k.mlpkg", checksums: true).model
        #expect(model.graph.inputs.map(\.name) == ["x", "shape"])
        #expect(model.graph.runtimeInputs.map(\.name) == ["x"])
        #expect(model.graph.nodes.contains { $0.opType == "ConstantOfShape" })
        let y = model.graph.valueInfo.first { $0.name == "y" }?.type
        guard case .tensor(let t)? = y else { Issue.record("no type for y"); return }
        #expect(t.shape?.first == .value(1))
        #expect(t.shape?.last.map { if case .value = $0 { return false }; return true } == true)
        // Every initializer is still an input: the export stays IR 3.
        _ = try ONNXExporter.export(model, to: folder + "/back.onnx", options: .init())
        #expect(try ONNXImporter.load(path: folder + "/back.onnx", options: ImportOptions(initializerInputs: .overridable)).irVersion == 3)
    }
}
