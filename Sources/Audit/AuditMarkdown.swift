import Foundation
import GraphIR

/// The audit as GitHub-flavoured markdown, for pull requests: summary, partitions, every node's unit, and a table
/// of the fallbacks with their reasons and sources.
public enum AuditMarkdown {
    /// The longest compact report: a pull-request comment holds 65,536 characters.
    public static let compactLimit = 60_000

    /// `compact`: the summary, blockers, suggestion and fallbacks grouped by rule (no per-node tables), never
    /// longer than `compactLimit` characters.
    public static func render(_ r: AuditReport, compact: Bool = false) -> String {
        // Names and reasons come from the model file: HTML-escaped, names inside code spans (docs/HARDENING.md).
        func cell(_ text: String) -> String { Printable.markdown(text) }
        func code(_ text: String) -> String { Printable.markdownCode(text) }
        let s = r.summary
        var out = "## Compute-unit audit: \(code(r.model))\n\n"
        out += "Target **\(r.target)** · compute units `\(r.computeUnits)` (\(r.allowedUnits.joined(separator: ", "))) · "
        out += "profiles \(r.profiles.map { code($0.name) }.joined(separator: ", ")) · chip \(cell(r.chip))"
        if !r.inputShapes.isEmpty { out += " · " + code("--input-shape " + r.inputShapes.joined(separator: " ")) }
        out += "\n\n"

        // What matters first: coverage, what blocks loading, the fix, the blockers by rule.
        out += "**\(cell(ReportFormat.coverageLine(r)))**\n\n"
        if let p = ReportFormat.placementLine(s) { out += "- placement on \(r.target): \(cell(p))\n" }
        if let b = ReportFormat.loadBlockingLine(r) { out += "- :warning: **\(cell(b))**\n" }
        if let p = ReportFormat.suggestionLine(r) { out += "- **suggestion**: \(cell(p))\n" }
        out += "\n"
        if let blockers = s.blockers, !blockers.isEmpty {
            out += "### Blockers on \(r.target)\n\n| rule | nodes | load-blocking | what to do | why (source) |\n|---|---|---|---|---|\n"
            for b in blockers {
                let why = b.reason + (b.confidence.map { " (\($0.rawValue): \(b.source))" } ?? " (\(b.source))")
                out += "| \(code(b.rule)) | \(b.nodes) | \(b.loadBlocking) | \(cell(b.action)) | \(cell(why)) |\n"
            }
            out += "\n"
        }

        out += "### Summary\n\n| | |\n|---|---|\n"
        if let fc = s.flops.coverage {
            out += "| \(r.target) coverage (FLOPs) | \(ReportFormat.percent(fc)) of \(ReportFormat.flops(s.flops.total)) (known for \(s.flops.knownNodes) nodes) |\n"
        }
        out += "| nodes by unit | " + ReportFormat.unitSplit(s).map { "\($0.unit) \($0.nodes) (\(ReportFormat.percent($0.percent)))" }.joined(separator: ", ") + " |\n"
        let sizes = s.partitions.sizes.count > 40 ? s.partitions.sizes.prefix(40).map(String.init).joined(separator: ", ") + ", …"
            : s.partitions.sizes.map(String.init).joined(separator: ", ")
        out += "| partitions | \(s.partitions.count): \(sizes) |\n"
        out += "| transitions | \(s.transitions) (hand-offs: \(s.handOffs)) |\n"
        if s.moved > 0 { out += "| moved by smoothing | \(s.moved) |\n" }
        out += "| time | \(cell(ReportFormat.estimateLine(s.estimate))) |\n"
        if let l = ReportFormat.leavesOutLine(s) { out += "| | \(cell(l)) |\n" }
        out += "\n"

        let fallbacks = r.fallbacks
        if compact {
            out += "### Fallbacks (not on \(r.target)): \(fallbacks.count), by rule\n\n"
            if fallbacks.isEmpty { out += "Every node runs on \(r.target).\n" }
            for b in s.blockers ?? [] {
                let members = fallbacks.filter { n in
                    let failures = n.verdicts[r.target]?.failures ?? []
                    return failures.contains { $0.rule == b.rule } || (failures.isEmpty && ["transition-smoothing", "preference"].contains(b.rule))
                }
                let shown = members.prefix(10).map { "\(code(ReportFormat.nodeName($0))) (\(cell($0.opType)) → \($0.unit))" }
                out += "- \(code(b.rule)), \(members.count): " + shown.joined(separator: ", ") + (members.count > 10 ? ", … \(members.count - 10) more" : "") + "\n"
            }
            out += "\nCompact report: `mlpkg audit --format markdown` without `--compact` lists every node.\n"
            if out.count > compactLimit {
                // Bounded whatever the model: cut at a line and say so.
                var cut = String(out.prefix(compactLimit - 200))
                if let newline = cut.lastIndex(of: "\n") { cut = String(cut[...newline]) }
                out = cut + "\n… (cut at \(compactLimit) characters; the JSON report is complete)\n"
            }
            return out
        }

        out += "### Partitions\n\n| # | graph | unit | nodes |\n|---|---|---|---|\n"
        for (k, p) in r.partitions.enumerated() {
            let names = p.nodes.map { ReportFormat.nodeName(r.nodes[$0]) }
            let shown = names.count > 8 ? names.prefix(8).joined(separator: ", ") + ", … (\(names.count))" : names.joined(separator: ", ")
            out += "| \(k + 1) | \(p.graph.isEmpty ? "main" : cell(p.graph)) | \(p.unit) | \(cell(shown)) |\n"
        }

        out += "\n### Fallbacks (not on \(r.target)): \(fallbacks.count)\n\n"
        if fallbacks.isEmpty {
            out += "Every node runs on \(r.target).\n"
        } else {
            out += "| node | op | unit | reasons (source) |\n|---|---|---|---|\n"
            for n in fallbacks {
                let op = n.domain.isEmpty ? n.opType : "\(n.domain):\(n.opType)"
                out += "| \(code(ReportFormat.nodeName(n))) | \(cell(op)) | \(n.unit) | \(n.reasons.map(cell).joined(separator: "<br>")) |\n"
            }
        }

        out += "\n<details><summary>All \(r.nodes.count) nodes</summary>\n\n| node | op | unit |\n|---|---|---|\n"
        for n in r.nodes {
            let op = n.domain.isEmpty ? n.opType : "\(n.domain):\(n.opType)"
            var unit = n.unit
            if n.constant { unit += " (constant)" }
            if let p = n.placement, p.confidence == .assumed, n.unit == r.target { unit += " (assumed)" }
            if let p = n.preferredUnit { unit += " (moved from \(p))" }
            if n.blocksLoading == true { unit += " (blocks loading)" }
            out += "| \(code(ReportFormat.nodeName(n))) | \(cell(op)) | \(unit) |\n"
        }
        out += "\n</details>\n\nTimes are estimates from peak throughput and bandwidth (see docs/AUDIT.md), not measurements.\n"
        return out
    }
}
