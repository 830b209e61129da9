import Foundation
import GraphIR

/// A pattern that picks tensors, as `--exclude`, `--include` and a config file's `names` give it:
/// `op:TYPE` picks every tensor a node of that op type reads (`op:com.microsoft.Attention` for other domains);
/// anything else is a glob (`*`, `?`, `[…]`, as in a shell, `*` crossing `/` and `.`) matched against the tensor's
/// name and against the names of the nodes that read it.
public struct TensorSelector: Sendable, Equatable, CustomStringConvertible {
    /// What a pattern matches: the op type of a reading node, or a glob over tensor and node names.
    public enum Kind: Sendable, Equatable {
        case opType(String)
        case glob(String)
    }

    /// The parsed pattern.
    public let kind: Kind

    /// Parses `op:TYPE` or a glob; throws for an empty pattern or an `op:` without a type.
    public init(_ text: String) throws(TensorRuleError) {
        if text.hasPrefix("op:") {
            let type = String(text.dropFirst(3))
            guard !type.isEmpty else { throw TensorRuleError("'\(text)': op: needs an op type (op:Conv)") }
            kind = .opType(type)
        } else {
            guard !text.isEmpty else { throw TensorRuleError("an empty pattern picks no tensor") }
            kind = .glob(text)
        }
    }

    /// The pattern as written: `op:TYPE` or the glob.
    public var description: String {
        switch kind {
        case .opType(let t): return "op:" + t
        case .glob(let g): return g
        }
    }

    func matches(_ tensor: String, _ readers: [WeightUses.Reader]) -> Bool {
        switch kind {
        case .opType(let type): return readers.contains { $0.opType == type }
        case .glob(let pattern):
            return Self.glob(pattern, tensor) || readers.contains { !$0.node.isEmpty && Self.glob(pattern, $0.node) }
        }
    }

    static func glob(_ pattern: String, _ name: String) -> Bool {
        fnmatch(pattern, name, 0) == 0
    }
}

/// A setting a user wrote that cannot be carried out: a malformed config, or two rules that ask different things of
/// the same tensor. The command line reports it as a usage error (exit 2).
public struct TensorRuleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The error as one line, naming the tensor, file or setting at fault.
    public var description: String
    /// An error with `description`.
    public init(_ description: String) { self.description = description }
}

/// What one rule sets for the tensors it picks; nil leaves the setting to the rule below it.
public struct FormatOverride: Sendable, Equatable {
    /// The format (the `weights` key).
    public var weights: WeightFormat?
    /// Which elements share a scale (linear formats) or a table (lut formats).
    public var granularity: Granularity?
    /// Elements per block (linear formats) or slices of axis 0 per table (lut formats).
    public var blockSize: Int?
    /// Symmetric levels, without a zero point.
    public var symmetric: Bool?
    /// Element type of the scales: float or float16 (`fp32` or `fp16` in a config).
    public var scaleType: DataType?
    /// Tensors with fewer elements stay as they are unless forced.
    public var minElements: Int?
    /// Convert the tensor even if no heuristic would (not read as a weight input, or below the size threshold).
    public var force: Bool?

    /// An override; each setting left nil comes from the rule below it.
    public init(weights: WeightFormat? = nil, granularity: Granularity? = nil, blockSize: Int? = nil,
                symmetric: Bool? = nil, scaleType: DataType? = nil, minElements: Int? = nil, force: Bool? = nil) {
        self.weights = weights
        self.granularity = granularity
        self.blockSize = blockSize
        self.symmetric = symmetric
        self.scaleType = scaleType
        self.minElements = minElements
        self.force = force
    }

    static let keys: Set<String> = ["weights", "granularity", "blockSize", "symmetric", "scaleType", "minElements", "force"]

    /// Decodes one settings object of a config file (strictly: unknown keys and mistyped values are errors).
    init(from container: KeyedDecodingContainer<ConfigKey>, context: String) throws {
        if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { !Self.keys.contains($0) }) {
            throw TensorRuleError("\(context): unknown setting '\(unknown)' (known: \(Self.keys.sorted().joined(separator: ", ")))")
        }
        func value<T: Decodable>(_ type: T.Type, _ key: String, _ expected: String) throws -> T? {
            do {
                return try container.decodeIfPresent(type, forKey: ConfigKey(key))
            } catch {
                throw TensorRuleError("\(context).\(key): expected \(expected)")
            }
        }
        if let w = try value(String.self, "weights", "a string") {
            guard let format = WeightFormat(rawValue: w) else {
                throw TensorRuleError("\(context).weights: '\(w)' is not a format (\(WeightFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            weights = format
        }
        if let g = try value(String.self, "granularity", "a string") {
            guard let parsed = Granularity(rawValue: g) else {
                throw TensorRuleError("\(context).granularity: '\(g)' is not per-tensor, per-channel or per-block")
            }
            granularity = parsed
        }
        if let t = try value(String.self, "scaleType", "a string") {
            switch t {
            case "fp16": scaleType = .float16
            case "fp32": scaleType = .float
            default: throw TensorRuleError("\(context).scaleType: '\(t)' is not fp16 or fp32")
            }
        }
        blockSize = try value(Int.self, "blockSize", "an integer")
        if let b = blockSize, !(1...(1 << 20)).contains(b) { throw TensorRuleError("\(context).blockSize: must be 1 to 1048576") }
        minElements = try value(Int.self, "minElements", "an integer")
        if let m = minElements, m < 0 { throw TensorRuleError("\(context).minElements: must be 0 or more") }
        symmetric = try value(Bool.self, "symmetric", "true or false")
        force = try value(Bool.self, "force", "true or false")
        if weights?.isCompact == false && (granularity != nil || blockSize != nil || symmetric != nil || scaleType != nil) {
            throw TensorRuleError("\(context): granularity, blockSize, symmetric and scaleType apply to int8, int4 and lut formats only")
        }
    }

    /// This rule's settings over `base`.
    func applied(to base: TensorSettings) -> TensorSettings {
        var s = base
        if let weights, weights != s.format {
            // A new format brings its own defaults for what this rule does not set.
            s = TensorSettings(format: weights, granularity: weights.defaultGranularity,
                               blockSize: weights.isPalette ? 16 : s.blockSize,
                               symmetric: weights.defaultSymmetric, scaleType: weights.defaultScaleType,
                               minElements: weights.defaultMinElements)
        }
        if let granularity { s.granularity = granularity }
        if let blockSize { s.blockSize = blockSize }
        if let symmetric { s.symmetric = symmetric }
        if let scaleType { s.scaleType = scaleType }
        if let minElements { s.minElements = minElements }
        if let force { s.force = force }
        return s
    }
}

/// The settings one tensor is converted with.
public struct TensorSettings: Sendable, Equatable {
    /// The format the tensor is converted to.
    public var format: WeightFormat
    /// Which elements share a scale (linear formats) or a table (lut formats).
    public var granularity: Granularity
    /// Elements per block (linear formats) or slices of axis 0 per table (lut formats).
    public var blockSize: Int
    /// Symmetric levels, without a zero point.
    public var symmetric: Bool
    /// Element type of the scales: float or float16.
    public var scaleType: DataType
    /// Tensors with fewer elements stay as they are unless `force` is set.
    public var minElements: Int
    /// Convert the tensor even where no heuristic would (not a weight input, or below `minElements`).
    public var force: Bool = false

    /// Settings for one tensor.
    public init(format: WeightFormat, granularity: Granularity, blockSize: Int, symmetric: Bool, scaleType: DataType,
                minElements: Int, force: Bool = false) {
        self.format = format
        self.granularity = granularity
        self.blockSize = blockSize
        self.symmetric = symmetric
        self.scaleType = scaleType
        self.minElements = minElements
        self.force = force
    }

    /// A sentence for errors: `int4 per-block 32 symmetric fp16 scales`.
    var summary: String {
        guard format.isCompact else { return format.rawValue }
        var text = "\(format.rawValue) \(granularity.rawValue)"
        if granularity == .perBlock { text += " \(blockSize)" }
        return text + (symmetric ? " symmetric" : " asymmetric") + (scaleType == .float16 ? " fp16 scales" : " fp32 scales")
    }
}

/// Per-layer control (`--exclude`, `--include`, `--config`): which rule decides each tensor's format.
///
/// Rules apply in this order, each over the one before: the command line's format options; the config's
/// `default`; its `opTypes` entry for the op type of a node reading the tensor; its `names` entry whose pattern
/// matches the tensor or a reader. Then `--include` (when given, a tensor no pattern picks stays as it is) and
/// `--exclude` (the tensor stays as it is, whatever picked it). Two rules of one level that pick the same tensor
/// with different settings, or an `--exclude` of a tensor the config forces, are a conflict: an error, not a guess.
public struct TensorRules: Sendable, Equatable {
    /// `--exclude` patterns: a tensor any of them picks stays as it is.
    public var excludes: [TensorSelector]
    /// `--include` patterns: when any are given, a tensor none of them picks stays as it is.
    public var includes: [TensorSelector]
    /// The `--config` file's rules; nil without one.
    public var config: QuantizationConfig?

    /// Rules from the command line's patterns and an optional config file.
    public init(excludes: [TensorSelector] = [], includes: [TensorSelector] = [], config: QuantizationConfig? = nil) {
        self.excludes = excludes
        self.includes = includes
        self.config = config
    }

    /// True when there is no pattern and no config.
    public var isEmpty: Bool { excludes.isEmpty && includes.isEmpty && config == nil }

    /// The decision for one tensor.
    struct Decision {
        /// nil: the tensor stays as it is, for `reason`.
        var settings: TensorSettings?
        var rule: String
        var reason: String = ""
    }

    func decide(tensor: String, readers: [WeightUses.Reader], base: TensorSettings) throws(TensorRuleError) -> Decision {
        var settings = base
        var rule = "command line (--weights \(base.format.rawValue))"
        var forcedBy: String?
        if let config {
            if let d = config.defaults {
                settings = d.applied(to: settings)
                rule = "config default"
            }
            let types = Set(readers.map(\.opType)).sorted()
            let byType = types.compactMap { t in config.opTypes[t].map { (t, $0) } }
            if let (type, override) = try single(byType, tensor: tensor, base: settings, level: "opTypes") {
                settings = override.applied(to: settings)
                rule = "config opTypes.\(type)"
            }
            let byName = config.names.filter { $0.selector.matches(tensor, readers) }.map { ($0.selector.description, $0.settings) }
            if let (pattern, override) = try single(byName, tensor: tensor, base: settings, level: "names") {
                settings = override.applied(to: settings)
                rule = "config names['\(pattern)']"
                if override.force == true { forcedBy = rule }
            }
            if settings.force && forcedBy == nil { forcedBy = rule }
        }
        if !includes.isEmpty {
            guard let pick = includes.first(where: { $0.matches(tensor, readers) }) else {
                return Decision(settings: nil, rule: "--include", reason: "not picked by --include")
            }
            rule += ", --include \(pick)"
        }
        if let drop = excludes.first(where: { $0.matches(tensor, readers) }) {
            if let forcedBy {
                throw TensorRuleError("'\(tensor)': --exclude \(drop) and \(forcedBy) (force) contradict each other")
            }
            return Decision(settings: nil, rule: "--exclude \(drop)", reason: "excluded by --exclude \(drop)")
        }
        if settings.format == .fp32 {
            return Decision(settings: nil, rule: rule, reason: "kept as fp32 by \(rule)")
        }
        return Decision(settings: settings, rule: rule)
    }

    /// The one rule of a level that applies; several that agree count as one (the first by name is credited).
    private func single(_ rules: [(String, FormatOverride)], tensor: String, base: TensorSettings,
                        level: String) throws(TensorRuleError) -> (String, FormatOverride)? {
        let sorted = rules.sorted { $0.0 < $1.0 }
        guard let first = sorted.first else { return nil }
        for other in sorted.dropFirst() where other.1.applied(to: base) != first.1.applied(to: base) {
            throw TensorRuleError("'\(tensor)': config \(level) '\(first.0)' (\(first.1.applied(to: base).summary)) and "
                                  + "'\(other.0)' (\(other.1.applied(to: base).summary)) both pick it with different settings")
        }
        return first
    }
}

/// A `--config` file: JSON with up to three sections, each a settings object (keys as the command line's options:
/// `weights`, `granularity`, `blockSize`, `symmetric`, `scaleType` "fp16"/"fp32", `minElements`, and `force`).
///
///     {"default": {"weights": "int4"},
///      "opTypes": {"Gather": {"weights": "int8"}},
///      "names":   {"*classifier*": {"weights": "fp16"}, "pos_embed": {"weights": "int8", "force": true}}}
public struct QuantizationConfig: Sendable, Equatable {
    /// One entry of the `names` section: a pattern and the settings for what it picks.
    public struct NameRule: Sendable, Equatable {
        /// The pattern (the entry's key).
        public var selector: TensorSelector
        /// The settings for the tensors it picks.
        public var settings: FormatOverride

        /// A `names` entry built in code.
        public init(selector: TensorSelector, settings: FormatOverride) {
            self.selector = selector
            self.settings = settings
        }
    }

    /// The `default` section; nil when the file has none.
    public var defaults: FormatOverride?
    /// The `opTypes` section: settings by the op type of a node reading the tensor.
    public var opTypes: [String: FormatOverride]
    /// The `names` section, sorted by pattern.
    public var names: [NameRule]
    /// SHA-256 of the file, as provenance records it.
    public var digest: String

    static let sections: Set<String> = ["default", "opTypes", "names"]

    /// A config built in code (`digest` is what provenance records for it, e.g. a hash of your own settings).
    public init(defaults: FormatOverride? = nil, opTypes: [String: FormatOverride] = [:], names: [NameRule] = [],
                digest: String) {
        self.defaults = defaults
        self.opTypes = opTypes
        self.names = names.sorted { $0.selector.description < $1.selector.description }
        self.digest = digest
    }

    /// Parses a config's bytes; `file` names it in errors.
    public init(data: Data, file: String, digest: String) throws(TensorRuleError) {
        // JSONDecoder keeps the first of two equal keys, other readers the last: refuse, as a manifest does.
        if let key = DuplicateKeys.first(in: data) {
            throw TensorRuleError("\(file): the key '\(key)' appears twice in one object; JSON readers disagree on which one counts, so mlpkg refuses it")
        }
        do {
            self = try JSONDecoder().decode(Parsed.self, from: data).config(file: file, digest: digest)
        } catch let error as TensorRuleError {
            throw error
        } catch let error as DecodingError {
            switch error {
            case .dataCorrupted(let context) where context.codingPath.isEmpty:
                throw TensorRuleError("\(file): not valid JSON")
            default:
                throw TensorRuleError("\(file): expected an object of sections (default, opTypes, names), each of settings")
            }
        } catch {
            throw TensorRuleError("\(file): \(error)")
        }
    }

    /// The file as decoded: sections of raw settings objects, checked and named once the file name is known.
    private struct Parsed: Decodable {
        var sections: [String: [String: KeyedDecodingContainer<ConfigKey>]] = [:]
        var defaults: KeyedDecodingContainer<ConfigKey>?
        var unknown: String?

        init(from decoder: Decoder) throws {
            let top = try decoder.container(keyedBy: ConfigKey.self)
            unknown = top.allKeys.map(\.stringValue).sorted().first { !QuantizationConfig.sections.contains($0) }
            if top.contains(ConfigKey("default")) {
                defaults = try top.nestedContainer(keyedBy: ConfigKey.self, forKey: ConfigKey("default"))
            }
            for section in ["opTypes", "names"] where top.contains(ConfigKey(section)) {
                let object = try top.nestedContainer(keyedBy: ConfigKey.self, forKey: ConfigKey(section))
                var entries: [String: KeyedDecodingContainer<ConfigKey>] = [:]
                for key in object.allKeys {
                    entries[key.stringValue] = try object.nestedContainer(keyedBy: ConfigKey.self, forKey: key)
                }
                sections[section] = entries
            }
        }

        func config(file: String, digest: String) throws -> QuantizationConfig {
            if let unknown { throw TensorRuleError("\(file): unknown section '\(unknown)' (known: default, opTypes, names)") }
            let defaults = try self.defaults.map { try FormatOverride(from: $0, context: "\(file): default") }
            var opTypes: [String: FormatOverride] = [:]
            for (type, object) in sections["opTypes"] ?? [:] {
                opTypes[type] = try FormatOverride(from: object, context: "\(file): opTypes.\(type)")
            }
            var names: [NameRule] = []
            for pattern in (sections["names"] ?? [:]).keys.sorted() {
                names.append(NameRule(selector: try TensorSelector(pattern),
                                      settings: try FormatOverride(from: sections["names"]![pattern]!, context: "\(file): names['\(pattern)']")))
            }
            return QuantizationConfig(defaults: defaults, opTypes: opTypes, names: names, digest: digest)
        }
    }
}

/// Any key of a config object.
struct ConfigKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
