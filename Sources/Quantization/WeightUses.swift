import GraphIR

/// How a graph's nodes read each value, to decide whether a tensor is a weight an integer format may quantize and
/// along which axes: the output-channel axis (per-channel scales) and the reduction axis (blocks run along it).
///
/// | consumer input | layout | channel | reduction |
/// |---|---|---|---|
/// | Conv W | [M, C/g, k…] | 0 | 1 |
/// | ConvTranspose W | [C, M/g, k…] | 1 | 0 |
/// | MatMul B | [K, N] (batched: […, K, N]) | last | second to last |
/// | Gemm B | [K, N], or [N, K] with transB=1 | 1 (0) | 0 (1) |
/// | Gather data (axis 0) | [V, D] | 0 | 1 |
/// | LSTM/GRU/RNN W, R | [dirs, G·H, in] | 1 | 2 |
struct WeightUses {
    struct Axes: Sendable, Equatable {
        var channel: Int
        var reduction: Int
    }

    struct Use {
        var opType: String
        var input: Int
        var node: Node
    }

    /// A node that reads a value: its op type (domain-qualified outside the default domain) and name.
    struct Reader: Sendable, Equatable {
        var opType: String
        var node: String
    }

    private var uses: [String: [Use]] = [:]

    /// Every node that reads `name`, in graph order.
    func readers(of name: String) -> [Reader] {
        (uses[name] ?? []).map { Reader(opType: $0.opType, node: $0.node.name) }
    }

    init(graph: Graph) {
        record(graph)
    }

    /// Records every read, including reads from nested subgraphs (which see this graph's values).
    private mutating func record(_ graph: Graph) {
        for node in graph.nodes {
            for (i, input) in node.inputs.enumerated() where !input.isEmpty {
                uses[input, default: []].append(Use(opType: node.domain.isEmpty ? node.opType : "\(node.domain).\(node.opType)",
                                                   input: i, node: node))
            }
            for attribute in node.attributes {
                for sub in attribute.value.subgraphs { record(sub) }
            }
        }
    }

    /// The weight layout of `name`, or why it is not a weight.
    func role(of name: String, rank: Int) -> (layout: Axes?, reason: String) {
        guard let list = uses[name], !list.isEmpty else { return (nil, "not read by any node") }
        var found: Axes?
        for use in list {
            guard let axes = Self.axes(use, rank: rank) else {
                return (nil, "not a weight input: read by \(use.opType) input \(use.input)")
            }
            if let found, found != axes { return (nil, "read as weights with different layouts") }
            found = axes
        }
        return (found, "")
    }

    static func axes(_ use: Use, rank: Int) -> Axes? {
        func int(_ name: String, _ fallback: Int64) -> Int64 {
            if case .int(let v)? = use.node.attribute(name)?.value { return v }
            return fallback
        }
        switch (use.opType, use.input) {
        case ("Conv", 1) where rank >= 3: return Axes(channel: 0, reduction: 1)
        case ("ConvTranspose", 1) where rank >= 3: return Axes(channel: 1, reduction: 0)
        case ("MatMul", 1) where rank >= 2: return Axes(channel: rank - 1, reduction: rank - 2)
        case ("Gemm", 1) where rank == 2:
            return int("transB", 0) != 0 ? Axes(channel: 0, reduction: 1) : Axes(channel: 1, reduction: 0)
        case ("Gather", 0) where rank == 2 && int("axis", 0) == 0: return Axes(channel: 0, reduction: 1)
        case ("LSTM", 1), ("LSTM", 2), ("GRU", 1), ("GRU", 2), ("RNN", 1), ("RNN", 2):
            return rank == 3 ? Axes(channel: 1, reduction: 2) : nil
        default: return nil
        }
    }
}
