import Profiles

/// The result of an audit: one entry per node (subgraphs included), the partitions, and a summary. Encoded as JSON
/// by `mlpkg audit --format json`; docs/AUDIT.md lists the fields CI scripts may rely on (`nodes[].name`, `opType`,
/// `domain`, `unit`, `reasons`; `summary.coverage`, `summary.partitions`).
public struct AuditReport: Codable, Sendable {
    /// Always "mlpkg-audit": identifies the JSON document.
    public var format = "mlpkg-audit"
    /// The report format's version (1).
    public var formatVersion = 1
    /// The model or package audited, as given.
    public var model: String
    /// The compute unit coverage is measured for (the `--profile`'s unit).
    public var target: String
    /// The `--compute-units` set the audit allowed (`all`, `cpu-and-ne`, `cpu-and-gpu` or `cpu-only`).
    public var computeUnits: String
    /// The units of that set, target first, then the rest in preference order.
    public var allowedUnits: [String]
    /// The chip whose cost numbers the time estimate uses (`--chip`).
    public var chip: String
    /// The `--input-shape` pins the audit used, as `NAME=D0,D1,...`.
    public var inputShapes: [String]
    /// The profile each allowed unit was judged by, in preference order.
    public var profiles: [ProfileReference]
    /// One entry per node: the main graph, then each subgraph after its owner node.
    public var nodes: [NodeReport]
    /// Every partition of every graph, in execution order.
    public var partitions: [Partition]
    /// Coverage, counts, blockers, the pin suggestion and the time estimate.
    public var summary: Summary
    /// Every rule and support entry the findings name, by id: what it says and where it comes from.
    public var rules: [String: RuleReference]

    /// What a rule or support entry says and where it comes from, as the `rules` table lists it.
    public struct RuleReference: Codable, Sendable, Equatable {
        /// The profile that declared it (`mlpkg` for the `no-known-blocker` basis).
        public var profile: String
        /// Why the rule matters, in a few words.
        public var reason: String
        /// A URL or repository path where the claim can be read.
        public var source: String
        /// How far the claim is established; nil for findings that rest on no profile entry (e.g. `no-rule`).
        public var confidence: Confidence?
    }

    /// The profile a unit was judged by.
    public struct ProfileReference: Codable, Sendable, Equatable {
        /// The profile's name (a built-in one, or the `name` of a `--profile-file`).
        public var name: String
        /// The compute unit it describes.
        public var unit: String
        /// Profile names from the base to this one, e.g. ["core-ml", "neural-engine"].
        public var chain: [String]
        /// The file it was loaded from; nil for a built-in profile.
        public var file: String?
        /// The unit's compute precision (`float16` or `float32`); nil when no profile in the chain declares one.
        public var precision: String?
    }

    /// One node's verdicts and assignment.
    public struct NodeReport: Codable, Sendable, Equatable {
        /// The node's name in the model (may be empty).
        public var name: String
        /// How text reports name the node: its name, or "#index (OpType)".
        public var label: String
        /// The ONNX op type, e.g. "Conv".
        public var opType: String
        /// The op's domain as the model spells it ("" for the default ONNX domain).
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
        /// The node's verdict on each allowed unit, keyed by unit name.
        public var verdicts: [String: UnitVerdict]
        /// Present inputs and outputs with their types as the audit knew them.
        public var inputs: [ValueReport]
        /// Present outputs with their types, as for `inputs`.
        public var outputs: [ValueReport]
        /// Estimated floating-point operations; nil when the shapes they need are unknown.
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
        /// The support entry's confidence; `documented` for the CPU fallback, `assumed` for no known blocker.
        public var confidence: Confidence
        /// The support entry's id, `cpu-runs-core-ml`, or `no-known-blocker`.
        public var basis: String
    }

    /// One rule that keeps nodes off the target unit, with what to do about it.
    public struct Blocker: Codable, Sendable, Equatable {
        /// The rule id, or `preference` / `transition-smoothing` when no rule fails on the target.
        public var rule: String
        /// The rule's reason, as quoted in findings.
        public var reason: String
        /// The rule's confidence; nil when it has none (`preference`, `transition-smoothing`, `no-rule`).
        public var confidence: Confidence?
        /// Where the rule's claim can be read (docs/AUDIT.md#assignment for `preference` and `transition-smoothing`).
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
        /// Target coverage in percent (unrounded) that the re-audit with the pins measured.
        public var coverage: Double
        /// Counted nodes on the target in the re-audit.
        public var nodesOnTarget: Int
        /// Nodes the pins move onto the target (may be negative if the pinned sizes trip a size rule).
        public var gain: Int
        /// Load-blocking nodes left in the re-audit.
        public var loadBlocking: Int
        /// Says the sizes are placeholders for the deployed ones, and how many more nodes the pins fold away.
        public var note: String
    }

    /// One input or output of a node.
    public struct ValueReport: Codable, Sendable, Equatable {
        /// The value's name in the graph.
        public var name: String
        /// "float[1, 3, 32, 32]", "float[batch, 3, ?]"; "?" when unknown.
        public var type: String
        /// Whether the value is known before run time (an initializer, a Constant output or a folded value).
        public var constant: Bool
    }

    /// A node's verdict on one compute unit.
    public struct UnitVerdict: Codable, Sendable, Equatable {
        /// True when the node converts and no rule fails on this unit.
        public var supported: Bool
        /// What makes the op convertible (the support entry), when it is.
        public var support: Finding?
        /// The rules the node fails on this unit, each with the concrete detail.
        public var failures: [Finding]
        /// Rules that could not be checked because a shape, type or value is unknown.
        public var unchecked: [Finding]
    }

    /// A maximal run of consecutive nodes of one graph on one unit (in execution order).
    public struct Partition: Codable, Sendable, Equatable {
        /// The unit the run is on, or `unsupported`.
        public var unit: String
        /// The graph the run belongs to ("" for the main graph).
        public var graph: String
        /// Indices into `nodes`.
        public var nodes: [Int]
        /// Number of nodes in the run.
        public var size: Int
        /// The run's total FLOPs; nil when any of its nodes' FLOPs are unknown.
        public var flops: Double?
    }

    /// The report's totals: coverage, counts by unit, partitions, transitions, blockers and the time estimate.
    public struct Summary: Codable, Sendable, Equatable {
        /// Nodes counted (Constant nodes excluded), subgraphs included.
        public var nodes: Int
        /// Constant and folded nodes, left out of every other count.
        public var constantNodes: Int
        /// Percent of counted nodes on the target unit (the Neural Engine by default), rounded to 0.1.
        public var coverage: Double
        /// The same, unrounded (what `--min-coverage` compares); absent in reports written before it existed.
        public var coverageExact: Double? = nil
        /// Counted nodes on the target unit.
        public var nodesOnTarget: Int? = nil
        /// Percent of counted nodes on each unit (and `unsupported`), rounded to 0.1.
        public var coverageByUnit: [String: Double]
        /// Counted nodes on each unit (and `unsupported`).
        public var nodesByUnit: [String: Int]
        /// FLOPs of the counted nodes, in total and by unit.
        public var flops: FlopSummary
        /// The number of partitions and their sizes.
        public var partitions: PartitionSummary
        /// Switches between consecutive partitions (unit changes along each graph's execution order).
        public var transitions: Int
        /// Tensors handed from one unit to another, and their bytes (known shapes only).
        public var handOffs: Int
        /// Bytes of the handed-off tensors of known shape (float elements at the wider unit's element size).
        public var handOffBytes: Double
        /// Nodes moved by transition smoothing.
        public var moved: Int
        /// Counted nodes not on the target unit, and those no allowed unit can run.
        public var fallbacks: Int
        /// Counted nodes no allowed unit can run (`unsupported`).
        public var unsupported: Int
        /// The estimated run time (roofline peaks, not a measurement).
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

    /// FLOPs of the counted nodes, estimated from shapes.
    public struct FlopSummary: Codable, Sendable, Equatable {
        /// Counted nodes whose FLOPs are known.
        public var knownNodes: Int
        /// Sum of the known FLOPs.
        public var total: Double
        /// Known FLOPs by assigned unit.
        public var byUnit: [String: Double]
        /// Percent of known FLOPs on the target unit; nil when no FLOPs are known.
        public var coverage: Double?
    }

    /// How many partitions there are and how large each is.
    public struct PartitionSummary: Codable, Sendable, Equatable {
        /// Number of partitions over all graphs.
        public var count: Int
        /// Node count of each partition, in `partitions` order.
        public var sizes: [Int]
    }

    /// Estimated time (roofline peaks from the profiles' chip numbers, not a measurement).
    public struct Estimate: Codable, Sendable, Equatable {
        /// Always "estimate", so the numbers are not read as measurements.
        public var label = "estimate"
        /// The chip whose numbers were used.
        public var chip: String
        /// Seconds on each unit, summed over its nodes whose time is known.
        public var secondsByUnit: [String: Double]
        /// Seconds for unit switches (the latency per switch) and tensor hand-offs.
        public var transferSeconds: Double
        /// The units' seconds plus the transfer seconds.
        public var totalSeconds: Double
        /// Counted nodes left out of the estimate because their shapes are unknown.
        public var nodesWithoutEstimate: Int
    }
}

extension AuditReport {
    /// Nodes not on the target unit (Constant nodes excluded), in report order.
    public var fallbacks: [NodeReport] { nodes.filter { !$0.constant && $0.unit != target } }
}
