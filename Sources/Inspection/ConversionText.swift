import MLPackage
import Quantization

/// The terminal summary of a conversion.
public enum ConversionText {
    /// The summary `convert` prints: graph passes (when `graph` is given), weight bytes before and after,
    /// accuracy, file sizes, and tables of the largest converted and kept tensors.
    public static func render(_ r: ConversionReport, source: String, sourceBytes: Int, package: String,
                              packageBytes: Int, graph: GraphPassReport? = nil) -> String {
        let t = r.totals
        var lines = ["\(source) → \(package) (weights \(r.weights))"]
        if let g = graph {
            var line = "  graph: \(g.staticValues) of \(g.values) values static, \(g.typedValues) with a known rank"
            if g.pipeline != "infer" {
                line += "; folded \(g.foldedNodes) node(s), removed \(g.removedNodes) dead node(s) and \(g.removedInitializers) initializer(s)"
                if let bn = g.foldedBatchNorms, bn > 0 { line += "; folded \(bn) BatchNormalization(s) into the layer before" }
            }
            lines.append(line)
            if !g.unresolved.isEmpty {
                let ops = Dictionary(grouping: g.unresolved, by: { ($0.domain.isEmpty ? "" : $0.domain + ".") + $0.opType })
                lines.append("  unknown output shapes: \(g.unresolved.count) node(s) (" + ops.keys.sorted().prefix(6)
                    .map { "\($0) ×\(ops[$0]!.count)" }.joined(separator: ", ") + (ops.count > 6 ? ", …" : "") + "; see report.json)")
            }
        }
        lines.append("  weights: \(SummaryText.bytes(t.bytesBefore)) → \(SummaryText.bytes(t.bytesAfter)) "
                     + "(\(String(format2: t.ratio))×), \(t.convertedTensors) tensor(s) converted, \(t.keptTensors) kept")
        if let a = r.auto {
            var line = "  auto (\(a.budget)): "
            if let b = a.budgetBytes { line += "budget \(SummaryText.bytes(b)), " }
            line += "predicted \(SummaryText.bytes(a.predictedBytes))"
            if let snr = a.predictedWeightedSNRDB { line += " at \(String(format1: snr)) dB" }
            line += "; " + a.formats.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
            lines.append(line)
        }
        let noted = r.converted.filter { $0.note != nil }
        if !noted.isEmpty {
            // What a target's rules changed (Core ML needs whole blocks; older targets fewer formats).
            let first = noted.sorted { $0.name < $1.name }[0]
            lines.append("  formats Core ML writes: \(noted.count) tensor(s) changed (\(first.name): \(first.note!)"
                         + (noted.count > 1 ? "; each in report.json's note" : "") + ")")
        }
        if let snr = t.weightedMeanSNRDB {
            lines.append("  accuracy: weighted mean SNR \(String(format1: snr)) dB; \(t.clampedValues) value(s) clamped")
        }
        let searched = r.converted.filter { $0.rtnSNRDB != nil && $0.snrDB != nil }
        if !searched.isEmpty {
            let gain = searched.reduce(0.0) { $0 + $1.snrDB! - $1.rtnSNRDB! } / Double(searched.count)
            lines.append("  clipping search: +\(String(format2: gain)) dB SNR over round-to-nearest (mean over \(searched.count) tensors)")
        }
        lines.append("  files: \(SummaryText.bytes(sourceBytes)) ONNX → \(SummaryText.bytes(packageBytes)) package")
        lines.append("")
        let shown = r.converted.sorted { $0.bytesBefore != $1.bytesBefore ? $0.bytesBefore > $1.bytesBefore : $0.name < $1.name }
        let limit = 15
        lines += SummaryText.table(
            title: "Converted tensors" + (shown.count > limit ? " (largest \(limit) of \(shown.count); all in report.json)" : ""),
            header: ["name", "shape", "encoding", "before", "after", "SNR dB", "RTN dB", "max |err|", "clamped"],
            rows: shown.prefix(limit).map {
                [$0.name, "[" + $0.shape.map(String.init).joined(separator: ", ") + "]", describe($0),
                 SummaryText.bytes($0.bytesBefore), SummaryText.bytes($0.bytesAfter),
                 $0.snrDB.map { String(format1: $0) } ?? "exact", $0.rtnSNRDB.map { String(format1: $0) } ?? "",
                 String(describing: $0.maxAbsError), String($0.clamped)]
            }, rightAligned: [3, 4, 5, 6, 7, 8])
        if !r.kept.isEmpty {
            lines += SummaryText.table(title: "Kept as they are", header: ["name", "dtype", "bytes", "reason"],
                                       rows: r.kept.prefix(limit).map { [$0.name, $0.dtype, SummaryText.bytes($0.bytes), $0.reason] },
                                       rightAligned: [2])
        }
        while lines.last == "" { lines.removeLast() }
        return lines.joined(separator: "\n")
    }
}

/// "int4 per-block 32 (axis 0)", "int8 per-channel (axis 1)", "float16".
func describe(_ c: ConversionReport.Converted) -> String {
    guard let storage = c.storage else { return c.encoding }
    var text = "\(storage) \(c.granularity ?? "")"
    if let b = c.blockSize { text += " \(b)" }
    if let a = c.axis { text += " (axis \(a))" }
    return text
}

extension String {
    init(format1 value: Double) { self = String((value * 10).rounded() / 10) }
    init(format2 value: Double) { self = String((value * 100).rounded() / 100) }
}
