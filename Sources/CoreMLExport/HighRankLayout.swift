import GraphIR
import Ops
import Passes

/// Reshape → Transpose → Reshape chains that pass through rank 6 or more (Swin's window partition and reverse:
/// `[B, H/w, w, W/w, w, C]` permuted `[0, 1, 3, 2, 4, 5]`) rewritten at rank ≤ 5, which is all Core ML holds
/// (`coreml-max-rank`). A transpose moves runs of axes that stay adjacent as one block, and axes of size 1 move
/// nothing: merging each run into one axis and dropping size-1 axes gives the same elements in the same order at a
/// lower rank. The rewrite applies when
/// - the transpose's input is a Reshape's output read by nothing else (its target shape becomes the merged shape),
/// - every reader of the transpose's output is a Reshape's data input (each gets its own static output shape, since
///   a 0 in its target would now copy another dim), and neither value is a graph output,
/// - all shapes are static and the merged rank is at most `CoreMLLimits.maxRank`.
/// coremltools' `expand_high_rank_reshape_and_transpose` pass handles the same pattern (there by splitting the
/// transpose); the rewrite here is done on the ONNX graph before lowering, so every later step sees rank ≤ 5.
enum HighRankLayout {
    /// The axes of a transpose of `dims` by `perm` merged: the lower-rank input shape and permutation, or nil when
    /// nothing merges below `maxRank`.
    static func merge(dims: [Int], perm: [Int]) -> (dims: [Int], perm: [Int])? {
        guard dims.count == perm.count, perm.sorted() == Array(0..<dims.count) else { return nil }
        // Size-1 axes hold nothing to move: drop them and renumber the rest.
        let kept = (0..<dims.count).filter { dims[$0] != 1 }
        var newIndex = [Int](repeating: -1, count: dims.count)
        for (i, a) in kept.enumerated() { newIndex[a] = i }
        let keptDims = kept.map { dims[$0] }
        let keptPerm = perm.filter { dims[$0] != 1 }.map { newIndex[$0] }
        // Runs of input axes that stay consecutive in the output order become one axis.
        var groups: [[Int]] = []
        for a in keptPerm {
            if let last = groups.last?.last, a == last + 1 { groups[groups.count - 1].append(a) } else { groups.append([a]) }
        }
        let byInputOrder = groups.indices.sorted { groups[$0][0] < groups[$1][0] }
        var merged: [Int] = []
        var position = [Int](repeating: 0, count: groups.count)
        for (i, g) in byInputOrder.enumerated() {
            position[g] = i
            merged.append(groups[g].reduce(1) { $0 * keptDims[$1] })
        }
        let mergedPerm = groups.indices.map { position[$0] }
        guard merged.count <= CoreMLLimits.maxRank else { return nil }
        if merged.isEmpty { return ([1], [0]) }
        return (merged, mergedPerm)
    }

    /// The model with every such chain rewritten; nil when there is none.
    static func rewrite(_ model: Model, inference: ShapeInferenceResult) -> Model? {
        var graph = model.graph
        func staticDims(_ name: String) -> [Int]? {
            guard case .tensor(let t)? = inference.types[name], let shape = t.shape else { return nil }
            var out: [Int] = []
            for d in shape { guard case .value(let v) = d else { return nil }; out.append(v) }
            return out
        }
        var producer: [String: Int] = [:]
        var readers: [String: [(node: Int, slot: Int)]] = [:]
        for (i, n) in graph.nodes.enumerated() {
            for o in n.outputs where !o.isEmpty { producer[o] = i }
            for (slot, input) in n.inputs.enumerated() where !input.isEmpty { readers[input, default: []].append((i, slot)) }
            for a in n.attributes { for g in a.value.subgraphs { for r in g.outerScopeReferences { readers[r, default: []].append((i, -1)) } } }
        }
        let graphOutputs = Set(graph.outputs.map(\.name))
        var used = Set<String>()
        for n in graph.nodes { used.formUnion(n.outputs); used.insert(n.name) }
        for t in graph.initializers { used.insert(t.name) }
        for v in graph.inputs { used.insert(v.name) }
        func freshName(_ stem: String) -> String {
            var candidate = stem, k = 1
            while used.contains(candidate) { candidate = "\(stem)_\(k)"; k += 1 }
            used.insert(candidate)
            return candidate
        }
        func shapeConstant(_ dims: [Int], stem: String) -> String? {
            let name = freshName(stem)
            guard let t = TensorValue(dataType: .int64, dims: [dims.count], elements: .ints(dims.map(Int64.init))).tensor(named: name) else { return nil }
            graph.initializers.append(t)
            return name
        }
        func isONNX(_ n: Node) -> Bool { n.domain.isEmpty || n.domain == "ai.onnx" }

        var changed = false
        for ti in graph.nodes.indices {
            let t = graph.nodes[ti]
            guard t.opType == "Transpose", isONNX(t), t.inputs.count == 1, t.outputs.count == 1,
                  let x = t.inputs.first, let y = t.outputs.first,
                  let xDims = staticDims(x), xDims.count > CoreMLLimits.maxRank, !xDims.contains(0),
                  !graphOutputs.contains(x), !graphOutputs.contains(y),
                  let ri = producer[x], graph.nodes[ri].opType == "Reshape", isONNX(graph.nodes[ri]),
                  graph.nodes[ri].outputs.count == 1, graph.nodes[ri].inputs.count >= 2,
                  readers[x]?.count == 1,
                  let yReaders = readers[y], !yReaders.isEmpty,
                  yReaders.allSatisfy({ graph.nodes[$0.node].opType == "Reshape" && isONNX(graph.nodes[$0.node]) && $0.slot == 0 })
            else { continue }
            let perm: [Int]
            if case .ints(let p)? = t.attribute("perm")?.value { perm = p.map { Int(clamping: $0) } } else { perm = Array((0..<xDims.count).reversed()) }
            guard let (mergedDims, mergedPerm) = merge(dims: xDims, perm: perm) else { continue }
            var targets: [(node: Int, dims: [Int])] = []
            for r in yReaders {
                guard let out = graph.nodes[r.node].outputs.first, let dims = staticDims(out) else { targets = []; break }
                targets.append((r.node, dims))
            }
            guard targets.count == yReaders.count else { continue }
            // The Reshape into the high rank now targets the merged shape; the transpose permutes the merged axes.
            guard let inShape = shapeConstant(mergedDims, stem: x + "/merged_shape") else { continue }
            graph.nodes[ri].inputs[1] = inShape
            var transpose = graph.nodes[ti]
            transpose.attributes.removeAll { $0.name == "perm" }
            transpose.attributes.append(Attribute(name: "perm", value: .ints(mergedPerm.map(Int64.init))))
            graph.nodes[ti] = transpose
            for target in targets {
                guard let outShape = shapeConstant(target.dims, stem: (graph.nodes[target.node].outputs.first ?? y) + "/static_shape") else { continue }
                graph.nodes[target.node].inputs[1] = outShape
            }
            changed = true
        }
        guard changed else { return nil }
        var rewritten = model
        rewritten.graph = graph
        return rewritten
    }
}
