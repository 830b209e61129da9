import GraphIR
import Passes
import Ops

/// Flexible input shapes (`--input-shape NAME=1,1..512[@128]`, docs/COREML.md#flexible-shapes): a ranged dim stays
/// a symbol through shape inference and becomes an unknown dim in the MIL program. Only the lowerings listed here
/// write ops whose definitions hold for every size in the range; any other node that reads or writes a flexible
/// dim is refused, naming the dim, its range and the op, so the audit can show which nodes force a shape static.
enum FlexibleShapes {
    /// ONNX ops whose lowering takes unknown dims: elementwise math, matmul and Gemm, softmax on one axis, layer norm,
    /// Where (when a and b carry the output's dims), ConstantOfShape of a run-time shape (MIL `fill`), transposes, reshapes (to a shape with at most one unknown dim, 0-copies on equal ranks, or a shape computed
    /// at run time), concat, gather, cast, and `Shape` itself (MIL `shape`, so exporters' Shape → Gather → Concat
    /// chains become run-time shapes).
    static let capable: Set<String> = {
        var ops = Set(BinaryLowering.table.keys).subtracting(["PRelu"])
        ops.formUnion(UnaryLowering.table.keys)
        ops.formUnion(["MatMul", "Gemm", "Softmax", "LogSoftmax", "LayerNormalization", "Transpose", "Reshape", "Flatten", "Squeeze",
                       "Unsqueeze", "Concat", "Gather", "Cast", "CastLike", "Identity", "Dropout", "Shape", "Where", "ConstantOfShape"])
        // Elementwise with attributes, n-ary, and reductions over constant axes: nothing in them depends on a size.
        ops.formUnion(ActivationLowering.opTypes + VariadicLowering.opTypes + ReduceLowering.opTypes + FloatClassLowering.opTypes + ["Clip"])
        // Indexing whose lowering checks what it needs of a flexible dim (constant indices below its smallest size,
        // run-time bounds, positive steps) and refuses the rest under this rule; Range with run-time bounds.
        ops.formUnion(["Slice", "Expand", "GatherElements", "GatherND", "Range"])
        return ops
    }()

    /// The rule a node fails when it touches a flexible dim and its lowering needs static ones.
    static let rule = LoweringRule(
        "coreml-static-dim", mil: "every op without flexible-shape support",
        source: "docs/COREML.md#flexible-shapes",
        says: "with a ranged input (--input-shape NAME=1,1..512), a node that reads or writes a dim known only at run time is lowered only by the lowerings that hold for every size of the range (docs/COREML.md lists them); the others need static shapes")

    /// Enumerated shapes: several inputs pair by index from iOS18; before, only one input may be enumerated — an
    /// input that shares an enumerated symbol counts (a usage error). The rule is coremltools'
    /// (`_validate_enumerated_shape_inputs`, converters/_converters_entry.py).
    static func checkEnumerations(_ model: Model, _ shapes: InputShapes, target: DeploymentTarget) throws(CoreMLInterfaceError) {
        guard !shapes.enumerations.isEmpty else { return }
        let choices: [[String: Int]]
        let pinned: Model
        do throws(InputShapeError) {
            pinned = try shapes.apply(to: model)
            choices = try shapes.symbolChoices(in: pinned)
        } catch {
            throw CoreMLInterfaceError(error.description)
        }
        let symbols = Set(choices.first?.keys.map { $0 } ?? [])
        let enumerated = pinned.graph.runtimeInputs.filter { input in
            guard case .tensor(let t) = input.type, let dims = t.shape else { return false }
            return dims.contains { if case .symbol(let s) = $0 { return symbols.contains(s) }; return false }
        }.map(\.name)
        if target < .iOS18, enumerated.count > 1 {
            let given = shapes.order.filter { shapes.enumerations[$0] != nil }
            let followers = enumerated.filter { !given.contains($0) }
            let why = followers.isEmpty ? "" : " ('\(followers.joined(separator: "', '"))' share\(followers.count == 1 ? "s" : "") an enumerated symbol)"
            throw CoreMLInterfaceError("--input-shape: before iOS18 only one input may have enumerated shapes; '\(enumerated.joined(separator: "', '"))' would\(why); "
                                       + "use --deployment-target iOS18 (inputs pair by index) or a range (LO..HI)")
        }
    }

    /// The smallest size a flexible dim takes, from the interval shape inference carried from the ranges
    /// (`sequence-1` on 1…512 is at least 0); nil when unknown.
    static func lowerBound(of value: String, axis: Int, values: ValueTable) -> Int? {
        guard case .tensor(let t)? = values.inferredType(value), let shape = t.shape, shape.indices.contains(axis) else { return nil }
        return values.interval(shape[axis]).lower
    }

    /// A flexible dim for messages: `sequence (1..512)`, `sequence-1 (0..511)`.
    static func describe(_ value: String, axis: Int, values: ValueTable) -> String {
        guard case .tensor(let t)? = values.inferredType(value), let shape = t.shape, shape.indices.contains(axis) else { return "?" }
        guard case .symbol(let s) = shape[axis] else { return shape[axis].description }
        return "\(s) (\(values.interval(shape[axis])))"
    }

    /// The flexible dims of a value's inferred type, described with their ranges (`sequence (1..512)`).
    static func flexibleDims(_ type: ValueType?, _ inference: ShapeInferenceResult) -> [String] {
        guard case .tensor(let t)? = type, let shape = t.shape else { return [] }
        return shape.compactMap { d -> String? in
            switch d {
            case .value: return nil
            case .unknown: return "?"
            case .symbol(let s): return "\(s) (\(inference.interval(d)))"
            }
        }
    }

    /// With ranged inputs, why a node whose lowering needs static shapes cannot take its flexible dims; nil when the
    /// node touches none or its lowering handles them.
    static func refusal(_ node: Node, inference: ShapeInferenceResult, ranges: [String: DimRange]) -> LoweringRefusal? {
        guard !ranges.isEmpty, !capable.contains(node.opType) else { return nil }
        let types = inference.types
        for name in node.inputs + node.outputs where !name.isEmpty {
            let dims = flexibleDims(types[name], inference)
            guard !dims.isEmpty else { continue }
            let shape: String
            if case .tensor(let t)? = types[name] { shape = t.shapeDescription } else { shape = "" }
            return LoweringRefusal("\(node.opType) needs static dims, but '\(name)' is \(shape) with \(dims.joined(separator: ", ")) known only at run time; "
                                   + "pin the input (--input-shape NAME=D0,D1,…) at the sizes you deploy with", rule: rule.id)
        }
        return nil
    }
}

/// Shape → MIL `shape` (int32, the input's rank): only when the input has a dim known only at run time (a static
/// shape is folded to a constant before lowering).
enum ShapeLowering: OpLowering {
    static let opTypes = ["Shape"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), out = try v.outputType()
        // start/end (opset 15) as ONNX clamps them: negative from the end, then into [0, rank].
        func clamp(_ i: Int) -> Int { min(max(i < 0 ? i + x.rank : i, 0), x.rank) }
        let start = clamp(v.int("start", default: 0)), end = clamp(v.int("end") ?? x.rank)
        guard end > start else { throw LoweringRefusal("Shape's start/end select no dim; MIL has no empty tensors") }
        guard out.dtype == .int32, out.shape == [end - start] else { throw LoweringRefusal("Shape's output is \(out), expected int32[\(end - start)]") }
        return { e throws(LoweringRefusal) in
            let all = MILTensorType(.int32, [x.rank])
            let shape = e.op("shape", [("x", .v(try e.input(0)))], output: all, suffix: start == 0 && end == x.rank ? "" : "_all")
            if start == 0 && end == x.rank { return [shape] }
            return [e.op("slice_by_index", [("x", .v(shape)), ("begin", .c(.ints([start]))), ("end", .c(.ints([end])))], output: out)]
        }
    }
}

extension ShapeLowering {
    static let rule = LoweringRule(
        "mil-shape", mil: "shape", file: "iOS15/tensor_operation.py",
        says: "x: T = (fp16, fp32, int32, bool); returns int32 of x's rank", types: ["*": [0: [.fp16, .fp32, .int32, .bool]]])
}

/// ConstantOfShape of a shape computed at run time → MIL `fill` (a constant shape is folded, or forwarded as the
/// value repeated, before lowering; `ConstantForwarding`).
enum ConstantOfShapeLowering: OpLowering {
    static let opTypes = ["ConstantOfShape"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let shape = try v.type(0), out = try v.outputType()
        guard shape.dtype == .int32, shape.rank == 1, shape.isStatic, shape.shape[0] == out.rank else {
            throw LoweringRefusal("ConstantOfShape's shape is \(shape); a rank-1 integer of length \(out.rank) is needed")
        }
        var value: ConstantValue?
        if case .tensor(let t)? = v.node.attribute("value")?.value { value = ConstantValue(tensor: t) }
        let fill: MILConst
        switch out.dtype {
        case .fp16, .fp32: fill = .float(value?.floats?.first ?? 0, out.dtype)
        case .int32:
            let i = value?.ints?.first ?? 0
            guard i >= Int(Int32.min), i <= Int(Int32.max) else { throw LoweringRefusal("ConstantOfShape's value \(i) does not fit int32") }
            fill = .scalar(Int32(i))
        case .bool: fill = .scalar(value?.bools?.first ?? false)
        default: throw LoweringRefusal("ConstantOfShape of \(out.dtype)")
        }
        return { e throws(LoweringRefusal) in
            [e.op("fill", [("shape", .v(try e.input(0))), ("value", .c(fill))], output: out)]
        }
    }
}

extension ConstantOfShapeLowering {
    static let rule = LoweringRule(
        "mil-fill", mil: "fill", file: "iOS15/tensor_operation.py",
        says: "shape: int32 rank-1 (the output's rank); value: const T = (fp16, fp32, int32, bool)", types: ["*": [0: [.int32]]])
}

/// Range with bounds computed at run time → MIL `range_1d` (constant bounds are folded before lowering): three
/// scalars of one type, int32 (ONNX's int64 narrowed) or float; ceil((limit - start) / delta) elements.
enum RangeLowering: OpLowering {
    static let opTypes = ["Range"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let start = try v.type(0), limit = try v.type(1), delta = try v.type(2), out = try v.outputType()
        guard start.dtype == limit.dtype, limit.dtype == delta.dtype, start.dtype == .int32 || start.dtype.isFloat else {
            throw LoweringRefusal("Range of \(start.dtype), \(limit.dtype), \(delta.dtype); range_1d takes one int32 or float type")
        }
        guard start.count == 1, limit.count == 1, delta.count == 1 else { throw LoweringRefusal("Range's inputs must be scalars") }
        if v.isConstant(2), let step = try? v.floats(2).first ?? 0, step == 0 { throw LoweringRefusal("Range's delta is 0") }
        if v.isConstant(2), let step = try? v.ints(2).first, step == 0 { throw LoweringRefusal("Range's delta is 0") }
        return { e throws(LoweringRefusal) in
            func scalar(_ i: Int, _ t: MILTensorType) throws(LoweringRefusal) -> MILVar {
                let x = try e.input(i)
                if t.rank == 0 { return x }
                return e.op("squeeze", [("x", .v(x))], output: t.with(shape: []), suffix: "_\(i)")
            }
            return [e.op("range_1d", [("end", .v(try scalar(1, limit))), ("start", .v(try scalar(0, start))), ("step", .v(try scalar(2, delta)))],
                         output: out)]
        }
    }
}

extension RangeLowering {
    static let rule = LoweringRule(
        "mil-range", mil: "range_1d", file: "iOS15/tensor_operation.py",
        says: "end, start, step: scalars of one type T = (fp16, fp32, int32); ceil((end - start) / step) elements, known only at run time",
        types: ["*": [0: [.fp16, .fp32, .int32]]])
}
