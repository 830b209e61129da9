/// Control flow: iOS15/control_flow.py (`while_loop`, `cond`). Both hold nested blocks (MIL.proto
/// `Operation.blocks`); the verifier types the blocks first and hands their input and output types to these
/// definitions (`MILOpContext.blocks`).
///
/// - `while_loop(loop_vars)`: two blocks, the condition and the body, each taking one input per loop variable (the
///   loop variables as the block names them). The condition block returns one bool; the body returns as many values
///   as there are loop variables, each of the type of its loop variable (coremltools' `build_nested_blocks` raises
///   "loop_vars … changes in the body" otherwise). The op's outputs are the body's output types
///   (`type_inference`: `tuple(v.sym_type for v in self.blocks[1].outputs)`).
/// - `cond(pred)`: `pred` a bool scalar; two blocks without inputs, the true and the false branch, returning values
///   of the same types (`type_inference` raises "true branch output … mismatch false branch"); the outputs are the
///   true branch's types.
enum MILControlFlowDefinitions {
    static let file = "iOS15/control_flow.py"

    static let all: [MILOpDefinition] = [whileLoop, cond]

    /// A block input may leave a dim unknown where the loop variable has it (coremltools' `get_compat_shape`).
    static func fits(_ value: MILTensorType, _ slot: MILTensorType) -> Bool {
        value.dtype == slot.dtype && value.rank == slot.rank
            && zip(value.shape, slot.shape).allSatisfy { $0 == $1 || $1 == MILTensorType.unknownDim }
    }

    static let whileLoop = MILOpDefinition("while_loop", file: file) { c throws(MILTypeError) in
        let vars = try c.types("loop_vars")
        guard !vars.isEmpty else { throw MILTypeError("loop_vars is empty") }
        guard c.blocks.count == 2 else { throw MILTypeError("while_loop takes 2 blocks (condition, body), got \(c.blocks.count)") }
        for (k, what) in [(0, "condition"), (1, "body")] {
            let block = c.blocks[k]
            guard block.inputs.count == vars.count else {
                throw MILTypeError("the \(what) block takes \(block.inputs.count) inputs for \(vars.count) loop_vars")
            }
            for (i, (v, input)) in zip(vars, block.inputs).enumerated() where !fits(v, input) {
                throw MILTypeError("the \(what) block's input \(i) is \(input), loop_vars[\(i)] is \(v)")
            }
        }
        let condition = c.blocks[0].outputs
        guard condition.count == 1, condition[0].dtype == .bool, condition[0].isStatic, condition[0].count == 1 else {
            throw MILTypeError("the condition block must return one bool, got \(condition.map(\.description))")
        }
        let body = c.blocks[1].outputs
        guard body.count == vars.count else {
            throw MILTypeError("the body block returns \(body.count) values for \(vars.count) loop_vars")
        }
        for (i, (out, input)) in zip(body, c.blocks[1].inputs).enumerated() where !fits(out, input) {
            throw MILTypeError("loop_vars[\(i)] changes in the body: \(input) -> \(out)")
        }
        return body
    }

    static let cond = MILOpDefinition("cond", file: file, domains: ["pred": [.bool]]) { c throws(MILTypeError) in
        let pred = try c.type("pred")
        guard pred.rank == 0 else { throw MILTypeError("pred must be a bool scalar, got \(pred)") }
        guard c.blocks.count == 2 else { throw MILTypeError("cond takes 2 blocks (true, false), got \(c.blocks.count)") }
        guard c.blocks.allSatisfy({ $0.inputs.isEmpty }) else { throw MILTypeError("cond's blocks take no inputs") }
        let (t, f) = (c.blocks[0].outputs, c.blocks[1].outputs)
        guard !t.isEmpty else { throw MILTypeError("the true branch returns nothing") }
        guard t.count == f.count else { throw MILTypeError("the true branch returns \(t.count) values, the false branch \(f.count)") }
        for (i, (a, b)) in zip(t, f).enumerated() where a != b {
            throw MILTypeError("true branch output \(i) type \(a) mismatch false branch output type \(b)")
        }
        return t
    }
}
