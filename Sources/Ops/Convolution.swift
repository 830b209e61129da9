import GraphIR

/// The sliding-window arithmetic Conv and the pools share: kernel, strides, dilations, pads and auto_pad.
struct SlidingWindow {
    var kernel: [Int]
    var strides: [Int]
    var dilations: [Int]
    /// begin pads then end pads, as ONNX lists them.
    var pads: [Int]
    var autoPad: String
    var ceilMode: Bool

    init(_ ctx: OpContext, kernel: [Int], dilations allowed: Bool = true, ceilMode allowedCeil: Bool = false) throws {
        let n = kernel.count
        guard kernel.allSatisfy({ $0 >= 1 }) else { throw ctx.fail("kernel_shape \(kernel) has a dim below 1") }
        self.kernel = kernel
        strides = try ctx.ints("strides") ?? Array(repeating: 1, count: n)
        dilations = allowed ? (try ctx.ints("dilations") ?? Array(repeating: 1, count: n)) : Array(repeating: 1, count: n)
        pads = try ctx.ints("pads") ?? Array(repeating: 0, count: 2 * n)
        autoPad = try ctx.string("auto_pad", default: "NOTSET")
        ceilMode = allowedCeil ? try ctx.int("ceil_mode", default: 0) != 0 : false
        guard strides.count == n, strides.allSatisfy({ $0 >= 1 }) else { throw ctx.fail("strides \(strides) do not fit \(n) spatial axes") }
        guard dilations.count == n, dilations.allSatisfy({ $0 >= 1 }) else { throw ctx.fail("dilations \(dilations) do not fit \(n) spatial axes") }
        guard pads.count == 2 * n, pads.allSatisfy({ $0 >= 0 }) else { throw ctx.fail("pads \(pads) do not fit \(n) spatial axes") }
        guard ["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"].contains(autoPad) else { throw ctx.fail("auto_pad '\(autoPad)' is not known") }
        guard kernel.allSatisfy({ $0 <= 1 << 30 }), dilations.allSatisfy({ $0 <= 1 << 30 }), strides.allSatisfy({ $0 <= 1 << 30 }),
              pads.allSatisfy({ $0 <= 1 << 30 }) else { throw ctx.fail("window attributes are implausibly large") }
    }

    /// The output size of spatial axis `i` for an input of size `input`.
    func output(_ input: Dim, axis i: Int, _ ctx: OpContext) throws -> Dim {
        let alg = ctx.algebra
        let s = strides[i]
        let effective = (kernel[i] - 1) * dilations[i] + 1
        switch autoPad {
        case "SAME_UPPER", "SAME_LOWER":
            return alg.ceilDiv(input, s)
        case "VALID":
            return try check(alg.add(alg.floorDiv(alg.add(input, -effective), s), 1), ctx)
        default:
            let begin = pads[i], end = pads[i + kernel.count]
            let span = alg.add(input, begin + end - effective)
            if case .value(let v) = span, v < 0 { throw ctx.fail("the window (\(effective)) is larger than the padded input on spatial axis \(i)") }
            guard ceilMode else { return alg.add(alg.floorDiv(span, s), 1) }
            let out = alg.add(alg.ceilDiv(span, s), 1)
            // onnxruntime drops a last window that would start in the end padding.
            if case .value(let o) = out, case .value(let d) = input {
                let (start, o1) = (o - 1).multipliedReportingOverflow(by: s), (padded, o2) = d.addingReportingOverflow(begin)
                guard !o1, !o2 else { return alg.fresh() }
                return .value(start >= padded ? o - 1 : o)
            }
            return end + s <= effective ? out : alg.fresh()
        }
    }

    private func check(_ d: Dim, _ ctx: OpContext) throws -> Dim {
        if case .value(let v) = d, v < 1 { throw ctx.fail("the window is larger than the input") }
        return d
    }
}

/// Conv and its relatives: [N, C, spatial…] with weights [M, C/group, kernel…] → [N, M, out…] (ConvInteger:
/// int32; QLinearConv: the output zero point's type; DeformConv: offsets as an extra input).
public enum ConvOp: Operator {
    /// `Conv`, `ConvInteger`, `QLinearConv` and `DeformConv`, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("Conv", [1, 11, 22]), OpSchema("ConvInteger", [10]), OpSchema("QLinearConv", [10]),
                                 OpSchema("DeformConv", [19, 22])]

    /// [N, M, out…] with each spatial size from the sliding window (fresh symbols when the kernel shape is
    /// unknown); throws when X's channels do not match W's times `group`.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        let (x, w, type): (Int, Int, DataType?)
        switch ctx.opType {
        case "ConvInteger": (x, w, type) = (0, 1, .int32)
        case "QLinearConv": (x, w, type) = (0, 3, ctx.elementType(7))
        default: (x, w, type) = (0, 1, ctx.elementType(0))
        }
        guard ctx.has(x), ctx.has(w) else { throw ctx.fail("needs X and W") }
        guard let input = ctx.shape(x) else { return [tensorType(type, nil)] }
        guard input.count >= 3 else { throw ctx.fail("X has rank \(input.count); Conv needs [N, C, spatial…]") }
        let spatial = input.count - 2
        let weights = ctx.shape(w)
        if let weights, weights.count != input.count { throw ctx.fail("W has rank \(weights.count), X \(input.count)") }
        let group = try ctx.count("group", default: 1)
        if case .value(let c) = input[1] {
            guard c % group == 0 else { throw ctx.fail("X has \(c) channels, which group \(group) does not divide") }
            if let weights, case .value(let wc) = weights[1] {
                let (expected, overflow) = wc.multipliedReportingOverflow(by: group)
                guard !overflow, c == expected else { throw ctx.fail("X has \(c) channels, W expects \(wc) × group \(group)") }
            }
        }
        var kernel = try ctx.ints("kernel_shape")
        if kernel == nil, let weights { kernel = ctx.concrete(Array(weights[2...])) }
        guard let kernel else {
            ctx.note("the kernel shape is not known")
            return [tensorType(type, [input[0], weights?[0] ?? ctx.algebra.fresh()] + (0..<spatial).map { _ in ctx.algebra.fresh() })]
        }
        guard kernel.count == spatial else { throw ctx.fail("kernel_shape \(kernel) does not fit \(spatial) spatial axes") }
        let window = try SlidingWindow(ctx, kernel: kernel)
        let out = try (0..<spatial).map { try window.output(input[$0 + 2], axis: $0, ctx) }
        return [tensorType(type, [input[0], weights?[0] ?? ctx.algebra.fresh()] + out)]
    }
}

/// ConvTranspose: [N, C, in…] with weights [C, M/group, kernel…] → [N, M, out…]; out = stride·(in − 1) +
/// output_padding + (kernel − 1)·dilation + 1 − pads, or `output_shape`, or in·stride with SAME auto_pad.
public enum ConvTransposeOp: Operator {
    /// `ConvTranspose`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("ConvTranspose", [1, 11, 22])]

    /// [N, M, out…] by the formula above or from `output_shape`; throws when a spatial size would be below 1.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), ctx.has(1) else { throw ctx.fail("needs X and W") }
        let type = ctx.elementType(0)
        guard let input = ctx.shape(0) else { return [tensorType(type, nil)] }
        guard input.count >= 3 else { throw ctx.fail("X has rank \(input.count); ConvTranspose needs [N, C, spatial…]") }
        let spatial = input.count - 2
        let weights = ctx.shape(1)
        if let weights, weights.count != input.count { throw ctx.fail("W has rank \(weights.count), X \(input.count)") }
        let group = try ctx.count("group", default: 1)
        // W is [C, M/group, k…]: C is X's channels, and group divides it.
        if case .value(let c) = input[1] {
            guard c % group == 0 else { throw ctx.fail("X has \(c) channels, which group \(group) does not divide") }
            if let weights, case .value(let wc) = weights[0], wc != c { throw ctx.fail("X has \(c) channels, W \(wc)") }
        }
        if let weights, case .value(let wc) = weights[0], wc % group != 0 {
            throw ctx.fail("W has \(wc) input channels, which group \(group) does not divide")
        }
        let channels = weights.map { ctx.algebra.multiply($0[1], group) } ?? ctx.algebra.fresh()
        var kernel = try ctx.ints("kernel_shape")
        if kernel == nil, let weights { kernel = ctx.concrete(Array(weights[2...])) }
        let alg = ctx.algebra
        if let outputShape = try ctx.ints("output_shape") {
            let dims = outputShape.count == spatial ? outputShape : Array(outputShape.suffix(spatial))
            guard dims.count == spatial else { throw ctx.fail("output_shape \(outputShape) does not fit \(spatial) spatial axes") }
            return [tensorType(type, [input[0], channels] + dims.map { .value($0) })]
        }
        guard let kernel, kernel.count == spatial else {
            ctx.note("the kernel shape is not known")
            return [tensorType(type, [input[0], channels] + (0..<spatial).map { _ in alg.fresh() })]
        }
        let window = try SlidingWindow(ctx, kernel: kernel)
        let outputPadding = try ctx.ints("output_padding") ?? Array(repeating: 0, count: spatial)
        guard outputPadding.count == spatial, outputPadding.allSatisfy({ $0 >= 0 && $0 <= 1 << 30 }) else {
            throw ctx.fail("output_padding \(outputPadding) does not fit \(spatial) spatial axes")
        }
        let out: [Dim] = try (0..<spatial).map { i in
            let d = input[i + 2]
            if window.autoPad == "SAME_UPPER" || window.autoPad == "SAME_LOWER" { return alg.multiply(d, window.strides[i]) }
            let pads = window.autoPad == "VALID" ? 0 : window.pads[i] + window.pads[i + spatial]
            let extra = outputPadding[i] + (kernel[i] - 1) * window.dilations[i] + 1 - pads
            let r = alg.add(alg.multiply(alg.add(d, -1), window.strides[i]), extra)
            if case .value(let v) = r, v < 1 { throw ctx.fail("the output of spatial axis \(i) would be \(v)") }
            return r
        }
        return [tensorType(type, [input[0], channels] + out)]
    }
}

/// MaxPool (Indices output from 8, ceil_mode from 10, dilations from 10), AveragePool (ceil_mode 10,
/// dilations 19), LpPool (ceil_mode and dilations 18): [N, C, out…].
public enum PoolOp: Operator {
    /// Whether a pool of `opset` has `dilations` and `ceil_mode`: MaxPool both from 10, AveragePool ceil_mode from 10 and
    /// dilations from 19, LpPool both from 18. Before that the attribute is not part of the op and is ignored (ONNX
    /// Runtime refuses such a model); shape inference and the Core ML lowering read the same answer.
    public static func windowAttributes(_ opType: String, opset: Int) -> (dilations: Bool, ceilMode: Bool) {
        switch opType {
        case "MaxPool": return (opset >= 10, opset >= 10)
        case "AveragePool": return (opset >= 19, opset >= 10)
        default: return (opset >= 18, opset >= 18)
        }
    }

    /// `MaxPool`, `AveragePool` and `LpPool`, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("MaxPool", [1, 8, 10, 11, 12, 22]), OpSchema("AveragePool", [1, 7, 10, 11, 19, 22]),
                                 OpSchema("LpPool", [1, 2, 11, 18, 22])]

    /// [N, C, out…] from the sliding window, for the output and MaxPool's int64 Indices; throws without
    /// `kernel_shape`.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        let type = ctx.elementType(0)
        let outputs = ctx.node.outputs.count
        guard let input = ctx.shape(0) else {
            return [tensorType(type, nil)] + Array(repeating: tensorType(.int64, nil), count: max(outputs - 1, 0))
        }
        guard input.count >= 3 else { throw ctx.fail("X has rank \(input.count); pooling needs [N, C, spatial…]") }
        guard let kernel = try ctx.ints("kernel_shape") else { throw ctx.fail("attribute 'kernel_shape' is missing") }
        guard kernel.count == input.count - 2 else { throw ctx.fail("kernel_shape \(kernel) does not fit rank \(input.count)") }
        let reads = windowAttributes(ctx.opType, opset: ctx.since)
        let window = try SlidingWindow(ctx, kernel: kernel, dilations: reads.dilations, ceilMode: reads.ceilMode)
        let out = try (0..<kernel.count).map { try window.output(input[$0 + 2], axis: $0, ctx) }
        let shape = [input[0], input[1]] + out
        return [tensorType(type, shape)] + Array(repeating: tensorType(.int64, shape), count: max(outputs - 1, 0))
    }
}

/// Global pools: [N, C, 1, 1…].
public enum GlobalPoolOp: Operator {
    /// `GlobalAveragePool`, `GlobalMaxPool` and `GlobalLpPool`, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("GlobalAveragePool", [1, 22]), OpSchema("GlobalMaxPool", [1, 22]),
                                 OpSchema("GlobalLpPool", [1, 2, 22])]

    /// [N, C] followed by a 1 for each spatial axis of X; throws below rank 2.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        guard let input = ctx.shape(0) else { return [tensorType(ctx.elementType(0), nil)] }
        guard input.count >= 2 else { throw ctx.fail("X has rank \(input.count); needs [N, C, …]") }
        return [tensorType(ctx.elementType(0), [input[0], input[1]] + Array(repeating: .value(1), count: input.count - 2))]
    }
}

/// Region pools: MaxRoiPool [num_rois, C, pooled…], RoiAlign [num_rois, C, output_height, output_width].
public enum RoiPoolOp: Operator {
    /// `MaxRoiPool` and `RoiAlign`, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("MaxRoiPool", [1, 22]), OpSchema("RoiAlign", [10, 16, 22])]

    /// [num_rois, C, …] with the pooled sizes from `pooled_shape`, or `output_height` and `output_width`
    /// (1 by default).
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), ctx.has(1) else { throw ctx.fail("needs X and rois") }
        let channels = ctx.shape(0).flatMap { $0.count >= 2 ? $0[1] : nil } ?? ctx.algebra.fresh()
        let rois = ctx.shape(1).flatMap { $0.first } ?? ctx.algebra.fresh()
        let spatial: [Dim]
        if ctx.opType == "MaxRoiPool" {
            guard let pooled = try ctx.ints("pooled_shape") else { throw ctx.fail("attribute 'pooled_shape' is missing") }
            spatial = pooled.map { .value($0) }
        } else {
            spatial = [.value(try ctx.int("output_height", default: 1)), .value(try ctx.int("output_width", default: 1))]
        }
        return [tensorType(ctx.elementType(0), [rois, channels] + spatial)]
    }
}

/// MaxUnpool: `output_shape` input when given, else (in − 1)·stride + kernel − pads per spatial axis.
public enum MaxUnpoolOp: Operator {
    /// `MaxUnpool`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("MaxUnpool", [9, 11, 22])]

    /// The `output_shape` input's elements when known, else [N, C, out…] by the formula above.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), ctx.has(1) else { throw ctx.fail("needs X and I") }
        let type = ctx.elementType(0)
        if ctx.has(2) {
            if let dims = ctx.dimsValue(2) { return [tensorType(type, dims)] }
            return [tensorType(type, ctx.rank(0).map { r in (0..<r).map { _ in ctx.algebra.fresh() } })]
        }
        guard let input = ctx.shape(0) else { return [tensorType(type, nil)] }
        guard let kernel = try ctx.ints("kernel_shape"), kernel.count == input.count - 2 else { throw ctx.fail("kernel_shape does not fit the input") }
        let window = try SlidingWindow(ctx, kernel: kernel, dilations: false)
        let out = (0..<kernel.count).map { i in
            ctx.algebra.add(ctx.algebra.multiply(ctx.algebra.add(input[i + 2], -1), window.strides[i]),
                            kernel[i] - window.pads[i] - window.pads[i + kernel.count])
        }
        return [tensorType(type, [input[0], input[1]] + out)]
    }
}

/// DepthToSpace [N, C/b², H·b, W·b] and SpaceToDepth [N, C·b², H/b, W/b].
public enum SpaceDepthOp: Operator {
    /// `DepthToSpace` and `SpaceToDepth`, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("DepthToSpace", [1, 11, 13]), OpSchema("SpaceToDepth", [1, 13])]

    /// The rearranged rank-4 shape; throws when a known dim does not divide by the block size.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        let type = ctx.elementType(0)
        guard let b = try ctx.int("blocksize"), b >= 1, b <= 1 << 20 else { throw ctx.fail("attribute 'blocksize' is missing or below 1") }
        guard let s = ctx.shape(0) else { return [tensorType(type, nil)] }
        guard s.count == 4 else { throw ctx.fail("input has rank \(s.count), not 4") }
        let alg = ctx.algebra
        if ctx.opType == "DepthToSpace" {
            if case .value(let c) = s[1], c % (b * b) != 0 { throw ctx.fail("\(c) channels do not divide by blocksize² \(b * b)") }
            return [tensorType(type, [s[0], alg.floorDiv(s[1], b * b), alg.multiply(s[2], b), alg.multiply(s[3], b)])]
        }
        for d in [s[2], s[3]] { if case .value(let v) = d, v % b != 0 { throw ctx.fail("spatial dim \(v) does not divide by blocksize \(b)") } }
        return [tensorType(type, [s[0], alg.multiply(s[1], b * b), alg.floorDiv(s[2], b), alg.floorDiv(s[3], b)])]
    }
}
