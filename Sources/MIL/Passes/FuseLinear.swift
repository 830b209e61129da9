import GraphIR

/// matmul(x, W) with a constant 2-D W, then optionally add(·, b) with a constant bias along the last dim →
/// linear(x, weight, bias) (what coremltools writes for nn.Linear). MIL's linear takes weight [D_out, D_in]: W
/// [D_in, D_out] is transposed once here; with transpose_y W is used as it is (so compressed weights, which are
/// constexpr outputs, fuse too). x has rank 1 to 3, as the definition states.
public enum FuseLinear: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_linear"

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
        if !transposeY {
            guard weightOp.type == "const", let value = weightOp.value, let t = transposed(value) else { return false }
            weight = t
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
