import Foundation
import GraphIR
import Ops
import Passes
import Testing

/// One test per op family: tiny graphs built in code, inferred, their types compared as text.
@Suite struct OpInferenceTests {
    @Test func elementwiseBroadcasting() throws {
        var b = ModelBuilder()
        b.input("x", .float, ["batch", "seq", 8])
        b.input("y", .float, [1, 8])
        b.input("z", .float, ["n", 1, 8])
        b.node("Add", ["x", "y"], ["a"])
        b.node("Mul", ["x", "z"], ["m"])
        b.node("Less", ["x", "y"], ["l"])
        b.node("Where", ["l", "x", "y"], ["w"])
        b.node("Relu", ["a"], ["r"])
        b.node("Max", ["x", "y", "z"], ["mx"])
        let r = try b.infer()
        #expect(r.type("a") == "float[batch, seq, 8]")
        #expect(r.type("m") == "float[unk__0, seq, 8]")  // batch against n: one of them, unknown which
        #expect(r.type("l") == "bool[batch, seq, 8]")
        #expect(r.type("w") == "float[batch, seq, 8]")
        #expect(r.type("r") == "float[batch, seq, 8]")
        #expect(r.type("mx") == "float[unk__1, seq, 8]")
        #expect(r.unresolved.isEmpty)
    }

    @Test func legacyBroadcastBeforeOpset7() throws {
        var b = ModelBuilder(opset: 6)
        b.input("x", .float, [2, 3, 4, 5])
        b.input("y", .float, [3, 4])
        b.node("Add", ["x", "y"], ["a"], ["broadcast": 1, "axis": 1])
        #expect(try b.infer().type("a") == "float[2, 3, 4, 5]")
    }

    @Test func incompatibleShapesAreReportedNotGuessed() throws {
        var b = ModelBuilder()
        b.input("x", .float, [2, 3])
        b.input("y", .float, [4])
        b.node("Add", ["x", "y"], ["a"], name: "bad_add")
        let r = try b.infer()
        #expect(r.type("a") == "?")
        #expect(r.unresolved.map(\.node) == ["bad_add"])
        #expect(r.unresolved[0].reason.contains("broadcast"))
    }

    @Test func reshapeZeroAndMinusOne() throws {
        var b = ModelBuilder(opset: 14)
        b.input("x", .float, ["batch", "seq", 64])
        b.ints("heads", [0, -1, 4, 16])
        b.ints("merge", [0, 0, -1])
        b.ints("zeros", [0, 64])
        b.node("Reshape", ["x", "heads"], ["h"])
        b.node("Reshape", ["h", "merge"], ["m"])
        b.node("Reshape", ["x", "zeros"], ["z"], ["allowzero": 0])
        b.node("Flatten", ["x"], ["f"], ["axis": -1])
        let r = try b.infer()
        #expect(r.type("h") == "float[batch, seq, 4, 16]")
        #expect(r.type("m") == "float[batch, seq, 64]")
        #expect(r.type("z") == "float[batch, 64]")
        #expect(r.type("f") == "float[batch*seq, 64]")
    }

    @Test("Squeeze and Unsqueeze: axes attribute before opset 13, input from 13", arguments: [11, 13])
    func squeezeUnsqueezeVersions(opset: Int64) throws {
        var b = ModelBuilder(opset: opset)
        b.input("x", .float, [1, "T", 1, 5])
        if opset < 13 {
            b.node("Squeeze", ["x"], ["s"], ["axes": [0, -2]])
            b.node("Unsqueeze", ["s"], ["u"], ["axes": [0, -1]])
        } else {
            b.ints("sq", [0, -2])
            b.ints("us", [0, -1])
            b.node("Squeeze", ["x", "sq"], ["s"])
            b.node("Unsqueeze", ["s", "us"], ["u"])
        }
        let r = try b.infer()
        #expect(r.type("s") == "float[T, 5]")
        #expect(r.type("u") == "float[1, T, 5, 1]")
        #expect(r.unresolved.isEmpty)
    }

    @Test func squeezeWithoutAxesNeedsKnownDims() throws {
        var b = ModelBuilder(opset: 13)
        b.input("x", .float, [1, 4, 1])
        b.input("y", .float, [1, "T"])
        b.node("Squeeze", ["x"], ["s"])
        b.node("Squeeze", ["y"], ["t"], name: "squeeze_symbolic")
        let r = try b.infer()
        #expect(r.type("s") == "float[4]")
        #expect(r.type("t") == "float[...]")
        #expect(r.unresolved.map(\.node) == ["squeeze_symbolic"])
    }

    @Test("Split: attribute (11), input (13), num_outputs (18)", arguments: [11, 13, 18])
    func splitVersions(opset: Int64) throws {
        var b = ModelBuilder(opset: opset)
        b.input("x", .float, ["N", 7])
        switch opset {
        case 11: b.node("Split", ["x"], ["a", "b", "c"], ["axis": 1, "split": [2, 2, 3]])
        case 13:
            b.ints("sizes", [2, 2, 3])
            b.node("Split", ["x", "sizes"], ["a", "b", "c"], ["axis": 1])
        default: b.node("Split", ["x"], ["a", "b", "c"], ["axis": 1, "num_outputs": 3])
        }
        let r = try b.infer()
        #expect(r.type("a") == "float[N, \(opset == 18 ? 3 : 2)]")
        #expect(r.type("c") == "float[N, \(opset == 18 ? 1 : 3)]")
    }

    @Test func splitSymbolicEqualParts() throws {
        var b = ModelBuilder(opset: 18)
        b.input("x", .float, ["N", "T"])
        b.node("Split", ["x"], ["a", "b"], ["axis": 1, "num_outputs": 2])
        let r = try b.infer()
        #expect(r.type("a") == "float[N, (T+1)/2]")
        #expect(r.type("b") == "float[N, T-(T+1)/2]")
    }

    @Test("Slice: attributes (9), inputs with steps (10+)", arguments: [9, 13])
    func sliceVersions(opset: Int64) throws {
        var b = ModelBuilder(opset: opset)
        b.input("x", .float, ["N", 10, "T"])
        if opset < 10 {
            b.node("Slice", ["x"], ["y"], ["starts": [1, 1], "ends": [Int(Int32.max), -1], "axes": [2, 1]])
        } else {
            b.ints("s", [1, 1])
            b.ints("e", [Int64(Int32.max), -1])
            b.ints("a", [2, 1])
            b.ints("st", [1, 3])
            b.node("Slice", ["x", "s", "e", "a", "st"], ["y"])
        }
        #expect(try b.infer().type("y") == "float[N, \(opset < 10 ? 8 : 3), T-1]")
    }

    @Test func sliceNegativeStepsAndClamping() throws {
        var b = ModelBuilder(opset: 13)
        b.input("x", .float, [10, "T"])
        b.ints("s", [-1, -1])
        b.ints("e", [Int64.min, Int64.min])
        b.ints("st", [-3, -1])
        b.node("Slice", ["x", "s", "e", "", "st"], ["y"])
        #expect(try b.infer().type("y") == "float[4, T]")
    }

    @Test func gatherTransposeConcatExpandTilePad() throws {
        var b = ModelBuilder(opset: 18)
        b.input("x", .float, ["N", 3, "W"])
        b.ints("idx", [0, 2, 1, 1], dims: [2, 2])
        b.ints("shape", [2, 1, 1, 1])
        b.ints("reps", [1, 2, 3])
        b.ints("pads", [1, 2, 3, 4])
        b.ints("padAxes", [1, -1])
        b.node("Gather", ["x", "idx"], ["g"], ["axis": 1])
        b.node("Transpose", ["x"], ["t"], ["perm": [2, 0, 1]])
        b.node("Concat", ["x", "x"], ["c"], ["axis": -1])
        b.node("Expand", ["x", "shape"], ["e"])
        b.node("Tile", ["x", "reps"], ["ti"])
        b.node("Pad", ["x", "pads", "", "padAxes"], ["p"])
        let r = try b.infer()
        #expect(r.type("g") == "float[N, 2, 2, W]")
        #expect(r.type("t") == "float[W, N, 3]")
        #expect(r.type("c") == "float[N, 3, W*2]")
        #expect(r.type("e") == "float[2, N, 3, W]")
        #expect(r.type("ti") == "float[N, 6, W*3]")
        #expect(r.type("p") == "float[N, 7, W+6]")
    }

    @Test("Pad: attribute (2) and input (11)", arguments: [2, 11])
    func padVersions(opset: Int64) throws {
        var b = ModelBuilder(opset: opset)
        b.input("x", .float, ["N", 4])
        if opset < 11 {
            b.node("Pad", ["x"], ["p"], ["pads": [0, 1, 0, 2]])
        } else {
            b.ints("pads", [0, 1, 0, 2])
            b.node("Pad", ["x", "pads"], ["p"])
        }
        #expect(try b.infer().type("p") == "float[N, 7]")
    }

    @Test("Reduce axes: attribute until ReduceSum-13 / ReduceMean-18, then an input", arguments: [11, 13, 18])
    func reduceVersions(opset: Int64) throws {
        var b = ModelBuilder(opset: opset)
        b.input("x", .float, ["N", 3, "H", "W"])
        b.ints("axes", [1, -1])
        b.node("ReduceSum", opset >= 13 ? ["x", "axes"] : ["x"], ["s"], opset >= 13 ? ["keepdims": 0] : ["axes": [1, -1], "keepdims": 0])
        b.node("ReduceMean", opset >= 18 ? ["x", "axes"] : ["x"], ["m"], opset >= 18 ? [:] : ["axes": [1, -1]])
        b.node("ReduceMax", ["x"], ["all"], ["keepdims": 0])
        let r = try b.infer()
        #expect(r.type("s") == "float[N, H]")
        #expect(r.type("m") == "float[N, 1, H, 1]")
        #expect(r.type("all") == "float[]")
    }

    @Test func reduceNoopWithEmptyAxesAndUnknownAxes() throws {
        var b = ModelBuilder(opset: 18)
        b.input("x", .float, ["N", 3])
        b.input("axes", .int64, [1])
        b.ints("none", [])
        b.node("ReduceL2", ["x", "none"], ["same"], ["noop_with_empty_axes": 1])
        b.node("ReduceProd", ["x", "axes"], ["dyn"], name: "dynamic_axes")
        b.node("ArgMax", ["x"], ["am"], ["axis": -1, "keepdims": 0])
        let r = try b.infer()
        #expect(r.type("same") == "float[N, 3]")
        #expect(r.type("dyn") == "float[unk__0, unk__1]")
        #expect(r.type("am") == "int64[N]")
        #expect(r.unresolved.map(\.node) == ["dynamic_axes"])
    }

    @Test("TopK: k attribute (1), K input (10)", arguments: [1, 10, 11])
    func topKVersions(opset: Int64) throws {
        var b = ModelBuilder(opset: opset)
        b.input("x", .float, ["N", 9])
        if opset < 10 {
            b.node("TopK", ["x"], ["v", "i"], ["k": 3])
        } else {
            b.ints("k", [3])
            b.node("TopK", ["x", "k"], ["v", "i"], ["axis": 1])
        }
        let r = try b.infer()
        #expect(r.type("v") == "float[N, 3]")
        #expect(r.type("i") == "int64[N, 3]")
    }

    @Test func convolutionAndPooling() throws {
        var b = ModelBuilder(opset: 19)
        b.input("x", .float, ["N", 3, "H", "W"])
        b.floats("w", Array(repeating: 0, count: 8 * 3 * 3 * 3), dims: [8, 3, 3, 3])
        b.floats("wt", Array(repeating: 0, count: 8 * 4 * 3 * 3), dims: [8, 4, 3, 3])
        b.node("Conv", ["x", "w"], ["c"], ["strides": [2, 2], "pads": [1, 1, 1, 1]])
        b.node("Conv", ["x", "w"], ["same"], ["auto_pad": "SAME_UPPER", "strides": [2, 3]])
        b.node("Conv", ["x", "w"], ["valid"], ["auto_pad": "VALID", "dilations": [2, 2]])
        b.node("MaxPool", ["c"], ["p", "pi"], ["kernel_shape": [2, 2], "strides": [2, 2]])
        b.node("AveragePool", ["c"], ["ceil"], ["kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1])
        b.node("GlobalAveragePool", ["c"], ["g"])
        b.node("ConvTranspose", ["c", "wt"], ["up"], ["strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]])
        let r = try b.infer()
        #expect(r.type("c") == "float[N, 8, (H+1)/2, (W+1)/2]")
        #expect(r.type("same") == "float[N, 8, (H+1)/2, (W+2)/3]")
        #expect(r.type("valid") == "float[N, 8, H-4, W-4]")
        #expect(r.type("p") == "float[N, 8, (H+1)/4, (W+1)/4]")
        #expect(r.type("pi") == "int64[N, 8, (H+1)/4, (W+1)/4]")
        #expect(r.type("g") == "float[N, 8, 1, 1]")
        #expect(r.type("up") == "float[N, 4, ((H+1)/2)*2, ((W+1)/2)*2]")
        #expect(r.type("ceil").hasPrefix("float[N, 8, "))
    }

    @Test func ceilModeDropsAWindowStartingInPadding() throws {
        var b = ModelBuilder(opset: 12)
        b.input("x", .float, [1, 1, 5, 5])
        b.node("MaxPool", ["x"], ["y"], ["kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1, "pads": [1, 1, 1, 1]])
        #expect(try b.infer().type("y") == "float[1, 1, 3, 3]")  // onnxruntime's answer (onnx 1.23 says 4)
    }

    @Test("Resize: scales (10), sizes (11), scales only (13), axes and aspect policy (18)", arguments: [10, 11, 13, 18])
    func resizeVersions(opset: Int64) throws {
        var b = ModelBuilder(opset: opset)
        b.input("x", .float, ["N", 3, "H", 8])
        switch opset {
        case 10:
            b.floats("scales", [1, 1, 2, 0.5])
            b.node("Resize", ["x", "scales"], ["y"])
            #expect(try b.infer().type("y") == "float[N, 3, H*2, 4]")
        case 11:
            b.floats("roi", [])
            b.floats("scales", [])
            b.ints("sizes", [1, 3, 16, 5])
            b.node("Resize", ["x", "roi", "scales", "sizes"], ["y"])
            #expect(try b.infer().type("y") == "float[1, 3, 16, 5]")
        case 13:
            b.floats("scales", [1, 1, 0.5, 1.5])
            b.node("Resize", ["x", "", "scales"], ["y"])
            #expect(try b.infer().type("y") == "float[N, 3, H/2, 12]")
        default:
            b.ints("sizes", [4, 4])
            b.node("Resize", ["x", "", "", "sizes"], ["y"], ["axes": [2, 3], "keep_aspect_ratio_policy": "stretch"])
            #expect(try b.infer().type("y") == "float[N, 3, 4, 4]")
        }
    }

    @Test func matMulGemmEinsum() throws {
        var b = ModelBuilder(opset: 13)
        b.input("a", .float, ["N", 1, "T", 4])
        b.input("v", .float, [4])
        b.input("m", .float, [3, 4, 5])
        b.input("g", .float, [4, "K"])
        b.floats("gw", Array(repeating: 0, count: 20), dims: [5, 4])
        b.node("MatMul", ["a", "m"], ["mm"])
        b.node("MatMul", ["v", "m"], ["vm"])
        b.node("Gemm", ["g", "gw"], ["gemm"], ["transA": 1, "transB": 1])
        b.node("Einsum", ["a", "m"], ["e"], ["equation": "...ij,bjk->...ik"])
        let r = try b.infer()
        #expect(r.type("mm") == "float[N, 3, T, 5]")
        #expect(r.type("vm") == "float[3, 5]")
        #expect(r.type("gemm") == "float[K, 5]")
        #expect(r.type("e") == "float[N, 1, T, 5]")
    }

    @Test func recurrentLayouts() throws {
        var b = ModelBuilder(opset: 14)
        b.input("x", .float, ["N", "T", 3])
        b.floats("w", Array(repeating: 0, count: 2 * 20 * 3), dims: [2, 20, 3])
        b.floats("r", Array(repeating: 0, count: 2 * 20 * 5), dims: [2, 20, 5])
        b.node("LSTM", ["x", "w", "r"], ["y", "h", "c"], ["direction": "bidirectional", "layout": 1])
        let r = try b.infer()
        #expect(r.type("y") == "float[N, T, 2, 5]")
        #expect(r.type("h") == "float[N, 2, 5]")
    }

    @Test func shapeStartEndAndSize() throws {
        var b = ModelBuilder(opset: 15)
        b.input("x", .float, ["N", 3, "H", "W"])
        b.node("Shape", ["x"], ["s"], ["start": -3, "end": -1])
        b.node("Size", ["x"], ["n"])
        let r = try b.infer()
        #expect(r.type("s") == "int64[2]")
        #expect(r.type("n") == "int64[]")
    }

    @Test func dataDependentCountsGetFreshSymbols() throws {
        var b = ModelBuilder(opset: 13)
        b.input("x", .float, [3, 4])
        b.node("NonZero", ["x"], ["nz"])
        b.node("Unique", ["x"], ["u", "i", "inv", "c"], ["axis": 0])
        let r = try b.infer()
        #expect(r.type("nz") == "int64[2, unk__0]")
        #expect(r.type("u") == "float[unk__1, 4]")
        #expect(r.type("inv") == "int64[3]")
        #expect(r.unresolved.isEmpty)
    }

    @Test func layerAndBatchNormalization() throws {
        var b = ModelBuilder(opset: 17)
        b.input("x", .float, ["N", "T", 8])
        b.floats("g", Array(repeating: 1, count: 8))
        b.node("LayerNormalization", ["x", "g"], ["y", "mean", "inv"], ["axis": -1])
        let r = try b.infer()
        #expect(r.type("y") == "float[N, T, 8]")
        #expect(r.type("mean") == "float[N, T, 1]")
    }

    @Test func opsetHistoryIsFollowed() throws {
        var b = ModelBuilder(opset: 13)
        b.input("x", .float, ["N", 8])
        b.floats("g", Array(repeating: 1, count: 8))
        b.node("LayerNormalization", ["x", "g"], ["y"], name: "too_new")
        let r = try b.infer()
        #expect(r.type("y") == "?")
        #expect(r.unresolved.first?.reason == "LayerNormalization exists from opset 17; the model imports ai.onnx 13")
    }

    @Test func unknownOpsAreListedNotGuessed() throws {
        var b = ModelBuilder()
        b.input("x", .float, ["N", 8])
        b.node("Relu", ["x"], ["r"])
        b.node("FancyOp", ["r"], ["f"], name: "fancy", domain: "com.example")
        b.node("Relu", ["f"], ["y"])
        var m = b.model
        m.opsetImports.append(OpsetImport(domain: "com.example", version: 1))
        m.graph = try GraphVerifier.verified(m.graph)
        let r = try ShapeInference.run(m)
        #expect(r.type("f") == "?")
        #expect(r.type("y") == "?")
        #expect(r.unresolved.map(\.node) == ["fancy", "#2"])
        #expect(r.unresolved[0].reason.contains("com.example.FancyOp"))
    }

    @Test func malformedAttributesGiveReasonsNotTraps() throws {
        var b = ModelBuilder()
        b.input("x", .float, ["N", 3, 8, 8])
        b.floats("w", Array(repeating: 0, count: 27), dims: [1, 3, 3, 3])
        b.ints("huge", [Int64.max, Int64.max, Int64.min, -5])
        b.node("Transpose", ["x"], ["t"], name: "bad_perm", ["perm": [0, 0, 1, 9]])
        b.node("Conv", ["x", "w"], ["c"], name: "bad_conv", ["kernel_shape": [-3, 3], "strides": [0, 1]])
        b.node("Reshape", ["x", "huge"], ["r"], name: "bad_reshape")
        b.node("Concat", ["x", "x"], ["cc"], name: "bad_axis", ["axis": Int(Int64.max)])
        b.node("Slice", ["x", "huge", "huge", "", "huge"], ["s"], name: "huge_slice")
        b.node("Gather", ["x", "huge"], ["g"], name: "bad_gather", ["axis": 7])
        b.node("Unsqueeze", ["x", "huge"], ["u"], name: "bad_unsqueeze")
        b.node("Range", ["huge", "huge", "huge"], ["rg"], name: "bad_range")
        let r = try b.infer()
        let names = Set(r.unresolved.map(\.node))
        #expect(names.isSuperset(of: ["bad_perm", "bad_conv", "bad_reshape", "bad_axis", "bad_gather", "bad_unsqueeze"]))
        #expect(r.type("t") == "?")
    }

    @Test func ifLoopScan() throws {
        let thenGraph = Graph(name: "then", outputs: [ValueInfo(name: "t", type: .unknown)],
                              nodes: [Node(opType: "Concat", inputs: ["x", "x"], outputs: ["t"], attributes: [Attribute(name: "axis", value: .int(0))])])
        let elseGraph = Graph(name: "else", outputs: [ValueInfo(name: "e", type: .unknown)],
                              nodes: [Node(opType: "Identity", inputs: ["x"], outputs: ["e"])])
        var b = ModelBuilder(opset: 13)
        b.input("c", .bool, [])
        b.input("x", .float, ["N", 3])
        b.node("If", ["c"], ["y"], ["then_branch": thenGraph, "else_branch": elseGraph])
        let body = Graph(name: "body",
                         inputs: [ValueInfo(name: "i", type: tensorType(.int64, [])), ValueInfo(name: "cin", type: tensorType(.bool, [])),
                                  ValueInfo(name: "v", type: .unknown)],
                         outputs: [ValueInfo(name: "cout", type: .unknown), ValueInfo(name: "v2", type: .unknown),
                                   ValueInfo(name: "sq", type: .unknown)],
                         nodes: [Node(opType: "Identity", inputs: ["cin"], outputs: ["cout"]),
                                 Node(opType: "Relu", inputs: ["v"], outputs: ["v2"]),
                                 Node(opType: "Mul", inputs: ["v2", "v2"], outputs: ["sq"])])
        b.ints("trips", [5], dims: [])
        b.node("Loop", ["trips", "", "x"], ["vf", "scan"], ["body": body])
        let r = try b.infer()
        #expect(r.type("y") == "float[unk__0, 3]")
        #expect(r.type("vf") == "float[N, 3]")
        #expect(r.type("scan") == "float[5, N, 3]")
        #expect(r.types["sq"]?.description == "float[N, 3]")
        let annotated = r.model.graph.nodes.first { $0.opType == "Loop" }!
        guard case .graph(let g)? = annotated.attribute("body")?.value else { Issue.record("no body"); return }
        #expect(g.valueInfo.isEmpty)  // every body value is a body output here
    }

    @Test func functionBodiesAreInferredAtEachCall() throws {
        let fn = Function(name: "Double", domain: "local", inputs: ["a"], outputs: ["b"],
                          nodes: [Node(opType: "Concat", inputs: ["a", "a"], outputs: ["b"], attributes: [Attribute(name: "axis", value: .int(-1))])],
                          opsetImports: [OpsetImport(domain: "", version: 17)])
        var b = ModelBuilder()
        b.input("x", .float, ["N", 3])
        b.node("Double", ["x"], ["y"], domain: "local")
        b.node("Double", ["y"], ["z"], domain: "local")
        var m = b.model
        m.functions = [fn]
        m.opsetImports.append(OpsetImport(domain: "local", version: 1))
        m.graph = try GraphVerifier.verified(m.graph)
        let r = try ShapeInference.run(m)
        #expect(r.type("y") == "float[N, 6]")
        #expect(r.type("z") == "float[N, 12]")
    }

    @Test func declaredValueInfoRefinesAndConflictsAreListed() throws {
        var b = ModelBuilder()
        b.input("x", .float, ["N", 8])
        b.node("NonZero", ["x"], ["nz"])
        b.node("Relu", ["x"], ["r"])
        b.valueInfo = [ValueInfo(name: "nz", type: tensorType(.int64, [.value(2), .symbol("count")])),
                       ValueInfo(name: "r", type: tensorType(.float, [.symbol("N"), .value(9)]))]
        let r = try b.infer()
        #expect(r.type("nz") == "int64[2, count]")
        #expect(r.type("r") == "float[N, 8]")
        #expect(r.conflicts.map(\.value) == ["r"])
    }

    @Test func registryCoversEnoughOps() {
        let ops = OpRegistry.standard.schemas
        #expect(ops.count >= 120)
        #expect(Set(ops.map(\.opType)).count == ops.count)
    }

    @Test func inferenceIsDeterministic() throws {
        var b = ModelBuilder(opset: 13)
        b.input("x", .float, ["a", 3])
        b.input("y", .float, ["b", 3])
        b.node("Add", ["x", "y"], ["s"])
        b.node("NonZero", ["s"], ["n"])
        let first = try b.infer(), second = try b.infer()
        #expect(first.values == second.values)
    }
}

@Suite struct DocumentationTests {
    @Test func shapesDocListsEveryCoveredOp() throws {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let text = try String(contentsOf: url.appendingPathComponent("docs/SHAPES.md"), encoding: .utf8)
        let missing = OpRegistry.standard.schemas.map(\.opType).filter { !text.contains("`\($0)`") }
        #expect(missing.isEmpty, "docs/SHAPES.md does not list \(missing)")
        #expect(text.contains("Ops covered (\(OpRegistry.standard.schemas.count);"))
    }

    @Test("a pinned symbol fixes the declared types of contrib-op outputs that inference cannot compute (issue 15)")
    func pinsReachDeclaredContribOutputs() throws {
        var b = ModelBuilder()
        b.input("x", .float, ["batch", "seq", 8])
        b.node("FastGelu", ["x"], ["g"], domain: "com.microsoft")
        b.node("Relu", ["g"], ["y"])
        b.valueInfo = [ValueInfo(name: "g", type: .tensor(TensorType(elementType: .float, shape: ModelBuilder.dims(["batch", "seq", 8]))))]
        let unpinned = try b.infer()
        #expect(unpinned.type("g") == "float[batch, seq, 8]")
        let pinned = try b.infer(pinned: ["x": [.value(1), .value(16), .value(8)]])
        #expect(pinned.type("g") == "float[1, 16, 8]")
        #expect(pinned.type("y") == "float[1, 16, 8]")
        // A symbol the pins leave symbolic stays so.
        let renamed = try b.infer(pinned: ["x": [.value(1), .symbol("seq"), .value(8)]])
        #expect(renamed.type("g") == "float[1, seq, 8]")
    }
}
