import Foundation
import GraphIR

/// Builds the graph part of a manifest from a model, collecting every tensor (initializers, sparse parts, tensor
/// attributes such as Constant values) into one table in the order met: main graph first, subgraphs where they occur.
struct ManifestEncoder {
    /// Compute unit per node, by `NodePath.key` (empty: none recorded).
    var computeUnits: [String: String] = [:]
    private(set) var tensors: [Tensor] = []
    /// The encoding record of each table entry (linear ones refer to their scale and zero-point entries).
    private(set) var encodings: [EncodingRecord] = []
    /// Whether a tensor needs format 1.2: palettized, or linear at a packed width.
    private(set) var usesPalettes = false

    mutating func add(_ tensor: Tensor) -> Int {
        let index = tensors.count
        tensors.append(tensor)
        encodings.append(EncodingRecord(kind: tensor.encoding.name))
        if case .linear(let q) = tensor.encoding {
            let scale = add(q.scale)
            let zeroPoint = q.zeroPoint.map { add($0) }
            encodings[index] = EncodingRecord(kind: "linear", storage: q.storage, axis: q.axis, blockSize: q.blockSize,
                                              scale: scale, zeroPoint: zeroPoint, bits: q.bits)
            if q.bits != nil { usesPalettes = true }  // packed widths are 1.2 too
        }
        if case .palette(let p) = tensor.encoding {
            let lut = add(p.lut)
            encodings[index] = EncodingRecord(kind: "lut", bits: p.bits, groupSize: p.groupSize, lut: lut)
            usesPalettes = true
        }
        return index
    }

    /// `path` is the graph's `NodePath` ("" for the main graph); function bodies pass nil (no units recorded).
    mutating func graph(_ g: Graph, path: String? = "") -> GraphRecord {
        GraphRecord(
            name: g.name, docString: g.docString.nonEmpty,
            inputs: g.inputs.map(value), outputs: g.outputs.map(value), valueInfo: g.valueInfo.map(value),
            initializers: g.initializers.map { add($0) },
            sparseInitializers: g.sparseInitializers.map { sparse($0) },
            nodes: g.nodes.enumerated().map { node($0.element, path: path, index: $0.offset) },
            quantizationAnnotations: g.quantizationAnnotations.isEmpty ? nil : g.quantizationAnnotations.map {
                AnnotationRecord(tensorName: $0.tensorName, parameters: $0.parameters)
            },
            metadata: g.metadata.nonEmpty)
    }

    func value(_ v: ValueInfo) -> ValueRecord {
        ValueRecord(name: v.name, type: v.type, docString: v.docString.nonEmpty, metadata: v.metadata.nonEmpty)
    }

    mutating func sparse(_ s: SparseTensor) -> SparseRecord {
        SparseRecord(values: add(s.values), indices: add(s.indices), dims: s.dims)
    }

    mutating func node(_ n: Node, path: String?, index: Int) -> NodeRecord {
        let attributes = n.attributes.map { a in
            attribute(a, subgraphPath: { position in
                path.map { NodePath.subgraph(parent: $0, node: n, index: index, attribute: a.name, position: position) }
            })
        }
        return NodeRecord(name: n.name, opType: n.opType, domain: n.domain, overload: n.overload.nonEmpty, inputs: n.inputs,
                          outputs: n.outputs, attributes: attributes, docString: n.docString.nonEmpty,
                          metadata: n.metadata.nonEmpty,
                          computeUnit: path.flatMap { computeUnits[NodePath.key(graph: $0, index: index)] })
    }

    /// `subgraphPath` gives the path of the subgraph at a position of a GRAPHS attribute (nil: a GRAPH attribute).
    mutating func attribute(_ a: Attribute, subgraphPath: (Int?) -> String? = { _ in nil }) -> AttributeRecord {
        var r = AttributeRecord(name: a.name, type: a.value.typeName)
        r.refAttrName = a.referencedAttribute
        r.docString = a.docString.nonEmpty
        switch a.value {
        case .float(let v): r.f = v
        case .int(let v): r.i = v
        case .string(let bytes):
            if let text = String(validatingUTF8Bytes: bytes) { r.s = text } else { r.sBase64 = Data(bytes).base64EncodedString() }
        case .tensor(let t): r.t = add(t)
        case .graph(let g): r.g = graph(g, path: subgraphPath(nil))
        case .sparseTensor(let s): r.sparseTensor = sparse(s)
        case .type(let t): r.tp = t
        case .floats(let v): r.floats = v
        case .ints(let v): r.ints = v
        case .strings(let list):
            let texts = list.map { String(validatingUTF8Bytes: $0) }
            if texts.allSatisfy({ $0 != nil }) {
                r.strings = texts.map { $0! }
            } else {
                r.stringsBase64 = list.map { Data($0).base64EncodedString() }
            }
        case .tensors(let ts): r.tensors = ts.map { add($0) }
        case .graphs(let gs): r.graphs = gs.enumerated().map { graph($0.element, path: subgraphPath($0.offset)) }
        case .sparseTensors(let ss): r.sparseTensors = ss.map { sparse($0) }
        case .types(let ts): r.typeProtos = ts
        }
        return r
    }

    mutating func function(_ f: Function) -> FunctionRecord {
        FunctionRecord(name: f.name, domain: f.domain, overload: f.overload.nonEmpty, inputs: f.inputs, outputs: f.outputs,
                       attributeNames: f.attributeNames, attributeDefaults: f.attributeDefaults.map { attribute($0) },
                       nodes: f.nodes.enumerated().map { node($0.element, path: nil, index: $0.offset) }, opsetImports: f.opsetImports, valueInfo: f.valueInfo.map(value),
                       docString: f.docString.nonEmpty, metadata: f.metadata.nonEmpty)
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }

    /// The string these bytes spell in UTF-8, or nil if they are not valid UTF-8.
    init?(validatingUTF8Bytes bytes: [UInt8]) {
        guard let text = String(bytes: bytes, encoding: .utf8) else { return nil }
        self = text
    }
}

extension Array {
    var nonEmpty: [Element]? { isEmpty ? nil : self }
}
