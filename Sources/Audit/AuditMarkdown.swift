import Foundation
import GraphIR

/// The audit as GitHub-flavoured markdown, for pull requests: summary, partitions, every node's unit, and a table
/// of the fallbacks with their reasons and sources.
public enum AuditMarkdown {
    public static func render(_ r: AuditReport) -> String {
        // Names and reasons come from the model file: HTML-escaped, names inside code spans (docs/HARDENING.md).
        func cell(_ text: String) -> String { Printable.markdown(text) }
        func code(_ text: String) -> String { Printable.markdownCode(text) }
        let s = r.summary
        var out = "## Compute-unit audit: \(code(r.model))\n\n"
        out += "Target **\(r.target)** · compute units `\(r.computeUnits)` (\(r.allowedUnits.joined(separator: ", "))) · "
        out += "profiles \(r.profiles.map { code($0.name) }.joined(separator: ", ")) · chip \(cell(r.chip))"
        if !r.inputShapes.isEmpty { out += " · " + code("--input-shape " + r.inputShapes.joined(separator: " ")) }
        out += "\n\n"
        out += "| | |\n|---|---|\n"
        out += "| \(r.target) coverage (nodes) | **\(ReportFormat.percent(s.coverage))** of \(s.nodes) nodes (+\(s.constantNodes) constant) |\n"
        if let fc = s.flops.coverage {
            out += "| \(r.target) coverage (FLOPs) | \(ReportFormat.percent(fc)) of \(ReportFormat.flops(s.flops.total)) (known for \(s.flops.knownNodes) nodes) |\n"
        }
        out += "| nodes by unit | " + ReportFormat.unitSplit(s).map { "\($0.unit) \($0.nodes) (\(ReportFormat.percent($0.percent)))" }.joined(separator: ", ") + " |\n"
        out += "| partitions | \(s.partitions.count): \(s.partitions.sizes.map(String.init).joined(separator: ", ")) |\n"
        out += "| transitions | \(s.transitions) (hand-offs: \(s.handOffs)) |\n"
        if s.moved > 0 { out += "| moved by smoothing | \(s.moved) |\n" }
        out += "| time | \(cell(ReportFormat.estimateLine(s.estimate))) |\n\n"

        out += "### Partitions\n\n| # | graph | unit | nodes |\n|---|---|---|---|\n"
        for (k, p) in r.partitions.enumerated() {
            let names = p.nodes.map { ReportFormat.nodeName(r.nodes[$0]) }
            let shown = names.count > 8 ? names.prefix(8).joined(separator: ", ") + ", … (\(names.count))" : names.joined(separator: ", ")
            out += "| \(k + 1) | \(p.graph.isEmpty ? "main" : cell(p.graph)) | \(p.unit) | \(cell(shown)) |\n"
        }

        let fallbacks = r.fallbacks
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
            if let p = n.preferredUnit { unit += " (moved from \(p))" }
            out += "| \(code(ReportFormat.nodeName(n))) | \(cell(op)) | \(unit) |\n"
        }
        out += "\n</details>\n\nTimes are estimates from peak throughput and bandwidth (see docs/AUDIT.md), not measurements.\n"
        return out
    }
}
