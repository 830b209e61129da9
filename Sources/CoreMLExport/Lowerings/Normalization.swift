/// BatchNormalization (inference) → batch_norm on rank 3–5 with constant statistics.
enum BatchNormLowering: OpLowering {
    static let opTypes = ["BatchNormalization"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.requireFloat(0), out = try v.outputType()
        guard (2...5).contains(x.rank) else { throw LoweringRefusal("batch_norm takes rank 3 to 5 (rank 2 is given a trailing dim), got \(x.rank)") }
        guard v.int("training_mode", default: 0) == 0, !v.outputUsed(1), !v.outputUsed(2) else {
            throw LoweringRefusal("training-mode BatchNormalization (running statistics outputs)")
        }
        for (i, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")] {
            try v.requireConstant(i, what)
            let t = try v.type(i)
            guard t.shape == [x.shape[1]] else {
                throw LoweringRefusal("\(what) '\(v.node.inputs[i])' has shape \(t.shape); \(x.shape[1]) channels need [\(x.shape[1])]")
            }
        }
        let epsilon = v.float("epsilon", default: 1e-5)
        return { e throws(LoweringRefusal) in
            var input = try e.input(0)
            // [N, C] (BatchNorm1d after a Linear, LeViT) becomes [N, C, 1] for MIL's rank 3 to 5, and back.
            if x.rank == 2 {
                input = e.op("expand_dims", [("x", .v(input)), ("axes", .c(.ints([2])))], output: x.with(shape: x.shape + [1]), suffix: "_rank3")
            }
            let normalized = e.op("batch_norm", [("x", .v(input)), ("mean", .v(try e.input(3))), ("variance", .v(try e.input(4))),
                                                 ("gamma", .v(try e.input(1))), ("beta", .v(try e.input(2))),
                                                 ("epsilon", .c(.float(epsilon, x.dtype)))], output: input.type, suffix: x.rank == 2 ? "_bn" : "")
            guard x.rank == 2 else { return [normalized] }
            return [e.op("squeeze", [("x", .v(normalized)), ("axes", .c(.ints([2])))], output: out)]
        }
    }
}

/// LRN → local_response_norm: both compute x / (bias + alpha/size · Σ x²)^beta over a window of `size` channels
/// (ONNX's window [c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉] is MIL's).
enum LRNLowering: OpLowering {
    static let opTypes = ["LRN"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.requireFloat(0), out = try v.outputType()
        guard x.rank >= 3 else { throw LoweringRefusal("LRN on rank \(x.rank); MIL's local_response_norm takes rank ≥ 3") }
        guard let size = v.int("size"), size >= 1 else { throw LoweringRefusal("size is missing") }
        let alpha = v.float("alpha", default: 1e-4), beta = v.float("beta", default: 0.75), bias = v.float("bias", default: 1)
        return { e throws(LoweringRefusal) in
            [e.op("local_response_norm", [("x", .v(try e.input(0))), ("size", .c(.scalar(Int32(size)))), ("alpha", .c(.float(alpha, x.dtype))),
                                          ("beta", .c(.float(beta, x.dtype))), ("k", .c(.float(bias, x.dtype)))], output: out)]
        }
    }
}

/// LayerNormalization (opset 17) → layer_norm over axes [axis, rank); scale and bias must have exactly the
/// normalized shape (MIL does not broadcast them).
enum LayerNormLowering: OpLowering {
    static let opTypes = ["LayerNormalization"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.requireFloat(0), out = try v.outputType()
        guard !v.outputUsed(1), !v.outputUsed(2) else { throw LoweringRefusal("the Mean and InvStdDev outputs have no MIL op") }
        let axis = try v.axis(v.int("axis", default: -1), rank: x.rank)
        let normalized = Array(x.shape[axis...])
        try v.requireConstant(1, "scale")
        for i in [1, 2] where v.has(i) {
            let t = try v.type(i)
            guard t.shape == normalized else {
                throw LoweringRefusal("input \(i) has shape \(t.shape); layer_norm needs exactly the normalized shape \(normalized)")
            }
        }
        if v.has(2) { try v.requireConstant(2, "bias") }
        let epsilon = v.float("epsilon", default: 1e-5)
        return { e throws(LoweringRefusal) in
            var params: [(String, MILArg)] = [("x", .v(try e.input(0))), ("axes", .c(.ints(Array(axis..<x.rank)))),
                                              ("gamma", .v(try e.input(1)))]
            if v.has(2) { params.append(("beta", .v(try e.input(2)))) }
            params.append(("epsilon", .c(.float(epsilon, x.dtype))))
            return [e.op("layer_norm", params, output: out)]
        }
    }
}

/// InstanceNormalization → instance_norm (rank 3 or 4).
enum InstanceNormLowering: OpLowering {
    static let opTypes = ["InstanceNormalization"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.requireFloat(0), out = try v.outputType()
        guard x.rank == 3 || x.rank == 4 else { throw LoweringRefusal("instance_norm takes rank 3 or 4, got \(x.rank)") }
        try v.requireConstant(1, "scale")
        try v.requireConstant(2, "bias")
        let epsilon = v.float("epsilon", default: 1e-5)
        return { e throws(LoweringRefusal) in
            [e.op("instance_norm", [("x", .v(try e.input(0))), ("gamma", .v(try e.input(1))), ("beta", .v(try e.input(2))),
                                    ("epsilon", .c(.float(epsilon, x.dtype)))], output: out)]
        }
    }
}

/// GroupNormalization → reshape to [N, G, C/G · spatial] → instance_norm (mean and variance per group) → reshape
/// back. Opset 18 scales and shifts per group (instance_norm's gamma and beta); opset 21 per channel (a mul and an add
/// after the reshape). Scale and bias must be constant.
enum GroupNormLowering: OpLowering {
    static let opTypes = ["GroupNormalization"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.requireFloat(0), out = try v.outputType()
        guard (3...5).contains(x.rank) else { throw LoweringRefusal("GroupNormalization on rank \(x.rank); lowered for rank 3 to 5") }
        guard let groups = v.int("num_groups"), groups >= 1, x.shape[1] % groups == 0 else {
            throw LoweringRefusal("num_groups \(v.int("num_groups").map(String.init) ?? "missing") does not divide \(x.shape[1]) channels")
        }
        try v.requireConstant(1, "scale")
        try v.requireConstant(2, "bias")
        let perChannel = v.opset >= 21
        let count = perChannel ? x.shape[1] : groups
        let scale = try v.floats(1), bias = try v.floats(2)
        for (i, values) in [(1, scale), (2, bias)] {
            guard values.count == count, try v.type(i).shape == [count] else {
                throw LoweringRefusal("input \(i) '\(v.node.inputs[i])' has shape \(try v.type(i).shape); opset \(v.opset) needs one value per \(perChannel ? "channel" : "group"): [\(count)]")
            }
        }
        let epsilon = v.float("epsilon", default: 1e-5)
        let channels = x.shape[1], spatial = x.shape[2...].reduce(1, *)
        return { e throws(LoweringRefusal) in
            let grouped = x.with(shape: [x.shape[0], groups, channels / groups * spatial])
            var y = e.op("reshape", [("x", .v(try e.input(0))), ("shape", .c(.ints(grouped.shape)))], output: grouped, suffix: "_groups")
            let gamma = perChannel ? [Float](repeating: 1, count: groups) : scale
            let beta = perChannel ? [Float](repeating: 0, count: groups) : bias
            y = e.op("instance_norm", [("x", .v(y)), ("gamma", .c(.floats(gamma, x.dtype, shape: [groups]))),
                                       ("beta", .c(.floats(beta, x.dtype, shape: [groups]))),
                                       ("epsilon", .c(.float(epsilon, x.dtype)))], output: grouped, suffix: "_norm")
            guard perChannel else { return [e.op("reshape", [("x", .v(y)), ("shape", .c(.ints(out.shape)))], output: out)] }
            y = e.op("reshape", [("x", .v(y)), ("shape", .c(.ints(out.shape)))], output: out, suffix: "_restored")
            let perChannelShape = [channels] + [Int](repeating: 1, count: x.rank - 2)
            y = e.op("mul", [("x", .v(y)), ("y", .c(.floats(scale, x.dtype, shape: perChannelShape)))], output: out, suffix: "_scaled")
            return [e.op("add", [("x", .v(y)), ("y", .c(.floats(bias, x.dtype, shape: perChannelShape)))], output: out)]
        }
    }
}

/// Softmax / LogSoftmax. From opset 13 one axis (default −1); before 13 the input is viewed as 2-D at `axis`
/// (default 1), so a reshape surrounds the softmax unless `axis` is the last one. LogSoftmax is x − logsumexp(x).
enum SoftmaxLowering: OpLowering {
    static let opTypes = ["Softmax", "LogSoftmax"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.requireFloat(0), out = try v.outputType()
        let modern = v.opset >= 13
        let axis = try v.axis(v.int("axis", default: modern ? -1 : 1), rank: x.rank)
        let coerced = !modern && axis != x.rank - 1
        if coerced && !x.isStatic { throw LoweringRefusal("\(v.opType) before opset 13 flattens to 2-D, which needs static dims", rule: FlexibleShapes.rule.id) }
        let log = v.opType == "LogSoftmax"
        return { e throws(LoweringRefusal) in
            var input = try e.input(0)
            var t = x
            var a = axis
            if coerced {
                let rows = x.shape[..<axis].reduce(1, *), cols = x.shape[axis...].reduce(1, *)
                t = x.with(shape: [rows, cols])
                input = e.op("reshape", [("x", .v(input)), ("shape", .c(.ints(t.shape)))], output: t, suffix: "_2d")
                a = 1
            }
            var y: MILVar
            if log {
                let lse = e.op("reduce_log_sum_exp", [("x", .v(input)), ("axes", .c(.ints([a]))), ("keep_dims", .c(.scalar(true)))],
                               output: t.with(shape: t.shape.enumerated().map { $0.offset == a ? 1 : $0.element }), suffix: "_lse")
                y = e.op("sub", [("x", .v(input)), ("y", .v(lse))], output: coerced ? t : out, suffix: coerced ? "_flat" : "")
            } else {
                y = e.op("softmax", [("x", .v(input)), ("axis", .c(.scalar(Int32(a))))], output: coerced ? t : out, suffix: coerced ? "_flat" : "")
            }
            if coerced { y = e.op("reshape", [("x", .v(y)), ("shape", .c(.ints(out.shape)))], output: out) }
            return [y]
        }
    }
}

/// Reductions → reduce_*; axes from the attribute (before opset 18; ReduceSum before 13) or a constant input.
enum ReduceLowering: OpLowering {
    static let table = [
        "ReduceMean": "reduce_mean", "ReduceSum": "reduce_sum", "ReduceMax": "reduce_max", "ReduceMin": "reduce_min",
        "ReduceProd": "reduce_prod", "ReduceL1": "reduce_l1_norm", "ReduceL2": "reduce_l2_norm",
        "ReduceLogSumExp": "reduce_log_sum_exp", "ReduceSumSquare": "reduce_sum_square",
    ]
    static var opTypes: [String] { Array(table.keys) }

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), out = try v.outputType()
        guard x.dtype != .bool else { throw LoweringRefusal("reduction of booleans") }
        if !["ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd"].contains(v.opType) {
            guard x.dtype.isFloat else { throw LoweringRefusal("\(v.opType) of integers") }
        }
        let axesFromInput = v.opType == "ReduceSum" ? v.opset >= 13 : v.opset >= 18
        var axes: [Int]?
        if axesFromInput {
            if v.has(1) { axes = try v.ints(1) }
        } else {
            axes = v.ints("axes")
        }
        if axes?.isEmpty == true { axes = nil }
        if axes == nil, v.int("noop_with_empty_axes", default: 0) != 0 {
            return { e throws(LoweringRefusal) in [e.op("identity", [("x", .v(try e.input(0)))], output: out)] }
        }
        var normalized: [Int] = []
        for a in axes ?? Array(0..<x.rank) { normalized.append(try v.axis(a, rank: x.rank)) }
        let keep = v.int("keepdims", default: 1) != 0
        let op = table[v.opType]!
        let all = normalized.sorted()
        return { e throws(LoweringRefusal) in
            [e.op(op, [("x", .v(try e.input(0))), ("axes", .c(.ints(all))), ("keep_dims", .c(.scalar(keep)))], output: out)]
        }
    }
}

/// ArgMax / ArgMin → reduce_argmax / reduce_argmin (int32 indices; ONNX's int64 narrowed). select_last_index=1
/// has no MIL form.
enum ArgReduceLowering: OpLowering {
    static let opTypes = ["ArgMax", "ArgMin"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), out = try v.outputType()
        guard x.dtype != .bool else { throw LoweringRefusal("\(v.opType) of booleans") }
        guard v.int("select_last_index", default: 0) == 0 else { throw LoweringRefusal("select_last_index=1 has no MIL form") }
        let axis = try v.axis(v.int("axis", default: 0), rank: x.rank)
        let keep = v.int("keepdims", default: 1) != 0
        let op = v.opType == "ArgMax" ? "reduce_argmax" : "reduce_argmin"
        return { e throws(LoweringRefusal) in
            [e.op(op, [("x", .v(try e.input(0))), ("axis", .c(.scalar(Int32(axis)))), ("keep_dims", .c(.scalar(keep)))], output: out)]
        }
    }
}
