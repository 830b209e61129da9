import GraphIR
import Testing
@testable import MIL

/// Each pass on a tiny program: the program verifies after it, the interface is unchanged, and the ops are the
/// expected ones. (Numerics before/after are compared on exported models by tests/oracle/test_mil_passes.py.)
@Suite("MIL passes")
struct MILPassTests {
    func types(_ p: MILProgram) -> [String] { p.operations.map(\.type) }

    func run(_ pass: any MILPass.Type, _ p: MILProgram) throws {
        let inputs = p.inputs, outputs = p.outputs
        let outputTypes = p.outputs.map { p.types()[$0] }
        try MILVerifier.verify(p)
        pass.run(p)
        try MILVerifier.verify(p)
        #expect(p.inputs == inputs && p.outputs == outputs && p.outputs.map { p.types()[$0] } == outputTypes)
    }

    @Test("no-op elimination: identity, same-shape reshape, same-type cast, identity transpose; the output keeps its name")
    func noOps() throws {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
        b.op("relu", "r", [("x", "x")], f32x4)
        b.op("identity", "i", [("x", "r")], f32x4)
        b.const("shape", .ints([2, 4]))
        b.op("reshape", "s", [("x", "i"), ("shape", "shape")], f32x4)
        b.const("dtype", .scalar("fp32"))
        b.op("cast", "c", [("x", "s"), ("dtype", "dtype")], f32x4)
        b.const("perm", .ints([0, 1]))
        b.op("transpose", "t", [("x", "c"), ("perm", "perm")], f32x4)
        b.op("sigmoid", "g", [("x", "t")], f32x4)
        b.op("identity", "out", [("x", "g")], f32x4)
        b.program.outputs = ["out"]
        try run(NoOpElimination.self, b.program)
        DeadCodeElimination.run(b.program)
        #expect(types(b.program) == ["relu", "sigmoid"])
        #expect(b.program.operations.last?.outputs.first?.name == "out")
    }

    @Test("no-op elimination keeps a transpose that swaps equal dims, and an identity between an input and an output")
    func notNoOps() throws {
        let square = MILTensorType(.fp32, [3, 3])
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: square)])
        b.const("perm", .ints([1, 0]))
        b.op("transpose", "t", [("x", "x"), ("perm", "perm")], square)
        b.op("identity", "y", [("x", "x")], square)
        b.program.outputs = ["t", "y"]
        try run(NoOpElimination.self, b.program)
        #expect(types(b.program) == ["const", "transpose", "identity"])
    }

    @Test("dead-code elimination removes unused chains and their constants")
    func deadCode() throws {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
        b.const("w", MILConst(f32x4, .floats(Array(repeating: 1, count: 8))))
        b.op("add", "unused", [("x", "x"), ("y", "w")], f32x4)
        b.op("relu", "unused2", [("x", "unused")], f32x4)
        b.op("relu", "r", [("x", "x")], f32x4)
        b.program.outputs = ["r"]
        try run(DeadCodeElimination.self, b.program)
        #expect(types(b.program) == ["relu"])
    }

    @Test("const deduplication keeps one of equal constants (small and large, bytes and floats)")
    func constDedup() throws {
        let big = MILConst(f32x4, .bytes(LittleEndian.bytes(of: [Float](repeating: 0.5, count: 8))))
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
        b.const("a", big)
        b.const("b", big)
        b.const("c", MILConst(f32x4, .floats([Float](repeating: 0.25, count: 8))))
        b.op("add", "s", [("x", "x"), ("y", "a")], f32x4)
        b.op("mul", "t", [("x", "s"), ("y", "b")], f32x4)
        b.op("sub", "u", [("x", "t"), ("y", "c")], f32x4)
        b.program.outputs = ["u"]
        try run(ConstDeduplication.self, b.program)
        #expect(types(b.program) == ["const", "const", "add", "mul", "sub"])
        #expect(b.program.operations[3].usedVariables == ["s", "a"])
    }

    @Test("silu fusion: x · sigmoid(x) in either order")
    func silu() throws {
        for swapped in [false, true] {
            let b = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
            b.op("sigmoid", "g", [("x", "x")], f32x4)
            b.op("mul", "y", swapped ? [("x", "g"), ("y", "x")] : [("x", "x"), ("y", "g")], f32x4)
            b.program.outputs = ["y"]
            try run(FuseSilu.self, b.program)
            #expect(types(b.program) == ["silu"])
        }
    }

    @Test("gelu fusion: erf form, both orders of the 0.5 factor")
    func gelu() throws {
        for halfFirst in [false, true] {
            let b = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
            b.const("sqrt2", .float(1.4142135, .fp32))
            b.const("one", .float(1, .fp32))
            b.const("half", .float(0.5, .fp32))
            b.op("real_div", "d", [("x", "x"), ("y", "sqrt2")], f32x4)
            b.op("erf", "e", [("x", "d")], f32x4)
            b.op("add", "a", [("x", "e"), ("y", "one")], f32x4)
            if halfFirst {
                b.op("mul", "h", [("x", "x"), ("y", "half")], f32x4)
                b.op("mul", "y", [("x", "h"), ("y", "a")], f32x4)
            } else {
                b.op("mul", "m", [("x", "x"), ("y", "a")], f32x4)
                b.op("mul", "y", [("x", "m"), ("y", "half")], f32x4)
            }
            b.program.outputs = ["y"]
            try run(FuseGelu.self, b.program)
            DeadCodeElimination.run(b.program)
            #expect(types(b.program) == ["const", "gelu"])
        }
    }

    @Test("linear fusion: matmul with a constant weight plus a constant bias; the weight is transposed")
    func linear() throws {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: MILTensorType(.fp32, [1, 2, 3]))])
        b.const("w", MILConst(MILTensorType(.fp32, [3, 2]), .floats([1, 2, 3, 4, 5, 6])))
        b.const("bias", MILConst(MILTensorType(.fp32, [2]), .floats([10, 20])))
        b.const("no", .scalar(false))
        b.program.operations.append(MILOperation(type: "matmul", name: "m", inputs: [
            ("x", [.variable("x")]), ("y", [.variable("w")]), ("transpose_x", [.variable("no")]), ("transpose_y", [.variable("no")]),
        ], outputs: [MILVar(name: "m", type: MILTensorType(.fp32, [1, 2, 2]))]))
        b.op("add", "y", [("x", "m"), ("y", "bias")], MILTensorType(.fp32, [1, 2, 2]))
        b.program.outputs = ["y"]
        try run(FuseLinear.self, b.program)
        DeadCodeElimination.run(b.program)
        #expect(types(b.program) == ["const", "const", "linear"])
        let weight = try #require(b.program.operations.first { $0.name.hasSuffix("_weight") }?.value)
        #expect(weight.type.shape == [2, 3] && weight.floatValues == [1, 3, 5, 2, 4, 6])
    }

    @Test("the standard pipeline verifies after every pass and names the pass that breaks a program")
    func pipelineNamesBrokenPass() {
        enum Breaker: MILPass {
            static let name = "breaker"
            static func run(_ program: MILProgram) { program.operations[0].outputs[0].type = MILTensorType(.fp16, [2, 4]) }
        }
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
        b.op("relu", "r", [("x", "x")], f32x4)
        b.program.outputs = ["r"]
        #expect {
            try MILPipeline(name: "test", passes: [NoOpElimination.self, Breaker.self]).run(b.program)
        } throws: { error in
            (error as! MILPipelineError).pass == "breaker"
        }
    }

    @Test("identical blobs are stored once; removed constants are never written")
    func serializerSharesBlobs() {
        let big = MILConst(MILTensorType(.fp32, [16]), .floats((0..<16).map(Float.init)))
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: MILTensorType(.fp32, [16]))])
        b.const("a", big)
        b.const("b", big)
        b.op("add", "s", [("x", "x"), ("y", "a")], MILTensorType(.fp32, [16]))
        b.op("mul", "y", [("x", "s"), ("y", "b")], MILTensorType(.fp32, [16]))
        b.program.outputs = ["y"]
        let description = MILModelDescription(inputs: [FeatureDescription(name: "x", type: MILTensorType(.fp32, [16]))],
                                              outputs: [FeatureDescription(name: "y", type: MILTensorType(.fp32, [16]))])
        let serialized = MILSerializer.serialize(b.program, description: description)
        #expect(serialized.blobs.blobs.count == 1 && serialized.blobs.sharedCount == 1)
    }
}

@Suite("MIL layout chains")
struct MILLayoutChainTests {
    @Test("reshape, squeeze and expand_dims chains become one reshape; transposes compose (and cancel)")
    func chains() throws {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: MILTensorType(.fp32, [2, 3, 4]))])
        b.const("s1", .ints([6, 4]))
        b.op("reshape", "r1", [("x", "x"), ("shape", "s1")], MILTensorType(.fp32, [6, 4]))
        b.const("a", .ints([0]))
        b.op("expand_dims", "e", [("x", "r1"), ("axes", "a")], MILTensorType(.fp32, [1, 6, 4]))
        b.const("s2", .ints([3, 8]))
        b.op("reshape", "r2", [("x", "e"), ("shape", "s2")], MILTensorType(.fp32, [3, 8]))
        b.const("p", .ints([1, 0]))
        b.op("transpose", "t1", [("x", "r2"), ("perm", "p")], MILTensorType(.fp32, [8, 3]))
        b.op("transpose", "t2", [("x", "t1"), ("perm", "p")], MILTensorType(.fp32, [3, 8]))
        b.op("relu", "y", [("x", "t2")], MILTensorType(.fp32, [3, 8]))
        b.program.outputs = ["y"]
        try MILVerifier.verify(b.program)
        MergeLayoutChains.run(b.program)
        try MILVerifier.verify(b.program)
        NoOpElimination.run(b.program)
        DeadCodeElimination.run(b.program)
        try MILVerifier.verify(b.program)
        #expect(b.program.operations.filter { $0.type != "const" }.map(\.type) == ["reshape", "relu"])
    }

    @Test("a 20,000-op reshape chain merges in one linear walk")
    func longChain() throws {
        let n = 20_000
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: MILTensorType(.fp32, [4, 6]))])
        b.const("sa", .ints([6, 4]))
        b.const("sb", .ints([4, 6]))
        var last = "x"
        for i in 0..<n {
            let shape = i % 2 == 0 ? [6, 4] : [4, 6]
            last = b.op("reshape", "r\(i)", [("x", last), ("shape", i % 2 == 0 ? "sa" : "sb")], MILTensorType(.fp32, shape))
        }
        b.program.outputs = [last]
        MergeLayoutChains.run(b.program)
        try MILVerifier.verify(b.program)
        #expect(b.program.operations.filter { $0.type == "reshape" }.count == 1)
    }
}

@Suite("MIL layer_norm fusion")
struct MILLayerNormTests {
    @Test("the decomposed LayerNorm (mean, sub, pow, mean, add, sqrt, div, mul, add) becomes one layer_norm")
    func decomposed() throws {
        let t = MILTensorType(.fp32, [2, 4])
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: t)])
        b.const("ax", .ints([-1]))
        b.const("keep", .scalar(true))
        b.const("two", .float(2, .fp32))
        b.const("eps", .float(1e-5, .fp32))
        b.const("g", MILConst(MILTensorType(.fp32, [4]), .floats([1, 2, 3, 4])))
        b.const("bias", MILConst(MILTensorType(.fp32, [4]), .floats([0, 1, 0, 1])))
        let reduced = MILTensorType(.fp32, [2, 1])
        b.op("reduce_mean", "m", [("x", "x"), ("axes", "ax"), ("keep_dims", "keep")], reduced)
        b.op("sub", "d", [("x", "x"), ("y", "m")], t)
        b.op("pow", "sq", [("x", "d"), ("y", "two")], t)
        b.op("reduce_mean", "v", [("x", "sq"), ("axes", "ax"), ("keep_dims", "keep")], reduced)
        b.op("add", "ve", [("x", "v"), ("y", "eps")], reduced)
        b.op("sqrt", "sd", [("x", "ve")], reduced)
        b.op("real_div", "n", [("x", "d"), ("y", "sd")], t)
        b.op("mul", "ng", [("x", "n"), ("y", "g")], t)
        b.op("add", "y", [("x", "ng"), ("y", "bias")], t)
        b.program.outputs = ["y"]
        try MILVerifier.verify(b.program)
        FuseLayerNorm.run(b.program)
        DeadCodeElimination.run(b.program)
        try MILVerifier.verify(b.program)
        #expect(b.program.operations.filter { $0.type != "const" }.map(\.type) == ["layer_norm"])
        #expect(b.program.outputs == ["y"])
    }
}

@Suite("MIL transpose into matmul")
struct MILTransposeMatmulTests {
    @Test("a transpose of the last two dims read only by a matmul becomes its transpose_y flag")
    func fusesIntoFlag() throws {
        let b = ProgramBuilder(inputs: [MILVar(name: "q", type: MILTensorType(.fp32, [2, 5, 8])), MILVar(name: "k", type: MILTensorType(.fp32, [2, 7, 8]))])
        b.const("p", .ints([0, 2, 1]))
        b.op("transpose", "kt", [("x", "k"), ("perm", "p")], MILTensorType(.fp32, [2, 8, 7]))
        b.const("no", .scalar(false))
        b.op("matmul", "s", [("x", "q"), ("y", "kt"), ("transpose_x", "no"), ("transpose_y", "no")], MILTensorType(.fp32, [2, 5, 7]))
        b.program.outputs = ["s"]
        try MILVerifier.verify(b.program)
        FuseTransposeMatmul.run(b.program)
        DeadCodeElimination.run(b.program)
        try MILVerifier.verify(b.program)
        #expect(b.program.operations.filter { $0.type != "const" }.map(\.type) == ["matmul"])
    }
}
