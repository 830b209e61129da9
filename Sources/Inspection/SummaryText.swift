/// Renders a `ModelSummary` as the human-readable report of `mlpkg inspect`.
public enum SummaryText {
    /// The text report: header, package details, inputs and outputs, node and weight tables, and the
    /// `--shapes` tables when the summary has them.
    public static func render(_ s: ModelSummary) -> String {
        var out: [String] = []
        out.append("\(s.file)")
        let producer = [s.producer.name, s.producer.version].filter { !$0.isEmpty }.joined(separator: " ")
        out.append("  IR version \(s.irVersion)" + (producer.isEmpty ? "" : ", produced by \(producer)")
                   + (s.modelVersion != 0 ? ", model version \(s.modelVersion)" : ""))
        out.append("  opsets: " + s.opsetImports.map { "\($0.domain.isEmpty ? "ai.onnx" : $0.domain) \($0.version)" }
            .joined(separator: ", "))
        if let p = s.package {
            out.append("  package format \(p.formatVersion), made by \(p.producer.name) \(p.producer.version) from "
                       + "\(p.source.file) (\(bytes(p.source.bytes)), sha256 \(p.source.sha256.prefix(12))…)")
            out.append("  options: " + p.options.keys.sorted().map { "\($0)=\(p.options[$0]!)" }.joined(separator: ", "))
        }
        out.append("")
        if let p = s.package {
            out += table(title: "Stored weights: \(bytes(p.weightsBytes)) in weights.bin", header: ["encoding", "tensors", "bytes"],
                         rows: p.encodings.map { [$0.encoding, String($0.tensors), bytes($0.bytes)] }, rightAligned: [1, 2])
        }
        out += table(title: "Inputs", header: ["name", "type"], rows: s.inputs.map { [$0.name, $0.type.description] })
        out += table(title: "Outputs", header: ["name", "type"], rows: s.outputs.map { [$0.name, $0.type.description] })

        let nodeTitle = "Nodes: \(s.nodes.total)" + (s.subgraphCount > 0
            ? " (\(s.nodes.mainGraph) in the main graph, the rest in \(s.subgraphCount) subgraph\(s.subgraphCount == 1 ? "" : "s"))"
            : "")
        let ops = s.opCounts.sorted { $0.count != $1.count ? $0.count > $1.count : ($0.domain, $0.opType) < ($1.domain, $1.opType) }
        out += table(title: nodeTitle, header: ["op", "domain", "count"],
                     rows: ops.map { [$0.opType, $0.domain.isEmpty ? "ai.onnx" : $0.domain, String($0.count)] },
                     rightAligned: [2])

        let p = s.parameters
        out += table(title: "Weights: \(grouped(p.count)) parameters, \(bytes(p.bytes)) in \(p.byDtype.reduce(0) { $0 + $1.tensors }) tensors (\(s.initializerCount) initializers)",
                     header: ["dtype", "tensors", "parameters", "bytes"],
                     rows: p.byDtype.map { [$0.dtype, String($0.tensors), grouped($0.count), bytes($0.bytes)] },
                     rightAligned: [1, 2, 3])
        if !s.largestTensors.isEmpty {
            out += table(title: "Largest tensors", header: ["name", "dtype", "shape", "bytes", "stored"],
                         rows: s.largestTensors.map {
                             [$0.name, $0.dtype, "[" + $0.shape.map(String.init).joined(separator: ", ") + "]", bytes($0.bytes),
                              $0.encoding != "raw" ? $0.encoding : $0.external ? "external" : "embedded"]
                         }, rightAligned: [3])
        }
        if !s.externalDataFiles.isEmpty {
            out += table(title: "External data files", header: ["location", "tensors", "bytes"],
                         rows: s.externalDataFiles.map { [$0.location, String($0.tensors), bytes($0.bytes)] },
                         rightAligned: [1, 2])
        }
        if !s.functions.isEmpty {
            out += table(title: "Model-local functions", header: ["function", "nodes"],
                         rows: s.functions.map { ["\($0.domain).\($0.name)", String($0.nodes)] }, rightAligned: [1])
        }
        if !s.metadata.isEmpty {
            out += table(title: "Metadata", header: ["key", "value"], rows: s.metadata.keys.sorted().map { [$0, s.metadata[$0]!] })
        }
        if let shapes = s.shapes { out += render(shapes) }
        while out.last == "" { out.removeLast() }
        return out.joined(separator: "\n")
    }

    /// A titled table with aligned columns, followed by a blank line.
    static func table(title: String, header: [String], rows: [[String]], rightAligned: Set<Int> = []) -> [String] {
        var lines = [title]
        guard !rows.isEmpty else { return lines + ["  (none)", ""] }
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        for (i, row) in all.enumerated() {
            let cells = row.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return rightAligned.contains(column) ? pad + cell : cell + pad
            }
            lines.append(("  " + cells.joined(separator: "  ")).trailingSpacesRemoved)
            if i == 0 {
                lines.append(("  " + widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")))
            }
        }
        return lines + [""]
    }

    /// 1234567 → "1,234,567".
    public static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// 1536 → "1.5 KiB".
    public static func bytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(n) B" }
        let rounded = (value * 10).rounded() / 10
        return "\(rounded) \(units[unit])"
    }
}

extension String {
    var trailingSpacesRemoved: String {
        var s = Substring(self)
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
