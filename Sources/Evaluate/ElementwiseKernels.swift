import Foundation
import MIL

/// Elementwise ops (iOS15/elementwise_binary.py, elementwise_unary.py, activation.py): float ops compute in
/// float32 and are rounded to the declared type afterwards.
extension Kernels {
    static func binary(_ f: @escaping @Sendable (Float, Float) -> Float, _ g: (@Sendable (Int32, Int32) -> Int32)?) -> Kernel {
        { a in [try binaryMap(try a.tensor("x"), try a.tensor("y"), float: f, int: g)] }
    }

    static func compare(_ f: @escaping @Sendable (Float, Float) -> Bool, _ g: @escaping @Sendable (Int32, Int32) -> Bool) -> Kernel {
        { a in
            let x = try a.tensor("x"), y = try a.tensor("y")
            if x.isFloat || y.isFloat {
                return [try binaryMap(x, y, resultType: .bool, float: { f($0, $1) ? 1 : 0 }, int: nil)]
            }
            return [try binaryMap(x, y, resultType: .bool, float: { f($0, $1) ? 1 : 0 }, int: { g($0, $1) ? 1 : 0 })]
        }
    }

    static func unary(_ f: @escaping @Sendable (Float) -> Float) -> Kernel {
        { a in [unaryMap(try a.tensor("x"), f)] }
    }

    /// A unary op that takes integers as integers (abs, sign, square): `g` for int32.
    static func numeric(_ f: @escaping @Sendable (Float) -> Float, _ g: @escaping @Sendable (Int32) -> Int32) -> Kernel {
        { a in
            let x = try a.tensor("x")
            if x.isFloat { return [unaryMap(x, f)] }
            return [EvalTensor(ints: x.ints.map(g), shape: x.shape, dtype: x.dtype)]
        }
    }

    static func sigmoid(_ v: Float) -> Float { 1 / (1 + expf(-v)) }

    /// Python's floored modulo (the result has y's sign), as numpy's mod.
    static func floorMod(_ x: Float, _ y: Float) -> Float {
        let r = fmodf(x, y)
        return r != 0 && (r < 0) != (y < 0) ? r + y : r
    }

    static let elementwise: [String: Kernel] = {
        var t: [String: Kernel] = [:]
        t["add"] = binary({ $0 + $1 }, { $0 &+ $1 })
        t["sub"] = binary({ $0 - $1 }, { $0 &- $1 })
        t["mul"] = binary({ $0 * $1 }, { $0 &* $1 })
        t["real_div"] = binary({ $0 / $1 }, { y, z in z == 0 ? 0 : y / z })
        t["floor_div"] = binary({ ($0 / $1).rounded(.down) }, { y, z in
            guard z != 0 else { return 0 }
            let q = y / z
            return (y % z != 0) && ((y < 0) != (z < 0)) ? q - 1 : q
        })
        t["mod"] = binary({ floorMod($0, $1) }, { y, z in
            guard z != 0 else { return 0 }
            let r = y % z
            return r != 0 && (r < 0) != (z < 0) ? r + z : r
        })
        t["pow"] = binary({ powf($0, $1) }, { y, z in
            z < 0 ? Int32(clamping: Int64(pow(Double(y), Double(z)))) : Int32(truncatingIfNeeded: Int64(pow(Double(y), Double(z))))
        })
        t["maximum"] = binary({ $0.isNaN || $1.isNaN ? .nan : max($0, $1) }, { max($0, $1) })
        t["minimum"] = binary({ $0.isNaN || $1.isNaN ? .nan : min($0, $1) }, { min($0, $1) })
        t["equal"] = compare({ $0 == $1 }, { $0 == $1 })
        t["not_equal"] = compare({ $0 != $1 }, { $0 != $1 })
        t["greater"] = compare({ $0 > $1 }, { $0 > $1 })
        t["greater_equal"] = compare({ $0 >= $1 }, { $0 >= $1 })
        t["less"] = compare({ $0 < $1 }, { $0 < $1 })
        t["less_equal"] = compare({ $0 <= $1 }, { $0 <= $1 })
        t["logical_and"] = compare({ $0 != 0 && $1 != 0 }, { $0 != 0 && $1 != 0 })
        t["logical_or"] = compare({ $0 != 0 || $1 != 0 }, { $0 != 0 || $1 != 0 })
        t["logical_xor"] = compare({ ($0 != 0) != ($1 != 0) }, { ($0 != 0) != ($1 != 0) })
        t["logical_not"] = { a in
            let x = try a.tensor("x")
            return [EvalTensor(ints: x.ints.map { $0 == 0 ? 1 : 0 }, shape: x.shape, dtype: .bool)]
        }
        let plain: [(String, @Sendable (Float) -> Float)] = [
            ("acos", acosf), ("asin", asinf), ("atan", atanf), ("atanh", atanhf), ("ceil", ceilf), ("cos", cosf),
            ("cosh", coshf), ("erf", erff), ("exp", expf), ("floor", floorf), ("round", { $0.rounded(.toNearestOrEven) }),
            ("sin", sinf), ("sinh", sinhf), ("sqrt", sqrtf), ("tan", tanf), ("tanh", tanhf), ("exp2", exp2f),
            ("relu", { $0 > 0 ? $0 : ($0.isNaN ? $0 : 0) }), ("relu6", { min(max($0, 0), 6) }), ("sigmoid", { sigmoid($0) }),
            ("softsign", { $0 / (1 + abs($0)) }), ("silu", { $0 * sigmoid($0) }),
            ("softplus", { log1pf(expf(-abs($0))) + max($0, 0) }),
        ]
        for (name, f) in plain { t[name] = unary(f) }
        t["abs"] = numeric({ abs($0) }, { $0 == .min ? .min : abs($0) })
        t["sign"] = numeric({ $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }, { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) })
        t["square"] = numeric({ $0 * $0 }, { $0 &* $0 })
        // epsilon's defaults (iOS15/elementwise_unary.py): log 1e-45, rsqrt 1e-12, inverse 1e-4; an fp16 x rounds
        // the default to fp16 (1e-45 becomes 0).
        func withEpsilon(_ fallback: Float, _ f: @escaping @Sendable (Float, Float) -> Float) -> Kernel {
            { a in
                let x = try a.tensor("x")
                var eps = try a.float("epsilon", default: fallback)
                if !a.has("epsilon"), x.dtype == .fp16 {
                    var v = [eps]
                    Rounding.toHalf(&v)
                    eps = v[0]
                }
                return [unaryMap(x) { f($0, eps) }]
            }
        }
        t["log"] = withEpsilon(Float.leastNonzeroMagnitude) { logf($0 + $1) }
        t["rsqrt"] = withEpsilon(1e-12) { 1 / sqrtf($0 + $1) }
        t["inverse"] = withEpsilon(1e-4) { 1 / ($0 + $1) }
        t["clip"] = { a in
            let lo = try a.float("alpha"), hi = try a.float("beta")
            return [unaryMap(try a.tensor("x")) { min(max($0, lo), hi) }]
        }
        t["threshold"] = { a in
            let x = try a.tensor("x")
            let alpha = try a.float("alpha")
            if !x.isFloat {
                let al = Int32(alpha)
                return [EvalTensor(ints: x.ints.map { max($0, al) }, shape: x.shape, dtype: x.dtype)]
            }
            return [unaryMap(x) { max($0, alpha) }]
        }
        t["leaky_relu"] = { a in
            let alpha = try a.float("alpha", default: 0.01)
            return [unaryMap(try a.tensor("x")) { $0 >= 0 ? $0 : $0 * alpha }]
        }
        t["elu"] = { a in
            let alpha = try a.float("alpha", default: 1)
            return [unaryMap(try a.tensor("x")) { $0 > 0 ? $0 : alpha * expm1f($0) }]
        }
        t["thresholded_relu"] = { a in
            let alpha = try a.float("alpha", default: 1)
            return [unaryMap(try a.tensor("x")) { $0 >= alpha ? $0 : 0 }]
        }
        t["sigmoid_hard"] = { a in
            let alpha = try a.float("alpha", default: 0.2), beta = try a.float("beta", default: 0.5)
            return [unaryMap(try a.tensor("x")) { min(max(alpha * $0 + beta, 0), 1) }]
        }
        t["scaled_tanh"] = { a in
            let alpha = try a.float("alpha", default: 1), beta = try a.float("beta", default: 1)
            return [unaryMap(try a.tensor("x")) { alpha * tanhf($0 * beta) }]
        }
        t["gelu"] = { a in
            let mode = try a.string("mode", default: "EXACT")
            let x = try a.tensor("x")
            switch mode {
            case "EXACT": return [unaryMap(x) { Float(0.5 * Double($0) * (1 + erf(Double($0) / 2.0.squareRoot()))) }]
            case "TANH_APPROXIMATION":
                let c = (2 / Double.pi).squareRoot()
                return [unaryMap(x) { v in
                    let d = Double(v)
                    return Float(0.5 * d * (1 + tanh(c * (d + 0.044715 * d * d * d))))
                }]
            case "SIGMOID_APPROXIMATION": return [unaryMap(x) { $0 * sigmoid(1.702 * $0) }]
            default: throw EvaluationError("gelu mode '\(mode)'")
            }
        }
        t["prelu"] = { a in
            let x = try a.tensor("x"), alpha = try a.tensor("alpha").floats
            guard x.rank >= 2, alpha.count == x.shape[1] else { throw EvaluationError("alpha of \(alpha.count) for \(x.shape)") }
            let inner = x.shape[2...].reduce(1, *), c = x.shape[1]
            var out = x.floats
            for i in out.indices where out[i] <= 0 { out[i] *= alpha[(i / inner) % c] }
            return [EvalTensor(floats: out, shape: x.shape, dtype: x.dtype)]
        }
        t["identity"] = { a in [try a.tensor("x")] }
        t["cast"] = { a in
            let name = try a.string("dtype")
            let types: [String: MILDataType] = ["fp16": .fp16, "fp32": .fp32, "int32": .int32, "bool": .bool, "int8": .int8,
                                                "uint8": .uint8, "int16": .int16, "uint16": .uint16]
            guard let dtype = types[name] else { throw EvaluationError("cast to '\(name)'") }
            return [try convert(try a.tensor("x"), to: dtype)]
        }
        t["select"] = { a in
            let c = try a.tensor("cond"), x = try a.tensor("a"), y = try a.tensor("b")
            let shape = try broadcastShape(try broadcastShape(c.shape, x.shape), y.shape)
            let co = broadcastOffsets(c.shape, to: shape), xo = broadcastOffsets(x.shape, to: shape), yo = broadcastOffsets(y.shape, to: shape)
            let cv = c.ints
            if x.isFloat {
                let xv = x.floats, yv = y.floats
                return [EvalTensor(floats: (0..<co.count).map { cv[co[$0]] != 0 ? xv[xo[$0]] : yv[yo[$0]] }, shape: shape, dtype: x.dtype)]
            }
            let xv = x.ints, yv = y.ints
            return [EvalTensor(ints: (0..<co.count).map { cv[co[$0]] != 0 ? xv[xo[$0]] : yv[yo[$0]] }, shape: shape, dtype: x.dtype)]
        }
        return t
    }()
}
