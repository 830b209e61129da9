import GraphIR
import Passes
import Profiles

/// The audit the command line runs: the report, and — when graph inputs have dynamic dims — pins for them with the
/// coverage a second audit with those pins measures, so the report can say what pinning buys before anyone tries.
public enum AuditAdvice {
    /// Audits `model` with `pins`; then, if a runtime input still has a symbolic or unknown dim, re-audits with
    /// suggested pins added and records the result in `summary.pinSuggestion` (and in the static-shape blocker's
    /// action). Errors are those of `AuditInput.forModel` and `Auditor.audit`.
    public static func audit(_ model: Model, pins: InputShapes, modelName: String,
                             options: AuditOptions) throws -> AuditReport {
        let input: AuditInput
        do {
            input = try AuditInput.forModel(model, pinning: pins)
        } catch {
            throw PinError(message: "\(error)")
        }
        var report = try Auditor.audit(input, modelName: modelName, options: options)
        // A size the model cannot take (a position table shorter than 128 rows) leaves types unknown: try smaller
        // placeholders and keep the one with the best coverage (one size on graphs above 20,000 nodes).
        let sizes = report.summary.nodes > 20_000 ? [128] : [128, 32, 8]
        var best: (pinned: AuditReport, suggested: [String], texts: [String])?
        for size in sizes {
            let suggested = suggestedPins(model, pinned: pins, size: size)
            guard !suggested.isEmpty else { return report }
            var all = pins
            var texts = options.inputShapes
            var suggestedTexts: [String] = []
            for (name, dims) in suggested {
                guard (try? all.add(name, dims.map { .value($0) })) != nil else { return report }
                let text = "\(name)=" + dims.map(String.init).joined(separator: ",")
                texts.append(text)
                suggestedTexts.append(text)
            }
            // A second audit with the pins: what the report predicts is what applying them gives.
            var pinnedOptions = options
            pinnedOptions.inputShapes = texts
            guard let pinnedInput = try? AuditInput.forModel(model, pinning: all),
                  let pinned = try? Auditor.audit(pinnedInput, modelName: modelName, options: pinnedOptions) else { continue }
            // Fewer load-blocking nodes first, then coverage; on a tie the larger size stays.
            func score(_ r: AuditReport) -> (Int, Double) { (-(r.summary.loadBlocking ?? 0), r.summary.coverageExact ?? 0) }
            if best == nil || score(pinned) > score(best!.pinned) { best = (pinned, suggestedTexts, texts) }
            // Types all known and nothing blocks loading: no smaller size can do better for a reason of size.
            if pinned.summary.loadBlocking == 0,
               pinned.nodes.allSatisfy({ n in n.inputs.allSatisfy { $0.type != "?" } && n.outputs.allSatisfy { $0.type != "?" } }) { break }
        }
        guard let (pinned, suggestedTexts, texts) = best else { return report }
        let before = report.summary, after = pinned.summary
        let beforeOn = before.nodesOnTarget ?? 0, afterOn = after.nodesOnTarget ?? 0
        let exactAfter = after.coverageExact ?? after.coverage
        var note = "sizes are placeholders (batch-like dims 1, image height/width 224, other dims 128, or 32 or 8 where 128 leaves types unknown): use the sizes you deploy with"
        if after.nodes < before.nodes {
            note += "; with these pins \(before.nodes - after.nodes) more node(s) fold to constants before conversion"
        }
        report.summary.pinSuggestion = .init(
            inputShapes: texts, suggested: suggestedTexts, coverage: exactAfter, nodesOnTarget: afterOn,
            gain: afterOn - beforeOn, loadBlocking: after.loadBlocking ?? 0, note: note)
        let flags = suggestedTexts.map { "--input-shape \($0)" }.joined(separator: " ")
        let staticRules = Set(options.profiles.values.flatMap { $0.rules.filter { $0.kind == .staticShape }.map(\.id) })
        if var blockers = report.summary.blockers {
            for i in blockers.indices where staticRules.contains(blockers[i].rule) {
                blockers[i].action = "pin the dynamic inputs: \(flags) → \(report.target) coverage "
                    + "\(percent(before.coverageExact ?? before.coverage)) → \(percent(exactAfter)) "
                    + "(\(afterOn) of \(after.nodes) nodes, \(afterOn - beforeOn >= 0 ? "+" : "")\(afterOn - beforeOn); re-audited)"
            }
            // Load-blocking nodes the pins resolve (a Shape or Range that folds once its input is static).
            var pinnedByName: [String: AuditReport.NodeReport] = [:]
            for n in pinned.nodes { pinnedByName[ReportFormat.nodeName(n)] = n }
            for i in blockers.indices where blockers[i].loadBlocking > 0 && !staticRules.contains(blockers[i].rule) {
                let resolved = report.nodes.filter { n in
                    n.blocksLoading == true && n.verdicts[report.target]?.failures.contains { $0.rule == blockers[i].rule } == true
                        && pinnedByName[ReportFormat.nodeName(n)].map { $0.constant || $0.unit != "unsupported" } == true
                }.count
                if resolved > 0 {
                    blockers[i].action += " — or pin the inputs as above: \(resolved) of these \(resolved == 1 ? "folds or converts" : "fold or convert") then"
                }
            }
            report.summary.blockers = blockers
        }
        return report
    }

    static func percent(_ p: Double) -> String {
        var text = String(format: "%.2f", p)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text + "%"
    }

    /// A value for every symbolic or unknown dim of the runtime inputs not pinned already: one value per symbol
    /// across inputs; batch-like names 1, image height/width 224, anything else `size` (an unnamed leading dim 1).
    public static func suggestedPins(_ model: Model, pinned: InputShapes, size: Int = 128) -> [(String, [Int])] {
        var result: [(String, [Int])] = []
        for input in model.graph.runtimeInputs where pinned.pins[input.name] == nil {
            guard case .tensor(let t) = input.type, let shape = t.shape else { continue }
            guard shape.contains(where: { if case .value = $0 { return false }; return true }) else { continue }
            var dims: [Int] = []
            for (axis, d) in shape.enumerated() {
                switch d {
                case .value(let v): dims.append(v)
                case .symbol(let s): dims.append(placeholder(symbol: s, size: size))
                case .unknown: dims.append(axis == 0 ? 1 : size)
                }
            }
            result.append((input.name, dims))
        }
        return result
    }

    static func placeholder(symbol: String, size: Int) -> Int {
        let s = symbol.lowercased()
        if s.contains("batch") || ["n", "b", "bs", "bsz", "num_images"].contains(s) { return 1 }
        if s.contains("height") || s.contains("width") || s == "h" || s == "w" { return 224 }
        return size
    }
}
