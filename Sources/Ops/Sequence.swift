import GraphIR

/// Sequence ops (opset 11): SequenceEmpty, SequenceConstruct, SequenceInsert, SequenceErase, SequenceAt,
/// SequenceLength, SplitToSequence, ConcatFromSequence. Element types join; lengths are not tracked.
public enum SequenceOp: Operator {
    /// The opset 11 sequence ops, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("SequenceEmpty", [11]), OpSchema("SequenceConstruct", [11]), OpSchema("SequenceInsert", [11]),
                                 OpSchema("SequenceErase", [11]), OpSchema("SequenceAt", [11]), OpSchema("SequenceLength", [11]),
                                 OpSchema("SplitToSequence", [11, 24]), OpSchema("ConcatFromSequence", [11])]

    static func element(_ t: ValueType?) -> ValueType? {
        if case .sequence(let e)? = t { return e }
        return nil
    }

    /// The sequence or tensor each op yields, with element types joined and lengths not tracked.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        let fresh = { ctx.algebra.fresh() }
        switch ctx.opType {
        case "SequenceEmpty":
            return [.sequence(tensorType(try ctx.dataType("dtype") ?? .float, nil))]
        case "SequenceConstruct":
            let types = (0..<ctx.inputCount).map { ctx.type($0) ?? .unknown }
            guard let first = types.first else { throw ctx.fail("needs at least one input") }
            return [.sequence(types.dropFirst().reduce(first) { joinTypes($0, $1, fresh: fresh) })]
        case "SequenceInsert":
            guard ctx.has(0), ctx.has(1) else { throw ctx.fail("needs a sequence and a tensor") }
            let e = element(ctx.type(0))
            let t = ctx.type(1) ?? .unknown
            // Inserting into an empty sequence of unknown shape keeps the new element's shape unknown too.
            return [.sequence(e.map { joinTypes($0, t, fresh: fresh) } ?? t)]
        case "SequenceErase":
            guard ctx.has(0), let t = ctx.type(0) else { throw ctx.fail("input 0 is missing") }
            return [t]
        case "SequenceAt":
            guard ctx.has(0), ctx.has(1) else { throw ctx.fail("needs a sequence and a position") }
            return [element(ctx.type(0)) ?? .unknown]
        case "SequenceLength":
            return [tensorType(.int64, [])]
        case "SplitToSequence":
            guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
            let type = ctx.elementType(0)
            guard let shape = ctx.shape(0) else { return [.sequence(tensorType(type, nil))] }
            let axis = try ctx.axis(try ctx.int("axis", default: 0), rank: shape.count)
            var s = shape
            if !ctx.has(1) {
                if try ctx.int("keepdims", default: 1) == 0 { s.remove(at: axis) } else { s[axis] = .value(1) }
            } else if let split = ctx.value(1), split.dims.isEmpty, let v = split.ints {
                s[axis] = .value(Int(v[0]))  // equal chunks; the last may be shorter
                if case .value(let d) = shape[axis], v[0] > 0, d % Int(v[0]) != 0 { s[axis] = fresh() }
            } else {
                s[axis] = fresh()
            }
            return [.sequence(tensorType(type, s))]
        default:  // ConcatFromSequence
            guard ctx.has(0), case .tensor(let t)? = element(ctx.type(0)) else { return [tensorType(nil, nil)] }
            guard let shape = t.shape else { return [tensorType(t.elementType, nil)] }
            let newAxis = try ctx.int("new_axis", default: 0) != 0
            guard let axisValue = try ctx.int("axis") else { throw ctx.fail("attribute 'axis' is missing") }
            var s = shape
            if newAxis {
                s.insert(fresh(), at: try ctx.axis(axisValue, rank: shape.count + 1))
            } else {
                s[try ctx.axis(axisValue, rank: shape.count)] = fresh()
            }
            return [tensorType(t.elementType, s)]
        }
    }
}

/// Optional (15): Optional wraps its input (or the `type` attribute); OptionalHasElement is a bool scalar;
/// OptionalGetElement unwraps.
public enum OptionalOp: Operator {
    /// `Optional`, `OptionalHasElement` and `OptionalGetElement`, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("Optional", [15]), OpSchema("OptionalHasElement", [15, 18]), OpSchema("OptionalGetElement", [15, 18])]

    /// The wrapped type, a bool scalar, or the unwrapped type, per op.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        switch ctx.opType {
        case "Optional":
            if ctx.has(0), let t = ctx.type(0) { return [.optional(t)] }
            if case .type(let t)? = ctx.attribute("type") { return [.optional(t)] }
            throw ctx.fail("needs an input or the 'type' attribute")
        case "OptionalHasElement":
            return [tensorType(.bool, [])]
        default:
            guard ctx.has(0), let t = ctx.type(0) else { throw ctx.fail("input 0 is missing") }
            if case .optional(let e) = t { return [e] }
            return [t]  // from opset 18 a plain tensor or sequence passes through
        }
    }
}
