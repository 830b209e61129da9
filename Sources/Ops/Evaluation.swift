import GraphIR

/// Index arithmetic and elementwise kernels shared by the ops' `evaluate` hooks. Every data-movement op (Gather,
/// Slice, Transpose, Expand, Tile…) is a list of source indices for `TensorValue.Elements.select`.
enum Evaluation {
    /// Row-major strides of `dims`.
    static func strides(_ dims: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: dims.count)
        var acc = 1
        for i in stride(from: dims.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc = acc &* dims[i]
        }
        return s
    }

    static func count(_ dims: [Int]) -> Int? { Tensor.elementCount(of: dims) }

    /// For each element of `outDims`, the flat index of the element of `inDims` it reads under numpy broadcasting.
    static func broadcastIndices(from inDims: [Int], to outDims: [Int]) -> [Int] {
        let total = count(outDims) ?? 0
        let offset = outDims.count - inDims.count
        let inStrides = strides(inDims)
        var out = [Int](repeating: 0, count: total)
        var index = [Int](repeating: 0, count: outDims.count)
        for i in 0..<total {
            var flat = 0
            for axis in 0..<inDims.count where inDims[axis] != 1 {
                flat += index[axis + offset] * inStrides[axis]
            }
            out[i] = flat
            var axis = outDims.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < outDims[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
        return out
    }

    /// numpy broadcasting of concrete shapes; nil when they do not broadcast.
    static func broadcastDims(_ shapes: [[Int]]) -> [Int]? {
        var result: [Int] = []
        for shape in shapes {
            let rank = max(result.count, shape.count)
            let a = Array(repeating: 1, count: rank - result.count) + result
            let b = Array(repeating: 1, count: rank - shape.count) + shape
            var merged: [Int] = []
            for (x, y) in zip(a, b) {
                if x == y || y == 1 { merged.append(x) } else if x == 1 { merged.append(y) } else { return nil }
            }
            result = merged
        }
        return result
    }

    /// Calls `body` with each multi-index of `dims` in row-major order.
    static func forEachIndex(_ dims: [Int], _ body: ([Int]) -> Void) {
        guard let total = count(dims), total > 0 else { return }
        var index = [Int](repeating: 0, count: dims.count)
        for _ in 0..<total {
            body(index)
            var axis = dims.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < dims[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// Elementwise function of several broadcast inputs. Each closure handles one element kind; the result is nil
    /// when the inputs' kinds have no closure, a closure refuses an element, or an integer leaves `resultType`'s range.
    static func elementwise(_ inputs: [TensorValue], resultType: DataType, limit: Int,
                            ints: (([Int64]) -> Int64?)? = nil,
                            floats: (([Double]) -> Double?)? = nil,
                            bools: (([Bool]) -> Bool?)? = nil,
                            dims: (([Dim]) -> Dim?)? = nil,
                            compareInts: (([Int64]) -> Bool?)? = nil,
                            compareFloats: (([Double]) -> Bool?)? = nil,
                            compareDims: (([Dim]) -> Bool?)? = nil) -> TensorValue? {
        guard let outDims = broadcastDims(inputs.map(\.dims)), let total = count(outDims), total <= limit else { return nil }
        let maps = inputs.map { broadcastIndices(from: $0.dims, to: outDims) }
        func gather<T>(_ arrays: [[T]]) -> [[T]] {
            (0..<total).map { i in arrays.indices.map { arrays[$0][maps[$0][i]] } }
        }
        let resultKind = TensorValue.kind(of: resultType)
        var allInts: [[Int64]] = [], allFloats: [[Double]] = [], allBools: [[Bool]] = [], allDims: [[Dim]] = []
        for input in inputs {
            switch input.elements {
            case .ints(let v): allInts.append(v)
            case .floats(let v): allFloats.append(v)
            case .bools(let v): allBools.append(v)
            case .symbolic(let v): allDims.append(v)
            }
        }
        let n = inputs.count
        if allInts.count == n {
            let rows = gather(allInts)
            if resultKind == .bool, let compareInts {
                var out: [Bool] = []
                for r in rows { guard let v = compareInts(r) else { return nil }; out.append(v) }
                return TensorValue(dataType: resultType, dims: outDims, elements: .bools(out))
            }
            guard resultKind == .int, let ints, let range = TensorValue.range(of: resultType) else { return nil }
            var out: [Int64] = []
            out.reserveCapacity(total)
            for r in rows {
                guard let v = ints(r), range.contains(v) else { return nil }
                out.append(v)
            }
            return TensorValue(dataType: resultType, dims: outDims, elements: .ints(out))
        }
        if allFloats.count == n {
            let rows = gather(allFloats)
            if resultKind == .bool, let compareFloats {
                var out: [Bool] = []
                for r in rows { guard let v = compareFloats(r) else { return nil }; out.append(v) }
                return TensorValue(dataType: resultType, dims: outDims, elements: .bools(out))
            }
            guard resultKind == .float, let floats else { return nil }
            var out: [Double] = []
            out.reserveCapacity(total)
            for r in rows {
                guard let v = floats(r) else { return nil }
                out.append(TensorValue.rounded(v, to: resultType))
            }
            return TensorValue(dataType: resultType, dims: outDims, elements: .floats(out))
        }
        if allBools.count == n, let bools, resultKind == .bool {
            var out: [Bool] = []
            for r in gather(allBools) { guard let v = bools(r) else { return nil }; out.append(v) }
            return TensorValue(dataType: resultType, dims: outDims, elements: .bools(out))
        }
        // Integers mixed with symbolic integers: element by element as dims.
        if allInts.count + allDims.count == n, !allDims.isEmpty, total <= 4096 {
            let asDims = inputs.compactMap { $0.elements.dims }
            let rows = gather(asDims)
            if resultKind == .bool, let compareDims {
                var out: [Bool] = []
                for r in rows { guard let v = compareDims(r) else { return nil }; out.append(v) }
                return TensorValue(dataType: resultType, dims: outDims, elements: .bools(out))
            }
            guard resultKind == .int, let dims else { return nil }
            var out: [Dim] = []
            for r in rows { guard let v = dims(r) else { return nil }; out.append(v) }
            return TensorValue(dataType: resultType, dims: outDims, symbolic: out)
        }
        return nil
    }
}

/// Checked integer arithmetic for folding (nil on overflow or division by zero).
enum IntMath {
    static func add(_ a: Int64, _ b: Int64) -> Int64? { let (r, o) = a.addingReportingOverflow(b); return o ? nil : r }
    static func sub(_ a: Int64, _ b: Int64) -> Int64? { let (r, o) = a.subtractingReportingOverflow(b); return o ? nil : r }
    static func mul(_ a: Int64, _ b: Int64) -> Int64? { let (r, o) = a.multipliedReportingOverflow(by: b); return o ? nil : r }
    /// C++ integer division, truncating toward zero (what onnxruntime computes).
    static func div(_ a: Int64, _ b: Int64) -> Int64? {
        guard b != 0 else { return nil }
        let (r, o) = a.dividedReportingOverflow(by: b)
        return o ? nil : r
    }
}
