import GraphIR
import Profiles

/// One thing the audit found about a node on a compute unit: a rule it fails, the entry that makes it convertible,
/// or a rule it could not check. `text` is the sentence reports print, ending with the rule's confidence and source.
public struct Finding: Codable, Sendable, Equatable {
    /// The rule id, the support entry id, or "no-rule".
    public var rule: String
    /// The profile that declared it.
    public var profile: String
    /// The concrete fact about this node: "dilations [2, 2]", "input 1 'B' is not constant".
    public var detail: String
    /// The rule's reason, in a few words.
    public var reason: String
    /// Where the rule's claim can be read.
    public var source: String
    /// The rule's confidence; nil for findings that rest on no profile entry (e.g. `no-rule`).
    public var confidence: Confidence?
    /// The sentence reports print: the detail, the reason, then the confidence and source.
    public var text: String

    init(rule: String, profile: String, detail: String, reason: String, source: String, confidence: Confidence?) {
        self.rule = rule
        self.profile = profile
        self.detail = detail
        self.reason = reason
        self.source = source
        self.confidence = confidence
        let citation = confidence.map { " (\($0.rawValue): \(source))" } ?? (source.isEmpty ? "" : " (\(source))")
        text = detail.isEmpty ? reason + citation : "\(detail) — \(reason)\(citation)"
    }

    init(rule: Rule, detail: String) {
        self.init(rule: rule.id, profile: rule.profile, detail: detail, reason: rule.reason, source: rule.source,
                  confidence: rule.confidence)
    }

    enum CodingKeys: String, CodingKey { case rule, profile, detail, reason, source, confidence, text }

    /// A report holds thousands of findings of a few dozen rules: each is written as its rule id and detail; the
    /// rule's reason, source and confidence are in the report's `rules` table (and the sentences in `reasons`).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(rule, forKey: .rule)
        try c.encode(detail, forKey: .detail)
    }

    /// Decodes a finding as `encode(to:)` writes it; the reason, source and confidence are empty unless present.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(rule: try c.decode(String.self, forKey: .rule),
                  profile: try c.decodeIfPresent(String.self, forKey: .profile) ?? "",
                  detail: try c.decode(String.self, forKey: .detail),
                  reason: try c.decodeIfPresent(String.self, forKey: .reason) ?? "",
                  source: try c.decodeIfPresent(String.self, forKey: .source) ?? "",
                  confidence: try c.decodeIfPresent(Confidence.self, forKey: .confidence))
    }
}

/// A rule's result for one node.
enum RuleOutcome: Equatable {
    case pass
    case fail(String)
    /// A shape, type or value the rule needs is unknown; says which.
    case unchecked(String)
}

/// Evaluates profile rules against a node's facts. One function per rule kind; each returns the concrete detail a
/// report quotes.
enum RuleEvaluator {
    static func evaluate(_ rule: Rule, _ f: NodeFacts) -> RuleOutcome {
        if let when = rule.when, f.attributeText(when.attribute) != when.equals { return .pass }
        switch rule.kind {
        case .never: return .fail(opLabel(f.node))
        case .maxRank: return maxRank(rule.max ?? 0, f)
        case .maxDim: return maxDim(rule.max ?? 0, f)
        case .staticShape: return staticShape(f)
        case .constantInputs: return constantInputs(rule.inputs ?? [], f)
        case .dtypes: return dtypes(rule.inputs ?? [], allowed: Set(rule.allowed ?? []), f)
        case .attribute: return attribute(rule.attribute ?? "", defaultValue: rule.defaultValue, atMost: rule.eachAtMost ?? 0, f)
        case .inputRank: return inputRank(rule.input ?? 0, oneOf: rule.oneOf ?? [], f)
        case .spatialExtent: return spatialExtent(rule.max ?? 0, f)
        case .resizeScale: return resizeScale(rule.max ?? 0, f)
        }
    }

    static func opLabel(_ node: Node) -> String {
        let domain = Profile.normalizedDomain(node.domain)
        return domain.isEmpty ? node.opType : "\(domain):\(node.opType)"
    }

    /// Collects per-value results: any failure wins; otherwise unknowns make the rule unchecked.
    private static func combine(failures: [String], unknown: [String]) -> RuleOutcome {
        if !failures.isEmpty { return .fail(failures.joined(separator: "; ")) }
        if !unknown.isEmpty { return .unchecked(unknown.joined(separator: ", ")) }
        return .pass
    }

    static func maxRank(_ max: Int, _ f: NodeFacts) -> RuleOutcome {
        var failures: [String] = [], unknown: [String] = []
        for (label, value) in f.labelledValues {
            guard let t = value.tensor else { if value.type == nil { unknown.append(value.name) }; continue }
            guard let shape = t.shape else { unknown.append(value.name); continue }
            if shape.count > max { failures.append("\(label) has rank \(shape.count) > \(max)") }
        }
        return combine(failures: failures, unknown: unknown)
    }

    static func maxDim(_ max: Int, _ f: NodeFacts) -> RuleOutcome {
        var failures: [String] = [], unknown: [String] = []
        for (label, value) in f.labelledValues {
            guard let t = value.tensor else { if value.type == nil { unknown.append(value.name) }; continue }
            guard let shape = t.shape else { unknown.append(value.name); continue }
            var dynamic = false
            for d in shape {
                switch d {
                case .value(let v) where v > max: failures.append("dim \(v) > \(max) (\(label) \(t.shapeDescription))")
                case .value: break
                case .symbol, .unknown: dynamic = true
                }
            }
            if dynamic { unknown.append(value.name) }
        }
        return combine(failures: failures, unknown: unknown)
    }

    static func staticShape(_ f: NodeFacts) -> RuleOutcome {
        var failures: [String] = [], unknown: [String] = []
        for (label, value) in f.labelledValues where !value.constant {
            guard let type = value.type else { unknown.append(value.name); continue }
            guard case .tensor(let t) = type else {
                failures.append("\(label) is not a tensor (\(type))")
                continue
            }
            guard let shape = t.shape else {
                failures.append("\(label) has unknown rank")
                continue
            }
            let dynamic = shape.filter { if case .value = $0 { return false } else { return true } }
            if !dynamic.isEmpty {
                failures.append("\(label) has dynamic dims \(t.shapeDescription)")
            }
        }
        return combine(failures: failures, unknown: unknown)
    }

    static func constantInputs(_ indices: [Int], _ f: NodeFacts) -> RuleOutcome {
        let failures = indices.filter { $0 < f.inputs.count && f.inputs[$0].isPresent && !f.inputs[$0].constant }
            .map { "\(NodeFacts.label("input", $0, f.inputs[$0])) is not constant" }
        return combine(failures: failures, unknown: [])
    }

    static func dtypes(_ indices: [Int], allowed: Set<String>, _ f: NodeFacts) -> RuleOutcome {
        var failures: [String] = [], unknown: [String] = []
        for i in indices where i < f.inputs.count && f.inputs[i].isPresent {
            let value = f.inputs[i]
            guard let dtype = value.tensor?.elementType else { unknown.append(value.name); continue }
            if !allowed.contains(dtype.name) { failures.append("\(NodeFacts.label("input", i, value)) is \(dtype.name)") }
        }
        return combine(failures: failures, unknown: unknown)
    }

    static func attribute(_ name: String, defaultValue: [Int]?, atMost: Int, _ f: NodeFacts) -> RuleOutcome {
        guard let values = f.ints(name) ?? defaultValue else { return .pass }
        return values.contains { $0 > atMost } ? .fail("\(f.node.opType) \(name) \(values)") : .pass
    }

    static func inputRank(_ index: Int, oneOf: [Int], _ f: NodeFacts) -> RuleOutcome {
        guard index < f.inputs.count, f.inputs[index].isPresent else { return .pass }
        let value = f.inputs[index]
        guard let shape = value.tensor?.shape else { return .unchecked(value.name) }
        if oneOf.contains(shape.count) { return .pass }
        return .fail("\(NodeFacts.label("input", index, value)) has rank \(shape.count)")
    }

    static func spatialExtent(_ max: Int, _ f: NodeFacts) -> RuleOutcome {
        guard let value = f.inputs.first, value.isPresent else { return .pass }
        guard let shape = value.tensor?.shape else { return .unchecked(value.name) }
        let spatial = Array(shape.dropFirst(2))
        var over: [Int] = [], dynamic = false
        for d in spatial {
            if case .value(let v) = d { if v > max { over.append(v) } } else { dynamic = true }
        }
        if !over.isEmpty {
            let text = spatial.map(\.description).joined(separator: ", ")
            return .fail("\(NodeFacts.label("input", 0, value)) spatial dims [\(text)] > \(max)")
        }
        return dynamic ? .unchecked(value.name) : .pass
    }

    /// Scale factors of Resize (opset 10: input 1 is `scales`; 11+: input 2 `scales`, input 3 `sizes`) and Upsample
    /// (input 1, or the `scales` attribute of opset 7).
    static func resizeScale(_ max: Int, _ f: NodeFacts) -> RuleOutcome {
        var factors: [Double]?
        var source = "scales"
        if f.node.opType == "Upsample", case .floats(let fs)? = f.node.attribute("scales")?.value {
            factors = fs.map(Double.init)
        } else {
            let scalesIndex = (f.node.opType == "Upsample" || f.inputs.count == 2) ? 1 : 2
            if scalesIndex < f.inputs.count, f.inputs[scalesIndex].isPresent {
                factors = f.constantNumbers(input: scalesIndex)
                if factors?.isEmpty == true { factors = nil }
                if factors == nil, f.constantTensor(f.inputs[scalesIndex].name)?.elementCount != 0 {
                    return .unchecked("\(f.inputs[scalesIndex].name) (scales not constant)")
                }
            }
            if factors == nil, f.node.opType == "Resize", f.inputs.count > 3, f.inputs[3].isPresent {
                source = "sizes"
                guard let sizes = f.constantNumbers(input: 3) else { return .unchecked("\(f.inputs[3].name) (sizes not constant)") }
                guard let dims = f.inputs.first?.tensor?.staticDims, dims.count == sizes.count, !dims.contains(0) else {
                    return .unchecked("\(f.inputs.first?.name ?? "input 0") (shape unknown)")
                }
                factors = zip(sizes, dims).map { $0 / Double($1) }
            }
        }
        guard let factors else { return .unchecked("scale factors unknown") }
        if let bad = factors.first(where: { !$0.isFinite || $0 <= 0 }) {
            return .fail("\(f.node.opType) scale factor \(bad) (from \(source)) is not a finite positive number")
        }
        if factors.contains(where: { $0 > Double(max) + 1e-9 }) {
            // Whole factors print without a fraction; Int(_:) is only safe well inside Int's range.
            let text = factors.map { abs($0) < 1e15 && $0 == $0.rounded() ? String(Int($0)) : String($0) }
                .joined(separator: ", ")
            return .fail("\(f.node.opType) scale factors [\(text)] (from \(source)) > \(max)×")
        }
        return .pass
    }
}
