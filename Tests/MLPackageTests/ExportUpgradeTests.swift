import GraphIR
import Testing
@testable import ONNXExport
@testable import Quantization

@Suite struct ExportUpgradeTests {
    /// x → MatMul(W int4-quantized) → ReduceMean(axes=[1]) at opset `opset`.
    private func model(opset: Int64) throws -> Model {
        var values = (0..<(64 * 32)).map { Float($0 % 17) / 17 - 0.5 }
        values[5] = 2
        var w = Tensor(name: "W", dataType: .float, dims: [64, 32], data: .bytes(LittleEndian.bytes(of: values)))
        let layout = GroupLayout(dims: [64, 32], granularity: .perBlock, axis: 0, blockSize: 32)
        let outcome = try values.withUnsafeBytes { try LinearQuantizer(format: .int4, symmetric: true).quantize($0, layout: layout, name: "W") }
        w.data = .bytes(outcome.values.view)
        w.encoding = .linear(outcome.encoding)
        let info = { (n: String) in ValueInfo(name: n, type: .tensor(TensorType(elementType: .float, shape: nil))) }
        let graph = Graph(name: "g", inputs: [info("x")], outputs: [info("y")], initializers: [w],
                          nodes: [Node(name: "mm", opType: "MatMul", inputs: ["x", "W"], outputs: ["h"]),
                                  Node(name: "mean", opType: "ReduceMean", inputs: ["h"], outputs: ["y"],
                                       attributes: [Attribute(name: "axes", value: .ints([1]))])])
        return Model(irVersion: 8, opsetImports: [OpsetImport(domain: "", version: opset)], graph: graph)
    }

    @Test("int4 blocked export raises opset 17 to 21 and moves ReduceMean's axes to an input")
    func upgrade() throws {
        var preparation = ExportPreparation(dequantize: false)
        let out = preparation.prepare(try model(opset: 17))
        #expect(out.opsetVersion(domain: "") == 21 && out.irVersion >= 10)
        let dq = try #require(out.graph.nodes.first { $0.opType == "DequantizeLinear" })
        #expect(dq.outputs == ["W"])
        if case .int(let b)? = dq.attribute("block_size")?.value { #expect(b == 32) } else { Issue.record("no block_size") }
        let mean = try #require(out.graph.nodes.first { $0.opType == "ReduceMean" })
        #expect(mean.attribute("axes") == nil && mean.inputs.count == 2)
        let axes = try #require(out.graph.initializers.first { $0.name == mean.inputs[1] })
        #expect(axes.dataType == .int64 && axes.dims == [1])
        #expect(out.graph.initializers.contains { $0.dataType == .int4 })
        _ = try GraphVerifier.verified(out.graph)
        #expect(preparation.notes.count == 1)
    }

    @Test("a model below opset 13 gets float32 weights and a note instead of an upgrade")
    func refuse() throws {
        var preparation = ExportPreparation(dequantize: false)
        let out = preparation.prepare(try model(opset: 11))
        #expect(out.opsetVersion(domain: "") == 11)
        #expect(!out.graph.nodes.contains { $0.opType == "DequantizeLinear" })
        #expect(out.graph.initializers.allSatisfy { $0.dataType == .float && $0.encoding.isRaw })
        #expect(preparation.notes.first?.contains("opset 11") == true)
    }
}
