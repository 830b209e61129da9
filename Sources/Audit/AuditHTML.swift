import Foundation

/// The audit as one self-contained HTML file (inline CSS and SVG, no script or network): each graph drawn with its
/// nodes coloured by unit, the partitions as a strip, and a table of the fallbacks with their reasons and sources.
public enum AuditHTML {
    /// Fill colour of each unit (the screenshot test looks for these exact colours).
    public static let colors: [String: String] = [
        "neural-engine": "#1f9d55", "gpu": "#2563eb", "cpu": "#f59e0b", "unsupported": "#dc2626",
    ]
    static let constantColor = "#cbd5e1"

    /// The report as one self-contained HTML document.
    public static func render(_ r: AuditReport) -> String {
        let s = r.summary
        var out = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Audit: \(escape(r.model))</title>
            <style>
            body{font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px;color:#111827;background:#fff}
            h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
            .meta{color:#4b5563}.legend span{display:inline-block;margin-right:14px}
            .sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin-right:4px}
            table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #d1d5db;padding:4px 8px;vertical-align:top;text-align:left}
            th{background:#f3f4f6}.num{text-align:right}.unit{font-weight:600;color:#fff;border-radius:3px;padding:1px 6px;white-space:nowrap}
            ul.reasons{margin:0;padding-left:18px}svg text{font:11px sans-serif}
            .strip{display:flex;height:26px;border:1px solid #9ca3af;margin:6px 0;max-width:960px}
            .strip div{color:#fff;font-size:11px;overflow:hidden;white-space:nowrap;padding:5px 3px;box-sizing:border-box;border-right:1px solid #fff}
            .big{font-size:22px;font-weight:700}
            .warn{color:#b91c1c;font-weight:600}.suggest{background:#ecfdf5;border:1px solid #10b981;padding:6px 10px;max-width:1100px}
            #fallbacks{border-left:6px solid #7c3aed}svg.graph{background:#ecfeff}details{margin:8px 0}summary{cursor:pointer;font-weight:600}
            </style></head><body>
            <h1>Compute-unit audit: \(escape(r.model))</h1>
            <p class="meta">target <b>\(escape(r.target))</b> · compute units \(escape(r.computeUnits)) (\(escape(r.allowedUnits.joined(separator: ", ")))) · profiles \(escape(r.profiles.map(\.name).joined(separator: ", "))) · chip \(escape(r.chip))\(r.inputShapes.isEmpty ? "" : " · --input-shape " + escape(r.inputShapes.joined(separator: " ")))</p>
            <p><span class="big" id="coverage">\(ReportFormat.exactPercent(s.coverageExact ?? s.coverage))</span> \(escape(ReportFormat.coverageLine(r)))\(s.flops.coverage.map { " · " + ReportFormat.percent($0) + " of " + ReportFormat.flops(s.flops.total) + " (FLOPs known for \(s.flops.knownNodes) nodes)" } ?? "")</p>

            """
        if let p = ReportFormat.placementLine(s) { out += "<p class=\"meta\" id=\"placement\">placement on \(escape(r.target)): \(escape(p))</p>\n" }
        if let b = ReportFormat.loadBlockingLine(r) { out += "<p class=\"warn\" id=\"load-blocking\">\(escape(b))</p>\n" }
        if let p = ReportFormat.suggestionLine(r) { out += "<p class=\"suggest\" id=\"suggestion\"><b>Suggestion:</b> \(escape(p))</p>\n" }
        if let blockers = s.blockers, !blockers.isEmpty {
            out += "<h2>Blockers on \(escape(r.target))</h2>\n<table id=\"blockers\"><tr><th>rule</th><th class=\"num\">nodes</th><th class=\"num\">load-blocking</th><th>what to do</th><th>why (source)</th></tr>\n"
            for b in blockers {
                let why = b.reason + (b.confidence.map { " (\($0.rawValue): \(b.source))" } ?? " (\(b.source))")
                out += "<tr><td>\(escape(b.rule))</td><td class=\"num\">\(b.nodes)</td><td class=\"num\">\(b.loadBlocking)</td><td>\(escape(b.action))</td><td>\(linked(why))</td></tr>\n"
            }
            out += "</table>\n"
        }

        let fallbacks = r.fallbacks
        out += "<h2>Fallbacks: \(fallbacks.count) node(s) not on \(escape(r.target))</h2>\n"
        out += "<table id=\"fallbacks\"><tr><th>node</th><th>op</th><th>unit</th><th>reasons and sources</th></tr>\n"
        for n in fallbacks {
            out += "<tr class=\"fallback\" data-node=\"\(escape(ReportFormat.nodeName(n)))\"><td>\(escape(ReportFormat.nodeName(n)))</td><td>\(escape(n.domain.isEmpty ? n.opType : n.domain + ":" + n.opType))</td><td>\(badge(n.unit))</td><td><ul class=\"reasons\">"
            for reason in n.reasons { out += "<li>\(linked(reason))</li>" }
            out += "</ul></td></tr>\n"
        }
        if fallbacks.isEmpty { out += "<tr><td colspan=\"4\">every node runs on \(escape(r.target))</td></tr>\n" }
        out += "</table>\n"
        out += "<h2>Units</h2>\n<p class=\"legend\">"

        for unit in ReportFormat.unitOrder {
            out += "<span><span class=\"sw\" style=\"background:\(colors[unit]!)\"></span>\(unit) \(s.nodesByUnit[unit] ?? 0)</span>"
        }
        out += "<span><span class=\"sw\" style=\"background:\(constantColor)\"></span>constant</span></p>\n"
        out += "<p class=\"meta\">partitions \(s.partitions.count) · transitions \(s.transitions) · hand-offs \(s.handOffs) · \(escape(ReportFormat.estimateLine(s.estimate)))</p>\n"

        out += "<h2>Partitions</h2>\n<div class=\"strip\" id=\"partition-strip\">"
        let total = max(1, r.partitions.reduce(0) { $0 + $1.size })
        for (k, p) in r.partitions.enumerated() {
            let width = max(1.5, Double(p.size) / Double(total) * 100)
            out += "<div style=\"width:\(String(format: "%.2f", width))%;background:\(colors[p.unit] ?? "#888")\" title=\"partition \(k + 1): \(escape(p.unit)), \(p.size) node(s)\(p.graph.isEmpty ? "" : " in " + escape(p.graph))\">\(k + 1)</div>"
        }
        out += "</div>\n<table id=\"partitions\"><tr><th>#</th><th>graph</th><th>unit</th><th class=\"num\">nodes</th><th>first → last</th></tr>\n"
        for (k, p) in r.partitions.enumerated() {
            let first = p.nodes.first.map { ReportFormat.nodeName(r.nodes[$0]) } ?? ""
            let last = p.nodes.last.map { ReportFormat.nodeName(r.nodes[$0]) } ?? ""
            out += "<tr><td>\(k + 1)</td><td>\(escape(p.graph.isEmpty ? "main" : p.graph))</td><td>\(badge(p.unit))</td><td class=\"num\">\(p.size)</td><td>\(escape(first))\(p.size > 1 ? " → " + escape(last) : "")</td></tr>\n"
        }
        out += "</table>\n"

        out += "<h2>Graph</h2>\n<details id=\"graph\" open><summary>\(r.nodes.count) nodes drawn by unit (hover for the reasons)</summary>\n"
        var graphOrder: [String] = []
        for n in r.nodes where !graphOrder.contains(n.graph) { graphOrder.append(n.graph) }
        for graph in graphOrder {
            let members = r.nodes.indices.filter { r.nodes[$0].graph == graph }
            if !graph.isEmpty { out += "<h3>subgraph \(escape(graph))</h3>\n" }
            out += svg(r, members: members, graph: graph)
        }
        out += "</details>\n"

        out += "<h2>All nodes</h2>\n<details id=\"all-nodes\"><summary>\(r.nodes.count) nodes with their units, inputs and FLOPs</summary>\n<table id=\"nodes\"><tr><th>node</th><th>op</th><th>unit</th><th>inputs</th><th class=\"num\">FLOPs</th></tr>\n"
        for n in r.nodes {
            var unit = badge(n.unit)
            if n.constant { unit += " constant" }
            if let p = n.preferredUnit { unit += " (moved from \(escape(p)))" }
            let inputs = n.inputs.map { "\($0.name): \($0.type)" }.joined(separator: "; ")
            out += "<tr class=\"node-row\" data-unit=\"\(escape(n.unit))\"><td>\(escape(ReportFormat.nodeName(n)))</td><td>\(escape(n.opType))</td><td>\(unit)</td><td>\(escape(inputs))</td><td class=\"num\">\(n.flops.map(ReportFormat.flops) ?? "?")</td></tr>\n"
        }
        out += "</table>\n</details>\n<p class=\"meta\">Times are estimates from peak throughput and bandwidth (docs/AUDIT.md), not measurements. Apple publishes no list of what runs on the Neural Engine; each reason names its source and how far it is established (documented, observed, community; assumed: no known blocker).</p>\n</body></html>\n"
        return out
    }

    static func badge(_ unit: String) -> String {
        "<span class=\"unit\" style=\"background:\(colors[unit] ?? "#6b7280")\">\(escape(unit))</span>"
    }

    /// One graph drawn top to bottom: a node's row is the longest path to it from the graph's inputs.
    static func svg(_ r: AuditReport, members: [Int], graph: String) -> String {
        let boxWidth = 168.0, boxHeight = 38.0, columnGap = 22.0, rowGap = 30.0, margin = 12.0
        var producer: [String: Int] = [:]
        for i in members { for o in r.nodes[i].outputs { producer[o.name] = i } }
        var layer: [Int: Int] = [:]
        for i in members {  // members are in topological (execution) order
            let parents = r.nodes[i].inputs.compactMap { producer[$0.name] }.filter { $0 != i }
            layer[i] = (parents.compactMap { layer[$0] }.max() ?? -1) + 1
        }
        var rows: [[Int]] = []
        for i in members {
            let l = layer[i]!
            while rows.count <= l { rows.append([]) }
            rows[l].append(i)
        }
        let columns = max(1, rows.map(\.count).max() ?? 1)
        let width = margin * 2 + Double(columns) * boxWidth + Double(columns - 1) * columnGap
        let height = margin * 2 + Double(rows.count) * boxHeight + Double(max(0, rows.count - 1)) * rowGap
        var position: [Int: (x: Double, y: Double)] = [:]
        for (l, row) in rows.enumerated() {
            let rowWidth = Double(row.count) * boxWidth + Double(row.count - 1) * columnGap
            let start = (width - rowWidth) / 2
            for (k, i) in row.enumerated() {
                position[i] = (start + Double(k) * (boxWidth + columnGap), margin + Double(l) * (boxHeight + rowGap))
            }
        }
        var out = "<svg class=\"graph\" data-graph=\"\(escape(graph))\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">\n"
        for i in members {
            for input in r.nodes[i].inputs {
                guard let p = producer[input.name], p != i, let a = position[p], let b = position[i] else { continue }
                out += "<line x1=\"\(a.x + boxWidth / 2)\" y1=\"\(a.y + boxHeight)\" x2=\"\(b.x + boxWidth / 2)\" y2=\"\(b.y)\" stroke=\"#9ca3af\" stroke-width=\"1.2\"/>\n"
            }
        }
        for i in members {
            let n = r.nodes[i], p = position[i]!
            let fill = n.constant ? constantColor : colors[n.unit] ?? "#6b7280"
            let text = n.constant ? "#111827" : "#ffffff"
            let title = ([ReportFormat.nodeName(n) + " (" + n.opType + ") → " + n.unit] + n.reasons).joined(separator: "\n")
            out += "<g class=\"node\" data-unit=\"\(escape(n.unit))\" data-node=\"\(escape(ReportFormat.nodeName(n)))\"><title>\(escape(title))</title>"
            out += "<rect x=\"\(p.x)\" y=\"\(p.y)\" width=\"\(boxWidth)\" height=\"\(boxHeight)\" rx=\"5\" fill=\"\(fill)\"/>"
            out += "<text x=\"\(p.x + 8)\" y=\"\(p.y + 15)\" fill=\"\(text)\" font-weight=\"bold\">\(escape(String(n.opType.prefix(24))))</text>"
            out += "<text x=\"\(p.x + 8)\" y=\"\(p.y + 30)\" fill=\"\(text)\">\(escape(String((n.name.isEmpty ? "#\(n.index)" : n.name).prefix(26))))</text></g>\n"
        }
        return out + "</svg>\n"
    }

    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// Escapes a reason and turns its http(s) URLs into links (they are not fetched; the file stays offline).
    static func linked(_ s: String) -> String {
        var out = ""
        var rest = Substring(s)
        while let range = rest.range(of: "https://") ?? rest.range(of: "http://") {
            out += escape(String(rest[..<range.lowerBound]))
            var end = range.upperBound
            while end < rest.endIndex, !" )\n".contains(rest[end]) { end = rest.index(after: end) }
            let url = String(rest[range.lowerBound..<end])
            out += "<a href=\"\(escape(url))\">\(escape(url))</a>"
            rest = rest[end...]
        }
        return out + escape(String(rest))
    }
}
