import Testing
@testable import Audit
import GraphIR
import Profiles

/// The Core ML gate: with `coreMLLowering` on, the exporter's lowering registry decides what converts.
@Suite struct CoreMLGateTests {
    typealias M = TestModels

    static func options() throws -> AuditOptions {
        var options = try M.builtInOptions()
        options.coreMLLowering = true
        return options
    }

    @Test("a refused precondition is a coreml-lowering failure on every unit; a lowered node is untouched")
    func refusalFails() throws {
        // Conv with a run-time weight: the Conv lowering needs a constant weight.
        let nodes = [
            Node(name: "conv", opType: "Conv", inputs: ["x", "k"], outputs: ["c"]),
            Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["y"]),
        ]
        let model = M.model(nodes, inputs: [M.tensor("x", .float, M.dims(1, 2, 5, 5)), M.tensor("k", .float, M.dims(3, 2, 3, 3))],
                            outputs: [M.tensor("y", .float, M.dims(1, 3, 3, 3))], valueInfo: [M.tensor("c", .float, M.dims(1, 3, 3, 3))])
        let input = try AuditInput.forModel(model)
        let report = try Auditor.audit(input, modelName: "t.onnx", options: try Self.options())
        #expect(report.nodes.map(\.unit) == ["unsupported", "neural-engine"])
        let failure = report.nodes[0].verdicts["neural-engine"]?.failures.first
        #expect(failure?.rule == "coreml-lowering" && failure?.detail == "weight 'k' must be constant")
        // Off (the default), the same model is judged by the unit rules alone.
        let plain = try Auditor.audit(input, modelName: "t.onnx", options: try M.builtInOptions())
        #expect(plain.nodes[0].unit != "unsupported")
    }

    @Test("a refusal that rests on a dynamic dim is 'not checked', not a failure")
    func unknownIsUnchecked() throws {
        let model = M.model([Node(name: "relu", opType: "Relu", inputs: ["x"], outputs: ["y"])],
                            inputs: [M.tensor("x", .float, [.symbol("n"), .value(4)])], outputs: [M.tensor("y", .float, nil)])
        let report = try Auditor.audit(try AuditInput.forModel(model), modelName: "t.onnx", options: try Self.options())
        let verdict = try #require(report.nodes[0].verdicts["gpu"])
        #expect(verdict.supported)
        #expect(verdict.unchecked.contains { $0.rule == "coreml-lowering" && $0.detail.contains("dynamic dims") })
    }
}
