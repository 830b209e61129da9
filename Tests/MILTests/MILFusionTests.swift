import GraphIR
import Testing
@testable import MIL

/// The fusions added for issue 24's second item: each on a tiny program before/after, verified and with the
/// interface unchanged; folded constants checked element by element. (Numerics against onnxruntime:
/// tests/oracle/test_mil_passes.py.)
@Suite("MIL fusions")
struct MILFusionTests {
    func computeTypes(_ p: MILProgram) -> [String] { p.operations.filter { $0.type != "const" }.map(\.type) }

    /// Runs `passes` then dead-code elimination, verifying after each and checking the interface is kept.
    func run(_ passes: [any MILPass.Type], _ p: MILProgram) throws {
        let inputs = p.inputs, outputs = p.outputs
        let outputTypes = p.outputs.map { p.types()[$0] }
        try MILVerifier.verify(p)
        for pass in passes + [DeadCodeElimination.self] {
            pass.run(p)
            try MILVerifier.verify(p)
        }
        #expect(p.inputs == inputs && p.outputs == outputs && p.outputs.map { p.types()[$0] } == outputTypes)
    }

    func constValue(_ p: MILProgram, _ op: MILOperation, _ param: String) -> [Float]? {
        guard let v = op.arguments(param)?.first?.variableName else { return nil }
        return p.constants()[v]?.floatValues
    }

    func string(_ p: MILProgram, _ op: MILOperation, _ param: String) -> String? {
        guard let v = op.arguments(param)?.first?.variableName, case .strings(let s)? = p.constants()[v]?.data else { return nil }
        return s.first
    }

    func close(_ a: [Float]?, _ b: [Float], _ tolerance: Float = 1e-5) -> Bool {
        guard let a, a.count == b.count else { return false }
        return zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    // MARK: gelu

    /// 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))) in torch.onnx's order (x · (x · x), 0.5 last) or Hugging
    /// Face NewGELU's (pow(x, 3), 0.5 · x first), with operands swapped in the second.
    func geluTanh(hf: Bool, dtype: MILDataType = .fp32) -> ProgramBuilder {
        let t = MILTensorType(dtype, [2, 4])
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: t)])
        b.const("k", .float(0.044715, dtype))
        b.const("c", .float(0.7978845608, dtype))
        b.const("one", .float(1, dtype))
        b.const("half", .float(0.5, dtype))
        if hf {
            b.const("three", .float(3, dtype))
            b.op("pow", "cube", [("x", "x"), ("y", "three")], t)
            b.op("mul", "kc", [("x", "k"), ("y", "cube")], t)
            b.op("add", "s", [("x", "kc"), ("y", "x")], t)
            b.op("mul", "in", [("x", "s"), ("y", "c")], t)
            b.op("tanh", "th", [("x", "in")], t)
            b.op("add", "a", [("x", "one"), ("y", "th")], t)
            b.op("mul", "hx", [("x", "half"), ("y", "x")], t)
            b.op("mul", "y", [("x", "hx"), ("y", "a")], t)
        } else {
            b.op("mul", "sq", [("x", "x"), ("y", "x")], t)
            b.op("mul", "cube", [("x", "x"), ("y", "sq")], t)
            b.op("mul", "kc", [("x", "cube"), ("y", "k")], t)
            b.op("add", "s", [("x", "x"), ("y", "kc")], t)
            b.op("mul", "in", [("x", "c"), ("y", "s")], t)
            b.op("tanh", "th", [("x", "in")], t)
            b.op("add", "a", [("x", "th"), ("y", "one")], t)
            b.op("mul", "xa", [("x", "x"), ("y", "a")], t)
            b.op("mul", "y", [("x", "half"), ("y", "xa")], t)
        }
        b.program.outputs = ["y"]
        return b
    }

    @Test("gelu tanh form: torch.onnx's and Hugging Face's orders, fp32 and fp16 constants → gelu TANH_APPROXIMATION")
    func geluTanhForms() throws {
        for hf in [false, true] {
            for dtype in [MILDataType.fp32, .fp16] {
                let b = geluTanh(hf: hf, dtype: dtype)
                #expect(computeTypes(b.program).count == (hf ? 8 : 9))
                try run([FuseGeluTanh.self], b.program)
                #expect(computeTypes(b.program) == ["gelu"])
                let gelu = try #require(b.program.operations.last)
                #expect(string(b.program, gelu, "mode") == "TANH_APPROXIMATION" && gelu.usedVariables.first == "x" && gelu.name == "y")
            }
        }
    }

    @Test("gelu tanh form with a wrong constant, or an intermediate read twice, is left alone")
    func geluTanhMismatch() throws {
        let b = geluTanh(hf: false)
        b.program.operations[b.program.operations.firstIndex { $0.name == "k" }!].value = .float(0.05, .fp32)
        try run([FuseGeluTanh.self], b.program)
        #expect(!computeTypes(b.program).contains("gelu"))
        let shared = geluTanh(hf: true)
        shared.program.outputs.append("th")
        try run([FuseGeluTanh.self], shared.program)
        #expect(!computeTypes(shared.program).contains("gelu"))
    }

    @Test("x · sigmoid(1.702 · x) → gelu SIGMOID_APPROXIMATION; x · sigmoid(x) stays for silu")
    func geluSigmoid() throws {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
        b.const("k", .float(1.702, .fp32))
        b.op("mul", "kx", [("x", "k"), ("y", "x")], f32x4)
        b.op("sigmoid", "g", [("x", "kx")], f32x4)
        b.op("mul", "y", [("x", "g"), ("y", "x")], f32x4)
        b.op("sigmoid", "g2", [("x", "y")], f32x4)
        b.op("mul", "z", [("x", "y"), ("y", "g2")], f32x4)
        b.program.outputs = ["z"]
        try run([FuseGeluSigmoid.self], b.program)
        #expect(computeTypes(b.program) == ["gelu", "sigmoid", "mul"])
        #expect(string(b.program, b.program.operations.first { $0.type == "gelu" }!, "mode") == "SIGMOID_APPROXIMATION")
    }

    // MARK: conv + bias / scale / batch_norm

    /// conv 2 → 2 channels (1×1 kernel, weight [[1, 2], [3, 4]], bias [1, −1]) on x [1, 2, 2, 2].
    func conv(_ b: ProgramBuilder, type: String = "conv", weight: String = "w", bias: Bool = true, groups: Int = 1) -> MILTensorType {
        let out = MILTensorType(.fp32, [1, 2, 2, 2])
        if b.program.types()[weight] == nil {
            b.const(weight, MILConst(MILTensorType(.fp32, [2, 2 / groups, 1, 1]), .floats(groups == 1 ? [1, 2, 3, 4] : [1, 2])))
        }
        if bias { b.const("b", MILConst(MILTensorType(.fp32, [2]), .floats([1, -1]))) }
        b.const("groups", .scalar(Int32(groups)))
        var inputs: [(String, String)] = [("x", "x"), ("weight", weight), ("groups", "groups")]
        if bias { inputs.append(("bias", "b")) }
        b.op(type, "c", inputs, out)
        return out
    }

    @Test("conv + add [1, C, 1, 1] + mul [C, 1, 1] + real_div by a scalar + batch_norm → one conv with folded weight and bias")
    func convChain() throws {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: MILTensorType(.fp32, [1, 2, 2, 2]))])
        let t = conv(b)
        b.const("add", MILConst(MILTensorType(.fp32, [1, 2, 1, 1]), .floats([10, 20])))
        b.const("scale", MILConst(MILTensorType(.fp32, [2, 1, 1]), .floats([2, 3])))
        b.const("two", .float(2, .fp32))
        for (n, v) in [("mean", [Float]([1, 2])), ("var", [3, 8]), ("gamma", [2, 3]), ("beta", [5, 6])] {
            b.const(n, MILConst(MILTensorType(.fp32, [2]), .floats(v)))
        }
        b.const("eps", .float(1, .fp32))
        b.op("add", "a", [("x", "c"), ("y", "add")], t)
        b.op("mul", "m", [("x", "scale"), ("y", "a")], t)
        b.op("real_div", "d", [("x", "m"), ("y", "two")], t)
        b.op("batch_norm", "y", [("x", "d"), ("mean", "mean"), ("variance", "var"), ("gamma", "gamma"), ("beta", "beta"), ("epsilon", "eps")], t)
        b.program.outputs = ["y"]
        try run([FuseConvBiasScale.self], b.program)
        #expect(computeTypes(b.program) == ["conv"])
        let c = try #require(b.program.operations.last)
        // Channel 0: ((conv + 1 + 10) · 2 / 2 − 1) · 2 / √4 + 5 → scale 1, shift 11 − 1 + 5 = 15.
        // Channel 1: ((conv − 1 + 20) · 3 / 2 − 2) · 3 / √9 + 6 → scale 1.5, shift 28.5 − 2 + 6 = 32.5.
        #expect(close(constValue(b.program, c, "weight"), [1, 2, 4.5, 6]))
        #expect(close(constValue(b.program, c, "bias"), [15, 32.5]))
        #expect(c.name == "y")
    }

    @Test("conv_transpose + mul: the weight is scaled along its output-channel axis (axis 1, per group); linear + sub folds into the bias")
    func convTransposeAndLinear() throws {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: MILTensorType(.fp32, [1, 2, 2, 2]))])
        let t = conv(b, type: "conv_transpose", bias: false, groups: 2)
        b.const("scale", MILConst(MILTensorType(.fp32, [1, 2, 1, 1]), .floats([10, 100])))
        b.op("mul", "y", [("x", "c"), ("y", "scale")], t)
        b.program.outputs = ["y"]
        try run([FuseConvBiasScale.self], b.program)
        #expect(computeTypes(b.program) == ["conv_transpose"])
        #expect(close(constValue(b.program, b.program.operations.last!, "weight"), [10, 200]))
        #expect(close(constValue(b.program, b.program.operations.last!, "bias"), [0, 0]))

        let l = ProgramBuilder(inputs: [MILVar(name: "x", type: MILTensorType(.fp32, [1, 3, 2]))])
        l.const("w", MILConst(MILTensorType(.fp32, [2, 2]), .floats([1, 2, 3, 4])))
        l.op("linear", "lin", [("x", "x"), ("weight", "w")], MILTensorType(.fp32, [1, 3, 2]))
        l.const("s", MILConst(MILTensorType(.fp32, [1, 1, 2]), .floats([5, 7])))
        l.op("sub", "y", [("x", "lin"), ("y", "s")], MILTensorType(.fp32, [1, 3, 2]))
        l.program.outputs = ["y"]
        try run([FuseConvBiasScale.self], l.program)
        #expect(computeTypes(l.program) == ["linear"])
        #expect(close(constValue(l.program, l.program.operations.last!, "bias"), [-5, -7]))
    }

    @Test("a compressed conv weight takes an add into its bias but keeps its mul; a constant broadcasting over other axes is left alone")
    func convCompressedAndNonChannel() throws {
        let b = ProgramBuilder(target: .iOS16, inputs: [MILVar(name: "x", type: MILTensorType(.fp32, [1, 2, 2, 2]))])
        let wType = MILTensorType(.fp32, [2, 2, 1, 1])
        b.program.operations.append(MILOperation(type: "constexpr_affine_dequantize", name: "w", inputs: [
            ("quantized_data", [.value(MILConst(MILTensorType(.int8, [2, 2, 1, 1]), .bytes(ByteView(copying: [1, 2, 3, 4]))))]),
            ("zero_point", [.value(MILConst(MILTensorType(.int8, []), .bytes(ByteView(copying: [0]))))]),
            ("scale", [.value(.float(0.5, .fp32))]), ("axis", [.value(.scalar(Int32(0)))]),
        ], outputs: [MILVar(name: "w", type: wType)]))
        let t = conv(b, weight: "w")
        b.const("add", MILConst(MILTensorType(.fp32, [2, 1, 1]), .floats([1, 2])))
        b.const("scale", .float(3, .fp32))
        b.const("row", MILConst(MILTensorType(.fp32, [1, 1, 2, 1]), .floats([1, 2])))
        b.op("add", "a", [("x", "c"), ("y", "add")], t)
        b.op("mul", "m", [("x", "a"), ("y", "scale")], t)
        b.op("add", "y", [("x", "m"), ("y", "row")], t)
        b.program.outputs = ["y"]
        try run([FuseConvBiasScale.self], b.program)
        #expect(computeTypes(b.program) == ["constexpr_affine_dequantize", "conv", "mul", "add"])
        let c = try #require(b.program.operations.first { $0.type == "conv" })
        #expect(close(constValue(b.program, c, "bias"), [2, 1]))
    }

    @Test("an fp16 conv weight (the package's fp16 encoding, kept bit for bit) takes an add into its bias but keeps its mul")
    func convFP16WeightKeepsMul() throws {
        let t = MILTensorType(.fp16, [1, 2, 2, 2])
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: t)])
        b.const("w", .floats([1, 2, 3, 4], .fp16, shape: [2, 2, 1, 1]))
        b.op("conv", "c", [("x", "x"), ("weight", "w")], t)
        b.const("add", .floats([1, 2], .fp16, shape: [2, 1, 1]))
        b.const("scale", .float(3, .fp16))
        b.op("add", "a", [("x", "c"), ("y", "add")], t)
        b.op("mul", "y", [("x", "a"), ("y", "scale")], t)
        b.program.outputs = ["y"]
        try run([FuseConvBiasScale.self], b.program)
        #expect(computeTypes(b.program) == ["conv", "mul"])
        #expect(constValue(b.program, b.program.operations.first { $0.type == "conv" }!, "weight") == [1, 2, 3, 4])
    }

    // MARK: linear on rank 4, scales into weights

    @Test("matmul + add on a rank-4 input with a constant 2-D weight → linear")
    func linearRank4() throws {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: MILTensorType(.fp32, [1, 2, 2, 3]))])
        b.const("w", MILConst(MILTensorType(.fp32, [3, 2]), .floats([1, 2, 3, 4, 5, 6])))
        b.const("bias", MILConst(MILTensorType(.fp32, [2]), .floats([10, 20])))
        let out = MILTensorType(.fp32, [1, 2, 2, 2])
        b.op("matmul", "m", [("x", "x"), ("y", "w")], out)
        b.op("add", "y", [("x", "bias"), ("y", "m")], out)
        b.program.outputs = ["y"]
        try run([FuseLinear.self], b.program)
        #expect(computeTypes(b.program) == ["linear"])
    }

    @Test("a scalar mul after linear → reshape → transpose, and a division of q·kᵀ, move into the projections' weights")
    func scaleIntoWeights() throws {
        let x = MILTensorType(.fp32, [1, 4, 2])
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: x)])
        b.const("wq", MILConst(MILTensorType(.fp32, [2, 2]), .floats([1, 2, 3, 4])))
        b.const("bq", MILConst(MILTensorType(.fp32, [2]), .floats([1, 1])))
        b.const("wk", MILConst(MILTensorType(.fp32, [2, 2]), .floats([1, 0, 0, 1])))
        b.op("linear", "q", [("x", "x"), ("weight", "wq"), ("bias", "bq")], x)
        b.const("shape", .ints([1, 4, 2, 1]))
        b.op("reshape", "qr", [("x", "q"), ("shape", "shape")], MILTensorType(.fp32, [1, 4, 2, 1]))
        b.const("perm", .ints([0, 2, 1, 3]))
        b.op("transpose", "qt", [("x", "qr"), ("perm", "perm")], MILTensorType(.fp32, [1, 2, 4, 1]))
        b.const("s", .float(0.5, .fp32))
        b.op("mul", "qs", [("x", "qt"), ("y", "s")], MILTensorType(.fp32, [1, 2, 4, 1]))
        b.op("linear", "k", [("x", "x"), ("weight", "wk")], x)
        b.op("reshape", "kr", [("x", "k"), ("shape", "shape")], MILTensorType(.fp32, [1, 4, 2, 1]))
        b.op("transpose", "kt", [("x", "kr"), ("perm", "perm")], MILTensorType(.fp32, [1, 2, 4, 1]))
        b.const("yes", .scalar(true))
        b.op("matmul", "scores", [("x", "qs"), ("y", "kt"), ("transpose_y", "yes")], MILTensorType(.fp32, [1, 2, 4, 4]))
        b.const("d", .float(4, .fp32))
        b.op("real_div", "y", [("x", "scores"), ("y", "d")], MILTensorType(.fp32, [1, 2, 4, 4]))
        b.op("relu", "z", [("x", "y")], MILTensorType(.fp32, [1, 2, 4, 4]))
        b.program.outputs = ["z"]
        try run([FuseMatmulScale.self], b.program)
        #expect(computeTypes(b.program) == ["linear", "reshape", "transpose", "linear", "reshape", "transpose", "matmul", "relu"])
        let q = try #require(b.program.operations.first { $0.name == "q" })
        // 0.5 and 1/4 both land in the query projection.
        #expect(close(constValue(b.program, q, "weight"), [0.125, 0.25, 0.375, 0.5]))
        #expect(close(constValue(b.program, q, "bias"), [0.125, 0.125]))
    }

    @Test("q · a and k · b feeding one matmul become one mul of the scores (a·b), or join a scalar division that follows")
    func operandScales() throws {
        for divided in [false, true] {
            let q = MILTensorType(.fp32, [1, 3, 4]), k = MILTensorType(.fp32, [1, 5, 4]), s = MILTensorType(.fp32, [1, 3, 5])
            let b = ProgramBuilder(inputs: [MILVar(name: "q", type: q), MILVar(name: "k", type: k)])
            b.const("a", .float(0.5, .fp32))
            b.const("bb", .float(0.25, .fp32))
            b.op("mul", "qs", [("x", "q"), ("y", "a")], q)
            b.op("mul", "ks", [("x", "bb"), ("y", "k")], k)
            b.const("yes", .scalar(true))
            b.op("matmul", "scores", [("x", "qs"), ("y", "ks"), ("transpose_y", "yes")], s)
            if divided {
                b.const("d", .float(2, .fp32))
                b.op("real_div", "y", [("x", "scores"), ("y", "d")], s)
            } else {
                b.op("softmax", "y", [("x", "scores")], s)
            }
            b.program.outputs = ["y"]
            try run([MergeMatmulOperandScales.self], b.program)
            let ops = b.program.operations
            if divided {
                #expect(computeTypes(b.program) == ["matmul", "real_div"])
                #expect(close(constValue(b.program, ops.last!, "y"), [16]))
            } else {
                #expect(computeTypes(b.program) == ["matmul", "mul", "softmax"])
                #expect(close(constValue(b.program, ops.first { $0.type == "mul" }!, "y"), [0.125]))
            }
        }
    }

    // MARK: scaled_dot_product_attention

    func attention(target: DeploymentTarget, scale: Float, mask: Bool) -> ProgramBuilder {
        let q = MILTensorType(.fp32, [1, 2, 3, 4]), k = MILTensorType(.fp32, [1, 2, 5, 4]), v = MILTensorType(.fp32, [1, 2, 5, 6])
        let s = MILTensorType(.fp32, [1, 2, 3, 5])
        var inputs = [MILVar(name: "q", type: q), MILVar(name: "k", type: k), MILVar(name: "v", type: v)]
        if mask { inputs.append(MILVar(name: "mask", type: MILTensorType(.fp32, [1, 1, 3, 5]))) }
        let b = ProgramBuilder(target: target, inputs: inputs)
        b.const("yes", .scalar(true))
        b.op("matmul", "qk", [("x", "q"), ("y", "k"), ("transpose_y", "yes")], s)
        b.const("scale", .float(scale, .fp32))
        b.op("mul", "scaled", [("x", "qk"), ("y", "scale")], s)
        if mask { b.op("add", "masked", [("x", "mask"), ("y", "scaled")], s) }
        b.const("axis", .scalar(Int32(-1)))
        b.op("softmax", "p", [("x", mask ? "masked" : "scaled"), ("axis", "axis")], s)
        b.op("matmul", "y", [("x", "p"), ("y", "v")], MILTensorType(.fp32, [1, 2, 3, 6]))
        b.program.outputs = ["y"]
        return b
    }

    @Test("iOS18: matmul → scale 1/√E → add mask → softmax → matmul becomes scaled_dot_product_attention; another scale pre-scales q")
    func sdpa() throws {
        let b = attention(target: .iOS18, scale: 0.5, mask: true)
        try run([FuseScaledDotProductAttention.self], b.program)
        #expect(computeTypes(b.program) == ["scaled_dot_product_attention"])
        #expect(b.program.operations.last!.usedVariables == ["q", "k", "v", "mask"])

        let other = attention(target: .iOS18, scale: 0.125, mask: false)
        try run([FuseScaledDotProductAttention.self], other.program)
        #expect(computeTypes(other.program) == ["mul", "scaled_dot_product_attention"])
        let mul = try #require(other.program.operations.first { $0.type == "mul" })
        #expect(close(constValue(other.program, mul, "y"), [0.25]))

        let old = attention(target: .iOS17, scale: 0.5, mask: true)
        try run([FuseScaledDotProductAttention.self], old.program)
        #expect(computeTypes(old.program) == ["matmul", "mul", "add", "softmax", "matmul"])
    }

    @Test("iOS18: a key that arrives transposed (heads' transpose merged with kᵀ) is transposed to [B, H, S, E] instead")
    func sdpaTransposedKey() throws {
        let b = ProgramBuilder(target: .iOS18, inputs: [MILVar(name: "q", type: MILTensorType(.fp32, [1, 2, 3, 4])),
                                                        MILVar(name: "k", type: MILTensorType(.fp32, [1, 5, 2, 4])),
                                                        MILVar(name: "v", type: MILTensorType(.fp32, [1, 2, 5, 6]))])
        b.const("perm", .ints([0, 2, 3, 1]))
        b.op("transpose", "kt", [("x", "k"), ("perm", "perm")], MILTensorType(.fp32, [1, 2, 4, 5]))
        b.op("matmul", "qk", [("x", "q"), ("y", "kt")], MILTensorType(.fp32, [1, 2, 3, 5]))
        b.const("d", .float(2, .fp32))
        b.op("real_div", "s", [("x", "qk"), ("y", "d")], MILTensorType(.fp32, [1, 2, 3, 5]))
        b.op("softmax", "p", [("x", "s")], MILTensorType(.fp32, [1, 2, 3, 5]))
        b.op("matmul", "y", [("x", "p"), ("y", "v")], MILTensorType(.fp32, [1, 2, 3, 6]))
        b.program.outputs = ["y"]
        try run([FuseScaledDotProductAttention.self], b.program)
        #expect(computeTypes(b.program) == ["transpose", "scaled_dot_product_attention"])
        let t = try #require(b.program.operations.first { $0.type == "transpose" })
        #expect(t.outputs[0].type.shape == [1, 2, 5, 4])
        #expect(b.program.constants()[t.arguments("perm")!.first!.variableName!]?.intValues == [0, 2, 1, 3])
    }

    // MARK: instance_norm

    @Test("mean/sub/pow/mean/add/sqrt/div over the spatial axes of NCHW, · gamma [C, 1, 1], + beta [1, C, 1, 1] → instance_norm with [C] parameters; over the channel axis it is layer_norm")
    func instanceNorm() throws {
        for spatial in [true, false] {
            let t = MILTensorType(.fp32, [1, 2, 3, 3])
            let reduced = MILTensorType(.fp32, spatial ? [1, 2, 1, 1] : [1, 1, 3, 3])
            let b = ProgramBuilder(inputs: [MILVar(name: "x", type: t)])
            b.const("ax", .ints(spatial ? [2, 3] : [1]))
            b.const("keep", .scalar(true))
            b.const("two", .float(2, .fp32))
            b.const("eps", .float(1e-5, .fp32))
            b.const("g", MILConst(MILTensorType(.fp32, [2, 1, 1]), .floats([2, 3])))
            b.const("bias", MILConst(MILTensorType(.fp32, [1, 2, 1, 1]), .floats([4, 5])))
            b.op("reduce_mean", "m", [("x", "x"), ("axes", "ax"), ("keep_dims", "keep")], reduced)
            b.op("sub", "d", [("x", "x"), ("y", "m")], t)
            b.op("pow", "sq", [("x", "d"), ("y", "two")], t)
            b.op("reduce_mean", "v", [("x", "sq"), ("axes", "ax"), ("keep_dims", "keep")], reduced)
            b.op("add", "ve", [("x", "v"), ("y", "eps")], reduced)
            b.op("sqrt", "sd", [("x", "ve")], reduced)
            b.op("real_div", "n", [("x", "d"), ("y", "sd")], t)
            b.op("mul", "ng", [("x", "g"), ("y", "n")], t)
            b.op("add", "y", [("x", "ng"), ("y", "bias")], t)
            b.program.outputs = ["y"]
            try run([FuseInstanceNorm.self, FuseLayerNorm.self], b.program)
            if spatial {
                #expect(computeTypes(b.program) == ["instance_norm"])
                let op = b.program.operations.last!
                #expect(constValue(b.program, op, "gamma") == [2, 3] && constValue(b.program, op, "beta") == [4, 5])
            } else {
                #expect(computeTypes(b.program) == ["layer_norm"])  // ConvNeXt's channel LayerNorm: gamma [C, 1, 1] is its normalized shape
            }
        }
    }

    // MARK: pad into conv

    @Test("a zero constant pad on the spatial dims before a conv becomes the conv's padding; a pad of channels stays")
    func padIntoConv() throws {
        for channels in [false, true] {
            let b = ProgramBuilder(inputs: [MILVar(name: "x", type: MILTensorType(.fp32, [1, 2, 2, 2]))])
            b.const("amounts", .ints(channels ? [1, 1, 0, 0, 0, 0] : [1, 0, 0, 2]))
            let padded = MILTensorType(.fp32, channels ? [1, 4, 2, 2] : [1, 2, 3, 4])
            b.op("pad", "p", [("x", "x"), ("pad", "amounts")], padded)
            b.const("w", MILConst(MILTensorType(.fp32, [1, channels ? 4 : 2, 1, 1]), .floats(channels ? [1, 1, 1, 1] : [1, 1])))
            b.const("pad_type", .scalar("custom"))
            b.const("convpad", .ints([0, 1, 1, 0]))
            b.op("conv", "y", [("x", "p"), ("weight", "w"), ("pad_type", "pad_type"), ("pad", "convpad")],
                 MILTensorType(.fp32, channels ? [1, 1, 3, 3] : [1, 1, 4, 5]))
            b.program.outputs = ["y"]
            try run([FusePadConv.self], b.program)
            #expect(computeTypes(b.program) == (channels ? ["pad", "conv"] : ["conv"]))
            if !channels {
                let c = b.program.operations.last!
                #expect(b.program.constants()[c.arguments("pad")!.first!.variableName!]?.intValues == [1, 1, 1, 2])
            }
        }
    }

    // MARK: channel shuffle

    @Test("concat on channels → reshape [B, n, C, H, W] → transpose [0, 2, 1, 3, 4] → reshape → concat with interleave")
    func concatInterleave() throws {
        let t = MILTensorType(.fp32, [1, 4, 3, 3])
        let b = ProgramBuilder(inputs: [MILVar(name: "a", type: t), MILVar(name: "b", type: t)])
        b.const("axis", .scalar(Int32(1)))
        b.program.operations.append(MILOperation(type: "concat", name: "c", inputs: [("values", [.variable("a"), .variable("b")]),
                                                                                    ("axis", [.variable("axis")])],
                                                 outputs: [MILVar(name: "c", type: MILTensorType(.fp32, [1, 8, 3, 3]))]))
        b.const("s1", .ints([1, 2, 4, 3, 3]))
        b.op("reshape", "r1", [("x", "c"), ("shape", "s1")], MILTensorType(.fp32, [1, 2, 4, 3, 3]))
        b.const("perm", .ints([0, 2, 1, 3, 4]))
        b.op("transpose", "t", [("x", "r1"), ("perm", "perm")], MILTensorType(.fp32, [1, 4, 2, 3, 3]))
        b.const("s2", .ints([1, 8, 3, 3]))
        b.op("reshape", "y", [("x", "t"), ("shape", "s2")], MILTensorType(.fp32, [1, 8, 3, 3]))
        b.program.outputs = ["y"]
        try run([FuseConcatInterleave.self], b.program)
        #expect(computeTypes(b.program) == ["concat"])
        let c = try #require(b.program.operations.last)
        #expect(c.name == "y" && c.usedVariables.prefix(2) == ["a", "b"])
        #expect(b.program.constants()[c.arguments("interleave")!.first!.variableName!].map { if case .bools(let v) = $0.data { v } else { [] } } == [true])
    }

    @Test("slices tiling one axis become one split (outputs in range order); slices with a gap stay")
    func slicesToSplit() throws {
        for gap in [false, true] {
            let t = MILTensorType(.fp32, [1, 6, 2])
            let b = ProgramBuilder(inputs: [MILVar(name: "x", type: t)])
            b.const("b2", .ints([0, gap ? 3 : 2, 0]))
            b.const("e2", .ints([1, 6, 2]))
            b.op("slice_by_index", "hi", [("x", "x"), ("begin", "b2"), ("end", "e2")], MILTensorType(.fp32, [1, gap ? 3 : 4, 2]))
            b.const("b1", .ints([0, 0, 0]))
            b.const("e1", .ints([1, 2, 2]))
            b.op("slice_by_index", "lo", [("x", "x"), ("begin", "b1"), ("end", "e1")], MILTensorType(.fp32, [1, 2, 2]))
            b.op("relu", "y", [("x", "lo")], MILTensorType(.fp32, [1, 2, 2]))
            b.op("relu", "z", [("x", "hi")], MILTensorType(.fp32, [1, gap ? 3 : 4, 2]))
            b.program.outputs = ["y", "z"]
            try run([FuseSlicesToSplit.self], b.program)
            if gap {
                #expect(computeTypes(b.program) == ["slice_by_index", "slice_by_index", "relu", "relu"])
            } else {
                #expect(computeTypes(b.program) == ["split", "relu", "relu"])
                #expect(b.program.operations.first { $0.type == "split" }!.outputs.map(\.name) == ["lo", "hi"])
            }
        }
    }

    // MARK: linear work

    /// n blocks of erf GELU → decomposed layer norm → matmul + add, chained.
    func blocks(_ n: Int) -> MILProgram {
        let t = MILTensorType(.fp32, [2, 4]), reduced = MILTensorType(.fp32, [2, 1])
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: t)])
        b.const("sqrt2", .float(1.4142135, .fp32))
        b.const("one", .float(1, .fp32))
        b.const("half", .float(0.5, .fp32))
        b.const("ax", .ints([-1]))
        b.const("keep", .scalar(true))
        b.const("two", .float(2, .fp32))
        b.const("eps", .float(1e-5, .fp32))
        b.const("w", MILConst(MILTensorType(.fp32, [4, 4]), .floats((0..<16).map(Float.init))))
        b.const("bias", MILConst(MILTensorType(.fp32, [4]), .floats([1, 2, 3, 4])))
        var last = "x"
        for i in 0..<n {
            b.op("real_div", "d\(i)", [("x", last), ("y", "sqrt2")], t)
            b.op("erf", "e\(i)", [("x", "d\(i)")], t)
            b.op("add", "a\(i)", [("x", "e\(i)"), ("y", "one")], t)
            b.op("mul", "m\(i)", [("x", last), ("y", "a\(i)")], t)
            b.op("mul", "g\(i)", [("x", "m\(i)"), ("y", "half")], t)
            b.op("reduce_mean", "mu\(i)", [("x", "g\(i)"), ("axes", "ax"), ("keep_dims", "keep")], reduced)
            b.op("sub", "c\(i)", [("x", "g\(i)"), ("y", "mu\(i)")], t)
            b.op("pow", "sq\(i)", [("x", "c\(i)"), ("y", "two")], t)
            b.op("reduce_mean", "v\(i)", [("x", "sq\(i)"), ("axes", "ax"), ("keep_dims", "keep")], reduced)
            b.op("add", "ve\(i)", [("x", "v\(i)"), ("y", "eps")], reduced)
            b.op("sqrt", "sd\(i)", [("x", "ve\(i)")], reduced)
            b.op("real_div", "n\(i)", [("x", "c\(i)"), ("y", "sd\(i)")], t)
            b.op("matmul", "mm\(i)", [("x", "n\(i)"), ("y", "w")], t)
            last = b.op("add", "l\(i)", [("x", "mm\(i)"), ("y", "bias")], t)
        }
        b.program.outputs = [last]
        return b.program
    }

    @Test("gelu, layer_norm and linear fusion do work linear in the program: doubling it doubles the ops visited")
    func linearWork() throws {
        var visits: [Int] = []
        for n in [200, 400] {
            let p = blocks(n)
            for pass in [FuseGelu.self, FuseLayerNorm.self, FuseLinear.self] as [any MILPass.Type] { pass.run(p) }
            DeadCodeElimination.run(p)
            try MILVerifier.verify(p)
            #expect(p.histogram["gelu"] == n && p.histogram["layer_norm"] == n && p.histogram["linear"] == n)
            visits.append(p.rewriteVisits)
        }
        // Linear: twice the blocks, at most about twice the visits (a rescan per fusion would make it four times).
        #expect(visits[0] > 0 && visits[1] <= visits[0] * 21 / 10, "visits \(visits)")
    }
}
