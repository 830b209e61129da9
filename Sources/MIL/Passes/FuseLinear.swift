import GraphIR

/// matmul(x, W) with a constant 2-D W, then optionally add(·, b) with a constant bias along the last dim →
/// linear(x, weight, bias) (what coremltools writes for nn.Linear). MIL's linear takes weight [D_out, D_in]: W
/// [D_in, D_out] is transposed once here; with transpose_y W is used as it is (so compressed weights, which are
/// constexpr outputs, fuse too). x has rank 1 to 3, as the definition states.
public enum FuseLinear: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_linear"

    /// Weights larger than this stay a matmul when fusing would transpose them: the transposed copy is held in memory
    /// until the package is written (the 1 GiB MLP's 32 MiB layers stay matmul, BERT-base's layers fuse).
    public static let maxTransposedBytes = 8 << 20

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        var index = 0
        while index < program.operations.count {
            if fuse(program, at: index) { continue }
            index += 1
        }
    }

    /// Fuses the matmul at `index` if it matches; returns whether the program changed.
    static func fuse(_ program: MILProgram, at index: Int) -> Bool {
        let mm = program.operations[index]
        guard mm.type == "matmul", let x = mm.arguments("x")?.first?.variableName, let w = mm.arguments("y")?.first?.variableName else { return false }
        let types = localTypes(program, [x, w])
        guard let xt = types[x], let wt = types[w], xt.dtype.isFloat, (1...3).contains(xt.rank), wt.rank == 2,
              !flag(program, mm, "transpose_x") else { return false }
        let transposeY = flag(program, mm, "transpose_y")
        guard let wp = producer(program, w) else { return false }
        let weightOp = program.operations[wp]
        var weight: MILConst? = nil
        var weightConstexpr: MILOperation? = nil
        if !transposeY {
            let bytes = wt.count * (wt.dtype == .fp32 ? 4 : 2)
            guard bytes <= maxTransposedBytes else { return false }
            if weightOp.type == "const", let value = weightOp.value, let t = transposed(value) {
                weight = t
            } else if let t = transposedConstexpr(weightOp, name: program.unusedName(weightOp.name + "_transposed")) {
                weightConstexpr = t
            } else {
                return false
            }
        } else {
            guard weightOp.type == "const" || weightOp.type.hasPrefix("constexpr_") else { return false }
        }
        let out = mm.outputs[0]
        let dOut = transposeY ? wt.shape[0] : wt.shape[1]
        // An add of a constant bias along the last dim, when the matmul's only use is that add.
        var bias: MILConst? = nil
        var target = index
        let uses = program.uses()
        if uses[out.name]?.count == 1, !program.outputs.contains(out.name), let a = uses[out.name]?.first,
           program.operations[a].type == "add" {
            let add = program.operations[a]
            let operands = [add.arguments("x")?.first?.variableName, add.arguments("y")?.first?.variableName]
            if let other = operands.first(where: { $0 != out.name }) ?? nil, operands.contains(out.name),
               add.outputs[0].type == out.type, let bp = producer(program, other),
               program.operations[bp].type == "const", let b = program.operations[bp].value, b.type.dtype == out.type.dtype,
               b.type.count == dOut, b.type.shape.last == dOut {
                bias = MILConst(MILTensorType(b.type.dtype, [dOut]), b.data)
                target = a
            }
        }
        let final = program.operations[target]
        var inputs: [(name: String, arguments: [MILArgument])] = [("x", [.variable(x)])]
        var insertAt = index
        if let weight {
            let name = program.insertConst(weight, name: mm.name + "_weight", before: insertAt, source: mm.source)
            inputs.append(("weight", [.variable(name)]))
            insertAt += 1
            target += 1
        } else if let weightConstexpr {
            program.operations.insert(weightConstexpr, at: insertAt)
            inputs.append(("weight", [.variable(weightConstexpr.outputs[0].name)]))
            insertAt += 1
            target += 1
        } else {
            inputs.append(("weight", [.variable(w)]))
        }
        if let bias {
            let name = program.insertConst(bias, name: mm.name + "_bias", before: insertAt, source: mm.source)
            inputs.append(("bias", [.variable(name)]))
            insertAt += 1
            target += 1
        }
        let matmulIndex = insertAt
        program.operations[matmulIndex] = MILOperation(type: "linear", name: final.name, inputs: inputs, outputs: final.outputs,
                                                       source: final.source)
        if target != matmulIndex { program.remove([target]) }
        return true
    }

    static func flag(_ program: MILProgram, _ op: MILOperation, _ name: String) -> Bool {
        guard let arg = op.arguments(name)?.first else { return false }
        let c: MILConst?
        switch arg {
        case .value(let v): c = v
        case .variable(let n): c = producer(program, n).flatMap { program.operations[$0].value }
        }
        if case .bools(let b)? = c?.data { return b.first ?? false }
        return false
    }

    static func producer(_ program: MILProgram, _ name: String) -> Int? {
        program.operations.lastIndex { $0.outputs.contains { $0.name == name } }
    }

    static func localTypes(_ program: MILProgram, _ names: [String]) -> [String: MILTensorType] {
        var t: [String: MILTensorType] = [:]
        for v in program.inputs where names.contains(v.name) { t[v.name] = v.type }
        for op in program.operations { for o in op.outputs where names.contains(o.name) { t[o.name] = o.type } }
        return t
    }

    /// A 2-D constexpr weight with 8-bit data, rebuilt transposed ([K, N] → [N, K]): the stored integers are
    /// permuted (bit for bit), per-axis scales and zero points follow their axis, blockwise scales and offsets are
    /// transposed with the data. Other forms (sub-byte data, tables) are left alone.
    static func transposedConstexpr(_ op: MILOperation, name: String) -> MILOperation? {
        guard op.outputs.count == 1, op.outputs[0].type.rank == 2 else { return nil }
        func value(_ param: String) -> MILConst? {
            guard let a = op.arguments(param), a.count == 1, case .value(let c) = a[0] else { return nil }
            return c
        }
        var inputs = op.inputs
        func replace(_ param: String, _ c: MILConst) {
            if let k = inputs.firstIndex(where: { $0.name == param }) { inputs[k].arguments = [.value(c)] }
        }
        switch op.type {
        case "constexpr_affine_dequantize":
            guard let data = value("quantized_data"), [.int8, .uint8].contains(data.type.dtype), let t = transposedBytes(data, width: 1),
                  let axis = value("axis")?.intValues?.first else { return nil }
            replace("quantized_data", t)
            replace("axis", .scalar(Int32(axis < 0 ? axis + 2 : axis) == 0 ? 1 : 0))
        case "constexpr_blockwise_shift_scale":
            guard let data = value("data"), [.int8, .uint8].contains(data.type.dtype), let t = transposedBytes(data, width: 1),
                  let scale = value("scale"), let ts = transposed(scale) ?? transposedBytes(scale, width: scale.type.dtype == .fp16 ? 2 : 4) else { return nil }
            replace("data", t)
            replace("scale", ts)
            if let offset = value("offset") {
                guard let to = transposedBytes(offset, width: offset.type.dtype.isFloat ? (offset.type.dtype == .fp16 ? 2 : 4) : 1) else { return nil }
                replace("offset", to)
            }
        default:
            return nil
        }
        let out = op.outputs[0]
        return MILOperation(type: op.type, name: name, inputs: inputs,
                            outputs: [MILVar(name: name, type: out.type.with(shape: out.type.shape.reversed()))], source: op.source)
    }

    /// A 2-D constant's packed bytes (elements `width` bytes wide) transposed.
    static func transposedBytes(_ c: MILConst, width: Int) -> MILConst? {
        guard c.type.rank == 2, case .bytes(let view) = c.data, view.count == c.type.count * width else { return nil }
        let rows = c.type.shape[0], cols = c.type.shape[1]
        let out = OwnedBuffer(uninitializedCount: rows * cols * width)
        let dst = out.mutableBytes.baseAddress!, src = view.bytes.baseAddress!
        for r in 0..<rows {
            for k in 0..<cols { (dst + (k * rows + r) * width).copyMemory(from: src + (r * cols + k) * width, byteCount: width) }
        }
        return MILConst(MILTensorType(c.type.dtype, [cols, rows]), .bytes(out.view))
    }

    /// A 2-D float constant transposed ([K, N] → [N, K]).
    static func transposed(_ c: MILConst) -> MILConst? {
        guard c.type.rank == 2, c.type.dtype.isFloat else { return nil }
        let rows = c.type.shape[0], cols = c.type.shape[1]
        let size = c.type.dtype == .fp16 ? 2 : 4
        let source: ByteView
        switch c.data {
        case .bytes(let view): source = view
        case .floats(let values): source = LittleEndian.bytes(of: values)
        default: return nil
        }
        guard source.count == rows * cols * size else { return nil }
        let out = OwnedBuffer(uninitializedCount: rows * cols * size)
        let dst = out.mutableBytes.baseAddress!
        let src = source.bytes.baseAddress!
        for r in 0..<rows {
            for k in 0..<cols {
                (dst + (k * rows + r) * size).copyMemory(from: src + (r * cols + k) * size, byteCount: size)
            }
        }
        return MILConst(MILTensorType(c.type.dtype, [cols, rows]), .bytes(out.view))
    }
}
