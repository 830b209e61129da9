/// A Core ML compute unit: where a node of a converted model can run.
public enum ComputeUnit: String, Sendable, Codable, CaseIterable, Comparable {
    case neuralEngine = "neural-engine"
    case gpu
    case cpu

    /// The order the assignment prefers units in when several can run a node: the Neural Engine is the most
    /// efficient, the CPU the fallback that runs everything Core ML can express.
    public static let preference: [ComputeUnit] = [.neuralEngine, .gpu, .cpu]

    /// Orders units by `preference`: the Neural Engine first, the CPU last.
    public static func < (a: ComputeUnit, b: ComputeUnit) -> Bool {
        preference.firstIndex(of: a)! < preference.firstIndex(of: b)!
    }
}

/// Which compute units a model may use: Core ML's `MLComputeUnits` (`--compute-units`), spelled the same way by
/// every command (`all`, `cpu-only`, `cpu-and-gpu`, `cpu-and-neural-engine`).
public enum ComputeUnitSet: String, Sendable, Codable, CaseIterable {
    case all
    case cpuAndNeuralEngine = "cpu-and-neural-engine"
    case cpuAndGPU = "cpu-and-gpu"
    case cpuOnly = "cpu-only"

    /// Earlier spellings still accepted: `cpu-and-ne` (convert and audit before issue 26).
    public static let aliases: [String: ComputeUnitSet] = ["cpu-and-ne": .cpuAndNeuralEngine]

    /// The set a spelling names (the canonical one or an alias), nil for any other text.
    public init?(spelling: String) {
        guard let set = ComputeUnitSet(rawValue: spelling) ?? Self.aliases[spelling] else { return nil }
        self = set
    }

    /// The units the set allows, in preference order.
    public var units: [ComputeUnit] {
        switch self {
        case .all: return [.neuralEngine, .gpu, .cpu]
        case .cpuAndNeuralEngine: return [.neuralEngine, .cpu]
        case .cpuAndGPU: return [.gpu, .cpu]
        case .cpuOnly: return [.cpu]
        }
    }
}

/// How far a rule's claim is established.
public enum Confidence: String, Sendable, Codable, CaseIterable {
    /// Apple's documentation or statements, or a maintained converter's code.
    case documented
    /// Reported measurements (profiler traces, Core ML's own log messages on a device).
    case observed
    /// Community knowledge that could not be traced to a measurement.
    case community
    /// No source says so: the audit knows of nothing that prevents it (a placement that rests on "no known
    /// blocker"). Reports count these apart; a device measurement is the only way to confirm them.
    case assumed
}
