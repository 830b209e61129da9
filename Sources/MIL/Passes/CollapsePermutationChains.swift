/// A chain of transposes and of reshapes that only insert or drop axes of size 1 (squeeze, expand_dims, or a reshape
/// keeping the other dims in order) permutes its input's axes and nothing else. When the chain's result has its
/// input's rank it becomes one transpose of the input (the input's unit axes fill the result's unit positions in
/// order), and `no_op_elimination` drops it when the permutation is the identity; a chain of three ops or more
/// between different ranks becomes a reshape to the result's rank and one transpose (or the reshape alone). The dynamo exporter writes kᵀ of
/// attention this way — reshape [1, H, S, E] → [H, S, E], transpose(0, 2, 1), reshape → [1, H, E, S] — after the
/// heads' transpose; the four ops become one transpose (timm's DeiT, whose q, k, v come out of a split: a reshape
/// and a transpose, which then becomes matmul's transpose_y). Every intermediate is read only by the next op of the chain
/// and is not a block output. One walk in program order: each op extends its input's chain.
public enum CollapsePermutationChains: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "collapse_permutation_chains"

    static let reshapes: Set<String> = ["reshape", "squeeze", "expand_dims"]

    /// Where a chain's result comes from: its start, and for each result axis the start's axis (nil: a unit axis).
    struct Chain {
        var start: String
        var axes: [Int?]
        var length: Int
    }

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let types = program.types()
        var uses = program.uses().mapValues(\.count)
        for o in program.outputs { uses[o, default: 0] += 1 }
        var constants = program.constants()
        var taken = program.definedNames()  // nested blocks' names too: names are unique across nesting
        var chains: [String: Chain] = [:]
        var inserted: [Int: [MILOperation]] = [:]
        for i in program.operations.indices {
            let op = program.operations[i]
            guard reshapes.contains(op.type) || op.type == "transpose", op.outputs.count == 1,
                  let x = op.arguments("x")?.first?.variableName, let xt = types[x], xt.isStatic else { continue }
            let out = op.outputs[0].type
            guard out.isStatic else { continue }
            let previous = uses[x] == 1 ? chains[x] : nil
            let input = previous ?? Chain(start: x, axes: xt.shape.enumerated().map { $0.element == 1 ? nil : $0.offset }, length: 0)
            var axes: [Int?]
            if op.type == "transpose" {
                guard let perm = FoldConstantLayout.permutation(op, constants), perm.count == xt.rank else { continue }
                axes = perm.map { input.axes[$0 < 0 ? $0 + xt.rank : $0] }
            } else {
                // Only unit axes come or go: the other dims are the same, in the same order.
                guard xt.shape.filter({ $0 != 1 }) == out.shape.filter({ $0 != 1 }) else { continue }
                var moved = input.axes.enumerated().filter { xt.shape[$0.offset] != 1 }.map(\.element).makeIterator()
                axes = out.shape.map { $0 == 1 ? nil : moved.next() ?? nil }
            }
            let chain = Chain(start: input.start, axes: axes, length: input.length + 1)
            chains[op.outputs[0].name] = chain
            guard chain.length >= 2, let st = types[chain.start] else { continue }
            func fresh(_ base: String) -> String {
                var name = base, k = 1
                while taken.contains(name) { name = "\(base)_\(k)"; k += 1 }
                taken.insert(name)
                return name
            }
            func constOp(_ base: String, _ value: MILConst) -> MILOperation {
                let name = fresh(base)
                constants[name] = value
                return MILOperation(type: "const", name: name, inputs: [], outputs: [MILVar(name: name, type: value.type)], value: value, source: op.source)
            }
            var added: [MILOperation] = []
            var source = chain.start, sourceShape = st.shape
            if st.rank != out.rank {
                // A reshape first (3 ops or more become 2): the start's real dims in its order, with the result's unit
                // axes where the result has them; then the transpose that orders the real axes.
                guard chain.length >= 3 else { continue }
                var real = st.shape.filter { $0 != 1 }.makeIterator()
                sourceShape = out.shape.map { $0 == 1 ? 1 : real.next() ?? -1 }
                let shapeConst = constOp(op.name + "_shape", .ints(sourceShape))
                let reshaped = fresh(op.name + "_reshaped")
                added += [shapeConst, MILOperation(type: "reshape", name: reshaped,
                                                   inputs: [("x", [.variable(chain.start)]), ("shape", [.variable(shapeConst.name)])],
                                                   outputs: [MILVar(name: reshaped, type: out.with(shape: sourceShape))], source: op.source)]
                // The reshaped tensor's real axes, in start order, stand where the result's real axes are.
                let startReal = st.shape.indices.filter { st.shape[$0] != 1 }
                let positions = out.shape.indices.filter { out.shape[$0] != 1 }
                let position = Dictionary(uniqueKeysWithValues: zip(startReal, positions))
                axes = axes.map { $0.flatMap { position[$0] } }
                source = reshaped
            }
            var units = sourceShape.indices.filter { sourceShape[$0] == 1 }.makeIterator()
            var perm: [Int] = []
            for a in axes {
                guard let p = a ?? units.next() else { break }
                perm.append(p)
            }
            guard perm.count == out.rank, Set(perm).count == out.rank, perm.map({ sourceShape[$0] }) == out.shape else { continue }
            if perm == Array(0..<out.rank), let reshape = added.last {
                // The reshape alone is the result: it takes the op's place and name.
                added.removeLast()
                program.operations[i] = MILOperation(type: "reshape", name: op.name, inputs: reshape.inputs, outputs: op.outputs, source: op.source)
            } else {
                let permConst = constOp(op.name + "_perm", .ints(perm))
                added.append(permConst)
                program.operations[i] = MILOperation(type: "transpose", name: op.name, inputs: [("x", [.variable(source)]), ("perm", [.variable(permConst.name)])],
                                                     outputs: op.outputs, source: op.source)
            }
            inserted[i] = added
            uses[x, default: 0] -= 1
            uses[chain.start, default: 0] += 1
        }
        guard !inserted.isEmpty else { return }
        var rebuilt: [MILOperation] = []
        rebuilt.reserveCapacity(program.operations.count + inserted.count)
        for (i, op) in program.operations.enumerated() {
            rebuilt += inserted[i] ?? []
            rebuilt.append(op)
        }
        program.operations = rebuilt
        DeadCodeElimination.run(program)
    }
}
