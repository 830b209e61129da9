import GraphIR
import Foundation

/// Number formatting shared by the text, markdown and HTML reports.
enum ReportFormat {
    static func percent(_ p: Double) -> String { String(format: "%.1f%%", p) }

    static func seconds(_ s: Double) -> String {
        if s >= 1 { return String(format: "%.2f s", s) }
        if s >= 1e-3 { return String(format: "%.2f ms", s * 1e3) }
        return String(format: "%.1f µs", s * 1e6)
    }

    static func flops(_ f: Double) -> String {
        if f >= 1e9 { return String(format: "%.2f GFLOP", f / 1e9) }
        if f >= 1e6 { return String(format: "%.2f MFLOP", f / 1e6) }
        if f >= 1e3 { return String(format: "%.1f kFLOP", f / 1e3) }
        return String(format: "%.0f FLOP", f)
    }

    static func bytes(_ b: Double) -> String {
        if b >= 1_048_576 { return String(format: "%.1f MiB", b / Double(1 << 20)) }
        if b >= 1024 { return String(format: "%.1f KiB", b / Double(1 << 10)) }
        return String(format: "%.0f B", b)
    }

    static let unitOrder = ["neural-engine", "gpu", "cpu", "unsupported"]

    /// "neural-engine 88.9% (8) · gpu 11.1% (1)"
    static func unitSplit(_ s: AuditReport.Summary) -> [(unit: String, nodes: Int, percent: Double)] {
        unitOrder.compactMap { unit in
            s.nodesByUnit[unit].map { (unit, $0, s.coverageByUnit[unit] ?? 0) }
        }
    }

    static func estimateLine(_ e: AuditReport.Estimate) -> String {
        var parts = unitOrder.compactMap { unit in e.secondsByUnit[unit].map { "\(unit) \(seconds($0))" } }
        parts.append("transfers \(seconds(e.transferSeconds))")
        var line = "estimate for \(e.chip): " + parts.joined(separator: ", ") + " → \(seconds(e.totalSeconds))"
        if e.nodesWithoutEstimate > 0 { line += " (\(e.nodesWithoutEstimate) node(s) without known shapes left out)" }
        return line
    }

    /// "2.33% (1 of 43 nodes)": the exact coverage with the digits it needs, and the count behind it.
    static func coverageLine(_ r: AuditReport) -> String {
        let s = r.summary
        let exact = s.coverageExact ?? s.coverage
        let on = s.nodesOnTarget ?? s.nodesByUnit[r.target] ?? 0
        return "\(r.target) coverage \(exactPercent(exact)) (\(on) of \(s.nodes) nodes; \(s.constantNodes) constant or folded, not counted)"
    }

    /// How the placements on the target are established: "26 assumed (no known blocker)".
    static func placementLine(_ s: AuditReport.Summary) -> String? {
        guard let p = s.placementOnTarget, !p.isEmpty else { return nil }
        let order = ["documented", "observed", "community", "assumed"]
        return order.compactMap { c in p[c].map { "\($0) \(c)\(c == "assumed" ? " (no known blocker; no source says they run there)" : "")" } }
            .joined(separator: ", ")
    }

    static func loadBlockingLine(_ r: AuditReport) -> String? {
        guard let n = r.summary.loadBlocking, n > 0 else { return nil }
        return "\(n) node(s) block loading: no allowed unit runs them, so the model does not convert to one Core ML program until they change"
    }

    static func suggestionLine(_ r: AuditReport) -> String? {
        guard let p = r.summary.pinSuggestion else { return nil }
        let flags = p.suggested.map { "--input-shape \($0)" }.joined(separator: " ")
        let before = r.summary.coverageExact ?? r.summary.coverage
        return "pin the dynamic inputs: \(flags) → \(r.target) coverage \(exactPercent(before)) → \(exactPercent(p.coverage)) "
            + "(\(p.gain >= 0 ? "+" : "")\(p.gain) nodes\(p.loadBlocking > 0 ? ", \(p.loadBlocking) still block loading" : ""); re-audited with these pins; \(p.note))"
    }

    static func leavesOutLine(_ s: AuditReport.Summary) -> String? {
        guard let list = s.estimateLeavesOut, !list.isEmpty else { return nil }
        return "the estimate leaves out: " + list.joined(separator: "; ")
    }

    /// A percentage with the digits it needs (up to 2 decimals): 96.3%, 2.33%, 100%.
    static func exactPercent(_ p: Double) -> String {
        var text = String(format: "%.2f", p)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text + "%"
    }

    static func nodeName(_ n: AuditReport.NodeReport) -> String {
        (n.graph.isEmpty ? "" : n.graph + "/") + (n.name.isEmpty ? "#\(n.index)" : n.name)
    }
}

/// The terminal form of an audit: a compact table of nodes and units, the summary, and each fallback's reasons.
/// Colour (ANSI) only when asked, i.e. on a TTY.
public enum AuditText {
    /// `compact`: the summary, blockers and suggestion only (no node table, no per-node reasons).
    public static func render(_ report: AuditReport, color: Bool = false, compact: Bool = false) -> String {
        // Every string from the model is made terminal-safe first; the only escape sequences left are paint's.
        let r = report.terminalSafe()
        func paint(_ unit: String, _ text: String) -> String {
            guard color else { return text }
            let code = ["neural-engine": "32", "gpu": "34", "cpu": "33", "unsupported": "31"][unit] ?? "0"
            return "\u{1B}[\(code)m\(text)\u{1B}[0m"
        }
        func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : s + String(repeating: " ", count: width - s.count) }

        var out = "\(r.model): audit for \(r.target) (compute units \(r.computeUnits): \(r.allowedUnits.joined(separator: ", ")); "
        out += "profiles \(r.profiles.map(\.name).joined(separator: ", ")); chip \(r.chip)"
        if !r.inputShapes.isEmpty { out += "; --input-shape \(r.inputShapes.joined(separator: " "))" }
        out += ")\n\n"

        // What matters first: coverage, what blocks loading, the fix, the blockers by rule.
        let s = r.summary
        out += ReportFormat.coverageLine(r) + "\n"
        if let p = ReportFormat.placementLine(s) { out += "  placement on \(r.target): \(p)\n" }
        if let b = ReportFormat.loadBlockingLine(r) { out += paint("unsupported", "  ! " + b) + "\n" }
        if let p = ReportFormat.suggestionLine(r) { out += "  suggestion: \(p)\n" }
        if let blockers = s.blockers, !blockers.isEmpty {
            out += "\nblockers on \(r.target) (nodes, of which load-blocking; rule; what to do):\n"
            for b in blockers {
                let confidence = b.confidence.map { " (\($0.rawValue))" } ?? ""
                out += "  \(pad(String(b.nodes), 5)) \(pad(b.loadBlocking > 0 ? "(\(b.loadBlocking))" : "", 6)) \(b.rule)\(confidence): \(b.action)\n"
                out += "        \(b.reason); e.g. \(b.examples.joined(separator: ", "))\n"
            }
        }
        out += "\nnodes by unit: " + ReportFormat.unitSplit(s).map { paint($0.unit, "\($0.unit) \(ReportFormat.percent($0.percent)) (\($0.nodes))") }
            .joined(separator: " · ")
        if let fc = s.flops.coverage { out += "\n\(r.target) FLOPs: \(ReportFormat.percent(fc)) of \(ReportFormat.flops(s.flops.total)) (FLOPs known for \(s.flops.knownNodes) of \(s.nodes) nodes)" }
        out += "\npartitions: \(s.partitions.count) \(s.partitions.sizes.count > 24 ? Array(s.partitions.sizes.prefix(24)).description.dropLast() + ", …]" : s.partitions.sizes.description) · transitions: \(s.transitions)"
        out += " · hand-offs: \(s.handOffs) (\(ReportFormat.bytes(s.handOffBytes)) known)"
        if s.moved > 0 { out += " · moved by smoothing: \(s.moved)" }
        out += "\n" + ReportFormat.estimateLine(s.estimate) + "\n"
        if let l = ReportFormat.leavesOutLine(s) { out += "  \(l)\n" }
        if compact { return out }

        let names = r.nodes.map(ReportFormat.nodeName)
        let nameWidth = min(40, max(4, names.map(\.count).max() ?? 4))
        let opWidth = min(24, max(2, r.nodes.map { $0.domain.isEmpty ? $0.opType.count : $0.domain.count + 1 + $0.opType.count }.max() ?? 2))
        out += "\n" + pad("node", nameWidth) + "  " + pad("op", opWidth) + "  unit\n"
        for (n, name) in zip(r.nodes, names) {
            let op = n.domain.isEmpty ? n.opType : "\(n.domain):\(n.opType)"
            var unit = paint(n.unit, n.unit)
            if n.constant { unit += " (constant)" }
            if let p = n.placement, p.confidence == .assumed, n.unit == r.target { unit += " (assumed)" }
            if let p = n.preferredUnit { unit += " (moved from \(p))" }
            if n.blocksLoading == true { unit += " (blocks loading)" }
            out += pad(String(name.prefix(nameWidth)), nameWidth) + "  " + pad(String(op.prefix(opWidth)), opWidth) + "  " + unit + "\n"
        }

        let fallbacks = r.fallbacks
        if !fallbacks.isEmpty {
            out += "\nnot on \(r.target) (\(fallbacks.count)):\n"
            for n in fallbacks {
                out += "  \(ReportFormat.nodeName(n)) (\(n.opType)) → \(paint(n.unit, n.unit))\n"
                for reason in n.reasons { out += "    - \(reason)\n" }
            }
        }
        return out
    }
}

extension AuditReport {
    /// The report with every string that comes from the model or a user file made terminal-safe
    /// (`Printable.terminal`): names, op types, domains, graph paths, reasons, profile names and files.
    func terminalSafe() -> AuditReport {
        var r = self
        let t = { (s: String) in Printable.terminal(s) }
        r.model = t(r.model)
        r.chip = t(r.chip)
        r.inputShapes = r.inputShapes.map(t)
        r.profiles = r.profiles.map { p in
            var p = p
            p.name = t(p.name)
            p.chain = p.chain.map(t)
            p.file = p.file.map(t)
            return p
        }
        r.nodes = r.nodes.map { n in
            var n = n
            n.name = t(n.name)
            n.label = t(n.label)
            n.opType = t(n.opType)
            n.domain = t(n.domain)
            n.graph = t(n.graph)
            n.reasons = n.reasons.map(t)
            n.notChecked = n.notChecked.map(t)
            return n
        }
        return r
    }
}
