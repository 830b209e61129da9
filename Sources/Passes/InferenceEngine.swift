import GraphIR
import Ops

/// A value as shape inference reports it.
public struct InferredValue: Codable, Sendable, Equatable {
    /// Where the value comes from: a graph input, an initializer, or a node output.
    public enum Kind: String, Codable, Sendable {
        /// The raw values are what shape listings show in their `kind` column.
        case input, initializer, node
    }

    /// `main`, or the path of a subgraph: `main/NODE.ATTRIBUTE` (`main/loop.body`).
    public var graph: String
    /// The value's name.
    public var name: String
    /// Where the value comes from.
    public var kind: Kind
    /// The inferred type.
    public var type: ValueType
    /// Fixed before run time (an initializer, a Constant, or computed only from those).
    public var constant: Bool
}


/// A value whose declared type (value_info or graph output) contradicts the inferred one; the inferred one is kept.
public struct TypeConflict: Codable, Sendable, Equatable {
    /// `main`, or the path of the subgraph holding the value (as in `InferredValue.graph`).
    public var graph: String
    /// The value's name.
    public var value: String
    /// The declared type, as text (`float[batch, 3]`).
    public var declared: String
    /// The inferred type, as text; this is the one kept.
    public var inferred: String
}

/// What one inference run over a graph found, in graph order.
struct Findings {
    var values: [InferredValue] = []
    var known: [(String, TensorValue)] = []
    var unresolved: [UnresolvedNode] = []
    var conflicts: [TypeConflict] = []
    var folded = 0
    /// `path/label` of every node whose op's inference threw (not merely left dims unknown).
    var failed: Set<String> = []

    mutating func append(_ other: Findings) {
        failed.formUnion(other.failed)
        values += other.values
        known += other.known
        unresolved += other.unresolved
        conflicts += other.conflicts
        folded += other.folded
    }
}

/// When constant folding replaces a node by initializers.
struct FoldingPolicy {
    /// Largest folded tensor written as an initializer, in bytes; bigger results stay computed at run time.
    var materializeBytes: Int
    /// Bytes of folded initializers the model may still gain, shared by every folding round of a pipeline run.
    var budget: InferenceBudget
    /// Bytes of folded initializers one model may gain in all (64 MiB): past it nodes stay as they are, so a model
    /// of many small folds cannot grow into a huge package.
    static let totalBytes = 64 << 20
}

/// What a model may still spend: computed elements (inference) and folded bytes (folding).
final class InferenceBudget {
    var elements: Int
    var foldedBytes: Int
    private(set) var elementsSpent = false

    init(elements: Int, foldedBytes: Int) {
        self.elements = elements
        self.foldedBytes = foldedBytes
    }

    func takeElements(_ n: Int) -> Bool {
        guard n <= elements else { elementsSpent = true; return false }
        elements -= n
        return true
    }

    func takeFolded(_ n: Int) -> Bool {
        guard n <= foldedBytes else { return false }
        foldedBytes -= n
        return true
    }
}

/// Names visible in a graph: its own values, then the enclosing graphs'.
final class Scope {
    let parent: Scope?
    var states: [String: ValueState] = [:]

    init(parent: Scope?) { self.parent = parent }

    func lookup(_ name: String) -> ValueState? {
        var scope: Scope? = self
        while let s = scope {
            if let state = s.states[name] { return state }
            scope = s.parent
        }
        return nil
    }
}

/// Walks a model in topological order, running each node's op inference and evaluation, and rebuilds every
/// graph with its value_info annotated (and, with a folding policy, constant nodes replaced by initializers).
final class InferenceEngine: SubgraphInferring {
    /// Largest node output dim believed: 2^31 − 1 (see `process`).
    static let maxDim = Int(Int32.max)

    struct Outcome {
        var graph: Graph
        var outputs: [ValueState]
        var findings: Findings
    }

    /// The graph whose nodes are being processed; ops reach subgraphs through it.
    final class Frame {
        let scope: Scope
        let path: String
        let opsets: [String: Int]
        let folding: Bool
        var nodeLabel = ""
        var cache: [String: (inputs: [ValueType], outcome: Outcome)] = [:]

        init(scope: Scope, path: String, opsets: [String: Int], folding: Bool) {
            self.scope = scope
            self.path = path
            self.opsets = opsets
            self.folding = folding
        }
    }

    static let maxDepth = 64

    let model: Model
    let registry: OpRegistry
    let algebra = DimAlgebra()
    let limits: InferenceLimits
    let folding: FoldingPolicy?
    let budget: InferenceBudget
    private var frames: [Frame] = []
    private var functionDepth = 0
    private var functionCache: [String: ([ValueType], [TensorValue?], String?)] = [:]
    private var functionNodesLeft = InferenceEngine.functionNodeBudget

    init(model: Model, registry: OpRegistry = .standard, limits: InferenceLimits, folding: FoldingPolicy?) {
        self.model = model
        self.registry = registry
        self.limits = limits
        self.folding = folding
        budget = InferenceBudget(elements: limits.totalElements, foldedBytes: FoldingPolicy.totalBytes)
        // Symbols the model names anywhere must never be reused for fresh ones.
        model.graph.forEachGraph { graph, _ in
            for v in graph.inputs + graph.outputs + graph.valueInfo {
                for s in Self.symbols(v.type) { algebra.declare(symbol: s, lowerBound: 1) }
            }
        }
    }

    static func symbols(_ type: ValueType) -> [String] {
        switch type {
        case .tensor(let t), .sparseTensor(let t):
            return (t.shape ?? []).compactMap { if case .symbol(let s) = $0 { return s }; return nil }
        case .sequence(let e), .optional(let e): return symbols(e)
        case .map(_, let v): return symbols(v)
        default: return []
        }
    }

    static func opsets(_ imports: [OpsetImport]) -> [String: Int] {
        var out: [String: Int] = [:]
        for i in imports { out[i.domain == "ai.onnx" ? "" : i.domain] = Int(clamping: i.version) }
        return out
    }

    func run() -> (Model, Findings) {
        var m = model
        let outcome = inferGraph(model.graph, path: "main", scope: Scope(parent: nil), given: nil,
                                 opsets: Self.opsets(model.opsetImports), folding: folding != nil, recording: true)
        m.graph = outcome.graph
        return (m, outcome.findings)
    }

    // MARK: graphs

    func inferGraph(_ graph: Graph, path: String, scope: Scope, given: [ValueType]?, opsets: [String: Int],
                    folding: Bool, recording: Bool) -> Outcome {
        var findings = Findings()
        let initializerNames = Set(graph.initializers.map(\.name)).union(graph.sparseInitializers.map(\.name))
        let inputNames = Set(graph.inputs.map(\.name))
        var declared: [String: ValueType] = [:]
        for v in graph.valueInfo { declared[v.name] = v.type }
        for v in graph.outputs where v.type != .unknown { declared[v.name] = v.type }

        var runtimeIndex = 0
        for input in graph.inputs where !initializerNames.contains(input.name) {
            var type = withFreshDims(input.type)
            if let given, runtimeIndex < given.count, given[runtimeIndex] != .unknown {
                type = refine(given[runtimeIndex], declared: input.type, name: input.name, path: path, findings: &findings)
            }
            runtimeIndex += 1
            scope.states[input.name] = ValueState(type: type)
            if recording { findings.values.append(InferredValue(graph: path, name: input.name, kind: .input, type: type, constant: false)) }
        }
        for tensor in graph.initializers {
            let overridable = inputNames.contains(tensor.name)
            let state = ValueState(type: .tensor(tensor.type), isConstant: !overridable, source: overridable ? nil : tensor)
            scope.states[tensor.name] = state
            if recording {
                findings.values.append(InferredValue(graph: path, name: tensor.name, kind: .initializer, type: state.type, constant: !overridable))
                if !overridable, tensor.elementCount <= limits.symbolicElements, let v = state.value(limit: limits.symbolicElements) {
                    findings.known.append((tensor.name, v))
                }
            }
        }
        for sparse in graph.sparseInitializers {
            let type = tensorType(sparse.values.dataType, sparse.dims.map { .value($0) })
            scope.states[sparse.name] = ValueState(type: type, isConstant: !inputNames.contains(sparse.name))
            if recording { findings.values.append(InferredValue(graph: path, name: sparse.name, kind: .initializer, type: type, constant: true)) }
        }

        let frame = Frame(scope: scope, path: path, opsets: opsets, folding: folding && self.folding != nil)
        frames.append(frame)
        let graphOutputs = Set(graph.outputs.map(\.name))
        var nodes: [Node] = []
        var initializers = graph.initializers
        for (index, node) in graph.nodes.enumerated() {
            let result = process(node, index: index, frame: frame, declared: declared, graphOutputs: graphOutputs,
                                 recording: recording, findings: &findings)
            if let replacement = result.initializers {
                initializers += replacement
                findings.folded += 1
            } else {
                nodes.append(result.node)
            }
        }
        frames.removeLast()

        // value_info: every node output that is not a graph output, in node order; earlier entries for other
        // names (annotations of initializers, say) are kept after them.
        var annotated = graph
        annotated.nodes = nodes
        annotated.initializers = initializers
        let previous = Dictionary(graph.valueInfo.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var valueInfo: [ValueInfo] = []
        var written = Set<String>()
        for node in nodes {
            for name in node.outputs where !name.isEmpty && !graphOutputs.contains(name) && !written.contains(name) {
                guard let state = scope.states[name], Self.isWritable(state.type) else {
                    if let p = previous[name] { valueInfo.append(p); written.insert(name) }
                    continue
                }
                var info = previous[name] ?? ValueInfo(name: name, type: state.type)
                info.type = state.type
                valueInfo.append(info)
                written.insert(name)
            }
        }
        let folded = Set(initializers.map(\.name))
        let defined = Set(graph.nodes.flatMap(\.outputs))
        for info in graph.valueInfo where !written.contains(info.name) && !(defined.contains(info.name) && folded.contains(info.name)) {
            valueInfo.append(info)
            written.insert(info.name)
        }
        annotated.valueInfo = valueInfo
        let outputs = graph.outputs.map { scope.lookup($0.name) ?? ValueState(type: $0.type) }
        return Outcome(graph: annotated, outputs: outputs, findings: findings)
    }

    /// The type with every unknown dim replaced by a fresh symbol (graph inputs: one unknown but fixed size each).
    func withFreshDims(_ type: ValueType) -> ValueType {
        switch type {
        case .tensor(let t):
            return .tensor(TensorType(elementType: t.elementType, shape: t.shape?.map { $0 == .unknown ? algebra.fresh(lowerBound: 1) : $0 }))
        case .sequence(let e): return .sequence(withFreshDims(e))
        case .optional(let e): return .optional(withFreshDims(e))
        default: return type
        }
    }

    // MARK: nodes

    private struct NodeResult {
        var node: Node
        /// Set when the node was folded into these initializers.
        var initializers: [Tensor]?
    }

    private func process(_ node: Node, index: Int, frame: Frame, declared: [String: ValueType], graphOutputs: Set<String>,
                         recording: Bool, findings: inout Findings) -> NodeResult {
        let label = node.name.isEmpty ? "#\(index)" : node.name
        frame.nodeLabel = node.name.isEmpty ? "#\(index)(\(node.opType))" : node.name
        frame.cache = [:]
        let inputs: [ValueState?] = node.inputs.map { $0.isEmpty ? nil : (frame.scope.lookup($0) ?? ValueState(type: .unknown)) }
        var types: [ValueType] = []
        var values: [TensorValue?] = []
        var reason: String?
        var failed = false
        var known = false
        var deterministic = true
        let domain = node.domain == "ai.onnx" ? "" : node.domain

        if let function = model.functions.first(where: { $0.name == node.opType && $0.domain == domain && $0.overload == node.overload }) {
            (types, values, reason) = inferFunction(function, call: node, inputs: inputs, frame: frame)
            known = reason == nil
            failed = reason != nil
        } else if let version = frame.opsets[domain] {
            switch registry.lookup(domain: domain, opType: node.opType, opset: version) {
            case .found(let op, let since):
                known = true
                deterministic = op.isDeterministic
                let ctx = OpContext(node: node, opsetVersion: version, since: since, algebra: algebra, limits: limits,
                                    inputs: inputs, subgraphs: self)
                do {
                    types = try op.infer(ctx)
                    reason = ctx.note
                } catch {
                    reason = "\(error)"
                    failed = true
                }
                if !failed && deterministic {
                    // Within the model's budget only; small values (shape chains) are always computed.
                    let need = types.reduce(0) { total, type in
                        guard case .tensor(let t) = type, let shape = t.shape else { return total }
                        let dims = shape.compactMap { d -> Int? in if case .value(let v) = d { return v }; return nil }
                        guard dims.count == shape.count, let n = Tensor.elementCount(of: dims) else { return total }
                        return total &+ n
                    }
                    if need <= limits.symbolicElements || need <= budget.elements {
                        values = ((try? op.evaluate(ctx, types: types)) ?? nil) ?? []
                    }
                }
            case .tooNew(let first):
                reason = "\(node.opType) exists from opset \(first); the model imports \(domain.isEmpty ? "ai.onnx" : domain) \(version)"
                failed = true
            case .unknown:
                reason = domain.isEmpty ? "\(node.opType) is not covered by shape inference" : "\(domain).\(node.opType) is an op of a domain shape inference does not know"
                failed = true
            }
        } else {
            reason = "the model imports no opset for domain '\(domain)'"
            failed = true
        }

        let hasSubgraphs = node.attributes.contains { !$0.value.subgraphs.isEmpty }
        let presentInputs = inputs.compactMap { $0 }
        let fromConstants = known && deterministic && !failed && !hasSubgraphs && !presentInputs.isEmpty && presentInputs.allSatisfy(\.isConstant)
        var states: [(String, ValueState)] = []
        var incomplete: String?
        for (i, name) in node.outputs.enumerated() where !name.isEmpty {
            var type = i < types.count ? types[i] : .unknown
            var value = i < values.count ? values[i] : nil
            if let v = value {
                let limit = v.isConcrete ? limits.evaluationElements : limits.symbolicElements
                if case .tensor(let t) = type, (t.elementType != nil && t.elementType != v.dataType) || (t.shape != nil && t.shape!.count != v.dims.count) {
                    value = nil
                } else if v.count > limit || Tensor.elementCount(of: v.dims) != v.count {
                    value = nil
                } else if v.isConcrete && !budget.takeElements(v.count) {
                    value = nil
                    reason = reason ?? "not evaluated: the model's budget of \(limits.totalElements) computed elements is spent"
                } else {
                    type = .tensor(TensorType(elementType: v.dataType, shape: v.dims.map { .value($0) }))
                }
            }
            if case .tensor(let t) = type, let shape = t.shape, shape.contains(where: { if case .value(let v) = $0 { return v < 0 }; return false }) {
                reason = reason ?? "computed a negative dim for '\(name)': \(t.shapeDescription)"
                type = tensorType(t.elementType, nil)
            }
            // No consumer may compute an element count or byte size that overflows (declared types are checked by
            // GraphVerifier; this covers computed ones such as a Concat of two huge halves).
            if case .tensor(let t) = type, t.holdsTooManyElements {
                reason = reason ?? "computed a shape for '\(name)' of more elements than fit in 64 bits: \(t.shapeDescription)"
                type = tensorType(t.elementType, nil)
            }
            if let d = declared[name] {
                type = refine(type, declared: d, name: name, path: frame.path, findings: &findings)
            }
            // A node output dim past 2^31 − 1, computed or declared, is not believed: no kernel indexes such a dim
            // (Core ML's shapes are int32), and a hostile Resize scale or value_info would reach every consumer.
            if case .tensor(let t) = type, let shape = t.shape,
               shape.contains(where: { if case .value(let v) = $0 { return v > Self.maxDim }; return false }) {
                reason = reason ?? "'\(name)' would have a dim past \(Self.maxDim): \(t.shapeDescription); that dim is left unknown"
                type = tensorType(t.elementType, shape.map { if case .value(let v) = $0, v > Self.maxDim { return algebra.fresh() }; return $0 })
            }
            if incomplete == nil, !Self.isComplete(type) { incomplete = name }
            let constant = (value?.isConcrete ?? false) || fromConstants || node.isConstant
            let state = ValueState(type: type, isConstant: constant, value: value)
            frame.scope.states[name] = state
            states.append((name, state))
        }

        if reason != nil || incomplete != nil {
            let why = reason ?? "the type of '\(incomplete!)' is not fully known"
            findings.unresolved.append(UnresolvedNode(graph: frame.path, node: label, opType: node.opType, domain: domain, reason: why))
            if failed { findings.failed.insert(frame.path + "/" + label) }
        }

        // Subgraphs: keep what the op inferred; infer the others with their declared input types.
        var rebuilt = node
        for (a, attribute) in node.attributes.enumerated() {
            switch attribute.value {
            case .graph(let g):
                let outcome = frame.cache[attribute.name]?.outcome
                    ?? inferSubgraphGraph(g, attribute: attribute.name, given: nil, frame: frame)
                rebuilt.attributes[a].value = .graph(outcome.graph)
                findings.append(outcome.findings)
            case .graphs(let gs):
                var out: [Graph] = []
                for (k, g) in gs.enumerated() {
                    let outcome = inferSubgraphGraph(g, attribute: "\(attribute.name)[\(k)]", given: nil, frame: frame)
                    out.append(outcome.graph)
                    findings.append(outcome.findings)
                }
                rebuilt.attributes[a].value = .graphs(out)
            default:
                break
            }
        }

        // Folding: a deterministic default-domain node whose outputs are all known, small and not graph outputs.
        if frame.folding, let policy = folding, known, deterministic, !failed, domain.isEmpty, !node.isConstant,
           !hasSubgraphs || node.opType == "If", !states.isEmpty,
           states.allSatisfy({ !graphOutputs.contains($0.0) && ($0.1.knownValue.map { $0.isConcrete && $0.byteCount <= policy.materializeBytes } ?? false) }) {
            let tensors = states.compactMap { name, state in state.knownValue?.tensor(named: name) }
            if tensors.count == states.count, policy.budget.takeFolded(tensors.reduce(0) { $0 + $1.byteCount }) {
                record(states, kind: .node, frame: frame, recording: recording, findings: &findings)
                return NodeResult(node: node, initializers: tensors)
            }
        }
        record(states, kind: .node, frame: frame, recording: recording, findings: &findings)
        return NodeResult(node: rebuilt, initializers: nil)
    }

    private func record(_ states: [(String, ValueState)], kind: InferredValue.Kind, frame: Frame, recording: Bool,
                        findings: inout Findings) {
        guard recording else { return }
        for (name, state) in states {
            findings.values.append(InferredValue(graph: frame.path, name: name, kind: kind, type: state.type, constant: state.isConstant))
            if let v = state.knownValue, v.isConcrete { findings.known.append((name, v)) }
        }
    }

    /// A type ONNX value_info can hold: tensors need their dtype (the shape may be unknown).
    static func isWritable(_ type: ValueType) -> Bool {
        switch type {
        case .tensor(let t), .sparseTensor(let t): return t.elementType != nil
        case .sequence(let e), .optional(let e): return isWritable(e)
        case .map(let k, let v): return k != nil && isWritable(v)
        case .unknown: return false
        case .opaque: return true
        }
    }

    /// A tensor type with a dtype and a rank (sequences and optionals: their elements').
    static func isComplete(_ type: ValueType) -> Bool {
        switch type {
        case .tensor(let t), .sparseTensor(let t): return t.elementType != nil && t.shape != nil
        case .sequence(let e), .optional(let e): return isComplete(e)
        case .unknown: return false
        default: return true
        }
    }

    // MARK: subgraphs

    func inferSubgraph(attribute: String, of node: Node, inputs: [ValueType]) throws -> [ValueState] {
        guard let frame = frames.last else { throw OpFailure("no graph is being inferred") }
        guard case .graph(let g)? = node.attribute(attribute)?.value else { throw OpFailure("attribute '\(attribute)' is not a graph") }
        if let cached = frame.cache[attribute], cached.inputs == inputs { return cached.outcome.outputs }
        let outcome = inferSubgraphGraph(g, attribute: attribute, given: inputs, frame: frame)
        frame.cache[attribute] = (inputs, outcome)
        return outcome.outputs
    }

    private func inferSubgraphGraph(_ g: Graph, attribute: String, given: [ValueType]?, frame: Frame) -> Outcome {
        let path = frame.path + "/" + frame.nodeLabel + "." + attribute
        guard frames.count < Self.maxDepth else {
            var f = Findings()
            f.unresolved.append(UnresolvedNode(graph: path, node: "", opType: "", domain: "", reason: "subgraphs nest too deeply"))
            return Outcome(graph: g, outputs: g.outputs.map { ValueState(type: $0.type) }, findings: f)
        }
        let label = frame.nodeLabel
        let outcome = inferGraph(g, path: path, scope: Scope(parent: frame.scope), given: given, opsets: frame.opsets,
                                 folding: frame.folding, recording: true)
        frame.nodeLabel = label
        return outcome
    }

    // MARK: functions

    /// A call of a model-local function: its body inferred with the call's inputs and attributes.
    private func inferFunction(_ function: Function, call: Node, inputs: [ValueState?], frame: Frame) -> ([ValueType], [TensorValue?], String?) {
        guard functionDepth < 16 else { return ([], [], "function calls nest too deeply") }
        // A body is inferred once per distinct call signature (input types and values, attributes): a DAG of calls
        // (6 levels × 10 calls took 12–23 s, every call expanded) costs one inference per distinct signature.
        let key = Self.signature(function, call: call, inputs: inputs)
        if let cached = functionCache[key] { return cached }
        guard functionNodesLeft >= function.nodes.count else {
            return ([], [], "not inferred: the model's budget of \(Self.functionNodeBudget) function body nodes is spent")
        }
        functionNodesLeft -= function.nodes.count
        let result = expandFunction(function, call: call, inputs: inputs, frame: frame)
        functionCache[key] = result
        return result
    }

    /// Body nodes inferred through function calls over a whole model, at most.
    static let functionNodeBudget = 1 << 20

    static func signature(_ function: Function, call: Node, inputs: [ValueState?]) -> String {
        var key = "\(function.domain)\u{1}\(function.name)\u{1}\(function.overload)"
        for input in inputs {
            // Every element of a known value (TensorValue's description shows only the first few).
            key += "\u{1}" + (input.map { "\($0.type)=\($0.knownValue.map { "\($0.dataType)\($0.dims)\($0.elements)" } ?? "")" } ?? "-")
        }
        for a in call.attributes.sorted(by: { $0.name < $1.name }) { key += "\u{1}\(a.name)=\(a.value)" }
        return key
    }

    private func expandFunction(_ function: Function, call: Node, inputs: [ValueState?], frame: Frame) -> ([ValueType], [TensorValue?], String?) {
        functionDepth += 1
        defer { functionDepth -= 1 }
        let scope = Scope(parent: nil)
        for (i, name) in function.inputs.enumerated() where i < inputs.count {
            if let state = inputs[i] { scope.states[name] = state }
        }
        var attributes: [String: Attribute] = [:]
        for a in function.attributeDefaults { attributes[a.name] = a }
        for a in call.attributes { attributes[a.name] = a }
        let body = function.nodes.map { node -> Node in
            var n = node
            n.attributes = node.attributes.compactMap { a in
                guard let ref = a.referencedAttribute else { return a }
                guard var value = attributes[ref] else { return nil }
                value.name = a.name
                value.referencedAttribute = nil
                return value
            }
            return n
        }
        var opsets = frame.opsets
        for (domain, version) in Self.opsets(function.opsetImports) { opsets[domain] = version }
        let graph = Graph(name: function.name, outputs: function.outputs.map { ValueInfo(name: $0, type: .unknown) }, nodes: body)
        let outcome = inferGraph(graph, path: frame.path + "/" + frame.nodeLabel + ".(" + function.name + ")", scope: scope,
                                 given: nil, opsets: opsets, folding: false, recording: false)
        let types = outcome.outputs.map(\.type)
        let reason = outcome.findings.unresolved.first.map { "function \(function.domain).\(function.name): \($0.opType) \($0.node): \($0.reason)" }
        return (types, outcome.outputs.map(\.knownValue), types.allSatisfy(Self.isComplete) ? nil : reason ?? "function outputs are not fully known")
    }

    // MARK: declared types

    /// The inferred type refined by a declared one: declared dims fill in what inference could not know (unknown
    /// dims, fresh symbols); a contradiction is recorded and the inferred type kept.
    func refine(_ inferred: ValueType, declared: ValueType, name: String, path: String, findings: inout Findings) -> ValueType {
        var conflict = false
        let merged = merge(inferred, declared, conflict: &conflict)
        if conflict {
            findings.conflicts.append(TypeConflict(graph: path, value: name, declared: declared.description, inferred: inferred.description))
            return inferred
        }
        return merged
    }

    private func merge(_ inferred: ValueType, _ declared: ValueType, conflict: inout Bool) -> ValueType {
        switch (inferred, declared) {
        case (.unknown, _): return withFreshDims(declared)
        case (_, .unknown): return inferred
        case (.tensor(let a), .tensor(let b)): return .tensor(mergeTensor(a, b, conflict: &conflict))
        case (.sparseTensor(let a), .sparseTensor(let b)): return .sparseTensor(mergeTensor(a, b, conflict: &conflict))
        case (.sequence(let a), .sequence(let b)): return .sequence(merge(a, b, conflict: &conflict))
        case (.optional(let a), .optional(let b)): return .optional(merge(a, b, conflict: &conflict))
        case (.optional(let a), _): return .optional(merge(a, declared, conflict: &conflict))
        default:
            conflict = inferred != declared
            return inferred
        }
    }

    private func mergeTensor(_ a: TensorType, _ b: TensorType, conflict: inout Bool) -> TensorType {
        var element = a.elementType
        if let x = a.elementType, let y = b.elementType, x != y { conflict = true }
        if element == nil { element = b.elementType }
        guard let s = a.shape else { return TensorType(elementType: element, shape: withFreshDims(.tensor(b)).shapeDims) }
        guard let t = b.shape else { return TensorType(elementType: element, shape: s) }
        guard s.count == t.count else { conflict = true; return a }
        let dims = zip(s, t).map { x, y -> Dim in
            switch (x, y) {
            case (.value(let p), .value(let q)):
                if p != q { conflict = true }
                return x
            case (.value, _): return x
            case (_, .value): return y
            case (.symbol(let p), .symbol) where algebra.isFresh(p): return y
            case (.unknown, .symbol): return y
            default: return x
            }
        }
        return TensorType(elementType: element, shape: dims)
    }
}

extension ValueType {
    var shapeDims: [Dim]? {
        if case .tensor(let t) = self { return t.shape }
        return nil
    }
}
