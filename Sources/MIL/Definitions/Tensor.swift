/// Tensor ops: iOS15/tensor_transformation.py, tensor_operation.py, scatter_gather.py, reduction.py, linear.py
/// (iOS16/iOS17 versions where mlpkg's targets reach them; their type rules are the same for what mlpkg emits).
enum MILTensorDefinitions {
    static let transformation = "iOS15/tensor_transformation.py"
    static let operation = "iOS15/tensor_operation.py"
    static let gatherFile = "iOS15/scatter_gather.py"
    static let reductionFile = "iOS15/reduction.py"

    /// Python slice semantics: the number of elements of x[b:e:s] along a dim of size n.
    static func sliceLength(_ n: Int, begin: Int?, end: Int?, stride s: Int) -> Int {
        func clamp(_ v: Int?, _ low: Int, _ high: Int, _ fallback: Int) -> Int {
            guard let v else { return fallback }
            let w = v < 0 ? v + n : v
            return min(max(w, low), high)
        }
        if s > 0 {
            let b = clamp(begin, 0, n, 0), e = clamp(end, 0, n, n)
            return e > b ? (e - b + s - 1) / s : 0
        }
        let b = clamp(begin, -1, n - 1, n - 1), e = clamp(end, -1, n - 1, -1)
        return b > e ? (b - e + (-s) - 1) / (-s) : 0
    }

    static let reductions = ["reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_l1_norm",
                             "reduce_l2_norm", "reduce_log_sum", "reduce_log_sum_exp", "reduce_sum_square"]

    static let all: [MILOpDefinition] = {
        var list: [MILOpDefinition] = []
        list.append(MILOpDefinition("reshape", file: transformation, domains: ["x": Shapes.any]) { c throws(MILTypeError) in
            let x = try c.type("x")
            let u = MILTensorType.unknownDim
            guard let given = c.constant("shape") else {
                // A shape computed at run time (shape → gather → concat): its length is the rank, its values are
                // not known (coremltools gives every dim a new symbol when the shape has no value).
                let t = try c.type("shape")
                guard t.dtype == .int32, t.rank == 1, t.shape[0] != u else { throw MILTypeError("shape must be a rank-1 int32 of known length, got \(t)") }
                return [x.with(shape: Array(repeating: u, count: t.shape[0]))]
            }
            guard given.type.dtype == .int32, var shape = given.intValues else { throw MILTypeError("parameter 'shape' must be int32, got \(given.type)") }
            guard shape.filter({ $0 == -1 }).count <= 1 else { throw MILTypeError("shape \(shape) has more than one -1") }
            for i in shape.indices where shape[i] == 0 {
                guard shape.count == x.rank else { throw MILTypeError("shape \(shape): 0 copies a dim only when the rank stays \(x.rank)") }
                shape[i] = x.shape[i]
            }
            if !x.isStatic {
                // Unknown dims: -1 and the dims copied from unknown ones stay unknown.
                guard shape.enumerated().allSatisfy({ $0.element > 0 || $0.element == u }) else { throw MILTypeError("shape \(shape) for \(x)") }
                return [x.with(shape: shape)]
            }
            if let k = shape.firstIndex(of: -1) {
                let known = Shapes.product(shape.enumerated().filter { $0.offset != k }.map(\.element)) ?? 0
                guard known > 0, x.count % known == 0 else { throw MILTypeError("shape \(shape) does not fit \(x.shape)") }
                shape[k] = x.count / known
            }
            guard shape.allSatisfy({ $0 > 0 }), Shapes.product(shape) == x.count else {
                throw MILTypeError("reshape of \(x.shape) to \(shape) changes the element count")
            }
            return [x.with(shape: shape)]
        })
        list.append(MILOpDefinition("fill", file: operation, domains: ["shape": [.int32], "value": Shapes.any]) { c throws(MILTypeError) in
            // iOS15/tensor_operation.py `fill`: the shape's length is the rank; its values, when constant, the dims.
            let shape = try c.type("shape"), value = try c.type("value")
            guard shape.rank == 1, shape.shape[0] != MILTensorType.unknownDim, value.rank == 0 else {
                throw MILTypeError("fill takes a rank-1 shape of known length and a scalar value, got \(shape) and \(value)")
            }
            if let dims = c.constant("shape")?.intValues {
                guard dims.allSatisfy({ $0 > 0 }) else { throw MILTypeError("fill shape \(dims) has a dim below 1") }
                return [MILTensorType(value.dtype, dims)]
            }
            return [MILTensorType(value.dtype, Array(repeating: MILTensorType.unknownDim, count: shape.shape[0]))]
        })
        list.append(MILOpDefinition("shape", file: operation, domains: ["x": Shapes.any]) { c throws(MILTypeError) in
            // iOS15/tensor_operation.py `shape`: an int32 vector of x's rank.
            let x = try c.type("x")
            return [MILTensorType(.int32, [x.rank])]
        })
        list.append(MILOpDefinition("transpose", file: transformation, domains: ["x": Shapes.any]) { c throws(MILTypeError) in
            let x = try c.type("x")
            let perm = try c.ints("perm").map { p throws(MILTypeError) in try Shapes.axis(p, rank: x.rank) }
            guard perm.count == x.rank, Set(perm).count == perm.count else { throw MILTypeError("perm \(perm) for rank \(x.rank)") }
            return [x.with(shape: perm.map { x.shape[$0] })]
        })
        list.append(MILOpDefinition("concat", file: operation, domains: ["values": Shapes.any]) { c throws(MILTypeError) in
            let values = try c.types("values")
            guard let first = values.first else { throw MILTypeError("concat of no values") }
            let axis = try Shapes.axis(try c.int("axis"), rank: first.rank)
            let interleave = try c.bool("interleave", default: false)
            var shape = first.shape
            for v in values.dropFirst() {
                guard v.dtype == first.dtype, v.rank == first.rank else { throw MILTypeError("values are \(first) and \(v)") }
                for d in 0..<v.rank where d != axis && !Shapes.mayEqual(v.shape[d], first.shape[d]) {
                    throw MILTypeError("values \(first.shape) and \(v.shape) differ outside axis \(axis)")
                }
                if interleave, v.shape[axis] != first.shape[axis] { throw MILTypeError("interleave needs equal sizes") }
                for d in 0..<v.rank where d != axis && shape[d] == MILTensorType.unknownDim { shape[d] = v.shape[d] }
                let u = MILTensorType.unknownDim
                shape[axis] = shape[axis] == u || v.shape[axis] == u ? u : shape[axis] + v.shape[axis]
            }
            return [first.with(shape: shape)]
        })
        list.append(MILOpDefinition("split", file: transformation, domains: ["x": Shapes.any]) { c throws(MILTypeError) in
            let x = try c.type("x")
            let axis = try Shapes.axis(try c.int("axis"), rank: x.rank)
            let sizes: [Int]
            if c.has("split_sizes") {
                sizes = try c.ints("split_sizes")
                guard sizes.allSatisfy({ $0 > 0 }), sizes.reduce(0, +) == x.shape[axis] else {
                    throw MILTypeError("split_sizes \(sizes) do not sum to dim \(axis) (\(x.shape[axis]))")
                }
            } else {
                let n = try c.int("num_splits")
                guard n > 0, x.shape[axis] % n == 0 else { throw MILTypeError("num_splits \(n) does not divide \(x.shape[axis])") }
                sizes = Array(repeating: x.shape[axis] / n, count: n)
            }
            return sizes.map { s in
                var shape = x.shape
                shape[axis] = s
                return x.with(shape: shape)
            }
        })
        list.append(MILOpDefinition("slice_by_index", file: transformation, domains: ["x": Shapes.any, "begin": [.int32], "end": [.int32]]) { c throws(MILTypeError) in
            // begin and end may be computed at run time (iOS15/tensor_transformation.py; coremltools'
            // solve_slice_by_index_shape gives such dims a new symbol): those dims, and slices of unknown dims that
            // are not a whole-dim copy, are unknown.
            let x = try c.type("x")
            let n = x.rank, u = MILTensorType.unknownDim
            for name in ["begin", "end"] {
                let t = try c.type(name)
                guard t.rank == 1, t.shape[0] == n else { throw MILTypeError("\(name) is \(t); a vector of \(n) is needed") }
            }
            let begin = c.constant("begin")?.intValues, end = c.constant("end")?.intValues
            let stride = try c.ints("stride", default: Array(repeating: 1, count: n))
            let beginMask = try c.bools("begin_mask", default: Array(repeating: false, count: n))
            let endMask = try c.bools("end_mask", default: Array(repeating: false, count: n))
            let squeezeMask = try c.bools("squeeze_mask", default: Array(repeating: false, count: n))
            guard stride.count == n, beginMask.count == n, endMask.count == n, squeezeMask.count == n else {
                throw MILTypeError("stride/masks must have \(n) entries")
            }
            var shape: [Int] = []
            for d in 0..<n {
                guard stride[d] != 0 else { throw MILTypeError("stride 0 on dim \(d)") }
                if squeezeMask[d] { continue }
                if beginMask[d] && endMask[d] && abs(stride[d]) == 1 {
                    shape.append(x.shape[d])
                    continue
                }
                let b: Int?? = beginMask[d] ? .some(nil) : begin.map { $0[d] }
                let e: Int?? = endMask[d] ? .some(nil) : end.map { $0[d] }
                guard x.shape[d] != u, let b, let e else {
                    shape.append(u)
                    continue
                }
                let len = sliceLength(x.shape[d], begin: b, end: e, stride: stride[d])
                guard len > 0 else { throw MILTypeError("dim \(d) of the slice is empty") }
                shape.append(len)
            }
            return [x.with(shape: shape)]
        })
        let u = MILTensorType.unknownDim
        list.append(MILOpDefinition("range_1d", file: operation, domains: ["start": [.fp16, .fp32, .int32], "end": [.fp16, .fp32, .int32],
                                                                    "step": [.fp16, .fp32, .int32]]) { c throws(MILTypeError) in
            // iOS15/tensor_operation.py `range_1d`: three scalars of one type; ceil((end - start) / step) elements,
            // unknown unless all three are constant.
            let start = try c.type("start"), end = try c.type("end"), step = try c.type("step")
            guard start.dtype == end.dtype, end.dtype == step.dtype, start.rank == 0, end.rank == 0, step.rank == 0 else {
                throw MILTypeError("range_1d takes three scalars of one type, got \(start), \(end), \(step)")
            }
            func value(_ name: String) -> Double? {
                guard let k = c.constant(name) else { return nil }
                return k.floatValues?.first.map(Double.init) ?? k.intValues?.first.map(Double.init)
            }
            if let s = value("start"), let e = value("end"), let d = value("step") {
                guard d != 0 else { throw MILTypeError("range_1d step 0") }
                let count = Int(((e - s) / d).rounded(.up))
                guard count > 0 else { throw MILTypeError("range_1d is empty") }
                return [MILTensorType(start.dtype, [count])]
            }
            return [MILTensorType(start.dtype, [u])]
        })
        list.append(MILOpDefinition("slice_by_size", file: transformation, domains: ["x": Shapes.any]) { c throws(MILTypeError) in
            let x = try c.type("x")
            let begin = try c.ints("begin"), size = try c.ints("size")
            guard begin.count == x.rank, size.count == x.rank else { throw MILTypeError("begin/size must have \(x.rank) entries") }
            var shape: [Int] = []
            for d in 0..<x.rank {
                let s = size[d] == -1 ? x.shape[d] - begin[d] : size[d]
                guard s > 0, begin[d] >= 0, begin[d] + s <= x.shape[d] else { throw MILTypeError("slice of dim \(d) out of range") }
                shape.append(s)
            }
            return [x.with(shape: shape)]
        })
        list.append(MILOpDefinition("squeeze", file: transformation, domains: ["x": Shapes.any]) { c throws(MILTypeError) in
            let x = try c.type("x")
            if !c.has("axes") { return [x.with(shape: x.shape.filter { $0 != 1 })] }
            let axes = Set(try c.ints("axes").map { a throws(MILTypeError) in try Shapes.axis(a, rank: x.rank) })
            for a in axes where !Shapes.mayEqual(x.shape[a], 1) { throw MILTypeError("squeeze of dim \(a) of size \(x.shape[a])") }
            return [x.with(shape: x.shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element))]
        })
        list.append(MILOpDefinition("expand_dims", file: transformation, domains: ["x": Shapes.any]) { c throws(MILTypeError) in
            let x = try c.type("x")
            let axes = try c.ints("axes")
            let rank = x.rank + axes.count
            let placed = Set(try axes.map { a throws(MILTypeError) in try Shapes.axis(a, rank: rank) })
            guard placed.count == axes.count else { throw MILTypeError("axes \(axes) repeat") }
            var dims = x.shape.makeIterator()
            return [x.with(shape: (0..<rank).map { placed.contains($0) ? 1 : dims.next()! })]
        })
        list.append(MILOpDefinition("tile", file: operation, domains: ["x": Shapes.any]) { c throws(MILTypeError) in
            let x = try c.type("x")
            let reps = try c.ints("reps")
            guard reps.count == x.rank, reps.allSatisfy({ $0 > 0 }) else { throw MILTypeError("reps \(reps) for rank \(x.rank)") }
            return [x.with(shape: zip(x.shape, reps).map { $0 * $1 })]
        })
        list.append(MILOpDefinition("gather", file: gatherFile, domains: ["x": Shapes.numeric, "indices": [.int32]],
                                   widened: ["x": Shapes.smallIntegers, "indices": Shapes.smallIntegers]) { c throws(MILTypeError) in
            let x = try c.type("x"), indices = try c.type("indices")
            let axis = try Shapes.axis(try c.int("axis", default: 0), rank: x.rank)
            let batch = try c.int("batch_dims", default: 0)
            guard batch == 0 else { throw .beyond("batch_dims \(batch) is not in mlpkg's definition (mlpkg writes 0)") }
            return [x.with(shape: Array(x.shape[..<axis]) + indices.shape + Array(x.shape[(axis + 1)...]))]
        })
        list.append(MILOpDefinition("gather_along_axis", file: gatherFile, domains: ["x": Shapes.numeric, "indices": [.int32]],
                                   widened: ["x": Shapes.smallIntegers, "indices": Shapes.smallIntegers]) { c throws(MILTypeError) in
            let x = try c.type("x"), indices = try c.type("indices")
            let axis = try Shapes.axis(try c.int("axis", default: 0), rank: x.rank)
            guard indices.rank == x.rank else { throw MILTypeError("indices rank \(indices.rank) differs from x rank \(x.rank)") }
            for d in 0..<x.rank where d != axis && !Shapes.mayEqual(indices.shape[d], x.shape[d]) {
                throw MILTypeError("indices \(indices.shape) and x \(x.shape) differ on dim \(d)")
            }
            return [x.with(shape: indices.shape)]
        })
        list.append(MILOpDefinition("gather_nd", file: gatherFile, domains: ["x": Shapes.numeric, "indices": [.int32]],
                                   widened: ["x": Shapes.smallIntegers, "indices": Shapes.smallIntegers]) { c throws(MILTypeError) in
            let x = try c.type("x"), indices = try c.type("indices")
            guard let k = indices.shape.last, k <= x.rank else { throw MILTypeError("indices \(indices.shape) for rank \(x.rank)") }
            return [x.with(shape: Array(indices.shape.dropLast()) + Array(x.shape[k...]))]
        })
        list.append(MILOpDefinition("scatter_nd", file: gatherFile, domains: ["data": Shapes.numeric, "indices": [.int32], "updates": Shapes.numeric]) { c throws(MILTypeError) in
            guard ["update", "add", "sub", "mul", "div", "max", "min"].contains(try c.string("mode", default: "add")) else { throw MILTypeError("mode") }
            let data = try c.type("data"), indices = try c.type("indices"), updates = try c.type("updates")
            guard let k = indices.shape.last, k <= data.rank,
                  updates.shape == Array(indices.shape.dropLast()) + Array(data.shape[k...]) else {
                throw MILTypeError("updates \(updates.shape) do not fit indices \(indices.shape) and data \(data.shape)")
            }
            return [data]
        })
        list.append(MILOpDefinition("scatter_along_axis", file: gatherFile, domains: ["data": Shapes.numeric, "indices": [.int32], "updates": Shapes.numeric]) { c throws(MILTypeError) in
            guard ["update", "add", "sub", "mul", "div", "max", "min"].contains(try c.string("mode", default: "add")) else { throw MILTypeError("mode") }
            _ = try Shapes.axis(try c.int("axis", default: 0), rank: try c.type("data").rank)
            let data = try c.type("data"), indices = try c.type("indices"), updates = try c.type("updates")
            guard indices.shape == updates.shape, indices.rank == data.rank else { throw MILTypeError("indices and updates must match, with data's rank") }
            return [data]
        })
        list.append(MILOpDefinition("pad", file: "iOS15/tensor_operation.py", domains: ["x": Shapes.floats]) { c throws(MILTypeError) in
            let x = try c.type("x")
            let pad = try c.ints("pad")
            guard pad.count % 2 == 0, pad.count / 2 <= x.rank, pad.allSatisfy({ $0 >= 0 }) else { throw MILTypeError("pad \(pad) for rank \(x.rank)") }
            let mode = try c.string("mode", default: "constant")
            guard ["constant", "reflect", "replicate"].contains(mode) else { throw MILTypeError("pad mode '\(mode)'") }
            var shape = x.shape
            let first = x.rank - pad.count / 2
            for i in 0..<(pad.count / 2) { shape[first + i] += pad[2 * i] + pad[2 * i + 1] }
            return [x.with(shape: shape)]
        })
        for op in reductions {
            let domain: [MILDataType] = ["reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_mean"].contains(op) ? Shapes.numeric : Shapes.floats
            list.append(MILOpDefinition(op, file: reductionFile, domains: ["x": domain]) { c throws(MILTypeError) in
                let x = try c.type("x")
                let keep = try c.bool("keep_dims", default: false)
                let axes = c.has("axes") ? Set(try c.ints("axes").map { a throws(MILTypeError) in try Shapes.axis(a, rank: x.rank) }) : Set(0..<x.rank)
                var shape: [Int] = []
                for d in 0..<x.rank {
                    if axes.contains(d) { if keep { shape.append(1) } } else { shape.append(x.shape[d]) }
                }
                return [x.with(shape: shape)]
            })
        }
        for op in ["reduce_argmax", "reduce_argmin"] {
            list.append(MILOpDefinition(op, file: reductionFile, domains: ["x": Shapes.numeric]) { c throws(MILTypeError) in
                let x = try c.type("x")
                let axis = try Shapes.axis(try c.int("axis", default: -1), rank: x.rank)
                let keep = try c.bool("keep_dims", default: false)
                var shape = x.shape
                if keep { shape[axis] = 1 } else { shape.remove(at: axis) }
                return [MILTensorType(.int32, shape)]
            })
        }
        list.append(MILOpDefinition("softmax", file: "iOS15/activation.py", domains: ["x": Shapes.floats]) { c throws(MILTypeError) in
            let x = try c.type("x")
            _ = try Shapes.axis(try c.int("axis", default: -1), rank: x.rank)
            return [x]
        })
        list.append(MILOpDefinition("matmul", file: "iOS15/linear.py", domains: ["x": Shapes.numeric, "y": Shapes.numeric]) { c throws(MILTypeError) in
            let x = try c.type("x"), y = try c.type("y")
            guard x.dtype == y.dtype else { throw MILTypeError("x is \(x.dtype) and y is \(y.dtype)") }
            var a = x.shape, b = y.shape
            // The definition promotes a rank-1 x to [1, K]; y must have rank ≥ 2 (its dim -2 is read).
            guard a.count >= 1, b.count >= 2 else { throw MILTypeError("matmul takes x of rank ≥ 1 and y of rank ≥ 2, got \(x.shape) and \(y.shape)") }
            if try c.bool("transpose_x", default: false) {
                guard a.count >= 2 else { throw MILTypeError("transpose_x on a rank-1 x") }
                a.swapAt(a.count - 1, a.count - 2)
            }
            if try c.bool("transpose_y", default: false), b.count >= 2 { b.swapAt(b.count - 1, b.count - 2) }
            let vectorX = a.count == 1
            if vectorX { a = [1] + a }
            guard Shapes.mayEqual(a[a.count - 1], b[b.count - 2]) else { throw MILTypeError("inner dims differ: \(x.shape) × \(y.shape)") }
            var shape = try Shapes.broadcast(Array(a.dropLast(2)), Array(b.dropLast(2))) + [a[a.count - 2], b[b.count - 1]]
            if vectorX { shape.removeFirst() }
            return [x.with(shape: shape)]
        })
        list.append(MILOpDefinition("linear", file: "iOS15/linear.py", domains: ["x": Shapes.floats, "weight": Shapes.floats, "bias": Shapes.floats]) { c throws(MILTypeError) in
            let x = try c.type("x"), w = try c.type("weight")
            guard x.rank >= 1, w.rank == 2, x.shape.last == w.shape[1], x.dtype == w.dtype else {
                throw MILTypeError("linear of \(x) with weight \(w)")
            }
            if let b = try c.optionalType("bias") {
                guard b.rank == 1, b.shape[0] == w.shape[0], b.dtype == x.dtype else { throw MILTypeError("bias \(b) for weight \(w)") }
            }
            return [x.with(shape: x.shape.dropLast() + [w.shape[0]])]
        })
        list.append(MILOpDefinition("cumsum", file: "iOS15/scatter_gather.py", domains: ["x": Shapes.numeric]) { c throws(MILTypeError) in
            let x = try c.type("x")
            _ = try Shapes.axis(try c.int("axis", default: 0), rank: x.rank)
            return [x]
        })
        list.append(MILOpDefinition("topk", file: "iOS15/tensor_operation.py", domains: ["x": Shapes.numeric],
                                   widened: ["x": [.int8, .uint8, .int16, .uint16]]) { c throws(MILTypeError) in
            let x = try c.type("x")
            let axis = try Shapes.axis(try c.int("axis", default: -1), rank: x.rank)
            let k = try c.int("k", default: 1)
            guard k > 0, k <= x.shape[axis] else { throw MILTypeError("k \(k) for dim \(x.shape[axis])") }
            var shape = x.shape
            shape[axis] = k
            // iOS17: return_indices = false gives the values alone; output_indices_dtype is int32 or uint16.
            guard try c.bool("return_indices", default: true) else { return [x.with(shape: shape)] }
            let indices = try c.string("output_indices_dtype", default: "int32")
            guard let dtype = ["int32": MILDataType.int32, "uint16": .uint16][indices] else {
                throw MILTypeError("output_indices_dtype '\(indices)' (int32 or uint16)")
            }
            return [x.with(shape: shape), MILTensorType(dtype, shape)]
        })
        list.append(MILOpDefinition("band_part", file: operation, domains: ["x": Shapes.any]) { c throws(MILTypeError) in
            let x = try c.type("x")
            guard x.rank >= 2 else { throw MILTypeError("band_part takes rank ≥ 2") }
            return [x]
        })
        list.append(MILOpDefinition("depth_to_space", file: transformation, domains: ["x": Shapes.floats]) { c throws(MILTypeError) in
            let x = try c.type("x"), b = try c.int("block_size")
            guard x.rank == 4, b > 0, x.shape[1] % (b * b) == 0 else { throw MILTypeError("depth_to_space of \(x.shape) by \(b)") }
            return [x.with(shape: [x.shape[0], x.shape[1] / (b * b), x.shape[2] * b, x.shape[3] * b])]
        })
        list.append(MILOpDefinition("space_to_depth", file: transformation, domains: ["x": Shapes.floats]) { c throws(MILTypeError) in
            let x = try c.type("x"), b = try c.int("block_size")
            guard x.rank == 4, b > 0, x.shape[2] % b == 0, x.shape[3] % b == 0 else { throw MILTypeError("space_to_depth of \(x.shape) by \(b)") }
            return [x.with(shape: [x.shape[0], x.shape[1] * b * b, x.shape[2] / b, x.shape[3] / b])]
        })
        list.append(MILOpDefinition("pixel_shuffle", file: transformation, domains: ["x": Shapes.floats]) { c throws(MILTypeError) in
            let x = try c.type("x"), f = try c.int("upscale_factor")
            guard x.rank == 4, f > 0, x.shape[1] % (f * f) == 0 else { throw MILTypeError("pixel_shuffle of \(x.shape) by \(f)") }
            return [x.with(shape: [x.shape[0], x.shape[1] / (f * f), x.shape[2] * f, x.shape[3] * f])]
        })
        list.append(MILOpDefinition("reverse", file: transformation, domains: ["x": Shapes.any]) { c throws(MILTypeError) in
            [try c.type("x")]
        })
        list.append(MILOpDefinition("stack", file: operation, domains: ["values": Shapes.any]) { c throws(MILTypeError) in
            let values = try c.types("values")
            guard let first = values.first, values.allSatisfy({ $0 == first }) else { throw MILTypeError("stack of unequal values") }
            let axis = try Shapes.axis(try c.int("axis"), rank: first.rank + 1)
            var shape = first.shape
            shape.insert(values.count, at: axis)
            return [first.with(shape: shape)]
        })
        return list
    }()
}
