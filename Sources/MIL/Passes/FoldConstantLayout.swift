import GraphIR

/// A layout op whose inputs are `const`s becomes `const`s: reshape, expand_dims and squeeze give the same elements
/// under a new shape (row-major order is unchanged); a transpose, a split or a concat of constants of at most 2^20
/// inline elements each (fp32, int32, bool) is computed at export time, and so are a tile of a constant and a
/// select between constants (the dynamo exporter's attention mask built from constants, DINOv2). Exporters write such chains for the zero initial states of
/// recurrent layers (ConstantOfShape, then the lowering's reshape to MIL's [batch, hidden]) and for constant
/// position tables; coremltools' `const_elimination` folds them the same way. A block output keeps its op (Core ML
/// needs an op to define it); packed bytes (fp16, compressed) are only reshaped, never permuted. One walk in order,
/// so a chain of layout ops on a constant folds entirely.
public enum FoldConstantLayout: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fold_constant_layout"

    static let reshapes: Set<String> = ["reshape", "expand_dims", "squeeze"]

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        var constants = program.constants()
        let outputs = Set(program.outputs)
        var extra: [Int: [MILOperation]] = [:]
        for i in program.operations.indices {
            let op = program.operations[i]
            if op.type == "tile" || op.type == "select", op.outputs.count == 1, !outputs.contains(op.outputs[0].name),
               let value = op.type == "tile" ? tile(op, constants) : select(op, constants) {
                program.operations[i] = MILOperation(type: "const", name: op.name, inputs: [], outputs: op.outputs, value: value,
                                                     source: op.source)
                constants[op.outputs[0].name] = value
                continue
            }
            if op.type == "split" || op.type == "concat" {
                guard !op.outputs.contains(where: { outputs.contains($0.name) }),
                      let values = op.type == "split" ? split(op, constants) : concat(op, constants) else { continue }
                let folded = zip(op.outputs, values).enumerated().map { k, pair in
                    MILOperation(type: "const", name: k == 0 ? op.name : pair.0.name, inputs: [], outputs: [pair.0],
                                 value: pair.1, source: op.source)
                }
                program.operations[i] = folded[0]
                extra[i] = Array(folded.dropFirst())
                for (o, v) in zip(op.outputs, values) { constants[o.name] = v }
                continue
            }
            guard reshapes.contains(op.type) || op.type == "transpose", op.outputs.count == 1,
                  !outputs.contains(op.outputs[0].name), let x = op.arguments("x")?.first?.variableName,
                  let c = constants[x] else { continue }
            let out = op.outputs[0].type
            guard out.isStatic, out.dtype == c.type.dtype, out.count == c.type.count else { continue }
            var data = c.data
            if op.type == "transpose" {
                guard let perm = permutation(op, constants), perm.count == c.type.rank, let elements = inline(c),
                      let permuted = transposed(elements, shape: c.type.shape, perm: perm) else { continue }
                data = permuted
            }
            let value = MILConst(out, data)
            program.operations[i] = MILOperation(type: "const", name: op.name, inputs: [], outputs: op.outputs, value: value,
                                                 source: op.source)
            constants[op.outputs[0].name] = value
        }
        guard !extra.isEmpty else { return }
        var rebuilt: [MILOperation] = []
        for (i, op) in program.operations.enumerated() {
            rebuilt.append(op)
            rebuilt += extra[i] ?? []
        }
        program.operations = rebuilt
    }

    static func intArgument(_ op: MILOperation, _ p: String, _ constants: [String: MILConst]) -> [Int]? {
        guard let a = op.arguments(p)?.first else { return nil }
        switch a {
        case .value(let c): return c.intValues
        case .variable(let n): return constants[n]?.intValues
        }
    }

    /// The elements of a constant small enough to rearrange: inline values, or bytes of a whole-byte element type
    /// (fp16, fp32, int32 views of the ONNX file); nil for sub-byte packing and strings.
    static func inline(_ c: MILConst) -> MILConstData? {
        guard c.type.count <= 1 << 20, c.type.isStatic else { return nil }
        switch c.data {
        case .floats, .ints, .bools: return c.data
        case .bytes(let view):
            let width = c.type.dtype.bitWidth
            guard width > 0, width % 8 == 0, view.count == c.type.count * width / 8 else { return nil }
            return c.data
        case .strings: return nil
        }
    }

    /// The pieces of a constant split along an axis: each output's declared type, elements taken per outer index.
    static func split(_ op: MILOperation, _ constants: [String: MILConst]) -> [MILConst]? {
        guard let x = op.arguments("x")?.first?.variableName, let c = constants[x], let data = inline(c),
              let axisValue = intArgument(op, "axis", constants)?.first, c.type.rank > 0 else { return nil }
        let axis = axisValue < 0 ? axisValue + c.type.rank : axisValue
        guard axis >= 0, axis < c.type.rank else { return nil }
        let sizes = op.outputs.map { $0.type.shape.count == c.type.rank ? $0.type.shape[axis] : -1 }
        guard sizes.reduce(0, +) == c.type.shape[axis], op.outputs.allSatisfy({ o in
            o.type.dtype == c.type.dtype && o.type.isStatic && o.type.shape.enumerated().allSatisfy { $0.offset == axis || $0.element == c.type.shape[$0.offset] }
        }) else { return nil }
        let inner = c.type.shape[(axis + 1)...].reduce(1, *), outer = c.type.shape[..<axis].reduce(1, *)
        let row = c.type.shape[axis] * inner
        var start = 0
        var pieces: [MILConst] = []
        for (o, size) in zip(op.outputs, sizes) {
            var indices: [Int] = []
            indices.reserveCapacity(outer * size * inner)
            for b in 0..<outer {
                let from: Int = b * row + start * inner
                let to: Int = from + size * inner
                indices += from..<to
            }
            pieces.append(MILConst(o.type, gather(data, indices, count: c.type.count)))
            start += size
        }
        return pieces
    }

    /// A concat of constants along an axis (no interleave), as its declared type.
    static func concat(_ op: MILOperation, _ constants: [String: MILConst]) -> [MILConst]? {
        var interleave = false
        if let a = op.arguments("interleave")?.first {
            switch a {
            case .value(let c): if case .bools(let b) = c.data { interleave = b.first ?? true } else { interleave = true }
            case .variable(let n): if case .bools(let b)? = constants[n]?.data { interleave = b.first ?? true } else { interleave = true }
            }
        }
        guard !interleave, let args = op.arguments("values"), op.outputs.count == 1,
              let axisValue = intArgument(op, "axis", constants)?.first else { return nil }
        let out = op.outputs[0].type
        guard out.isStatic, out.rank > 0 else { return nil }
        let axis = axisValue < 0 ? axisValue + out.rank : axisValue
        guard axis >= 0, axis < out.rank else { return nil }
        var parts: [(MILConstData, Int, Int)] = []
        for a in args {
            guard let n = a.variableName, let c = constants[n], c.type.dtype == out.dtype, c.type.rank == out.rank,
                  let data = inline(c) else { return nil }
            parts.append((data, c.type.shape[axis...].reduce(1, *), c.type.count))
        }
        let outer = out.shape[..<axis].reduce(1, *)
        guard parts.map(\.1).reduce(0, +) == out.shape[axis...].reduce(1, *), out.count <= 1 << 16 else { return nil }
        // Per outer index, each part's row in turn.
        var result: MILConstData? = nil
        for b in 0..<outer {
            for (data, row, count) in parts {
                let piece = gather(data, Array((b * row)..<((b + 1) * row)), count: count)
                result = result.map { append($0, piece) } ?? piece
            }
        }
        return result.map { [MILConst(out, $0)] }
    }

    /// For each element of `out` (row-major), the element of a tensor of `shape` it reads: numpy broadcasting
    /// (right-aligned, size-1 axes repeat) or, with `wrap`, tiling (each axis read modulo its size).
    static func sourceIndices(out: [Int], shape: [Int], wrap: Bool) -> [Int]? {
        guard shape.count <= out.count else { return nil }
        let padded = Array(repeating: 1, count: out.count - shape.count) + shape
        guard zip(padded, out).allSatisfy({ $0 == $1 || $0 == 1 || (wrap && $0 > 0 && $1 % $0 == 0) }) else { return nil }
        var strides = Array(repeating: 1, count: padded.count)
        for d in stride(from: padded.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * padded[d + 1] }
        let count = out.reduce(1, *)
        var result: [Int] = []
        result.reserveCapacity(count)
        var index = Array(repeating: 0, count: out.count)
        for _ in 0..<count {
            var s = 0
            for d in 0..<out.count where padded[d] != 1 { s += (index[d] % padded[d]) * strides[d] }
            result.append(s)
            var d = out.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < out[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return result
    }

    /// A tile of a constant (reps as declared by the output type).
    static func tile(_ op: MILOperation, _ constants: [String: MILConst]) -> MILConst? {
        guard let x = op.arguments("x")?.first?.variableName, let c = constants[x], let data = inline(c) else { return nil }
        let out = op.outputs[0].type
        guard out.isStatic, out.dtype == c.type.dtype, out.rank == c.type.rank, out.count <= 1 << 20,
              let indices = sourceIndices(out: out.shape, shape: c.type.shape, wrap: true) else { return nil }
        return MILConst(out, gather(data, indices, count: c.type.count))
    }

    /// select(cond, a, b) of constants, broadcast to the output type (float and int32 results).
    static func select(_ op: MILOperation, _ constants: [String: MILConst]) -> MILConst? {
        guard let cn = op.arguments("cond")?.first?.variableName, let an = op.arguments("a")?.first?.variableName,
              let bn = op.arguments("b")?.first?.variableName, let cond = constants[cn], let a = constants[an], let b = constants[bn] else { return nil }
        let out = op.outputs[0].type
        guard out.isStatic, out.count <= 1 << 20, a.type.dtype == out.dtype, b.type.dtype == out.dtype,
              let ci = sourceIndices(out: out.shape, shape: cond.type.shape, wrap: false),
              let ai = sourceIndices(out: out.shape, shape: a.type.shape, wrap: false),
              let bi = sourceIndices(out: out.shape, shape: b.type.shape, wrap: false) else { return nil }
        let flags: [Bool]
        switch cond.data {
        case .bools(let v) where v.count == cond.type.count: flags = v
        case .bytes(let view) where cond.type.dtype == .bool && view.count == cond.type.count: flags = view.bytes.map { $0 != 0 }
        default: return nil
        }
        if out.dtype.isFloat, let av = a.floatValues, let bv = b.floatValues {
            return .floats((0..<out.count).map { flags[ci[$0]] ? av[ai[$0]] : bv[bi[$0]] }, out.dtype, shape: out.shape)
        }
        if out.dtype == .int32, let av = a.intValues, let bv = b.intValues {
            return MILConst(out, .ints((0..<out.count).map { Int32(clamping: flags[ci[$0]] ? av[ai[$0]] : bv[bi[$0]]) }))
        }
        return nil
    }

    /// The elements at `indices` of `data`, which holds `count` elements (bytes: count · width bytes).
    static func gather(_ data: MILConstData, _ indices: [Int], count: Int) -> MILConstData {
        switch data {
        case .floats(let v): return .floats(indices.map { v[$0] })
        case .ints(let v): return .ints(indices.map { v[$0] })
        case .bools(let v): return .bools(indices.map { v[$0] })
        case .strings: return data
        case .bytes(let view):
            let width = count == 0 ? 0 : view.count / count
            var out: [UInt8] = []
            out.reserveCapacity(indices.count * width)
            for i in indices { out += view.bytes[(i * width)..<((i + 1) * width)] }
            return .bytes(ByteView(copying: out))
        }
    }

    static func append(_ a: MILConstData, _ b: MILConstData) -> MILConstData {
        switch (a, b) {
        case (.floats(let x), .floats(let y)): return .floats(x + y)
        case (.ints(let x), .ints(let y)): return .ints(x + y)
        case (.bools(let x), .bools(let y)): return .bools(x + y)
        case (.bytes(let x), .bytes(let y)): return .bytes(ByteView(copying: Array(x.bytes) + Array(y.bytes)))
        default: return a
        }
    }

    static func permutation(_ op: MILOperation, _ constants: [String: MILConst]) -> [Int]? {
        guard let a = op.arguments("perm")?.first else { return nil }
        switch a {
        case .value(let c): return c.intValues
        case .variable(let n): return constants[n]?.intValues
        }
    }

    /// `data` (row-major, `shape`) transposed by `perm`; nil for packed bytes and strings.
    static func transposed(_ data: MILConstData, shape: [Int], perm: [Int]) -> MILConstData? {
        let rank = shape.count
        let p = perm.map { $0 < 0 ? $0 + rank : $0 }
        guard Set(p) == Set(0..<rank) else { return nil }
        let outShape = p.map { shape[$0] }
        var strides = Array(repeating: 1, count: rank)
        for d in stride(from: rank - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
        let count = shape.reduce(1, *)
        // Source index of each output element, walking the output in row-major order.
        var order: [Int] = []
        order.reserveCapacity(count)
        var index = Array(repeating: 0, count: rank)
        for _ in 0..<count {
            var s = 0
            for d in 0..<rank { s += index[d] * strides[p[d]] }
            order.append(s)
            var d = rank - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < outShape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        if case .strings = data { return nil }
        return gather(data, order, count: count)
    }
}
