/// Convolution, pooling, normalization and resizing: iOS15/conv.py, pool.py, normalization.py, image_resizing.py;
/// scaled_dot_product_attention from iOS18/transformers.py.
enum MILNeuralDefinitions {
    static func scalarFactor(_ c: MILOpContext, _ name: String) throws(MILTypeError) -> Double {
        let v = try c.required(name)
        switch v.data {
        case .floats(let f) where f.count == 1: return Double(f[0])
        case .ints(let i) where i.count == 1: return Double(i[0])
        default: throw MILTypeError("parameter '\(name)' must be a scalar")
        }
    }

    static func pool(_ type: String, ceil: Bool) -> MILOpDefinition {
        MILOpDefinition(type, file: "iOS15/pool.py", domains: ["x": Shapes.floats]) { c throws(MILTypeError) in
            let x = try c.type("x")
            guard x.rank >= 3, x.rank <= 5 else { throw MILTypeError("\(type) takes rank 3 to 5, got \(x.rank)") }
            let kernel = try c.ints("kernel_sizes")
            let n = kernel.count
            guard n == x.rank - 2 else { throw MILTypeError("kernel_sizes \(kernel) for rank \(x.rank)") }
            let strides = try c.ints("strides", default: Array(repeating: 1, count: n))
            let padType = try c.string("pad_type", default: "valid")
            let pad = try c.ints("pad", default: Array(repeating: 0, count: 2 * n))
            let ceilMode = ceil ? try c.bool("ceil_mode", default: false) : false
            let spatial = try Shapes.windowed(input: Array(x.shape[2...]), kernel: kernel, strides: strides,
                                              dilations: Array(repeating: 1, count: n), padType: padType, pad: pad, ceilMode: ceilMode)
            return [x.with(shape: Array(x.shape[..<2]) + spatial)]
        }
    }

    static func sameShapeNorm(_ type: String, ranks: ClosedRange<Int>, channelParams: [String]) -> MILOpDefinition {
        MILOpDefinition(type, file: "iOS15/normalization.py", domains: ["x": Shapes.floats]) { c throws(MILTypeError) in
            let x = try c.type("x")
            guard ranks.contains(x.rank) else { throw MILTypeError("\(type) takes rank \(ranks.lowerBound) to \(ranks.upperBound), got \(x.rank)") }
            for p in channelParams where c.has(p) {
                let t = try c.type(p)
                guard t.dtype == x.dtype, t.shape == [x.shape[1]] else { throw MILTypeError("\(p) \(t) for \(x.shape[1]) channels of \(x.dtype)") }
            }
            if c.has("epsilon") { try c.requireFloatScalar("epsilon") }
            return [x]
        }
    }

    static let all: [MILOpDefinition] = {
        var list: [MILOpDefinition] = []
        list.append(MILOpDefinition("conv", file: "iOS15/conv.py", domains: ["x": Shapes.floats, "weight": Shapes.floats, "bias": Shapes.floats]) { c throws(MILTypeError) in
            let x = try c.type("x"), w = try c.type("weight")
            guard x.rank >= 3, x.rank <= 5, w.rank == x.rank, x.dtype == w.dtype else { throw MILTypeError("conv of \(x) with weight \(w)") }
            let groups = try c.int("groups", default: 1)
            guard groups > 0, x.shape[1] % groups == 0, x.shape[1] / groups == w.shape[1] else {
                throw MILTypeError("\(x.shape[1]) input channels in \(groups) groups do not fit weight \(w.shape)")
            }
            if let b = try c.optionalType("bias") {
                guard b.shape == [w.shape[0]] else { throw MILTypeError("bias \(b.shape) for \(w.shape[0]) output channels") }
            }
            let n = x.rank - 2
            let spatial = try Shapes.windowed(
                input: Array(x.shape[2...]), kernel: Array(w.shape[2...]),
                strides: try c.ints("strides", default: Array(repeating: 1, count: n)),
                dilations: try c.ints("dilations", default: Array(repeating: 1, count: n)),
                padType: try c.string("pad_type", default: "valid"), pad: try c.ints("pad", default: Array(repeating: 0, count: 2 * n)),
                ceilMode: false)
            return [x.with(shape: [x.shape[0], w.shape[0]] + spatial)]
        })
        list.append(MILOpDefinition("conv_transpose", file: "iOS15/conv.py", domains: ["x": Shapes.floats, "weight": Shapes.floats, "bias": Shapes.floats]) { c throws(MILTypeError) in
            let x = try c.type("x"), w = try c.type("weight")
            guard x.rank >= 3, x.rank <= 5, w.rank == x.rank, x.dtype == w.dtype, w.shape[0] == x.shape[1] else {
                throw MILTypeError("conv_transpose of \(x) with weight \(w)")
            }
            let groups = try c.int("groups", default: 1)
            guard groups > 0 else { throw MILTypeError("groups \(groups)") }
            let out = w.shape[1] * groups
            if let b = try c.optionalType("bias") {
                guard b.shape == [out] else { throw MILTypeError("bias \(b.shape) for \(out) output channels") }
            }
            if c.has("output_shape") {
                let shape = try c.ints("output_shape")
                guard shape.count == x.rank, shape[0] == x.shape[0], shape[1] == out else { throw MILTypeError("output_shape \(shape)") }
                return [x.with(shape: shape)]
            }
            let n = x.rank - 2
            let strides = try c.ints("strides", default: Array(repeating: 1, count: n))
            let dilations = try c.ints("dilations", default: Array(repeating: 1, count: n))
            let padType = try c.string("pad_type", default: "valid")
            let pad = try c.ints("pad", default: Array(repeating: 0, count: 2 * n))
            guard strides.count == n, dilations.count == n, pad.count == 2 * n else { throw MILTypeError("strides, dilations or pad do not fit") }
            var spatial: [Int] = []
            for r in 0..<n {
                let k = (w.shape[2 + r] - 1) * dilations[r] + 1
                let i = x.shape[2 + r]
                switch padType {
                case "same": spatial.append(strides[r] * i)
                case "valid": spatial.append(strides[r] * (i - 1) + k)
                case "custom": spatial.append(strides[r] * (i - 1) + k - pad[2 * r] - pad[2 * r + 1])
                default: throw MILTypeError("pad_type '\(padType)'")
                }
                guard spatial[r] > 0 else { throw MILTypeError("spatial dim \(r) has output size \(spatial[r])") }
            }
            return [x.with(shape: [x.shape[0], out] + spatial)]
        })
        list.append(pool("max_pool", ceil: true))
        list.append(pool("avg_pool", ceil: true))
        list.append(pool("l2_pool", ceil: false))
        list.append(sameShapeNorm("batch_norm", ranks: 3...5, channelParams: ["mean", "variance", "gamma", "beta"]))
        list.append(sameShapeNorm("instance_norm", ranks: 3...4, channelParams: ["gamma", "beta"]))
        list.append(MILOpDefinition("layer_norm", file: "iOS15/normalization.py", domains: ["x": Shapes.floats]) { c throws(MILTypeError) in
            let x = try c.type("x")
            let axes = c.has("axes") ? try c.ints("axes").map { a throws(MILTypeError) in try Shapes.axis(a, rank: x.rank) } : Array(0..<x.rank)
            let normalized = axes.sorted().map { x.shape[$0] }
            for p in ["gamma", "beta"] where c.has(p) {
                let t = try c.type(p)
                guard t.dtype == x.dtype, t.shape == normalized else { throw MILTypeError("\(p) \(t.shape) for normalized shape \(normalized)") }
            }
            return [x]
        })
        list.append(MILOpDefinition("local_response_norm", file: "iOS15/normalization.py", domains: ["x": Shapes.floats]) { c throws(MILTypeError) in
            let x = try c.type("x")
            guard x.rank >= 3 else { throw MILTypeError("local_response_norm takes rank ≥ 3") }
            guard try c.int("size") > 0 else { throw MILTypeError("size must be positive") }
            return [x]
        })
        list.append(MILOpDefinition("l2_norm", file: "iOS15/normalization.py", domains: ["x": Shapes.floats]) { c throws(MILTypeError) in
            [try c.type("x")]
        })
        list.append(MILOpDefinition("upsample_nearest_neighbor", file: "iOS15/image_resizing.py", domains: ["x": Shapes.floats]) { c throws(MILTypeError) in
            let x = try c.type("x")
            guard x.rank >= 3 else { throw MILTypeError("upsample_nearest_neighbor takes rank ≥ 3") }
            var shape = x.shape
            shape[x.rank - 1] = Int((try scalarFactor(c, "scale_factor_width") * Double(shape[x.rank - 1])).rounded(.down))
            shape[x.rank - 2] = Int((try scalarFactor(c, "scale_factor_height") * Double(shape[x.rank - 2])).rounded(.down))
            return [x.with(shape: shape)]
        })
        for op in ["resize_bilinear", "resize_nearest_neighbor"] {
            list.append(MILOpDefinition(op, file: "iOS15/image_resizing.py", domains: ["x": Shapes.floats]) { c throws(MILTypeError) in
                let x = try c.type("x")
                guard x.rank >= 3 else { throw MILTypeError("\(op) takes rank ≥ 3") }
                var shape = x.shape
                shape[x.rank - 1] = try c.int("target_size_width")
                shape[x.rank - 2] = try c.int("target_size_height")
                guard shape.allSatisfy({ $0 > 0 }) else { throw MILTypeError("target size \(shape)") }
                return [x.with(shape: shape)]
            })
        }
        // iOS15/image_resizing.py: x rank 4 [B, C, H1, W1], coordinates rank 4 [B, H2, W2, 2] (U: int32, fp32; iOS16
        // adds fp16, iOS17 small integers — mlpkg writes fp32 coordinates at every target); out [B, C, H2, W2].
        list.append(MILOpDefinition("resample", file: "iOS15/image_resizing.py",
                                    domains: ["x": Shapes.floats, "coordinates": [.int32, .fp32]]) { c throws(MILTypeError) in
            let x = try c.type("x"), grid = try c.type("coordinates")
            guard x.rank == 4, grid.rank == 4 else { throw MILTypeError("resample takes rank-4 x and coordinates, got \(x.rank) and \(grid.rank)") }
            guard x.shape[0] == grid.shape[0], grid.shape[3] == 2 else { throw MILTypeError("resample: coordinates \(grid.shape) do not fit x \(x.shape)") }
            return [x.with(shape: [x.shape[0], x.shape[1], grid.shape[1], grid.shape[2]])]
        })
        list.append(MILOpDefinition("scaled_dot_product_attention", since: .iOS18, file: "iOS18/transformers.py",
                                    domains: ["query": Shapes.floats, "key": Shapes.floats, "value": Shapes.floats]) { c throws(MILTypeError) in
            let q = try c.type("query"), k = try c.type("key"), v = try c.type("value")
            guard q.rank >= 3, k.rank == q.rank, v.rank == q.rank, q.shape.last == k.shape.last,
                  k.shape[k.rank - 2] == v.shape[v.rank - 2], q.dtype == k.dtype, q.dtype == v.dtype,
                  q.shape.dropLast(2) == k.shape.dropLast(2), q.shape.dropLast(2) == v.shape.dropLast(2) else {
                throw MILTypeError("query \(q.shape), key \(k.shape), value \(v.shape)")
            }
            // attn_mask (bool, fp16 or fp32): its last dim is the key's sequence, the rest broadcasts with the query's.
            if let m = try c.optionalType("attn_mask") {
                guard [.bool, .fp16, .fp32].contains(m.dtype), m.rank >= 1, m.shape.last == k.shape[k.rank - 2] else {
                    throw MILTypeError("attn_mask \(m) for key \(k.shape)")
                }
                _ = try Shapes.broadcast(Array(q.shape.dropLast()), Array(m.shape.dropLast()))
            }
            return [q.with(shape: Array(q.shape.dropLast()) + [v.shape[v.rank - 1]])]
        })
        return list
    }()
}
