/// x · sigmoid(x) → silu(x) (EfficientNet, MobileNet v3, YOLO and Llama MLPs write it decomposed).
public enum FuseSilu: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_silu"

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let producers = program.producers()
        let uses = program.uses()
        let outputs = Set(program.outputs)
        var removed: Set<Int> = []
        for i in program.operations.indices where program.operations[i].type == "mul" {
            let op = program.operations[i]
            guard let x = op.arguments("x")?.first?.variableName, let y = op.arguments("y")?.first?.variableName else { continue }
            for (gate, other) in [(y, x), (x, y)] {
                guard let s = producers[gate], !removed.contains(s), program.operations[s].type == "sigmoid",
                      program.operations[s].arguments("x")?.first?.variableName == other,
                      uses[gate]?.count == 1, !outputs.contains(gate) else { continue }
                program.operations[i] = MILOperation(type: "silu", name: op.name, inputs: [("x", [.variable(other)])],
                                                     outputs: op.outputs, source: op.source)
                removed.insert(s)
                break
            }
        }
        program.remove(removed)
    }
}
