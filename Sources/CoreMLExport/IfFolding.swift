import GraphIR
import Passes

/// `If` nodes whose condition is known once inputs are pinned (exporters branch on shapes) are replaced by the
/// branch they take: its nodes join the main graph, values branchValues to the branch get the If's name as a prefix, its
/// initializers become the main graph's, and each branch output reaches the If's output through an Identity. A branch
/// that itself holds subgraphs stays (control flow is not lowered).
enum IfFolding {
    /// The model with every decidable If expanded; nil when there is none.
    static func fold(_ model: Model, inference: ShapeInferenceResult) -> Model? {
        var graph = model.graph
        var used = Set<String>()
        for n in graph.nodes { used.formUnion(n.outputs); used.insert(n.name) }
        for t in graph.initializers { used.insert(t.name) }
        for v in graph.inputs { used.insert(v.name) }
        var nodes: [Node] = []
        var changed = false
        for node in graph.nodes {
            guard node.opType == "If", node.domain.isEmpty || node.domain == "ai.onnx", let cond = node.inputs.first,
                  let value = inference.knownValues[cond], value.count == 1, case .bools(let b) = value.elements,
                  case .graph(let branch)? = node.attribute(b[0] ? "then_branch" : "else_branch")?.value,
                  branch.outputs.count == node.outputs.count,
                  !branch.nodes.contains(where: { n in n.attributes.contains { !$0.value.subgraphs.isEmpty } }) else {
                nodes.append(node)
                continue
            }
            let prefix = (node.name.isEmpty ? node.outputs.first ?? "If" : node.name) + "/"
            var branchValues = Set(branch.initializers.map(\.name))
            for n in branch.nodes { branchValues.formUnion(n.outputs.filter { !$0.isEmpty }) }
            var rename: [String: String] = [:]
            func mapped(_ name: String) -> String {
                guard branchValues.contains(name) else { return name }
                if let r = rename[name] { return r }
                var candidate = prefix + name, k = 1
                while used.contains(candidate) { candidate = "\(prefix)\(name)_\(k)"; k += 1 }
                used.insert(candidate)
                rename[name] = candidate
                return candidate
            }
            for t in branch.initializers {
                var copy = t
                copy.name = mapped(t.name)
                graph.initializers.append(copy)
            }
            for inner in branch.nodes {
                var copy = inner
                copy.name = inner.name.isEmpty ? "" : mapped(inner.name)
                copy.inputs = inner.inputs.map { $0.isEmpty ? $0 : mapped($0) }
                copy.outputs = inner.outputs.map { $0.isEmpty ? $0 : mapped($0) }
                copy.origin = node.origin
                nodes.append(copy)
            }
            for (out, branchOut) in zip(node.outputs, branch.outputs) where !out.isEmpty {
                var identity = Node(name: prefix + "output/" + out, opType: "Identity", inputs: [mapped(branchOut.name)], outputs: [out])
                identity.origin = node.origin
                nodes.append(identity)
            }
            changed = true
        }
        guard changed else { return nil }
        graph.nodes = nodes
        var folded = model
        folded.graph = graph
        return folded
    }
}
