import GraphIR
import Quantization

/// Turns a model whose tensors carry storage encodings into a plain ONNX graph with the same semantics:
/// - `dequantize`: every encoded tensor is decoded to its dtype (float16 → float32, exact);
/// - otherwise: a float16-stored tensor stays float16 and feeds a `Cast` to float that takes over its name, so
///   consumers still see float32 and the file keeps the smaller weights.
/// Tensors that cannot take a Cast (an initializer also listed as a graph input, where the input may override it;
/// a model without ai.onnx opset ≥ 6) are decoded instead.
public struct ExportPreparation {
    public var dequantize: Bool

    public init(dequantize: Bool) {
        self.dequantize = dequantize
    }

    public func prepare(_ model: Model) -> Model {
        var model = model
        var names = NameAllocator(model: model)
        let castAllowed = !dequantize && (model.opsetVersion(domain: "") ?? 0) >= 6
        model.graph = prepare(model.graph, castAllowed: castAllowed, names: &names)
        return model
    }

    private func prepare(_ graph: Graph, castAllowed: Bool, names: inout NameAllocator) -> Graph {
        var graph = graph
        var casts: [Node] = []
        let inputNames = Set(graph.inputs.map(\.name))
        for i in graph.initializers.indices where graph.initializers[i].encoding != .raw {
            let tensor = graph.initializers[i]
            if castAllowed && !inputNames.contains(tensor.name), let stored = storedForm(tensor) {
                let storedName = names.fresh(tensor.name + "_fp16")
                graph.initializers[i] = stored.renamed(storedName)
                casts.append(castNode(from: storedName, to: tensor.name, names: &names))
            } else {
                graph.initializers[i] = decoded(tensor)
            }
        }
        var nodes: [Node] = []
        nodes.reserveCapacity(graph.nodes.count + casts.count)
        nodes += casts
        for var node in graph.nodes {
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
                case .tensor(let t) where t.encoding != .raw:
                    node.attributes[a].value = .tensor(decoded(t))
                case .tensors(let ts):
                    node.attributes[a].value = .tensors(ts.map { $0.encoding == .raw ? $0 : decoded($0) })
                case .graph(let g):
                    node.attributes[a].value = .graph(prepare(g, castAllowed: castAllowed, names: &names))
                case .graphs(let gs):
                    node.attributes[a].value = .graphs(gs.map { prepare($0, castAllowed: castAllowed, names: &names) })
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
        guard tensor.encoding == .float16, tensor.dataType == .float else { return nil }
        var stored = tensor
        stored.dataType = .float16
        stored.encoding = .raw
        return stored
    }

    private func castNode(from input: String, to output: String, names: inout NameAllocator) -> Node {
        Node(name: names.fresh("mlpkg_cast_" + output), opType: "Cast", inputs: [input], outputs: [output],
             attributes: [Attribute(name: "to", value: .int(Int64(DataType.float.rawValue)))])
    }

    /// Decodes an encoded tensor to its dtype's raw layout.
    func decoded(_ tensor: Tensor) -> Tensor {
        guard tensor.encoding == .float16, case .bytes(let view) = tensor.data else { return tensor }
        let out = OwnedBuffer(uninitializedCount: tensor.elementCount * 4)
        Float16Codec.decode(view, into: out)
        var result = tensor
        result.data = .bytes(out.view)
        result.encoding = .raw
        return result
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
