import GraphIR

/// The common part of two types (If branches, loop-carried values, sequence elements): what both agree on, with
/// a fresh symbol where two dims differ and an unknown rank where ranks differ.
public func joinTypes(_ a: ValueType, _ b: ValueType, fresh: () -> Dim) -> ValueType {
    switch (a, b) {
    case (.tensor(let x), .tensor(let y)):
        return .tensor(joinTensors(x, y, fresh: fresh))
    case (.sparseTensor(let x), .sparseTensor(let y)):
        return .sparseTensor(joinTensors(x, y, fresh: fresh))
    case (.sequence(let x), .sequence(let y)):
        return .sequence(joinTypes(x, y, fresh: fresh))
    case (.optional(let x), .optional(let y)):
        return .optional(joinTypes(x, y, fresh: fresh))
    case (.unknown, _), (_, .unknown):
        return .unknown
    default:
        return a == b ? a : .unknown
    }
}

private func joinTensors(_ x: TensorType, _ y: TensorType, fresh: () -> Dim) -> TensorType {
    let element = x.elementType == y.elementType ? x.elementType : nil
    guard let s = x.shape, let t = y.shape, s.count == t.count else { return TensorType(elementType: element, shape: nil) }
    return TensorType(elementType: element, shape: zip(s, t).map { $0 == $1 ? $0 : fresh() })
}

/// If: the outputs of the branch the condition picks when it is known, else the join of both branches' outputs.
public enum IfOp: Operator {
    /// `If`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("If", [1, 11, 13, 16, 19, 21, 23, 24, 25])]

    static func condition(_ ctx: OpContext) -> Bool? {
        guard let v = ctx.value(0), v.count == 1 else { return nil }
        switch v.elements {
        case .bools(let b): return b[0]
        default: return nil
        }
    }

    /// The output types of the branch a known condition picks, else the join of both branches' output types.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 (cond) is missing") }
        let thenOut = try ctx.inferSubgraph("then_branch", inputs: [])
        let elseOut = try ctx.inferSubgraph("else_branch", inputs: [])
        let n = ctx.node.outputs.count
        guard thenOut.count == n, elseOut.count == n else {
            throw ctx.fail("the branches have \(thenOut.count) and \(elseOut.count) outputs for \(n)")
        }
        if let c = condition(ctx) { return (c ? thenOut : elseOut).map(\.type) }
        return zip(thenOut, elseOut).map { joinTypes($0.type, $1.type, fresh: { ctx.algebra.fresh() }) }
    }

    /// The known outputs of the branch a known condition picks; nil when the condition is not known.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard let c = condition(ctx) else { return nil }
        return try ctx.inferSubgraph(c ? "then_branch" : "else_branch", inputs: []).map(\.knownValue)
    }
}

/// Loop: the body is inferred with the loop-carried values' types, again with the join of those and the body's
/// results until they agree (at most three rounds). Scan outputs gain a leading trip-count dim: M when the trip
/// count is constant and the loop cannot stop early (no condition, or a constant true one the body passes on
/// unchanged), else a fresh symbol.
public enum LoopOp: Operator {
    /// `Loop`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Loop", [1, 11, 13, 16, 19, 21, 23, 24, 25])]

    /// Loop-carried types joined over at most three rounds of body inference, then the scan outputs with a
    /// leading trip-count dim.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard case .graph(let body)? = ctx.attribute("body") else { throw ctx.fail("attribute 'body' is missing") }
        let carriedCount = max(ctx.inputCount - 2, 0)
        var carried = (0..<carriedCount).map { ctx.type($0 + 2) ?? .unknown }
        var outs: [ValueState] = []
        for round in 0..<3 {
            // The condition is a bool scalar, but runtimes pass the outer one as it is (often [1]).
            let condition = ctx.has(1) ? (ctx.type(1) ?? tensorType(.bool, [])) : tensorType(.bool, [])
            outs = try ctx.inferSubgraph("body", inputs: [tensorType(.int64, []), condition] + carried)
            guard outs.count >= 1 + carriedCount else {
                throw ctx.fail("the body has \(outs.count) outputs for \(carriedCount) loop-carried values")
            }
            let next = (0..<carriedCount).map { outs[$0 + 1].type }
            if next == carried || round == 2 {
                carried = zip(carried, next).map { $0 == $1 ? $0 : joinTypes($0, $1, fresh: { ctx.algebra.fresh(lowerBound: 0) }) }
                break
            }
            carried = zip(carried, next).map { joinTypes($0, $1, fresh: { ctx.algebra.fresh(lowerBound: 0) }) }
        }
        let scans = outs.dropFirst(1 + carriedCount).map { state -> ValueType in
            guard case .tensor(let t) = state.type else { return .unknown }
            return tensorType(t.elementType, t.shape.map { [tripCount(ctx, body: body)] + $0 })
        }
        let types = carried + scans
        let n = ctx.node.outputs.count
        guard types.count == n else { throw ctx.fail("the body gives \(types.count) outputs, the node has \(n)") }
        return types
    }

    static func tripCount(_ ctx: OpContext, body: Graph) -> Dim {
        guard ctx.has(0), let m = ctx.scalarDim(0) else { return ctx.algebra.fresh(lowerBound: 0) }
        if !ctx.has(1) { return m }
        guard let c = ctx.value(1), case .bools(let b) = c.elements, b == [true], body.inputs.count >= 2, !body.outputs.isEmpty else {
            return ctx.algebra.fresh(lowerBound: 0)
        }
        let condIn = body.inputs[1].name, condOut = body.outputs[0].name
        if condIn == condOut { return m }
        if body.nodes.contains(where: { $0.opType == "Identity" && $0.inputs == [condIn] && $0.outputs == [condOut] }) { return m }
        return ctx.algebra.fresh(lowerBound: 0)
    }
}

/// Scan (opset 9 on; opset 8's batched form with sequence_lens too): the body sees the states and one slice of
/// each scan input (its scan axis removed); scan outputs stack the body's along `scan_output_axes` with the
/// sequence length.
public enum ScanOp: Operator {
    /// `Scan`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Scan", [8, 9, 11, 16, 19, 21, 23, 24, 25])]

    /// The body's state outputs, then its scan outputs stacked with the sequence length (batch first before
    /// opset 9).
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard let m = try ctx.int("num_scan_inputs"), m >= 1 else { throw ctx.fail("attribute 'num_scan_inputs' is missing or below 1") }
        let batched = ctx.since < 9
        let first = batched ? 1 : 0
        let n = ctx.inputCount - first - m
        guard n >= 0 else { throw ctx.fail("has \(ctx.inputCount) inputs for \(m) scan inputs") }
        let alg = ctx.algebra
        let inputAxes = batched ? Array(repeating: 1, count: m) : (try ctx.ints("scan_input_axes") ?? Array(repeating: 0, count: m))
        guard inputAxes.count == m else { throw ctx.fail("scan_input_axes has \(inputAxes.count) entries for \(m) scan inputs") }
        var batch: Dim?
        var sequence: Dim?
        var states: [ValueType] = []
        for i in 0..<n {
            guard let t = ctx.tensor(first + i) else { states.append(ctx.type(first + i) ?? .unknown); continue }
            if batched, let s = t.shape, !s.isEmpty {
                batch = batch ?? s[0]
                states.append(tensorType(t.elementType, Array(s.dropFirst())))
            } else {
                states.append(.tensor(t))
            }
        }
        var slices: [ValueType] = []
        for k in 0..<m {
            let index = first + n + k
            guard let t = ctx.tensor(index), let s = t.shape else { slices.append(ctx.type(index).map { _ in tensorType(ctx.elementType(index), nil) } ?? .unknown); continue }
            let axis = try ctx.axis(inputAxes[k], rank: s.count, name: "scan input axis")
            sequence = sequence.map { alg.unify($0, s[axis]) } ?? s[axis]
            var rest = s
            rest.remove(at: axis)
            if batched, !rest.isEmpty { batch = batch ?? rest[0]; rest.removeFirst() }
            slices.append(tensorType(t.elementType, rest))
        }
        let outs = try ctx.inferSubgraph("body", inputs: states + slices)
        guard outs.count >= n else { throw ctx.fail("the body has \(outs.count) outputs for \(n) states") }
        let k = outs.count - n
        let outputAxes = batched ? Array(repeating: 0, count: k) : (try ctx.ints("scan_output_axes") ?? Array(repeating: 0, count: k))
        guard outputAxes.count == k else { throw ctx.fail("scan_output_axes has \(outputAxes.count) entries for \(k) scan outputs") }
        let seq = sequence ?? alg.fresh(lowerBound: 0)
        var types: [ValueType] = outs.prefix(n).map { state in
            guard batched, case .tensor(let t) = state.type else { return state.type }
            return tensorType(t.elementType, t.shape.map { [batch ?? alg.fresh()] + $0 })
        }
        for j in 0..<k {
            guard case .tensor(let t) = outs[n + j].type, let s = t.shape else { types.append(tensorType(outs[n + j].elementType, nil)); continue }
            var stacked = s
            if batched {
                stacked = [batch ?? alg.fresh(), seq] + s
            } else {
                let axis = try ctx.axis(outputAxes[j], rank: s.count + 1, name: "scan output axis")
                stacked.insert(seq, at: axis)
            }
            types.append(tensorType(t.elementType, stacked))
        }
        guard types.count == ctx.node.outputs.count else {
            throw ctx.fail("the body gives \(types.count) outputs, the node has \(ctx.node.outputs.count)")
        }
        return types
    }
}

extension ValueState {
    var elementType: DataType? {
        if case .tensor(let t) = type { return t.elementType }
        return nil
    }
}
