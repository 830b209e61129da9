import GraphIR
import Testing
@testable import MIL

/// Small programs built by hand, as a lowering would emit them.
struct ProgramBuilder {
    let program: MILProgram

    init(target: DeploymentTarget = .iOS15, inputs: [MILVar]) {
        program = MILProgram(target: target, inputs: inputs)
    }

    @discardableResult
    func const(_ name: String, _ c: MILConst) -> String {
        program.operations.append(MILOperation(type: "const", name: name, inputs: [], outputs: [MILVar(name: name, type: c.type)], value: c))
        return name
    }

    @discardableResult
    func op(_ type: String, _ name: String, _ inputs: [(String, String)], _ output: MILTensorType, source: String? = nil) -> String {
        program.operations.append(MILOperation(type: type, name: name, inputs: inputs.map { ($0.0, [.variable($0.1)]) },
                                               outputs: [MILVar(name: name, type: output)], source: source))
        return name
    }
}

let f32x4 = MILTensorType(.fp32, [2, 4])

@Suite("MIL verifier")
struct MILVerifierTests {
    @Test("every op type has one definition")
    func registryHasNoDuplicates() {
        #expect(MILOpRegistry.definitions.count == MILOpRegistry.declaredCount)
    }

    @Test("a well-formed program verifies")
    func validProgram() throws {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
        b.op("relu", "r", [("x", "x")], f32x4)
        b.program.outputs = ["r"]
        try MILVerifier.verify(b.program)
    }

    @Test("unknown dims (flexible inputs): broadcast, matmul and a run-time reshape verify; a wrong static dim is caught")
    func unknownDims() throws {
        let u = MILTensorType.unknownDim
        let x = MILTensorType(.fp32, [1, u, 8])
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: x)])
        b.const("w", .floats(Array(repeating: 0.5, count: 32), .fp32, shape: [8, 4]))
        b.op("matmul", "m", [("x", "x"), ("y", "w")], MILTensorType(.fp32, [1, u, 4]))
        b.const("one", .float(1, .fp32, shape: [1, 1, 4]))
        b.op("add", "a", [("x", "m"), ("y", "one")], MILTensorType(.fp32, [1, u, 4]))
        b.op("shape", "s", [("x", "a")], MILTensorType(.int32, [3]))
        // The definition cannot know a run-time shape's values; the lowering declares what ONNX inference proved.
        b.op("reshape", "r", [("x", "a"), ("shape", "s")], MILTensorType(.fp32, [1, u, 4]))
        b.program.outputs = ["r"]
        try MILVerifier.verify(b.program)
        #expect(MILTensorType(.fp32, [1, u, 4]).description == "fp32[1, ?, 4]")
        b.program.operations[1].outputs[0].type = MILTensorType(.fp32, [1, u, 5])
        #expect(throws: MILVerificationError.self) { try MILVerifier.verify(b.program) }
    }

    @Test("a corrupted declared type is caught, naming the op and its source node")
    func corruptedType() {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
        b.op("relu", "r", [("x", "x")], f32x4, source: "Relu_7")
        b.program.outputs = ["r"]
        b.program.operations[0].outputs[0].type = MILTensorType(.fp32, [2, 5])
        #expect {
            try MILVerifier.verify(b.program)
        } throws: { error in
            let e = error as! MILVerificationError
            return e.op == "r" && e.source == "Relu_7" && e.problem.contains("infers fp32[2, 4]")
        }
    }

    @Test("the scalar select: a declared [1, 8] output where MIL infers a scalar is caught")
    func scalarSelect() {
        let b = ProgramBuilder(inputs: [MILVar(name: "c", type: MILTensorType(.bool, [1, 8]))])
        b.const("one", .float(1, .fp32))
        b.const("minus", .float(-1, .fp32))
        b.op("select", "s", [("cond", "c"), ("a", "one"), ("b", "minus")], MILTensorType(.fp32, [1, 8]))
        b.program.outputs = ["s"]
        #expect(throws: MILVerificationError.self) { try MILVerifier.verify(b.program) }
    }

    @Test("SSA: use before definition, a name defined twice, an undefined block output")
    func ssa() {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
        b.op("relu", "r", [("x", "later")], f32x4)
        b.op("relu", "later", [("x", "x")], f32x4)
        b.program.outputs = ["r"]
        #expect(throws: MILVerificationError.self) { try MILVerifier.verify(b.program) }

        let twice = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
        twice.op("relu", "x", [("x", "x")], f32x4)
        twice.program.outputs = ["x"]
        #expect(throws: MILVerificationError.self) { try MILVerifier.verify(twice.program) }

        let missing = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
        missing.op("relu", "r", [("x", "x")], f32x4)
        missing.program.outputs = ["nope"]
        #expect(throws: MILVerificationError.self) { try MILVerifier.verify(missing.program) }
    }

    @Test("ops newer than the target, unknown ops, rank 6 and constants of the wrong size are refused")
    func limits() {
        let b = ProgramBuilder(target: .iOS15, inputs: [MILVar(name: "x", type: f32x4)])
        b.op("scaled_dot_product_attention", "a", [("query", "x"), ("key", "x"), ("value", "x")], f32x4)
        b.program.outputs = ["a"]
        #expect(throws: MILVerificationError.self) { try MILVerifier.verify(b.program) }

        let unknown = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
        unknown.op("frobnicate", "f", [("x", "x")], f32x4)
        unknown.program.outputs = ["f"]
        #expect(throws: MILVerificationError.self) { try MILVerifier.verify(unknown.program) }

        let rank6 = ProgramBuilder(inputs: [MILVar(name: "x", type: MILTensorType(.fp32, [1, 1, 1, 1, 1, 2]))])
        rank6.op("relu", "r", [("x", "x")], MILTensorType(.fp32, [1, 1, 1, 1, 1, 2]))
        rank6.program.outputs = ["r"]
        #expect(throws: MILVerificationError.self) { try MILVerifier.verify(rank6.program) }

        let short = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
        short.const("w", MILConst(MILTensorType(.fp32, [4]), .floats([1, 2, 3])))
        short.op("add", "y", [("x", "x"), ("y", "w")], f32x4)
        short.program.outputs = ["y"]
        #expect(throws: MILVerificationError.self) { try MILVerifier.verify(short.program) }
    }

    @Test("type inference follows the definitions: matmul, conv, reshape, slice, gather, pool, split")
    func inference() throws {
        func infer(_ type: String, _ inputs: [(String, MILArgument)], _ types: [String: MILTensorType],
                   target: DeploymentTarget = .iOS15) throws -> [MILTensorType] {
            let op = MILOperation(type: type, name: "o", inputs: inputs.map { ($0.0, [$0.1]) }, outputs: [])
            let context = MILOpContext(op: op, target: target, types: types, constants: [:])
            return try MILOpRegistry.definitions[type]!.outputTypes(context)
        }
        let x = MILTensorType(.fp32, [2, 3, 4])
        #expect(try infer("matmul", [("x", .variable("x")), ("y", .variable("w"))], ["x": x, "w": MILTensorType(.fp32, [4, 5])])
                == [MILTensorType(.fp32, [2, 3, 5])])
        #expect(try infer("matmul", [("x", .variable("v")), ("y", .variable("w"))], ["v": MILTensorType(.fp32, [4]), "w": MILTensorType(.fp32, [4, 5])])
                == [MILTensorType(.fp32, [5])])
        #expect(throws: MILTypeError.self) {
            try infer("matmul", [("x", .variable("x")), ("y", .variable("v"))], ["x": x, "v": MILTensorType(.fp32, [4])])
        }
        #expect(try infer("reshape", [("x", .variable("x")), ("shape", .value(.ints([-1, 4])))], ["x": x]) == [MILTensorType(.fp32, [6, 4])])
        #expect(try infer("slice_by_index", [("x", .variable("x")), ("begin", .value(.ints([0, 2, 0]))), ("end", .value(.ints([2, 0, 4]))),
                                             ("stride", .value(.ints([1, -1, 2]))), ("end_mask", .value(.bools([false, true, false])))], ["x": x])
                == [MILTensorType(.fp32, [2, 3, 2])])
        #expect(try infer("gather", [("x", .variable("x")), ("indices", .variable("i")), ("axis", .value(.scalar(Int32(1))))],
                          ["x": x, "i": MILTensorType(.int32, [7])]) == [MILTensorType(.fp32, [2, 7, 4])])
        let image = MILTensorType(.fp32, [1, 2, 7, 7])
        #expect(try infer("conv", [("x", .variable("x")), ("weight", .variable("w")), ("strides", .value(.ints([2, 2]))),
                                   ("pad_type", .value(.scalar("custom"))), ("pad", .value(.ints([1, 1, 1, 1])))],
                          ["x": image, "w": MILTensorType(.fp32, [8, 2, 3, 3])]) == [MILTensorType(.fp32, [1, 8, 4, 4])])
        #expect(try infer("max_pool", [("x", .variable("x")), ("kernel_sizes", .value(.ints([3, 3]))), ("strides", .value(.ints([2, 2]))),
                                       ("pad_type", .value(.scalar("valid"))), ("ceil_mode", .value(.scalar(true)))], ["x": image])
                == [MILTensorType(.fp32, [1, 2, 3, 3])])
        #expect(try infer("split", [("x", .variable("x")), ("split_sizes", .value(.ints([1, 3]))), ("axis", .value(.scalar(Int32(-1))))], ["x": x])
                == [MILTensorType(.fp32, [2, 3, 1]), MILTensorType(.fp32, [2, 3, 3])])
    }

    @Test("lstm, gru, rnn: shapes per direction and output_sequence, fp16 from iOS17 only, gate counts and activations checked")
    func recurrentInference() throws {
        func infer(_ type: String, _ inputs: [(String, MILArgument)], _ types: [String: MILTensorType],
                   target: DeploymentTarget = .iOS15) throws -> [MILTensorType] {
            let op = MILOperation(type: type, name: "o", inputs: inputs.map { ($0.0, [$0.1]) }, outputs: [])
            return try MILOpRegistry.definitions[type]!.outputTypes(MILOpContext(op: op, target: target, types: types, constants: [:]))
        }
        func f(_ shape: [Int], _ dtype: MILDataType = .fp32) -> MILTensorType { MILTensorType(dtype, shape) }
        // x [s 5, b 2, I 3], hidden 4.
        let lstm: [String: MILTensorType] = ["x": f([5, 2, 3]), "h": f([2, 4]), "c": f([2, 4]), "wi": f([16, 3]), "wh": f([16, 4]),
                                             "h2": f([2, 8]), "c2": f([2, 8])]
        let base: [(String, MILArgument)] = [("x", .variable("x")), ("initial_h", .variable("h")), ("initial_c", .variable("c")),
                                             ("weight_ih", .variable("wi")), ("weight_hh", .variable("wh"))]
        #expect(try infer("lstm", base, lstm) == [f([1, 2, 4]), f([2, 4]), f([2, 4])])
        #expect(try infer("lstm", base + [("output_sequence", .value(.scalar(true))), ("direction", .value(.scalar("reverse")))], lstm)
                == [f([5, 2, 4]), f([2, 4]), f([2, 4])])
        let both: [(String, MILArgument)] = [("x", .variable("x")), ("initial_h", .variable("h2")), ("initial_c", .variable("c2")),
                                             ("weight_ih", .variable("wi")), ("weight_hh", .variable("wh")), ("weight_ih_back", .variable("wi")),
                                             ("weight_hh_back", .variable("wh")), ("direction", .value(.scalar("bidirectional"))),
                                             ("output_sequence", .value(.scalar(true)))]
        #expect(try infer("lstm", both, lstm) == [f([5, 2, 8]), f([2, 8]), f([2, 8])])
        // bidirectional needs the backward weights.
        #expect(throws: MILTypeError.self) { try infer("lstm", both.filter { !$0.0.hasSuffix("_back") }, lstm) }
        #expect(throws: MILTypeError.self) { try infer("lstm", base + [("recurrent_activation", .value(.scalar("softsign")))], lstm) }
        #expect(throws: MILTypeError.self) { try infer("lstm", base, lstm.merging(["wh": f([12, 4])]) { $1 }) }
        // fp16: iOS17 on (iOS17/recurrent.py), not before.
        let half = lstm.mapValues { $0.with(dtype: .fp16) }
        #expect(throws: MILTypeError.self) { try infer("lstm", base, half, target: .iOS16) }
        #expect(try infer("lstm", base, half, target: .iOS17) == [f([1, 2, 4], .fp16), f([2, 4], .fp16), f([2, 4], .fp16)])
        // gru: 3 gates, forward or reverse only; rnn: 1 gate.
        let gru: [String: MILTensorType] = ["x": f([5, 2, 3]), "h": f([2, 4]), "wi": f([12, 3]), "wh": f([12, 4]), "r1": f([4, 3]), "r2": f([4, 4])]
        let one: [(String, MILArgument)] = [("x", .variable("x")), ("initial_h", .variable("h")), ("weight_ih", .variable("wi")),
                                            ("weight_hh", .variable("wh")), ("output_sequence", .value(.scalar(true)))]
        #expect(try infer("gru", one, gru) == [f([5, 2, 4]), f([2, 4])])
        #expect(throws: MILTypeError.self) { try infer("gru", one + [("direction", .value(.scalar("bidirectional")))], gru) }
        #expect(try infer("rnn", [("x", .variable("x")), ("initial_h", .variable("h")), ("weight_ih", .variable("r1")),
                                  ("weight_hh", .variable("r2"))], gru) == [f([1, 2, 4]), f([2, 4])])
        #expect(throws: MILTypeError.self) { try infer("rnn", one, gru) }
    }
}

@Suite("MIL checker for packages other tools wrote")
struct MILCheckTests {
    @Test("unknown ops and opaque values are not checked; their declared outputs are trusted")
    func notChecked() {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
        b.op("argsort", "order", [("x", "x")], MILTensorType(.int32, [2, 4]))
        b.op("relu", "r", [("x", "x")], f32x4)
        b.op("relu", "s", [("x", "list_item")], f32x4)
        b.program.outputs = ["order", "r", "s"]
        let report = MILVerifier.check(b.program, opaque: ["list_item"])
        #expect(report.errors.isEmpty)
        #expect(report.checked == 1)
        #expect(report.notChecked.map(\.op) == ["order", "s"])
        #expect(report.notChecked[0].reason == "mlpkg has no MIL definition of argsort")
    }

    @Test("every fault is collected; one wrong declaration is one fault (the inferred type is carried on)")
    func collects() {
        let b = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
        b.op("relu", "r", [("x", "x")], MILTensorType(.fp16, [2, 4]))
        b.op("sigmoid", "s", [("x", "r")], f32x4)
        b.op("tanh", "t", [("x", "nowhere")], f32x4)
        b.program.outputs = ["s", "t"]
        let report = MILVerifier.check(b.program)
        #expect(report.errors.map(\.op) == ["r", "t"])
        #expect(report.errors[1].problem == "reads 'nowhere' before it is defined")
    }

    @Test("beyond the definition (iOS17's small integer types) is not checked at iOS17, an error before")
    func beyond() {
        let int16 = MILTensorType(.int16, [2, 4])
        for (target, notChecked) in [(DeploymentTarget.iOS17, true), (.iOS16, false)] {
            let b = ProgramBuilder(target: target, inputs: [MILVar(name: "x", type: int16)])
            b.op("relu", "r", [("x", "x")], int16)
            b.program.outputs = ["r"]
            let report = MILVerifier.check(b.program)
            #expect(report.notChecked.count == (notChecked ? 1 : 0))
            #expect(report.errors.count == (notChecked ? 0 : 1))
        }
        // mlpkg's own programs may not go beyond: the strict verifier refuses it.
        let b = ProgramBuilder(target: .iOS17, inputs: [MILVar(name: "x", type: int16)])
        b.op("relu", "r", [("x", "x")], int16)
        b.program.outputs = ["r"]
        #expect(throws: MILVerificationError.self) { try MILVerifier.verify(b.program) }
    }
}
