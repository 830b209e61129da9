import Foundation
import GraphIR
import Testing
@testable import ONNXImport

@Suite struct ImporterTests {
    @Test func fixturesArePresent() {
        #expect(Fixtures.validModels.count >= 15)
        #expect(Fixtures.malformed.count >= 18)
    }

    @Test("every valid fixture imports", arguments: Fixtures.validModels)
    func validFixtureImports(name: String) throws {
        let model = try ONNXImporter.load(path: Fixtures.path(name))
        #expect(!model.graph.outputs.isEmpty)
        #expect(!model.opsetImports.isEmpty)
    }

    @Test("every malformed fixture fails with one line naming the culprit", arguments: Fixtures.malformed)
    func malformedFixtureFails(file: String, culprit: String) {
        let path = Fixtures.path("malformed/" + file)
        do {
            _ = try ONNXImporter.load(path: path)
            Issue.record("\(file) imported without error")
        } catch {
            #expect(error.file == path)
            #expect(error.description.contains(culprit), "\(error.description)")
            #expect(!error.description.contains("\n"))
        }
    }

    private func bytes(_ tensor: Tensor?) -> [UInt8] {
        guard let tensor, case .bytes(let view) = tensor.data else { return [] }
        return view.array
    }

    private func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { v in (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    }

    @Test("typed fields are repacked into raw little-endian layout")
    func typedFields() throws {
        let model = try ONNXImporter.load(path: Fixtures.path("typed_fields.onnx"))
        let byName = Dictionary(model.graph.initializers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(bytes(byName["t_float"]) == le([Float(1.5), -2.25, 3.0].map(\.bitPattern)))
        #expect(bytes(byName["t_complex64"]) == le([Float(1), 2, -0.5, 0].map(\.bitPattern)))
        #expect(bytes(byName["t_int32"]) == le([Int32(-7), 0, Int32.max]))
        #expect(bytes(byName["t_int8"]) == [0x80, 0xFF, 0, 0x7F])
        #expect(bytes(byName["t_uint8"]) == [0, 1, 128, 255])
        #expect(bytes(byName["t_int16"]) == le([Int16.min, 5, Int16.max]))
        #expect(bytes(byName["t_uint16"]) == le([UInt16(0), 1000, 65535]))
        #expect(bytes(byName["t_bool"]) == [1, 0, 0, 1])
        #expect(bytes(byName["t_float16"]) == le([UInt16(0x3C00), 0xB800, 0x7BFF]))
        #expect(bytes(byName["t_bfloat16"]) == le([UInt16(0x3F80), 0xC000, 0x3E20]))
        // int4 [-8, -1, 0, 3, 7]: element 2i in the low nibble.
        #expect(bytes(byName["t_int4"]) == [0xF8, 0x30, 0x07])
        #expect(bytes(byName["t_int64"]) == le([Int64.min, 42, Int64.max]))
        #expect(bytes(byName["t_double"]) == le([3.141592653589793, -1e300].map(\.bitPattern)))
        #expect(bytes(byName["t_complex128"]) == le([Double(3), -4].map(\.bitPattern)))
        #expect(bytes(byName["t_uint32"]) == le([UInt32(0), 7, UInt32.max]))
        #expect(bytes(byName["t_uint64"]) == le([UInt64(1), UInt64.max]))
        guard case .strings(let strings)? = byName["t_string"]?.data else { Issue.record("t_string"); return }
        #expect(strings == [Array("alpha".utf8), [], Array("\u{fc}ml\u{e4}ut".utf8)])
    }

    @Test("raw_data is referenced in place and external data is memory-mapped, not copied")
    func externalData() throws {
        let model = try ONNXImporter.load(path: Fixtures.path("external_data.onnx"))
        let external = model.graph.initializers.filter { $0.location.isExternal }
        #expect(external.count >= 2)
        let fileSize = try FileManager.default.attributesOfItem(atPath: Fixtures.path("external_data.bin"))[.size] as? Int
        for tensor in external {
            guard case .external(let location, let offset, let length) = tensor.location else { continue }
            #expect(location == "external_data.bin")
            #expect(length == tensor.byteCount)
            #expect(offset + length <= fileSize ?? 0)
        }
    }

    @Test("Constant nodes in every form yield tensors")
    func constantNodes() throws {
        let model = try ONNXImporter.load(path: Fixtures.path("constant_weights.onnx"))
        let constants = model.graph.nodes.filter(\.isConstant)
        let dense = constants.compactMap(\.constantTensor)
        let sparse = constants.compactMap(\.constantSparseTensor)
        #expect(dense.count + sparse.count == constants.count)
        #expect(sparse.count == 1)
        #expect(dense.contains { $0.dims == [64, 64] && $0.dataType == .float })
    }

    @Test("If branches keep their own initializers")
    func subgraphInitializers() throws {
        let model = try ONNXImporter.load(path: Fixtures.path("if_branches.onnx"))
        var subgraphInitializers = 0
        model.graph.forEachGraph { graph, depth in
            if depth > 0 { subgraphInitializers += graph.initializers.count }
        }
        #expect(subgraphInitializers >= 2)
    }

    @Test("duplicate opset imports merge; ai.onnx is the default domain")
    func duplicateOpsets() throws {
        let model = try ONNXImporter.load(path: Fixtures.path("duplicate_opsets.onnx"))
        #expect(model.opsetImports.filter { $0.domain == "" }.count == 1)
        #expect(model.opsetVersion(domain: "") == 17)
    }

    @Test("symbolic and unknown dims survive import")
    func dynamicDims() throws {
        let model = try ONNXImporter.load(path: Fixtures.path("dynamic_dims.onnx"))
        let shapes = model.graph.inputs.compactMap { info -> [Dim]? in
            if case .tensor(let t) = info.type { return t.shape }
            return nil
        }
        #expect(shapes.joined().contains(.symbol("batch")))
        #expect(shapes.joined().contains(.unknown))
        #expect(model.graph.outputs.contains { if case .tensor(let t) = $0.type { return t.shape == nil } else { return false } })
    }

    @Test("model-local functions are read with their bodies")
    func functions() throws {
        let model = try ONNXImporter.load(path: Fixtures.path("function.onnx"))
        let function = try #require(model.functions.first)
        #expect(function.domain == "local.fn" && function.name == "AddRelu" && function.nodes.count == 2)
        #expect(function.nodes.last?.attributes.first?.referencedAttribute == "alpha")
    }

    @Test("bytes that are not a protobuf are refused, whatever they are",
          arguments: [[UInt8](), [0xFF], [0x0A, 0x05, 0x01], Array(repeating: 0x3A, count: 64)])
    func garbage(bytes: [UInt8]) {
        #expect(throws: ImportError.self) {
            try bytes.withUnsafeBytes { try ONNXImporter.load(bytes: $0, file: "garbage.onnx", folder: "/nonexistent") }
        }
    }

    @Test("an initializer listed as a graph input is a constant by default, an overridable input on request")
    func initializerInputs() throws {
        // lstm.onnx lists its initializer W as a graph input too (the pre-IR-4 style).
        let path = Fixtures.path("lstm.onnx")
        let constant = try ONNXImporter.load(path: path)
        #expect(constant.graph.inputs.map(\.name) == ["X"])
        #expect(constant.graph.initializers.contains { $0.name == "W" })
        let overridable = try ONNXImporter.load(path: path, options: ImportOptions(initializerInputs: .overridable))
        #expect(overridable.graph.inputs.map(\.name) == ["X", "W"])
        #expect(overridable.graph.runtimeInputs.map(\.name) == ["X"])
        #expect(overridable.initializerInputsAsConstants().graph.inputs.map(\.name) == ["X"])
    }
}
