/// A node whose outputs stayed (partly) unknown after shape inference, and why (reported by `inspect --shapes`
/// and recorded in a package's report.json).
public struct UnresolvedNode: Codable, Sendable, Equatable {
    /// `main`, or the path of the subgraph holding the node (`main/NODE.ATTRIBUTE`).
    public var graph: String
    /// The node's name, or `#INDEX` when it has none.
    public var node: String
    /// The node's op type; empty when the entry is about a whole subgraph.
    public var opType: String
    /// The node's domain, "" for the default ONNX domain.
    public var domain: String
    /// Why the outputs stayed unknown, as one sentence for the report.
    public var reason: String

    /// Creates an entry.
    public init(graph: String, node: String, opType: String, domain: String, reason: String) {
        self.graph = graph
        self.node = node
        self.opType = opType
        self.domain = domain
        self.reason = reason
    }
}

extension ValueType {
    /// A tensor with a dtype and a known rank.
    public var hasRank: Bool {
        if case .tensor(let t) = self { return t.elementType != nil && t.shape != nil }
        return false
    }

    /// A tensor with a dtype and every dim a number.
    public var isStatic: Bool {
        if case .tensor(let t) = self, t.elementType != nil, let s = t.shape {
            return s.allSatisfy { if case .value = $0 { return true }; return false }
        }
        return false
    }
}
