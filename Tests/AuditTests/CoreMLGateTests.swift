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
        // A dilated Conv with a run-time weight: MIL's conv needs a constant weight when dilated.
        let nodes = [
            Node(name: "conv", opType: "Conv", inputs: ["x", "k"], outputs: ["c"], attributes: [Attribute(name: "dilations", value: .ints([2, 2]))]),
            Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["y"]),
        ]
        let model = M.model(nodes, inputs: [M.tensor("x", .float, M.dims(1, 2, 7, 7)), M.tensor("k", .float, M.dims(3, 2, 3, 3))],
                            outputs: [M.tensor("y", .float, M.dims(1, 3, 3, 3))], valueInfo: [M.tensor("c", .float, M.dims(1, 3, 3, 3))])
        let input = try AuditInput.forModel(model)
        let report = try Auditor.audit(input, modelName: "t.onnx", options: try Self.options())
        #expect(report.nodes.map(\.unit) == ["unsupported", "neural-engine"])
        let failure = report.nodes[0].verdicts["neural-engine"]?.failures.first
        #expect(failure?.rule == "mil-conv" && failure?.detail == "weight 'k' is computed at run time and the conv is dilated [2, 2]; MIL's conv needs a constant weight then")
        #expect(failure?.source.hasSuffix("iOS15/conv.py") == true)
        // Off (the default), the same model is judged by the unit rules alone.
        let plain = try Auditor.audit(input, modelName: "t.onnx", options: try M.builtInOptions())
        #expect(plain.nodes[0].unit != "unsupported")
    }

    @Test("verdicts follow each node's source location: an If decided by constants takes its branch's verdict, and a node sharing a name with a branch node keeps its own")
    func verdictsBySourceLocation() throws {
        // The then-branch holds a dilated Conv on a run-time weight, which MIL's conv refuses; the If is decided by a
        // constant, so the exporter expands it and refuses the Conv: the audit must say the If does not convert
        // (matched by name or output, the If had no verdict of its own and was called "removed before lowering").
        let then = Graph(name: "then", outputs: [M.tensor("t", .float, M.dims(1, 3, 3, 3))],
                         nodes: [Node(name: "dup", opType: "Conv", inputs: ["x", "k"], outputs: ["t"],
                                      attributes: [Attribute(name: "dilations", value: .ints([2, 2]))])])
        let otherwise = Graph(name: "else", outputs: [M.tensor("e", .float, M.dims(1, 3, 3, 3))],
                              nodes: [Node(name: "e_conv", opType: "Conv", inputs: ["x", "k"], outputs: ["e"])])
        let flag = Tensor(name: "flag", dataType: .bool, dims: [], data: .bytes(LittleEndian.bytes(of: [UInt8(1)])))
        let nodes = [
            Node(name: "choose", opType: "If", inputs: ["flag"], outputs: ["c"],
                 attributes: [Attribute(name: "then_branch", value: .graph(then)), Attribute(name: "else_branch", value: .graph(otherwise))]),
            // Same name as the branch's Conv: a name-keyed table would give this Relu the Conv's refusal.
            Node(name: "dup", opType: "Relu", inputs: ["c"], outputs: ["y"]),
        ]
        let model = M.model(nodes, inputs: [M.tensor("x", .float, M.dims(1, 2, 7, 7)), M.tensor("k", .float, M.dims(3, 2, 3, 3))],
                            outputs: [M.tensor("y", .float, M.dims(1, 3, 3, 3))], valueInfo: [M.tensor("c", .float, M.dims(1, 3, 3, 3))],
                            initializers: [flag])
        let report = try Auditor.audit(try AuditInput.forModel(model), modelName: "t.onnx", options: try Self.options())
        let main = report.nodes.filter { $0.graph.isEmpty }
        #expect(main.map { $0.unit } == ["unsupported", "neural-engine"])
        let failure = main.first?.verdicts["neural-engine"]?.failures.first
        #expect(failure?.rule == "mil-conv" && failure?.detail.contains("dilated") == true)
        #expect(main.last?.verdicts["neural-engine"]?.support?.rule == "mil-elementwise-unary")
    }

    @Test("a refusal that rests on a dynamic dim is 'not checked', not a failure")
    func unknownIsUnchecked() throws {
        let model = M.model([Node(name: "relu", opType: "Relu", inputs: ["x"], outputs: ["y"])],
                            inputs: [M.tensor("x", .float, [.symbol("n"), .value(4)])], outputs: [M.tensor("y", .float, nil)])
        let report = try Auditor.audit(try AuditInput.forModel(model), modelName: "t.onnx", options: try Self.options())
        let verdict = try #require(report.nodes[0].verdicts["gpu"])
        #expect(verdict.supported)
        #expect(verdict.unchecked.contains { $0.rule == "mil-elementwise-unary" && $0.detail.contains("dynamic dims") })
    }

    /// One node of op `op` over inputs of the given types, audited with the gate on.
    static func gate(_ op: String, inputs: [(DataType, [Int])], output: (DataType, [Int]), attributes: [Attribute] = [],
                     constants: [Tensor] = []) throws -> AuditReport.NodeReport {
        let names = inputs.indices.map { "in\($0)" }
        let constantNames = Set(constants.map(\.name))
        let model = M.model([Node(name: "n", opType: op, inputs: names, outputs: ["y"], attributes: attributes)],
                            inputs: zip(names, inputs).filter { !constantNames.contains($0.0) }.map { M.tensor($0.0, $0.1.0, $0.1.1.map { .value($0) }) },
                            outputs: [M.tensor("y", output.0, output.1.map { .value($0) })], initializers: constants)
        let report = try Auditor.audit(try AuditInput.forModel(model), modelName: "t.onnx", options: try Self.options())
        return report.nodes[0]
    }

    @Test("each lowering rule's type domain, end to end: an allowed dtype converts, a refused one fails with the rule")
    func typeDomainsEndToEnd() throws {
        // Gather: MIL gather takes x in fp16, fp32, int32; bool data converts too (cast to int32 around the gather).
        let gatherFloat = try Self.gate("Gather", inputs: [(.float, [4, 3]), (.int64, [2])], output: (.float, [2, 3]))
        #expect(gatherFloat.unit != "unsupported" && gatherFloat.verdicts["cpu"]?.support?.rule == "mil-gather")
        let gatherBool = try Self.gate("Gather", inputs: [(.bool, [4, 3]), (.int64, [2])], output: (.bool, [2, 3]))
        #expect(gatherBool.verdicts["cpu"]?.supported == true && gatherBool.verdicts["cpu"]?.support?.rule == "mil-gather")
        // Relu: MIL relu takes fp16, fp32; a bool input fails with the rule.
        let reluBool = try Self.gate("Relu", inputs: [(.bool, [4, 3])], output: (.bool, [4, 3]))
        #expect(reluBool.unit == "unsupported")
        #expect(reluBool.verdicts["cpu"]?.failures.first?.rule == "mil-elementwise-unary")
        #expect(reluBool.verdicts["cpu"]?.failures.first?.detail.contains("takes fp16, fp32") == true)
        // Transpose of int64: MIL transpose takes int32 (every integer is int32 in the program), so it converts
        // (ONNX Runtime's builder refuses it; its conditions are not Core ML's).
        let transposeInt = try Self.gate("Transpose", inputs: [(.int64, [2, 3])], output: (.int64, [3, 2]))
        #expect(transposeInt.verdicts["cpu"]?.supported == true && transposeInt.verdicts["cpu"]?.support?.rule == "mil-transpose")
        let transposeBool = try Self.gate("Transpose", inputs: [(.bool, [2, 3])], output: (.bool, [3, 2]))
        #expect(transposeBool.verdicts["cpu"]?.supported == true)
        // Rank: instance_norm takes rank 3 or 4; a rank-5 input fails with the rule.
        let scale = M.floats("s", [2]), bias = M.floats("b", [2])
        let norm4 = try Self.gate("InstanceNormalization", inputs: [(.float, [1, 2, 3, 3]), (.float, [2]), (.float, [2])],
                                  output: (.float, [1, 2, 3, 3]), constants: [scale.renamed("in1"), bias.renamed("in2")])
        #expect(norm4.verdicts["cpu"]?.supported == true)
        let norm5 = try Self.gate("InstanceNormalization", inputs: [(.float, [1, 2, 3, 3, 3]), (.float, [2]), (.float, [2])],
                                  output: (.float, [1, 2, 3, 3, 3]), constants: [scale.renamed("in1"), bias.renamed("in2")])
        #expect(norm5.verdicts["cpu"]?.failures.first?.rule == "mil-instance-norm")
        // Every tensor at rank 5 at most.
        let rank5 = try Self.gate("Relu", inputs: [(.float, [1, 1, 1, 2, 2])], output: (.float, [1, 1, 1, 2, 2]))
        #expect(rank5.verdicts["cpu"]?.supported == true)
        let rank6 = try Self.gate("Relu", inputs: [(.float, [1, 1, 1, 1, 2, 2])], output: (.float, [1, 1, 1, 1, 2, 2]))
        #expect(rank6.verdicts["cpu"]?.failures.first?.rule == "coreml-max-rank")
        // Logical ops take bool only; arithmetic never takes bool.
        let orBool = try Self.gate("Or", inputs: [(.bool, [3]), (.bool, [3])], output: (.bool, [3]))
        #expect(orBool.verdicts["cpu"]?.supported == true)
        let addBool = try Self.gate("Add", inputs: [(.bool, [3]), (.bool, [3])], output: (.bool, [3]))
        #expect(addBool.verdicts["cpu"]?.failures.first?.rule == "mil-elementwise-binary")
        let addInt = try Self.gate("Add", inputs: [(.int64, [3]), (.int64, [3])], output: (.int64, [3]))
        #expect(addInt.verdicts["cpu"]?.supported == true)
    }

    @Test("under the gate, a supported node cites its lowering rule, the base profile's rules are not consulted, and placements are graded")
    func gatedCitationsAndPlacement() throws {
        // ReduceSum of int64: the base profile's float-only rule (ONNX Runtime's builder) used to refuse it; MIL's
        // reduce_sum takes int32, so under the gate it converts.
        let axes = M.int64s("in1", [1])
        let reduce = try Self.gate("ReduceSum", inputs: [(.int64, [2, 3]), (.int64, [1])], output: (.int64, [2, 1]), constants: [axes])
        #expect(reduce.verdicts["cpu"]?.supported == true)
        #expect(reduce.verdicts.values.allSatisfy { v in !v.failures.contains { $0.profile == "core-ml" && $0.rule.hasPrefix("coreml-float") } })
        #expect(reduce.unit == "neural-engine")
        #expect(reduce.placement == .init(confidence: .assumed, basis: "no-known-blocker"))
        // With the CPU alone, the placement is Core ML's CPU fallback (documented).
        var cpuOnly = try Self.options()
        cpuOnly.target = .cpu
        cpuOnly.computeUnits = .cpuOnly
        let model = M.model([Node(name: "r", opType: "Relu", inputs: ["x"], outputs: ["y"])],
                            inputs: [M.tensor("x", .float, M.dims(2, 2))], outputs: [M.tensor("y", .float, M.dims(2, 2))])
        let report = try Auditor.audit(try AuditInput.forModel(model), modelName: "t.onnx", options: cpuOnly)
        #expect(report.nodes[0].placement == .init(confidence: .documented, basis: "cpu-runs-core-ml"))
        #expect(report.summary.placementOnTarget == ["documented": 1])
    }
}

extension Tensor {
    func renamed(_ name: String) -> Tensor {
        var t = self
        t.name = name
        return t
    }
}
