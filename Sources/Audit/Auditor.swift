import CoreMLExport
import Foundation
import GraphIR
import Passes
import Profiles

/// What an audit is asked: which unit coverage is measured for, which units are allowed, their profiles, the chip
/// whose numbers the cost model uses.
public struct AuditOptions: Sendable, Equatable {
    /// The unit whose coverage is measured and gated (`--profile`, default the Neural Engine).
    public var target: ComputeUnit
    /// The units nodes may be assigned to (`--compute-units`); must include `target`.
    public var computeUnits: ComputeUnitSet
    /// A profile per compute unit (the built-in ones, or users' replacements).
    public var profiles: [ComputeUnit: Profile]
    /// The chip whose cost numbers the estimate uses; every allowed unit's profile must have numbers for it.
    public var chip: String
    /// The `--input-shape` pins, as given (`NAME=D0,D1,...`, recorded in the report).
    public var inputShapes: [String]
    /// Gate every node on mlpkg's Core ML lowering registry (what `export --format coreml` can write) before the
    /// unit profiles' rules. On for the command line; rule tests with made-up ops leave it off.
    public var coreMLLowering: Bool

    /// Options; by default the target is the Neural Engine, every unit is allowed, the chip is M1, the gate off.
    public init(target: ComputeUnit = .neuralEngine, computeUnits: ComputeUnitSet = .all,
                profiles: [ComputeUnit: Profile], chip: String = "M1", inputShapes: [String] = [],
                coreMLLowering: Bool = false) {
        self.target = target
        self.computeUnits = computeUnits
        self.profiles = profiles
        self.chip = chip
        self.inputShapes = inputShapes
        self.coreMLLowering = coreMLLowering
    }

    /// The allowed units, target first, then the rest in preference order (Neural Engine, GPU, CPU).
    public var preference: [ComputeUnit] {
        let allowed = computeUnits.units
        return [target] + ComputeUnit.preference.filter { $0 != target && allowed.contains($0) }
    }
}

/// A request the audit cannot answer (the target is not an allowed unit, a chip has no numbers…).
public struct AuditError: Error, CustomStringConvertible, Sendable {
    /// What the audit cannot do, as one line.
    public var message: String
    /// An error with `message`.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// The audit: a verdict per node and allowed unit from the profiles' rules, then the assignment pass (preferred unit
/// per node, then transition smoothing with the cost model).
public enum Auditor {
    /// Audits `input`; throws `AuditError` if the target is not allowed, or a unit lacks a profile or chip numbers.
    public static func audit(_ input: AuditInput, modelName: String, options: AuditOptions) throws -> AuditReport {
        guard options.computeUnits.units.contains(options.target) else {
            throw AuditError("--profile \(options.target.rawValue) is not among --compute-units \(options.computeUnits.rawValue) (\(options.computeUnits.units.map(\.rawValue).joined(separator: ", ")))")
        }
        let units = options.preference
        var profiles: [ComputeUnit: Profile] = [:]
        for unit in units {
            guard let profile = options.profiles[unit] else { throw AuditError("no profile for \(unit.rawValue)") }
            profiles[unit] = profile
        }
        let cost: CostModel
        do {
            cost = try CostModel(chip: options.chip, profiles: profiles)
        } catch {
            throw AuditError(error.description)
        }
        var run = AuditRun(input: input, units: units, profiles: profiles, cost: cost)
        if options.coreMLLowering, let outcomes = coreMLOutcomes(input.model, inputShapes: options.inputShapes) {
            run.coreMLOutcomes = outcomes
            run.gated = true
        }
        run.collect(graph: input.model.graph, path: "")
        return run.report(modelName: modelName, options: options)
    }
}

extension Auditor {
    /// The Core ML exporter's verdict on every main-graph node, by the node's first output: the lowering registry
    /// `export --format coreml` uses decides whether a node converts to an ML Program at all (at the lowest target
    /// the model's weights need), and which rule says so, so the audit and the exporter cannot disagree. Nil when
    /// the model cannot be planned at all (the audit then falls back to the base profile's rules).
    /// Ranged dims in `inputShapes` (`x=1,1..512`) reach the exporter, so the nodes whose lowering needs static dims
    /// fail `coreml-static-dim`: the audit names the nodes that force a shape to be static.
    static func coreMLOutcomes(_ model: Model, inputShapes: [String] = []) -> CoreMLOutcomes? {
        var options = CoreMLExporter.Options()
        if let shapes = try? InputShapes(parsing: inputShapes), shapes.hasRanges { options.inputShapes = shapes }
        guard let (outcomes, _) = try? CoreMLExporter.lower(model, options: options, planOnly: true),
              outcomes.contains(where: { $0.index >= 0 }) else { return nil }
        var table = CoreMLOutcomes()
        for o in outcomes where o.index >= 0 {
            if let origin = o.origin { table.byOrigin[origin, default: []].append(o) }
        }
        return table
    }
}

/// The exporter's verdicts by source location: for each main-graph node of the audited model (by its index), the
/// outcomes of the prepared nodes that stem from it (`CoreMLNodeOutcome.origin`). One node can have several: an
/// inlined function call or a decided If expands into its body; a node can have none: removed before lowering
/// (BatchNormalization folded into its Conv, a node no output needs, or a value folded into a constant).
struct CoreMLOutcomes {
    var byOrigin: [Int: [CoreMLNodeOutcome]] = [:]

    /// The verdict on the main-graph node at `index`: the first refusal among the nodes it became (a node whose
    /// expansion fails somewhere does not convert), else the outcome of the node that writes its first output,
    /// else the first; nil when nothing of the node reached the lowering.
    func outcome(of node: Node, at index: Int) -> CoreMLNodeOutcome? {
        guard let all = byOrigin[index], !all.isEmpty else { return nil }
        if let refused = all.first(where: { if case .refused(let r) = $0.verdict { return !r.unknown } else { return false } }) {
            return refused
        }
        if let unknown = all.first(where: { if case .refused = $0.verdict { return true } else { return false } }) { return unknown }
        if let first = node.outputs.first, let writer = all.last(where: { $0.outputName == first }) { return writer }
        return all[0]
    }
}

/// The state of one audit: the nodes collected so far and their verdicts.
struct AuditRun {
    struct Entry {
        var node: Node
        var graph: String
        var index: Int
        var verdicts: [ComputeUnit: AuditReport.UnitVerdict]
        var work: Work
        var facts: NodeFacts
        var unit: ComputeUnit?
        var preferred: ComputeUnit?
        var moveNote: String?
        /// Folded to constants before conversion (the Core ML gate said so): computes nothing at run time.
        var folded = false
        /// A Constant node or a folded one: a weight, left out of coverage, partitions and transitions.
        var isConstant: Bool { node.isConstant || folded }
    }

    let input: AuditInput
    let units: [ComputeUnit]
    let profiles: [ComputeUnit: Profile]
    let cost: CostModel
    let constantTensors: [String: Tensor]
    /// The Core ML exporter's verdicts by the node's first output (main graph); empty when the gate is off.
    var coreMLOutcomes = CoreMLOutcomes()
    /// The Core ML gate decides what converts: the base profile's support entries and rules are not consulted
    /// (the lowering rules replace them), and unit profiles say only where a converting node runs.
    var gated = false
    /// Verdicts of function calls by call signature.
    final class VerdictCache { var table: [String: AuditReport.UnitVerdict] = [:] }
    let functionVerdicts = VerdictCache()
    /// The rules covering each (profile, op type, domain), looked up once: a graph of 10^5 nodes of a few op types
    /// filtered every profile's rule list per node and unit (12% of an audit's time).
    final class RulesCache {
        var table: [String: [Rule]] = [:]
        func rules(_ profile: Profile, opType: String, domain: String) -> [Rule] {
            let key = (profile.unit?.rawValue ?? "") + "\u{1}" + profile.name + "\u{1}" + (profile.file ?? "") + "\u{1}" + opType + "\u{1}" + domain
            if let hit = table[key] { return hit }
            let found = profile.rules(opType: opType, domain: domain)
            table[key] = found
            return found
        }
    }
    let rulesCache = RulesCache()
    var entries: [Entry] = []
    /// Entry indices of each graph, in execution order, by graph path (in the order graphs were met).
    var graphs: [(path: String, entries: [Int])] = []

    init(input: AuditInput, units: [ComputeUnit], profiles: [ComputeUnit: Profile], cost: CostModel) {
        self.input = input
        self.units = units
        self.profiles = profiles
        self.cost = cost
        var tensors: [String: Tensor] = [:]
        input.model.graph.forEachGraph { graph, _ in
            for t in graph.initializers { tensors[t.name] = t }
            for node in graph.nodes where node.isConstant {
                if let t = node.constantTensor { tensors[t.name] = t }
            }
        }
        constantTensors = tensors
    }

    enum GateVerdict { case converts, fails, unchecked }

    /// The Core ML gate's finding for a node: the lowering rule it converts by, a failure where a precondition is
    /// known to fail (or the node sits inside a control-flow node, which is not lowered), "not checked" where the
    /// exporter lacks a type or value.
    func coreMLFinding(_ node: Node, index: Int, path: String, inherited: (Finding, GateVerdict)?) -> (Finding, GateVerdict)? {
        if let inherited { return inherited }
        guard gated, path.isEmpty, !node.outputs.isEmpty else { return nil }
        func finding(_ rule: LoweringRule, _ detail: String) -> Finding {
            Finding(rule: rule.id, profile: "core-ml", detail: detail, reason: rule.says, source: rule.source,
                    confidence: .documented)
        }
        let rules = Self.loweringRules
        guard let outcome = coreMLOutcomes.outcome(of: node, at: index) else {
            // Removed before lowering: folded into its producer (BatchNormalization into Conv) or never used.
            return (finding(CoreMLLimits.folded, "removed before lowering (folded into another node, or unused)"), .converts)
        }
        let rule = rules[outcome.rule] ?? CoreMLLimits.noLowering
        switch outcome.verdict {
        case .folded:
            return (finding(rule, "folded to constants before lowering"), .converts)
        case .lowered:
            return (finding(rule, "\(RuleEvaluator.opLabel(node)) lowers to MIL \(rule.milOps)"), .converts)
        case .refused(let refusal):
            if refusal.unknown { return (finding(rule, "not checked (unknown: \(refusal.reason))"), .unchecked) }
            return (finding(rule, refusal.reason), .fails)
        }
    }

    static let loweringRules: [String: LoweringRule] = Dictionary(
        LoweringRegistry.rules.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })

    mutating func collect(graph: Graph, path: String, inherited: (Finding, GateVerdict)? = nil) {
        var indices: [Int] = []
        graphs.append((path, []))
        let slot = graphs.count - 1
        for (index, node) in graph.nodes.enumerated() {
            let facts = NodeFacts(node: node, types: input.types, constants: input.constants,
                                  constantTensor: { [constantTensors] in constantTensors[$0] })
            var verdicts: [ComputeUnit: AuditReport.UnitVerdict] = [:]
            for unit in units { verdicts[unit] = verdict(facts, profile: profiles[unit]!, depth: 0) }
            let gate = coreMLFinding(node, index: index, path: path, inherited: inherited)
            if let (finding, verdict) = gate {
                for unit in units {
                    switch verdict {
                    case .fails:
                        verdicts[unit]!.failures.insert(finding, at: 0)
                        verdicts[unit]!.supported = false
                    case .unchecked:
                        verdicts[unit]!.unchecked.insert(finding, at: 0)
                    case .converts:
                        break
                    }
                    if gated, verdict != .fails {
                        // The lowering is what makes the node convertible; unit rules decide where it runs.
                        verdicts[unit]!.support = finding
                        verdicts[unit]!.supported = verdicts[unit]!.failures.isEmpty
                    }
                }
            }
            var childInherited = inherited
            let label = node.name.isEmpty ? node.outputs.first ?? "" : node.name
            if childInherited == nil, let (finding, verdict) = gate, verdict == .fails {
                let rule = CoreMLLimits.subgraph
                childInherited = (Finding(rule: rule.id, profile: finding.profile,
                                          detail: "inside \(node.opType) '\(label)': \(finding.detail)",
                                          reason: rule.says, source: rule.source, confidence: .documented), .fails)
            } else if childInherited == nil, let (finding, verdict) = gate, verdict == .converts,
                      node.attributes.contains(where: { !$0.value.subgraphs.isEmpty }) {
                // A lowered If or Loop: the nodes of its branches or body are lowered with it, into its blocks.
                childInherited = (Finding(rule: finding.rule, profile: finding.profile,
                                          detail: "inside \(node.opType) '\(label)', lowered with it into its MIL blocks",
                                          reason: finding.reason, source: finding.source, confidence: finding.confidence), .converts)
            }
            entries.append(Entry(node: node, graph: path, index: index, verdicts: verdicts, work: Work(facts),
                                 facts: facts, folded: gate?.0.rule == CoreMLLimits.folded.id))
            indices.append(entries.count - 1)
            for attribute in node.attributes {
                switch attribute.value {
                case .graph(let g):
                    collect(graph: g, path: NodePath.subgraph(parent: path, node: node, index: index,
                                                              attribute: attribute.name, position: nil), inherited: childInherited)
                case .graphs(let gs):
                    for (k, g) in gs.enumerated() {
                        collect(graph: g, path: NodePath.subgraph(parent: path, node: node, index: index,
                                                                  attribute: attribute.name, position: k), inherited: childInherited)
                    }
                default: break
                }
            }
        }
        graphs[slot].entries = indices
        assign(graph: slot)
    }

    // MARK: Verdicts

    /// A node's verdict on one unit: the rules of its profile, or, for a call of a model-local function, the verdicts
    /// of the function's body.
    func verdict(_ f: NodeFacts, profile: Profile, depth: Int) -> AuditReport.UnitVerdict {
        if let function = input.model.functions.first(where: { $0.domain == f.node.domain && $0.name == f.node.opType }),
           depth < 8 {
            return functionVerdict(f, function: function, profile: profile, depth: depth)
        }
        var failures: [Finding] = []
        var unchecked: [Finding] = []
        // Under the Core ML gate the base profile's conversion rules give way to the lowering rules.
        let base = gated && profile.chain.count > 1 ? profile.chain[0] : nil
        for rule in rulesCache.rules(profile, opType: f.node.opType, domain: f.node.domain) where rule.profile != base {
            switch RuleEvaluator.evaluate(rule, f) {
            case .pass: break
            case .fail(let detail): failures.append(Finding(rule: rule, detail: detail))
            case .unchecked(let what): unchecked.append(Finding(rule: rule, detail: "not checked (unknown: \(what))"))
            }
        }
        let entry = profile.supportEntry(opType: f.node.opType, domain: f.node.domain)
        if gated {
            // Convertibility is the gate's; a unit profile's own entry is still positive evidence for placement.
            return .init(supported: failures.isEmpty, support: nil, failures: failures, unchecked: unchecked)
        }
        if entry == nil {
            failures.insert(Finding(
                rule: "no-rule", profile: profile.name, detail: "no rule for \(RuleEvaluator.opLabel(f.node))",
                reason: "no profile has a support entry for this op, so it is not assumed to convert to Core ML",
                source: "`mlpkg profiles core-ml` lists the ops that convert", confidence: nil), at: 0)
        }
        let support = entry.map {
            Finding(rule: $0.id, profile: profile.name, detail: "\(RuleEvaluator.opLabel(f.node)) converts to Core ML",
                    reason: $0.maps ?? "declared convertible", source: $0.source, confidence: $0.confidence)
        }
        return .init(supported: entry != nil && failures.isEmpty, support: support, failures: failures, unchecked: unchecked)
    }

    /// A function call is supported where every node of the function's body is; body findings name the body node.
    func functionVerdict(_ f: NodeFacts, function: Function, profile: Profile, depth: Int) -> AuditReport.UnitVerdict {
        // One verdict per distinct call signature (function, profile, input types and constness, attributes): a DAG
        // of calls is judged in time linear in its distinct calls, not in its expansion (issue 16).
        var key = "\(profile.name)\u{1}\(function.domain)\u{1}\(function.name)\u{1}\(depth)"
        for actual in f.node.inputs { key += "\u{1}\(input.types[actual].map { "\($0)" } ?? "?")\(input.constants.contains(actual) ? "c" : "")" }
        for a in f.node.attributes.sorted(by: { $0.name < $1.name }) { key += "\u{1}\(a.name)=\(a.value)" }
        if let cached = functionVerdicts.table[key] { return cached }
        let verdict = expandedFunctionVerdict(f, function: function, profile: profile, depth: depth)
        functionVerdicts.table[key] = verdict
        return verdict
    }

    private func expandedFunctionVerdict(_ f: NodeFacts, function: Function, profile: Profile, depth: Int) -> AuditReport.UnitVerdict {
        // The body sees the caller's input types under the function's formal names.
        var types = input.types
        var constants = input.constants
        for (formal, actual) in zip(function.inputs, f.node.inputs) {
            types[formal] = input.types[actual]
            if input.constants.contains(actual) { constants.insert(formal) } else { constants.remove(formal) }
        }
        let label = "\(f.node.domain):\(f.node.opType)"
        var failures: [Finding] = []
        var unchecked: [Finding] = []
        for (i, bodyNode) in function.nodes.enumerated() {
            var resolved = bodyNode
            resolved.attributes = bodyNode.attributes.compactMap { attribute in
                guard let ref = attribute.referencedAttribute else { return attribute }
                let value = f.node.attribute(ref)?.value ?? function.attributeDefaults.first { $0.name == ref }?.value
                return value.map { Attribute(name: attribute.name, value: $0) }
            }
            let facts = NodeFacts(node: resolved, types: types, constants: constants,
                                  constantTensor: { [constantTensors] in constantTensors[$0] })
            let v = verdict(facts, profile: profile, depth: depth + 1)
            let prefix = "in function \(label), body node \(bodyNode.label(index: i)): "
            failures += v.failures.map { prefixed($0, prefix) }
            unchecked += v.unchecked.map { prefixed($0, prefix) }
        }
        let support = Finding(rule: "function", profile: profile.name, detail: "\(label) expands",
                              reason: "model-local function of \(function.nodes.count) node(s), each checked against the rules",
                              source: "the model's FunctionProto", confidence: nil)
        // Nested calls multiply findings (10 calls of a function with 10 findings give 100, and so on): keep the
        // first few of each kind and count the rest, so a verdict stays small whatever the nesting.
        return .init(supported: failures.isEmpty, support: support, failures: Self.capped(failures),
                     unchecked: Self.capped(unchecked))
    }

    static let maxBodyFindings = 8

    static func capped(_ findings: [Finding]) -> [Finding] {
        guard findings.count > maxBodyFindings else { return findings }
        var kept = Array(findings.prefix(maxBodyFindings))
        let last = findings[maxBodyFindings]
        kept.append(Finding(rule: last.rule, profile: last.profile,
                            detail: "and \(findings.count - maxBodyFindings) more finding(s) in the function's body",
                            reason: last.reason, source: last.source, confidence: last.confidence))
        return kept
    }

    private func prefixed(_ finding: Finding, _ prefix: String) -> Finding {
        Finding(rule: finding.rule, profile: finding.profile, detail: prefix + finding.detail, reason: finding.reason,
                source: finding.source, confidence: finding.confidence)
    }

    // MARK: Assignment

    /// Picks each node's unit in one graph: the first unit in preference order that supports it, then smoothing.
    mutating func assign(graph slot: Int) {
        let members = graphs[slot].entries
        for i in members {
            entries[i].preferred = units.first { entries[i].verdicts[$0]?.supported == true }
            entries[i].unit = entries[i].preferred
        }
        let compute = members.filter { !entries[$0].isConstant }
        smooth(compute)
        // Constant nodes go with their first consumer in the graph (they are weights and move with it).
        for i in members where entries[i].isConstant {
            let outputs = Set(entries[i].node.outputs)
            let consumer = compute.first { c in entries[c].node.inputs.contains(where: outputs.contains) }
            if let consumer, let unit = entries[consumer].unit, entries[i].verdicts[unit]?.supported == true {
                entries[i].unit = unit
            }
        }
    }

    /// A run of consecutive nodes on one unit.
    struct Run {
        var start: Int
        var end: Int
        var unit: ComputeUnit?
        var count: Int { end - start }
    }

    static func runs(_ sequence: [ComputeUnit?]) -> [Run] {
        var runs: [Run] = []
        for (k, unit) in sequence.enumerated() {
            if let last = runs.last, last.unit == unit { runs[runs.count - 1].end = k + 1 } else {
                runs.append(Run(start: k, end: k + 1, unit: unit))
            }
        }
        return runs
    }

    /// Transition smoothing: a short run on unit u between two runs on unit v moves to v when the cost model says the
    /// two switches it saves outweigh running it on v. One pass left to right over the runs; after a move the merged
    /// run is looked at again, since it may now be short and between two runs of one unit itself. Each move removes
    /// two runs, so the pass ends; the step cap only guards against a bug.
    mutating func smooth(_ compute: [Int]) {
        guard compute.count >= 3 else { return }
        // Data edges between these nodes (producer, consumer, tensor), and the edges touching each node.
        var producer: [String: Int] = [:]
        for (k, i) in compute.enumerated() {
            for output in entries[i].node.outputs where !output.isEmpty { producer[output] = k }
        }
        var edges: [(p: Int, c: Int, tensor: String)] = []
        var incident: [[Int]] = Array(repeating: [], count: compute.count)
        for (k, i) in compute.enumerated() {
            for name in Set(entries[i].node.inputs) where !name.isEmpty {
                guard let p = producer[name], p != k else { continue }
                incident[p].append(edges.count)
                incident[k].append(edges.count)
                edges.append((p, k, name))
            }
        }
        var sequence = compute.map { entries[$0].unit }
        var runs = Self.runs(sequence)
        var r = 1
        var steps = 0
        while r < runs.count - 1, steps < 4 * compute.count {
            steps += 1
            let run = runs[r]
            guard let u = run.unit, let v = runs[r - 1].unit, runs[r + 1].unit == v, v != u,
                  run.count <= cost.maxRunNodes,
                  (run.start..<run.end).allSatisfy({ entries[compute[$0]].verdicts[v]?.supported == true }) else {
                r += 1
                continue
            }
            var touching = Set<Int>()
            for k in run.start..<run.end { touching.formUnion(incident[k]) }
            var trial = sequence
            for k in run.start..<run.end { trial[k] = v }
            let stay = computeSeconds(run, on: u, compute) + 2 * cost.transferLatency
                + handOffSeconds(touching, edges, sequence)
            let move = computeSeconds(run, on: v, compute) + handOffSeconds(touching, edges, trial)
            guard move < stay else {
                r += 1
                continue
            }
            for k in run.start..<run.end {
                entries[compute[k]].moveNote = "moved from \(u.rawValue) to \(v.rawValue) by transition smoothing: "
                    + "\(Self.microseconds(move)) there vs \(Self.microseconds(stay)) staying, counting the two "
                    + "switches saved (estimate for \(cost.chip); mlpkg cost model, docs/AUDIT.md)"
            }
            sequence = trial
            runs[r - 1].end = runs[r + 1].end
            runs.removeSubrange(r...(r + 1))
            r = max(1, r - 1)
        }
        for (k, i) in compute.enumerated() { entries[i].unit = sequence[k] }
    }

    private func computeSeconds(_ run: Run, on unit: ComputeUnit, _ compute: [Int]) -> Double {
        (run.start..<run.end).reduce(0) { $0 + (cost.seconds(entries[compute[$1]].work, on: unit) ?? 0) }
    }

    /// Seconds spent handing tensors between units on these edges.
    private func handOffSeconds(_ touching: Set<Int>, _ edges: [(p: Int, c: Int, tensor: String)],
                                _ sequence: [ComputeUnit?]) -> Double {
        var total = 0.0
        for e in touching {
            let edge = edges[e]
            guard let a = sequence[edge.p], let b = sequence[edge.c], a != b else { continue }
            total += cost.transferSeconds(TensorSize(input.types[edge.tensor]), from: a, to: b)
        }
        return total
    }

    static func microseconds(_ seconds: Double) -> String {
        seconds >= 1e-3 ? String(format: "%.2f ms", seconds * 1e3) : String(format: "%.1f µs", seconds * 1e6)
    }
}
