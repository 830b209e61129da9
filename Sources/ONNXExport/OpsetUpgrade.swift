import GraphIR

/// Raises a model's ai.onnx opset (for DequantizeLinear features: per-axis scales need 13, int4 and blocked scales
/// 21), rewriting the ops whose meaning changed on the way so the graph computes what it did:
/// - Reduce{L1,L2,LogSum,LogSumExp,Max,Mean,Min,Prod,SumSquare} < 18: the `axes` attribute becomes an int64 input;
/// - Split < 18 without a `split` input: `num_outputs` is set (opset 18 requires one of them);
/// - RoiAlign < 16: `coordinate_transformation_mode` defaults changed; the old default is written out;
/// - GridSample < 20: mode `bilinear`/`bicubic` were renamed `linear`/`cubic`.
/// Models below opset 13, or using ops whose change has no rewrite here (GroupNormalization < 21, DFT < 20), are
/// not upgraded: the caller falls back to float weights.
enum OpsetUpgrade {
    static let reduceOps: Set<String> = ["ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
                                         "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare"]

    /// The upgraded model, or why it cannot be upgraded.
    static func upgrade(_ model: Model, to target: Int64, names: inout NameAllocator) -> Swift.Result<Model, UpgradeRefusal> {
        let current = model.opsetVersion(domain: "") ?? 0
        guard current < target else { return .success(model) }
        guard current >= 13 else { return .failure(UpgradeRefusal(reason: "the model uses ai.onnx opset \(current) (< 13)")) }
        var model = model
        do {
            model.graph = try rewrite(model.graph, from: current, names: &names)
            for i in model.functions.indices {
                guard let v = model.functions[i].opsetImports.first(where: { $0.domain == "" })?.version, v < target else { continue }
                var body = Graph(nodes: model.functions[i].nodes)
                body = try rewrite(body, from: v, names: &names)
                guard body.initializers.isEmpty else {
                    throw UpgradeRefusal(reason: "function \(model.functions[i].name) needs an attribute moved to an input")
                }
                model.functions[i].nodes = body.nodes
                for j in model.functions[i].opsetImports.indices where model.functions[i].opsetImports[j].domain == "" {
                    model.functions[i].opsetImports[j].version = target
                }
            }
        } catch let refusal as UpgradeRefusal {
            return .failure(refusal)
        } catch {
            return .failure(UpgradeRefusal(reason: "\(error)"))
        }
        for i in model.opsetImports.indices where model.opsetImports[i].domain == "" {
            model.opsetImports[i].version = target
        }
        if !model.opsetImports.contains(where: { $0.domain == "" }) {
            model.opsetImports.append(OpsetImport(domain: "", version: target))
        }
        // Opset 21 came with IR version 10, opset 13 with IR 7; runtimes check the pair.
        model.irVersion = max(model.irVersion, target >= 21 ? 10 : 7)
        return .success(model)
    }

    struct UpgradeRefusal: Error {
        var reason: String
    }

    private static func rewrite(_ graph: Graph, from version: Int64, names: inout NameAllocator) throws -> Graph {
        var graph = graph
        for n in graph.nodes.indices {
            var node = graph.nodes[n]
            for a in node.attributes.indices {
                switch node.attributes[a].value {
                case .graph(let g): node.attributes[a].value = .graph(try rewrite(g, from: version, names: &names))
                case .graphs(let gs):
                    var out: [Graph] = []
                    for g in gs { out.append(try rewrite(g, from: version, names: &names)) }
                    node.attributes[a].value = .graphs(out)
                default: break
                }
            }
            guard node.domain.isEmpty else {
                graph.nodes[n] = node
                continue
            }
            switch node.opType {
            case let op where reduceOps.contains(op) && version < 18:
                if let a = node.attributes.firstIndex(where: { $0.name == "axes" }), case .ints(let axes) = node.attributes[a].value {
                    node.attributes.remove(at: a)
                    let name = names.fresh((node.name.isEmpty ? op : node.name) + "_axes")
                    graph.initializers.append(Tensor(name: name, dataType: .int64, dims: [axes.count],
                                                     data: .bytes(LittleEndian.bytes(of: axes))))
                    node.inputs = [node.inputs.first ?? "", name]
                }
            case "Split" where version < 18:
                if node.inputs.count < 2 || node.inputs[1].isEmpty, node.attribute("num_outputs") == nil {
                    node.attributes.append(Attribute(name: "num_outputs", value: .int(Int64(node.outputs.count))))
                }
            case "RoiAlign" where version < 16:
                if node.attribute("coordinate_transformation_mode") == nil {
                    node.attributes.append(Attribute(name: "coordinate_transformation_mode",
                                                     value: .string(Array("output_half_pixel".utf8))))
                }
            case "GridSample" where version < 20:
                if let a = node.attributes.firstIndex(where: { $0.name == "mode" }), case .string(let mode) = node.attributes[a].value {
                    let renamed = ["bilinear": "linear", "bicubic": "cubic"][String(decoding: mode, as: UTF8.self)]
                    if let renamed { node.attributes[a].value = .string(Array(renamed.utf8)) }
                }
            case "GroupNormalization" where version < 21, "DFT" where version < 20:
                throw UpgradeRefusal(reason: "\(node.opType) changed meaning after opset \(version)")
            default:
                break
            }
            graph.nodes[n] = node
        }
        return graph
    }
}
