import GraphIR
import Passes

/// `mlpkg inspect --shapes`: every value's inferred type, the nodes whose outputs stayed unknown, and conflicts
/// between declared and inferred types.
public struct ShapeSummary: Codable, Sendable, Equatable {
    /// How many values fall in each category of type knowledge.
    public struct Counts: Codable, Sendable, Equatable {
        /// Every value of every graph; sequences, maps and the like are counted here but in no category below.
        public var values: Int
        /// Tensors with every dim a number.
        public var `static`: Int
        /// Tensors with a known rank and at least one symbolic dim.
        public var symbolic: Int
        /// Values without a dtype or a rank.
        public var unknown: Int
    }

    /// `NAME=D0,D1;…` as pinned with `--input-shape`, or nil.
    public var inputShapes: String?
    /// Values counted by how much of their type is known.
    public var counts: Counts
    /// Every value of every graph with its inferred type, in graph order.
    public var values: [InferredValue]
    /// Nodes whose output types stayed (partly) unknown, with the reason.
    public var unresolved: [UnresolvedNode]
    /// Declared types that contradict the inferred ones (the inferred type is kept).
    public var conflicts: [TypeConflict]

    /// The summary of one inference run; `inputShapes` are the pins it ran with.
    public init(_ result: ShapeInferenceResult, inputShapes: InputShapes) {
        self.inputShapes = inputShapes.isEmpty ? nil : inputShapes.recorded
        values = result.values
        unresolved = result.unresolved
        conflicts = result.conflicts
        var counts = Counts(values: values.count, static: 0, symbolic: 0, unknown: 0)
        for v in values {
            switch Self.category(v.type) {
            case .static: counts.static += 1
            case .symbolic: counts.symbolic += 1
            case .unknown: counts.unknown += 1
            case .other: break
            }
        }
        self.counts = counts
    }

    enum Category { case `static`, symbolic, unknown, other }

    static func category(_ type: ValueType) -> Category {
        switch type {
        case .tensor(let t), .sparseTensor(let t):
            guard t.elementType != nil, let s = t.shape else { return .unknown }
            return s.allSatisfy { if case .value = $0 { return true }; return false } ? .static : .symbolic
        case .unknown: return .unknown
        default: return .other
        }
    }
}

extension ModelSummary {
    /// This summary with `shapes` set.
    public func with(shapes: ShapeSummary) -> ModelSummary {
        var copy = self
        copy.shapes = shapes
        return copy
    }
}

extension SummaryText {
    /// The `--shapes` tables.
    static func render(_ s: ShapeSummary) -> [String] {
        var out: [String] = []
        let c = s.counts
        let nested = s.values.contains { $0.graph != "main" }
        var title = "Shapes: \(c.values) values — \(c.static) static, \(c.symbolic) symbolic, \(c.unknown) unknown"
        if let pins = s.inputShapes { title += " (pinned: \(pins))" }
        let header = (nested ? ["graph"] : []) + ["value", "kind", "type", "constant"]
        out += table(title: title, header: header, rows: s.values.map { v in
            (nested ? [v.graph] : []) + [v.name, v.kind.rawValue, v.type.description, v.constant ? "yes" : ""]
        })
        out += table(title: "Nodes with unknown output shapes: \(s.unresolved.count)", header: ["graph", "node", "op", "reason"],
                     rows: s.unresolved.map { [$0.graph, $0.node, ($0.domain.isEmpty ? "" : $0.domain + ".") + $0.opType, $0.reason] })
        if !s.conflicts.isEmpty {
            out += table(title: "Declared types that contradict the inferred ones (inferred kept)",
                         header: ["graph", "value", "declared", "inferred"],
                         rows: s.conflicts.map { [$0.graph, $0.value, $0.declared, $0.inferred] })
        }
        return out
    }
}
