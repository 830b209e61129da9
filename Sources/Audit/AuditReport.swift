import Profiles

/// The result of an audit: one entry per node (subgraphs included), the partitions, and a summary. Encoded as JSON
/// by `mlpkg audit --format json`; docs/AUDIT.md lists the fields CI scripts may rely on (`nodes[].name`, `opType`,
/// `domain`, `unit`, `reasons`; `summary.coverage`, `summary.partitions`).
public struct AuditReport: Codable, Sendable {
    public var format = "mlpkg-audit"
    public var formatVersion = 1
    /// The model or package audited, as given.
    public var model: String
    /// The compute unit coverage is measured for (the `--profile`'s unit).
    public var target: String
    public var computeUnits: String
    public var allowedUnits: [String]
    public var chip: String
    public var inputShapes: [String]
    public var profiles: [ProfileReference]
    public var nodes: [NodeReport]
    public var partitions: [Partition]
    public var summary: Summary
    /// Every rule and support entry the findings name, by id: what it says and where it comes from.
    public var rules: [String: RuleReference]

    public struct RuleReference: Codable, Sendable, Equatable {
        public var profile: String
        public var reason: String
        public var source: String
        public var confidence: Confidence?
    }

    public struct ProfileReference: Codable, Sendable, Equatable {
        public var name: String
        public var unit: String
        public var chain: [String]
        public var file: String?
        public var precision: String?
    }

    /// One node's verdicts and assignment.
    public struct NodeReport: Codable, Sendable, Equatable {
        public var name: String
        /// How text reports name the node: its name, or "#index (OpType)".
        public var label: String
        public var opType: String
        public var domain: String
        /// "" for the main graph; "if_node/then_branch" and so on for subgraphs.
        public var graph: String
        /// Position in its graph.
        public var index: Int
        /// A Constant node, or (under the Core ML gate) a node whose outputs fold to constants before conversion:
        /// it becomes a weight, computes nothing at run time, and is left out of coverage and partitions.
        public var constant: Bool
        /// `neural-engine`, `gpu`, `cpu` or `unsupported`.
        public var unit: String
        /// The unit chosen before transition smoothing, when smoothing moved the node.
        public var preferredUnit: String?
        /// Why the node runs where it does: every rule that kept it off a more preferred unit, and what makes it
        /// supported where it runs, each ending with the rule's confidence and source.
        public var reasons: [String]
        /// Rules of the assigned unit that could not be checked (a shape, type or value is unknown), by rule id.
        public var notChecked: [String]
        public var verdicts: [String: UnitVerdict]
        /// Present inputs and outputs with their types as the audit knew them.
        public var inputs: [ValueReport]
        public var outputs: [ValueReport]
        public var flops: Double?
        /// Estimated seconds on each allowed unit (estimate; absent when shapes are unknown).
        public var seconds: [String: Double]?
        /// How far the node's placement on its unit is established (absent for Constant and unsupported nodes).
        public var placement: Placement? = nil
        /// No allowed unit can run the node: while it is in the model, the model does not convert to one Core ML
        /// program (absent when false).
        public var blocksLoading: Bool? = nil
    }

    /// What a node's placement rests on: a unit profile's own support entry (positive evidence that the op runs
    /// there), Core ML's CPU fallback, or nothing but the absence of a known blocker (`assumed`).
    public struct Placement: Codable, Sendable, Equatable {
        public var confidence: Confidence
        /// The support entry's id, `cpu-runs-core-ml`, or `no-known-blocker`.
        public var basis: String
    }

    /// One rule that keeps nodes off the target unit, with what to do about it.
    public struct Blocker: Codable, Sendable, Equatable {
        public var rule: String
        public var reason: String
        public var confidence: Confidence?
        public var source: String
        /// Nodes off the target on which the rule fails there.
        public var nodes: Int
        /// Of those, the nodes no allowed unit can run.
        public var loadBlocking: Int
        /// The first few of them (report order).
        public var examples: [String]
        /// The one thing that fixes it, or why nothing in the model can.
        public var action: String
    }

    /// Pins for the dynamic inputs, and the coverage a second audit with them measured.
    public struct PinSuggestion: Codable, Sendable, Equatable {
        /// `NAME=D0,D1,...`, as `--input-shape` takes them (the pins already given, then the suggested ones).
        public var inputShapes: [String]
        /// The suggested ones alone.
        public var suggested: [String]
        public var coverage: Double
        public var nodesOnTarget: Int
        /// Nodes the pins move onto the target (may be negative if the pinned sizes trip a size rule).
        public var gain: Int
        public var loadBlocking: Int
        public var note: String
    }

    public struct ValueReport: Codable, Sendable, Equatable {
        public var name: String
        /// "float[1, 3, 32, 32]", "float[batch, 3, ?]"; "?" when unknown.
        public var type: String
        public var constant: Bool
    }

    public struct UnitVerdict: Codable, Sendable, Equatable {
        public var supported: Bool
        /// What makes the op convertible (the support entry), when it is.
        public var support: Finding?
        public var failures: [Finding]
        /// Rules that could not be checked because a shape, type or value is unknown.
        public var unchecked: [Finding]
    }

    /// A maximal run of consecutive nodes of one graph on one unit (in execution order).
    public struct Partition: Codable, Sendable, Equatable {
        public var unit: String
        public var graph: String
        /// Indices into `nodes`.
        public var nodes: [Int]
        public var size: Int
        public var flops: Double?
    }

    public struct Summary: Codable, Sendable, Equatable {
        /// Nodes counted (Constant nodes excluded), subgraphs included.
        public var nodes: Int
        public var constantNodes: Int
        /// Percent of counted nodes on the target unit (the Neural Engine by default), rounded to 0.1.
        public var coverage: Double
        /// The same, unrounded (what `--min-coverage` compares); absent in reports written before it existed.
        public var coverageExact: Double? = nil
        /// Counted nodes on the target unit.
        public var nodesOnTarget: Int? = nil
        public var coverageByUnit: [String: Double]
        public var nodesByUnit: [String: Int]
        public var flops: FlopSummary
        public var partitions: PartitionSummary
        /// Switches between consecutive partitions (unit changes along each graph's execution order).
        public var transitions: Int
        /// Tensors handed from one unit to another, and their bytes (known shapes only).
        public var handOffs: Int
        public var handOffBytes: Double
        /// Nodes moved by transition smoothing.
        public var moved: Int
        /// Counted nodes not on the target unit, and those no allowed unit can run.
        public var fallbacks: Int
        public var unsupported: Int
        public var estimate: Estimate
        /// Nodes on the target by the confidence of their placement (`assumed`: no known blocker, no source).
        public var placementOnTarget: [String: Int]? = nil
        /// The rules keeping nodes off the target, most nodes first, each with its action.
        public var blockers: [Blocker]? = nil
        /// Nodes no allowed unit can run (the model does not convert to one Core ML program while they remain).
        public var loadBlocking: Int? = nil
        /// Pins for dynamic inputs and the coverage a re-audit with them gives (command line audits only).
        public var pinSuggestion: PinSuggestion? = nil
        /// What the estimate leaves out.
        public var estimateLeavesOut: [String]? = nil
    }

    public struct FlopSummary: Codable, Sendable, Equatable {
        /// Counted nodes whose FLOPs are known.
        public var knownNodes: Int
        public var total: Double
        public var byUnit: [String: Double]
        /// Percent of known FLOPs on the target unit; nil when no FLOPs are known.
        public var coverage: Double?
    }

    public struct PartitionSummary: Codable, Sendable, Equatable {
        public var count: Int
        public var sizes: [Int]
    }

    /// Estimated time (roofline peaks from the profiles' chip numbers, not a measurement).
    public struct Estimate: Codable, Sendable, Equatable {
        public var label = "estimate"
        public var chip: String
        public var secondsByUnit: [String: Double]
        public var transferSeconds: Double
        public var totalSeconds: Double
        /// Counted nodes left out of the estimate because their shapes are unknown.
        public var nodesWithoutEstimate: Int
    }
}

extension AuditReport {
    /// Nodes not on the target unit (Constant nodes excluded), in report order.
    public var fallbacks: [NodeReport] { nodes.filter { !$0.constant && $0.unit != target } }
}
