import ArgumentParser
import CoreMLExport
import Profiles

struct ProfilesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profiles",
        abstract: "List the compute-unit profiles, or show one: its rules with their sources and confidence, and its cost numbers.",
        discussion: """
            Built-in profiles: neural-engine, gpu and cpu (one per Core ML compute unit), each extending core-ml \
            (what converts to Core ML at all). --profile-file checks a profile file of your own and shows it the \
            same way (exit 1 with the first problem when it is not valid).

            Examples:
              mlpkg profiles
              mlpkg profiles neural-engine
              mlpkg profiles --profile-file ours.json --json
            """
    )

    @Argument(help: "A profile to show (neural-engine, gpu, cpu, core-ml, or a --profile-file's name).")
    var name: String?

    @Option(name: .customLong("profile-file"), help: ArgumentHelp("A profile JSON file to check and show (repeatable).", valueName: "file"))
    var profileFiles: [String] = []

    @Flag(help: "Print one JSON document on stdout instead of text.")
    var json = false

    @Flag(help: "Print nothing but errors (checks --profile-file files; the exit code says whether they are valid).")
    var quiet = false

    func run() throws {
        var profiles: [Profile] = []
        do {
            for name in ProfileLibrary.builtInNames { profiles.append(try ProfileLibrary.builtIn(name)) }
            for file in profileFiles { profiles.append(try ProfileLibrary.load(file: file)) }
        } catch {
            throw CommandFailure(error.description)
        }
        let shown: [Profile]
        if let name {
            guard let p = profiles.last(where: { $0.name == name }) else {
                throw ValidationError("no profile named '\(name)' (known: \(profiles.map(\.name).joined(separator: ", ")))")
            }
            shown = [p]
        } else if !profileFiles.isEmpty {
            shown = profiles.filter { $0.file != nil }
        } else {
            shown = profiles
        }
        if quiet { return }
        if json {
            if name != nil || !profileFiles.isEmpty {
                if shown.count == 1 {
                    try JSONOutput.print(ProfileDetail(shown[0]))
                } else {
                    try JSONOutput.print(shown.map(ProfileDetail.init))
                }
            } else {
                try JSONOutput.print(shown.map(ProfileListing.init))
            }
            return
        }
        if name == nil && profileFiles.isEmpty {
            for p in profiles {
                let unit = p.unit?.rawValue ?? "(base)"
                printText("\(p.name.padding(15))\(unit.padding(15))\(p.rules.count) rules, \(p.support.flatMap(\.ops).count) ops; extends \(p.chain.dropLast().joined(separator: " → ").nonEmptyOr("nothing"))")
                printText("    \(p.description)")
            }
            printText("\nShow one with `mlpkg profiles NAME` (--json for the complete data).")
            return
        }
        for p in shown { printText(Self.describe(p)) }
    }

    static func describe(_ p: Profile) -> String {
        var out = "\(p.name)" + (p.file.map { " (\($0))" } ?? " (built-in)") + ": " + (p.unit?.rawValue ?? "base profile") + "\n"
        out += "  \(p.description)\n  chain: \(p.chain.joined(separator: " → "))\n"
        // On the command line the Core ML level is the exporter's lowering rules, not the base profile's lists.
        out += "  On the command line (audit, convert --profile) what converts is decided by the Core ML exporter's lowering rules\n"
        out += "  (listed at the end); the base profile's own rules and support entries apply only to the library's Auditor with\n"
        out += "  coreMLLowering off. Unit profiles' rules decide where a converting node runs.\n"
        if let precision = p.precision {
            out += "  precision: \(precision.compute) — \(precision.reason) (\(precision.confidence.rawValue): \(precision.source))\n"
        }
        out += "\nrules (\(p.rules.count)):\n"
        for r in p.rules {
            var scope = r.ops?.joined(separator: ", ") ?? (r.domain.map { "every \($0) op" } ?? "every op")
            if let d = r.domain, r.ops != nil, !d.isEmpty { scope = "\(d): " + scope }
            if let when = r.when { scope += " when \(when.attribute) = \(when.equals)" }
            out += "  \(r.id) [\(r.profile)] \(r.kind.rawValue)\(parameters(r)) — \(scope)\n"
            out += "      \(r.reason) (\(r.confidence.rawValue): \(r.source))\n"
            if let note = r.note { out += "      note: \(note)\n" }
        }
        out += "\nsupported ops (\(p.support.flatMap(\.ops).count)):\n"
        for s in p.support {
            let domain = (s.domain ?? "").isEmpty ? "" : "\(s.domain!): "
            out += "  \(s.id): \(domain)\(s.ops.joined(separator: ", "))\n      \(s.maps ?? "") (\(s.confidence.rawValue): \(s.source))\n"
        }
        if !p.chips.isEmpty {
            out += "\ncost numbers (peaks, for estimates):\n"
            for chip in p.chipNames {
                let c = p.chips[chip]!
                out += "  \(chip): \(c.gflops) GFLOP/s, \(c.bandwidthGBps) GB/s (\(c.confidence.rawValue): \(c.source))\n"
            }
        }
        if let t = p.transfer {
            out += "  unit switch: \(t.latencyMicroseconds) µs + tensor bytes written and read (\(t.confidence.rawValue): \(t.source))\n"
        }
        if p.unit == nil {
            out += "\nCore ML lowering rules (\(LoweringRegistry.rules.count); the command line's Core ML level, documented):\n"
            for rule in LoweringRegistry.rules {
                let ops = LoweringRegistry.opTypes(ofRule: rule.id)
                out += "  \(rule.id)\(ops.isEmpty ? "" : " — " + ops.joined(separator: ", ")): MIL \(rule.milOps)\n"
                out += "      \(rule.says) (\(rule.source))\n"
            }
        }
        return out
    }

    static func parameters(_ r: Rule) -> String {
        var parts: [String] = []
        if let v = r.max { parts.append("max \(v)") }
        if let v = r.inputs { parts.append("inputs \(v)") }
        if let v = r.input { parts.append("input \(v)") }
        if let v = r.allowed { parts.append("allowed \(v.joined(separator: ", "))") }
        if let v = r.attribute { parts.append("attribute \(v)") }
        if let v = r.eachAtMost { parts.append("each ≤ \(v)") }
        if let v = r.defaultValue { parts.append("default \(v)") }
        if let v = r.oneOf { parts.append("one of \(v)") }
        return parts.isEmpty ? "" : " (" + parts.joined(separator: "; ") + ")"
    }
}

/// A line of `mlpkg profiles --json`.
struct ProfileListing: Encodable {
    var name: String
    var unit: String?
    var chain: [String]
    var description: String
    var rules: Int
    var ops: Int
    var chips: [String]

    init(_ p: Profile) {
        name = p.name
        unit = p.unit?.rawValue
        chain = p.chain
        description = p.description
        rules = p.rules.count
        ops = p.support.flatMap(\.ops).count
        chips = p.chipNames
    }
}

/// `mlpkg profiles NAME --json`: the resolved profile, each rule with the profile that declared it.
struct ProfileDetail: Encodable {
    struct DeclaredRule: Encodable {
        var profile: String
        var rule: Rule
        func encode(to encoder: any Encoder) throws {
            try rule.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(profile, forKey: .profile)
        }
        enum Key: String, CodingKey { case profile }
    }

    var name: String
    var unit: String?
    var chain: [String]
    var file: String?
    var description: String
    var precision: Precision?
    var support: [SupportEntry]
    var rules: [DeclaredRule]
    var transfer: TransferCost?
    var chips: [String: ChipCost]
    /// For the base profile: the Core ML exporter's lowering rules, which decide what converts on the command line.
    var loweringRules: [LoweringRuleDetail]?

    struct LoweringRuleDetail: Encodable {
        var id: String
        var ops: [String]
        var milOps: String
        var says: String
        var source: String
        var confidence = "documented"
    }

    init(_ p: Profile) {
        name = p.name
        unit = p.unit?.rawValue
        chain = p.chain
        file = p.file
        description = p.description
        precision = p.precision
        support = p.support
        rules = p.rules.map { DeclaredRule(profile: $0.profile, rule: $0) }
        transfer = p.transfer
        chips = p.chips
        if p.unit == nil {
            loweringRules = LoweringRegistry.rules.map {
                LoweringRuleDetail(id: $0.id, ops: LoweringRegistry.opTypes(ofRule: $0.id), milOps: $0.milOps, says: $0.says,
                                   source: $0.source)
            }
        }
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
    func nonEmptyOr(_ other: String) -> String { isEmpty ? other : self }
}
