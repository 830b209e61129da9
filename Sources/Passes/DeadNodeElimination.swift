import GraphIR

/// Dead-node elimination: removes every node none of whose outputs is read (by a later node, a subgraph, or as a
/// graph output), Constant nodes included, in every graph. Initializers that constant folding created go too once
/// nothing reads them; the model's own initializers always stay (unread ones too: they are the model's data, and
/// `export` gives every one of them back). Graph inputs and outputs never change.
public struct DeadNodeElimination: GraphPass {
    /// The pass's name, as `PipelineError` reports it.
    public let name = "eliminate-dead-nodes"

    /// The pass; it has no settings.
    public init() {}

    /// Removes unread nodes and the unread initializers constant folding created; returns whether anything went.
    public func run(_ model: inout Model, context: PassContext) throws -> Bool {
        var removedNodes = 0
        var removedInitializers = 0
        let removable = context.foldedInitializers
        model.graph = Self.eliminate(model.graph, removable: removable, nodes: &removedNodes, initializers: &removedInitializers)
        context.removedNodes += removedNodes
        context.removedInitializers += removedInitializers
        return removedNodes + removedInitializers > 0
    }

    static func eliminate(_ graph: Graph, removable: Set<String>, nodes removedNodes: inout Int, initializers removedInitializers: inout Int) -> Graph {
        var graph = graph
        // Subgraphs first, so what they still capture from outside is known.
        for n in graph.nodes.indices {
            for a in graph.nodes[n].attributes.indices {
                switch graph.nodes[n].attributes[a].value {
                case .graph(let g):
                    graph.nodes[n].attributes[a].value = .graph(eliminate(g, removable: removable, nodes: &removedNodes, initializers: &removedInitializers))
                case .graphs(let gs):
                    graph.nodes[n].attributes[a].value = .graphs(gs.map { eliminate($0, removable: removable, nodes: &removedNodes, initializers: &removedInitializers) })
                default:
                    break
                }
            }
        }
        var live = Set(graph.outputs.map(\.name))
        var kept: [Node] = []
        var gone = Set<String>()
        for node in graph.nodes.reversed() {
            let used = node.outputs.isEmpty || node.outputs.contains { !$0.isEmpty && live.contains($0) }
            guard used else {
                removedNodes += 1
                gone.formUnion(node.outputs)
                continue
            }
            kept.append(node)
            for input in node.inputs where !input.isEmpty { live.insert(input) }
            for attribute in node.attributes {
                for sub in attribute.value.subgraphs { live.formUnion(sub.outerScopeReferences) }
            }
        }
        graph.nodes = kept.reversed()
        let before = graph.initializers.count
        let inputs = Set(graph.inputs.map(\.name))  // an initializer listed as an input is part of the interface
        graph.initializers.removeAll { tensor in
            let dead = !live.contains(tensor.name) && removable.contains(tensor.name) && !inputs.contains(tensor.name)
            if dead { gone.insert(tensor.name) }
            return dead
        }
        removedInitializers += before - graph.initializers.count
        // value_info of values that no longer exist goes with them.
        graph.valueInfo.removeAll { gone.contains($0.name) }
        return graph
    }
}
