import GraphIR

extension AuditReport {
    /// Each node's unit by `NodePath.key`, as the package manifest records them.
    public var unitsByNodeKey: [String: String] {
        var units: [String: String] = [:]
        for n in nodes { units[NodePath.key(graph: n.graph, index: n.index)] = n.unit }
        return units
    }
}
