import CoreMLPackage
import GraphIR
import MIL
import Testing
@testable import Evaluate

/// A program of one op `type` over fp32 inputs, with constant parameters.
private func program(_ type: String, inputs: [(String, [Int])], params: [(String, MILConst)] = [], output: [Int],
                     dtype: MILDataType = .fp32) -> MILProgram {
    let vars = inputs.map { MILVar(name: $0.0, type: MILTensorType(.fp32, $0.1)) }
    var args: [(name: String, arguments: [MILArgument])] = inputs.map { ($0.0, [.variable($0.0)]) }
    args += params.map { ($0.0, [.value($0.1)]) }
    let op = MILOperation(type: type, name: "op", inputs: args, outputs: [MILVar(name: "y", type: MILTensorType(dtype, output))])
    return MILProgram(target: .iOS18, inputs: vars, operations: [op], outputs: ["y"])
}

private func run(_ p: MILProgram, _ inputs: [String: EvalTensor], precision: ComputePrecision = .asDeclared) throws -> EvalTensor {
    try Evaluator(p, precision: precision).run(inputs)[0].value
}

/// Deterministic values in [-1, 1).
private func values(_ n: Int, seed: UInt64) -> [Float] {
    var g = RandomInputs.Generator(seed: seed)
    return (0..<n).map { _ in Float(Double(g.next() >> 40) / Double(1 << 24)) * 2 - 1 }
}

@Suite("Evaluate")
struct EvaluatorTests {
    @Test("every op the MIL registry defines (what the exporter may emit) has a kernel (control flow: the evaluator itself)")
    func everyRegisteredOpHasAKernel() {
        let missing = MILOpRegistry.definitions.keys.sorted().filter { Kernels.table[$0] == nil && !Evaluator.controlFlow.contains($0) }
        #expect(missing.isEmpty, "no kernel for \(missing)")
        #expect(MILOpRegistry.definitions.count > 100)
    }

    @Test("matmul through BLAS equals the naive triple loop, with broadcast batch dims and transposes")
    func matmulMatchesNaive() throws {
        let (b, m, k, n) = (3, 5, 7, 4)
        let x = values(b * m * k, seed: 1), y = values(k * n, seed: 2)
        let p = program("matmul", inputs: [("x", [b, m, k]), ("y", [k, n])], output: [b, m, n])
        let out = try run(p, ["x": EvalTensor(floats: x, shape: [b, m, k]), "y": EvalTensor(floats: y, shape: [k, n])]).floats
        for bi in 0..<b { for i in 0..<m { for j in 0..<n {
            var s: Float = 0
            for q in 0..<k { s += x[(bi * m + i) * k + q] * y[q * n + j] }
            #expect(abs(out[(bi * m + i) * n + j] - s) < 1e-5)
        } } }
        // transpose_y: y given as [n, k].
        let yt = (0..<(n * k)).map { y[($0 % k) * n + $0 / k] }
        let pt = program("matmul", inputs: [("x", [b, m, k]), ("y", [n, k])], params: [("transpose_y", .scalar(true))], output: [b, m, n])
        let outT = try run(pt, ["x": EvalTensor(floats: x, shape: [b, m, k]), "y": EvalTensor(floats: yt, shape: [n, k])]).floats
        for i in out.indices { #expect(abs(out[i] - outT[i]) < 1e-5) }
    }

    @Test("conv (im2col + GEMM) equals direct convolution: padding, stride, dilation, groups")
    func convMatchesDirect() throws {
        let (cin, cout, h, w, k, groups, stride, dilation) = (4, 6, 7, 6, 3, 2, 2, 1)
        let cg = cin / groups
        let x = values(cin * h * w, seed: 3), weight = values(cout * cg * k * k, seed: 4), bias = values(cout, seed: 5)
        let pad = [1, 2, 0, 1]
        let oh = (h + pad[0] + pad[1] - (k - 1) * dilation - 1) / stride + 1, ow = (w + pad[2] + pad[3] - (k - 1) * dilation - 1) / stride + 1
        let p = program("conv", inputs: [("x", [1, cin, h, w])], params: [
            ("weight", .floats(weight, .fp32, shape: [cout, cg, k, k])), ("bias", .floats(bias, .fp32, shape: [cout])),
            ("strides", .ints([stride, stride])), ("dilations", .ints([dilation, dilation])), ("pad_type", .scalar("custom")),
            ("pad", .ints(pad)), ("groups", .scalar(Int32(groups))),
        ], output: [1, cout, oh, ow])
        let out = try run(p, ["x": EvalTensor(floats: x, shape: [1, cin, h, w])]).floats
        for o in 0..<cout {
            let g = o / (cout / groups)
            for i in 0..<oh { for j in 0..<ow {
                var s = bias[o]
                for c in 0..<cg { for u in 0..<k { for v in 0..<k {
                    let y = i * stride - pad[0] + u * dilation, z = j * stride - pad[2] + v * dilation
                    guard y >= 0, y < h, z >= 0, z < w else { continue }
                    s += x[((g * cg + c) * h + y) * w + z] * weight[((o * cg + c) * k + u) * k + v]
                } } }
                #expect(abs(out[(o * oh + i) * ow + j] - s) < 1e-4)
            } }
        }
    }

    @Test("fp16 compute rounds each fp16 output to the nearest fp16, ties to even; fp32 precision does not")
    func fp16Rounding() throws {
        // 1 + 2^-11 is halfway between two fp16 values: ties to even gives 1; 1 + 3·2^-11 rounds up to 1 + 2^-9.
        let p = MILProgram(target: .iOS18, inputs: [MILVar(name: "x", type: MILTensorType(.fp16, [3]))], operations: [
            MILOperation(type: "add", name: "a", inputs: [("x", [.variable("x")]), ("y", [.value(.float(0, .fp16))])],
                         outputs: [MILVar(name: "y", type: MILTensorType(.fp16, [3]))]),
        ], outputs: ["y"])
        #expect(Rounding.halfBits(1 + 0x1p-11) == 0x3C00)
        #expect(Rounding.halfBits(1 + 3 * 0x1p-11) == 0x3C02)
        #expect(Rounding.halfBits(70000) == 0x7C00)  // overflow becomes inf, as fp16 compute overflows
        var v: [Float] = [1 + 0x1p-11, 1 + 3 * 0x1p-11, 65504, 1e-8]
        Rounding.toHalf(&v)
        #expect(v == [1, 1 + 0x1p-9, 65504, 0])
        let out = try run(p, ["x": EvalTensor(floats: [1 + 3 * 0x1p-11, 2, 3], shape: [3])])
        #expect(out.floats == [1 + 0x1p-9, 2, 3])
        let exact = try run(p, ["x": EvalTensor(floats: [1 + 3 * 0x1p-11, 2, 3], shape: [3])], precision: .fp32)
        // The input itself is declared fp16: fp32 precision keeps it unrounded.
        #expect(exact.floats[0] == 1 + 3 * 0x1p-11)
    }

    @Test("constexpr_blockwise_shift_scale and constexpr_lut_to_dense decode like iOS18/compression.py")
    func constexprDecoding() throws {
        // data int4 [2, 4] packed LSB first; scale [2, 2] (blocks of 2 along axis 1); offset [2, 2].
        let q: [Int8] = [-8, 7, 1, -1, 3, 0, -2, 5]
        var packed = [UInt8](repeating: 0, count: 4)
        for (i, v) in q.enumerated() { packed[i / 2] |= (UInt8(bitPattern: v) & 0xF) << UInt8((i % 2) * 4) }
        let scale: [Float] = [0.5, 2, 1, 0.25], offset: [Float] = [1, 0, -1, 2]
        let op = MILOperation(type: "constexpr_blockwise_shift_scale", name: "w", inputs: [
            ("data", [.value(MILConst(MILTensorType(.int4, [2, 4]), .bytes(ByteView(copying: packed))))]),
            ("scale", [.value(.floats(scale, .fp32, shape: [2, 2]))]), ("offset", [.value(.floats(offset, .fp32, shape: [2, 2]))]),
        ], outputs: [MILVar(name: "y", type: MILTensorType(.fp32, [2, 4]))])
        let p = MILProgram(target: .iOS18, inputs: [], operations: [op], outputs: ["y"])
        let out = try Evaluator(p).run([:])[0].value.floats
        let expected = (0..<8).map { i -> Float in let b = (i / 4) * 2 + (i % 4) / 2; return scale[b] * (Float(q[i]) - offset[b]) }
        #expect(out == expected)
        // lut: indices uint2 [4], two groups of 2 along axis 0, each a 4-entry palette.
        let indices: [UInt8] = [3, 0, 1, 2]
        let bits = UInt8(indices[0] | indices[1] << 2 | indices[2] << 4 | indices[3] << 6)
        let lut: [Float] = [0, 1, 2, 3, 10, 11, 12, 13]
        let lop = MILOperation(type: "constexpr_lut_to_dense", name: "l", inputs: [
            ("indices", [.value(MILConst(MILTensorType(.uint2, [4]), .bytes(ByteView(copying: [bits]))))]),
            ("lut", [.value(.floats(lut, .fp32, shape: [2, 4, 1]))]),
        ], outputs: [MILVar(name: "y", type: MILTensorType(.fp32, [4]))])
        let lp = MILProgram(target: .iOS18, inputs: [], operations: [lop], outputs: ["y"])
        #expect(try Evaluator(lp).run([:])[0].value.floats == [3, 0, 11, 12])
    }

    @Test("an .npz written by mlpkg reads back: every element type, byte-identical twice")
    func npzRoundTrip() throws {
        let arrays: [(name: String, value: EvalTensor)] = [
            ("a", EvalTensor(floats: [1.5, -2, 3e-3], shape: [3])),
            ("b", EvalTensor(floats: [0.5, 65504], shape: [2, 1], dtype: .fp16)),
            ("c", EvalTensor(ints: [-3, 7, 1 << 30], shape: [1, 3])),
            ("d", EvalTensor(ints: [1, 0], shape: [2], dtype: .bool)),
            ("e", EvalTensor(floats: [42], shape: [])),
        ]
        let bytes = NumPyArchive.npz(arrays)
        #expect(bytes == NumPyArchive.npz(arrays))
        let back = try NumPyArchive.arrays(npz: bytes, name: "t.npz")
        #expect(back.map(\.name) == arrays.map(\.name))
        for (x, y) in zip(arrays, back) {
            #expect(x.value.shape == y.value.shape && x.value.dtype == y.value.dtype)
            #expect(x.value.floats == y.value.floats)
        }
        #expect(throws: NumPyArchive.Failure.self) { try NumPyArchive.arrays(npz: Array(bytes.prefix(40)), name: "cut.npz") }
    }

    @Test("random inputs: the same seed gives the same values; ids stay inside the gather table they index")
    func randomInputs() {
        let ids = MILVar(name: "ids", type: MILTensorType(.int32, [1, 64]))
        let gather = MILOperation(type: "gather", name: "g", inputs: [
            ("x", [.variable("table")]), ("indices", [.variable("ids")]), ("axis", [.value(.scalar(Int32(0)))]),
        ], outputs: [MILVar(name: "y", type: MILTensorType(.fp32, [1, 64, 4]))])
        let table = MILOperation(type: "const", name: "table", inputs: [], outputs: [MILVar(name: "table", type: MILTensorType(.fp32, [5, 4]))],
                                 value: .floats(Array(repeating: 0, count: 20), .fp32, shape: [5, 4]))
        let p = MILProgram(target: .iOS18, inputs: [ids, MILVar(name: "x", type: MILTensorType(.fp32, [3]))], operations: [table, gather], outputs: ["y"])
        #expect(RandomInputs.integerRanges(p) == ["ids": 5])
        let a = RandomInputs.samples(p, count: 2), b = RandomInputs.samples(p, count: 2)
        #expect(a[1]["x"]!.floats == b[1]["x"]!.floats && a[0]["x"]!.floats != a[1]["x"]!.floats)
        let drawn = a.flatMap { $0["ids"]!.ints }
        #expect(drawn.allSatisfy { $0 >= 0 && $0 < 5 } && Set(drawn).count == 5)
    }
}

@Suite("Evaluate control flow")
struct EvaluatorControlFlowTests {
    static let t = MILTensorType(.fp32, [2, 2]), i = MILTensorType(.int32, [])

    static func op(_ type: String, _ name: String, _ inputs: [(String, String)], _ out: MILTensorType) -> MILOperation {
        MILOperation(type: type, name: name, inputs: inputs.map { ($0.0, [.variable($0.1)]) }, outputs: [MILVar(name: name, type: out)])
    }

    static func const(_ name: String, _ c: MILConst) -> MILOperation {
        MILOperation(type: "const", name: name, inputs: [], outputs: [MILVar(name: name, type: c.type)], value: c)
    }

    @Test("while_loop runs its body while the condition holds, reading outer variables; the loop variables come out")
    func whileLoop() throws {
        // acc = x; i = 0; while i < n { acc = acc * 2 + w; i += 1 }, w = relu(x) defined outside.
        let condition = MILBlock(inputs: [MILVar(name: "i_c", type: Self.i), MILVar(name: "acc_c", type: Self.t)],
                                 operations: [Self.op("less", "go", [("x", "i_c"), ("y", "n")], MILTensorType(.bool, []))], outputs: ["go"])
        let body = MILBlock(inputs: [MILVar(name: "i_b", type: Self.i), MILVar(name: "acc_b", type: Self.t)],
                            operations: [Self.const("two", .float(2, .fp32)), Self.op("mul", "twice", [("x", "acc_b"), ("y", "two")], Self.t),
                                         Self.op("add", "next", [("x", "twice"), ("y", "w")], Self.t),
                                         Self.op("add", "i_next", [("x", "i_b"), ("y", "one")], Self.i)],
                            outputs: ["i_next", "next"])
        let p = MILProgram(target: .iOS15, inputs: [MILVar(name: "x", type: Self.t), MILVar(name: "n", type: Self.i)], operations: [
            Self.op("relu", "w", [("x", "x")], Self.t), Self.const("zero", .scalar(Int32(0))), Self.const("one", .scalar(Int32(1))),
            MILOperation(type: "while_loop", name: "loop", inputs: [("loop_vars", [.variable("zero"), .variable("x")])],
                         outputs: [MILVar(name: "count", type: Self.i), MILVar(name: "acc", type: Self.t)], blocks: [condition, body]),
        ], outputs: ["acc", "count"])
        try MILVerifier.verify(p)
        let evaluator = try Evaluator(p)
        let x: [Float] = [1, -2, 3, -4]
        for n in [0, 1, 3] {
            let out = try evaluator.run(["x": EvalTensor(floats: x, shape: [2, 2]), "n": EvalTensor(ints: [Int32(n)], shape: [], dtype: .int32)])
            var expected = x
            for _ in 0..<n { expected = zip(expected, x).map { $0 * 2 + max($1, 0) } }
            #expect(out[0].value.floats == expected)
            #expect(out[1].value.ints == [Int32(n)])
        }
    }

    @Test("cond runs the branch its predicate selects")
    func cond() throws {
        let yes = MILBlock(operations: [Self.op("add", "plus", [("x", "x"), ("y", "x")], Self.t)], outputs: ["plus"])
        let no = MILBlock(operations: [Self.op("relu", "rect", [("x", "x")], Self.t)], outputs: ["rect"])
        let p = MILProgram(target: .iOS15, inputs: [MILVar(name: "x", type: Self.t), MILVar(name: "p", type: MILTensorType(.bool, []))], operations: [
            MILOperation(type: "cond", name: "branch", inputs: [("pred", [.variable("p")])], outputs: [MILVar(name: "y", type: Self.t)], blocks: [yes, no]),
        ], outputs: ["y"])
        try MILVerifier.verify(p)
        let x: [Float] = [1, -2, 3, -4]
        for (pred, expected) in [(true, [Float(2), -4, 6, -8]), (false, [1, 0, 3, 0])] {
            let out = try Evaluator(p).run(["x": EvalTensor(floats: x, shape: [2, 2]), "p": EvalTensor(ints: [pred ? 1 : 0], shape: [], dtype: .bool)])
            #expect(out[0].value.floats == expected)
        }
    }
}
