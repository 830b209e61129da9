import GraphIR
import Ops
import Passes
import Testing

/// Constant folding, dead-node elimination and pins: build a tiny graph, run the pipeline, check the interface is
/// unchanged, then count what is left.
@Suite struct FoldingTests {
    /// x [batch, seq, 64] → Reshape(x, Concat(Shape(x)[0], Shape(x)[1], [4, 16])).
    func shapeChain() -> ModelBuilder {
        var b = ModelBuilder(opset: 17)
        b.input("x", .float, ["batch", "seq", 64])
        b.node("Shape", ["x"], ["s"])
        b.node("Constant", [], ["i0"], ["value": Tensor(name: "", dataType: .int64, dims: [1], data: .bytes(LittleEndian.bytes(of: [Int64(0)])))])
        b.ints("i1", [1])
        b.ints("heads", [4, 16])
        b.node("Gather", ["s", "i0"], ["b"], ["axis": 0])
        b.node("Gather", ["s", "i1"], ["q"], ["axis": 0])
        b.node("Concat", ["b", "q", "heads"], ["shape"], ["axis": 0])
        b.node("Reshape", ["x", "shape"], ["y"])
        b.outputs = ["y"]
        return b
    }

    func run(_ b: ModelBuilder, pins: [String: [Dim]] = [:], pipeline: Pipeline = .foldAndInfer) throws -> (Model, PassContext) {
        var m = b.model
        m.graph = try GraphVerifier.verified(m.graph)
        m = try InputShapes(pins).apply(to: m)
        let context = PassContext()
        return (try pipeline.run(m, context: context), context)
    }

    @Test func symbolicChainIsInferredWithoutPins() throws {
        let (m, context) = try run(shapeChain())
        #expect(context.inference?.type("y") == "float[batch, seq, 4, 16]")
        #expect(context.foldedNodes == 0)  // nothing is constant: the dims are symbolic
        #expect(m.graph.nodes.count == 6)
    }

    @Test func pinnedChainFoldsToOneReshape() throws {
        let b = shapeChain()
        let (m, context) = try run(b, pins: ["x": [.value(2), .value(5), .value(64)]])
        #expect(m.graph.nodes.map(\.opType) == ["Reshape"])
        #expect(m.graph.outputs.map(\.name) == ["y"])
        #expect(m.graph.inputs.map(\.name) == ["x"])
        #expect(context.inference?.type("y") == "float[2, 5, 4, 16]")
        // The folded shape is an initializer; the model's own initializers stay (unread ones too).
        let shape = try #require(m.graph.initializers.first { $0.name == "shape" })
        #expect(TensorValue.decode(shape, limit: 10)?.ints == [2, 5, 4, 16])
        #expect(Set(m.graph.initializers.map(\.name)) == ["i1", "heads", "shape"])
        #expect(context.rounds == 2)
        #expect(m.graph.valueInfo.isEmpty)  // y is the graph output; nothing else is left
    }

    @Test func graphOutputsAreNeverFolded() throws {
        var b = ModelBuilder()
        b.ints("a", [1, 2])
        b.ints("c", [3, 4])
        b.node("Add", ["a", "c"], ["sum"])
        b.node("Mul", ["sum", "c"], ["y"])
        b.outputs = ["y"]
        let (m, context) = try run(b)
        #expect(m.graph.nodes.map(\.opType) == ["Mul"])
        #expect(context.inference?.knownValues["y"]?.ints == [12, 24])
    }

    @Test func overflowAndBigResultsAreNotFolded() throws {
        var b = ModelBuilder()
        b.ints("big", [Int64.max])
        b.ints("one", [1])
        b.ints("len", [100_000])
        b.node("Add", ["big", "one"], ["overflow"])
        b.node("ConstantOfShape", ["len"], ["zeros"])
        b.node("Identity", ["overflow"], ["y1"])
        b.node("Identity", ["zeros"], ["y2"])
        b.outputs = ["y1", "y2"]
        let (m, context) = try run(b)
        #expect(Set(m.graph.nodes.map(\.opType)) == ["Add", "ConstantOfShape", "Identity"])
        #expect(context.foldedNodes == 0)
        // The 100,000 zeros are evaluated (their shape is known) but not written.
        #expect(context.inference?.type("zeros") == "float[100000]")
    }

    @Test func deadConstantsGoAndFoldingReachesAFixedPoint() throws {
        var b = ModelBuilder(opset: 17)
        b.input("x", .float, [2, 3])
        b.node("Constant", [], ["unused"], ["value_int": 7])
        b.node("Shape", ["x"], ["s"])
        b.node("Cast", ["s"], ["sf"], ["to": Int(DataType.float.rawValue)])
        b.node("ReduceProd", ["s"], ["count"], ["keepdims": 0])
        b.node("Range", ["zero", "count", "step"], ["r"])
        b.ints("zero", [0], dims: [])
        b.ints("step", [1], dims: [])
        b.node("Unsqueeze", ["r", "ax"], ["r2"])
        b.ints("ax", [0])
        b.node("Add", ["x", "x"], ["y"])
        b.outputs = ["y", "r2", "sf"]
        let (m, context) = try run(b)
        #expect(Set(m.graph.nodes.map(\.opType)) == ["Add", "Unsqueeze", "Cast"])
        #expect(!m.graph.nodes.contains { $0.isConstant })
        #expect(context.inference?.knownValues["r2"]?.ints == [0, 1, 2, 3, 4, 5])
        #expect(context.inference?.knownValues["sf"]?.elements == .floats([2, 3]))
    }

    @Test func ifWithConstantConditionFolds() throws {
        let thenGraph = Graph(name: "then", outputs: [ValueInfo(name: "t", type: .unknown)],
                              nodes: [Node(opType: "Add", inputs: ["k", "k"], outputs: ["t"])])
        let elseGraph = Graph(name: "else", outputs: [ValueInfo(name: "e", type: .unknown)],
                              nodes: [Node(opType: "Mul", inputs: ["k", "k"], outputs: ["e"])])
        var b = ModelBuilder(opset: 13)
        b.input("x", .int64, [2])
        b.ints("k", [3, 4])
        b.initializers.append(Tensor(name: "cond", dataType: .bool, dims: [], data: .bytes(ByteView(copying: [0]))))
        b.node("If", ["cond"], ["picked"], ["then_branch": thenGraph, "else_branch": elseGraph])
        b.node("Add", ["x", "picked"], ["y"])
        let (m, context) = try run(b)
        #expect(m.graph.nodes.map(\.opType) == ["Add"])
        #expect(context.inference?.knownValues["picked"]?.ints == [9, 16])
    }

    @Test func unfoldedPipelineKeepsTheGraph() throws {
        let b = shapeChain()
        let (m, _) = try run(b, pins: ["x": [.value(2), .value(5), .value(64)]], pipeline: .infer)
        #expect(m.graph.nodes.count == 6)
        #expect(m.graph.valueInfo.map(\.name) == ["s", "i0", "b", "q", "shape"])
        #expect(m.graph.valueInfo.first { $0.name == "shape" }?.type.description == "int64[4]")
    }

    @Test func outputsSpecialiseOnlyFromPins() throws {
        var b = ModelBuilder()
        b.input("x", .float, ["batch", 4])
        b.node("Relu", ["x"], ["y"])
        var m = b.model
        m.graph.outputs = [ValueInfo(name: "y", type: tensorType(.float, [.symbol("batch"), .unknown]))]
        let pinned = try InputShapes(["x": [.value(3), .value(4)]]).apply(to: m)
        let result = try ShapeInference.run(pinned)
        let specialised = ShapeInference.specializingOutputs(of: pinned, with: result)
        #expect(specialised.graph.outputs[0].type.description == "float[3, 4]")
    }

    /// input_ids [batch, sequence] and attention_mask [batch, sequence]: pinning one pins the other (issue 26).
    func twoInputs() -> ModelBuilder {
        var b = ModelBuilder(opset: 17)
        b.input("input_ids", .float, ["batch", "sequence"])
        b.input("attention_mask", .float, ["batch", "sequence"])
        b.node("Mul", ["input_ids", "attention_mask"], ["y"])
        b.outputs = ["y"]
        return b
    }

    @Test func aPinnedSymbolPinsEveryInputThatSharesIt() throws {
        let (m, context) = try run(twoInputs(), pins: ["input_ids": [.value(1), .value(128)]])
        #expect(m.graph.inputs.map(\.type.description) == ["float[1, 128]", "float[1, 128]"])
        #expect(context.inference?.type("y") == "float[1, 128]")
        // A renamed symbol is renamed everywhere too.
        let (renamed, _) = try run(twoInputs(), pins: ["input_ids": [.value(1), .symbol("seq")]])
        #expect(renamed.graph.inputs[1].type.description == "float[1, seq]")
        // Both pinned alike is fine; differently is a usage error naming the symbol and the input that pinned it.
        let (both, _) = try run(twoInputs(), pins: ["input_ids": [.value(1), .value(8)], "attention_mask": [.value(1), .value(8)]])
        #expect(both.graph.inputs[1].type.description == "float[1, 8]")
        let m0 = twoInputs().model
        #expect(throws: InputShapeError.symbolConflict(name: "input_ids", axis: 1, symbol: "sequence", pinned: "8", earlier: "16",
                                                      earlierInput: "attention_mask")) {
            try InputShapes(["input_ids": [.value(1), .value(8)], "attention_mask": [.value(1), .value(16)]]).apply(to: m0)
        }
    }

    @Test func rangesAndEnumerationsKeepTheSymbolAndRecordTheSizes() throws {
        let m = twoInputs().model
        let ranged = try InputShapes(parsing: ["input_ids=1,1..512@128"])
        #expect(ranged.recorded == "input_ids=1,1..512@128")
        let (pinned, ranges) = try ranged.applyWithRanges(to: m)
        #expect(pinned.graph.inputs.map(\.type.description) == ["float[1, sequence]", "float[1, sequence]"])
        #expect(ranges == ["sequence": DimRange(lower: 1, upper: 512, defaultValue: 128)])
        #expect(try InputShapes(parsing: ["x=2..9"]).ranges["x"]?[0] == DimRange(lower: 2, upper: 9, defaultValue: 2))
        let listed = try InputShapes(parsing: ["input_ids=1,128|1,256|2,512"])
        #expect(listed.recorded == "input_ids=1,128|1,256|2,512")
        let (p2, r2) = try listed.applyWithRanges(to: m)
        #expect(r2["sequence"] == DimRange(lower: 128, upper: 512, defaultValue: 128))
        #expect(try listed.symbolChoices(in: p2) == [["batch": 1, "sequence": 128], ["batch": 1, "sequence": 256], ["batch": 2, "sequence": 512]])
        #expect(throws: InputShapeError.badRange(name: "x", axis: 1, text: "9..2")) { try InputShapes(parsing: ["x=1,9..2"]) }
        #expect(throws: InputShapeError.badRange(name: "x", axis: 0, text: "1..4@5")) { try InputShapes(parsing: ["x=1..4@5"]) }
        #expect(throws: InputShapeError.badEnumeration(name: "x", text: "1,2|3")) { try InputShapes(parsing: ["x=1,2|3"]) }
        // Pinned through one input, ranged through the other: a contradiction.
        #expect(throws: InputShapeError.self) { try InputShapes(parsing: ["input_ids=1,8", "attention_mask=1,1..9"]).apply(to: m) }
    }

    @Test func intervalsCarryTheRangesThroughExpressions() throws {
        var b = ModelBuilder(opset: 17)
        b.input("x", .float, [1, "seq"])
        b.node("Concat", ["x", "x"], ["twice"], ["axis": 1])
        b.ints("starts", [1])
        b.ints("ends", [Int64(Int32.max)])
        b.ints("axes", [1])
        b.node("Slice", ["x", "starts", "ends", "axes"], ["tail"])
        b.outputs = ["twice", "tail"]
        var m = b.model
        m.graph = try GraphVerifier.verified(m.graph)
        let context = PassContext()
        context.symbolRanges = ["seq": DimRange(lower: 3, upper: 512)]
        _ = try Pipeline.infer.run(m, context: context)
        let inference = try #require(context.inference)
        func dim(_ name: String) -> Dim? {
            if case .tensor(let t)? = inference.types[name] { return t.shape?[1] }
            return nil
        }
        #expect(inference.interval(try #require(dim("twice"))) == DimInterval(lower: 6, upper: 1024))
        #expect(inference.interval(try #require(dim("tail"))) == DimInterval(lower: 2, upper: 511))
        #expect(inference.interval(.symbol("seq")) == DimInterval(lower: 3, upper: 512))
    }

    @Test func pinErrors() throws {
        var b = ModelBuilder()
        b.input("x", .float, ["batch", 3])
        b.ints("w", [1])
        b.inputs.append(ValueInfo(name: "w", type: tensorType(.int64, [.value(1)])))  // an overridable initializer
        b.node("Relu", ["x"], ["y"])
        let m = b.model
        #expect(throws: InputShapeError.unknownInput(name: "z", available: ["x"])) { try InputShapes(["z": [.value(1)]]).apply(to: m) }
        #expect(throws: InputShapeError.unknownInput(name: "w", available: ["x"])) { try InputShapes(["w": [.value(1)]]).apply(to: m) }
        #expect(throws: InputShapeError.rankMismatch(name: "x", modelRank: 2, pinnedRank: 1)) { try InputShapes(["x": [.value(1)]]).apply(to: m) }
        #expect(throws: InputShapeError.conflict(name: "x", axis: 1, modelDim: 3, pinned: "4")) {
            try InputShapes(["x": [.value(1), .value(4)]]).apply(to: m)
        }
        #expect(throws: InputShapeError.nonPositive(name: "x", axis: 0, value: "0")) { try InputShapes(parsing: ["x=0,3"]) }
        #expect(throws: InputShapeError.syntax("x")) { try InputShapes(parsing: ["x"]) }
        #expect(throws: InputShapeError.duplicate(name: "x")) { try InputShapes(parsing: ["x=1,3", "x=2,3"]) }
        let renamed = try InputShapes(parsing: ["x=n,3"]).apply(to: m)
        #expect(renamed.graph.inputs[0].type.description == "float[n, 3]")
        #expect(try InputShapes(parsing: ["a=1,2", "b=c"]).recorded == "a=1,2;b=c")
    }
}
