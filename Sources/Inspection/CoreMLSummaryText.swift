import CoreMLPackage

/// Renders a `CoreMLPackageSummary` as the human-readable report of `mlpkg inspect X.mlpackage`, in the layout of
/// the ONNX and package reports (`SummaryText`).
public enum CoreMLSummaryText {
    /// Header, interface, functions, ops, weights and metadata.
    public static func render(_ s: CoreMLPackageSummary) -> String {
        var out: [String] = [s.file]
        out.append("  Core ML \(s.modelType == "mlProgram" ? "ML Program" : s.modelType), specification version \(s.specificationVersion) "
                   + "(\(s.deploymentTarget))" + (s.isUpdatable ? ", updatable" : ""))
        out.append("  model.mlmodel \(SummaryText.bytes(s.modelBytes))" + (s.fileFormatVersion.map { ", package format \($0)" } ?? ""))
        let m = s.metadata
        for (label, value) in [("author", m.author), ("license", m.license), ("description", m.shortDescription),
                               ("version", m.versionString)] where !value.isEmpty {
            out.append("  \(label): \(value)")
        }
        out.append("")
        func features(_ title: String, _ list: [CoreMLPackageSummary.Feature]) -> [String] {
            let described = list.contains { $0.description != nil }
            return SummaryText.table(title: title, header: described ? ["name", "type", "description"] : ["name", "type"],
                                     rows: list.map { f in
                                         let type = f.type + (f.optional ? " (optional)" : "")
                                         return described ? [f.name, type, f.description ?? ""] : [f.name, type]
                                     })
        }
        out += features("Inputs", s.inputs)
        out += features("Outputs", s.outputs)
        if let c = s.classifier {
            out.append("  classifier: predicted label '\(c.label)'" + (c.probabilities.isEmpty ? "" : ", probabilities '\(c.probabilities)'"))
            out.append("")
        }
        if !s.states.isEmpty { out += features("States", s.states) }
        if !s.functions.isEmpty {
            out += SummaryText.table(
                title: "Functions" + (s.defaultFunction.map { " (default: \($0))" } ?? ""),
                header: ["function", "opset", "target", "inputs", "ops"],
                rows: s.functions.map {
                    [$0.name, $0.opset, $0.deploymentTarget ?? "?", $0.inputs.map { "\($0.name): \($0.type)" }.joined(separator: ", "),
                     String($0.operations)]
                }, rightAligned: [4])
        }
        out += SummaryText.table(title: "MIL ops: \(s.operations.total)", header: ["op", "count"],
                                 rows: s.operations.byType.map { [$0.type, String($0.count)] }, rightAligned: [1])
        for w in s.weights {
            out += SummaryText.table(title: "Weights: \(w.blobs) blobs, \(SummaryText.bytes(w.bytes)) in \(w.file)"
                                     + (s.compression.isEmpty ? "" : " (compressed by " + s.compression.map { "\($0.count) \($0.type)" }
                                        .joined(separator: ", ") + ")"),
                                     header: ["encoding", "blobs", "bytes"],
                                     rows: w.byType.map { [$0.dtype, String($0.blobs), SummaryText.bytes($0.bytes)] }, rightAligned: [1, 2])
            if !w.largest.isEmpty {
                out += SummaryText.table(title: "Largest blobs", header: ["op", "type", "value", "bytes", "offset"],
                                         rows: w.largest.map { [$0.op, $0.opType, $0.type, SummaryText.bytes($0.bytes), String($0.offset)] },
                                         rightAligned: [3, 4])
            }
        }
        if !m.userDefined.isEmpty {
            out += SummaryText.table(title: "Metadata", header: ["key", "value"],
                                     rows: m.userDefined.keys.sorted().map { [$0, m.userDefined[$0]!] })
        }
        while out.last == "" { out.removeLast() }
        return out.joined(separator: "\n")
    }
}
