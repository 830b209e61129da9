import GraphIR

/// LayerNormalization (17): Y like X; Mean and InvStdDev keep X's dims before `axis` and have 1 after, in the
/// `stash_type` (float by default).
public enum LayerNormalizationOp: Operator {
    /// `LayerNormalization`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("LayerNormalization", [17])]

    /// Y with X's type and shape, then Mean and InvStdDev as described above.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), ctx.has(1) else { throw ctx.fail("needs X and Scale") }
        let type = ctx.elementType(0)
        let stash = try ctx.dataType("stash_type") ?? .float
        let outputs = ctx.node.outputs.count
        guard let shape = ctx.shape(0) else {
            return [tensorType(type, nil)] + Array(repeating: tensorType(stash, nil), count: max(outputs - 1, 0))
        }
        let axis = try ctx.axis(try ctx.int("axis", default: -1), rank: shape.count)
        let stats = Array(shape[..<axis]) + Array(repeating: Dim.value(1), count: shape.count - axis)
        return [tensorType(type, shape)] + Array(repeating: tensorType(stash, stats), count: max(outputs - 1, 0))
    }
}

/// BatchNormalization: Y like X. Training outputs: running mean and variance [C] (from opset 14); before that,
/// mean, var, saved_mean, saved_var [C].
public enum BatchNormalizationOp: Operator {
    /// `BatchNormalization`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("BatchNormalization", [1, 6, 7, 9, 14, 15])]

    /// Y with X's type, then one [C] vector per extra output.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), let type = ctx.type(0) else { throw ctx.fail("input 0 is missing") }
        let channels = ctx.shape(0).flatMap { $0.count >= 2 ? $0[1] : nil } ?? ctx.shape(1)?.first ?? ctx.algebra.fresh()
        let statsType = ctx.since >= 15 ? (ctx.elementType(3) ?? ctx.elementType(0)) : ctx.elementType(0)
        let extra = max(ctx.node.outputs.count - 1, 0)
        return [type] + Array(repeating: tensorType(statsType, [channels]), count: extra)
    }
}

/// LSTM, GRU and RNN: Y [seq, directions, batch, hidden] (or [batch, seq, directions, hidden] with layout 1, from
/// opset 14), Y_h and LSTM's Y_c [directions, batch, hidden] (or [batch, directions, hidden]).
public enum RecurrentOp: Operator {
    /// `LSTM`, `GRU` and `RNN`, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("LSTM", [1, 7, 14, 22]), OpSchema("GRU", [1, 3, 7, 14, 22]), OpSchema("RNN", [1, 7, 14, 22])]

    /// Y, then Y_h (and LSTM's Y_c), shaped as described above for the `layout`; throws on an unknown direction.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), ctx.has(1), ctx.has(2) else { throw ctx.fail("needs X, W and R") }
        let type = ctx.elementType(0)
        let direction = try ctx.string("direction", default: "forward")
        guard ["forward", "reverse", "bidirectional"].contains(direction) else { throw ctx.fail("direction '\(direction)' is not known") }
        let directions = Dim.value(direction == "bidirectional" ? 2 : 1)
        let layout = ctx.since >= 14 ? try ctx.int("layout", default: 0) : 0
        guard layout == 0 || layout == 1 else { throw ctx.fail("layout \(layout) is not 0 or 1") }
        let hidden: Dim
        if let h = try ctx.int("hidden_size") {
            guard h >= 1 else { throw ctx.fail("hidden_size \(h) is below 1") }
            hidden = .value(h)
        } else if let r = ctx.shape(2), r.count == 3 {
            hidden = r[2]
        } else {
            hidden = ctx.algebra.fresh()
        }
        let x = ctx.shape(0)
        if let x, x.count != 3 { throw ctx.fail("X has rank \(x.count), not 3") }
        let seq = x.map { layout == 0 ? $0[0] : $0[1] } ?? ctx.algebra.fresh()
        let batch = x.map { layout == 0 ? $0[1] : $0[0] } ?? ctx.algebra.fresh()
        let y: [Dim] = layout == 0 ? [seq, directions, batch, hidden] : [batch, seq, directions, hidden]
        let state: [Dim] = layout == 0 ? [directions, batch, hidden] : [batch, directions, hidden]
        let outputs = ctx.node.outputs.count
        return (0..<outputs).map { $0 == 0 ? tensorType(type, y) : tensorType(type, state) }
    }
}
