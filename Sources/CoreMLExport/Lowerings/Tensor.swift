/// IsNaN, IsInf: MIL has no classification ops; NaN is the one value unequal to itself, and ±inf compares equal
/// to the fp16/fp32 infinity constant.
enum FloatClassLowering: OpLowering {
    static let opTypes = ["IsNaN", "IsInf"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.requireFloat(0), out = try v.outputType()
        if v.opType == "IsNaN" {
            return { e throws(LoweringRefusal) in
                let input = try e.input(0)
                return [e.op("not_equal", [("x", .v(input)), ("y", .v(input))], output: out)]
            }
        }
        let negative = v.int("detect_negative", default: 1) != 0, positive = v.int("detect_positive", default: 1) != 0
        guard negative || positive else { throw LoweringRefusal("IsInf detecting neither sign is constant false; not lowered") }
        return { e throws(LoweringRefusal) in
            var value = try e.input(0)
            if negative && positive { value = e.op("abs", [("x", .v(value))], output: x, suffix: "_abs") }
            let inf: Float = positive ? .infinity : -.infinity
            return [e.op("equal", [("x", .v(value)), ("y", .c(.float(inf, x.dtype)))], output: out)]
        }
    }
}

/// GatherND → gather_nd (batch_dims 0). Constant indices are made non-negative here; run-time indices must be
/// non-negative (gather_nd's contract).
enum GatherNDLowering: OpLowering {
    static let opTypes = ["GatherND"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), idx = try v.type(1), out = try v.outputType()
        guard v.int("batch_dims", default: 0) == 0 else { throw LoweringRefusal("batch_dims \(v.int("batch_dims", default: 0)) is not lowered") }
        guard let k = idx.shape.last, k >= 1, k <= x.rank else { throw LoweringRefusal("indices \(idx.shape) for data of rank \(x.rank)") }
        var constant: [Int32]? = nil
        if v.isConstant(1), x.shape.prefix(k).contains(MILTensorType.unknownDim) {
            throw LoweringRefusal("constant GatherND indices into a dim known only at run time are not lowered", rule: FlexibleShapes.rule.id)
        }
        if v.isConstant(1) {
            let values = try v.ints(1)
            constant = []
            for (n, i) in values.enumerated() {
                let dim = x.shape[n % k]
                guard i >= -dim, i < dim else { throw LoweringRefusal("index \(i) is out of range for dim \(n % k) of size \(dim)") }
                constant!.append(Int32(i < 0 ? i + dim : i))
            }
        } else {
            v.values.note("gathernd:" + v.node.inputs[1], "'\(v.node.inputs[1])': run-time GatherND indices must be non-negative in Core ML")
        }
        return { e throws(LoweringRefusal) in
            var indices: MILArg
            if let constant { indices = .c(MILConst(idx, .ints(constant))) } else { indices = .v(try e.input(1)) }
            return [e.castAround(x, out) { data in
                e.op("gather_nd", [("x", .v(data)), ("indices", indices)], output: out.with(dtype: data.type.dtype),
                     suffix: x.dtype == .bool ? "_int" : "")
            }(try e.input(0))]
        }
    }
}

/// CumSum → cumsum (axis constant; exclusive and reverse as MIL's flags).
enum CumSumLowering: OpLowering {
    static let opTypes = ["CumSum"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), out = try v.outputType()
        guard let a = try v.ints(1).first else { throw LoweringRefusal("axis is empty") }
        let axis = try v.axis(a, rank: x.rank)
        let exclusive = v.int("exclusive", default: 0) != 0, reverse = v.int("reverse", default: 0) != 0
        return { e throws(LoweringRefusal) in
            [e.op("cumsum", [("x", .v(try e.input(0))), ("axis", .c(.scalar(Int32(axis)))), ("exclusive", .c(.scalar(exclusive))),
                             ("reverse", .c(.scalar(reverse)))], output: out)]
        }
    }
}

/// TopK → topk (k constant; sorted output: MIL's topk always sorts, and ties keep the lower index first, as ONNX).
enum TopKLowering: OpLowering {
    static let opTypes = ["TopK"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), values = try v.outputType(0), indices = try v.outputType(1)
        guard let k = try v.ints(1).first, k >= 1 else { throw LoweringRefusal("k must be a positive constant") }
        let axis = try v.axis(v.int("axis", default: -1), rank: x.rank)
        guard v.int("sorted", default: 1) == 1 else { throw LoweringRefusal("sorted=0 (MIL's topk always sorts)") }
        let ascending = v.int("largest", default: 1) == 0
        return { e throws(LoweringRefusal) in
            let outs = e.builder.op("topk", name: e.name(), [("x", .v(try e.input(0))), ("k", .c(.scalar(Int32(k)))),
                                                           ("axis", .c(.scalar(Int32(axis)))), ("ascending", .c(.scalar(ascending)))],
                                    outputs: [values, indices], outputNames: v.node.outputs.map { $0.isEmpty ? e.name() + "_unused" : $0 })
            return outs.map { Optional($0) }
        }
    }
}

/// Trilu → band_part for the main diagonal (k = 0); another diagonal becomes a select against a constant mask of
/// the last two dims (shapes are static).
enum TriluLowering: OpLowering {
    static let opTypes = ["Trilu"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), out = try v.outputType()
        guard x.rank >= 2 else { throw LoweringRefusal("Trilu takes rank ≥ 2") }
        let k = v.has(1) ? (try v.ints(1).first ?? 0) : 0
        let upper = v.int("upper", default: 1) != 0
        let rows = x.shape[x.rank - 2], cols = x.shape[x.rank - 1]
        guard rows * cols <= 1 << 24 else { throw LoweringRefusal("a \(rows)×\(cols) mask is too large to write") }
        return { e throws(LoweringRefusal) in
            if k == 0 {
                return [e.op("band_part", [("x", .v(try e.input(0))), ("lower", .c(.scalar(Int32(upper ? 0 : -1)))),
                                           ("upper", .c(.scalar(Int32(upper ? -1 : 0))))], output: out)]
            }
            var mask: [Bool] = []
            mask.reserveCapacity(rows * cols)
            for i in 0..<rows { for j in 0..<cols { mask.append(upper ? j - i >= k : j - i <= k) } }
            let zero: MILConst = x.dtype == .int32 ? MILConst(MILTensorType(.int32, []), .ints([0]))
                : x.dtype == .bool ? .scalar(false) : .float(0, x.dtype)
            return [e.op("select", [("cond", .c(MILConst(MILTensorType(.bool, [rows, cols]), .bools(mask)))), ("a", .v(try e.input(0))),
                                    ("b", .c(zero))], output: out)]
        }
    }
}

/// DepthToSpace (DCR → depth_to_space; CRD → pixel_shuffle, PyTorch's order) and SpaceToDepth → space_to_depth.
enum DepthSpaceLowering: OpLowering {
    static let opTypes = ["DepthToSpace", "SpaceToDepth"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.requireFloat(0), out = try v.outputType()
        guard x.rank == 4 else { throw LoweringRefusal("\(v.opType) takes rank 4") }
        guard let b = v.int("blocksize"), b >= 1 else { throw LoweringRefusal("blocksize is missing") }
        if v.opType == "SpaceToDepth" {
            return { e throws(LoweringRefusal) in
                [e.op("space_to_depth", [("x", .v(try e.input(0))), ("block_size", .c(.scalar(Int32(b))))], output: out)]
            }
        }
        let mode = v.string("mode", default: "DCR")
        guard mode == "DCR" || mode == "CRD" else { throw LoweringRefusal("mode '\(mode)'") }
        return { e throws(LoweringRefusal) in
            if mode == "CRD" {
                return [e.op("pixel_shuffle", [("x", .v(try e.input(0))), ("upscale_factor", .c(.scalar(Int32(b))))], output: out)]
            }
            return [e.op("depth_to_space", [("x", .v(try e.input(0))), ("block_size", .c(.scalar(Int32(b))))], output: out)]
        }
    }
}

extension Emitter {
    /// Runs `body` on `x`, with bool data cast to int32 before and the result cast back to bool after (MIL's gather
    /// family has no bool; the round trip is exact).
    func castAround(_ x: MILTensorType, _ out: MILTensorType, _ body: @escaping (MILVar) -> MILVar) -> (MILVar) -> MILVar {
        { input in
            guard x.dtype == .bool else { return body(input) }
            let widened = op("cast", [("x", .v(input)), ("dtype", .c(.scalar("int32")))], output: x.with(dtype: .int32), suffix: "_to_int")
            let result = body(widened)
            return op("cast", [("x", .v(result)), ("dtype", .c(.scalar("bool")))], output: out)
        }
    }
}

/// ScatterND → scatter_nd, ScatterElements (and opset-9 Scatter) → scatter_along_axis; the reduction becomes MIL's
/// mode (none → update, add, mul, max, min). Constant indices are made non-negative and range-checked.
enum ScatterLowering: OpLowering {
    static let opTypes = ["ScatterND", "ScatterElements", "Scatter"]
    static let modes = ["none": "update", "add": "add", "mul": "mul", "max": "max", "min": "min"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let data = try v.type(0), idx = try v.type(1), updates = try v.type(2), out = try v.outputType()
        guard data.dtype == updates.dtype, data.dtype != .bool else { throw LoweringRefusal("data \(data.dtype) and updates \(updates.dtype); MIL scatters take fp16, fp32, int32") }
        let reduction = v.string("reduction", default: "none")
        guard let mode = modes[reduction] else { throw LoweringRefusal("reduction '\(reduction)'") }
        var constant: [Int32]? = nil
        var axis = 0
        if v.opType == "ScatterND" {
            guard let k = idx.shape.last, k >= 1, k <= data.rank,
                  updates.shape == Array(idx.shape.dropLast()) + Array(data.shape[k...]) else {
                throw LoweringRefusal("updates \(updates.shape) do not fit indices \(idx.shape) and data \(data.shape)")
            }
            if v.isConstant(1) {
                constant = []
                for (n, i) in try v.ints(1).enumerated() {
                    let dim = data.shape[n % k]
                    guard i >= -dim, i < dim else { throw LoweringRefusal("index \(i) is out of range for dim \(n % k) of size \(dim)") }
                    constant!.append(Int32(i < 0 ? i + dim : i))
                }
            }
        } else {
            axis = try v.axis(v.int("axis", default: 0), rank: data.rank)
            guard idx.shape == updates.shape, idx.rank == data.rank else { throw LoweringRefusal("indices \(idx.shape) and updates \(updates.shape) must match, with data's rank") }
            if v.isConstant(1) {
                let dim = data.shape[axis]
                constant = []
                for i in try v.ints(1) {
                    guard i >= -dim, i < dim else { throw LoweringRefusal("index \(i) is out of range for dim \(axis) of size \(dim)") }
                    constant!.append(Int32(i < 0 ? i + dim : i))
                }
            }
        }
        if constant == nil {
            v.values.note("scatter:" + v.node.inputs[1], "'\(v.node.inputs[1])': run-time scatter indices must be non-negative in Core ML")
        }
        let op = v.opType == "ScatterND" ? "scatter_nd" : "scatter_along_axis"
        return { e throws(LoweringRefusal) in
            let indices: MILArg
            if let constant { indices = .c(MILConst(idx, .ints(constant))) } else { indices = .v(try e.input(1)) }
            var params: [(String, MILArg)] = [("data", .v(try e.input(0))), ("indices", indices), ("updates", .v(try e.input(2))),
                                              ("mode", .c(.scalar(mode)))]
            if op == "scatter_along_axis" { params.append(("axis", .c(.scalar(Int32(axis))))) }
            return [e.op(op, params, output: out)]
        }
    }
}
