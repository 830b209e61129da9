/// The kinds of condition a rule can state. Each is evaluated per node by `Audit`'s rule evaluator; a rule fails with
/// a concrete message ("dim 20000 > 16384"), passes, or cannot be checked (a shape or value is unknown).
public enum RuleKind: String, Codable, Sendable, CaseIterable {
    /// The ops never run here (or, in a base profile, never convert).
    case never
    /// Every input and output tensor has rank ≤ `max`.
    case maxRank
    /// Every dim of every input and output tensor is ≤ `max`.
    case maxDim
    /// Every input and output tensor has a fully known, static shape (no symbolic or unknown dims).
    case staticShape
    /// The inputs at `inputs` (when present) are constants: initializers or Constant outputs.
    case constantInputs
    /// The inputs at `inputs` (when present) have an element type in `allowed` (dtype names: `float`, `float16`…).
    case dtypes
    /// Every integer of attribute `attribute` (or `default` when absent) is ≤ `eachAtMost`.
    case attribute
    /// Input `input` has a rank in `oneOf`.
    case inputRank
    /// Every spatial dim (dims 2…) of input 0 is ≤ `max` (global pooling windows).
    case spatialExtent
    /// Resize/Upsample scale factors (from `scales`, or `sizes` over the input shape) are ≤ `max`.
    case resizeScale

    /// The parameter keys each kind needs; `Rule.check` reports the first missing one.
    var requiredParameters: [String] {
        switch self {
        case .never, .staticShape: return []
        case .maxRank, .maxDim, .spatialExtent, .resizeScale: return ["max"]
        case .constantInputs: return ["inputs"]
        case .dtypes: return ["inputs", "allowed"]
        case .attribute: return ["attribute", "eachAtMost"]
        case .inputRank: return ["input", "oneOf"]
        }
    }
}

/// A rule applies only to nodes whose attribute `attribute` has the value `equals` (compared as text).
public struct RuleCondition: Codable, Sendable, Equatable {
    /// The attribute's name.
    public var attribute: String
    /// The value it must have, compared with the attribute's value as text.
    public var equals: String

    /// A condition that the node's attribute `attribute` is `equals`.
    public init(attribute: String, equals: String) {
        self.attribute = attribute
        self.equals = equals
    }
}

/// One rule: one entry of a profile file, naming its source and confidence.
///
/// Scope: `ops` (op types in `domain`, default the ONNX domain); `domain` alone covers every op of that domain; neither
/// covers every node. Parameters are read according to `kind`.
public struct Rule: Codable, Sendable, Equatable {
    /// A unique id, cited in findings (e.g. `ane-static-shapes`).
    public var id: String
    /// What the rule checks; decides which parameters are read.
    public var kind: RuleKind
    /// The op types covered, in `domain`; nil covers every op of `domain`, or every node when `domain` is nil too.
    public var ops: [String]?
    /// The ops' domain (nil or "" is the ONNX domain).
    public var domain: String?
    /// Limits the rule to nodes whose attribute has a given value; nil covers every node in scope.
    public var when: RuleCondition?
    /// The limit for `maxRank`, `maxDim`, `spatialExtent` and `resizeScale`.
    public var max: Int?
    /// Input positions `constantInputs` and `dtypes` check.
    public var inputs: [Int]?
    /// The input position `inputRank` checks.
    public var input: Int?
    /// Element type names `dtypes` accepts (ONNX names in lower case: `float`, `float16`…).
    public var allowed: [String]?
    /// The attribute an `attribute` rule reads.
    public var attribute: String?
    /// The value an `attribute` rule uses when the node lacks the attribute (key `default` in the file).
    public var defaultValue: [Int]?
    /// The largest integer an `attribute` rule allows in the attribute.
    public var eachAtMost: Int?
    /// The ranks `inputRank` accepts.
    public var oneOf: [Int]?
    /// Why the condition matters, in a few words; quoted in every finding.
    public var reason: String
    /// A URL (or repository path) where the claim can be read.
    public var source: String
    /// How far the claim is established.
    public var confidence: Confidence
    /// Extra context printed with the rule (`mlpkg profiles NAME`); optional.
    public var note: String?

    /// The profile that declared the rule (set when a profile is resolved; not part of the file).
    public var profile: String = ""

    enum CodingKeys: String, CodingKey {
        case id, kind, ops, domain, when, max, inputs, input, allowed, attribute
        case defaultValue = "default"
        case eachAtMost, oneOf, reason, source, confidence, note
    }

    /// Every key a rule object may hold, so a misspelt key is reported instead of ignored.
    static let knownKeys: Set<String> = Set(
        ["id", "kind", "ops", "domain", "when", "max", "inputs", "input", "allowed", "attribute", "default",
         "eachAtMost", "oneOf", "reason", "source", "confidence", "note"])

    /// A rule as a profile file declares it; `profile` is normally set when a profile is resolved.
    public init(id: String, kind: RuleKind, ops: [String]? = nil, domain: String? = nil, when: RuleCondition? = nil,
                max: Int? = nil, inputs: [Int]? = nil, input: Int? = nil, allowed: [String]? = nil,
                attribute: String? = nil, defaultValue: [Int]? = nil, eachAtMost: Int? = nil, oneOf: [Int]? = nil,
                reason: String, source: String, confidence: Confidence, note: String? = nil, profile: String = "") {
        self.id = id
        self.kind = kind
        self.ops = ops
        self.domain = domain
        self.when = when
        self.max = max
        self.inputs = inputs
        self.input = input
        self.allowed = allowed
        self.attribute = attribute
        self.defaultValue = defaultValue
        self.eachAtMost = eachAtMost
        self.oneOf = oneOf
        self.reason = reason
        self.source = source
        self.confidence = confidence
        self.note = note
        self.profile = profile
    }

    /// Whether the rule covers a node of this op type and domain ("ai.onnx" is the default domain).
    public func applies(opType: String, domain nodeDomain: String) -> Bool {
        let nodeDomain = Profile.normalizedDomain(nodeDomain)
        if let ops {
            return ops.contains(opType) && Profile.normalizedDomain(domain ?? "") == nodeDomain
        }
        if let domain { return Profile.normalizedDomain(domain) == nodeDomain }
        return true
    }

    /// How reports cite the rule: "documented: https://…".
    public var citation: String { "\(confidence.rawValue): \(source)" }

    /// The first problem with the rule's parameters, or nil.
    func problem() -> String? {
        if id.isEmpty { return "has an empty id" }
        if reason.isEmpty { return "has an empty reason" }
        if source.isEmpty { return "has an empty source (every rule names where its claim can be read)" }
        let present: [String: Bool] = [
            "max": max != nil, "inputs": inputs != nil, "input": input != nil, "allowed": allowed != nil,
            "attribute": attribute != nil, "eachAtMost": eachAtMost != nil, "oneOf": oneOf != nil,
        ]
        for key in kind.requiredParameters where present[key] != true {
            return "kind '\(kind.rawValue)' needs '\(key)'"
        }
        if let max, max < 0 { return "'max' must be 0 or more" }
        if let inputs, inputs.contains(where: { $0 < 0 }) { return "'inputs' must be input positions (0 or more)" }
        if let input, input < 0 { return "'input' must be an input position (0 or more)" }
        if let allowed {
            for name in allowed where !Self.dtypeNames.contains(name) {
                return "'allowed' names an unknown dtype '\(name)' (use ONNX names in lower case: float, float16, int64…)"
            }
        }
        if let ops, ops.isEmpty { return "'ops' is empty (leave it out to cover every op)" }
        return nil
    }

    /// ONNX element type names in lower case, as `GraphIR.DataType.name` spells them.
    static let dtypeNames: Set<String> = [
        "float", "uint8", "int8", "uint16", "int16", "int32", "int64", "string", "bool", "float16", "double", "uint32",
        "uint64", "complex64", "complex128", "bfloat16", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2",
        "float8e5m2fnuz", "uint4", "int4", "float4e2m1", "float8e8m0", "uint2", "int2", "float6e2m3", "float6e3m2",
    ]
}
