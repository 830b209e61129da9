/// A profile file as written (format `mlpkg-profile`, version 1): the rules for one compute unit, or a base that unit
/// profiles extend. docs/AUDIT.md is its specification. `ProfileLibrary` checks a document and resolves its `extends`
/// chain into a `Profile`.
public struct ProfileDocument: Codable, Sendable, Equatable {
    /// The `format` value every profile file must have.
    public static let formatName = "mlpkg-profile"
    /// The `formatVersion` this mlpkg reads; a file with a newer one is refused.
    public static let version = 1

    /// Must be "mlpkg-profile".
    public var format: String
    /// Must be 1.
    public var formatVersion: Int
    /// The profile's name: letters, digits, `-`, `_` and `.`.
    public var name: String
    /// What the profile holds, for people; optional.
    public var description: String?
    /// The compute unit the profile describes; nil for a base profile (`core-ml`).
    public var unit: ComputeUnit?
    /// A built-in profile whose support entries and rules this one inherits (its own come after them).
    public var extends: String?
    /// The unit's compute precision; absent to inherit the extended profile's.
    public var precision: Precision?
    /// Ids of inherited rules this profile switches off.
    public var disable: [String]?
    /// Ops this profile declares convertible (in a unit profile, evidence that they run on the unit).
    public var support: [SupportEntry]?
    /// Conditions that keep a node off the unit (in the base profile, conditions for converting at all).
    public var rules: [Rule]?
    /// The cost of switching units; the built-in base profile declares it.
    public var transfer: TransferCost?
    /// The unit's peak numbers per chip.
    public var cost: CostTable?
}

/// Ops a profile declares convertible, and the source saying so. An op no entry names gets "no rule".
public struct SupportEntry: Codable, Sendable, Equatable {
    /// The entry's id, cited in findings.
    public var id: String
    /// "" (the default) is the ONNX domain; "ai.onnx" means the same.
    public var domain: String?
    /// The op types the entry covers (never empty).
    public var ops: [String]
    /// What the ops become in Core ML.
    public var maps: String?
    /// A URL or repository path where the claim can be read (never empty).
    public var source: String
    /// How far the claim is established.
    public var confidence: Confidence
    /// Extra context about the claim; optional.
    public var note: String?
    /// The profile that declared the entry (set when a profile is resolved; not part of the file).
    public var profile: String = ""
    /// Declared by a unit profile (positive evidence that the ops run on that unit), not by the base profile that
    /// says only what converts (set when a profile is resolved).
    public var unitLevel = false

    enum CodingKeys: String, CodingKey {
        case id, domain, ops, maps, source, confidence, note
    }

    /// An entry as a file declares it; `profile` and `unitLevel` are set when a profile is resolved.
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
    /// Why the unit computes at that precision.
    public var reason: String
    /// A URL or repository path where the claim can be read.
    public var source: String
    /// How far the claim is established.
    public var confidence: Confidence

    /// A precision declaration; `compute` is `float16` or `float32`.
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
    /// A URL or repository path where the latency figure can be read.
    public var source: String
    /// How far the figure is established.
    public var confidence: Confidence
    /// Extra context (how the figure was measured, for example); optional.
    public var note: String?

    /// A transfer cost; a nil `maxRunNodes` means the default of 4.
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
    /// Each chip's numbers, by chip name (e.g. `M1`, `M4 Pro`).
    public var chips: [String: ChipCost]
}

/// One chip's peak numbers for a unit, with their source.
public struct ChipCost: Codable, Sendable, Equatable {
    /// Peak arithmetic throughput, in GFLOP/s (for the Neural Engine: Apple's operations per second).
    public var gflops: Double
    /// Memory bandwidth the unit reads and writes tensors at, in GB/s.
    public var bandwidthGBps: Double
    /// A URL or repository path where the numbers can be read.
    public var source: String
    /// How far the numbers are established.
    public var confidence: Confidence
    /// Extra context (e.g. how a figure Apple does not publish was derived); optional.
    public var note: String?

    /// A chip's numbers for a unit; a profile file must give positive `gflops` and `bandwidthGBps`.
    public init(gflops: Double, bandwidthGBps: Double, source: String, confidence: Confidence, note: String? = nil) {
        self.gflops = gflops
        self.bandwidthGBps = bandwidthGBps
        self.source = source
        self.confidence = confidence
        self.note = note
    }
}
