/// Names where a node lies in a model: the path of its graph ("" for the main graph; a subgraph appends the owning
/// node's label and the attribute, e.g. "if_node/then_branch", "loop/body", "n/branches[1]") and its index there.
/// The audit and the package manifest use the same keys, so a per-node result can be stored and found again.
public enum NodePath {
    /// The path of a subgraph held by `node` (at `index` in the graph at `parent`) in attribute `attribute`;
    /// `position` is the subgraph's place in a GRAPHS attribute.
    public static func subgraph(parent: String, node: Node, index: Int, attribute: String, position: Int?) -> String {
        let nodeName = node.name.isEmpty ? "#\(index)" : node.name
        let attr = position.map { "\(attribute)[\($0)]" } ?? attribute
        return (parent.isEmpty ? "" : parent + "/") + nodeName + "/" + attr
    }

    /// "graph#index": a node's key.
    public static func key(graph: String, index: Int) -> String { "\(graph)#\(index)" }
}

extension Graph {
    /// Calls `body` for every node of this graph and its subgraphs, depth first in graph order, with the node's graph
    /// path and index (see `NodePath`).
    public func forEachNode(path: String = "", _ body: (_ graph: String, _ index: Int, _ node: Node) throws -> Void) rethrows {
        for (index, node) in nodes.enumerated() {
            try body(path, index, node)
            for attribute in node.attributes {
                switch attribute.value {
                case .graph(let g):
                    try g.forEachNode(path: NodePath.subgraph(parent: path, node: node, index: index,
                                                              attribute: attribute.name, position: nil), body)
                case .graphs(let gs):
                    for (k, g) in gs.enumerated() {
                        try g.forEachNode(path: NodePath.subgraph(parent: path, node: node, index: index,
                                                                  attribute: attribute.name, position: k), body)
                    }
                default: break
                }
            }
        }
    }
}
