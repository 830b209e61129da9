/// A transpose that moves only axes of size 1 (the other axes keep their relative order) leaves the elements in the
/// same row-major order: it is a reshape to its output shape. As a reshape it joins the reshape chains around it
/// (`merge_layout_chains`), which `no_op_elimination` then drops when the chain ends in the shape it began with —
/// as the dynamo exporter's LSTM output does: expand_dims to [seq, 1, batch, hidden], transpose(0, 2, 1, 3) with
/// batch 1, reshape back to [seq, batch, hidden]. Runs after the fusions that read transposes
/// (`fuse_transpose_matmul`, attention's key), so a flag or a fused op still takes a transpose they can absorb.
public enum TransposeUnitAxesToReshape: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "transpose_unit_axes_to_reshape"

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let types = program.types()
        var constants = program.constants()
        var inserted: [Int: MILOperation] = [:]
        var taken = program.definedNames()  // nested blocks' names too: names are unique across nesting
        for i in program.operations.indices {
            let op = program.operations[i]
            guard op.type == "transpose", op.outputs.count == 1, let x = op.arguments("x")?.first?.variableName,
                  let xt = types[x], xt.isStatic, op.outputs[0].type.isStatic,
                  let perm = FoldConstantLayout.permutation(op, constants), perm.count == xt.rank else { continue }
            let p = perm.map { $0 < 0 ? $0 + xt.rank : $0 }
            let moved = p.filter { xt.shape[$0] != 1 }
            guard moved == moved.sorted(), !xt.shape.isEmpty else { continue }
            var name = op.name + "_shape", k = 1
            while taken.contains(name) { name = "\(op.name)_shape_\(k)"; k += 1 }
            taken.insert(name)
            let value = MILConst.ints(op.outputs[0].type.shape)
            constants[name] = value
            inserted[i] = MILOperation(type: "const", name: name, inputs: [], outputs: [MILVar(name: name, type: value.type)],
                                       value: value, source: op.source)
            program.operations[i] = MILOperation(type: "reshape", name: op.name, inputs: [("x", [.variable(x)]), ("shape", [.variable(name)])],
                                                 outputs: op.outputs, source: op.source)
        }
        guard !inserted.isEmpty else { return }
        var rebuilt: [MILOperation] = []
        rebuilt.reserveCapacity(program.operations.count + inserted.count)
        for (i, op) in program.operations.enumerated() {
            if let c = inserted[i] { rebuilt.append(c) }
            rebuilt.append(op)
        }
        program.operations = rebuilt
    }
}
