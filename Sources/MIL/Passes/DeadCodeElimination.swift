/// Removes ops none of whose outputs is used by another op or the block outputs, last to first, so chains of
/// unused ops go in one pass. Constants removed here are never given storage, so their bytes are never written.
public enum DeadCodeElimination: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "dead_code_elimination"

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        var live = Set(program.outputs)
        var removed: Set<Int> = []
        for i in program.operations.indices.reversed() {
            let op = program.operations[i]
            if op.outputs.contains(where: { live.contains($0.name) }) {
                for v in op.usedVariables { live.insert(v) }
            } else {
                removed.insert(i)
            }
        }
        program.remove(removed)
    }
}
