import GraphIR

/// Constant: the type of whichever value attribute is set; evaluates to its tensor.
public enum ConstantOp: Operator {
    /// `Constant`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Constant", [1, 9, 11, 12, 13, 19, 21, 23, 24, 25])]

    /// The type of the value attribute's tensor (dense or sparse); throws when none is set.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        if let t = ctx.node.constantTensor { return [t.type.asValueType] }
        if let s = ctx.node.constantSparseTensor { return [tensorType(s.values.dataType, s.dims.map { .value($0) })] }
        throw ctx.fail("has no value attribute")
    }

    /// The dense value attribute's elements, when small enough to hold.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard let t = ctx.node.constantTensor else { return nil }
        return [TensorValue.decode(t, limit: ctx.limits.evaluationElements)]
    }
}

extension TensorType {
    var asValueType: ValueType { .tensor(self) }
}

/// ConstantOfShape: the shape input's elements (symbolic allowed); the `value` attribute's type (float 0 by default).
public enum ConstantOfShapeOp: Operator {
    /// `ConstantOfShape`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("ConstantOfShape", [9, 20, 21, 23, 24, 25])]

    static func fill(_ ctx: OpContext) throws -> TensorValue {
        guard case .tensor(let t)? = ctx.attribute("value") else { return TensorValue(dataType: .float, dims: [1], elements: .floats([0])) }
        guard Tensor.elementCount(of: t.dims) == 1 else { throw ctx.fail("attribute 'value' must hold one element") }
        return TensorValue.decode(t, limit: 1) ?? TensorValue(dataType: t.dataType, dims: [1], elements: .floats([]))
    }

    /// The shape input's elements as dims (fresh symbols when only its length is known), in the fill value's type;
    /// throws on a negative element.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        let type = try fill(ctx).dataType
        if let dims = ctx.dimsValue(0) {
            for case .value(let v) in dims where v < 0 { throw ctx.fail("shape element \(v) is negative") }
            return [tensorType(type, dims)]
        }
        ctx.note("the shape '\(ctx.node.inputs[0])' is not known before run time")
        if let s = ctx.shape(0), s.count == 1, case .value(let n) = s[0], n <= OpContext.maxRank {
            return [tensorType(type, (0..<n).map { _ in ctx.algebra.fresh() })]
        }
        return [tensorType(type, nil)]
    }

    /// The fill value repeated over the inferred shape when every dim is a number.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        let f = try fill(ctx)
        guard f.count == 1, let dims = ctx.concrete(types.first.flatMap(shapeOf)), let n = Evaluation.count(dims),
              ctx.canEvaluate(n) else { return nil }
        return [TensorValue(dataType: f.dataType, dims: dims, elements: f.elements.select(Array(repeating: 0, count: n)))]
    }
}

/// Range(start, limit, delta): a vector of max(⌈(limit − start) / delta⌉, 0) elements of start's type. Symbolic
/// when limit is (`Range(0, seq, 1)` has `seq` elements). Float ranges fold only when every element is an integer
/// (exact however the runtime accumulates).
public enum RangeOp: Operator {
    /// `Range`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Range", [11])]

    /// A vector of start's type whose length is computed as above (a fresh symbol when it cannot be).
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), ctx.has(1), ctx.has(2) else { throw ctx.fail("needs start, limit and delta") }
        let type = ctx.elementType(0)
        for i in 0..<3 { if let r = ctx.rank(i), r > 1 || (r == 1 && ctx.shape(i) != [.value(1)]) { throw ctx.fail("input \(i) is not a scalar") } }
        return [tensorType(type, [length(ctx) ?? ctx.algebra.fresh()])]
    }

    static func length(_ ctx: OpContext) -> Dim? {
        let alg = ctx.algebra
        if let s = ctx.value(0), let l = ctx.value(1), let d = ctx.value(2),
           case .floats(let sv) = s.elements, case .floats(let lv) = l.elements, case .floats(let dv) = d.elements,
           sv.count == 1, lv.count == 1, dv.count == 1, dv[0] != 0 {
            let n = ((lv[0] - sv[0]) / dv[0]).rounded(.up)
            guard n.isFinite, n < 1e15 else { return nil }
            return .value(max(Int(n), 0))
        }
        guard let start = ctx.scalarDim(0), let limit = ctx.scalarDim(1), case .value(let delta)? = ctx.scalarDim(2), delta != 0 else { return nil }
        if case .value(let a) = start, case .value(let b) = limit {
            let (span, overflow) = b.subtractingReportingOverflow(a)
            guard !overflow, let (n, r) = divide(span, delta) else { return nil }
            return .value(max(n + (r != 0 && (r > 0) == (delta > 0) ? 1 : 0), 0))
        }
        let span = delta > 0 ? alg.subtract(limit, start) : alg.subtract(start, limit)
        guard alg.isAtLeast(span, 0) else { return alg.fresh() }
        return alg.ceilDiv(span, Swift.abs(delta))
    }

    /// The elements of an integer range, or of a float range whose start and step are whole numbers.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard let s = ctx.value(0), let l = ctx.value(1), let d = ctx.value(2), case .value(let n)? = length(ctx),
              ctx.canEvaluate(n), s.count == 1 else { return nil }
        switch (s.elements, l.elements, d.elements) {
        case (.ints(let a), .ints, .ints(let step)):
            var out: [Int64] = []
            out.reserveCapacity(n)
            for i in 0..<n {
                guard let offset = IntMath.mul(Int64(i), step[0]), let v = IntMath.add(a[0], offset) else { return nil }
                out.append(v)
            }
            return [TensorValue(dataType: s.dataType, dims: [n], elements: .ints(out))]
        case (.floats(let a), .floats, .floats(let step)):
            let values = (0..<n).map { a[0] + Double($0) * step[0] }
            guard a[0] == a[0].rounded(), step[0] == step[0].rounded(), values.allSatisfy({ Swift.abs($0) < 16_777_216 }) else { return nil }
            return [TensorValue(dataType: s.dataType, dims: [n], elements: .floats(values))]
        default:
            return nil
        }
    }
}

/// EyeLike: the input's 2-D shape, `dtype` or the input's type.
public enum EyeLikeOp: Operator {
    /// `EyeLike`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("EyeLike", [9, 22])]

    /// The input's shape in `dtype` (the input's type when not set); throws when the rank is not 2.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        if let r = ctx.rank(0), r != 2 { throw ctx.fail("input has rank \(r), not 2") }
        return [tensorType(try ctx.dataType("dtype") ?? ctx.elementType(0), ctx.shape(0))]
    }
}

/// Random generators: RandomNormal/RandomUniform (`shape` attribute), …Like (the input's shape), Bernoulli,
/// Multinomial ([batch, sample_size]). Never constant.
public enum RandomOp: Operator {
    /// The random generator ops, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("RandomNormal", [1, 22]), OpSchema("RandomUniform", [1, 22]),
                                 OpSchema("RandomNormalLike", [1, 22]), OpSchema("RandomUniformLike", [1, 22]),
                                 OpSchema("Bernoulli", [15, 22]), OpSchema("Multinomial", [7, 22])]
    /// False: random outputs are never constant and never folded.
    public static var isDeterministic: Bool { false }

    /// The generated tensor's type, in `dtype` when set (float for RandomNormal/RandomUniform, int32 for
    /// Multinomial, else the input's type).
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        let dtype = try ctx.dataType("dtype")
        switch ctx.opType {
        case "RandomNormal", "RandomUniform":
            guard let shape = try ctx.ints("shape") else { throw ctx.fail("attribute 'shape' is missing") }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw ctx.fail("attribute 'shape' has a negative dim") }
            return [tensorType(dtype ?? .float, shape.map { .value($0) })]
        case "Multinomial":
            guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
            let batch = ctx.shape(0).flatMap { $0.count == 2 ? $0[0] : nil } ?? ctx.algebra.fresh()
            return [tensorType(dtype ?? .int32, [batch, .value(try ctx.int("sample_size", default: 1))])]
        default:
            guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
            return [tensorType(dtype ?? ctx.elementType(0), ctx.shape(0))]
        }
    }
}

/// Window functions (HannWindow, HammingWindow, BlackmanWindow): a vector of `size` elements, `output_datatype`
/// (float by default).
public enum WindowOp: Operator {
    /// `HannWindow`, `HammingWindow` and `BlackmanWindow`, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("HannWindow", [17]), OpSchema("HammingWindow", [17]), OpSchema("BlackmanWindow", [17])]

    /// A vector of `size` elements (a fresh symbol when unknown) in `output_datatype`, float by default.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 (size) is missing") }
        let size = ctx.scalarDim(0) ?? ctx.algebra.fresh()
        return [tensorType(try ctx.dataType("output_datatype") ?? .float, [size])]
    }
}
