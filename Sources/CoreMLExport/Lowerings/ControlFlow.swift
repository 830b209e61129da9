import GraphIR

/// Lowers the nodes of a subgraph (an If branch, a Loop body) with the exporter's own machinery: every node goes
/// through its lowering exactly as a main-graph node does, emitting into the block being filled. The first refusal
/// is returned, naming the node.
struct NestedLowering {
    /// Checks (and, with `emit`, lowers) every node of `graph`; nil when all of them lower.
    let lower: (_ graph: Graph, _ attribute: String, _ emit: Bool) -> LoweringRefusal?
}

/// ONNX If decided at run time → MIL `cond`; ONNX Loop → MIL `while_loop` (iOS15/control_flow.py). An If whose
/// condition is known before run time never gets here: it is replaced by its branch first (`IfFolding`).
///
/// - If: the condition (a bool of one element) reshaped to a scalar `pred`; each branch's nodes lowered into a
///   block without inputs; the branches must return values of the If's output types (MIL's cond requires both
///   branches to agree, coremltools' `cond.type_inference`).
/// - Loop: loop variables (i int32, cond bool, the loop-carried values); the condition block returns
///   `i < M` (a trip count), the carried condition, or both (`logical_and`); the body block binds the body
///   graph's inputs (iteration number, condition, carried values) to its inputs, lowers the body's nodes, and
///   returns i + 1, the body's condition (the incoming one when the Loop has no condition input: ONNX then ignores
///   it) and the carried values. Carried values must keep their type across iterations (MIL's while_loop refuses
///   a loop variable that changes). Scan outputs (the body's extra outputs, stacked over iterations) are lowered
///   when every one of M iterations runs, M a constant (no condition input, or one that starts true and that the
///   body passes on unchanged, as PyTorch's `for` loops export): each is one more loop variable, [M, ...] zeros
///   written at row i by `scatter_nd`. Otherwise they are refused: their length would be known only at run time.
///
/// - Scan (opset 9 on): a while_loop over (i, the states, one stack per scan output) whose condition block is
///   i < T (T the static sequence length, the scan axis of every scan input) and whose body block gathers each
///   scan input's slice at i (T − 1 − i for a reverse direction) along its scan axis, binds the states and the
///   slices to the body graph's inputs, lowers its nodes, and writes each scan output at row i (T − 1 − i reversed)
///   of its stack ([T, ...] zeros; `scatter_nd`, mode update). A stack is transposed after the loop when its
///   scan_output_axes entry is not 0. States keep their type; scan outputs are static fp16, fp32 or int32 of rank
///   4 at most. Scan-8's batched form (with sequence_lens) is refused.
///
/// A block returns only values its own ops define (a branch returning an outer value or a block input gets an
/// `identity`), as coremltools' PyTorch frontend writes its loops (`mb.identity(x=cond)`).
enum ControlFlowLowering: OpLowering {
    static let opTypes = ["If", "Loop", "Scan"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        guard let nested = v.nested else { throw LoweringRefusal("subgraphs cannot be lowered here") }
        switch v.opType {
        case "If": return try planIf(v, nested)
        case "Loop": return try planLoop(v, nested)
        default: return try planScan(v, nested)
        }
    }

    /// The type of a stack of `count` values of `each` (a scan output): refused unless scatter_nd can write it.
    static func stackType(_ each: MILTensorType, count: Int, _ what: String) throws(LoweringRefusal) -> MILTensorType {
        guard each.isStatic, [.fp16, .fp32, .int32].contains(each.dtype), each.rank <= 4 else {
            throw LoweringRefusal("\(what) is \(each); MIL's scatter_nd stacks static fp16, fp32 or int32 tensors of rank 4 at most")
        }
        guard let elements = Tensor.elementCount(of: [count] + each.shape), elements <= 1 << 53 else {
            throw LoweringRefusal("\(what) stacked \(count) times has more elements than any tensor Core ML holds")
        }
        return MILTensorType(each.dtype, [count] + each.shape)
    }

    /// `value` written at row `row` (an int32 scalar) of `stack` (scatter_nd, mode update).
    static func writeRow(_ e: Emitter, _ stack: MILVar, row: MILVar, _ value: MILVar, suffix: String) -> MILVar {
        let at = e.op("reshape", [("x", .v(row)), ("shape", .c(.ints([1, 1])))], output: MILTensorType(.int32, [1, 1]), suffix: suffix + "_row")
        let update = e.op("expand_dims", [("x", .v(value)), ("axes", .c(.ints([0])))],
                          output: MILTensorType(value.type.dtype, [1] + value.type.shape), suffix: suffix + "_update")
        return e.op("scatter_nd", [("data", .v(stack)), ("indices", .v(at)), ("updates", .v(update)), ("mode", .c(.scalar("update")))],
                    output: stack.type, suffix: suffix)
    }

    /// The subgraph in attribute `name`.
    static func subgraph(_ v: NodeView, _ name: String) throws(LoweringRefusal) -> Graph {
        guard case .graph(let g)? = v.node.attribute(name)?.value else { throw LoweringRefusal("attribute \(name) is missing") }
        return g
    }

    /// A bool of one element (ONNX's conditions are [] or [1]).
    static func requireFlag(_ t: MILTensorType, _ what: String) throws(LoweringRefusal) {
        guard t.dtype == .bool, t.isStatic, t.count == 1, t.rank <= 1 else { throw LoweringRefusal("\(what) is \(t); a bool of one element is needed") }
    }

    /// `v` as a scalar (squeezed when it is [1]).
    static func scalar(_ e: Emitter, _ v: MILVar, suffix: String) -> MILVar {
        guard v.type.rank != 0 else { return v }
        return e.op("squeeze", [("x", .v(v)), ("axes", .c(.ints([0])))], output: v.type.with(shape: []), suffix: suffix)
    }

    /// Checks a subgraph's nodes with the values they read from their own initializers in scope, then forgets them.
    static func check(_ v: NodeView, _ nested: NestedLowering, _ g: Graph, _ attribute: String) throws(LoweringRefusal) {
        let saved = v.values.scope()
        defer { v.values.restore(saved) }
        for t in g.initializers { v.values.addConstant(t.name, ConstantValue(tensor: t)) }
        if let refusal = nested.lower(g, attribute, false) { throw refusal }
    }

    /// Lowers a subgraph into the open block and returns its outputs' variables (each defined by an op of the block).
    static func emitBlock(_ e: Emitter, _ nested: NestedLowering, _ g: Graph, _ attribute: String, outputs: [String],
                          bind: [(String, MILVar)] = []) throws(LoweringRefusal) -> [MILVar] {
        let values = e.view.values
        let saved = values.scope()
        defer { values.restore(saved) }
        for t in g.initializers { values.addConstant(t.name, ConstantValue(tensor: t)) }
        for (name, variable) in bind { values.bind(name, variable) }
        if let refusal = nested.lower(g, attribute, true) { throw refusal }
        var result: [MILVar] = []
        for name in outputs {
            let variable = try values.variable(name, builder: e.builder)
            // A block returns what its own ops define: an outer value, a constant or a block input goes through identity.
            result.append(e.builder.definedInOpenBlock(variable.name) ? variable
                          : e.op("identity", [("x", .v(variable))], output: variable.type, suffix: "_\(attribute)_\(name)"))
        }
        return result
    }

    // MARK: If

    static func planIf(_ v: NodeView, _ nested: NestedLowering) throws(LoweringRefusal) -> Emission {
        try requireFlag(try v.type(0), "the condition '\(v.node.inputs[0])'")
        let branches = [try subgraph(v, "then_branch"), try subgraph(v, "else_branch")]
        let outputs = v.node.outputs
        var types: [MILTensorType] = []
        for (i, name) in outputs.enumerated() {
            guard !name.isEmpty else { throw LoweringRefusal("output \(i) is unnamed") }
            types.append(try v.outputType(i))
        }
        for (g, attribute) in zip(branches, ["then_branch", "else_branch"]) {
            guard g.outputs.count == outputs.count else {
                throw LoweringRefusal("\(attribute) returns \(g.outputs.count) values for \(outputs.count) outputs")
            }
            for (o, want) in zip(g.outputs, types) {
                let have = try v.values.type(of: o.name)
                guard have == want else { throw LoweringRefusal("\(attribute) output '\(o.name)' is \(have), the If's output is \(want) (MIL's cond needs both branches to return the same types)") }
            }
            try check(v, nested, g, attribute)
        }
        return { e throws(LoweringRefusal) in
            let pred = scalar(e, try e.input(0), suffix: "_pred")
            var blocks: [MILBlock] = []
            for (g, attribute) in zip(branches, ["then_branch", "else_branch"]) {
                blocks.append(try e.builder.block(inputs: []) { _ throws(LoweringRefusal) in
                    try emitBlock(e, nested, g, attribute, outputs: g.outputs.map(\.name))
                })
            }
            let results = e.builder.op("cond", name: e.name(), [("pred", .v(pred))], outputs: types,
                                       outputNames: types.count == 1 ? nil : outputs.map { MILBuilder.identifier($0) }, blocks: blocks)
            return results.map { Optional($0) }
        }
    }

    // MARK: Loop

    static func planLoop(_ v: NodeView, _ nested: NestedLowering) throws(LoweringRefusal) -> Emission {
        let body = try subgraph(v, "body")
        let hasTrip = v.has(0), hasCond = v.has(1)
        guard hasTrip || hasCond else { throw LoweringRefusal("a Loop with neither a trip count nor a condition never ends") }
        if hasTrip {
            let m = try v.type(0)
            guard m.dtype == .int32, m.isStatic, m.count == 1, m.rank <= 1 else { throw LoweringRefusal("the trip count is \(m); an integer of one element is needed") }
            if let trip = try? v.ints(0), trip[0] > Int(Int32.max) {
                throw LoweringRefusal("the trip count \(trip[0]) is beyond int32 (Core ML computes integers in int32)")
            }
        }
        if hasCond { try requireFlag(try v.type(1), "the condition '\(v.node.inputs[1])'") }
        let carried = v.node.inputs.count - 2
        guard body.inputs.count == carried + 2, body.outputs.count >= carried + 1 else {
            throw LoweringRefusal("the body takes \(body.inputs.count) inputs and returns \(body.outputs.count) values for \(carried) loop-carried values")
        }
        let scans = body.outputs.count - 1 - carried
        var scanTypes: [MILTensorType] = []
        if scans > 0 {
            let names = body.outputs.suffix(scans).map { "'\($0.name)'" }.joined(separator: ", ")
            // Stacked over the iterations: exact when every one of M iterations runs, M a constant — no condition,
            // or a condition that starts true and that the body passes on unchanged (PyTorch's `for` exports).
            guard hasTrip, let trip = v.values.constant(v.node.inputs[0])?.ints, trip.count == 1, trip[0] >= 1 else {
                throw LoweringRefusal("scan outputs (\(names)) are lowered only with a constant trip count of at least 1: their length is the iteration count")
            }
            if hasCond {
                let passesOn = body.outputs[0].name == body.inputs[1].name || body.nodes.contains {
                    $0.opType == "Identity" && $0.inputs == [body.inputs[1].name] && $0.outputs == [body.outputs[0].name]
                }
                guard v.values.constant(v.node.inputs[1])?.bools == [true], passesOn else {
                    throw LoweringRefusal("scan outputs (\(names)) are lowered only when all \(trip[0]) iterations run (a condition that starts true and that the body passes on unchanged): their length is the iteration count")
                }
            }
            for (j, output) in body.outputs.suffix(scans).enumerated() {
                let stacked = try stackType(try v.values.type(of: output.name), count: trip[0], "scan output '\(output.name)'")
                if carried + j < v.node.outputs.count, !v.node.outputs[carried + j].isEmpty {
                    let out = try v.outputType(carried + j)
                    guard out == stacked else { throw LoweringRefusal("scan output \(j) is \(out), the stacked iterations \(stacked)") }
                }
                scanTypes.append(stacked)
            }
        }
        var types: [MILTensorType] = []
        for k in 0..<carried {
            guard v.has(k + 2) else { throw LoweringRefusal("loop-carried value \(k) has no initial value") }
            let initial = try v.type(k + 2)
            let inside = try v.values.type(of: body.inputs[k + 2].name)
            let returned = try v.values.type(of: body.outputs[k + 1].name)
            guard initial == inside, returned == initial else {
                throw LoweringRefusal("loop-carried value '\(body.inputs[k + 2].name)' is \(initial) before the loop and \(returned) after the body (MIL's while_loop keeps each loop variable's type)")
            }
            if k < v.node.outputs.count, !v.node.outputs[k].isEmpty {
                let out = try v.outputType(k)
                guard out == initial else { throw LoweringRefusal("output \(k) is \(out), its loop-carried value \(initial)") }
            }
            types.append(initial)
        }
        try requireFlag(try v.values.type(of: body.outputs[0].name), "the body's condition '\(body.outputs[0].name)'")
        for (k, input) in body.inputs.prefix(2).enumerated() {
            let t = try v.values.type(of: input.name)
            guard t.rank == 0 || (t.rank == 1 && t.count == 1), t.dtype == (k == 0 ? .int32 : .bool) else {
                throw LoweringRefusal("body input '\(input.name)' is \(t); ONNX gives an \(k == 0 ? "int64" : "bool") scalar")
            }
        }
        try check(v, nested, body, "body")
        return { e throws(LoweringRefusal) in
            let index = MILTensorType(.int32, []), flag = MILTensorType(.bool, [])
            let start = e.builder.const(.scalar(Int32(0)), name: e.name() + "_i0")
            let trip = hasTrip ? scalar(e, try e.input(0), suffix: "_trip") : nil
            let go = hasCond ? scalar(e, try e.input(1), suffix: "_cond") : e.builder.const(.scalar(true), name: e.name() + "_cond0")
            var initial = [start, go]
            for k in 0..<carried { initial.append(try e.input(k + 2)) }
            // Each scan output is a loop variable too: the stack, zeros at first, written at row i by the body
            // (scatter_nd, mode update).
            for (j, t) in scanTypes.enumerated() { initial.append(e.zeros(t, suffix: "_scan\(j)_0")) }
            let names = ["_i", "_go"] + body.inputs.dropFirst(2).map { "_" + $0.name } + scanTypes.indices.map { "_scan\($0)" }
            let inputs = zip(names, initial).map { (name: e.name() + $0, type: $1.type) }
            let condition = e.builder.block(inputs: inputs) { vars in
                guard let trip else { return [e.op("identity", [("x", .v(vars[1]))], output: flag, suffix: "_go_on")] }
                let within = e.op("less", [("x", .v(vars[0])), ("y", .v(trip))], output: flag, suffix: "_within")
                guard hasCond else { return [within] }
                return [e.op("logical_and", [("x", .v(within)), ("y", .v(vars[1]))], output: flag, suffix: "_go_on")]
            }
            let block = try e.builder.block(inputs: inputs) { vars throws(LoweringRefusal) in
                // The body graph's inputs read the block's: ONNX's iteration number and condition may be [1].
                var bind: [(String, MILVar)] = []
                for (k, input) in body.inputs.enumerated() {
                    var value = vars[k]
                    let want = try e.view.values.type(of: input.name)
                    if want != value.type {
                        value = e.op("reshape", [("x", .v(value)), ("shape", .c(.ints(want.shape)))], output: want, suffix: "_\(input.name)_in")
                    }
                    bind.append((input.name, value))
                }
                // Without a condition input ONNX ignores the body's condition (the loop runs M times): it stays true.
                let wanted = body.outputs.dropFirst(hasCond ? 0 : 1).map(\.name)
                var returned = try emitBlock(e, nested, body, "body", outputs: wanted, bind: bind)
                if hasCond {
                    returned[0] = scalar(e, returned[0], suffix: "_go_next")
                } else {
                    returned.insert(e.op("identity", [("x", .v(vars[1]))], output: flag, suffix: "_go_same"), at: 0)
                }
                for j in scanTypes.indices {
                    returned[1 + carried + j] = writeRow(e, vars[2 + carried + j], row: vars[0], returned[1 + carried + j], suffix: "_scan\(j)")
                }
                let next = e.op("add", [("x", .v(vars[0])), ("y", .c(.scalar(Int32(1))))], output: index, suffix: "_i_next")
                return [next] + returned
            }
            let outs = e.builder.op("while_loop", name: e.name() + "_loop", [("loop_vars", .list(initial))],
                                    outputs: [index, flag] + types + scanTypes, blocks: [condition, block])
            return Array(outs.dropFirst(2)).map { Optional($0) }
        }
    }

    // MARK: Scan

    static func planScan(_ v: NodeView, _ nested: NestedLowering) throws(LoweringRefusal) -> Emission {
        guard v.opset >= 9 else { throw LoweringRefusal("Scan-8's batched form (with sequence_lens) is not lowered") }
        let body = try subgraph(v, "body")
        let m = v.int("num_scan_inputs") ?? 0
        let n = v.node.inputs.count - m
        guard m >= 1, n >= 0, body.inputs.count == n + m, body.outputs.count >= n else {
            throw LoweringRefusal("the body takes \(body.inputs.count) inputs and returns \(body.outputs.count) values for \(max(n, 0)) states and \(m) scan inputs")
        }
        let k = body.outputs.count - n
        func list(_ name: String, _ count: Int) throws(LoweringRefusal) -> [Int] {
            guard let values = v.ints(name) else { return Array(repeating: 0, count: count) }
            guard values.count == count else { throw LoweringRefusal("\(name) has \(values.count) entries for \(count)") }
            return values
        }
        let inputAxes = try list("scan_input_axes", m), inputReversed = try list("scan_input_directions", m).map { $0 != 0 }
        let outputAxes = try list("scan_output_axes", k), outputReversed = try list("scan_output_directions", k).map { $0 != 0 }

        // The sequence length: every scan input's (static) scan axis.
        var length: Int?
        var axes: [Int] = []
        for j in 0..<m {
            let t = try v.type(n + j)
            guard t.isStatic, t.rank >= 1 else { throw LoweringRefusal("scan input '\(v.node.inputs[n + j])' is \(t); a static tensor is needed") }
            let a = inputAxes[j] < 0 ? inputAxes[j] + t.rank : inputAxes[j]
            guard a >= 0, a < t.rank else { throw LoweringRefusal("scan input axis \(inputAxes[j]) is out of range for \(t)") }
            guard length == nil || length == t.shape[a] else {
                throw LoweringRefusal("scan input '\(v.node.inputs[n + j])' has \(t.shape[a]) steps, an earlier one \(length!)")
            }
            length = t.shape[a]
            axes.append(a)
        }
        guard let steps = length, steps >= 1, steps <= Int(Int32.max) else {
            throw LoweringRefusal("the sequence has \(length ?? 0) steps; a Scan of at least one step is lowered")
        }
        var types: [MILTensorType] = []
        for i in 0..<n {
            let initial = try v.type(i)
            let inside = try v.values.type(of: body.inputs[i].name), returned = try v.values.type(of: body.outputs[i].name)
            guard initial == inside, returned == initial else {
                throw LoweringRefusal("state '\(body.inputs[i].name)' is \(initial) before the scan and \(returned) after the body (MIL's while_loop keeps each loop variable's type)")
            }
            if i < v.node.outputs.count, !v.node.outputs[i].isEmpty, try v.outputType(i) != initial {
                throw LoweringRefusal("output \(i) is \(try v.outputType(i)), its state \(initial)")
            }
            types.append(initial)
        }
        var stackTypes: [MILTensorType] = [], outputTypes: [MILTensorType] = [], stepAxes: [Int] = []
        for j in 0..<k {
            let output = body.outputs[n + j]
            let stacked = try stackType(try v.values.type(of: output.name), count: steps, "scan output '\(output.name)'")
            let a = outputAxes[j] < 0 ? outputAxes[j] + stacked.rank : outputAxes[j]
            guard a >= 0, a < stacked.rank else { throw LoweringRefusal("scan output axis \(outputAxes[j]) is out of range for \(stacked)") }
            stepAxes.append(a)
            var shape = Array(stacked.shape.dropFirst())
            shape.insert(steps, at: a)
            let out = MILTensorType(stacked.dtype, shape)
            if n + j < v.node.outputs.count, !v.node.outputs[n + j].isEmpty, try v.outputType(n + j) != out {
                throw LoweringRefusal("scan output \(j) is \(try v.outputType(n + j)), the stacked steps \(out)")
            }
            stackTypes.append(stacked)
            outputTypes.append(out)
        }
        try check(v, nested, body, "body")
        return { e throws(LoweringRefusal) in
            let index = MILTensorType(.int32, []), flag = MILTensorType(.bool, [])
            let bound = e.builder.const(.scalar(Int32(steps)), name: e.name() + "_steps")
            let last = e.builder.const(.scalar(Int32(steps - 1)), name: e.name() + "_last")
            var initial = [e.builder.const(.scalar(Int32(0)), name: e.name() + "_i0")]
            for i in 0..<n { initial.append(try e.input(i)) }
            for (j, t) in stackTypes.enumerated() { initial.append(e.zeros(t, suffix: "_scan\(j)_0")) }
            let sequences = try (0..<m).map { j throws(LoweringRefusal) in try e.input(n + j) }
            let names = ["_i"] + body.inputs.prefix(n).map { "_" + $0.name } + stackTypes.indices.map { "_scan\($0)" }
            let inputs = zip(names, initial).map { (name: e.name() + $0, type: $1.type) }
            let condition = e.builder.block(inputs: inputs) { vars in
                [e.op("less", [("x", .v(vars[0])), ("y", .v(bound))], output: flag, suffix: "_within")]
            }
            let block = try e.builder.block(inputs: inputs) { vars throws(LoweringRefusal) in
                var backward: MILVar?
                func position(_ reversed: Bool) -> MILVar {
                    guard reversed else { return vars[0] }
                    if backward == nil { backward = e.op("sub", [("x", .v(last)), ("y", .v(vars[0]))], output: index, suffix: "_i_reversed") }
                    return backward!
                }
                var bind: [(String, MILVar)] = []
                for i in 0..<n { bind.append((body.inputs[i].name, vars[1 + i])) }
                for j in 0..<m {
                    let x = sequences[j], a = axes[j]
                    let at = e.op("reshape", [("x", .v(position(inputReversed[j]))), ("shape", .c(.ints([1])))],
                                  output: MILTensorType(.int32, [1]), suffix: "_in\(j)_at")
                    var one = x.type.shape
                    one[a] = 1
                    let row = e.op("gather", [("x", .v(x)), ("indices", .v(at)), ("axis", .c(.scalar(Int32(a))))],
                                   output: x.type.with(shape: one), suffix: "_in\(j)_row")
                    let want = try e.view.values.type(of: body.inputs[n + j].name)
                    var slice = x.type.shape
                    slice.remove(at: a)
                    guard want.shape == slice, want.dtype == x.type.dtype else {
                        throw LoweringRefusal("body input '\(body.inputs[n + j].name)' is \(want), a step of '\(v.node.inputs[n + j])' is \(x.type.dtype)\(slice)")
                    }
                    bind.append((body.inputs[n + j].name, e.op("squeeze", [("x", .v(row)), ("axes", .c(.ints([a])))], output: want, suffix: "_in\(j)")))
                }
                var returned = try emitBlock(e, nested, body, "body", outputs: body.outputs.map(\.name), bind: bind)
                for j in 0..<k {
                    returned[n + j] = writeRow(e, vars[1 + n + j], row: position(outputReversed[j]), returned[n + j], suffix: "_scan\(j)")
                }
                let next = e.op("add", [("x", .v(vars[0])), ("y", .c(.scalar(Int32(1))))], output: index, suffix: "_i_next")
                return [next] + returned
            }
            let outs = e.builder.op("while_loop", name: e.name() + "_loop", [("loop_vars", .list(initial))],
                                    outputs: [index] + types + stackTypes, blocks: [condition, block])
            var results = Array(outs.dropFirst()).map { Optional($0) }
            for j in 0..<k where stepAxes[j] != 0 {
                // The steps axis moved from 0 to scan_output_axes[j].
                var perm = Array(1..<stackTypes[j].rank)
                perm.insert(0, at: stepAxes[j])
                results[n + j] = e.op("transpose", [("x", .v(outs[1 + n + j])), ("perm", .c(.ints(perm)))],
                                      output: outputTypes[j], suffix: "_scan\(j)_axis")
            }
            return results
        }
    }
}
