import GraphIR
import Testing
@testable import MIL

let i32 = MILTensorType(.int32, [])

/// `acc = x; for i in 0..<3 { acc = acc + relu(x) }` as a while_loop whose body reads `w = relu(x)`, `one` and
/// whose condition reads `three`, all defined before the loop.
func loopProgram() -> MILProgram {
    let b = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4)])
    b.op("relu", "w", [("x", "x")], f32x4)
    b.const("zero", .scalar(Int32(0)))
    b.const("three", .scalar(Int32(3)))
    b.const("one", .scalar(Int32(1)))
    let condition = MILBlock(inputs: [MILVar(name: "i_c", type: i32), MILVar(name: "acc_c", type: f32x4)],
                             operations: [MILOperation(type: "less", name: "more", inputs: [("x", [.variable("i_c")]), ("y", [.variable("three")])],
                                                       outputs: [MILVar(name: "more", type: MILTensorType(.bool, []))])],
                             outputs: ["more"])
    let body = MILBlock(inputs: [MILVar(name: "i_b", type: i32), MILVar(name: "acc_b", type: f32x4)],
                        operations: [
                            MILOperation(type: "add", name: "next_i", inputs: [("x", [.variable("i_b")]), ("y", [.variable("one")])],
                                         outputs: [MILVar(name: "next_i", type: i32)]),
                            MILOperation(type: "add", name: "next_acc", inputs: [("x", [.variable("acc_b")]), ("y", [.variable("w")])],
                                         outputs: [MILVar(name: "next_acc", type: f32x4)]),
                        ],
                        outputs: ["next_i", "next_acc"])
    b.program.operations.append(MILOperation(type: "while_loop", name: "loop", inputs: [("loop_vars", [.variable("zero"), .variable("x")])],
                                             outputs: [MILVar(name: "loop_0", type: i32), MILVar(name: "loop_1", type: f32x4)],
                                             blocks: [condition, body]))
    b.program.outputs = ["loop_1"]
    return b.program
}

/// `pred ? x + 1 : relu(x)` as a cond whose branches read x, defined before it.
func condProgram() -> MILProgram {
    let b = ProgramBuilder(inputs: [MILVar(name: "x", type: f32x4), MILVar(name: "p", type: MILTensorType(.bool, []))])
    b.const("c1", .float(1, .fp32))
    let yes = MILBlock(operations: [MILOperation(type: "add", name: "plus", inputs: [("x", [.variable("x")]), ("y", [.variable("c1")])],
                                                 outputs: [MILVar(name: "plus", type: f32x4)])], outputs: ["plus"])
    let no = MILBlock(operations: [MILOperation(type: "relu", name: "rect", inputs: [("x", [.variable("x")])],
                                                outputs: [MILVar(name: "rect", type: f32x4)])], outputs: ["rect"])
    b.program.operations.append(MILOperation(type: "cond", name: "branch", inputs: [("pred", [.variable("p")])],
                                             outputs: [MILVar(name: "branch", type: f32x4)], blocks: [yes, no]))
    b.program.outputs = ["branch"]
    return b.program
}

@Suite("MIL nested blocks")
struct MILBlockTests {
    @Test("a while_loop whose blocks read outer variables verifies; its uses include them")
    func loopVerifies() throws {
        let p = loopProgram()
        try MILVerifier.verify(p)
        let loop = p.operations.last!
        #expect(loop.usedVariables == ["zero", "x", "three", "one", "w"])
        #expect(p.uses()["w"] == [4])
        #expect(p.operationCount == 8 && p.computeOperationCount == 2)
        #expect(p.histogram["add"] == 2 && p.histogram["while_loop"] == 1)
        try MILVerifier.verify(condProgram())
    }

    @Test("dead-code elimination keeps what only a loop body reads; unusedName sees nested names")
    func deadCodeAndNames() throws {
        let p = loopProgram()
        DeadCodeElimination.run(p)
        #expect(p.operations.map(\.name) == ["w", "zero", "three", "one", "loop"])
        try MILVerifier.verify(p)
        #expect(p.unusedName("next_acc") == "next_acc_1")
        #expect(p.unusedName("i_b") == "i_b_1")
        #expect(p.definedNames().contains("more"))
    }

    @Test("replaceUses, const deduplication and no-op elimination rename uses inside blocks")
    func renamesReachBlocks() throws {
        let p = loopProgram()
        p.replaceUses(of: "w", with: "x")
        #expect(p.operations.last!.blocks[1].operations[1].arguments("y")?.first?.variableName == "x")
        try MILVerifier.verify(p)

        // A duplicate of `one` read only in the body, and an identity read only in the body.
        let q = loopProgram()
        q.operations.insert(MILOperation(type: "const", name: "one_again", inputs: [], outputs: [MILVar(name: "one_again", type: i32)],
                                         value: .scalar(Int32(1))), at: 4)
        q.operations.insert(MILOperation(type: "identity", name: "w_same", inputs: [("x", [.variable("w")])],
                                         outputs: [MILVar(name: "w_same", type: f32x4)]), at: 5)
        q.operations[6].blocks[1].operations[0].replaceUses(of: "one", with: "one_again")
        q.operations[6].blocks[1].operations[1].replaceUses(of: "w", with: "w_same")
        try MILVerifier.verify(q)
        ConstDeduplication.run(q)
        try MILVerifier.verify(q)
        #expect(!q.operations.contains { $0.name == "one_again" })
        #expect(q.operations.last!.blocks[1].operations[0].arguments("y")?.first?.variableName == "one")
        NoOpElimination.run(q)
        try MILVerifier.verify(q)
        #expect(!q.operations.contains { $0.type == "identity" })
        #expect(q.operations.last!.blocks[1].operations[1].arguments("y")?.first?.variableName == "w")
        // The whole standard pipeline leaves a program with blocks valid.
        let r = loopProgram()
        try MILPipeline.standard.run(r)
        try MILVerifier.verify(r)
        #expect(r.operations.contains { $0.type == "while_loop" })
    }

    @Test("the verifier catches a block output of the wrong type and a use of a variable defined after the loop")
    func verifierCatchesBlockFaults() {
        let wrongType = loopProgram()
        wrongType.operations[4].blocks[1].operations[1].outputs[0].type = MILTensorType(.fp32, [2, 4])
        wrongType.operations[4].blocks[1].outputs = ["next_i", "w"]  // fine: w is fp32[2, 4] like acc
        #expect((try? MILVerifier.verify(wrongType)) != nil)
        wrongType.operations[4].blocks[1].outputs = ["next_acc", "next_i"]
        do {
            try MILVerifier.verify(wrongType)
            Issue.record("a body returning int32 for an fp32 loop variable verified")
        } catch {
            #expect(error.problem.contains("changes in the body"))
        }

        let late = loopProgram()
        late.operations.append(MILOperation(type: "relu", name: "after", inputs: [("x", [.variable("x")])], outputs: [MILVar(name: "after", type: f32x4)]))
        late.operations[4].blocks[1].operations[1].replaceUses(of: "w", with: "after")
        do {
            try MILVerifier.verify(late)
            Issue.record("a body reading a variable defined after the loop verified")
        } catch {
            #expect(error.problem.contains("'after'"))
            #expect(error.op == "loop" && error.type == "while_loop")
        }

        let leak = loopProgram()
        leak.operations.append(MILOperation(type: "relu", name: "outside", inputs: [("x", [.variable("next_acc")])],
                                            outputs: [MILVar(name: "outside", type: f32x4)]))
        #expect(throws: MILVerificationError.self) { try MILVerifier.verify(leak) }

        let condition = loopProgram()
        condition.operations[4].blocks[0].outputs = ["i_c"]
        #expect(throws: MILVerificationError.self) { try MILVerifier.verify(condition) }

        let branches = condProgram()
        branches.operations[1].blocks[1].operations[0].outputs[0].type = MILTensorType(.fp32, [2, 4])
        try? MILVerifier.verify(branches)
        branches.operations[1].blocks[1].outputs = ["c1"]
        do {
            try MILVerifier.verify(branches)
            Issue.record("branches returning different types verified")
        } catch {
            #expect(error.problem.contains("mismatch"))
        }

        let twice = loopProgram()
        twice.operations[4].blocks[1].inputs[0].name = "w"
        #expect(throws: MILVerificationError.self) { try MILVerifier.verify(twice) }
    }
}
