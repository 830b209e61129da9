#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CProtobufC
import GraphIR
import ONNXProto

/// Reads an ONNX model file into the graph IR.
///
/// The file is mapped and its structure parsed by protobuf-c; large `raw_data` payloads are never copied (see
/// `WireScanner`): tensors view them in the mapping, as they view external data files, so importing costs little
/// memory beyond the graph and pages are read only when a tensor is used.
/// Every fault — malformed protobuf, bad tensor, unsafe external data, broken graph — comes back as an `ImportError`
/// naming the file and the tensor or node at fault.
public enum ONNXImporter {
    /// Subgraphs nested deeper than this are refused (real models nest a few levels): `Graph.maxNesting`, the
    /// most ONNX readers take.
    public static let maxSubgraphDepth = Graph.maxNesting

    /// Reads the ONNX model file at `path` into the graph IR; throws an `ImportError` naming the file and the fault.
    public static func load(path: String, options: ImportOptions = ImportOptions()) throws(ImportError) -> Model {
        try load(mapped: try map(path: path), path: path, options: options)
    }

    /// Maps a model file for `load(mapped:path:)`; callers that also hash or copy the file share the one mapping.
    public static func map(path: String) throws(ImportError) -> MappedFile {
        do {
            return try MappedFile(path: path)
        } catch {
            throw ImportError(file: path, error.reason)
        }
    }

    /// Reads the model in `mapped`, the mapping of the file at `path` (errors name `path`; external data is looked
    /// up beside it).
    public static func load(mapped: MappedFile, path: String, options: ImportOptions = ImportOptions()) throws(ImportError) -> Model {
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[..<$0]) } ?? "."
        return try load(bytes: mapped.bytes, mapping: mapped, file: path, folder: folder.isEmpty ? "/" : folder, options: options)
    }

    /// Parses a model held in memory (copied: `bytes` may go away afterwards). `folder` is where relative
    /// external-data locations are looked up.
    public static func load(bytes: UnsafeRawBufferPointer, file: String, folder: String,
                            options: ImportOptions = ImportOptions()) throws(ImportError) -> Model {
        try load(bytes: bytes, mapping: nil, file: file, folder: folder, options: options)
    }

    /// With `mapping` (the file `bytes` lie in), large tensors are views of the mapping instead of copies.
    static func load(bytes: UnsafeRawBufferPointer, mapping: MappedFile?, file: String,
                     folder: String, options: ImportOptions) throws(ImportError) -> Model {
        let unpacked: UnpackedModel
        do {
            unpacked = try UnpackedModel(bytes: bytes, file: mapping)
        } catch {
            switch error {
            case .framing(let reason):
                throw ImportError(file: file, "not a valid ONNX protobuf: \(reason)")
            case .rejected:
                throw ImportError(file: file, "not a valid ONNX protobuf (truncated, corrupt or not a model file; \(bytes.count) bytes)")
            }
        }
        let external = ExternalDataResolver(modelFolder: folder)
        var reader = ProtoReader(decoder: TensorDecoder(owner: unpacked, external: external))
        do {
            var model = try reader.model(unpacked.proto.pointee)
            try external.checkOverlaps()
            do {
                try GraphVerifier.checkFunctionCalls(model)
                model.graph = try GraphVerifier.verified(model.graph)
                for i in model.functions.indices {
                    model.functions[i].nodes = try verifiedBody(model.functions[i])
                }
            } catch let error as GraphError {
                throw DecodeError(error.description)
            }
            switch options.initializerInputs {
            case .constant: return model.initializerInputsAsConstants()
            case .overridable: return model
            }
        } catch let error as DecodeError {
            throw ImportError(file: file, error.message)
        } catch {
            throw ImportError(file: file, "\(error)")
        }
    }

    private static func verifiedBody(_ function: Function) throws -> [Node] {
        let body = Graph(name: "function \(function.domain).\(function.name)",
                         inputs: function.inputs.filter { !$0.isEmpty }.map { ValueInfo(name: $0, type: .unknown) },
                         outputs: function.outputs.filter { !$0.isEmpty }.map { ValueInfo(name: $0, type: .unknown) },
                         nodes: function.nodes)
        return try GraphVerifier.verified(body).nodes
    }
}

/// Walks the parsed protobuf structs and builds IR values.
struct ProtoReader {
    let decoder: TensorDecoder
    private var depth = 0

    init(decoder: TensorDecoder) {
        self.decoder = decoder
    }

    mutating func model(_ m: Onnx__ModelProto) throws(DecodeError) -> Model {
        guard let graphProto = m.graph else { throw DecodeError("the model has no graph (empty or not an ONNX model file)") }
        let opsets = try Self.mergedOpsets(cMessages(m.opset_import, m.n_opset_import), owner: "model")
        let graph = try graph(graphProto.pointee)
        var functions: [Function] = []
        for f in cMessages(m.functions, m.n_functions) { functions.append(try function(f.pointee)) }
        return Model(irVersion: m.has_ir_version != 0 ? m.ir_version : 0,
                     producerName: cString(m.producer_name), producerVersion: cString(m.producer_version),
                     domain: cString(m.domain), modelVersion: m.has_model_version != 0 ? m.model_version : 0,
                     docString: cString(m.doc_string), opsetImports: opsets,
                     metadata: Self.metadata(m.metadata_props, m.n_metadata_props), graph: graph, functions: functions)
    }

    /// One entry per domain: repeated imports of the same version merge; different versions are an error.
    static func mergedOpsets(_ protos: [UnsafeMutablePointer<Onnx__OperatorSetIdProto>],
                             owner: String) throws(DecodeError) -> [OpsetImport] {
        var merged: [OpsetImport] = []
        for p in protos {
            let domain = normalizedDomain(cString(p.pointee.domain))
            let version = p.pointee.has_version != 0 ? p.pointee.version : 0
            if let existing = merged.first(where: { $0.domain == domain }) {
                guard existing.version == version else {
                    let shown = domain.isEmpty ? "ai.onnx" : domain
                    throw DecodeError("\(owner) opset imports for domain '\(shown)' conflict: versions \(existing.version) and \(version)")
                }
                continue
            }
            merged.append(OpsetImport(domain: domain, version: version))
        }
        return merged
    }

    static func normalizedDomain(_ domain: String) -> String { domain == "ai.onnx" ? "" : domain }

    static func metadata(_ p: UnsafeMutablePointer<UnsafeMutablePointer<Onnx__StringStringEntryProto>?>?,
                         _ n: Int) -> [MetadataEntry] {
        cEntries(p, n).map { MetadataEntry(key: $0.key, value: $0.value) }
    }

    mutating func graph(_ g: Onnx__GraphProto) throws(DecodeError) -> Graph {
        let name = cString(g.name)
        var initializers: [Tensor] = []
        initializers.reserveCapacity(g.n_initializer)
        for (i, t) in cMessages(g.initializer, g.n_initializer).enumerated() {
            initializers.append(try decoder.decode(t, label: "initializer #\(i) of graph '\(name)'"))
        }
        var sparse: [SparseTensor] = []
        for (i, s) in cMessages(g.sparse_initializer, g.n_sparse_initializer).enumerated() {
            sparse.append(try sparseTensor(s.pointee, label: "sparse initializer #\(i) of graph '\(name)'"))
        }
        var nodes: [Node] = []
        nodes.reserveCapacity(g.n_node)
        for (i, n) in cMessages(g.node, g.n_node).enumerated() {
            nodes.append(try node(n.pointee, index: i))
        }
        let annotations = cMessages(g.quantization_annotation, g.n_quantization_annotation).map {
            QuantizationAnnotation(tensorName: cString($0.pointee.tensor_name),
                                   parameters: Self.metadata($0.pointee.quant_parameter_tensor_names,
                                                             $0.pointee.n_quant_parameter_tensor_names))
        }
        return Graph(name: name,
                     inputs: try valueInfos(g.input, g.n_input),
                     outputs: try valueInfos(g.output, g.n_output),
                     valueInfo: try valueInfos(g.value_info, g.n_value_info),
                     initializers: initializers, sparseInitializers: sparse, nodes: nodes,
                     quantizationAnnotations: annotations, docString: cString(g.doc_string),
                     metadata: Self.metadata(g.metadata_props, g.n_metadata_props))
    }

    private func valueInfos(_ p: UnsafeMutablePointer<UnsafeMutablePointer<Onnx__ValueInfoProto>?>?,
                            _ n: Int) throws(DecodeError) -> [ValueInfo] {
        var result: [ValueInfo] = []
        result.reserveCapacity(n)
        for v in cMessages(p, n) {
            let name = cString(v.pointee.name)
            let type: ValueType
            do {
                type = try v.pointee.type.map { p throws(DecodeError) in try Self.valueType(p.pointee, depth: 0) } ?? .unknown
            } catch {
                throw DecodeError("value '\(name)': \(error.message)")
            }
            result.append(ValueInfo(name: name, type: type, docString: cString(v.pointee.doc_string),
                                    metadata: Self.metadata(v.pointee.metadata_props, v.pointee.n_metadata_props)))
        }
        return result
    }

    static func elementType(_ raw: Int32) throws(DecodeError) -> DataType? {
        if raw == 0 { return nil }
        guard let type = DataType(rawValue: raw) else { throw DecodeError("unknown element type \(raw)") }
        return type
    }

    static func shape(_ s: UnsafeMutablePointer<Onnx__TensorShapeProto>?) -> [Dim]? {
        guard let s else { return nil }
        return cMessages(s.pointee.dim, s.pointee.n_dim).map { d -> Dim in
            switch d.pointee.value_case {
            case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE:
                return d.pointee.dim_value >= 0 ? .value(Int(d.pointee.dim_value)) : .unknown
            case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM:
                let param = cString(d.pointee.dim_param)
                return param.isEmpty ? .unknown : .symbol(param)
            default:
                return .unknown
            }
        }
    }

    static func valueType(_ t: Onnx__TypeProto, depth: Int) throws(DecodeError) -> ValueType {
        guard depth < 32 else { throw DecodeError("type nesting deeper than 32") }
        switch t.value_case {
        case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE:
            guard let tensor = t.tensor_type?.pointee else { return .unknown }
            return .tensor(TensorType(elementType: try elementType(tensor.elem_type), shape: shape(tensor.shape)))
        case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE:
            guard let tensor = t.sparse_tensor_type?.pointee else { return .unknown }
            return .sparseTensor(TensorType(elementType: try elementType(tensor.elem_type), shape: shape(tensor.shape)))
        case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE:
            guard let element = t.sequence_type?.pointee.elem_type else { return .sequence(.unknown) }
            return .sequence(try valueType(element.pointee, depth: depth + 1))
        case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE:
            guard let element = t.optional_type?.pointee.elem_type else { return .optional(.unknown) }
            return .optional(try valueType(element.pointee, depth: depth + 1))
        case ONNX__TYPE_PROTO__VALUE_MAP_TYPE:
            guard let map = t.map_type?.pointee else { return .unknown }
            let value = try map.value_type.map { p throws(DecodeError) in try valueType(p.pointee, depth: depth + 1) } ?? .unknown
            return .map(key: try elementType(map.key_type), value: value)
        case ONNX__TYPE_PROTO__VALUE_OPAQUE_TYPE:
            guard let opaque = t.opaque_type?.pointee else { return .unknown }
            return .opaque(domain: cString(opaque.domain), name: cString(opaque.name))
        default:
            return .unknown
        }
    }

    private mutating func node(_ n: Onnx__NodeProto, index: Int) throws(DecodeError) -> Node {
        var node = Node(name: cString(n.name), opType: cString(n.op_type),
                        domain: Self.normalizedDomain(cString(n.domain)), overload: cString(n.overload),
                        inputs: cStrings(n.input, n.n_input), outputs: cStrings(n.output, n.n_output),
                        docString: cString(n.doc_string), metadata: Self.metadata(n.metadata_props, n.n_metadata_props))
        let label = node.label(index: index)
        guard !node.opType.isEmpty else { throw DecodeError("node \(label) has no op_type") }
        for a in cMessages(n.attribute, n.n_attribute) {
            node.attributes.append(try attribute(a.pointee, node: label, firstOutput: node.outputs.first ?? ""))
        }
        return node
    }

    private mutating func attribute(_ a: Onnx__AttributeProto, node: String,
                                    firstOutput: String) throws(DecodeError) -> Attribute {
        let name = cString(a.name)
        let label = "node \(node) attribute '\(name)'"
        // The tensor of a Constant node is named after the node's output.
        let tensorLabel = firstOutput.isEmpty ? "\(label) tensor" : "tensor '\(firstOutput)' (\(label))"
        let kind = a.has_type != 0 && a.type != 0 ? a.type : Self.inferredAttributeType(a)
        let value: AttributeValue
        switch kind {
        case 1: value = .float(a.f)
        case 2: value = .int(a.i)
        case 3: value = .string(cBytes(a.s))
        case 4:
            guard let t = a.t else { throw DecodeError("\(label) of type TENSOR has no tensor") }
            value = .tensor(try decoder.decode(t, label: tensorLabel))
        case 5:
            guard let g = a.g else { throw DecodeError("\(label) of type GRAPH has no graph") }
            value = .graph(try subgraph(g.pointee, label: label))
        case 6: value = .floats(Array(cArray(a.floats, a.n_floats)))
        case 7: value = .ints(Array(cArray(a.ints, a.n_ints)))
        case 8: value = .strings(cArray(a.strings, a.n_strings).map(cBytes))
        case 9:
            var tensors: [Tensor] = []
            for (i, t) in cMessages(a.tensors, a.n_tensors).enumerated() {
                tensors.append(try decoder.decode(t, label: "\(label) tensor #\(i)"))
            }
            value = .tensors(tensors)
        case 10:
            var graphs: [Graph] = []
            for g in cMessages(a.graphs, a.n_graphs) { graphs.append(try subgraph(g.pointee, label: label)) }
            value = .graphs(graphs)
        case 11:
            guard let s = a.sparse_tensor else { throw DecodeError("\(label) of type SPARSE_TENSOR has no tensor") }
            value = .sparseTensor(try sparseTensor(s.pointee, label: tensorLabel))
        case 12:
            var tensors: [SparseTensor] = []
            for (i, s) in cMessages(a.sparse_tensors, a.n_sparse_tensors).enumerated() {
                tensors.append(try sparseTensor(s.pointee, label: "\(label) sparse tensor #\(i)"))
            }
            value = .sparseTensors(tensors)
        case 13:
            guard let tp = a.tp else { throw DecodeError("\(label) of type TYPE_PROTO has no type") }
            value = .type(try Self.valueType(tp.pointee, depth: 0))
        case 14:
            var types: [ValueType] = []
            for tp in cMessages(a.type_protos, a.n_type_protos) { types.append(try Self.valueType(tp.pointee, depth: 0)) }
            value = .types(types)
        default:
            throw DecodeError("\(label) has unknown attribute type \(kind)")
        }
        let reference = cString(a.ref_attr_name)
        return Attribute(name: name, value: value, referencedAttribute: reference.isEmpty ? nil : reference,
                         docString: cString(a.doc_string))
    }

    /// Files written before IR version 2 may omit the type: take it from the one field that is set.
    private static func inferredAttributeType(_ a: Onnx__AttributeProto) -> Int32 {
        if a.t != nil { return 4 }
        if a.g != nil { return 5 }
        if a.sparse_tensor != nil { return 11 }
        if a.tp != nil { return 13 }
        if a.n_floats > 0 { return 6 }
        if a.n_ints > 0 { return 7 }
        if a.n_strings > 0 { return 8 }
        if a.n_tensors > 0 { return 9 }
        if a.n_graphs > 0 { return 10 }
        if a.n_sparse_tensors > 0 { return 12 }
        if a.n_type_protos > 0 { return 14 }
        if a.has_s != 0 { return 3 }
        if a.has_i != 0 { return 2 }
        if a.has_f != 0 { return 1 }
        return 0
    }

    private mutating func subgraph(_ g: Onnx__GraphProto, label: String) throws(DecodeError) -> Graph {
        guard depth < ONNXImporter.maxSubgraphDepth else {
            throw DecodeError("\(label): subgraphs nested deeper than \(ONNXImporter.maxSubgraphDepth) levels (ONNX readers stop at 100 nested protobuf messages)")
        }
        depth += 1
        defer { depth -= 1 }
        return try graph(g)
    }

    private func sparseTensor(_ s: Onnx__SparseTensorProto, label: String) throws(DecodeError) -> SparseTensor {
        guard let valuesProto = s.values else { throw DecodeError("\(label): sparse tensor has no values") }
        guard let indicesProto = s.indices else { throw DecodeError("\(label): sparse tensor has no indices") }
        let values = try decoder.decode(valuesProto, label: label)
        let indices = try decoder.decode(indicesProto, label: "\(label) indices")
        let shown = values.name.isEmpty ? label : "sparse tensor '\(values.name)'"
        let dims: [Int]
        do {
            dims = try TensorDecoder.checkedDims(cArray(s.dims, s.n_dims))
        } catch {
            throw DecodeError("\(shown): \(error.message)")
        }
        let sparse = SparseTensor(values: values, indices: indices, dims: dims)
        if let fault = sparse.fault { throw DecodeError("\(shown): \(fault)") }
        return sparse
    }

    private mutating func function(_ f: Onnx__FunctionProto) throws(DecodeError) -> Function {
        let name = cString(f.name)
        let domain = Self.normalizedDomain(cString(f.domain))
        let label = "function '\(domain).\(name)'"
        var nodes: [Node] = []
        for (i, n) in cMessages(f.node, f.n_node).enumerated() {
            do {
                nodes.append(try node(n.pointee, index: i))
            } catch {
                throw DecodeError("\(label): \(error.message)")
            }
        }
        var defaults: [Attribute] = []
        for a in cMessages(f.attribute_proto, f.n_attribute_proto) {
            defaults.append(try attribute(a.pointee, node: label, firstOutput: ""))
        }
        return Function(name: name, domain: domain, overload: cString(f.overload),
                        inputs: cStrings(f.input, f.n_input), outputs: cStrings(f.output, f.n_output),
                        attributeNames: cStrings(f.attribute, f.n_attribute), attributeDefaults: defaults, nodes: nodes,
                        opsetImports: try Self.mergedOpsets(cMessages(f.opset_import, f.n_opset_import), owner: label),
                        valueInfo: try valueInfos(f.value_info, f.n_value_info), docString: cString(f.doc_string),
                        metadata: Self.metadata(f.metadata_props, f.n_metadata_props))
    }
}
