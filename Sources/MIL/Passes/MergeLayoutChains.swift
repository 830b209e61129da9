/// Chains of layout ops collapse into one: a reshape, squeeze or expand_dims of another (whose result nothing else
/// reads) becomes one reshape of the first input to the final shape; a transpose of a transpose becomes one
/// transpose by the composed permutation (no-op elimination then drops an identity). Exporters write such chains
/// around attention heads and channel shuffles (ShuffleNet, ViT, BERT).
public enum MergeLayoutChains: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "merge_layout_chains"

    static let reshapes: Set<String> = ["reshape", "squeeze", "expand_dims"]

    /// Rewrites `program` in place (see the type's description). One walk in program order: a merged op reads its
    /// chain's first input; the op it absorbed is dropped and the new constants are inserted at the end (linear).
    public static func run(_ program: MILProgram) {
        var uses = program.uses().mapValues(\.count)
        let producers = program.producers()
        let outputs = Set(program.outputs)
        var constants = program.constants()
        var taken = program.definedNames()  // nested blocks' names too: names are unique across nesting
        func fresh(_ base: String) -> String {
            var candidate = base, k = 1
            while taken.contains(candidate) { candidate = "\(base)_\(k)"; k += 1 }
            taken.insert(candidate)
            return candidate
        }
        var removed: Set<Int> = []
        var inserted: [Int: MILOperation] = [:]
        for i in program.operations.indices {
            let op = program.operations[i]
            guard let x = op.arguments("x")?.first?.variableName, let p = producers[x], !removed.contains(p), uses[x] == 1,
                  !outputs.contains(x), let source = program.operations[p].arguments("x")?.first?.variableName else { continue }
            let inner = program.operations[p]
            let constName: String, value: MILConst, type: String
            if reshapes.contains(op.type), reshapes.contains(inner.type), !op.outputs[0].type.shape.isEmpty {
                constName = fresh(op.name + "_shape")
                value = .ints(op.outputs[0].type.shape)
                type = "reshape"
            } else if op.type == "transpose", inner.type == "transpose", let outer = perm(op, constants), let first = perm(inner, constants),
                      outer.count == first.count {
                constName = fresh(op.name + "_perm")
                value = .ints(outer.map { first[$0] })
                type = "transpose"
            } else {
                continue
            }
            inserted[i] = MILOperation(type: "const", name: constName, inputs: [],
                                       outputs: [MILVar(name: constName, type: value.type)], value: value, source: op.source)
            program.operations[i] = MILOperation(type: type, name: op.name,
                                                 inputs: [("x", [.variable(source)]), (type == "reshape" ? "shape" : "perm", [.variable(constName)])],
                                                 outputs: op.outputs, source: op.source)
            constants[constName] = value
            removed.insert(p)
            uses[x] = 0
        }
        guard !removed.isEmpty else { return }
        var rebuilt: [MILOperation] = []
        rebuilt.reserveCapacity(program.operations.count + inserted.count)
        for (i, op) in program.operations.enumerated() where !removed.contains(i) {
            if let c = inserted[i] { rebuilt.append(c) }
            rebuilt.append(op)
        }
        program.operations = rebuilt
    }

    static func perm(_ op: MILOperation, _ constants: [String: MILConst]) -> [Int]? {
        guard let a = op.arguments("perm")?.first else { return nil }
        switch a {
        case .value(let c): return c.intValues
        case .variable(let n): return constants[n]?.intValues
        }
    }
}
