import GraphIR
import Profiles

extension AuditRun {
    func report(modelName: String, options: AuditOptions) -> AuditReport {
        let target = options.target
        let nodes = entries.map { nodeReport($0, target: target) }

        var partitions: [AuditReport.Partition] = []
        var transitions = 0
        var handOffs = 0
        var handOffBytes = 0.0
        var transferSeconds = 0.0
        for graph in graphs {
            let compute = graph.entries.filter { !entries[$0].node.isConstant }
            let runs = Self.runs(compute.map { entries[$0].unit })
            transitions += max(0, runs.count - 1)
            transferSeconds += Double(zip(runs, runs.dropFirst()).filter { $0.unit != nil && $1.unit != nil }.count)
                * cost.transferLatency
            for run in runs {
                let members = Array(compute[run.start..<run.end])
                let flops = members.map { entries[$0].work.flops }
                partitions.append(.init(unit: run.unit?.rawValue ?? "unsupported", graph: graph.path, nodes: members,
                                        size: members.count,
                                        flops: flops.contains(nil) ? nil : flops.reduce(0) { $0 + $1! }))
            }
            // Tensors produced on one unit and read on another.
            var producer: [String: ComputeUnit] = [:]
            for i in compute { for o in entries[i].node.outputs where !o.isEmpty { producer[o] = entries[i].unit } }
            for i in compute {
                guard let unit = entries[i].unit else { continue }
                for name in Set(entries[i].node.inputs) where !name.isEmpty {
                    guard let from = producer[name], from != unit else { continue }
                    handOffs += 1
                    if let size = TensorSize(input.types[name]) {
                        handOffBytes += size.bytes(floatBytes: max(cost.units[from]!.floatBytes, cost.units[unit]!.floatBytes))
                        transferSeconds += cost.transferSeconds(size, from: from, to: unit)
                    }
                }
            }
        }

        let counted = nodes.filter { !$0.constant }
        var nodesByUnit: [String: Int] = [:]
        for n in counted { nodesByUnit[n.unit, default: 0] += 1 }
        func percent(_ part: Double, _ whole: Double) -> Double { whole > 0 ? (part / whole * 1000).rounded() / 10 : 0 }
        var coverageByUnit: [String: Double] = [:]
        for (unit, count) in nodesByUnit { coverageByUnit[unit] = percent(Double(count), Double(counted.count)) }

        var flopsByUnit: [String: Double] = [:]
        var knownFlops = 0
        var secondsByUnit: [String: Double] = [:]
        var withoutEstimate = 0
        for (entry, report) in zip(entries, nodes) where !report.constant {
            if let flops = entry.work.flops {
                knownFlops += 1
                flopsByUnit[report.unit, default: 0] += flops
            }
            if let unit = entry.unit, let s = cost.seconds(entry.work, on: unit) {
                secondsByUnit[unit.rawValue, default: 0] += s
            } else {
                withoutEstimate += 1
            }
        }
        let totalFlops = flopsByUnit.values.reduce(0, +)
        let estimate = AuditReport.Estimate(
            chip: cost.chip, secondsByUnit: secondsByUnit, transferSeconds: transferSeconds,
            totalSeconds: secondsByUnit.values.reduce(0, +) + transferSeconds, nodesWithoutEstimate: withoutEstimate)
        var summary = AuditReport.Summary(
            nodes: counted.count, constantNodes: nodes.count - counted.count,
            // A graph with no node to run has nothing off the target.
            coverage: counted.isEmpty ? 100 : percent(Double(nodesByUnit[target.rawValue] ?? 0), Double(counted.count)),
            coverageByUnit: coverageByUnit, nodesByUnit: nodesByUnit,
            flops: .init(knownNodes: knownFlops, total: totalFlops, byUnit: flopsByUnit,
                         coverage: totalFlops > 0 ? percent(flopsByUnit[target.rawValue] ?? 0, totalFlops) : nil),
            partitions: .init(count: partitions.count, sizes: partitions.map(\.size)),
            transitions: transitions, handOffs: handOffs, handOffBytes: handOffBytes,
            moved: counted.filter { $0.preferredUnit != nil }.count,
            fallbacks: counted.filter { $0.unit != target.rawValue }.count,
            unsupported: counted.filter { $0.unit == "unsupported" }.count, estimate: estimate)
        summary.nodesOnTarget = nodesByUnit[target.rawValue] ?? 0
        summary.coverageExact = counted.isEmpty ? 100 : Double(nodesByUnit[target.rawValue] ?? 0) * 100 / Double(counted.count)

        let references = units.map { unit -> AuditReport.ProfileReference in
            let p = profiles[unit]!
            return .init(name: p.name, unit: unit.rawValue, chain: p.chain, file: p.file, precision: p.precision?.compute)
        }
        var rules: [String: AuditReport.RuleReference] = [:]
        for e in entries {
            // Units in preference order, not the dictionary's (its order changes from run to run, and with it which
            // profile a shared rule was reported under).
            for v in units.compactMap({ e.verdicts[$0] }) {
                for f in v.failures + v.unchecked + (v.support.map { [$0] } ?? []) where rules[f.rule] == nil {
                    rules[f.rule] = .init(profile: f.profile, reason: f.reason, source: f.source, confidence: f.confidence)
                }
            }
        }
        return AuditReport(model: modelName, target: target.rawValue, computeUnits: options.computeUnits.rawValue,
                           allowedUnits: units.map(\.rawValue), chip: cost.chip,
                           inputShapes: options.inputShapes.map(\.description), profiles: references, nodes: nodes,
                           partitions: partitions, summary: summary, rules: rules)
    }

    func nodeReport(_ e: Entry, target: ComputeUnit) -> AuditReport.NodeReport {
        var verdicts: [String: AuditReport.UnitVerdict] = [:]
        for (unit, v) in e.verdicts { verdicts[unit.rawValue] = v }
        var seconds: [String: Double] = [:]
        for unit in units { if let s = cost.seconds(e.work, on: unit) { seconds[unit.rawValue] = s } }
        func describe(_ v: NodeFacts.Value) -> AuditReport.ValueReport {
            .init(name: v.name, type: v.type.map { "\($0)" } ?? "?", constant: v.constant)
        }
        return AuditReport.NodeReport(
            name: e.node.name, label: e.node.label(index: e.index), opType: e.node.opType, domain: e.node.domain,
            graph: e.graph, index: e.index, constant: e.node.isConstant, unit: e.unit?.rawValue ?? "unsupported",
            preferredUnit: e.moveNote != nil ? e.preferred?.rawValue : nil, reasons: reasons(e), notChecked: notChecked(e),
            verdicts: verdicts, inputs: e.facts.inputs.filter(\.isPresent).map(describe),
            outputs: e.facts.outputs.filter(\.isPresent).map(describe), flops: e.work.flops,
            seconds: seconds.isEmpty ? nil : seconds)
    }

    /// Why a node runs where it does, one line per fact, each ending with its source: the failures that kept it off
    /// every unit preferred to its own (identical findings on several units are listed once, naming the units), what
    /// makes it supported where it runs, a smoothing move, and the rules left unchecked there.
    func reasons(_ e: Entry) -> [String] {
        var lines: [String] = []
        let considered: [ComputeUnit]
        if let preferred = e.preferred {
            considered = Array(units.prefix { $0 != preferred })
        } else {
            considered = units
        }
        var order: [String] = []
        var unitsOf: [String: [ComputeUnit]] = [:]
        for unit in considered {
            for finding in e.verdicts[unit]?.failures ?? [] {
                if unitsOf[finding.text] == nil { order.append(finding.text) }
                unitsOf[finding.text, default: []].append(unit)
            }
        }
        for text in order { lines.append(unitsOf[text]!.map(\.rawValue).joined(separator: ", ") + ": " + text) }
        if let note = e.moveNote { lines.append(note) }
        if let unit = e.unit, let verdict = e.verdicts[unit] {
            if let support = verdict.support { lines.append("runs on \(unit.rawValue): " + support.text) }
        }
        return lines
    }

    /// Rules the node's unit could not check because a shape, type or value is unknown: "ane-static-shapes: unknown
    /// bn1_out". Shape inference removes most of these.
    func notChecked(_ e: Entry) -> [String] {
        guard let unit = e.unit, let verdict = e.verdicts[unit] else { return [] }
        return verdict.unchecked.map { "\($0.rule): \($0.detail)" }
    }
}
