/// A transpose that only swaps the last two dims, read by nothing but a matmul, becomes the matmul's transpose_x or
/// transpose_y flag (attention's q·kᵀ as exporters write it: ViT, DeiT, BERT).
public enum FuseTransposeMatmul: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_transpose_matmul"

    /// Rewrites `program` in place (see the type's description). One walk; the absorbed transposes are dropped at
    /// the end, and the flags become new constants inserted before their matmul.
    public static func run(_ program: MILProgram) {
        let uses = program.uses()
        let producers = program.producers()
        let outputs = Set(program.outputs)
        let constants = program.constants()
        var taken = program.definedNames()  // nested blocks' names too: names are unique across nesting
        var removed: Set<Int> = []
        var inserted: [Int: [MILOperation]] = [:]
        for (i, op) in program.operations.enumerated() where op.type == "matmul" {
            var current = op
            var added: [MILOperation] = []
            for (param, flag) in [("x", "transpose_x"), ("y", "transpose_y")] {
                guard let v = current.arguments(param)?.first?.variableName, let p = producers[v], !removed.contains(p),
                      program.operations[p].type == "transpose", uses[v]?.count == 1, !outputs.contains(v),
                      let source = program.operations[p].arguments("x")?.first?.variableName,
                      let permName = program.operations[p].arguments("perm")?.first?.variableName,
                      let perm = constants[permName]?.intValues, perm.count >= 2,
                      perm == Array(0..<(perm.count - 2)) + [perm.count - 1, perm.count - 2] else { continue }
                var old = false
                if let f = current.arguments(flag)?.first?.variableName, case .bools(let b)? = constants[f]?.data { old = b.first ?? false }
                var name = op.name + "_" + flag
                var k = 1
                while taken.contains(name) { name = "\(op.name)_\(flag)_\(k)"; k += 1 }
                taken.insert(name)
                added.append(MILOperation(type: "const", name: name, inputs: [], outputs: [MILVar(name: name, type: MILTensorType(.bool, []))],
                                          value: .scalar(!old), source: op.source))
                if let k = current.inputs.firstIndex(where: { $0.name == param }) { current.inputs[k].arguments = [.variable(source)] }
                if let k = current.inputs.firstIndex(where: { $0.name == flag }) { current.inputs[k].arguments = [.variable(name)] }
                else { current.inputs.append((flag, [.variable(name)])) }
                removed.insert(p)
            }
            if !added.isEmpty {
                program.operations[i] = current
                inserted[i] = added
            }
        }
        guard !removed.isEmpty else { return }
        var rebuilt: [MILOperation] = []
        for (i, op) in program.operations.enumerated() where !removed.contains(i) {
            rebuilt += inserted[i] ?? []
            rebuilt.append(op)
        }
        program.operations = rebuilt
    }
}
