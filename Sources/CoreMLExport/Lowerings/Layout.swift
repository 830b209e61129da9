/// Reshape, Flatten, Squeeze, Unsqueeze → reshape to the statically inferred output shape (ONNX's 0 / −1 /
/// allowzero rules are already resolved by shape inference, so no rule is re-implemented here).
enum ReshapeLowering: OpLowering {
    static let opTypes = ["Reshape", "Flatten", "Squeeze", "Unsqueeze"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), out = try v.outputType()
        if !x.isStatic || !out.isStatic { return try flexible(v, x, out) }
        guard x.count == out.count else { throw LoweringRefusal("reshape of \(x.shape) to \(out.shape) changes the element count") }
        return { e throws(LoweringRefusal) in
            let input = try e.input(0)
            if out.rank == 0 {
                return [e.op("squeeze", [("x", .v(input))], output: out)]
            }
            return [e.op("reshape", [("x", .v(input)), ("shape", .c(.ints(out.shape)))], output: out)]
        }
    }

    /// With dims known only at run time: Unsqueeze/Squeeze as expand_dims/squeeze on the axes that change; a
    /// reshape whose target has one unknown dim (-1 there), or keeps the rank (ONNX's constant shape as it is: MIL's
    /// reshape copies a 0 and infers a -1 as ONNX does when the ranks agree, iOS15/tensor_transformation.py), or is
    /// computed at run time (the ONNX shape input's own MIL value).
    static func flexible(_ v: NodeView, _ x: MILTensorType, _ out: MILTensorType) throws(LoweringRefusal) -> Emission {
        let u = MILTensorType.unknownDim
        let unknowns = out.shape.filter { $0 == u }.count
        if v.opType == "Unsqueeze" || v.opType == "Squeeze" {
            let axes: [Int]
            if v.opType == "Unsqueeze" {
                // The output dims of size 1 that are not input dims: walk both shapes.
                guard out.rank > x.rank else { throw LoweringRefusal("Unsqueeze to rank \(out.rank) from \(x.rank)") }
                axes = try v.has(1) ? v.ints(1).map { $0 < 0 ? $0 + out.rank : $0 } : (v.ints("axes") ?? []).map { $0 < 0 ? $0 + out.rank : $0 }
                guard axes.count == out.rank - x.rank else { throw LoweringRefusal("Unsqueeze axes \(axes) for rank \(x.rank) → \(out.rank)") }
                return { e throws(LoweringRefusal) in
                    [e.op("expand_dims", [("x", .v(try e.input(0))), ("axes", .c(.ints(axes.sorted())))], output: out)]
                }
            }
            axes = try v.has(1) ? v.ints(1).map { $0 < 0 ? $0 + x.rank : $0 } : (v.ints("axes") ?? []).map { $0 < 0 ? $0 + x.rank : $0 }
            guard !axes.isEmpty, axes.count == x.rank - out.rank, axes.allSatisfy({ x.shape.indices.contains($0) && x.shape[$0] == 1 }) else {
                throw LoweringRefusal("Squeeze of a flexible input needs axes of static size 1", rule: FlexibleShapes.rule.id)
            }
            return { e throws(LoweringRefusal) in
                [e.op("squeeze", [("x", .v(try e.input(0))), ("axes", .c(.ints(axes.sorted())))], output: out)]
            }
        }
        if unknowns <= 1 {
            let target = out.shape
            return { e throws(LoweringRefusal) in
                [e.op("reshape", [("x", .v(try e.input(0))), ("shape", .c(.ints(target)))], output: out)]
            }
        }
        if v.opType == "Reshape", v.int("allowzero", default: 0) == 0 {
            if v.isConstant(1), out.rank == x.rank, let given = try? v.ints(1), given.filter({ $0 == -1 }).count <= 1 {
                return { e throws(LoweringRefusal) in
                    [e.op("reshape", [("x", .v(try e.input(0))), ("shape", .c(.ints(given)))], output: out)]
                }
            }
            if !v.isConstant(1) {
                let shapeType = try v.type(1)
                guard shapeType.dtype == .int32, shapeType.shape == [out.rank] else {
                    throw LoweringRefusal("Reshape's shape is \(shapeType); a rank-1 integer of length \(out.rank) is needed")
                }
                v.values.note("reshape:" + v.node.outputs[0], "'\(v.node.outputs[0])': a shape computed at run time must not hold 0 unless it keeps the rank (MIL copies a 0 only then)")
                return { e throws(LoweringRefusal) in
                    [e.op("reshape", [("x", .v(try e.input(0))), ("shape", .v(try e.input(1)))], output: out)]
                }
            }
        }
        throw LoweringRefusal("\(v.opType) to \(out) has \(unknowns) dims known only at run time and no run-time shape to give MIL's reshape",
                              rule: FlexibleShapes.rule.id)
    }
}

enum TransposeLowering: OpLowering {
    static let opTypes = ["Transpose"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), out = try v.outputType()
        let perm = v.ints("perm") ?? Array((0..<x.rank).reversed())
        guard perm.sorted() == Array(0..<x.rank) else { throw LoweringRefusal("perm \(perm) is not a permutation of rank \(x.rank)") }
        return { e throws(LoweringRefusal) in [e.op("transpose", [("x", .v(try e.input(0))), ("perm", .c(.ints(perm)))], output: out)] }
    }
}

enum ConcatLowering: OpLowering {
    static let opTypes = ["Concat"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let out = try v.outputType()
        let axis = try v.axis(v.int("axis", default: 0), rank: out.rank)
        var present: [Int] = []
        for i in v.node.inputs.indices where v.has(i) {
            let t = try v.type(i)
            guard t.dtype == out.dtype else { throw LoweringRefusal("input \(i) is \(t.dtype), the output \(out.dtype)") }
            if !t.shape.contains(0) { present.append(i) }  // empty parts (a zero-length dim) add nothing
        }
        guard !present.isEmpty else { throw LoweringRefusal("every input is empty") }
        return { e throws(LoweringRefusal) in
            var parts: [MILVar] = []
            for i in present { parts.append(try e.input(i)) }
            if parts.count == 1 { return [e.op("identity", [("x", .v(parts[0]))], output: out)] }
            return [e.op("concat", [("values", .list(parts)), ("axis", .c(.scalar(Int32(axis)))), ("interleave", .c(.scalar(false)))],
                         output: out)]
        }
    }
}

/// Split → split with explicit sizes (from the inferred output shapes, which already apply ONNX's rules for
/// `split`, `num_outputs` and uneven last parts).
enum SplitLowering: OpLowering {
    static let opTypes = ["Split"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0)
        let axis = try v.axis(v.int("axis", default: 0), rank: x.rank)
        var outs: [MILTensorType] = []
        for i in v.node.outputs.indices { outs.append(try v.outputType(i)) }
        let sizes = outs.map { $0.shape[axis] }
        guard sizes.reduce(0, +) == x.shape[axis], sizes.allSatisfy({ $0 > 0 }) else {
            throw LoweringRefusal("split sizes \(sizes) (zero-size parts have no MIL form)")
        }
        return { e throws(LoweringRefusal) in
            if outs.count == 1 { return [e.op("identity", [("x", .v(try e.input(0)))], output: outs[0])] }
            return e.builder.op("split", name: e.name(), [("x", .v(try e.input(0))), ("split_sizes", .c(.ints(sizes))),
                                                          ("axis", .c(.scalar(Int32(axis))))],
                                outputs: outs, outputNames: v.node.outputs)
        }
    }
}

/// Slice → slice_by_index. Axes and steps must be constant; starts and ends may be computed at run time (an
/// exporter's `x[:, :seq]` with `seq` from `Shape`). On a static dim ONNX's clamping (positive and negative steps) is
/// applied here and an end before index 0 becomes an end mask; on a dim known only at run time (a ranged input) the
/// step must be positive, where MIL's Python-style indices (negative from the end, clamped) mean what ONNX's do.
enum SliceLowering: OpLowering {
    static let opTypes = ["Slice"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), out = try v.outputType()
        let u = MILTensorType.unknownDim
        var starts: [Int]?, ends: [Int]?
        let axesIn: [Int]?, steps: [Int]?
        let count: Int
        if v.opset < 10 {
            guard let s = v.ints("starts"), let e = v.ints("ends") else { throw LoweringRefusal("starts/ends missing") }
            starts = s; ends = e; axesIn = v.ints("axes"); steps = nil
            count = s.count
        } else {
            starts = v.isConstant(1) ? try v.ints(1) : nil
            ends = v.isConstant(2) ? try v.ints(2) : nil
            if v.has(3) { axesIn = try v.ints(3) } else { axesIn = nil }
            if v.has(4) { steps = try v.ints(4) } else { steps = nil }
            let startsType = try v.type(1), endsType = try v.type(2)
            guard startsType.rank == 1, endsType.rank == 1, startsType.shape[0] != u else {
                throw LoweringRefusal("starts \(startsType) and ends \(endsType) must be vectors of known length")
            }
            count = startsType.shape[0]
        }
        let axes = axesIn ?? Array(0..<count)
        guard (starts?.count ?? count) == count, (ends?.count ?? count) == count, axes.count == count, (steps?.count ?? count) == count else {
            throw LoweringRefusal("starts, ends, axes and steps differ in length")
        }
        var begin = [Int](repeating: 0, count: x.rank), end = x.shape, stride = [Int](repeating: 1, count: x.rank)
        var beginMask = [Bool](repeating: false, count: x.rank), endMask = [Bool](repeating: false, count: x.rank)
        for d in 0..<x.rank where x.shape[d] == u { end[d] = 0; endMask[d] = true }
        var sliced: [Int] = []
        func int32(_ value: Int) -> Int { min(max(value, Int(Int32.min) + 1), Int(Int32.max)) }
        for k in axes.indices {
            let a = try v.axis(axes[k], rank: x.rank)
            guard !sliced.contains(a) else { throw LoweringRefusal("axis \(a) is sliced twice") }
            sliced.append(a)
            let dim = x.shape[a]
            let step = steps?[k] ?? 1
            guard step != 0 else { throw LoweringRefusal("step 0") }
            endMask[a] = false
            if dim == u || starts == nil || ends == nil {
                // Known only at run time (the dim, or the bounds): MIL reads the indices as Python does.
                guard step > 0 else {
                    throw LoweringRefusal("a negative step on a dim or with bounds known only at run time is not lowered", rule: FlexibleShapes.rule.id)
                }
                stride[a] = int32(step)
                if let starts { begin[a] = int32(starts[k]) }
                if let ends {
                    if ends[k] >= Int(Int32.max) { endMask[a] = true; end[a] = 0 } else { end[a] = int32(ends[k]) }
                }
                continue
            }
            var s = starts![k], t = ends![k]
            if s < 0 { s = s &+ dim }
            if t < 0 { t = t &+ dim }
            if step > 0 {
                s = min(max(s, 0), dim); t = min(max(t, 0), dim)
            } else {
                s = min(max(s, 0), dim - 1); t = min(max(t, -1), dim - 1)
            }
            // A step of magnitude ≥ dim takes one element: clamped to ±dim, it stays an int32 MIL reads as ONNX means it.
            begin[a] = s; end[a] = t; stride[a] = step > 0 ? min(step, max(dim, 1)) : max(step, -max(dim, 1))
            if t == -1 { endMask[a] = true; end[a] = 0 }
        }
        guard !out.shape.contains(0) else { throw LoweringRefusal("the slice is empty; MIL has no empty tensors") }
        // Run-time starts or ends are placed into a rank-long vector: the sliced axes must be consecutive, in order.
        let runtime = starts == nil || ends == nil
        if runtime {
            guard let first = sliced.first, sliced == Array(first..<(first + sliced.count)) else {
                throw LoweringRefusal("run-time starts/ends on axes \(sliced) are lowered only for consecutive axes in order")
            }
        }
        let before = sliced.first ?? 0, after = before + sliced.count
        if runtime {
            // Whole dims where nothing is sliced: the definition then keeps their sizes.
            for d in 0..<x.rank where !sliced.contains(d) { beginMask[d] = true; endMask[d] = true; end[d] = 0 }
        }
        return { e throws(LoweringRefusal) in
            func bound(_ input: Int, _ constant: [Int], _ name: String) throws(LoweringRefusal) -> MILArg {
                guard runtime, v.opset >= 10, !v.isConstant(input) else { return .c(.ints(constant)) }
                var parts: [MILVar] = []
                var value = try e.input(input)
                if value.type.dtype != .int32 {
                    value = e.op("cast", [("x", .v(value)), ("dtype", .c(.scalar("int32")))], output: value.type.with(dtype: .int32), suffix: "_\(name)_int")
                }
                if before > 0 {
                    parts.append(e.builder.const(.ints(Array(constant[..<before])), name: e.name() + "_\(name)_head"))
                }
                parts.append(value)
                if after < x.rank {
                    parts.append(e.builder.const(.ints(Array(constant[after...])), name: e.name() + "_\(name)_tail"))
                }
                if parts.count == 1 { return .v(value) }
                return .v(e.op("concat", [("values", .list(parts)), ("axis", .c(.scalar(Int32(0)))), ("interleave", .c(.scalar(false)))],
                               output: MILTensorType(.int32, [x.rank]), suffix: "_\(name)"))
            }
            return [e.op("slice_by_index", [("x", .v(try e.input(0))), ("begin", try bound(1, begin, "begin")), ("end", try bound(2, end, "end")),
                                     ("stride", .c(.ints(stride))), ("begin_mask", .c(.bools(beginMask))),
                                     ("end_mask", .c(.bools(endMask)))], output: out)]
        }
    }
}

/// Expand → reshape to the output rank (leading 1s), then tile by output / input along each dim. When the shape is
/// computed at run time, or a dim is known only at run time, `x + fill(shape, 0)`: numpy's broadcasting of x against
/// the shape is ONNX's (bidirectional) Expand.
enum ExpandLowering: OpLowering {
    static let opTypes = ["Expand"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), out = try v.outputType()
        guard out.rank >= x.rank else { throw LoweringRefusal("output rank below input rank") }
        let u = MILTensorType.unknownDim
        let padded = [Int](repeating: 1, count: out.rank - x.rank) + x.shape
        var reps: [Int] = []
        var tiles = v.isConstant(1)
        for (i, o) in zip(padded, out.shape) {
            if i == o { reps.append(1); continue }
            if i == 1 && o != u { reps.append(o); continue }
            guard i == u || o == u else { throw LoweringRefusal("cannot expand \(x.shape) to \(out.shape)") }
            tiles = false
        }
        if !tiles {
            let shape = try v.type(1)
            guard shape.rank == 1, shape.shape[0] != u, shape.dtype == .int32 else { throw LoweringRefusal("Expand's shape is \(shape)") }
            return { e throws(LoweringRefusal) in
                // Booleans: x or false.
                let zero: MILConst = x.dtype == .bool ? .scalar(false)
                    : x.dtype == .int32 ? MILConst(MILTensorType(.int32, []), .ints([0])) : .float(0, x.dtype)
                let zeros = e.op("fill", [("shape", .v(try e.input(1))), ("value", .c(zero))],
                                 output: MILTensorType(x.dtype, Array(repeating: u, count: shape.shape[0])), suffix: "_zeros")
                return [e.op(x.dtype == .bool ? "logical_or" : "add", [("x", .v(try e.input(0))), ("y", .v(zeros))], output: out)]
            }
        }
        return { e throws(LoweringRefusal) in
            var input = try e.input(0)
            if padded != x.shape || out.rank == 0 {
                input = e.op("reshape", [("x", .v(input)), ("shape", .c(.ints(padded)))], output: x.with(shape: padded), suffix: "_rank")
            }
            if reps.allSatisfy({ $0 == 1 }) { return [e.op("identity", [("x", .v(input))], output: out)] }
            return [e.op("tile", [("x", .v(input)), ("reps", .c(.ints(reps)))], output: out)]
        }
    }
}

enum TileLowering: OpLowering {
    static let opTypes = ["Tile"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), out = try v.outputType()
        let reps = try v.ints(1)
        guard reps.count == x.rank, reps.allSatisfy({ $0 >= 1 }) else { throw LoweringRefusal("repeats \(reps) for rank \(x.rank)") }
        return { e throws(LoweringRefusal) in [e.op("tile", [("x", .v(try e.input(0))), ("reps", .c(.ints(reps)))], output: out)] }
    }
}

/// Gather → gather. Constant indices are made non-negative here; run-time indices must be non-negative (MIL
/// gather's contract), which holds for token ids and the like.
enum GatherLowering: OpLowering {
    static let opTypes = ["Gather"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), idx = try v.type(1), out = try v.outputType()
        guard idx.dtype == .int32 else { throw LoweringRefusal("indices are \(idx.dtype)") }
        let axis = try v.axis(v.int("axis", default: 0), rank: x.rank)
        var constantIndices: [Int]? = nil
        if v.isConstant(1), x.shape[axis] == MILTensorType.unknownDim {
            // Along a flexible dim (BERT's pooling of token 0): valid for every size in the range when every index
            // is non-negative and below the dim's lower bound (a negative index would depend on the size).
            let values = try v.ints(1)
            let bound = FlexibleShapes.lowerBound(of: v.node.inputs[0], axis: axis, values: v.values)
            guard let bound, values.allSatisfy({ $0 >= 0 && $0 < bound }) else {
                let dim = FlexibleShapes.describe(v.node.inputs[0], axis: axis, values: v.values)
                throw LoweringRefusal("Gather indices \(values) along the flexible dim \(dim) must be non-negative and below its smallest size",
                                      rule: FlexibleShapes.rule.id)
            }
            constantIndices = values
        } else if v.isConstant(1) {
            let values = try v.ints(1)
            constantIndices = []
            for i in values {
                guard i >= -x.shape[axis], i < x.shape[axis] else { throw LoweringRefusal("index \(i) is out of range for dim \(x.shape[axis])") }
                constantIndices!.append(i < 0 ? i + x.shape[axis] : i)
            }
        } else {
            v.values.note("gather:" + v.node.inputs[1], "'\(v.node.inputs[1])': run-time Gather indices must be non-negative in Core ML")
        }
        return { e throws(LoweringRefusal) in
            let indices: MILArg
            if let constantIndices { indices = .c(MILConst(idx, .ints(constantIndices.map { Int32($0) }))) } else { indices = .v(try e.input(1)) }
            return [e.castAround(x, out) { data in
                e.op("gather", [("x", .v(data)), ("indices", indices), ("axis", .c(.scalar(Int32(axis))))],
                     output: out.with(dtype: data.type.dtype), suffix: x.dtype == .bool ? "_int" : "")
            }(try e.input(0))]
        }
    }
}

enum GatherElementsLowering: OpLowering {
    static let opTypes = ["GatherElements"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), idx = try v.type(1), out = try v.outputType()
        let axis = try v.axis(v.int("axis", default: 0), rank: x.rank)
        // ONNX lets indices be shorter than the data off the axis; MIL's gather_along_axis needs them equal (the
        // verifier rejected such a program: found by the Core ML fuzz target).
        guard idx.rank == x.rank, (0..<x.rank).allSatisfy({ $0 == axis || idx.shape[$0] == x.shape[$0] }) else {
            throw LoweringRefusal("indices \(idx.shape) and data \(x.shape) must have equal dims except on axis \(axis) for MIL gather_along_axis")
        }
        if v.isConstant(1), let indices = try? v.ints(1) {
            if x.shape[axis] == MILTensorType.unknownDim {
                let bound = FlexibleShapes.lowerBound(of: v.node.inputs[0], axis: axis, values: v.values)
                guard let bound, indices.allSatisfy({ $0 >= 0 && $0 < bound }) else {
                    let dim = FlexibleShapes.describe(v.node.inputs[0], axis: axis, values: v.values)
                    throw LoweringRefusal("GatherElements indices along the flexible dim \(dim) must be non-negative and below its smallest size",
                                          rule: FlexibleShapes.rule.id)
                }
            } else if let bad = indices.first(where: { $0 < -x.shape[axis] || $0 >= x.shape[axis] }) {
                throw LoweringRefusal("constant index \(bad) is out of range for dim \(axis) of size \(x.shape[axis])")
            }
        }
        return { e throws(LoweringRefusal) in
            let indices = try e.input(1)
            return [e.castAround(x, out) { data in
                e.op("gather_along_axis", [("x", .v(data)), ("indices", .v(indices)), ("axis", .c(.scalar(Int32(axis))))],
                     output: out.with(dtype: data.type.dtype), suffix: x.dtype == .bool ? "_int" : "")
            }(try e.input(0))]
        }
    }
}

enum WhereLowering: OpLowering {
    static let opTypes = ["Where"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let c = try v.type(0), a = try v.type(1), b = try v.type(2), out = try v.outputType()
        guard c.dtype == .bool, a.dtype == b.dtype else { throw LoweringRefusal("Where takes a bool condition and two inputs of one type") }
        let full = try broadcastType(try broadcastType(c, a), b)
        guard full.shape == out.shape else { throw LoweringRefusal("inputs broadcast to \(full.shape), the output is declared \(out.shape)") }
        // MIL's select infers its output from a and b alone (iOS15/control_flow.py): when the condition carries a
        // broadcast dim, a is broadcast to the full shape first, so the declared type is the inferred one.
        let ab = try broadcastType(a, b)
        if ab.shape != out.shape && !out.isStatic {
            // A flexible dim only the condition carries: a + fill(shape(cond), 0) gives a the condition's dims.
            guard a.dtype != .bool else {
                throw LoweringRefusal("Where's condition carries a flexible dim that boolean a and b do not", rule: FlexibleShapes.rule.id)
            }
            return { e throws(LoweringRefusal) in
                let cond = try e.input(0)
                let shape = e.op("shape", [("x", .v(cond))], output: MILTensorType(.int32, [c.rank]), suffix: "_cond_shape")
                let zero: MILConst = a.dtype == .int32 ? MILConst(MILTensorType(.int32, []), .ints([0])) : .float(0, a.dtype)
                let zeros = e.op("fill", [("shape", .v(shape)), ("value", .c(zero))],
                                 output: MILTensorType(a.dtype, Array(repeating: MILTensorType.unknownDim, count: c.rank)), suffix: "_zeros")
                let x = e.op("add", [("x", .v(try e.input(1))), ("y", .v(zeros))], output: try broadcastType(a, c).with(dtype: a.dtype), suffix: "_a")
                return [e.op("select", [("cond", .v(cond)), ("a", .v(x)), ("b", .v(try e.input(2)))], output: out)]
            }
        }
        return { e throws(LoweringRefusal) in
            var x = try e.input(1)
            if ab.shape != out.shape { x = e.broadcast(x, to: out.shape, suffix: "_a") }
            return [e.op("select", [("cond", .v(try e.input(0))), ("a", .v(x)), ("b", .v(try e.input(2)))], output: out)]
        }
    }
}

/// Cast → cast (or identity when the MIL types agree, e.g. int64 → int32 after narrowing). Float → integer
/// truncates toward zero in both ONNX and MIL.
enum CastLowering: OpLowering {
    static let opTypes = ["Cast", "CastLike"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), out = try v.outputType()
        guard [.fp16, .fp32, .int32, .bool].contains(out.dtype) else { throw LoweringRefusal("Cast to \(out.dtype)") }
        if v.opType == "Cast", case .int(let to)? = v.node.attribute("to")?.value, to == 2 || to == 3 {
            v.values.note("cast:" + v.node.outputs[0], "'\(v.node.outputs[0])': Cast to 8-bit integers is computed in int32 (no wrap-around)")
        }
        return { e throws(LoweringRefusal) in
            let input = try e.input(0)
            if x.dtype == out.dtype { return [e.op("identity", [("x", .v(input))], output: out)] }
            return [e.op("cast", [("x", .v(input)), ("dtype", .c(.scalar(out.dtype.description)))], output: out)]
        }
    }
}

/// Pad → pad: constant mode on any dims; reflect and edge (MIL replicate) on the last two dims only, as MIL
/// requires. Pads must be constant and non-negative.
enum PadLowering: OpLowering {
    static let opTypes = ["Pad"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), out = try v.outputType()
        let pads = v.opset >= 11 ? try v.ints(1) : (v.ints("pads") ?? [])
        var value: Float = v.opset >= 11 ? 0 : v.float("value", default: 0)
        if v.opset >= 11, v.has(2) { value = try v.floats(2).first ?? 0 }
        if v.opset >= 18, v.has(3) { throw LoweringRefusal("Pad with axes is not lowered") }
        guard pads.count == 2 * x.rank else { throw LoweringRefusal("pads \(pads) for rank \(x.rank)") }
        guard pads.allSatisfy({ $0 >= 0 }) else { throw LoweringRefusal("negative pads (cropping) are not lowered") }
        let mode = v.string("mode", default: "constant")
        let milMode: String
        switch mode {
        case "constant": milMode = "constant"
        case "reflect": milMode = "reflect"
        case "edge": milMode = "replicate"
        default: throw LoweringRefusal("mode '\(mode)'")
        }
        var milPads: [Int] = []
        for i in 0..<x.rank { milPads += [pads[i], pads[i + x.rank]] }
        if milMode != "constant" {
            guard milPads.dropLast(4).allSatisfy({ $0 == 0 }) else { throw LoweringRefusal("\(mode) padding beyond the last two dims") }
            milPads = Array(milPads.suffix(4))
        }
        guard x.dtype.isFloat else { throw LoweringRefusal("Pad of \(x.dtype)") }
        return { e throws(LoweringRefusal) in
            [e.op("pad", [("x", .v(try e.input(0))), ("pad", .c(.ints(milPads))), ("mode", .c(.scalar(milMode))),
                          ("constant_val", .c(.float(value, x.dtype)))], output: out)]
        }
    }
}

/// Identity and inference-time Dropout → identity.
enum IdentityLowering: OpLowering {
    static let opTypes = ["Identity", "Dropout"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let out = try v.outputType()
        if v.opType == "Dropout" {
            guard !v.outputUsed(1) else { throw LoweringRefusal("Dropout's mask output") }
            if v.opset >= 12, v.has(2) {
                guard v.values.constant(v.node.inputs[2])?.bools == [false] else { throw LoweringRefusal("training_mode must be constant false") }
            }
        }
        return { e throws(LoweringRefusal) in [e.op("identity", [("x", .v(try e.input(0)))], output: out)] }
    }
}
