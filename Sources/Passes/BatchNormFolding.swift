import GraphIR

/// Folds an inference-mode BatchNormalization into the linear node that feeds it, when that node's weights are
/// constant: `BN(y) = s·y + t` with `s = γ / √(σ² + ε)` and `t = β − μ·s` per channel, so
///
/// | producer | weight change | bias |
/// |---|---|---|
/// | Conv W [M, C/g, k…] | row m × s[m] | b' = s·b + t (a new bias when there was none) |
/// | ConvTranspose W [C, M/g, k…] | column j of input channel c × s[(c / (C/g))·(M/g) + j] | b' = s·b + t |
/// | Gemm (output [N, M]) | output column × s (B's last or first axis, per transB) | C' = s·β·C + t (shape [M]), β := 1 |
/// | MatMul with a rank-2 A and B [K, M] | column × s | the BN becomes Add(·, t) |
///
/// The arithmetic runs in double precision and is rounded once to float32, so the folded model computes what the
/// original did up to float32 rounding. A model's BatchNormalization variance can be far beyond float16's range
/// (1e8 in a real detector): folded, it is gone before any weight is rounded. Nothing is folded unless every
/// condition holds: BN in inference mode (`training_mode` 0, one output, `spatial` 1), all four parameters constant
/// float32 vectors of the channel count, the producer's only reader is the BN and its output is not a graph output,
/// and its weight (and bias) are float32 initializers that nothing else reads and no graph input overrides.
/// Subgraphs are folded too (their own initializers only).
public struct BatchNormFolding: GraphPass {
    /// The pass's name, as `PipelineError` reports it.
    public let name = "fold-batch-norm"

    /// The pass; it has no settings.
    public init() {}

    /// Folds every eligible BatchNormalization using the last shape inference's types, then infers shapes again;
    /// returns whether any was folded.
    public func run(_ model: inout Model, context: PassContext) throws -> Bool {
        var folded = 0, removed = 0
        model.graph = Self.fold(model.graph, types: context.inference?.types ?? [:], count: &folded, removedInitializers: &removed)
        guard folded > 0 else { return false }
        context.foldedBatchNorms += folded
        context.removedInitializers += removed
        // MatMul folds add an Add node, and renamed values lose their old value_info: infer again.
        _ = try ShapeInference().run(&model, context: context)
        return true
    }

    static func fold(_ graph: Graph, types: [String: ValueType], count: inout Int, removedInitializers: inout Int) -> Graph {
        var graph = graph
        for n in graph.nodes.indices {
            for a in graph.nodes[n].attributes.indices {
                switch graph.nodes[n].attributes[a].value {
                case .graph(let g): graph.nodes[n].attributes[a].value = .graph(fold(g, types: types, count: &count, removedInitializers: &removedInitializers))
                case .graphs(let gs): graph.nodes[n].attributes[a].value = .graphs(gs.map { fold($0, types: types, count: &count, removedInitializers: &removedInitializers) })
                default: break
                }
            }
        }
        var folder = Folder(graph: graph, types: types)
        for index in graph.nodes.indices where graph.nodes[index].opType == "BatchNormalization" && graph.nodes[index].domain.isEmpty {
            if folder.fold(batchNorm: index) { count += 1 }
        }
        let result = folder.finish()
        removedInitializers += folder.removedInitializers
        return result
    }
}

/// One graph's folding state: reads counted once, edits collected and applied at the end.
private struct Folder {
    var graph: Graph
    let types: [String: ValueType]
    /// How many places read each value: node inputs, subgraph captures and graph outputs.
    var reads: [String: Int] = [:]
    var producer: [String: Int] = [:]
    var initializerIndex: [String: Int] = [:]
    var constantNode: [String: Int] = [:]
    var names: Set<String> = []
    var removed: Set<Int> = []
    /// Nodes that replace a removed BN in place (the MatMul case).
    var replacements: [Int: Node] = [:]
    var newInitializers: [Tensor] = []
    var renamed: Set<String> = []
    /// The folded BNs' parameters: gone with them when nothing else reads them.
    var consumed: Set<String> = []
    var removedInitializers = 0

    init(graph: Graph, types: [String: ValueType]) {
        self.graph = graph
        self.types = types
        let inputNames = Set(graph.inputs.map(\.name))
        for (i, t) in graph.initializers.enumerated() where !inputNames.contains(t.name) { initializerIndex[t.name] = i }
        for output in graph.outputs { reads[output.name, default: 0] += 1 }
        for (n, node) in graph.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty { reads[input, default: 0] += 1 }
            for attribute in node.attributes {
                for sub in attribute.value.subgraphs {
                    for name in sub.outerScopeReferences { reads[name, default: 0] += 1 }
                }
            }
            for output in node.outputs where !output.isEmpty { producer[output] = n }
            if node.isConstant, let out = node.outputs.first { constantNode[out] = n }
            names.formUnion(node.outputs)
        }
        names.formUnion(graph.inputs.map(\.name))
        names.formUnion(graph.initializers.map(\.name))
    }

    /// A constant float32 vector (initializer or Constant node) of `length` elements.
    func vector(_ name: String, length: Int) -> [Double]? {
        let tensor: Tensor?
        if let i = initializerIndex[name] { tensor = graph.initializers[i] }
        else if let n = constantNode[name] { tensor = graph.nodes[n].constantTensor }
        else { tensor = nil }
        guard let tensor, tensor.elementCount == length, tensor.dims.count <= 1 || tensor.dims.dropLast().allSatisfy({ $0 == 1 }),
              let values = floats(tensor) else { return nil }
        return values.map(Double.init)
    }

    /// A float32 initializer read only once (by the node being folded).
    func ownedWeight(_ name: String) -> Tensor? {
        guard let i = initializerIndex[name], reads[name] == 1 else { return nil }
        let t = graph.initializers[i]
        return isFloat32(t) ? t : nil
    }

    /// Raw little-endian float32 bytes, one value per element (checked without decoding: weights can be large).
    func isFloat32(_ tensor: Tensor) -> Bool {
        guard tensor.dataType == .float, tensor.encoding.isRaw, case .bytes(let view) = tensor.data else { return false }
        return view.count == tensor.elementCount * 4
    }

    func floats(_ tensor: Tensor) -> [Float]? {
        guard isFloat32(tensor), case .bytes(let view) = tensor.data else { return nil }
        #if _endian(little)
        // One copy, not a closure per element (a debug build spent seconds per model here).
        return [Float](unsafeUninitializedCapacity: tensor.elementCount) { buffer, count in
            if let base = view.bytes.baseAddress, tensor.elementCount > 0 {
                UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: base, byteCount: tensor.elementCount * 4)
            }
            count = tensor.elementCount
        }
        #else
        return (0..<tensor.elementCount).map { view.bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        #endif
    }

    func int(_ node: Node, _ name: String, _ fallback: Int64) -> Int64 {
        if case .int(let v)? = node.attribute(name)?.value { return v }
        return fallback
    }

    func float(_ node: Node, _ name: String, _ fallback: Float) -> Float {
        if case .float(let v)? = node.attribute(name)?.value { return v }
        return fallback
    }

    mutating func fresh(_ base: String) -> String {
        var name = base
        var k = 1
        while names.contains(name) { name = "\(base)_\(k)"; k += 1 }
        names.insert(name)
        return name
    }

    mutating func fold(batchNorm index: Int) -> Bool {
        let bn = graph.nodes[index]
        guard bn.inputs.count == 5, bn.outputs.first.map({ !$0.isEmpty }) == true,
              bn.outputs.dropFirst().allSatisfy(\.isEmpty),
              int(bn, "training_mode", 0) == 0, int(bn, "spatial", 1) == 1,
              let p = producer[bn.inputs[0]], !removed.contains(p), replacements[p] == nil,
              reads[bn.inputs[0]] == 1, graph.nodes[p].domain.isEmpty, graph.nodes[p].outputs.count == 1 else { return false }
        let linear = graph.nodes[p]
        guard let weight = linear.inputs.count > 1 ? ownedWeight(linear.inputs[1]) : nil else { return false }
        let channels: Int
        switch linear.opType {
        case "Conv" where weight.dims.count >= 3:
            channels = weight.dims[0]
        case "ConvTranspose" where weight.dims.count >= 3 && int(linear, "group", 1) >= 1:
            channels = weight.dims[1] * Int(int(linear, "group", 1))
        case "Gemm" where weight.dims.count == 2:
            channels = int(linear, "transB", 0) != 0 ? weight.dims[0] : weight.dims[1]
        case "MatMul" where weight.dims.count == 2 && rank(linear.inputs[0]) == 2:
            channels = weight.dims[1]
        default:
            return false
        }
        guard channels > 0,
              let gamma = vector(bn.inputs[1], length: channels), let beta = vector(bn.inputs[2], length: channels),
              let mean = vector(bn.inputs[3], length: channels), let variance = vector(bn.inputs[4], length: channels)
        else { return false }
        let epsilon = Double(float(bn, "epsilon", 1e-5))
        let s = (0..<channels).map { gamma[$0] / (variance[$0] + epsilon).squareRoot() }
        guard s.allSatisfy(\.isFinite) else { return false }
        let t = (0..<channels).map { beta[$0] - mean[$0] * s[$0] }

        // The bias the producer adds before the BN (Conv/ConvTranspose B, Gemm β·C), per channel.
        var bias = [Double](repeating: 0, count: channels)
        var biasName: String?
        switch linear.opType {
        case "Conv", "ConvTranspose":
            if linear.inputs.count > 2, !linear.inputs[2].isEmpty {
                guard let owned = ownedWeight(linear.inputs[2]), owned.elementCount == channels,
                      let b = floats(owned) else { return false }
                bias = b.map(Double.init)
                biasName = owned.name
            }
        case "Gemm":
            if linear.inputs.count > 2, !linear.inputs[2].isEmpty {
                guard let owned = ownedWeight(linear.inputs[2]), let c = floats(owned) else { return false }
                let betaScale = Double(float(linear, "beta", 1))
                switch (owned.dims, c.count) {
                case (_, 1) where owned.dims.allSatisfy({ $0 == 1 }) && owned.dims.count <= 2:
                    bias = [Double](repeating: Double(c[0]) * betaScale, count: channels)
                case ([channels], _), ([1, channels], _):
                    bias = c.map { Double($0) * betaScale }
                default:
                    return false
                }
                biasName = owned.name
            }
        default:
            break
        }

        // Scale the weight per output channel.
        guard let w = floats(weight) else { return false }
        var scaled = [Float](repeating: 0, count: w.count)
        let dims = weight.dims
        switch linear.opType {
        case "Conv":
            let per = w.count / channels
            for e in w.indices { scaled[e] = Float(Double(w[e]) * s[e / max(per, 1)]) }
        case "ConvTranspose":
            let group = Int(int(linear, "group", 1))
            let inputChannels = dims[0], perGroupOut = dims[1]
            let inner = dims[2...].reduce(1, *)
            guard inputChannels % group == 0 else { return false }
            let perGroupIn = inputChannels / group
            for e in w.indices {
                let c = e / (perGroupOut * inner), j = (e / max(inner, 1)) % perGroupOut
                scaled[e] = Float(Double(w[e]) * s[(c / perGroupIn) * perGroupOut + j])
            }
        default:  // Gemm, MatMul: the output column is the last axis, or the first for Gemm with transB.
            let columnFirst = linear.opType == "Gemm" && int(linear, "transB", 0) != 0
            for e in w.indices {
                let column = columnFirst ? e / dims[1] : e % dims[1]
                scaled[e] = Float(Double(w[e]) * s[column])
            }
        }
        var newWeight = weight
        newWeight.data = .bytes(LittleEndian.bytes(of: scaled))
        graph.initializers[initializerIndex[weight.name]!] = newWeight

        // From here on the fold happens.
        let folded = (0..<channels).map { Float(s[$0] * bias[$0] + t[$0]) }
        var producerNode = linear
        if linear.opType == "MatMul" {
            let addend = fresh(bn.outputs[0] + "_bn_shift")
            newInitializers.append(Tensor(name: addend, dataType: .float, dims: [channels], data: .bytes(LittleEndian.bytes(of: folded))))
            var add = Node(name: bn.name, opType: "Add", inputs: [bn.inputs[0], addend], outputs: [bn.outputs[0]])
            add.origin = bn.origin
            replacements[index] = add
            consumed.formUnion(bn.inputs[1...4])
            return true
        }
        if let biasName {
            var b = graph.initializers[initializerIndex[biasName]!]
            b.dims = [channels]
            b.data = .bytes(LittleEndian.bytes(of: folded))
            graph.initializers[initializerIndex[biasName]!] = b
        } else {
            let name = fresh(bn.outputs[0] + "_bn_bias")
            newInitializers.append(Tensor(name: name, dataType: .float, dims: [channels], data: .bytes(LittleEndian.bytes(of: folded))))
            while producerNode.inputs.count < 2 { producerNode.inputs.append("") }
            if producerNode.inputs.count == 2 { producerNode.inputs.append(name) } else { producerNode.inputs[2] = name }
        }
        if linear.opType == "Gemm" {
            producerNode.attributes.removeAll { $0.name == "beta" }
        }
        renamed.insert(producerNode.outputs[0])
        producerNode.outputs = [bn.outputs[0]]
        graph.nodes[p] = producerNode
        removed.insert(index)
        consumed.formUnion(bn.inputs[1...4])
        return true
    }

    func rank(_ name: String) -> Int? {
        if case .tensor(let t)? = types[name] { return t.shape?.count }
        return nil
    }

    mutating func finish() -> Graph {
        guard !removed.isEmpty || !replacements.isEmpty else { return graph }
        // Parameters only the folded BN read are now unread: their values live on in the folded weights.
        let dead = consumed.filter { reads[$0] == 1 }
        for name in dead {
            if let n = constantNode[name] { removed.insert(n) }
        }
        var nodes: [Node] = []
        for (i, node) in graph.nodes.enumerated() where !removed.contains(i) {
            nodes.append(replacements[i] ?? node)
        }
        graph.nodes = nodes
        let before = graph.initializers.count
        graph.initializers.removeAll { dead.contains($0.name) && initializerIndex[$0.name] != nil }
        removedInitializers = before - graph.initializers.count
        graph.initializers.append(contentsOf: newInitializers)
        graph.valueInfo.removeAll { renamed.contains($0.name) }
        return graph
    }
}
