import Foundation
import MIL

/// Every op's kernel, by MIL op type; the test derives the list of ops mlpkg emits from `MILOpRegistry` and checks
/// each has one here.
enum Kernels {
    static let table: [String: Kernel] = {
        var t: [String: Kernel] = [:]
        for part in [elementwise, layout, neural, recurrent, constexpr, quantization] {
            for (k, v) in part {
                precondition(t[k] == nil, "two kernels for \(k)")
                t[k] = v
            }
        }
        return t
    }()

    /// The op types the evaluator runs (besides `const`).
    static var opTypes: [String] { table.keys.sorted() }

    /// `t` converted to `dtype`: floats to integers truncate toward zero (MIL's cast, iOS15/elementwise_unary.py),
    /// integers wrap into narrow types, anything to bool is "not zero".
    static func convert(_ t: EvalTensor, to dtype: MILDataType) throws(EvaluationError) -> EvalTensor {
        if t.dtype == dtype { return t }
        if dtype.isFloat {
            if t.isFloat { return EvalTensor(dtype, t.shape, t.storage) }
            return EvalTensor(floats: t.floats, shape: t.shape, dtype: dtype)
        }
        if case .string = t.storage { throw EvaluationError("a string cannot become \(dtype)") }
        if dtype == .bool {
            if t.isFloat { return EvalTensor(ints: t.floats.map { $0 != 0 ? 1 : 0 }, shape: t.shape, dtype: .bool) }
            return EvalTensor(ints: t.ints.map { $0 != 0 ? 1 : 0 }, shape: t.shape, dtype: .bool)
        }
        if t.isFloat {
            return EvalTensor(ints: t.floats.map { v in
                guard v.isFinite else { return 0 }
                return Rounding.wrap(Int64(max(min(Double(v).rounded(.towardZero), 9.2e18), -9.2e18)), to: dtype)
            }, shape: t.shape, dtype: dtype)
        }
        return EvalTensor(ints: t.ints.map { Rounding.wrap(Int64($0), to: dtype) }, shape: t.shape, dtype: dtype)
    }
}

/// numpy broadcasting of two shapes.
func broadcastShape(_ a: [Int], _ b: [Int]) throws(EvaluationError) -> [Int] {
    let rank = max(a.count, b.count)
    let x = [Int](repeating: 1, count: rank - a.count) + a
    let y = [Int](repeating: 1, count: rank - b.count) + b
    var out: [Int] = []
    for (p, q) in zip(x, y) {
        guard p == q || p == 1 || q == 1 else { throw EvaluationError("shapes \(a) and \(b) do not broadcast") }
        out.append(p == 1 ? q : p)
    }
    return out
}

/// For each element of `outShape`, the offset of the element of a tensor of `shape` (broadcast to it) it reads.
func broadcastOffsets(_ shape: [Int], to outShape: [Int]) -> [Int] {
    let rank = outShape.count
    let padded = [Int](repeating: 1, count: rank - shape.count) + shape
    var strides = stridesOf(padded)
    for d in 0..<rank where padded[d] == 1 { strides[d] = 0 }
    let total = outShape.reduce(1, *)
    var out = [Int](repeating: 0, count: total)
    guard total > 0 else { return out }
    var index = [Int](repeating: 0, count: rank)
    var offset = 0
    for i in 0..<total {
        out[i] = offset
        var d = rank - 1
        while d >= 0 {
            index[d] += 1
            offset += strides[d]
            if index[d] < outShape[d] { break }
            offset -= strides[d] * index[d]
            index[d] = 0
            d -= 1
        }
    }
    return out
}

/// Elementwise binary op over broadcast operands: `f` for floats, `g` for integers.
func binaryMap(_ x: EvalTensor, _ y: EvalTensor, resultType: MILDataType? = nil,
               float f: (Float, Float) -> Float, int g: ((Int32, Int32) -> Int32)?) throws(EvaluationError) -> EvalTensor {
    let shape = try broadcastShape(x.shape, y.shape)
    let n = shape.reduce(1, *)
    let floatMath = x.isFloat || y.isFloat || g == nil
    let dtype = resultType ?? (x.isFloat ? x.dtype : (y.isFloat ? y.dtype : x.dtype))
    if floatMath {
        return x.withFloats { a in
            y.withFloats { b in
                var out = [Float](repeating: 0, count: n)
                out.withUnsafeMutableBufferPointer { o in
                    if x.shape == shape && y.shape == shape {
                        for i in 0..<n { o[i] = f(a[i], b[i]) }
                    } else if y.count == 1 {
                        let s = b[0]
                        if x.shape == shape { for i in 0..<n { o[i] = f(a[i], s) } } else {
                            let xo = broadcastOffsets(x.shape, to: shape)
                            for i in 0..<n { o[i] = f(a[xo[i]], s) }
                        }
                    } else if x.count == 1, y.shape == shape {
                        let s = a[0]
                        for i in 0..<n { o[i] = f(s, b[i]) }
                    } else if x.shape == shape, shape.count >= 1, y.count == shape.last!, y.shape.last == shape.last {
                        let m = shape.last!
                        var i = 0
                        while i < n { for j in 0..<m { o[i + j] = f(a[i + j], b[j]) }; i += m }
                    } else {
                        let xo = broadcastOffsets(x.shape, to: shape), yo = broadcastOffsets(y.shape, to: shape)
                        for i in 0..<n { o[i] = f(a[xo[i]], b[yo[i]]) }
                    }
                }
                return EvalTensor(floats: out, shape: shape, dtype: dtype.isFloat ? dtype : .fp32)
                    .retyped(dtype)
            }
        }
    }
    let a = x.ints, b = y.ints
    var out = [Int32](repeating: 0, count: n)
    if x.shape == shape && y.shape == shape {
        for i in 0..<n { out[i] = g!(a[i], b[i]) }
    } else {
        let xo = broadcastOffsets(x.shape, to: shape), yo = broadcastOffsets(y.shape, to: shape)
        for i in 0..<n { out[i] = g!(a[xo[i]], b[yo[i]]) }
    }
    return EvalTensor(ints: out, shape: shape, dtype: dtype)
}

extension EvalTensor {
    /// Float results of a comparison (0/1) as bool, or float results under a float type.
    func retyped(_ dtype: MILDataType) -> EvalTensor {
        if dtype.isFloat { return EvalTensor(dtype, shape, storage) }
        return EvalTensor(ints: floats.map(Rounding.int32), shape: shape, dtype: dtype)
    }
}

/// Elementwise unary op on floats.
func unaryMap(_ x: EvalTensor, _ f: (Float) -> Float) -> EvalTensor {
    x.withFloats { a in
        var out = [Float](repeating: 0, count: a.count)
        out.withUnsafeMutableBufferPointer { o in for i in 0..<a.count { o[i] = f(a[i]) } }
        return EvalTensor(floats: out, shape: x.shape, dtype: x.isFloat ? x.dtype : .fp32)
    }
}
