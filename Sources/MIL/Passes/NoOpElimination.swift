/// Removes ops that return their input unchanged: `identity`, `reshape` to the same shape, `cast` to the same type,
/// `transpose` by the identity permutation, `squeeze`/`expand_dims`/`tile`/`slice_by_index`/`pad` that change
/// nothing, and `add`/`sub` of an all-zero constant or `mul`/`real_div` by an all-ones constant that does not
/// broadcast the other operand (the dynamo exporter's attention adds a zero mask when there is none). Uses of the output read the input instead. When the output is a block output (a model output keeps its
/// name), the input's producer takes the output's name instead, unless the input is a function input, a constant
/// or another block output (then the op stays: Core ML needs an op to define the output).
public enum NoOpElimination: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "no_op_elimination"

    static let candidates: Set<String> = ["identity", "reshape", "cast", "transpose", "squeeze", "expand_dims", "tile",
                                          "slice_by_index", "pad"]

    /// Whether `op` returns its input `x` unchanged.
    static func isNoOp(_ op: MILOperation, types: [String: MILTensorType], constants: [String: MILConst] = [:]) -> String? {
        if let neutral = neutralElement[op.type] {
            return neutralOperand(op, neutral, types: types, constants: constants)
        }
        guard candidates.contains(op.type), op.outputs.count == 1,
              let x = op.arguments("x"), x.count == 1, let input = x[0].variableName,
              let inputType = types[input], inputType == op.outputs[0].type else { return nil }
        // With a dim known only at run time, equal types do not mean equal shapes ([1, ?] sliced to [1, ?]).
        if !["identity", "cast", "transpose"].contains(op.type), !inputType.isStatic { return nil }
        switch op.type {
        case "transpose":
            // Same type is not enough ([2, 2] transposed): the permutation must be the identity.
            guard let perm = constantInts(op, "perm", types: types), perm == Array(0..<perm.count) else { return nil }
        case "slice_by_index":
            // Same shape with stride 1 everywhere is the whole tensor; a reversing stride keeps the shape.
            if let stride = constantInts(op, "stride", types: types), stride.contains(where: { $0 != 1 }) { return nil }
            if op.arguments("stride") != nil, constantInts(op, "stride", types: types) == nil { return nil }
        case "pad":
            // A reflect/replicate pad of zero width, or a constant pad of zero width: same shape means no padding.
            break
        default:
            break
        }
        return input
    }

    /// The element that leaves the other operand unchanged, per binary op.
    static let neutralElement: [String: Float] = ["add": 0, "sub": 0, "mul": 1, "real_div": 1]

    /// The operand returned unchanged by a binary op with a constant of `neutral`s (y for sub and real_div).
    static func neutralOperand(_ op: MILOperation, _ neutral: Float, types: [String: MILTensorType],
                               constants: [String: MILConst]) -> String? {
        guard op.outputs.count == 1, let x = op.arguments("x")?.first?.variableName, let y = op.arguments("y")?.first?.variableName else { return nil }
        let pairs = op.type == "add" || op.type == "mul" ? [(x, y), (y, x)] : [(x, y)]
        for (kept, c) in pairs {
            guard types[kept] == op.outputs[0].type, let value = constants[c], value.type.dtype.isFloat,
                  let values = value.floatValues, values.allSatisfy({ $0 == neutral }) else { continue }
            return kept
        }
        return nil
    }

    static func constantInts(_ op: MILOperation, _ param: String, types: [String: MILTensorType]) -> [Int]? {
        guard let args = op.arguments(param), args.count == 1 else { return nil }
        if case .value(let c) = args[0] { return c.intValues }
        return nil
    }

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let types = program.types()
        let constants = program.constants()
        let blockOutputs = Set(program.outputs)
        // Sweep 1, linear: no-ops whose output is internal; later ops read the (resolved) input instead.
        var alias: [String: String] = [:]
        func resolve(_ name: String) -> String {
            var n = name
            while let a = alias[n] { n = a }
            return n
        }
        var removed: Set<Int> = []
        for i in program.operations.indices {
            // Readers inside nested blocks (a loop body) are renamed too.
            if !alias.isEmpty { program.operations[i].renameUses { alias[$0] != nil ? resolve($0) : nil } }
            let op = resolvedConstants(program.operations[i], constants)
            guard let input = isNoOp(op, types: types, constants: constants), !blockOutputs.contains(op.outputs[0].name) else { continue }
            alias[op.outputs[0].name] = input
            removed.insert(i)
        }
        program.remove(removed)
        // Sweep 2, once per block output: the input's producer takes the output's name.
        let inputs = Set(program.inputs.map(\.name))
        for output in program.outputs {
            let producers = program.producers()
            guard let i = producers[output] else { continue }
            let op = resolvedConstants(program.operations[i], constants)
            guard let input = isNoOp(op, types: types, constants: constants), !inputs.contains(input), constants[input] == nil,
                  !blockOutputs.contains(input), let p = producers[input], program.operations[p].type != "const" else { continue }
            program.remove([i])
            let q = p < i ? p : p - 1
            for k in program.operations[q].outputs.indices where program.operations[q].outputs[k].name == input {
                program.operations[q].outputs[k].name = output
            }
            program.replaceUses(of: input, with: output)
        }
    }

    /// `op` with perm and stride read from const ops, so the identity checks see their values.
    static func resolvedConstants(_ op: MILOperation, _ constants: [String: MILConst]) -> MILOperation {
        var op = op
        for (k, entry) in op.inputs.enumerated() where entry.name == "perm" || entry.name == "stride" {
            if let v = entry.arguments.first?.variableName, let c = constants[v] { op.inputs[k].arguments = [.value(c)] }
        }
        return op
    }
}
