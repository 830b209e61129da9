/// A profile file as written (format `mlpkg-profile`, version 1): the rules for one compute unit, or a base that unit
/// profiles extend. docs/AUDIT.md is its specification. `ProfileLibrary` checks a document and resolves its `extends`
/// chain into a `Profile`.
public struct ProfileDocument: Codable, Sendable, Equatable {
    public static let formatName = "mlpkg-profile"
    public static let version = 1

    public var format: String
    public var formatVersion: Int
    public var name: String
    public var description: String?
    /// The compute unit the profile describes; nil for a base profile (`core-ml`).
    public var unit: ComputeUnit?
    /// A built-in profile whose support entries and rules this one inherits (its own come after them).
    public var extends: String?
    public var precision: Precision?
    /// Ids of inherited rules this profile switches off.
    public var disable: [String]?
    public var support: [SupportEntry]?
    public var rules: [Rule]?
    public var transfer: TransferCost?
    public var cost: CostTable?
}

/// Ops a profile declares convertible, and the source saying so. An op no entry names gets "no rule".
public struct SupportEntry: Codable, Sendable, Equatable {
    public var id: String
    /// "" (the default) is the ONNX domain; "ai.onnx" means the same.
    public var domain: String?
    public var ops: [String]
    /// What the ops become in Core ML.
    public var maps: String?
    public var source: String
    public var confidence: Confidence
    public var note: String?
    /// The profile that declared the entry (set when a profile is resolved; not part of the file).
    public var profile: String = ""
    /// Declared by a unit profile (positive evidence that the ops run on that unit), not by the base profile that
    /// says only what converts (set when a profile is resolved).
    public var unitLevel = false

    enum CodingKeys: String, CodingKey {
        case id, domain, ops, maps, source, confidence, note
    }

    public init(id: String, domain: String? = nil, ops: [String], maps: String? = nil, source: String,
                confidence: Confidence, note: String? = nil) {
        self.id = id
        self.domain = domain
        self.ops = ops
        self.maps = maps
        self.source = source
        self.confidence = confidence
        self.note = note
    }
}

/// The precision a compute unit computes in.
public struct Precision: Codable, Sendable, Equatable {
    /// `float16` or `float32`.
    public var compute: String
    public var reason: String
    public var source: String
    public var confidence: Confidence

    public init(compute: String, reason: String, source: String, confidence: Confidence) {
        self.compute = compute
        self.reason = reason
        self.source = source
        self.confidence = confidence
    }
}

/// What handing a tensor from one compute unit to another costs (the cost model's transfer term).
public struct TransferCost: Codable, Sendable, Equatable {
    /// Fixed cost of one switch between units.
    public var latencyMicroseconds: Double
    /// Runs of at most this many nodes are considered for moving to the units around them (default 4).
    public var maxRunNodes: Int?
    public var source: String
    public var confidence: Confidence
    public var note: String?

    public init(latencyMicroseconds: Double, maxRunNodes: Int? = nil, source: String, confidence: Confidence,
                note: String? = nil) {
        self.latencyMicroseconds = latencyMicroseconds
        self.maxRunNodes = maxRunNodes
        self.source = source
        self.confidence = confidence
        self.note = note
    }
}

/// Throughput and memory bandwidth of a compute unit, per named chip.
public struct CostTable: Codable, Sendable, Equatable {
    public var chips: [String: ChipCost]
}

public struct ChipCost: Codable, Sendable, Equatable {
    /// Peak arithmetic throughput, in GFLOP/s (for the Neural Engine: Apple's operations per second).
    public var gflops: Double
    /// Memory bandwidth the unit reads and writes tensors at, in GB/s.
    public var bandwidthGBps: Double
    public var source: String
    public var confidence: Confidence
    public var note: String?

    public init(gflops: Double, bandwidthGBps: Double, source: String, confidence: Confidence, note: String? = nil) {
        self.gflops = gflops
        self.bandwidthGBps = bandwidthGBps
        self.source = source
        self.confidence = confidence
        self.note = note
    }
}
