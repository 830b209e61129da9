import Foundation
import MIL

/// Source element offsets of an output of shape `maps.map(\.count)`: output index (i0, i1, …) reads
/// Σ maps[d][i_d] · strides[d]; a negative map entry marks padding (offset −1).
func dimMapOffsets(_ maps: [[Int]], strides: [Int]) -> [Int] {
    let total = maps.reduce(1) { $0 * $1.count }
    var out = [Int](repeating: 0, count: total)
    guard total > 0 else { return out }
    if maps.isEmpty { return [0] }
    let contributions = zip(maps, strides).map { m, s in m.map { $0 < 0 ? Int.min / 4 : $0 * s } }
    var k = 0
    func walk(_ d: Int, _ base: Int) {
        let c = contributions[d]
        if d == maps.count - 1 {
            for v in c {
                let o = base + v
                out[k] = o < 0 ? -1 : o
                k += 1
            }
            return
        }
        for v in c { walk(d + 1, base + v) }
    }
    walk(0, 0)
    return out
}

extension EvalTensor {
    /// The output of `maps` (see `dimMapOffsets`) over this tensor; padding positions get `fill`.
    func mapped(_ maps: [[Int]], fill: Float = 0) -> EvalTensor {
        let offsets = dimMapOffsets(maps, strides: stridesOf(shape))
        let shape = maps.map(\.count)
        if case .ints(let v) = storage {
            return EvalTensor(ints: offsets.map { $0 < 0 ? Int32(fill) : v[$0] }, shape: shape, dtype: dtype)
        }
        return withFloats { p in EvalTensor(floats: offsets.map { $0 < 0 ? fill : p[$0] }, shape: shape, dtype: dtype) }
    }

    /// The tensor with its dims permuted.
    func transposed(_ perm: [Int]) -> EvalTensor {
        if perm == Array(0..<rank) { return self }
        let s = stridesOf(shape)
        let offsets = dimMapOffsets(perm.map { Array(0..<shape[$0]) }, strides: perm.map { s[$0] })
        return gathered(offsets, shape: perm.map { shape[$0] })
    }
}

/// Python's slice(begin, end, step).indices(n) as the list of positions.
func slicePositions(_ n: Int, begin: Int?, end: Int?, step: Int) -> [Int] {
    var positions: [Int] = []
    if step > 0 {
        var b = begin.map { $0 < 0 ? max($0 + n, 0) : min($0, n) } ?? 0
        let e = end.map { $0 < 0 ? max($0 + n, 0) : min($0, n) } ?? n
        while b < e { positions.append(b); b += step }
    } else {
        var b = begin.map { $0 < 0 ? max($0 + n, -1) : min($0, n - 1) } ?? n - 1
        let e = end.map { $0 < 0 ? max($0 + n, -1) : min($0, n - 1) } ?? -1
        while b > e { positions.append(b); b += step }
    }
    return positions
}

/// Splits `shape` around `axis` into (outer, size, inner).
func around(_ shape: [Int], _ axis: Int) -> (Int, Int, Int) {
    (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
}

extension Kernels {
    static func concat(_ values: [EvalTensor], axis: Int) throws(EvaluationError) -> EvalTensor {
        let first = values[0]
        var shape = first.shape
        shape[axis] = values.reduce(0) { $0 + $1.shape[axis] }
        let (outer, _, inner) = around(shape, axis)
        if first.isFloat || !values.allSatisfy({ !$0.isFloat }) {
            var out = [Float](); out.reserveCapacity(shape.reduce(1, *))
            let parts = values.map(\.floats)
            for o in 0..<outer {
                for (v, p) in zip(values, parts) {
                    let chunk = v.shape[axis] * inner
                    out.append(contentsOf: p[(o * chunk)..<((o + 1) * chunk)])
                }
            }
            return EvalTensor(floats: out, shape: shape, dtype: first.dtype)
        }
        var out = [Int32](); out.reserveCapacity(shape.reduce(1, *))
        let parts = values.map(\.ints)
        for o in 0..<outer {
            for (v, p) in zip(values, parts) {
                let chunk = v.shape[axis] * inner
                out.append(contentsOf: p[(o * chunk)..<((o + 1) * chunk)])
            }
        }
        return EvalTensor(ints: out, shape: shape, dtype: first.dtype)
    }

    /// Gather along `axis` with `batchDims` leading batch dims: out[b, p, i, q] = x[b, p, ind[b, i], q].
    static func gather(_ x: EvalTensor, _ indices: EvalTensor, axis: Int, batchDims: Int) throws(EvaluationError) -> EvalTensor {
        let ind = indices.intValues
        let b = x.shape[..<batchDims].reduce(1, *)
        let pre = x.shape[batchDims..<axis].reduce(1, *), size = x.shape[axis], post = x.shape[(axis + 1)...].reduce(1, *)
        let perBatch = b > 0 ? ind.count / b : 0
        let shape = Array(x.shape[..<axis]) + Array(indices.shape[batchDims...]) + Array(x.shape[(axis + 1)...])
        var offsets: [Int] = []
        offsets.reserveCapacity(b * pre * perBatch)
        for bi in 0..<b {
            for p in 0..<pre {
                for i in 0..<perBatch {
                    var k = ind[bi * perBatch + i]
                    if k < 0 { k += size }
                    guard k >= 0, k < size else { throw EvaluationError("index \(ind[bi * perBatch + i]) is out of range for dim \(size)") }
                    offsets.append(((bi * pre + p) * size + k) * post)
                }
            }
        }
        let n = offsets.count * post
        if x.isFloat {
            return x.withFloats { src in
                var out = [Float](repeating: 0, count: n)
                out.withUnsafeMutableBufferPointer { o in
                    for (j, start) in offsets.enumerated() {
                        (o.baseAddress! + j * post).update(from: src.baseAddress! + start, count: post)
                    }
                }
                return EvalTensor(floats: out, shape: shape, dtype: x.dtype)
            }
        }
        let src = x.ints
        var out = [Int32](); out.reserveCapacity(n)
        for start in offsets { out.append(contentsOf: src[start..<(start + post)]) }
        return EvalTensor(ints: out, shape: shape, dtype: x.dtype)
    }

    /// Writes `updates` into a copy of `data` at `targets` (element offsets, one per update element) with `mode`.
    static func scatter(_ data: EvalTensor, targets: [Int], updates: EvalTensor, mode: String) throws(EvaluationError) -> EvalTensor {
        let combine: (Float, Float) -> Float
        switch mode {
        case "update": combine = { $1 }
        case "add": combine = { $0 + $1 }
        case "sub": combine = { $0 - $1 }
        case "mul": combine = { $0 * $1 }
        case "div": combine = { $0 / $1 }
        case "max": combine = { max($0, $1) }
        case "min": combine = { min($0, $1) }
        default: throw EvaluationError("scatter mode '\(mode)'")
        }
        var out = data.floats
        let u = updates.floats
        for (i, t) in targets.enumerated() { out[t] = combine(out[t], u[i]) }
        if data.isFloat { return EvalTensor(floats: out, shape: data.shape, dtype: data.dtype) }
        return EvalTensor(floats: out, shape: data.shape).retyped(data.dtype)
    }

    static let reductionNames = ["reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_l1_norm",
                                 "reduce_l2_norm", "reduce_log_sum", "reduce_log_sum_exp", "reduce_sum_square"]

    static func reduce(_ name: String) -> Kernel {
        { a in
            let x = try a.tensor("x")
            let keep = try a.bool("keep_dims", default: false)
            var axes = a.has("axes") ? try a.ints("axes").map { v in try normalizeAxis(v, rank: x.rank) } : Array(0..<x.rank)
            axes = Array(Set(axes)).sorted()
            var kept = x.shape
            for d in axes { kept[d] = 1 }
            let outCount = kept.reduce(1, *)
            // Each input element's output slot: broadcasting's offsets read backwards.
            var strides = stridesOf(kept)
            for d in axes { strides[d] = 0 }
            let slots = dimMapOffsets(x.shape.map { Array(0..<$0) }, strides: strides)
            let values = x.floats
            let n = x.count / max(outCount, 1)
            var acc = [Double](repeating: 0, count: outCount)
            switch name {
            case "reduce_max", "reduce_min", "reduce_log_sum_exp":
                let isMin = name == "reduce_min"
                acc = Array(repeating: isMin ? .infinity : -.infinity, count: outCount)
                for (i, s) in slots.enumerated() {
                    let v = Double(values[i])
                    if v.isNaN { acc[s] = .nan } else if isMin ? v < acc[s] : v > acc[s] { acc[s] = v }
                }
                if name == "reduce_log_sum_exp" {
                    var sums = [Double](repeating: 0, count: outCount)
                    for (i, s) in slots.enumerated() { sums[s] += Foundation.exp(Double(values[i]) - acc[s]) }
                    for s in 0..<outCount { acc[s] = Foundation.log(sums[s]) + acc[s] }
                }
            case "reduce_prod":
                acc = Array(repeating: 1, count: outCount)
                for (i, s) in slots.enumerated() { acc[s] *= Double(values[i]) }
            default:
                for (i, s) in slots.enumerated() {
                    let v = Double(values[i])
                    switch name {
                    case "reduce_l1_norm": acc[s] += abs(v)
                    case "reduce_l2_norm", "reduce_sum_square": acc[s] += v * v
                    default: acc[s] += v
                    }
                }
                for s in 0..<outCount {
                    switch name {
                    case "reduce_mean": acc[s] /= Double(n)
                    case "reduce_l2_norm": acc[s] = acc[s].squareRoot()
                    case "reduce_log_sum": acc[s] = Foundation.log(acc[s])
                    default: break
                    }
                }
            }
            let shape = keep ? kept : x.shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
            let out = EvalTensor(floats: acc.map { Float($0) }, shape: shape, dtype: x.isFloat ? x.dtype : .fp32)
            return [x.isFloat ? out : out.retyped(x.dtype)]
        }
    }

    static func argReduce(min isMin: Bool) -> Kernel {
        { a in
            let x = try a.tensor("x")
            let axis = try a.axis("axis", rank: x.rank, default: -1)
            let keep = try a.bool("keep_dims", default: false)
            let (outer, size, inner) = around(x.shape, axis)
            let v = x.floats
            var out = [Int32](repeating: 0, count: outer * inner)
            for o in 0..<outer {
                for i in 0..<inner {
                    var best = 0
                    var bv = v[o * size * inner + i]
                    for k in 1..<max(size, 1) {
                        let c = v[(o * size + k) * inner + i]
                        if isMin ? c < bv : c > bv { best = k; bv = c }
                    }
                    out[o * inner + i] = Int32(best)
                }
            }
            var shape = x.shape
            if keep { shape[axis] = 1 } else { shape.remove(at: axis) }
            return [EvalTensor(ints: out, shape: shape)]
        }
    }

    static let layout: [String: Kernel] = {
        var t: [String: Kernel] = [:]
        t["reshape"] = { a in
            let x = try a.tensor("x")
            var shape = try a.ints("shape")
            for i in shape.indices where shape[i] == 0 {
                // iOS17 aligns 0s from the right (iOS17/tensor_transformation.py); with equal ranks both agree.
                let fromRight = shape.count - 1 - i
                shape[i] = fromRight < x.rank ? x.shape[x.rank - 1 - fromRight] : 1
            }
            if let k = shape.firstIndex(of: -1) {
                let known = shape.enumerated().filter { $0.offset != k }.reduce(1) { $0 * $1.element }
                guard known > 0 else { throw EvaluationError("reshape to \(shape)") }
                shape[k] = x.count / known
            }
            guard shape.reduce(1, *) == x.count else { throw EvaluationError("reshape of \(x.shape) to \(shape)") }
            return [x.reshaped(shape)]
        }
        t["transpose"] = { a in
            let x = try a.tensor("x")
            let perm = try a.ints("perm").map { p in try normalizeAxis(p, rank: x.rank) }
            return [x.transposed(perm)]
        }
        t["concat"] = { a in
            let values = try a.list("values")
            guard let first = values.first else { throw EvaluationError("concat of no values") }
            if first.rank == 0 { return [try concat(values.map { $0.reshaped([1]) }, axis: 0)] }
            let axis = try a.axis("axis", rank: first.rank)
            if try a.bool("interleave", default: false) {
                let stacked = try concat(values.map { v in
                    var s = v.shape; s.insert(1, at: axis + 1); return v.reshaped(s)
                }, axis: axis + 1)
                var shape = first.shape
                shape[axis] *= values.count
                return [stacked.reshaped(shape)]
            }
            return [try concat(values, axis: axis)]
        }
        t["stack"] = { a in
            let values = try a.list("values")
            guard let first = values.first else { throw EvaluationError("stack of no values") }
            let axis = try a.axis("axis", rank: first.rank + 1)
            return [try concat(values.map { v in var s = v.shape; s.insert(1, at: axis); return v.reshaped(s) }, axis: axis)]
        }
        t["split"] = { a in
            let x = try a.tensor("x")
            let axis = try a.axis("axis", rank: x.rank)
            var sizes: [Int]
            if a.has("split_sizes") { sizes = try a.ints("split_sizes") } else {
                let n = try a.int("num_splits")
                guard n > 0 else { throw EvaluationError("num_splits \(n)") }
                sizes = Array(repeating: x.shape[axis] / n, count: n)
            }
            var start = 0
            var outs: [EvalTensor] = []
            for s in sizes {
                var maps = x.shape.map { Array(0..<$0) }
                maps[axis] = Array(start..<(start + s))
                outs.append(x.mapped(maps))
                start += s
            }
            return outs
        }
        t["shape"] = { a in
            // iOS15/tensor_operation.py: the input's shape as a rank-1 int32 tensor.
            let x = try a.tensor("x")
            return [EvalTensor(ints: x.shape.map { Int32(clamping: $0) }, shape: [x.rank])]
        }
        t["fill"] = { a in
            // iOS15/tensor_operation.py: a tensor of `shape` holding `value` (a scalar of the output's type).
            let dims = try a.ints("shape")
            guard dims.allSatisfy({ $0 >= 0 }) else { throw EvaluationError("fill: shape \(dims)") }
            let value = try a.tensor("value")
            let count = dims.reduce(1, *)
            if value.isFloat { return [EvalTensor(floats: Array(repeating: value.floats.first ?? 0, count: count), shape: dims, dtype: value.dtype)] }
            return [EvalTensor(ints: Array(repeating: value.ints.first ?? 0, count: count), shape: dims, dtype: value.dtype)]
        }
        t["range_1d"] = { a in
            // iOS15/tensor_operation.py: start, start + step, … below end (above it for a negative step).
            let start = try a.tensor("start"), end = try a.tensor("end"), step = try a.tensor("step")
            if start.isFloat {
                let s = Double(start.floats.first ?? 0), e = Double(end.floats.first ?? 0), d = Double(step.floats.first ?? 0)
                guard d != 0 else { throw EvaluationError("range_1d: step 0") }
                let count = max(0, Int(((e - s) / d).rounded(.up)))
                return [EvalTensor(floats: (0..<count).map { Float(s + Double($0) * d) }, shape: [count], dtype: start.dtype)]
            }
            let s = Int(start.ints.first ?? 0), e = Int(end.ints.first ?? 0), d = Int(step.ints.first ?? 0)
            guard d != 0 else { throw EvaluationError("range_1d: step 0") }
            let count = max(0, d > 0 ? (e - s + d - 1) / d : (s - e - d - 1) / -d)
            return [EvalTensor(ints: (0..<count).map { Int32(clamping: s + $0 * d) }, shape: [count], dtype: start.dtype)]
        }
        t["squeeze"] = { a in
            let x = try a.tensor("x")
            let axes = a.has("axes") ? Set(try a.ints("axes").map { p in try normalizeAxis(p, rank: x.rank) })
                : Set(x.shape.indices.filter { x.shape[$0] == 1 })
            return [x.reshaped(x.shape.enumerated().filter { !(axes.contains($0.offset) && $0.element == 1) }.map(\.element))]
        }
        t["expand_dims"] = { a in
            let x = try a.tensor("x")
            let axes = try a.ints("axes")
            let rank = x.rank + axes.count
            var shape = x.shape
            for v in axes.map({ $0 < 0 ? $0 + rank : $0 }).sorted() { shape.insert(1, at: min(max(v, 0), shape.count)) }
            return [x.reshaped(shape)]
        }
        t["slice_by_index"] = { a in
            let x = try a.tensor("x")
            let r = x.rank
            let begin = try a.ints("begin"), end = try a.ints("end")
            let step = try a.ints("stride", default: Array(repeating: 1, count: r))
            let bm = try a.bools("begin_mask", count: r), em = try a.bools("end_mask", count: r), sm = try a.bools("squeeze_mask", count: r)
            var maps: [[Int]] = []
            var shape: [Int] = []
            for d in 0..<r {
                if sm[d] {
                    var j = bm[d] ? 0 : begin[d]
                    if j < 0 { j += x.shape[d] }
                    guard j >= 0, j < x.shape[d] else { throw EvaluationError("squeezed index \(begin[d]) out of range") }
                    maps.append([j])
                } else {
                    guard step[d] != 0 else { throw EvaluationError("stride 0") }
                    let p = slicePositions(x.shape[d], begin: bm[d] ? nil : begin[d], end: em[d] ? nil : end[d], step: step[d])
                    maps.append(p)
                    shape.append(p.count)
                }
            }
            return [x.mapped(maps).reshaped(shape)]
        }
        t["slice_by_size"] = { a in
            let x = try a.tensor("x")
            let begin = try a.ints("begin"), size = try a.ints("size")
            var maps: [[Int]] = []
            for d in 0..<x.rank {
                let b = begin[d] < 0 ? begin[d] + x.shape[d] : begin[d]
                let e = size[d] == -1 ? x.shape[d] : b + size[d]
                guard b >= 0, e <= x.shape[d], e >= b else { throw EvaluationError("slice [\(b), \(e)) outside dim \(x.shape[d])") }
                maps.append(Array(b..<e))
            }
            return [x.mapped(maps)]
        }
        t["gather"] = { a in
            let x = try a.tensor("x")
            return [try gather(x, try a.tensor("indices"), axis: try a.axis("axis", rank: x.rank, default: 0),
                               batchDims: try a.int("batch_dims", default: 0))]
        }
        t["gather_along_axis"] = { a in
            let x = try a.tensor("x"), indices = try a.tensor("indices")
            let axis = try a.axis("axis", rank: x.rank, default: 0)
            let ind = indices.intValues
            let xs = stridesOf(x.shape)
            var st = xs
            st[axis] = 0
            let base = dimMapOffsets(indices.shape.map { Array(0..<$0) }, strides: st)
            var offsets = [Int](repeating: 0, count: ind.count)
            for i in 0..<ind.count {
                var k = ind[i]
                if k < 0 { k += x.shape[axis] }
                guard k >= 0, k < x.shape[axis] else { throw EvaluationError("index \(ind[i]) out of range for dim \(x.shape[axis])") }
                offsets[i] = base[i] + k * xs[axis]
            }
            return [x.gathered(offsets, shape: indices.shape)]
        }
        t["gather_nd"] = { a in
            let x = try a.tensor("x"), indices = try a.tensor("indices")
            let ind = indices.intValues
            let k = indices.shape.last ?? 0
            let rows = k > 0 ? ind.count / k : 0
            let xs = stridesOf(x.shape)
            let post = x.shape[k...].reduce(1, *)
            var offsets: [Int] = []
            offsets.reserveCapacity(rows * post)
            for r in 0..<rows {
                var base = 0
                for d in 0..<k {
                    var v = ind[r * k + d]
                    if v < 0 { v += x.shape[d] }
                    guard v >= 0, v < x.shape[d] else { throw EvaluationError("index \(ind[r * k + d]) out of range for dim \(x.shape[d])") }
                    base += v * xs[d]
                }
                for j in 0..<post { offsets.append(base + j) }
            }
            return [x.gathered(offsets, shape: Array(indices.shape.dropLast()) + Array(x.shape[k...]))]
        }
        t["scatter_along_axis"] = { a in
            let data = try a.tensor("data"), indices = try a.tensor("indices"), updates = try a.tensor("updates")
            let axis = try a.axis("axis", rank: data.rank, default: 0)
            let ds = stridesOf(data.shape)
            var st = ds
            st[axis] = 0
            let base = dimMapOffsets(indices.shape.map { Array(0..<$0) }, strides: st)
            let ind = indices.intValues
            var targets = [Int](repeating: 0, count: ind.count)
            for i in 0..<ind.count {
                var k = ind[i]
                if k < 0 { k += data.shape[axis] }
                guard k >= 0, k < data.shape[axis] else { throw EvaluationError("index \(ind[i]) out of range for dim \(data.shape[axis])") }
                targets[i] = base[i] + k * ds[axis]
            }
            return [try scatter(data, targets: targets, updates: updates, mode: try a.string("mode", default: "add"))]
        }
        t["scatter_nd"] = { a in
            let data = try a.tensor("data"), indices = try a.tensor("indices"), updates = try a.tensor("updates")
            let ind = indices.intValues
            let k = indices.shape.last ?? 0
            let rows = k > 0 ? ind.count / k : 0
            let ds = stridesOf(data.shape)
            let post = data.shape[k...].reduce(1, *)
            var targets: [Int] = []
            for r in 0..<rows {
                var base = 0
                for d in 0..<k {
                    var v = ind[r * k + d]
                    if v < 0 { v += data.shape[d] }
                    guard v >= 0, v < data.shape[d] else { throw EvaluationError("index \(ind[r * k + d]) out of range for dim \(data.shape[d])") }
                    base += v * ds[d]
                }
                for j in 0..<post { targets.append(base + j) }
            }
            return [try scatter(data, targets: targets, updates: updates, mode: try a.string("mode", default: "add"))]
        }
        t["pad"] = { a in
            let x = try a.tensor("x")
            let p = try a.ints("pad")
            let n = p.count / 2
            guard p.count % 2 == 0, n <= x.rank else { throw EvaluationError("pad of \(p.count) values for rank \(x.rank)") }
            let mode = try a.string("mode", default: "constant")
            let fill = try a.float("constant_val", default: 0)
            var maps: [[Int]] = []
            for d in 0..<x.rank {
                let size = x.shape[d]
                let (before, after) = d >= x.rank - n ? (p[2 * (d - x.rank + n)], p[2 * (d - x.rank + n) + 1]) : (0, 0)
                maps.append((-before..<(size + after)).map { i in
                    if i >= 0 && i < size { return i }
                    switch mode {
                    case "reflect":
                        var j = i
                        while j < 0 || j >= size { j = j < 0 ? -j : 2 * (size - 1) - j; if size == 1 { j = 0 } }
                        return j
                    case "replicate": return min(max(i, 0), size - 1)
                    default: return -1
                    }
                })
            }
            guard ["constant", "reflect", "replicate"].contains(mode) else { throw EvaluationError("pad mode '\(mode)'") }
            return [x.mapped(maps, fill: fill)]
        }
        t["tile"] = { a in
            let x = try a.tensor("x")
            let reps = try a.ints("reps")
            guard reps.count == x.rank, reps.allSatisfy({ $0 >= 0 }) else { throw EvaluationError("reps \(reps) for rank \(x.rank)") }
            if x.shape.contains(0) { return [x.reshaped(zip(x.shape, reps).map { $0 * $1 })] }
            return [x.mapped(x.shape.enumerated().map { d, size in (0..<(size * reps[d])).map { $0 % size } })]
        }
        t["reverse"] = { a in
            let x = try a.tensor("x")
            let axes = a.has("axes") ? Set(try a.ints("axes").map { p in try normalizeAxis(p, rank: x.rank) }) : Set(0..<x.rank)
            return [x.mapped(x.shape.enumerated().map { d, size in axes.contains(d) ? Array((0..<size).reversed()) : Array(0..<size) })]
        }
        t["band_part"] = { a in
            let x = try a.tensor("x")
            let lower = try a.int("lower", default: -1), upper = try a.int("upper", default: -1)
            let m = x.shape[x.rank - 2], n = x.shape[x.rank - 1]
            let v = x.floats
            var out = v
            for i in 0..<out.count {
                let col = i % n, row = (i / n) % m
                let keep = (lower < 0 || row - col <= lower) && (upper < 0 || col - row <= upper)
                if !keep { out[i] = 0 }
            }
            let r = EvalTensor(floats: out, shape: x.shape, dtype: x.isFloat ? x.dtype : .fp32)
            return [x.isFloat ? r : r.retyped(x.dtype)]
        }
        t["depth_to_space"] = { a in
            let x = try a.tensor("x"), b = try a.int("block_size")
            let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let y = x.reshaped([n, b, b, c / (b * b), h, w]).transposed([0, 3, 4, 1, 5, 2])
            return [y.reshaped([n, c / (b * b), h * b, w * b])]
        }
        t["space_to_depth"] = { a in
            let x = try a.tensor("x"), b = try a.int("block_size")
            let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let y = x.reshaped([n, c, h / b, b, w / b, b]).transposed([0, 3, 5, 1, 2, 4])
            return [y.reshaped([n, c * b * b, h / b, w / b])]
        }
        t["pixel_shuffle"] = { a in
            let x = try a.tensor("x"), r = try a.int("upscale_factor")
            let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let y = x.reshaped([n, c / (r * r), r, r, h, w]).transposed([0, 1, 4, 2, 5, 3])
            return [y.reshaped([n, c / (r * r), h * r, w * r])]
        }
        t["softmax"] = { a in
            let x = try a.tensor("x")
            let axis = try a.axis("axis", rank: x.rank, default: -1)
            let (outer, size, inner) = around(x.shape, axis)
            var v = x.floats
            v.withUnsafeMutableBufferPointer { p in
                for o in 0..<outer {
                    for i in 0..<inner {
                        let base = o * size * inner + i
                        var m = -Float.infinity
                        for k in 0..<size { m = max(m, p[base + k * inner]) }
                        var sum: Float = 0
                        for k in 0..<size { let e = expf(p[base + k * inner] - m); p[base + k * inner] = e; sum += e }
                        for k in 0..<size { p[base + k * inner] /= sum }
                    }
                }
            }
            return [EvalTensor(floats: v, shape: x.shape, dtype: x.dtype)]
        }
        t["cumsum"] = { a in
            let x = try a.tensor("x")
            let axis = try a.axis("axis", rank: x.rank, default: 0)
            let exclusive = try a.bool("exclusive", default: false), reverse = try a.bool("reverse", default: false)
            let (outer, size, inner) = around(x.shape, axis)
            let v = x.floats
            var out = [Float](repeating: 0, count: v.count)
            for o in 0..<outer {
                for i in 0..<inner {
                    var acc: Float = 0
                    for s in 0..<size {
                        let k = reverse ? size - 1 - s : s
                        let idx = (o * size + k) * inner + i
                        if exclusive { out[idx] = acc; acc += v[idx] } else { acc += v[idx]; out[idx] = acc }
                    }
                }
            }
            let r = EvalTensor(floats: out, shape: x.shape, dtype: x.isFloat ? x.dtype : .fp32)
            return [x.isFloat ? r : r.retyped(x.dtype)]
        }
        t["topk"] = { a in
            let x = try a.tensor("x")
            let axis = try a.axis("axis", rank: x.rank, default: -1)
            let k = try a.int("k", default: 1)
            let ascending = try a.bool("ascending", default: false)
            let (outer, size, inner) = around(x.shape, axis)
            let v = x.floats
            var values = [Float](), indices = [Int32]()
            var shape = x.shape
            shape[axis] = k
            var vOut = [Float](repeating: 0, count: outer * k * inner), iOut = [Int32](repeating: 0, count: outer * k * inner)
            for o in 0..<outer {
                for i in 0..<inner {
                    let order = (0..<size).sorted { p, q in
                        let a = v[(o * size + p) * inner + i], b = v[(o * size + q) * inner + i]
                        if a == b { return p < q }
                        return ascending ? a < b : a > b
                    }
                    for j in 0..<k {
                        vOut[(o * k + j) * inner + i] = v[(o * size + order[j]) * inner + i]
                        iOut[(o * k + j) * inner + i] = Int32(order[j])
                    }
                }
            }
            values = vOut
            indices = iOut
            let vt = EvalTensor(floats: values, shape: shape, dtype: x.isFloat ? x.dtype : .fp32)
            let valuesTensor = x.isFloat ? vt : vt.retyped(x.dtype)
            guard try a.bool("return_indices", default: true) else { return [valuesTensor] }
            return [valuesTensor, EvalTensor(ints: indices, shape: shape)]
        }
        for name in reductionNames { t[name] = reduce(name) }
        t["reduce_argmax"] = argReduce(min: false)
        t["reduce_argmin"] = argReduce(min: true)
        return t
    }()
}
