import Foundation
import GraphIR

/// Binary and variadic elementwise ops with numpy broadcasting (multidirectional from opset 7; before, the legacy
/// `broadcast`/`axis` attributes broadcast B into A, so the output has A's shape). Arithmetic keeps the first
/// input's type; comparisons and logic give bool. Folds on integers (checked: overflow refuses to fold), floats
/// (computed in double, rounded to the type: exact for + − × ÷) and symbolic dims (`seq*2`).
public enum BinaryOp: Operator {
    static let logical: Set<String> = ["And", "Or", "Xor", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"]

    /// Arithmetic, bitwise, PRelu, comparison and logic ops, with the opsets their ONNX definitions changed at.
    public static let schemas: [OpSchema] = [
        OpSchema("Add", [1, 6, 7, 13, 14]), OpSchema("Sub", [1, 6, 7, 13, 14]), OpSchema("Mul", [1, 6, 7, 13, 14]),
        OpSchema("Div", [1, 6, 7, 13, 14]), OpSchema("Pow", [1, 7, 12, 13, 15]), OpSchema("Mod", [10, 13]),
        OpSchema("BitShift", [11]), OpSchema("BitwiseAnd", [18]), OpSchema("BitwiseOr", [18]), OpSchema("BitwiseXor", [18]),
        OpSchema("PRelu", [1, 6, 7, 9, 16]), OpSchema("And", [1, 7]), OpSchema("Or", [1, 7]), OpSchema("Xor", [1, 7]),
        OpSchema("Equal", [1, 7, 11, 13, 19]), OpSchema("Greater", [1, 7, 9, 13]), OpSchema("Less", [1, 7, 9, 13]),
        OpSchema("GreaterOrEqual", [12, 16]), OpSchema("LessOrEqual", [12, 16]),
    ]

    /// One output: the broadcast shape (A's under legacy broadcasting), bool for comparisons and logic; throws
    /// when the input types differ (Pow excepted).
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), ctx.has(1) else { throw ctx.fail("needs two inputs") }
        let elementType: DataType? = logical.contains(ctx.opType) ? .bool : ctx.elementType(0)
        if let a = ctx.elementType(0), let b = ctx.elementType(1), a != b, ctx.opType != "Pow" {
            throw ctx.fail("input types differ: \(a.name) and \(b.name)")
        }
        let shape: [Dim]?
        if ctx.since < 7 && ctx.opType != "Mod" && ctx.opType != "BitShift" {
            shape = ctx.shape(0)  // legacy broadcasting: B into A
        } else {
            shape = try ctx.broadcast([ctx.shape(0), ctx.shape(1)])
        }
        return [tensorType(elementType, shape)]
    }

    /// Folds Add, Sub, Mul, Div, Mod, Pow, the comparisons and And/Or/Xor once both inputs are known; nil for the
    /// other ops and for legacy broadcasting of unequal shapes.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard let a = ctx.value(0), let b = ctx.value(1), case .tensor(let out)? = types.first,
              let type = out.elementType else { return nil }
        if ctx.since < 7, a.dims != b.dims { return nil }  // legacy axis broadcasting: not folded
        let limit = ctx.limits.evaluationElements
        let alg = ctx.algebra
        let r: TensorValue?
        switch ctx.opType {
        case "Add":
            r = Evaluation.elementwise([a, b], resultType: type, limit: limit, ints: { IntMath.add($0[0], $0[1]) },
                                       floats: { $0[0] + $0[1] }, dims: { alg.add($0[0], $0[1]) })
        case "Sub":
            r = Evaluation.elementwise([a, b], resultType: type, limit: limit, ints: { IntMath.sub($0[0], $0[1]) },
                                       floats: { $0[0] - $0[1] }, dims: { alg.subtract($0[0], $0[1]) })
        case "Mul":
            r = Evaluation.elementwise([a, b], resultType: type, limit: limit, ints: { IntMath.mul($0[0], $0[1]) },
                                       floats: { $0[0] * $0[1] }, dims: { alg.multiply($0[0], $0[1]) })
        case "Div":
            r = Evaluation.elementwise([a, b], resultType: type, limit: limit, ints: { IntMath.div($0[0], $0[1]) },
                                       floats: { $0[0] / $0[1] },
                                       dims: { d in
                                           // Truncating division equals floor division for a non-negative dividend.
                                           guard case .value(let v) = d[1], v > 0, alg.isAtLeast(d[0], 0) else { return nil }
                                           return alg.floorDiv(d[0], v)
                                       })
        case "Mod":
            let fmod = try ctx.int("fmod", default: 0) != 0
            r = Evaluation.elementwise([a, b], resultType: type, limit: limit, ints: { v in
                guard v[1] != 0, !(v[0] == .min && v[1] == -1) else { return nil }
                let m = v[0] % v[1]
                if fmod { return m }
                return (m != 0 && (m < 0) != (v[1] < 0)) ? m + v[1] : m  // the divisor's sign, as Python
            })
        case "Pow":
            // The exponent may have another type than the base (the only such binary op): a float base takes an
            // integer exponent as floats; an integer base folds with a non-negative integer exponent, checked.
            var exponent = b
            if case .floats = a.elements, case .ints(let e) = b.elements { exponent.elements = .floats(e.map(Double.init)) }
            if case .ints = a.elements, case .floats(let e) = b.elements {
                guard e.allSatisfy({ $0 == $0.rounded() && abs($0) < 64 }) else { return [nil] }
                exponent.elements = .ints(e.map { Int64($0) })
            }
            r = Evaluation.elementwise([a, exponent], resultType: type, limit: limit, ints: { v in
                guard v[1] >= 0, v[1] < 64 else { return nil }
                var result: Int64 = 1
                for _ in 0..<v[1] { guard let next = IntMath.mul(result, v[0]) else { return nil }; result = next }
                return result
            }, floats: { Foundation.pow($0[0], $0[1]) })
        case "Equal":
            r = Evaluation.elementwise([a, b], resultType: .bool, limit: limit, bools: { $0[0] == $0[1] },
                                       compareInts: { $0[0] == $0[1] }, compareFloats: { $0[0] == $0[1] },
                                       compareDims: { d in compare(d[0], d[1], alg).map { $0 == 0 } })
        case "Greater":
            r = Evaluation.elementwise([a, b], resultType: .bool, limit: limit, compareInts: { $0[0] > $0[1] },
                                       compareFloats: { $0[0] > $0[1] }, compareDims: { d in compare(d[0], d[1], alg).map { $0 > 0 } })
        case "Less":
            r = Evaluation.elementwise([a, b], resultType: .bool, limit: limit, compareInts: { $0[0] < $0[1] },
                                       compareFloats: { $0[0] < $0[1] }, compareDims: { d in compare(d[0], d[1], alg).map { $0 < 0 } })
        case "GreaterOrEqual":
            r = Evaluation.elementwise([a, b], resultType: .bool, limit: limit, compareInts: { $0[0] >= $0[1] },
                                       compareFloats: { $0[0] >= $0[1] }, compareDims: { d in compare(d[0], d[1], alg).map { $0 >= 0 } })
        case "LessOrEqual":
            r = Evaluation.elementwise([a, b], resultType: .bool, limit: limit, compareInts: { $0[0] <= $0[1] },
                                       compareFloats: { $0[0] <= $0[1] }, compareDims: { d in compare(d[0], d[1], alg).map { $0 <= 0 } })
        case "And": r = Evaluation.elementwise([a, b], resultType: .bool, limit: limit, bools: { $0[0] && $0[1] })
        case "Or": r = Evaluation.elementwise([a, b], resultType: .bool, limit: limit, bools: { $0[0] || $0[1] })
        case "Xor": r = Evaluation.elementwise([a, b], resultType: .bool, limit: limit, bools: { $0[0] != $0[1] })
        default: r = nil
        }
        return [r]
    }

    /// The sign of a − b when it can be shown: −1, 0 or 1; nil when it depends on symbol values.
    static func compare(_ a: Dim, _ b: Dim, _ alg: DimAlgebra) -> Int? {
        if alg.equal(a, b) { return 0 }
        guard let x = alg.expression(a), let y = alg.expression(b), let d = x - y else { return nil }
        if let v = d.constantValue { return v.signum() }
        if let lb = alg.lowerBound(alg.dim(d)), lb >= 1 { return 1 }
        if let nd = y - x, let lb = alg.lowerBound(alg.dim(nd)), lb >= 1 { return -1 }
        return nil
    }
}

/// Variadic elementwise ops: Max, Min, Sum, Mean (broadcasting from opset 8; before, equal shapes).
public enum VariadicOp: Operator {
    /// `Max`, `Min`, `Sum` and `Mean`, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("Max", [1, 6, 8, 12, 13]), OpSchema("Min", [1, 6, 8, 12, 13]),
                                 OpSchema("Sum", [1, 6, 8, 13]), OpSchema("Mean", [1, 6, 8, 13])]

    /// One output of input 0's type: the broadcast shape from opset 8, before it the inputs' common shape.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.inputCount > 0, ctx.has(0) else { throw ctx.fail("needs at least one input") }
        let shapes = (0..<ctx.inputCount).map { ctx.shape($0) }
        let shape: [Dim]?
        if ctx.since < 8 {
            var merged = shapes[0]
            for s in shapes.dropFirst() {
                guard let m = merged, let s else { merged = merged ?? s; continue }
                guard m.count == s.count else { throw ctx.fail("input ranks differ: \(m.count) and \(s.count)") }
                merged = zip(m, s).map { ctx.algebra.unify($0, $1) }
            }
            shape = merged
        } else {
            shape = try ctx.broadcast(shapes)
        }
        return [tensorType(ctx.elementType(0), shape)]
    }

    /// Folds Max, Min and Sum once every input is known (Max and Min refuse NaN); Mean is not folded.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        let values = (0..<ctx.inputCount).compactMap { ctx.value($0) }
        guard values.count == ctx.inputCount, !values.isEmpty, case .tensor(let out)? = types.first,
              let type = out.elementType, ctx.since >= 8 || values.allSatisfy({ $0.dims == values[0].dims }) else { return nil }
        let alg = ctx.algebra
        let limit = ctx.limits.evaluationElements
        switch ctx.opType {
        case "Max":
            return [Evaluation.elementwise(values, resultType: type, limit: limit, ints: { $0.max() },
                                           floats: { v in v.contains(where: \.isNaN) ? nil : v.max() },
                                           dims: { d in d.dropFirst().reduce(d[0]) { alg.maximum($0, $1) } })]
        case "Min":
            return [Evaluation.elementwise(values, resultType: type, limit: limit, ints: { $0.min() },
                                           floats: { v in v.contains(where: \.isNaN) ? nil : v.min() },
                                           dims: { d in d.dropFirst().reduce(d[0]) { alg.minimum($0, $1) } })]
        case "Sum":
            return [Evaluation.elementwise(values, resultType: type, limit: limit,
                                           ints: { v in
                                               var acc: Int64? = v[0]
                                               for x in v.dropFirst() { acc = acc.flatMap { IntMath.add($0, x) } }
                                               return acc
                                           },
                                           floats: { $0.reduce(0, +) },
                                           dims: { d in d.dropFirst().reduce(d[0]) { alg.add($0, $1) } })]
        default:
            return nil
        }
    }
}

/// Where(condition, X, Y): three-way broadcasting, X's type. Folds element by element, symbolic dims included
/// (the `Where(Equal(shape, -1), 1, shape)` pattern torch exports for Expand).
public enum WhereOp: Operator {
    /// `Where`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Where", [9, 16])]

    /// One output of X's type (Y's when X's is unknown), shaped by broadcasting all three inputs.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), ctx.has(1), ctx.has(2) else { throw ctx.fail("needs three inputs") }
        return [tensorType(ctx.elementType(1) ?? ctx.elementType(2), try ctx.broadcast([ctx.shape(0), ctx.shape(1), ctx.shape(2)]))]
    }

    /// Picks each element from X or Y by a known bool condition, once all three inputs are known.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard let c = ctx.value(0), case .bools(let cond) = c.elements, let x = ctx.value(1), let y = ctx.value(2),
              let outDims = Evaluation.broadcastDims([c.dims, x.dims, y.dims]),
              let total = Evaluation.count(outDims), ctx.canEvaluate(total) else { return nil }
        let ci = Evaluation.broadcastIndices(from: c.dims, to: outDims)
        let xi = Evaluation.broadcastIndices(from: x.dims, to: outDims)
        let yi = Evaluation.broadcastIndices(from: y.dims, to: outDims)
        // Select from the concatenation [x; y].
        guard let both = TensorValue.Elements.concatenated([x.elements, y.elements]) else { return nil }
        let indices = (0..<total).map { cond[ci[$0]] ? xi[$0] : x.count + yi[$0] }
        var result = TensorValue(dataType: x.dataType, dims: outDims, elements: both.select(indices))
        if case .symbolic(let d) = result.elements { result = TensorValue(dataType: x.dataType, dims: outDims, symbolic: d) }
        return [result]
    }
}
