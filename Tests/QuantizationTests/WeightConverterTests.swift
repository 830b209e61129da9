import GraphIR
import Testing
@testable import Quantization

private func floatTensor(_ name: String, _ values: [Float], dims: [Int]? = nil) -> Tensor {
    Tensor(name: name, dataType: .float, dims: dims ?? [values.count], data: .bytes(LittleEndian.bytes(of: values)))
}

private func model(initializers: [Tensor], nodes: [Node], inputs: [String] = ["x"]) -> Model {
    let info = { (name: String) in ValueInfo(name: name, type: .tensor(TensorType(elementType: .float, shape: nil))) }
    let graph = Graph(name: "g", inputs: inputs.map(info), outputs: [info(nodes.last!.outputs[0])],
                      initializers: initializers, nodes: nodes)
    return Model(irVersion: 10, opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph)
}

@Suite struct WeightConverterTests {
    @Test func fp16ConvertsWeightsAndReports() {
        let w = floatTensor("w", (0..<64).map { Float($0) / 7 })
        let m = model(initializers: [w], nodes: [Node(opType: "MatMul", inputs: ["x", "w"], outputs: ["y"])])
        let (converted, report) = WeightConverter(options: .init(format: .fp16)).convert(m)
        let out = converted.graph.initializers[0]
        #expect(out.encoding.name == "float16" && out.dataType == .float && out.byteCount == 128)
        #expect(report.converted.count == 1 && report.kept.isEmpty)
        #expect(report.totals.bytesBefore == 256 && report.totals.bytesAfter == 128 && report.totals.ratio == 2)
        let snr = report.converted[0].snrDB ?? 0
        #expect(snr > 60 && snr < 90)
    }

    @Test func nonFiniteWeightsStayFloat32AndAreNamed() {
        let w = floatTensor("mask", [0, -.infinity, 1, .nan])
        let m = model(initializers: [w], nodes: [Node(opType: "Add", inputs: ["x", "mask"], outputs: ["y"])])
        let (converted, report) = WeightConverter(options: .init(format: .fp16)).convert(m)
        #expect(converted.graph.initializers[0].encoding.isRaw)
        #expect(report.kept.first?.name == "mask")
        #expect(report.kept.first?.reason.contains("2 inf/NaN") == true)
    }

    @Test("Resize scales and quantization parameters keep full precision")
    func protectedInputs() {
        let scales = floatTensor("scales", [1, 1, 1.0 / 3, 1.0 / 3])
        let scale = floatTensor("s", [0.1], dims: [])
        let m = model(initializers: [scales, scale],
                      nodes: [Node(opType: "Resize", inputs: ["x", "", "scales"], outputs: ["r"]),
                              Node(opType: "QuantizeLinear", inputs: ["r", "s"], outputs: ["y"])])
        let (converted, report) = WeightConverter(options: .init(format: .fp16)).convert(m)
        #expect(converted.graph.initializers.allSatisfy { $0.encoding.isRaw })
        #expect(Set(report.kept.map(\.name)) == ["scales", "s"])
    }

    @Test func minElementsLeavesSmallTensors() {
        let m = model(initializers: [floatTensor("b", [1, 2, 3])], nodes: [Node(opType: "Add", inputs: ["x", "b"], outputs: ["y"])])
        let (_, report) = WeightConverter(options: .init(format: .fp16, minElements: 4)).convert(m)
        #expect(report.kept.first?.reason.hasPrefix("too small") == true)
    }

    @Test("Constant values and subgraph initializers are converted too")
    func constantsAndSubgraphs() {
        let constant = Node(opType: "Constant", inputs: [], outputs: ["c"],
                            attributes: [Attribute(name: "value", value: .tensor(floatTensor("", [1.5, 2.5])))])
        let branch = Graph(name: "then", outputs: [ValueInfo(name: "t", type: .unknown)],
                           initializers: [floatTensor("inner", [0.25, 0.5])],
                           nodes: [Node(opType: "Add", inputs: ["c", "inner"], outputs: ["t"])])
        let ifNode = Node(opType: "If", inputs: ["x"], outputs: ["y"],
                          attributes: [Attribute(name: "then_branch", value: .graph(branch)),
                                       Attribute(name: "else_branch", value: .graph(branch))])
        let m = model(initializers: [], nodes: [constant, ifNode])
        let (converted, report) = WeightConverter(options: .init(format: .fp16)).convert(m)
        #expect(report.converted.map(\.name).sorted() == ["c", "inner", "inner"])
        guard case .tensor(let t) = converted.graph.nodes[0].attributes[0].value,
              case .graph(let g) = converted.graph.nodes[1].attributes[1].value else {
            Issue.record("structure changed")
            return
        }
        #expect(t.encoding.name == "float16" && t.name == "")
        #expect(g.initializers[0].encoding.name == "float16")
    }

    @Test func fp32ChangesNothing() {
        let m = model(initializers: [floatTensor("w", [1, 2])], nodes: [Node(opType: "Add", inputs: ["x", "w"], outputs: ["y"])])
        let (converted, report) = WeightConverter(options: .init(format: .fp32)).convert(m)
        #expect(converted.graph.initializers[0].encoding.isRaw)
        #expect(report.converted.isEmpty && report.kept.isEmpty && report.totals.ratio == 1)
    }
}
