import CoreMLExport
import GraphIR
import Testing

/// GRU written as a MIL while_loop, If → cond, Loop → while_loop: the programs the lowerings write, before and after
/// the MIL passes (numerics: tests/oracle/test_coreml_ops.py).
@Suite struct ControlFlowExportTests {
    static func tensor(_ name: String, _ dims: [Int], _ elementType: DataType = .float) -> ValueInfo {
        ValueInfo(name: name, type: .tensor(TensorType(elementType: elementType, shape: dims.map { .value($0) })))
    }

    /// A GRU of `seq` steps (PyTorch's: linear_before_reset = 1), hidden 8, input 4.
    static func gru(seq: Int, batch: Int = 1, direction: String = "forward") -> Model {
        let nd = direction == "bidirectional" ? 2 : 1
        let node = Node(name: "gru", opType: "GRU", inputs: ["x", "W", "R", "B"], outputs: ["y", "yh"],
                        attributes: [Attribute(name: "hidden_size", value: .int(8)), Attribute(name: "linear_before_reset", value: .int(1)),
                                     Attribute(name: "direction", value: .string(Array(direction.utf8)))])
        let graph = Graph(name: "g", inputs: [tensor("x", [seq, batch, 4])], outputs: [tensor("y", [seq, nd, batch, 8]), tensor("yh", [nd, batch, 8])],
                          initializers: [CoreMLExportTests.floats("W", [nd, 24, 4]), CoreMLExportTests.floats("R", [nd, 24, 8]),
                                         CoreMLExportTests.floats("B", [nd, 48])], nodes: [node])
        return Model(irVersion: 10, opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph)
    }

    static func lowered(_ model: Model) throws -> MILProgram {
        let (outcomes, program) = try CoreMLExporter.lower(model, options: .init(compute: .fp32))
        let refusals = outcomes.compactMap { o -> String? in if case .refused(let r) = o.verdict { return "\(o.name): \(r.reason)" } else { return nil } }
        guard let program else { throw LoweringFailed(reasons: refusals) }
        return program.program
    }

    struct LoweringFailed: Error { var reasons: [String] }

    @Test("a GRU is one while_loop per direction: the ops written do not grow with the sequence (16 and 600 steps alike)")
    func gruLoop() throws {
        let short = try Self.lowered(Self.gru(seq: 16)), long = try Self.lowered(Self.gru(seq: 600))
        #expect(short.histogram["while_loop"] == 1)
        #expect(short.operationCount == long.operationCount)
        let loop = try #require(short.operations.first { $0.type == "while_loop" })
        #expect(loop.blocks.count == 2 && loop.blocks[1].operations.contains { $0.type == "scatter_nd" })
        // The weights are defined before the loop and read inside it: they count as the loop's uses.
        #expect(loop.usedVariables.contains { $0.hasSuffix("_r_zr") })
        try MILVerifier.verify(short)
        let before = short.computeOperationCount
        try MILPipeline.standard.run(short)
        try MILVerifier.verify(short)
        #expect(short.histogram["while_loop"] == 1 && short.computeOperationCount <= before)

        let both = try Self.lowered(Self.gru(seq: 7, batch: 3, direction: "bidirectional"))
        #expect(both.histogram["while_loop"] == 2)
    }

    @Test("a one-step GRU is unrolled: fewer ops than the loop, the same cell")
    func gruOneStep() throws {
        let one = try Self.lowered(Self.gru(seq: 1)), two = try Self.lowered(Self.gru(seq: 2))
        #expect(one.histogram["while_loop"] == nil && two.histogram["while_loop"] == 1)
        #expect(one.operationCount < two.operationCount)
    }

    @Test("an If decided at run time is one cond; a Loop with a trip count one while_loop; a scan output stacks by scatter_nd when its length is constant and is refused naming it otherwise")
    func ifAndLoop() throws {
        let then = Graph(name: "then", inputs: [], outputs: [Self.tensor("a", [4])],
                         nodes: [Node(name: "add", opType: "Add", inputs: ["x", "x"], outputs: ["a"])])
        let otherwise = Graph(name: "else", inputs: [], outputs: [Self.tensor("b", [4])],
                              nodes: [Node(name: "mul", opType: "Mul", inputs: ["x", "x"], outputs: ["b"])])
        let ifGraph = Graph(name: "g", inputs: [Self.tensor("flag", [], .bool), Self.tensor("x", [4])], outputs: [Self.tensor("y", [4])],
                            nodes: [Node(name: "if", opType: "If", inputs: ["flag"], outputs: ["y"],
                                         attributes: [Attribute(name: "then_branch", value: .graph(then)),
                                                      Attribute(name: "else_branch", value: .graph(otherwise))])])
        let ifProgram = try Self.lowered(Model(irVersion: 10, opsetImports: [OpsetImport(domain: "", version: 17)], graph: ifGraph))
        let cond = try #require(ifProgram.operations.first { $0.type == "cond" })
        #expect(cond.blocks.map { $0.operations.map(\.type) } == [["add"], ["mul"]])
        try MILVerifier.verify(ifProgram)

        func loop(scan: Bool, tripInput: Bool = false) -> Model {
            var outputs = [Self.tensor("cond_out", [], .bool), Self.tensor("v_out", [4])]
            var nodes = [Node(name: "keep", opType: "Identity", inputs: ["cond_in"], outputs: ["cond_out"]),
                         Node(name: "step", opType: "Add", inputs: ["v_in", "x"], outputs: ["v_out"])]
            if scan {
                outputs.append(Self.tensor("v_scan", [4]))
                nodes.append(Node(name: "collect", opType: "Identity", inputs: ["v_out"], outputs: ["v_scan"]))
            }
            let body = Graph(name: "body", inputs: [Self.tensor("i", [], .int64), Self.tensor("cond_in", [], .bool), Self.tensor("v_in", [4])],
                             outputs: outputs, nodes: nodes)
            var trip = Tensor(name: "trip", dataType: .int64, dims: [], data: .bytes(LittleEndian.bytes(of: [Int64(3)])))
            trip.name = "trip"
            let graph = Graph(name: "g", inputs: [Self.tensor("x", [4])] + (tripInput ? [Self.tensor("trip", [], .int64)] : []),
                              outputs: [Self.tensor("v", [4])] + (scan ? [Self.tensor("all", [3, 4])] : []),
                              initializers: tripInput ? [] : [trip],
                              nodes: [Node(name: "loop", opType: "Loop", inputs: ["trip", "", "x"], outputs: ["v"] + (scan ? ["all"] : []),
                                           attributes: [Attribute(name: "body", value: .graph(body))])])
            return Model(irVersion: 10, opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph)
        }
        let loopProgram = try Self.lowered(loop(scan: false))
        let whileLoop = try #require(loopProgram.operations.first { $0.type == "while_loop" })
        #expect(whileLoop.blocks[0].operations.map(\.type) == ["less"])
        try MILVerifier.verify(loopProgram)
        // A scan output over a constant trip count with every iteration run: one more loop variable, stacked by
        // scatter_nd in the body.
        let scanProgram = try Self.lowered(loop(scan: true))
        let scanLoop = try #require(scanProgram.operations.first { $0.type == "while_loop" })
        #expect(scanLoop.outputs.count == 4 && scanLoop.outputs[3].type.shape == [3, 4])
        #expect(scanLoop.blocks[1].operations.contains { $0.type == "scatter_nd" })
        try MILVerifier.verify(scanProgram)
        // Its length known only at run time (a trip count that is an input): refused, naming it.
        do {
            _ = try Self.lowered(loop(scan: true, tripInput: true))
            Issue.record("a Loop with a scan output of run-time length lowered")
        } catch let failed as LoweringFailed {
            #expect(failed.reasons.count == 1 && failed.reasons[0].contains("scan outputs ('v_scan') are lowered only with a constant trip count"))
        }
    }
}
