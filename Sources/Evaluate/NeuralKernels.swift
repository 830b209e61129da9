import Foundation
import MIL

/// Geometry of a windowed op over 1 to 3 spatial dims, normalised to 3 (leading dims of size 1).
struct Window {
    var input: [Int]      // 3 spatial input sizes
    var kernel: [Int]
    var strides: [Int]
    var dilations: [Int]
    var padBefore: [Int]
    var padAfter: [Int]
    var output: [Int]

    /// MIL's pads for `padType` (iOS15/conv.py, pool.py): `same` puts the odd element after, `same_lower` before.
    static func pads(_ a: OpArguments, padType: String, input: [Int], effective: [Int], strides: [Int]) throws(EvaluationError) -> ([Int], [Int]) {
        let n = input.count
        switch padType {
        case "valid": return (Array(repeating: 0, count: n), Array(repeating: 0, count: n))
        case "custom":
            let p = try a.ints("pad", default: Array(repeating: 0, count: 2 * n))
            guard p.count == 2 * n else { throw EvaluationError("pad \(p) for \(n) spatial dims") }
            return ((0..<n).map { p[2 * $0] }, (0..<n).map { p[2 * $0 + 1] })
        case "same", "same_lower":
            var before: [Int] = [], after: [Int] = []
            for i in 0..<n {
                let total = max(0, strides[i] * ((input[i] + strides[i] - 1) / strides[i]) - input[i] + effective[i] - strides[i])
                let small = total / 2, big = total - small
                before.append(padType == "same_lower" ? big : small)
                after.append(padType == "same_lower" ? small : big)
            }
            return (before, after)
        default: throw EvaluationError("pad_type '\(padType)'")
        }
    }

    static func lift(_ v: [Int], _ fill: Int) -> [Int] { Array(repeating: fill, count: 3 - v.count) + v }
}

extension Kernels {
    /// Batched matrix product with numpy broadcasting of the batch dims.
    static func matmul(_ x: EvalTensor, _ y: EvalTensor, transposeX: Bool, transposeY: Bool) throws(EvaluationError) -> EvalTensor {
        var xs = x.shape, ys = y.shape
        let vectorX = xs.count == 1
        if vectorX { xs = [1] + xs }
        let vectorY = ys.count == 1
        if vectorY { ys = ys + [1] }
        let (m, kx) = transposeX ? (xs[xs.count - 1], xs[xs.count - 2]) : (xs[xs.count - 2], xs[xs.count - 1])
        let (ky, n) = transposeY ? (ys[ys.count - 1], ys[ys.count - 2]) : (ys[ys.count - 2], ys[ys.count - 1])
        guard kx == ky else { throw EvaluationError("inner dims differ: \(x.shape) × \(y.shape)") }
        let xb = Array(xs.dropLast(2)), yb = Array(ys.dropLast(2))
        let batch = try broadcastShape(xb, yb)
        let count = batch.reduce(1, *)
        let xo = broadcastOffsets(xb, to: batch), yo = broadcastOffsets(yb, to: batch)
        var out = [Float](repeating: 0, count: count * m * n)
        x.withFloats { a in
            y.withFloats { b in
                out.withUnsafeMutableBufferPointer { c in
                    for i in 0..<count {
                        MatrixProduct.multiply(m: m, n: n, k: kx, a: a.baseAddress! + xo[i] * m * kx, lda: transposeX ? m : kx, transposeA: transposeX,
                                               b: b.baseAddress! + yo[i] * kx * n, ldb: transposeY ? kx : n, transposeB: transposeY,
                                               c: c.baseAddress! + i * m * n, ldc: n)
                    }
                }
            }
        }
        var shape = batch + [m, n]
        if vectorX { shape.remove(at: shape.count - 2) }
        if vectorY { shape.removeLast() }
        return EvalTensor(floats: out, shape: shape, dtype: x.dtype)
    }

    /// Adds `bias[c]` to every element of channel c of an [outer, C, inner] layout.
    static func addBias(_ out: inout [Float], _ bias: [Float], outer: Int, inner: Int) {
        let c = bias.count
        out.withUnsafeMutableBufferPointer { p in
            for o in 0..<outer { for ch in 0..<c { let b = bias[ch]; let base = (o * c + ch) * inner; for i in 0..<inner { p[base + i] += b } } }
        }
    }

    static func conv(_ a: OpArguments) throws(EvaluationError) -> EvalTensor {
        let x = try a.tensor("x"), w = try a.tensor("weight")
        let nd = x.rank - 2
        guard (1...3).contains(nd), w.rank == x.rank else { throw EvaluationError("conv of \(x.shape) with weight \(w.shape)") }
        let groups = try a.int("groups", default: 1)
        let strides = try a.ints("strides", default: Array(repeating: 1, count: nd))
        let dilations = try a.ints("dilations", default: Array(repeating: 1, count: nd))
        let kernel = Array(w.shape[2...])
        let effective = (0..<nd).map { (kernel[$0] - 1) * dilations[$0] + 1 }
        let (before, after) = try Window.pads(a, padType: try a.string("pad_type", default: "valid"), input: Array(x.shape[2...]),
                                               effective: effective, strides: strides)
        let (n, cin, cout) = (x.shape[0], x.shape[1], w.shape[0])
        let cg = w.shape[1]
        guard groups > 0, cin == cg * groups, cout % groups == 0 else { throw EvaluationError("\(cin) channels in \(groups) groups for weight \(w.shape)") }
        var outSpatial: [Int] = []
        for i in 0..<nd {
            let span: Int = x.shape[2 + i] + before[i] + after[i] - effective[i]
            outSpatial.append(span / strides[i] + 1)
        }
        let I = Window.lift(Array(x.shape[2...]), 1), K = Window.lift(kernel, 1), S = Window.lift(strides, 1)
        let D = Window.lift(dilations, 1), P = Window.lift(before, 0), O = Window.lift(outSpatial, 1)
        let inPlane = I[0] * I[1] * I[2], outPlane = O[0] * O[1] * O[2], kPlane = K[0] * K[1] * K[2]
        let coutG = cout / groups
        let rows = cg * kPlane
        let pointwise = kPlane == 1 && S == [1, 1, 1] && P == [0, 0, 0] && outPlane == inPlane
        var out = [Float](repeating: 0, count: n * cout * outPlane)
        var columns = [Float](repeating: 0, count: pointwise ? 0 : rows * outPlane)
        x.withFloats { xp in
            w.withFloats { wp in
                out.withUnsafeMutableBufferPointer { op in
                    columns.withUnsafeMutableBufferPointer { col in
                        for b in 0..<n {
                            for g in 0..<groups {
                                let src = xp.baseAddress! + (b * cin + g * cg) * inPlane
                                let matrix: UnsafePointer<Float>
                                if pointwise {
                                    matrix = src
                                } else {
                                    // im2col: row (c, kd, kh, kw), column (od, oh, ow).
                                    var r = 0
                                    for c in 0..<cg {
                                        for kd in 0..<K[0] { for kh in 0..<K[1] { for kw in 0..<K[2] {
                                            let dst = col.baseAddress! + r * outPlane
                                            var j = 0
                                            for od in 0..<O[0] {
                                                let id = od * S[0] - P[0] + kd * D[0]
                                                for oh in 0..<O[1] {
                                                    let ih = oh * S[1] - P[1] + kh * D[1]
                                                    let rowOK = id >= 0 && id < I[0] && ih >= 0 && ih < I[1]
                                                    let rowBase = (c * I[0] + id) * I[1] * I[2] + ih * I[2]
                                                    for ow in 0..<O[2] {
                                                        let iw = ow * S[2] - P[2] + kw * D[2]
                                                        dst[j] = rowOK && iw >= 0 && iw < I[2] ? src[rowBase + iw] : 0
                                                        j += 1
                                                    }
                                                }
                                            }
                                            r += 1
                                        } } }
                                    }
                                    matrix = UnsafePointer(col.baseAddress!)
                                }
                                MatrixProduct.multiply(m: coutG, n: outPlane, k: rows, a: wp.baseAddress! + g * coutG * rows, lda: rows,
                                                       b: matrix, ldb: outPlane, c: op.baseAddress! + (b * cout + g * coutG) * outPlane, ldc: outPlane)
                            }
                        }
                    }
                }
            }
        }
        if let bias = try a.optional("bias") { addBias(&out, bias.floats, outer: n, inner: outPlane) }
        return EvalTensor(floats: out, shape: [n, cout] + outSpatial, dtype: x.dtype)
    }

    /// Full transposed convolution (size (in−1)·s + (k−1)·d + 1 per dim) by GEMM and col2im, then the window
    /// MIL's pad_type / pad / output_shape select (iOS15/conv.py), then bias.
    static func convTranspose(_ a: OpArguments) throws(EvaluationError) -> EvalTensor {
        let x = try a.tensor("x"), w = try a.tensor("weight")
        let nd = x.rank - 2
        guard (1...3).contains(nd), w.rank == x.rank else { throw EvaluationError("conv_transpose of \(x.shape) with weight \(w.shape)") }
        let groups = try a.int("groups", default: 1)
        let strides = try a.ints("strides", default: Array(repeating: 1, count: nd))
        let dilations = try a.ints("dilations", default: Array(repeating: 1, count: nd))
        let padType = try a.string("pad_type", default: "valid")
        let (n, cin) = (x.shape[0], x.shape[1])
        guard groups > 0, w.shape[0] == cin, cin % groups == 0 else { throw EvaluationError("\(cin) channels in \(groups) groups for weight \(w.shape)") }
        let cog = w.shape[1], cout = cog * groups, cig = cin / groups
        let kernel = Array(w.shape[2...])
        var full: [Int] = []
        for i in 0..<nd {
            let span: Int = (x.shape[2 + i] - 1) * strides[i]
            full.append(span + (kernel[i] - 1) * dilations[i] + 1)
        }
        let I = Window.lift(Array(x.shape[2...]), 1), K = Window.lift(kernel, 1), S = Window.lift(strides, 1)
        let D = Window.lift(dilations, 1), F = Window.lift(full, 1)
        let inPlane = I[0] * I[1] * I[2], kPlane = K[0] * K[1] * K[2], fullPlane = F[0] * F[1] * F[2]
        var f = [Float](repeating: 0, count: n * cout * fullPlane)
        var cols = [Float](repeating: 0, count: cog * kPlane * inPlane)
        x.withFloats { xp in
            w.withFloats { wp in
                cols.withUnsafeMutableBufferPointer { col in
                    f.withUnsafeMutableBufferPointer { fp in
                        for b in 0..<n {
                            for g in 0..<groups {
                                // cols [cog·kPlane, inPlane] = W_gᵀ [cog·kPlane, cig] · x_g [cig, inPlane]
                                MatrixProduct.multiply(m: cog * kPlane, n: inPlane, k: cig, a: wp.baseAddress! + g * cig * cog * kPlane,
                                                       lda: cog * kPlane, transposeA: true, b: xp.baseAddress! + (b * cin + g * cig) * inPlane,
                                                       ldb: inPlane, c: col.baseAddress!, ldc: inPlane)
                                var r = 0
                                for c in 0..<cog {
                                    let dst = fp.baseAddress! + (b * cout + g * cog + c) * fullPlane
                                    for kd in 0..<K[0] { for kh in 0..<K[1] { for kw in 0..<K[2] {
                                        let src = col.baseAddress! + r * inPlane
                                        var j = 0
                                        for id in 0..<I[0] { for ih in 0..<I[1] { for iw in 0..<I[2] {
                                            let fd = id * S[0] + kd * D[0], fh = ih * S[1] + kh * D[1], fw = iw * S[2] + kw * D[2]
                                            dst[(fd * F[1] + fh) * F[2] + fw] += src[j]
                                            j += 1
                                        } } }
                                        r += 1
                                    } } }
                                }
                            }
                        }
                    }
                }
            }
        }
        var before: [Int] = [], outs: [Int] = []
        let outputShape = a.has("output_shape") ? try a.ints("output_shape") : nil
        for i in 0..<nd {
            if let outputShape {
                let o = outputShape[2 + i]
                switch padType {
                case "custom": before.append(try a.ints("pad")[2 * i])
                case "valid": before.append(0)
                case "same", "same_lower":
                    let total = max(0, full[i] - o)
                    before.append(padType == "same_lower" ? total - total / 2 : total / 2)
                default: throw EvaluationError("pad_type '\(padType)'")
                }
                outs.append(o)
            } else {
                switch padType {
                case "valid": before.append(0); outs.append(full[i])
                case "custom":
                    let p = try a.ints("pad")
                    before.append(p[2 * i]); outs.append(full[i] - p[2 * i] - p[2 * i + 1])
                case "same", "same_lower":
                    let o = x.shape[2 + i] * strides[i]
                    let total = full[i] - o
                    before.append(padType == "same_lower" ? total - total / 2 : total / 2); outs.append(o)
                default: throw EvaluationError("pad_type '\(padType)'")
                }
            }
        }
        let fullTensor = EvalTensor(floats: f, shape: [n, cout] + full)
        var maps: [[Int]] = [Array(0..<n), Array(0..<cout)]
        for i in 0..<nd { maps.append((0..<outs[i]).map { let j = $0 + before[i]; return j >= 0 && j < full[i] ? j : -1 }) }
        var out = fullTensor.mapped(maps).floats
        let outPlane = outs.reduce(1, *)
        if let bias = try a.optional("bias") { addBias(&out, bias.floats, outer: n, inner: outPlane) }
        return EvalTensor(floats: out, shape: [n, cout] + outs, dtype: x.dtype)
    }

    enum PoolKind { case max, average, l2 }

    static func pool(_ kind: PoolKind) -> Kernel {
        { a in
            let x = try a.tensor("x")
            let nd = x.rank - 2
            let kernel = try a.ints("kernel_sizes")
            guard (1...3).contains(nd), kernel.count == nd else { throw EvaluationError("kernel_sizes \(kernel) for \(x.shape)") }
            let strides = try a.ints("strides", default: Array(repeating: 1, count: nd))
            let ceilMode = try a.bool("ceil_mode", default: false)
            let exclude = try a.bool("exclude_padding_from_average", default: false)
            let (before, after) = try Window.pads(a, padType: try a.string("pad_type", default: "valid").lowercased(), input: Array(x.shape[2...]),
                                                   effective: kernel, strides: strides)
            var outSpatial: [Int] = []
            for i in 0..<nd {
                let size = x.shape[2 + i] + before[i] + after[i] - kernel[i]
                var o = ceilMode ? (size + strides[i] - 1) / strides[i] + 1 : size / strides[i] + 1
                if ceilMode, before[i] + after[i] > 0, (o - 1) * strides[i] >= x.shape[2 + i] + before[i] { o -= 1 }
                guard o > 0 else { throw EvaluationError("pooling leaves no output along spatial dim \(i)") }
                outSpatial.append(o)
            }
            let I = Window.lift(Array(x.shape[2...]), 1), K = Window.lift(kernel, 1), S = Window.lift(strides, 1)
            let P = Window.lift(before, 0), A = Window.lift(after, 0), O = Window.lift(outSpatial, 1)
            let planes = x.shape[0] * x.shape[1]
            let inPlane = I[0] * I[1] * I[2], outPlane = O[0] * O[1] * O[2]
            let v = x.floats
            var out = [Float](repeating: 0, count: planes * outPlane)
            for p in 0..<planes {
                var j = 0
                for od in 0..<O[0] { for oh in 0..<O[1] { for ow in 0..<O[2] {
                    let s0 = od * S[0] - P[0], s1 = oh * S[1] - P[1], s2 = ow * S[2] - P[2]
                    var acc: Float = kind == .max ? -.infinity : 0
                    // Positions counted by the average (iOS15/pool.py's exclude_padding_from_average).
                    let c0 = exclude ? min(s0 + K[0], I[0]) - max(s0, 0) : min(s0 + K[0], I[0] + A[0]) - s0
                    let c1 = exclude ? min(s1 + K[1], I[1]) - max(s1, 0) : min(s1 + K[1], I[1] + A[1]) - s1
                    let c2 = exclude ? min(s2 + K[2], I[2]) - max(s2, 0) : min(s2 + K[2], I[2] + A[2]) - s2
                    let count = c0 * c1 * c2
                    for kd in 0..<K[0] {
                        let id = s0 + kd
                        guard id >= 0, id < I[0] else { continue }
                        for kh in 0..<K[1] {
                            let ih = s1 + kh
                            guard ih >= 0, ih < I[1] else { continue }
                            for kw in 0..<K[2] {
                                let iw = s2 + kw
                                guard iw >= 0, iw < I[2] else { continue }
                                let e = v[p * inPlane + (id * I[1] + ih) * I[2] + iw]
                                switch kind {
                                case .max: acc = max(acc, e)
                                case .average: acc += e
                                case .l2: acc += e * e
                                }
                            }
                        }
                    }
                    switch kind {
                    case .max: out[p * outPlane + j] = acc
                    case .average: out[p * outPlane + j] = acc / Float(max(count, 1))
                    case .l2: out[p * outPlane + j] = acc.squareRoot()
                    }
                    j += 1
                } } }
            }
            return [EvalTensor(floats: out, shape: Array(x.shape[..<2]) + outSpatial, dtype: x.dtype)]
        }
    }

    /// (x − mean) / sqrt(var + ε) · γ + β over `groups` of `size` elements; γ/β per channel via `channelOf`.
    static func normalize(_ v: inout [Float], groups: Int, size: Int, stride: Int = 1, groupBase: (Int) -> Int, eps: Float) {
        for g in 0..<groups {
            let base = groupBase(g)
            var mean = 0.0
            for i in 0..<size { mean += Double(v[base + i * stride]) }
            mean /= Double(size)
            var variance = 0.0
            for i in 0..<size { let d = Double(v[base + i * stride]) - mean; variance += d * d }
            variance /= Double(size)
            let inv = 1 / (variance + Double(eps)).squareRoot()
            for i in 0..<size { v[base + i * stride] = Float((Double(v[base + i * stride]) - mean) * inv) }
        }
    }

    /// Resize sampling positions for resize_bilinear's sampling_mode (iOS15/image_resizing.py), clamped to the input.
    static func grid(_ mode: String, input: Int, output: Int) throws(EvaluationError) -> [Double] {
        let g: [Double]
        switch mode {
        case "STRICT_ALIGN_CORNERS", "ALIGN_CORNERS":
            if output == 1 { g = [mode == "ALIGN_CORNERS" ? Double(input - 1) / 2 : 0] }
            else { g = (0..<output).map { Double($0) * Double(input - 1) / Double(output - 1) } }
        case "DEFAULT": g = (0..<output).map { Double($0) * Double(input) / Double(output) }
        case "OFFSET_CORNERS":
            let delta = Double(max(1, input - 1)) / Double(output)
            g = (0..<output).map { 0.5 * delta + Double($0) * delta }
        case "UNALIGN_CORNERS": g = (0..<output).map { (Double($0) + 0.5) * Double(input) / Double(output) - 0.5 }
        default: throw EvaluationError("sampling_mode '\(mode)'")
        }
        return g.map { min(max($0, 0), Double(input - 1)) }
    }

    static func bilinear(_ x: EvalTensor, height: Int, width: Int, mode: String) throws(EvaluationError) -> EvalTensor {
        let h = x.shape[x.rank - 2], w = x.shape[x.rank - 1]
        let planes = x.count / max(h * w, 1)
        let gh = try grid(mode, input: h, output: height), gw = try grid(mode, input: w, output: width)
        let v = x.floats
        var out = [Float](repeating: 0, count: planes * height * width)
        for p in 0..<planes {
            for i in 0..<height {
                let y0 = min(Int(gh[i].rounded(.down)), h - 1), y1 = min(y0 + 1, h - 1), fy = gh[i] - Double(y0)
                for j in 0..<width {
                    let x0 = min(Int(gw[j].rounded(.down)), w - 1), x1 = min(x0 + 1, w - 1), fx = gw[j] - Double(x0)
                    let base = p * h * w
                    let top = Double(v[base + y0 * w + x0]) * (1 - fx) + Double(v[base + y0 * w + x1]) * fx
                    let bottom = Double(v[base + y1 * w + x0]) * (1 - fx) + Double(v[base + y1 * w + x1]) * fx
                    out[(p * height + i) * width + j] = Float(top * (1 - fy) + bottom * fy)
                }
            }
        }
        return EvalTensor(floats: out, shape: Array(x.shape.dropLast(2)) + [height, width], dtype: x.dtype)
    }

    static func nearest(_ x: EvalTensor, rows: [Int], cols: [Int]) -> EvalTensor {
        let h = x.shape[x.rank - 2], w = x.shape[x.rank - 1]
        var maps = x.shape.dropLast(2).map { Array(0..<$0) }
        maps.append(rows.map { min(max($0, 0), h - 1) })
        maps.append(cols.map { min(max($0, 0), w - 1) })
        return x.mapped(maps)
    }

    static let neural: [String: Kernel] = {
        var t: [String: Kernel] = [:]
        t["matmul"] = { a in
            [try matmul(try a.tensor("x"), try a.tensor("y"), transposeX: try a.bool("transpose_x", default: false),
                        transposeY: try a.bool("transpose_y", default: false))]
        }
        t["linear"] = { a in
            let x = try a.tensor("x"), w = try a.tensor("weight")
            let k = x.shape.last ?? 1, n = w.shape[0]
            let m = x.count / max(k, 1)
            var out = [Float](repeating: 0, count: m * n)
            if let bias = try a.optional("bias") {
                let b = bias.floats
                for i in 0..<m { for j in 0..<n { out[i * n + j] = b[j] } }
            }
            let accumulate = a.has("bias")
            x.withFloats { xp in w.withFloats { wp in out.withUnsafeMutableBufferPointer { op in
                MatrixProduct.multiply(m: m, n: n, k: k, a: xp.baseAddress!, lda: k, b: wp.baseAddress!, ldb: k, transposeB: true,
                                       c: op.baseAddress!, ldc: n, accumulate: accumulate)
            } } }
            return [EvalTensor(floats: out, shape: Array(x.shape.dropLast()) + [n], dtype: x.dtype)]
        }
        t["conv"] = { a in [try conv(a)] }
        t["conv_transpose"] = { a in [try convTranspose(a)] }
        t["max_pool"] = pool(.max)
        t["avg_pool"] = pool(.average)
        t["l2_pool"] = pool(.l2)
        t["batch_norm"] = { a in
            let x = try a.tensor("x")
            let mean = try a.tensor("mean").floats, variance = try a.tensor("variance").floats
            let gamma = try a.optional("gamma")?.floats, beta = try a.optional("beta")?.floats
            let eps = try a.float("epsilon", default: 1e-5)
            let c = x.shape[1], inner = x.shape[2...].reduce(1, *)
            var v = x.floats
            for i in v.indices {
                let ch = (i / inner) % c
                var y = (v[i] - mean[ch]) / (variance[ch] + eps).squareRoot()
                if let gamma { y *= gamma[ch] }
                if let beta { y += beta[ch] }
                v[i] = y
            }
            return [EvalTensor(floats: v, shape: x.shape, dtype: x.dtype)]
        }
        t["instance_norm"] = { a in
            let x = try a.tensor("x")
            let eps = try a.float("epsilon", default: 1e-5)
            let c = x.shape[1], inner = x.shape[2...].reduce(1, *)
            var v = x.floats
            normalize(&v, groups: x.count / max(inner, 1), size: inner, groupBase: { $0 * inner }, eps: eps)
            let gamma = try a.optional("gamma")?.floats, beta = try a.optional("beta")?.floats
            for i in v.indices {
                let ch = (i / inner) % c
                if let gamma { v[i] *= gamma[ch] }
                if let beta { v[i] += beta[ch] }
            }
            return [EvalTensor(floats: v, shape: x.shape, dtype: x.dtype)]
        }
        t["layer_norm"] = { a in
            let x = try a.tensor("x")
            let axes = a.has("axes") ? Set(try a.ints("axes").map { p in try normalizeAxis(p, rank: x.rank) }) : Set(0..<x.rank)
            let eps = try a.float("epsilon", default: 1e-5)
            // Move the normalised axes last, normalise rows, move back.
            let kept = (0..<x.rank).filter { !axes.contains($0) }, normed = (0..<x.rank).filter { axes.contains($0) }
            let perm = kept + normed
            let size = normed.reduce(1) { $0 * x.shape[$1] }
            var moved = x.transposed(perm).floats
            normalize(&moved, groups: x.count / max(size, 1), size: size, groupBase: { $0 * size }, eps: eps)
            let gamma = try a.optional("gamma")?.floats, beta = try a.optional("beta")?.floats
            if gamma != nil || beta != nil {
                for i in moved.indices {
                    let j = i % size
                    if let gamma { moved[i] *= gamma[j] }
                    if let beta { moved[i] += beta[j] }
                }
            }
            var inverse = [Int](repeating: 0, count: x.rank)
            for (i, p) in perm.enumerated() { inverse[p] = i }
            let back = EvalTensor(floats: moved, shape: perm.map { x.shape[$0] }, dtype: x.dtype).transposed(inverse)
            return [back]
        }
        t["l2_norm"] = { a in
            let x = try a.tensor("x")
            let eps = try a.float("epsilon", default: 1e-6)
            let start = max(x.rank - 3, 0)
            let size = x.shape[start...].reduce(1, *)
            var v = x.floats
            for g in 0..<(x.count / max(size, 1)) {
                var s = 0.0
                for i in 0..<size { s += Double(v[g * size + i]) * Double(v[g * size + i]) }
                let norm = Float((s + Double(eps)).squareRoot())
                for i in 0..<size { v[g * size + i] /= norm }
            }
            return [EvalTensor(floats: v, shape: x.shape, dtype: x.dtype)]
        }
        t["local_response_norm"] = { a in
            let x = try a.tensor("x")
            let size = try a.int("size")
            let alpha = try a.float("alpha", default: 1e-4), beta = try a.float("beta", default: 0.75), k = try a.float("k", default: 1)
            let (outer, c, inner) = around(x.shape, 1)
            let v = x.floats
            var out = v
            for o in 0..<outer { for ch in 0..<c { for i in 0..<inner {
                var s: Float = 0
                for q in max(0, ch - (size - 1) / 2)..<min(c, ch + size / 2 + 1) { let e = v[(o * c + q) * inner + i]; s += e * e }
                let idx = (o * c + ch) * inner + i
                out[idx] = v[idx] / powf(k + alpha / Float(size) * s, beta)
            } } }
            return [EvalTensor(floats: out, shape: x.shape, dtype: x.dtype)]
        }
        t["upsample_nearest_neighbor"] = { a in
            let x = try a.tensor("x")
            let sh = try a.float("scale_factor_height", default: 1), sw = try a.float("scale_factor_width", default: 1)
            let ho = Int((Float(x.shape[x.rank - 2]) * sh).rounded(.down)), wo = Int((Float(x.shape[x.rank - 1]) * sw).rounded(.down))
            return [nearest(x, rows: (0..<ho).map { Int((Float($0) / sh).rounded(.down)) }, cols: (0..<wo).map { Int((Float($0) / sw).rounded(.down)) })]
        }
        t["resize_nearest_neighbor"] = { a in
            let x = try a.tensor("x")
            let ho = try a.int("target_size_height"), wo = try a.int("target_size_width")
            let h = x.shape[x.rank - 2], w = x.shape[x.rank - 1]
            return [nearest(x, rows: (0..<ho).map { $0 * h / ho }, cols: (0..<wo).map { $0 * w / wo })]
        }
        t["resize_bilinear"] = { a in
            [try bilinear(try a.tensor("x"), height: try a.int("target_size_height", default: 1), width: try a.int("target_size_width", default: 1),
                          mode: try a.string("sampling_mode", default: "DEFAULT"))]
        }
        t["resample"] = { a in
            // iOS15/image_resizing.py: x [B, C, H, W] sampled at coordinates [B, H2, W2, 2] in (x, y) order; each
            // neighbour is read from the image padded as padding_mode says (constant, border, reflection without
            // the edge, symmetric with it); nearest rounds half to even (the definition does not say; PyTorch's does).
            let x = try a.tensor("x"), grid = try a.tensor("coordinates")
            guard x.rank == 4, grid.rank == 4, grid.shape[3] == 2, grid.shape[0] == x.shape[0] else {
                throw EvaluationError("resample: x \(x.shape) and coordinates \(grid.shape)")
            }
            let sampling = try a.string("sampling_mode"), padding = try a.string("padding_mode")
            let mode = try a.string("coordinates_mode"), align = try a.bool("align_corners", default: false)
            let padValue = try a.float("padding_value", default: 0)
            let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let (ho, wo) = (grid.shape[1], grid.shape[2])
            let v = x.floats, g = grid.floats
            func position(_ u: Float, _ size: Int) throws(EvaluationError) -> Double {
                let u = Double(u), n = Double(size)
                switch mode {
                case "normalized_minus_one_to_one": return align ? (u + 1) / 2 * (n - 1) : ((u + 1) * n - 1) / 2
                case "normalized_zero_to_one": return align ? u * (n - 1) : u * n - 0.5
                case "unnormalized": return u
                default: throw EvaluationError("resample: coordinates_mode '\(mode)'")
                }
            }
            /// The index inside [0, size) a padded index reads, or nil for the constant padding.
            func padded(_ i: Int, _ size: Int) -> Int? {
                if i >= 0 && i < size { return i }
                switch padding {
                case "border": return min(max(i, 0), size - 1)
                case "reflection":
                    guard size > 1 else { return 0 }
                    let period = 2 * (size - 1), m = ((i % period) + period) % period
                    return m < size ? m : period - m
                case "symmetric":
                    let period = 2 * size, m = ((i % period) + period) % period
                    return m < size ? m : period - 1 - m
                default: return nil
                }
            }
            guard ["constant", "border", "reflection", "symmetric"].contains(padding), ["bilinear", "nearest"].contains(sampling) else {
                throw EvaluationError("resample: sampling_mode '\(sampling)', padding_mode '\(padding)'")
            }
            var out = [Float](repeating: 0, count: b * c * ho * wo)
            for n in 0..<b { for i in 0..<ho { for j in 0..<wo {
                let k = ((n * ho + i) * wo + j) * 2
                let px = try position(g[k], w), py = try position(g[k + 1], h)
                var taps: [(y: Int, x: Int, weight: Double)]
                if sampling == "nearest" {
                    taps = [(Int(py.rounded(.toNearestOrEven)), Int(px.rounded(.toNearestOrEven)), 1)]
                } else {
                    let x0 = Int(px.rounded(.down)), y0 = Int(py.rounded(.down))
                    let fx = px - Double(x0), fy = py - Double(y0)
                    taps = [(y0, x0, (1 - fx) * (1 - fy)), (y0, x0 + 1, fx * (1 - fy)), (y0 + 1, x0, (1 - fx) * fy), (y0 + 1, x0 + 1, fx * fy)]
                }
                for ch in 0..<c {
                    var acc = 0.0
                    for tap in taps {
                        let value: Double
                        if let yy = padded(tap.y, h), let xx = padded(tap.x, w) {
                            value = Double(v[((n * c + ch) * h + yy) * w + xx])
                        } else {
                            value = Double(padValue)
                        }
                        acc += value * tap.weight
                    }
                    out[((n * c + ch) * ho + i) * wo + j] = Float(acc)
                }
            } } }
            return [EvalTensor(floats: out, shape: [b, c, ho, wo], dtype: x.dtype)]
        }
        t["scaled_dot_product_attention"] = { a in
            // softmax(Q·Kᵀ / sqrt(E) + mask)·V; a bool mask keeps the positions where it is true
            // (iOS18/transformers.py).
            let q = try a.tensor("query"), k = try a.tensor("key"), v = try a.tensor("value")
            let e = q.shape.last!
            var scores = try matmul(q, k, transposeX: false, transposeY: true)
            var s = scores.floats
            let scale = 1 / Float(e).squareRoot()
            for i in s.indices { s[i] *= scale }
            if let mask = try a.optional("attn_mask") {
                let offsets = broadcastOffsets(mask.shape, to: scores.shape)
                let m = mask.floats
                for i in s.indices { s[i] = mask.dtype == .bool ? (m[offsets[i]] != 0 ? s[i] : -.infinity) : s[i] + m[offsets[i]] }
            }
            scores = EvalTensor(floats: s, shape: scores.shape, dtype: q.dtype)
            var args = OpArguments(op: a.op)
            args.values["x"] = [scores]
            let weights = try Kernels.layout["softmax"]!(args)[0]
            return [try matmul(weights, v, transposeX: false, transposeY: false)]
        }
        return t
    }()
}
