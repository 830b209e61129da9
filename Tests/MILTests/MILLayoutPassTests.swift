import GraphIR
import Testing
@testable import MIL

/// The layout and clean-up passes added for the model zoo's remaining op-count gaps (issue 24): each on a tiny
/// program before/after, verified, with the interface unchanged. (Numerics against onnxruntime:
/// tests/oracle/test_mil_passes.py.)
@Suite("MIL layout passes")
struct MILLayoutPassTests {
    func computeTypes(_ p: MILProgram) -> [String] { p.operations.filter { $0.type != "const" }.map(\.type) }

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

    func constant(_ p: MILProgram, _ name: String) -> MILConst? { p.constants()[name] }

    @Test("reshape, transpose, split and concat of constants become constants (a bidirectional LSTM's zero states)")
    func foldConstants() throws {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: MILTensorType(.fp32, [6]))])
        b.const("c", .floats([1, 2, 3, 4, 5, 6], .fp32, shape: [2, 1, 3]))
        b.const("axis0", .scalar(Int32(0)))
        b.const("sizes", .ints([1, 1]))
        b.program.operations.append(MILOperation(type: "split", name: "s", inputs: [("x", [.variable("c")]), ("split_sizes", [.variable("sizes")]),
                                                                                   ("axis", [.variable("axis0")])],
                                                 outputs: [MILVar(name: "s0", type: MILTensorType(.fp32, [1, 1, 3])),
                                                           MILVar(name: "s1", type: MILTensorType(.fp32, [1, 1, 3]))]))
        b.const("shape", .ints([1, 3]))
        b.op("reshape", "r0", [("x", "s0"), ("shape", "shape")], MILTensorType(.fp32, [1, 3]))
        b.op("reshape", "r1", [("x", "s1"), ("shape", "shape")], MILTensorType(.fp32, [1, 3]))
        b.const("axis1", .scalar(Int32(1)))
        b.const("no", .scalar(false))
        b.program.operations.append(MILOperation(type: "concat", name: "cat", inputs: [("values", [.variable("r0"), .variable("r1")]),
                                                                                      ("axis", [.variable("axis1")]), ("interleave", [.variable("no")])],
                                                 outputs: [MILVar(name: "cat", type: MILTensorType(.fp32, [1, 6]))]))
        b.const("perm", .ints([1, 0]))
        b.op("transpose", "t", [("x", "cat"), ("perm", "perm")], MILTensorType(.fp32, [6, 1]))
        b.const("shape2", .ints([6]))
        b.op("reshape", "flat", [("x", "t"), ("shape", "shape2")], MILTensorType(.fp32, [6]))
        b.op("add", "y", [("x", "x"), ("y", "flat")], MILTensorType(.fp32, [6]))
        b.program.outputs = ["y"]
        try run([FoldConstantLayout.self], b.program)
        #expect(computeTypes(b.program) == ["add"])
        // [[1, 2, 3]], [[4, 5, 6]] concatenated on axis 1, then transposed and flattened: the same order.
        #expect(constant(b.program, "flat")?.floatValues == [1, 2, 3, 4, 5, 6])
    }

    @Test("a transpose of a [2, 3] constant is permuted element by element; a block output keeps its op")
    func foldTranspose() throws {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: MILTensorType(.fp32, [3, 2]))])
        b.const("c", .floats([1, 2, 3, 4, 5, 6], .fp32, shape: [2, 3]))
        b.const("perm", .ints([1, 0]))
        b.op("transpose", "t", [("x", "c"), ("perm", "perm")], MILTensorType(.fp32, [3, 2]))
        b.op("add", "y", [("x", "x"), ("y", "t")], MILTensorType(.fp32, [3, 2]))
        b.op("transpose", "z", [("x", "c"), ("perm", "perm")], MILTensorType(.fp32, [3, 2]))
        b.program.outputs = ["y", "z"]
        try run([FoldConstantLayout.self], b.program)
        #expect(computeTypes(b.program) == ["add", "transpose"])
        #expect(constant(b.program, "t")?.floatValues == [1, 4, 2, 5, 3, 6])
    }

    @Test("a tile of a constant and a select between constants fold (a mask built from constants)")
    func foldTileSelect() throws {
        let s = MILTensorType(.fp32, [1, 1, 2, 3])
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: s)])
        b.const("flags", MILConst(MILTensorType(.bool, [1, 1, 1, 3]), .bools([true, false, true])))
        b.const("reps", .ints([1, 1, 2, 1]))
        b.op("tile", "cond", [("x", "flags"), ("reps", "reps")], MILTensorType(.bool, [1, 1, 2, 3]))
        b.const("zero", .float(0, .fp32, shape: [1, 1, 1, 3]))
        b.const("low", .floats([-5, -7], .fp32, shape: [2, 1]))
        b.op("select", "mask", [("cond", "cond"), ("a", "zero"), ("b", "low")], s)
        b.op("add", "y", [("x", "x"), ("y", "mask")], s)
        b.program.outputs = ["y"]
        try run([FoldConstantLayout.self], b.program)
        #expect(computeTypes(b.program) == ["add"])
        #expect(constant(b.program, "mask")?.floatValues == [0, -5, 0, 0, -7, 0])
    }

    @Test("concat(a, concat(b, c), d) on one axis → concat(a, b, c, d); an inner concat on another axis or read twice stays")
    func nestedConcats() throws {
        let t = MILTensorType(.fp32, [1, 2, 3])
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: t)])
        b.const("axis1", .scalar(Int32(1)))
        b.const("axisNeg", .scalar(Int32(-2)))
        b.const("axis2", .scalar(Int32(2)))
        func concat(_ name: String, _ values: [String], _ axis: String, _ shape: [Int]) {
            b.program.operations.append(MILOperation(type: "concat", name: name, inputs: [("values", values.map { .variable($0) }), ("axis", [.variable(axis)])],
                                                     outputs: [MILVar(name: name, type: MILTensorType(.fp32, shape))]))
        }
        concat("inner", ["x", "x"], "axis1", [1, 4, 3])
        concat("other", ["x", "x"], "axis2", [1, 2, 6])
        concat("shared", ["x", "x"], "axis1", [1, 4, 3])
        concat("outer", ["x", "inner", "shared"], "axisNeg", [1, 10, 3])
        b.op("relu", "r", [("x", "shared")], MILTensorType(.fp32, [1, 4, 3]))
        b.program.outputs = ["outer", "other", "r"]
        try run([MergeNestedConcats.self], b.program)
        #expect(computeTypes(b.program) == ["concat", "concat", "concat", "relu"])
        let outer = b.program.operations.first { $0.name == "outer" }!
        #expect(outer.arguments("values")?.compactMap(\.variableName) == ["x", "x", "x", "shared"])
    }

    @Test("stack of a split's pieces → reshape + transpose, which cancel against the exporter's transpose and reshape")
    func splitStack() throws {
        // MIL lstm's [seq, batch, 2·hidden] → ONNX Y [seq, 2, batch, hidden] → transpose → [seq, batch, 2·hidden].
        let x = MILTensorType(.fp32, [5, 1, 8])
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: x)])
        b.op("relu", "h", [("x", "x")], x)
        b.const("axis2", .scalar(Int32(2)))
        b.const("sizes", .ints([4, 4]))
        b.program.operations.append(MILOperation(type: "split", name: "s", inputs: [("x", [.variable("h")]), ("split_sizes", [.variable("sizes")]),
                                                                                   ("axis", [.variable("axis2")])],
                                                 outputs: [MILVar(name: "s0", type: MILTensorType(.fp32, [5, 1, 4])),
                                                           MILVar(name: "s1", type: MILTensorType(.fp32, [5, 1, 4]))]))
        b.const("axis1", .scalar(Int32(1)))
        b.program.operations.append(MILOperation(type: "stack", name: "st", inputs: [("values", [.variable("s0"), .variable("s1")]),
                                                                                    ("axis", [.variable("axis1")])],
                                                 outputs: [MILVar(name: "st", type: MILTensorType(.fp32, [5, 2, 1, 4]))]))
        b.const("perm", .ints([0, 2, 1, 3]))
        b.op("transpose", "t", [("x", "st"), ("perm", "perm")], MILTensorType(.fp32, [5, 1, 2, 4]))
        b.const("shape", .ints([5, 1, 8]))
        b.op("reshape", "r", [("x", "t"), ("shape", "shape")], x)
        b.op("sigmoid", "y", [("x", "r")], x)
        b.program.outputs = ["y"]
        try run([FuseSplitStack.self], b.program)
        #expect(computeTypes(b.program) == ["relu", "reshape", "transpose", "transpose", "reshape", "sigmoid"])
        try run([MergeLayoutChains.self, NoOpElimination.self, MergeLayoutChains.self, NoOpElimination.self], b.program)
        #expect(computeTypes(b.program) == ["relu", "sigmoid"])
    }

    @Test("a stack of pieces of different splits, or of a split read elsewhere, is left alone")
    func splitStackMismatch() throws {
        let x = MILTensorType(.fp32, [2, 4])
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: x)])
        b.const("axis", .scalar(Int32(1)))
        b.const("sizes", .ints([2, 2]))
        b.program.operations.append(MILOperation(type: "split", name: "s", inputs: [("x", [.variable("x")]), ("split_sizes", [.variable("sizes")]),
                                                                                   ("axis", [.variable("axis")])],
                                                 outputs: [MILVar(name: "s0", type: MILTensorType(.fp32, [2, 2])),
                                                           MILVar(name: "s1", type: MILTensorType(.fp32, [2, 2]))]))
        b.const("axis0", .scalar(Int32(0)))
        b.program.operations.append(MILOperation(type: "stack", name: "st", inputs: [("values", [.variable("s1"), .variable("s0")]),
                                                                                    ("axis", [.variable("axis0")])],
                                                 outputs: [MILVar(name: "st", type: MILTensorType(.fp32, [2, 2, 2]))]))
        b.program.outputs = ["st"]
        try run([FuseSplitStack.self], b.program)
        #expect(computeTypes(b.program) == ["split", "stack"])
    }

    @Test("a transpose moving only unit axes becomes a reshape; one moving real axes stays")
    func unitTranspose() throws {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: MILTensorType(.fp32, [4, 1, 1, 3]))])
        b.const("p1", .ints([0, 2, 1, 3]))
        b.op("transpose", "t1", [("x", "x"), ("perm", "p1")], MILTensorType(.fp32, [4, 1, 1, 3]))
        b.const("p2", .ints([3, 1, 2, 0]))
        b.op("transpose", "y", [("x", "t1"), ("perm", "p2")], MILTensorType(.fp32, [3, 1, 1, 4]))
        b.program.outputs = ["y"]
        try run([TransposeUnitAxesToReshape.self], b.program)
        #expect(computeTypes(b.program) == ["reshape", "transpose"])
    }

    @Test("reshape dropping a unit axis → transpose → reshape adding it back is one transpose of the start (dynamo's kᵀ)")
    func permutationChain() throws {
        let x = MILTensorType(.fp32, [1, 4, 5, 3])
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: x)])
        b.op("relu", "h", [("x", "x")], x)
        b.const("s1", .ints([4, 5, 3]))
        b.op("reshape", "r1", [("x", "h"), ("shape", "s1")], MILTensorType(.fp32, [4, 5, 3]))
        b.const("p", .ints([0, 2, 1]))
        b.op("transpose", "t", [("x", "r1"), ("perm", "p")], MILTensorType(.fp32, [4, 3, 5]))
        b.const("s2", .ints([1, 4, 3, 5]))
        b.op("reshape", "y", [("x", "t"), ("shape", "s2")], MILTensorType(.fp32, [1, 4, 3, 5]))
        b.program.outputs = ["y"]
        try run([CollapsePermutationChains.self], b.program)
        #expect(computeTypes(b.program) == ["relu", "transpose"])
        let last = b.program.operations.last!
        #expect(last.arguments("x")?.first?.variableName == "h")
        #expect(b.program.constants()[last.arguments("perm")!.first!.variableName!]?.intValues == [0, 1, 3, 2])
    }

    @Test("between ranks (a split's piece [1, 1, H, S, E] → [H, S, E] → kᵀ → [1, H, E, S]) three ops become a reshape and a transpose")
    func permutationChainAcrossRanks() throws {
        let x = MILTensorType(.fp32, [1, 1, 3, 5, 4])
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: x)])
        b.op("relu", "h", [("x", "x")], x)
        b.const("s1", .ints([3, 5, 4]))
        b.op("reshape", "r1", [("x", "h"), ("shape", "s1")], MILTensorType(.fp32, [3, 5, 4]))
        b.const("p", .ints([0, 2, 1]))
        b.op("transpose", "t", [("x", "r1"), ("perm", "p")], MILTensorType(.fp32, [3, 4, 5]))
        b.const("s2", .ints([1, 3, 4, 5]))
        b.op("reshape", "y", [("x", "t"), ("shape", "s2")], MILTensorType(.fp32, [1, 3, 4, 5]))
        b.program.outputs = ["y"]
        try run([CollapsePermutationChains.self], b.program)
        #expect(computeTypes(b.program) == ["relu", "reshape", "transpose"])
        let last = b.program.operations.last!
        #expect(b.program.constants()[last.arguments("perm")!.first!.variableName!]?.intValues == [0, 1, 3, 2])
        #expect(b.program.types()[last.arguments("x")!.first!.variableName!]?.shape == [1, 3, 5, 4])
    }

    @Test("a chain whose reshape splits a real axis, or whose middle is read twice, is left alone")
    func permutationChainMismatch() throws {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: MILTensorType(.fp32, [2, 6]))])
        b.const("s1", .ints([2, 2, 3]))
        b.op("reshape", "r1", [("x", "x"), ("shape", "s1")], MILTensorType(.fp32, [2, 2, 3]))
        b.const("p", .ints([0, 2, 1]))
        b.op("transpose", "t", [("x", "r1"), ("perm", "p")], MILTensorType(.fp32, [2, 3, 2]))
        b.const("s2", .ints([2, 6]))
        b.op("reshape", "y", [("x", "t"), ("shape", "s2")], MILTensorType(.fp32, [2, 6]))
        b.op("relu", "z", [("x", "t")], MILTensorType(.fp32, [2, 3, 2]))
        b.program.outputs = ["y", "z"]
        try run([CollapsePermutationChains.self], b.program)
        #expect(computeTypes(b.program) == ["reshape", "transpose", "reshape", "relu"])
    }

    func guarded(mask: [Float]?) -> ProgramBuilder {
        let s = MILTensorType(.fp32, [1, 2, 3, 3])
        let b = ProgramBuilder(inputs: [MILVar(name: "q", type: MILTensorType(.fp32, [1, 2, 3, 4])), MILVar(name: "k", type: MILTensorType(.fp32, [1, 2, 3, 4]))])
        b.const("ty", .scalar(true))
        b.const("no", .scalar(false))
        b.program.operations.append(MILOperation(type: "matmul", name: "qk", inputs: [("x", [.variable("q")]), ("y", [.variable("k")]),
                                                                                     ("transpose_x", [.variable("no")]), ("transpose_y", [.variable("ty")])],
                                                 outputs: [MILVar(name: "qk", type: s)]))
        var scores = "qk"
        if let mask {
            b.const("mask", .floats(mask, .fp32, shape: [1, 1, 3, 3]))
            b.op("add", "masked", [("x", "qk"), ("y", "mask")], s)
            scores = "masked"
        }
        b.const("axis", .scalar(Int32(-1)))
        b.op("softmax", "p", [("x", scores), ("axis", "axis")], s)
        b.op("not_equal", "nan", [("x", "p"), ("y", "p")], s.with(dtype: .bool))
        b.const("zero", .float(0, .fp32))
        b.op("select", "y", [("cond", "nan"), ("a", "zero"), ("b", "p")], s)
        b.op("relu", "out", [("x", "y")], s)
        b.program.outputs = ["out"]
        return b
    }

    @Test("where(isnan(softmax(q·kᵀ + finite mask)), 0, ·) → the softmax itself; a mask with −inf keeps the guard")
    func nanGuard() throws {
        for mask in [nil, [Float](repeating: -3, count: 9)] {
            let b = guarded(mask: mask)
            try run([RemoveSoftmaxNaNGuard.self], b.program)
            #expect(computeTypes(b.program) == ["matmul"] + (mask == nil ? [] : ["add"]) + ["softmax", "relu"])
        }
        let b = guarded(mask: [0, -.infinity, -.infinity, 0, 0, -.infinity, 0, 0, 0])
        try run([RemoveSoftmaxNaNGuard.self], b.program)
        #expect(computeTypes(b.program) == ["matmul", "add", "softmax", "not_equal", "select", "relu"])
    }

    @Test("add of an all-zero constant and mul by all ones are no-ops unless they broadcast the other operand")
    func neutralConstants() throws {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
        b.const("zeros", .float(0, .fp32, shape: [1, 4]))
        b.op("add", "a", [("x", "zeros"), ("y", "x")], f32x4)
        b.const("ones", .float(1, .fp32))
        b.op("mul", "m", [("x", "a"), ("y", "ones")], f32x4)
        b.op("sub", "s", [("x", "m"), ("y", "zeros")], f32x4)
        b.op("relu", "r", [("x", "s")], f32x4)
        b.const("wide", .float(0, .fp32, shape: [3, 2, 4]))
        b.op("add", "y", [("x", "r"), ("y", "wide")], MILTensorType(.fp32, [3, 2, 4]))
        b.op("sub", "z", [("x", "zeros"), ("y", "r")], f32x4)
        b.program.outputs = ["y", "z"]
        try run([NoOpElimination.self], b.program)
        #expect(computeTypes(b.program) == ["relu", "add", "sub"])
    }
}
