import GraphIR

/// Shape (with `start`/`end` from opset 15): an int64 vector whose elements are the input's dims — values when
/// known, symbols otherwise — so shape arithmetic downstream stays symbolic, and folds once dims are pinned.
public enum ShapeOp: Operator {
    /// `Shape`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Shape", [1, 13, 15, 19, 21])]

    static func range(_ ctx: OpContext, rank: Int) throws -> Range<Int> {
        guard ctx.since >= 15 else { return 0..<rank }
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + rank : v, 0), rank) }
        let start = clamp(try ctx.int("start", default: 0))
        let end = clamp(try ctx.int("end") ?? rank)
        return start..<max(start, end)
    }

    /// An int64 vector as long as the selected range of dims (a fresh symbol when the rank is unknown).
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        guard let shape = ctx.shape(0) else {
            ctx.note("the rank of '\(ctx.node.inputs[0])' is unknown")
            return [tensorType(.int64, [ctx.algebra.fresh()])]
        }
        return [tensorType(.int64, [.value(try range(ctx, rank: shape.count).count)])]
    }

    /// The input's dims as symbolic elements (fresh symbols for unknown dims), when its rank is known.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard let shape = ctx.shape(0) else { return nil }
        let r = try range(ctx, rank: shape.count)
        let dims = shape[r].map { $0 == .unknown ? ctx.algebra.fresh(lowerBound: 0) : $0 }
        return [TensorValue(dims: [dims.count], symbolic: dims)]
    }
}

/// Size: the element count as an int64 scalar.
public enum SizeOp: Operator {
    /// `Size`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Size", [1, 13, 19, 21])]

    /// An int64 scalar.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        return [tensorType(.int64, [])]
    }

    /// The product of the input's dims (symbolic when they are), when none is unknown.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard let shape = ctx.shape(0), !shape.contains(.unknown) else { return nil }
        return [TensorValue(dims: [], symbolic: [ctx.algebra.product(shape)])]
    }
}

/// Cast (`to` is a type name string in opset 1, a type number from 6) and CastLike (the second input's type).
/// Folds integer, float and bool conversions: float to integer truncates toward zero (refusing NaN and values
/// out of range), integer to integer wraps as C++ does, float to float16 rounds to nearest even. Symbolic
/// integers stay symbolic between integer types.
public enum CastOp: Operator {
    /// `Cast` and `CastLike`, with the opsets their ONNX definitions changed at.
    public static let schemas = [OpSchema("Cast", [1, 6, 9, 13, 19, 21, 23, 24, 25]), OpSchema("CastLike", [15, 19, 21, 23, 24, 25])]

    static func target(_ ctx: OpContext) throws -> DataType? {
        if ctx.opType == "CastLike" { return ctx.elementType(1) }
        if ctx.since < 6, case .string(let s)? = ctx.attribute("to") {
            let name = String(decoding: s, as: UTF8.self).lowercased()
            guard let t = DataType(name: name) else { throw ctx.fail("attribute 'to' = '\(name)' is not a type name") }
            return t
        }
        guard let t = try ctx.dataType("to") else { throw ctx.fail("attribute 'to' is missing") }
        return t
    }

    /// The input's shape in the target type.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        if ctx.opType == "CastLike", !ctx.has(1) { throw ctx.fail("input 1 (target_type) is missing") }
        return [tensorType(try target(ctx), ctx.shape(0))]
    }

    /// The known input converted as described above; nil for conversions that are not folded.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard let x = ctx.value(0), let to = try target(ctx), let kind = TensorValue.kind(of: to) else { return nil }
        return [convert(x, to: to, kind: kind)]
    }

    static func convert(_ x: TensorValue, to: DataType, kind: TensorValue.Kind) -> TensorValue? {
        let elements: TensorValue.Elements
        switch (x.elements, kind) {
        case (.ints(let v), .int):
            guard let bits = to.bitWidth else { return nil }
            elements = .ints(v.map { wrap($0, bits: bits, signed: TensorValue.range(of: to)!.lowerBound < 0) })
            if to == .uint64, v.contains(where: { $0 < 0 }) { return nil }
        case (.ints(let v), .float): elements = .floats(v.map { TensorValue.rounded(Double($0), to: to) })
        case (.ints(let v), .bool): elements = .bools(v.map { $0 != 0 })
        case (.floats(let v), .float): elements = .floats(v.map { TensorValue.rounded($0, to: to) })
        case (.floats(let v), .bool): elements = .bools(v.map { $0 != 0 })
        case (.floats(let v), .int):
            guard let range = TensorValue.range(of: to) else { return nil }
            var out: [Int64] = []
            for f in v {
                guard f.isFinite else { return nil }
                let t = f.rounded(.towardZero)
                guard t >= Double(range.lowerBound) && t <= Double(range.upperBound) && abs(t) < 9.2e18 else { return nil }
                out.append(Int64(t))
            }
            elements = .ints(out)
        case (.bools(let v), .int): elements = .ints(v.map { $0 ? 1 : 0 })
        case (.bools(let v), .float): elements = .floats(v.map { $0 ? 1 : 0 })
        case (.bools(let v), .bool): elements = .bools(v)
        case (.symbolic(let d), .int): elements = .symbolic(d)
        default: return nil
        }
        return TensorValue(dataType: to, dims: x.dims, elements: elements)
    }

    /// Two's complement truncation to `bits`, as a C++ integer conversion does.
    static func wrap(_ v: Int64, bits: Int, signed: Bool) -> Int64 {
        guard bits < 64 else { return v }
        let mask: UInt64 = (1 << UInt64(bits)) - 1
        let low = UInt64(bitPattern: v) & mask
        if signed, low & (1 << UInt64(bits - 1)) != 0 { return Int64(bitPattern: low | ~mask) }
        return Int64(bitPattern: low)
    }
}
