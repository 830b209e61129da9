import GraphIR
import Quantization

/// Turns a model whose tensors carry storage encodings into a plain ONNX graph with the same semantics:
/// - `dequantize`: every encoded tensor is decoded to its dtype (float16 → float32, exact);
/// - otherwise: a float16-stored tensor stays float16 and feeds a `Cast` to float that takes over its name, so
///   consumers still see float32 and the file keeps the smaller weights.
/// Tensors that cannot take a Cast (an initializer also listed as a graph input, where the input may override it;
/// a model without ai.onnx opset ≥ 6) are decoded instead.
public struct ExportPreparation {
    /// Decode every encoded tensor to its dtype instead of keeping it stored behind a DequantizeLinear, lookup or Cast.
    public var dequantize: Bool

    /// A preparation that decodes every encoded tensor when `dequantize` is true.
    public init(dequantize: Bool) {
        self.dequantize = dequantize
    }

    /// What the preparation could not do as asked (e.g. an opset too old for DequantizeLinear's features).
    public private(set) var notes: [String] = []

    /// Whether palettized initializers become table lookups (ai.onnx opset ≥ 11), not float32.
    private var paletteAllowed = false

    static func hasPalettes(_ model: Model) -> Bool {
        var found = false
        model.graph.forEachGraph { g, _ in
            if g.initializers.contains(where: { if case .palette = $0.encoding { return true } else { return false } }) { found = true }
        }
        return found
    }

    /// The model with every encoded tensor in standard ONNX form (decoded, or stored with the nodes that restore it),
    /// the ai.onnx opset raised when DequantizeLinear needs it; what it could not do as asked is added to `notes`.
    public mutating func prepare(_ model: Model) -> Model {
        var model = model
        var names = NameAllocator(model: model)
        var quantized = !dequantize
        let needed = Self.requiredOpset(model)
        if quantized, needed > 0 {
            switch OpsetUpgrade.upgrade(model, to: needed, names: &names) {
            case .success(let upgraded):
                if upgraded.opsetVersion(domain: "") != model.opsetVersion(domain: "") {
                    notes.append("ai.onnx opset raised from \(model.opsetVersion(domain: "") ?? 0) to \(needed) for DequantizeLinear")
                }
                model = upgraded
            case .failure(let refusal):
                notes.append("quantized weights written as float32: DequantizeLinear needs ai.onnx opset \(needed), and \(refusal.reason)")
                quantized = false
            }
        }
        let castAllowed = !dequantize && (model.opsetVersion(domain: "") ?? 0) >= 6
        paletteAllowed = !dequantize && (model.opsetVersion(domain: "") ?? 0) >= 11
        if !dequantize && !paletteAllowed && Self.hasPalettes(model) {
            notes.append("palettized weights written as float32: a table lookup needs ai.onnx opset 11 (GatherElements)")
        }
        model.graph = prepare(model.graph, castAllowed: castAllowed, quantized: quantized, names: &names)
        model.irVersion = Self.irVersion(model)
        return model
    }

    /// The IR version to write: at least 4 when an initializer is not also a graph input. Before IR version 4 every
    /// initializer had to be an input (onnxruntime refuses such a file), and an IR 3 model's initializers are
    /// constants in the package (docs/IMPORT.md), as are the Cast, DequantizeLinear and lookup inputs added here;
    /// version 4 changed nothing else.
    static func irVersion(_ model: Model) -> Int64 {
        guard model.irVersion < 4 else { return model.irVersion }
        var unlisted = false
        model.graph.forEachGraph { g, _ in
            let inputs = Set(g.inputs.map(\.name))
            if g.initializers.contains(where: { !inputs.contains($0.name) })
                || g.sparseInitializers.contains(where: { !inputs.contains($0.name) }) { unlisted = true }
        }
        return unlisted ? 4 : model.irVersion
    }

    /// The ai.onnx opset the model's linear tensors need as DequantizeLinear: 10 per tensor, 13 per channel,
    /// 21 for int4/uint4 or blocked scales; 0 when there are none.
    static func requiredOpset(_ model: Model) -> Int64 {
        var needed: Int64 = 0
        model.graph.forEachGraph { g, _ in
            var tensors = g.initializers
            for node in g.nodes {
                for a in node.attributes { if case .tensor(let t) = a.value { tensors.append(t) } }
            }
            for t in tensors {
                guard case .linear(let q) = t.encoding else { continue }
                let v: Int64 = q.blockSize != nil || q.storage == .int4 || q.storage == .uint4 ? 21 : q.axis != nil ? 13 : 10
                needed = max(needed, v)
            }
        }
        return needed
    }

    private func prepare(_ graph: Graph, castAllowed: Bool, quantized: Bool, names: inout NameAllocator) -> Graph {
        var graph = graph
        var casts: [Node] = []
        let inputNames = Set(graph.inputs.map(\.name))
        for i in graph.initializers.indices where !graph.initializers[i].encoding.isRaw {
            let tensor = graph.initializers[i]
            if quantized, !inputNames.contains(tensor.name), case .linear(let q) = tensor.encoding {
                let (stored, dequantize) = dequantizeNode(tensor, q, output: tensor.name, names: &names)
                graph.initializers[i] = stored[0]
                graph.initializers += stored.dropFirst()
                casts += dequantize
            } else if quantized, paletteAllowed, !inputNames.contains(tensor.name), case .palette(let p) = tensor.encoding {
                let (stored, lookup) = lookupNodes(tensor, p, output: tensor.name, names: &names)
                graph.initializers[i] = stored[0]
                graph.initializers += stored.dropFirst()
                casts += lookup
            } else if castAllowed && !inputNames.contains(tensor.name), let stored = storedForm(tensor) {
                let storedName = names.fresh(tensor.name + "_fp16")
                graph.initializers[i] = stored.renamed(storedName)
                casts.append(castNode(from: storedName, to: tensor.name, names: &names))
            } else {
                graph.initializers[i] = tensor.decodedToRaw
            }
        }
        var nodes: [Node] = []
        nodes.reserveCapacity(graph.nodes.count + casts.count)
        nodes += casts
        for var node in graph.nodes {
            // A Constant holding a quantized value keeps the integers; scale and zero point become initializers.
            if quantized, node.isConstant, let output = node.outputs.first,
               let a = node.attributes.firstIndex(where: { $0.name == "value" }),
               case .tensor(let t) = node.attributes[a].value, case .linear(let q) = t.encoding {
                let (stored, dq) = dequantizeNode(t, q, output: output, names: &names)
                node.attributes[a].value = .tensor(stored[0].renamed(t.name))
                node.outputs[0] = stored[0].name
                graph.initializers += stored.dropFirst()
                nodes.append(node)
                nodes += dq
                continue
            }
            // A Constant holding a float16-stored value keeps it and hands its output name to a Cast.
            if castAllowed, node.isConstant, let output = node.outputs.first,
               let a = node.attributes.firstIndex(where: { $0.name == "value" }),
               case .tensor(let t) = node.attributes[a].value, let stored = storedForm(t) {
                let storedName = names.fresh(output + "_fp16")
                node.attributes[a].value = .tensor(stored)
                node.outputs[0] = storedName
                nodes.append(node)
                nodes.append(castNode(from: storedName, to: output, names: &names))
                continue
            }
            for a in node.attributes.indices {
                switch node.attributes[a].value {
                case .tensor(let t) where !t.encoding.isRaw:
                    node.attributes[a].value = .tensor(t.decodedToRaw)
                case .tensors(let ts):
                    node.attributes[a].value = .tensors(ts.map { $0.decodedToRaw })
                case .graph(let g):
                    node.attributes[a].value = .graph(prepare(g, castAllowed: castAllowed, quantized: quantized, names: &names))
                case .graphs(let gs):
                    node.attributes[a].value = .graphs(gs.map {
                        prepare($0, castAllowed: castAllowed, quantized: quantized, names: &names)
                    })
                default:
                    break
                }
            }
            nodes.append(node)
        }
        graph.nodes = nodes
        return graph
    }

    /// The tensor as ONNX can hold it directly (float16-encoded float → a float16 tensor), if it has such a form.
    private func storedForm(_ tensor: Tensor) -> Tensor? {
        guard case .float16 = tensor.encoding, tensor.dataType == .float else { return nil }
        var stored = tensor
        stored.dataType = .float16
        stored.encoding = .raw
        return stored
    }

    /// The stored integers, scale and zero point as plain tensors (integers first), and the DequantizeLinear node
    /// that rebuilds `output` from them.
    private func dequantizeNode(_ tensor: Tensor, _ q: LinearQuantization, output: String,
                                names: inout NameAllocator) -> ([Tensor], [Node]) {
        var values = tensor
        values.name = names.fresh(output + "_quantized")
        values.dataType = q.storage
        values.encoding = .raw
        if q.bits != nil, let widened = LinearCodec.storageLayout(tensor) { values.data = .bytes(widened) }
        var stored = [values, q.scale.renamed(names.fresh(output + "_scale"))]
        var nodes: [Node] = []
        var scaleInput = stored[1].name
        if q.scale.dataType == .float16 {
            // float16 scales are widened first, so DequantizeLinear computes scale · (q − zero point) in float32,
            // exactly as the package decodes it.
            scaleInput = names.fresh(output + "_scale_float")
            nodes.append(castNode(from: stored[1].name, to: scaleInput, names: &names))
        }
        var inputs = [stored[0].name, scaleInput]
        if let zp = q.zeroPoint {
            stored.append(zp.renamed(names.fresh(output + "_zero_point")))
            inputs.append(stored[2].name)
        }
        var attributes: [Attribute] = []
        if let axis = q.axis { attributes.append(Attribute(name: "axis", value: .int(Int64(axis)))) }
        if let block = q.blockSize { attributes.append(Attribute(name: "block_size", value: .int(Int64(block)))) }
        nodes.append(Node(name: names.fresh("mlpkg_dequantize_" + output), opType: "DequantizeLinear", inputs: inputs,
                          outputs: [output], attributes: attributes))
        return (stored, nodes)
    }

    /// A palettized tensor as ONNX runs it: one uint8 index per element and the float16 table, widened by a `Cast`
    /// and read by `Gather` (one table: indices shaped like the weight) or `GatherElements` (G tables along axis 0:
    /// indices [G, n/G], then a `Reshape` to the weight's shape). ONNX has no packed index type `Gather` takes, so
    /// the file holds one byte per index.
    private func lookupNodes(_ tensor: Tensor, _ p: PaletteQuantization, output: String,
                             names: inout NameAllocator) -> ([Tensor], [Node]) {
        let count = tensor.elementCount
        let unpacked = OwnedBuffer(uninitializedCount: count)
        if case .bytes(let packed) = tensor.data {
            for e in 0..<count { unpacked.mutableBytes[e] = UInt8(Palettizer.element(packed.bytes, e, bits: p.bits)) }
        }
        let groups = p.lut.dims.count == 2 ? p.lut.dims[0] : 1
        let indexDims = p.lut.dims.count == 2 ? [groups, groups == 0 ? 0 : count / groups] : tensor.dims
        let indices = Tensor(name: names.fresh(output + "_indices"), dataType: .uint8, dims: indexDims, data: .bytes(unpacked.view))
        let table = p.lut.renamed(names.fresh(output + "_lut"))
        var stored = [indices, table]
        var nodes: [Node] = []
        let wideTable = names.fresh(output + "_lut_float")
        nodes.append(castNode(from: table.name, to: wideTable, names: &names))
        let wideIndices = names.fresh(output + "_indices_int32")
        nodes.append(Node(name: names.fresh("mlpkg_cast_" + wideIndices), opType: "Cast", inputs: [indices.name],
                          outputs: [wideIndices], attributes: [Attribute(name: "to", value: .int(Int64(DataType.int32.rawValue)))]))
        if p.lut.dims.count == 2 {
            let gathered = names.fresh(output + "_gathered")
            nodes.append(Node(name: names.fresh("mlpkg_lookup_" + output), opType: "GatherElements", inputs: [wideTable, wideIndices],
                              outputs: [gathered], attributes: [Attribute(name: "axis", value: .int(1))]))
            let shape = Tensor(name: names.fresh(output + "_shape"), dataType: .int64, dims: [tensor.dims.count],
                               data: .bytes(LittleEndian.bytes(of: tensor.dims.map(Int64.init))))
            stored.append(shape)
            nodes.append(Node(name: names.fresh("mlpkg_reshape_" + output), opType: "Reshape", inputs: [gathered, shape.name],
                              outputs: [output]))
        } else {
            nodes.append(Node(name: names.fresh("mlpkg_lookup_" + output), opType: "Gather", inputs: [wideTable, wideIndices],
                              outputs: [output], attributes: [Attribute(name: "axis", value: .int(0))]))
        }
        return (stored, nodes)
    }

    private func castNode(from input: String, to output: String, names: inout NameAllocator) -> Node {
        Node(name: names.fresh("mlpkg_cast_" + output), opType: "Cast", inputs: [input], outputs: [output],
             attributes: [Attribute(name: "to", value: .int(Int64(DataType.float.rawValue)))])
    }
}

private extension Tensor {
    func renamed(_ name: String) -> Tensor {
        var copy = self
        copy.name = name
        return copy
    }
}

/// Hands out value and node names not used anywhere in the model.
struct NameAllocator {
    private var used: Set<String> = []

    init(model: Model) {
        model.graph.forEachGraph { g, _ in
            used.formUnion(g.inputs.map(\.name))
            used.formUnion(g.outputs.map(\.name))
            used.formUnion(g.initializers.map(\.name))
            used.formUnion(g.sparseInitializers.map(\.name))
            for n in g.nodes {
                used.insert(n.name)
                used.formUnion(n.outputs)
                used.formUnion(n.inputs)
            }
        }
    }

    mutating func fresh(_ base: String) -> String {
        var name = base
        var k = 1
        while used.contains(name) {
            name = "\(base)_\(k)"
            k += 1
        }
        used.insert(name)
        return name
    }
}
