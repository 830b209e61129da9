import GraphIR

/// Resize / Upsample on rank 4 (N and C unscaled), with the ONNX modes MIL reproduces exactly:
/// - nearest with whole-number factors, where `half_pixel`/`pytorch_half_pixel` with any rounding and
///   `asymmetric` with `floor` all pick source index ⌊x / s⌋ → upsample_nearest_neighbor;
/// - linear: `half_pixel` (and `pytorch_half_pixel` when no output dim is 1) → resize_bilinear UNALIGN_CORNERS,
///   `align_corners` → STRICT_ALIGN_CORNERS, `asymmetric` → DEFAULT.
/// A resize to the same size is an identity in every mode (cubic too) but tf_half_pixel_for_nn/tf_crop_and_resize;
/// cubic, antialias, tf_crop_and_resize, and other combinations are refused with the reason.
enum ResizeLowering: OpLowering {
    static let opTypes = ["Resize", "Upsample"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.requireFloat(0), out = try v.outputType()
        guard x.rank == 4, out.rank == 4 else { throw LoweringRefusal("Resize on rank \(x.rank); MIL resizes rank-4 [N, C, H, W] only") }
        guard out.shape[0] == x.shape[0], out.shape[1] == x.shape[1] else { throw LoweringRefusal("Resize scales N or C") }
        let mode = v.string("mode", default: "nearest")
        let transform = v.opType == "Upsample" ? "asymmetric" : v.string("coordinate_transformation_mode", default: "half_pixel")
        let nearestMode = v.opType == "Upsample" ? "floor" : v.string("nearest_mode", default: "round_prefer_floor")
        guard v.int("antialias", default: 0) == 0 else { throw LoweringRefusal("antialias=1") }
        guard v.ints("axes") == nil else { throw LoweringRefusal("Resize with axes") }
        // Resizing to the same size samples every source pixel at its own coordinate in these modes, where any
        // interpolation (cubic included) returns the pixel itself: an identity (DINOv2 interpolates its position
        // embedding to the size it already has). tf_half_pixel_for_nn and tf_crop_and_resize move the samples.
        let identityModes: Set<String> = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric"]
        if out.shape == x.shape, identityModes.contains(transform) {
            return { e throws(LoweringRefusal) in [e.op("identity", [("x", .v(try e.input(0)))], output: out)] }
        }
        let hScale = Double(out.shape[2]) / Double(x.shape[2]), wScale = Double(out.shape[3]) / Double(x.shape[3])
        if let factors = scaleFactors(v), factors.count == 4 {
            // With scales given, ONNX sizes are floor(in · scale); MIL's factors must be those same numbers.
            guard abs(Double(factors[2]) - hScale) < 1e-6 || Int(Double(x.shape[2]) * Double(factors[2])) == out.shape[2] else {
                throw LoweringRefusal("scale \(factors[2]) is not output/input")
            }
        }
        switch mode {
        case "nearest":
            let whole = hScale == hScale.rounded() && wScale == wScale.rounded() && hScale >= 1 && wScale >= 1
            guard whole else { throw LoweringRefusal("nearest Resize by \(hScale)×\(wScale); MIL needs whole-number upsampling factors") }
            let halfPixel = transform == "half_pixel" || transform == "pytorch_half_pixel"
            guard halfPixel || (transform == "asymmetric" && nearestMode == "floor") else {
                throw LoweringRefusal("nearest with coordinate_transformation_mode '\(transform)' and nearest_mode '\(nearestMode)' picks other pixels than MIL")
            }
            return { e throws(LoweringRefusal) in
                [e.op("upsample_nearest_neighbor", [("x", .v(try e.input(0))),
                                                    ("scale_factor_height", .c(.scalar(Int32(hScale)))),
                                                    ("scale_factor_width", .c(.scalar(Int32(wScale))))], output: out)]
            }
        case "linear", "bilinear":
            let sampling: String
            switch transform {
            case "half_pixel": sampling = "UNALIGN_CORNERS"
            case "pytorch_half_pixel" where out.shape[2] > 1 && out.shape[3] > 1: sampling = "UNALIGN_CORNERS"
            case "align_corners": sampling = "STRICT_ALIGN_CORNERS"
            case "asymmetric": sampling = "DEFAULT"
            default: throw LoweringRefusal("linear Resize with coordinate_transformation_mode '\(transform)'")
            }
            return { e throws(LoweringRefusal) in
                [e.op("resize_bilinear", [("x", .v(try e.input(0))), ("target_size_height", .c(.scalar(Int32(out.shape[2])))),
                                          ("target_size_width", .c(.scalar(Int32(out.shape[3])))),
                                          ("sampling_mode", .c(.scalar(sampling)))], output: out)]
            }
        default:
            throw LoweringRefusal("Resize mode '\(mode)' has no MIL op")
        }
    }

    static func scaleFactors(_ v: NodeView) -> [Float]? {
        let index = v.opType == "Upsample" ? 1 : (v.opset >= 11 ? 2 : 1)
        guard v.has(index), let f = try? v.floats(index), !f.isEmpty else { return nil }
        return f
    }
}

/// GridSample (rank 4) → resample with coordinates_mode normalized_minus_one_to_one. Modes bilinear/linear and
/// nearest; padding zeros → constant 0, border → border, reflection → reflection with align_corners (reflected about
/// the corner pixels' centers) and symmetric without (about their edges: coremltools' torch frontend maps it the same
/// way). The grid is cast to fp32 in fp16 programs (the iOS15 definition takes int32 or fp32 coordinates).
enum GridSampleLowering: OpLowering {
    static let opTypes = ["GridSample"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.requireFloat(0), grid = try v.requireFloat(1), out = try v.outputType()
        guard x.rank == 4, grid.rank == 4 else { throw LoweringRefusal("GridSample on rank \(x.rank); MIL's resample takes 2-D images (rank 4)") }
        guard grid.shape[0] == x.shape[0], grid.shape[3] == 2 else { throw LoweringRefusal("grid \(grid.shape) does not fit the input \(x.shape)") }
        let mode = v.string("mode", default: "bilinear")
        let sampling: String
        switch mode {
        case "bilinear", "linear": sampling = "bilinear"
        case "nearest": sampling = "nearest"
        default: throw LoweringRefusal("mode '\(mode)' has no MIL resample mode (bilinear, nearest)")
        }
        let alignCorners = v.int("align_corners", default: 0) != 0
        let padding: String
        switch v.string("padding_mode", default: "zeros") {
        case "zeros": padding = "constant"
        case "border": padding = "border"
        case "reflection": padding = alignCorners ? "reflection" : "symmetric"
        case let other: throw LoweringRefusal("padding_mode '\(other)'")
        }
        return { e throws(LoweringRefusal) in
            var coordinates = try e.input(1)
            if grid.dtype != .fp32 {
                coordinates = e.op("cast", [("x", .v(coordinates)), ("dtype", .c(.scalar("fp32")))], output: grid.with(dtype: .fp32), suffix: "_grid_fp32")
            }
            return [e.op("resample", [("x", .v(try e.input(0))), ("coordinates", .v(coordinates)),
                                      ("sampling_mode", .c(.scalar(sampling))), ("padding_mode", .c(.scalar(padding))),
                                      ("padding_value", .c(.float(0, x.dtype))),
                                      ("coordinates_mode", .c(.scalar("normalized_minus_one_to_one"))),
                                      ("align_corners", .c(.scalar(alignCorners)))], output: out)]
        }
    }
}

/// DequantizeLinear of a constant (a QDQ model's weights) → the same constexpr ops the package's own compressed
/// weights use; run-time dequantization (activations) is refused.
enum DequantizeLowering: OpLowering {
    static let opTypes = ["DequantizeLinear"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        guard v.isConstant(0), v.isConstant(1), !v.has(2) || v.isConstant(2) else {
            throw LoweringRefusal("DequantizeLinear of a run-time value (activation quantization) is not lowered")
        }
        guard let data = v.values.constant(v.node.inputs[0])?.tensor, data.encoding.isRaw,
              let scale = v.values.constant(v.node.inputs[1])?.tensor, scale.encoding.isRaw else {
            throw LoweringRefusal("DequantizeLinear inputs must be stored tensors")
        }
        let zero = v.has(2) ? v.values.constant(v.node.inputs[2])?.tensor : nil
        let out = try v.outputType()
        let rank = data.dims.count
        var axis: Int? = nil
        if scale.elementCount > 1 || scale.dims.count == 1 && data.dims.count > 0 && scale.dims == [data.dims[0]] && v.node.attribute("axis") != nil {
            axis = try v.axis(v.int("axis", default: 1), rank: rank)
        }
        let blockSize = v.int("block_size").flatMap { $0 > 0 ? $0 : nil }
        guard CompressedWeights.milStorage(data.dataType) != nil else { throw LoweringRefusal("quantized type \(data.dataType.name)") }
        let q = LinearQuantization(storage: data.dataType, axis: axis, blockSize: blockSize, scale: scale, zeroPoint: zero)
        if let zero, zero.dataType != data.dataType { throw LoweringRefusal("zero point type differs from the data") }
        try CompressedWeights.check(v.node.outputs[0], data, q, target: v.target)
        return { e throws(LoweringRefusal) in
            guard case .bytes(let view) = data.data else { throw LoweringRefusal("data is not stored as bytes") }
            return [try CompressedWeights.emit(name: v.node.outputs[0], tensor: data, values: view, q, type: out, builder: e.builder)]
        }
    }
}
