import GraphIR
import Profiles

extension AuditRun {
    func report(modelName: String, options: AuditOptions) -> AuditReport {
        let target = options.target
        var nodes = entries.map { nodeReport($0, target: target) }
        for i in nodes.indices where !nodes[i].constant {
            nodes[i].placement = placement(entries[i])
            if nodes[i].unit == "unsupported" { nodes[i].blocksLoading = true }
        }

        var partitions: [AuditReport.Partition] = []
        var transitions = 0
        var handOffs = 0
        var handOffBytes = 0.0
        var transferSeconds = 0.0
        for graph in graphs {
            let compute = graph.entries.filter { !entries[$0].isConstant }
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
        var placementOnTarget: [String: Int] = [:]
        for n in counted where n.unit == target.rawValue {
            placementOnTarget[(n.placement?.confidence ?? .assumed).rawValue, default: 0] += 1
        }
        summary.placementOnTarget = placementOnTarget
        summary.loadBlocking = counted.filter { $0.blocksLoading == true }.count
        summary.blockers = blockers(nodes, target: target)
        var leftOut: [String] = []
        if withoutEstimate > 0 { leftOut.append("\(withoutEstimate) node(s) whose shapes are unknown") }
        leftOut += ["layout conversions and copies inside a unit", "caching and overlap between units",
                    "where Core ML itself places each op at load time",
                    "real throughput: the numbers are peaks (the Neural Engine's are Apple's marketing figures)"]
        summary.estimateLeavesOut = leftOut
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
        for n in nodes {
            guard let p = n.placement, rules[p.basis] == nil else { continue }
            switch p.basis {
            case Self.assumedBasis:
                rules[p.basis] = .init(profile: "mlpkg", reason: "no rule or source keeps the op off this unit, and none says it runs there: the placement is assumed until a device measurement confirms it",
                                       source: "docs/AUDIT.md#placement-confidence", confidence: .assumed)
            case Self.cpuBasis:
                rules[p.basis] = .init(profile: "cpu", reason: "Core ML can run a whole model on the CPU (MLComputeUnits.cpuOnly), so every op of a model it loads has a CPU implementation",
                                       source: "https://developer.apple.com/documentation/coreml/mlcomputeunits/cpuonly", confidence: .documented)
            default:
                break
            }
        }
        return AuditReport(model: modelName, target: target.rawValue, computeUnits: options.computeUnits.rawValue,
                           allowedUnits: units.map(\.rawValue), chip: cost.chip,
                           inputShapes: options.inputShapes.map(\.description), profiles: references, nodes: nodes,
                           partitions: partitions, summary: summary, rules: rules)
    }

    static let assumedBasis = "no-known-blocker"
    static let cpuBasis = "cpu-runs-core-ml"

    /// What a node's placement rests on: the unit profile's own support entry for the op (positive evidence), Core
    /// ML's CPU fallback, or only the absence of a known blocker (`assumed`).
    func placement(_ e: Entry) -> AuditReport.Placement? {
        guard !e.isConstant, let unit = e.unit, let profile = profiles[unit] else { return nil }
        if let entry = profile.unitSupportEntry(opType: e.node.opType, domain: e.node.domain) {
            return .init(confidence: entry.confidence, basis: entry.id)
        }
        if unit == .cpu { return .init(confidence: .documented, basis: Self.cpuBasis) }
        return .init(confidence: .assumed, basis: Self.assumedBasis)
    }

    /// The rules keeping counted nodes off the target, grouped by rule id, most nodes first, each with the one
    /// action that fixes it (the pin suggestion, filled in by a second audit, replaces the static-shape action).
    func blockers(_ nodes: [AuditReport.NodeReport], target: ComputeUnit) -> [AuditReport.Blocker] {
        var order: [String] = []
        var members: [String: [Int]] = [:]
        var first: [String: Finding] = [:]
        for (i, n) in nodes.enumerated() where !n.constant && n.unit != target.rawValue {
            var ids: [String] = []
            for f in entries[i].verdicts[target]?.failures ?? [] where !ids.contains(f.rule) {
                ids.append(f.rule)
                if first[f.rule] == nil { first[f.rule] = f }
            }
            if ids.isEmpty {
                let id = entries[i].moveNote != nil ? "transition-smoothing" : "preference"
                ids = [id]
            }
            for id in ids {
                if members[id] == nil { order.append(id) }
                members[id, default: []].append(i)
            }
        }
        var result: [AuditReport.Blocker] = []
        for id in order {
            let list = members[id]!
            let f = first[id]
            let details = list.compactMap { i in entries[i].verdicts[target]?.failures.first { $0.rule == id }?.detail }
            result.append(.init(
                rule: id,
                reason: f?.reason ?? (id == "transition-smoothing"
                    ? "moved by transition smoothing: the cost model estimates the saved unit switches outweigh the slower unit"
                    : "runs on \(target.rawValue) but another allowed unit was preferred"),
                confidence: f?.confidence, source: f?.source ?? "docs/AUDIT.md#assignment",
                nodes: list.count, loadBlocking: list.filter { nodes[$0].unit == "unsupported" }.count,
                examples: list.prefix(3).map { ReportFormat.nodeName(nodes[$0]) },
                action: action(rule: id, target: target, details: details)))
        }
        return result.sorted { ($0.nodes, $0.loadBlocking) > ($1.nodes, $1.loadBlocking) }
    }

    /// The one thing that moves a blocked node, by the rule's kind.
    func action(rule id: String, target: ComputeUnit, details: [String]) -> String {
        func mostCommon(_ items: [String]) -> String {
            var count: [String: Int] = [:]
            for d in items { count[d, default: 0] += 1 }
            let top = count.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(2)
            return top.map { $0.value > 1 ? "\($0.key) (×\($0.value))" : $0.key }.joined(separator: "; ")
        }
        if id.hasPrefix("coreml-") || id.hasPrefix("mil-") {
            return "change the model so mlpkg's Core ML exporter can lower it: " + mostCommon(details)
        }
        switch id {
        case "no-rule":
            return "replace the op with ops that convert (`mlpkg profiles core-ml`), or declare it in a --profile-file if you know it converts"
        case "transition-smoothing":
            return "none needed: short runs moved to save unit switches (estimate)"
        case "preference":
            return "none: put \(target.rawValue) first with --profile \(target.rawValue)"
        default:
            break
        }
        guard let rule = profiles[target]?.rules.first(where: { $0.id == id }) else { return mostCommon(details) }
        let ops = rule.ops.map { $0.joined(separator: ", ") } ?? "these ops"
        switch rule.kind {
        case .never: return "none in the model as is: \(ops) stay off \(target.rawValue); replace them or accept the fallback"
        case .staticShape: return "pin every dynamic input with --input-shape, at the sizes you deploy with"
        case .maxDim: return "keep every dim at or below \(rule.max ?? 0) (e.g. split the tensor): " + mostCommon(details)
        case .maxRank: return "keep tensors at rank \(rule.max ?? 0) or below: " + mostCommon(details)
        case .attribute: return "use \(rule.attribute ?? "the attribute") ≤ \(rule.eachAtMost ?? 0): " + mostCommon(details)
        case .spatialExtent: return "shrink the spatial dims to \(rule.max ?? 0) or below before this op (e.g. a strided pool first)"
        case .resizeScale: return "upsample in steps of at most \(rule.max ?? 0)×"
        case .dtypes: return "cast the inputs to \((rule.allowed ?? []).joined(separator: " or ")) first: " + mostCommon(details)
        case .constantInputs: return "make the inputs constant (fold them, or pin input shapes so they fold): " + mostCommon(details)
        case .inputRank: return "use a supported rank: " + mostCommon(details)
        }
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
            graph: e.graph, index: e.index, constant: e.isConstant, unit: e.unit?.rawValue ?? "unsupported",
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
