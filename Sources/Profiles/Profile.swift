/// A profile with its `extends` chain resolved: the support entries and rules of every profile in the chain (base
/// first), minus the rules a profile disables.
public struct Profile: Sendable, Equatable {
    /// The profile's name, e.g. `neural-engine`.
    public var name: String
    /// What the profile holds, from its file ("" when it has no description).
    public var description: String
    /// The compute unit it describes; nil for the base profile (`core-ml`).
    public var unit: ComputeUnit?
    /// Profile names from the base to this one, e.g. ["core-ml", "neural-engine"].
    public var chain: [String]
    /// The file the profile came from; nil for a built-in one.
    public var file: String?
    /// The unit's compute precision, from the last profile in the chain that declares one; nil when none does.
    public var precision: Precision?
    /// The support entries of every profile in the chain, base first.
    public var support: [SupportEntry]
    /// The rules of every profile in the chain, base first, minus those a profile disables.
    public var rules: [Rule]
    /// The cost of a unit switch, from the last profile in the chain that declares one; nil when none does.
    public var transfer: TransferCost?
    /// Cost numbers by chip name; a later profile in the chain overrides a chip an earlier one gives.
    public var chips: [String: ChipCost]

    /// A resolved profile from its parts; an empty `chain` becomes `[name]`.
    public init(name: String, description: String = "", unit: ComputeUnit?, chain: [String] = [], file: String? = nil,
                precision: Precision? = nil, support: [SupportEntry] = [], rules: [Rule] = [],
                transfer: TransferCost? = nil, chips: [String: ChipCost] = [:]) {
        self.name = name
        self.description = description
        self.unit = unit
        self.chain = chain.isEmpty ? [name] : chain
        self.file = file
        self.precision = precision
        self.support = support
        self.rules = rules
        self.transfer = transfer
        self.chips = chips
    }

    /// "" for the default ONNX domain, whichever way a model spells it.
    public static func normalizedDomain(_ domain: String) -> String { domain == "ai.onnx" ? "" : domain }

    /// The entry declaring the op convertible, or nil ("no rule").
    public func supportEntry(opType: String, domain: String) -> SupportEntry? {
        let domain = Self.normalizedDomain(domain)
        return support.first { Self.normalizedDomain($0.domain ?? "") == domain && $0.ops.contains(opType) }
    }

    /// A unit profile's own entry for the op: positive evidence that it runs on the unit (not only that it
    /// converts), or nil when the placement rests on no known blocker alone.
    public func unitSupportEntry(opType: String, domain: String) -> SupportEntry? {
        let domain = Self.normalizedDomain(domain)
        return support.first { $0.unitLevel && Self.normalizedDomain($0.domain ?? "") == domain && $0.ops.contains(opType) }
    }

    /// The rules covering a node of this op type and domain, in declaration order (base profile first).
    public func rules(opType: String, domain: String) -> [Rule] {
        rules.filter { $0.applies(opType: opType, domain: domain) }
    }

    /// The chip names the cost table knows, sorted.
    public var chipNames: [String] { chips.keys.sorted() }
}
