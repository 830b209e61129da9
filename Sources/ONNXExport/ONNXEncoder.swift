import GraphIR

/// Serialises an IR model as an ONNX `ModelProto`, field numbers as in ONNX's onnx.proto. Every tensor must have
/// the `.raw` encoding (see `ExportPreparation`). Tensors can be placed in an external data file instead of the
/// protobuf (`ExternalDataPlan`).
struct ONNXEncoder {
    /// Assigns tensors to an external data file, in the order the encoder meets them.
    final class ExternalDataPlan {
        let location: String
        let minimumBytes: Int
        private(set) var blobs: [(offset: Int, view: ByteView)] = []
        private(set) var size = 0
        static let alignment = 64

        init(location: String, minimumBytes: Int) {
            self.location = location
            self.minimumBytes = minimumBytes
        }

        /// The offset given to `view`, or nil if it stays in the protobuf.
        func place(_ view: ByteView) -> Int? {
            guard view.count >= minimumBytes else { return nil }
            let offset = (size + Self.alignment - 1) / Self.alignment * Self.alignment
            blobs.append((offset, view))
            size = offset + view.count
            return offset
        }
    }

    let external: ExternalDataPlan?

    func model(_ m: Model) -> ProtoBuilder {
        let p = ProtoBuilder()
        p.int64(1, m.irVersion)
        p.string(2, m.producerName)
        p.string(3, m.producerVersion)
        p.string(4, m.domain)
        if m.modelVersion != 0 { p.int64(5, m.modelVersion) }
        p.string(6, m.docString)
        p.message(7) { graph(m.graph, into: $0) }
        for o in m.opsetImports { p.message(8) { opset(o, into: $0) } }
        for e in m.metadata { p.message(14) { entry(e, into: $0) } }
        for f in m.functions { p.message(25) { function(f, into: $0) } }
        return p
    }

    func graph(_ g: Graph, into p: ProtoBuilder) {
        for n in g.nodes { p.message(1) { node(n, into: $0) } }
        p.string(2, g.name)
        for t in g.initializers { p.message(5) { tensor(t, into: $0) } }
        p.string(10, g.docString)
        for v in g.inputs { p.message(11) { valueInfo(v, into: $0) } }
        for v in g.outputs { p.message(12) { valueInfo(v, into: $0) } }
        for v in g.valueInfo { p.message(13) { valueInfo(v, into: $0) } }
        for a in g.quantizationAnnotations {
            p.message(14) { q in
                q.string(1, a.tensorName)
                for e in a.parameters { q.message(2) { entry(e, into: $0) } }
            }
        }
        for s in g.sparseInitializers { p.message(15) { sparse(s, into: $0) } }
        for e in g.metadata { p.message(16) { entry(e, into: $0) } }
    }

    func node(_ n: Node, into p: ProtoBuilder) {
        p.repeatedStrings(1, n.inputs)
        p.repeatedStrings(2, n.outputs)
        p.string(3, n.name)
        p.string(4, n.opType)
        for a in n.attributes { p.message(5) { attribute(a, into: $0) } }
        p.string(6, n.docString)
        p.string(7, n.domain)
        p.string(8, n.overload)
        for e in n.metadata { p.message(9) { entry(e, into: $0) } }
    }

    /// AttributeProto.AttributeType numbers.
    static func attributeType(_ value: AttributeValue) -> Int32 {
        switch value {
        case .float: return 1
        case .int: return 2
        case .string: return 3
        case .tensor: return 4
        case .graph: return 5
        case .floats: return 6
        case .ints: return 7
        case .strings: return 8
        case .tensors: return 9
        case .graphs: return 10
        case .sparseTensor: return 11
        case .sparseTensors: return 12
        case .type: return 13
        case .types: return 14
        }
    }

    func attribute(_ a: Attribute, into p: ProtoBuilder) {
        p.string(1, a.name)
        switch a.value {
        case .float(let v): p.float(2, v)
        case .int(let v): p.int64(3, v)
        case .string(let v): p.bytes(4, v)
        case .tensor(let t): p.message(5) { tensor(t, into: $0) }
        case .graph(let g): p.message(6) { graph(g, into: $0) }
        case .floats(let v): p.repeatedFloat(7, v)
        case .ints(let v): p.repeatedInt64(8, v)
        case .strings(let v): for s in v { p.bytes(9, s) }
        case .tensors(let ts): for t in ts { p.message(10) { tensor(t, into: $0) } }
        case .graphs(let gs): for g in gs { p.message(11) { graph(g, into: $0) } }
        case .type(let t): p.message(14) { type(t, into: $0) }
        case .types(let ts): for t in ts { p.message(15) { type(t, into: $0) } }
        case .sparseTensor(let s): p.message(22) { sparse(s, into: $0) }
        case .sparseTensors(let ss): for s in ss { p.message(23) { sparse(s, into: $0) } }
        }
        p.string(13, a.docString)
        p.int32(20, Self.attributeType(a.value))
        if let ref = a.referencedAttribute { p.string(21, ref) }
    }

    func tensor(_ t: Tensor, into p: ProtoBuilder) {
        precondition(t.encoding.isRaw, "export needs raw tensors; run ExportPreparation first")
        p.repeatedInt64Packed(1, t.dims.map(Int64.init))
        p.int32(2, t.dataType.rawValue)
        p.string(8, t.name)
        p.string(12, t.docString)
        for e in t.metadata { p.message(16) { entry(e, into: $0) } }
        switch t.data {
        case .strings(let strings):
            for s in strings { p.bytes(6, s) }
        case .bytes(let view):
            if let external, let offset = external.place(view) {
                for (key, value) in [("location", external.location), ("offset", String(offset)), ("length", String(view.count))] {
                    p.message(13) { e in
                        e.string(1, key)
                        e.string(2, value)
                    }
                }
                p.int32(14, 1)  // DataLocation.EXTERNAL
            } else {
                p.view(9, view)
            }
        }
    }

    func sparse(_ s: SparseTensor, into p: ProtoBuilder) {
        p.message(1) { tensor(s.values, into: $0) }
        p.message(2) { tensor(s.indices, into: $0) }
        p.repeatedInt64Packed(3, s.dims.map(Int64.init))
    }

    func valueInfo(_ v: ValueInfo, into p: ProtoBuilder) {
        p.string(1, v.name)
        if v.type != .unknown { p.message(2) { type(v.type, into: $0) } }
        p.string(3, v.docString)
        for e in v.metadata { p.message(4) { entry(e, into: $0) } }
    }

    func type(_ t: ValueType, into p: ProtoBuilder) {
        func tensorType(_ tt: TensorType, into q: ProtoBuilder) {
            if let e = tt.elementType { q.int32(1, e.rawValue) }
            if let shape = tt.shape {
                q.message(2) { s in
                    for d in shape {
                        s.message(1) { dim in
                            switch d {
                            case .value(let v): dim.int64(1, Int64(v))
                            case .symbol(let name): dim.string(2, name)
                            case .unknown: break
                            }
                        }
                    }
                }
            }
        }
        switch t {
        case .tensor(let tt): p.message(1) { tensorType(tt, into: $0) }
        case .sequence(let e): p.message(4) { q in q.message(1) { type(e, into: $0) } }
        case .map(let key, let value):
            p.message(5) { q in
                if let key { q.int32(1, key.rawValue) }
                q.message(2) { type(value, into: $0) }
            }
        case .opaque(let domain, let name):
            p.message(7) { q in
                q.string(1, domain)
                q.string(2, name)
            }
        case .sparseTensor(let tt): p.message(8) { tensorType(tt, into: $0) }
        case .optional(let e): p.message(9) { q in q.message(1) { type(e, into: $0) } }
        case .unknown: break
        }
    }

    func opset(_ o: OpsetImport, into p: ProtoBuilder) {
        p.string(1, o.domain)
        p.int64(2, o.version)
    }

    func entry(_ e: MetadataEntry, into p: ProtoBuilder) {
        p.string(1, e.key)
        p.string(2, e.value)
    }

    func function(_ f: Function, into p: ProtoBuilder) {
        p.string(1, f.name)
        p.repeatedStrings(4, f.inputs)
        p.repeatedStrings(5, f.outputs)
        p.repeatedStrings(6, f.attributeNames)
        for n in f.nodes { p.message(7) { node(n, into: $0) } }
        p.string(8, f.docString)
        for o in f.opsetImports { p.message(9) { opset(o, into: $0) } }
        p.string(10, f.domain)
        for a in f.attributeDefaults { p.message(11) { attribute(a, into: $0) } }
        for v in f.valueInfo { p.message(12) { valueInfo(v, into: $0) } }
        p.string(13, f.overload)
        for e in f.metadata { p.message(14) { entry(e, into: $0) } }
    }
}

extension ProtoBuilder {
    /// Packed repeated int64 (TensorProto.dims and friends).
    func repeatedInt64Packed(_ field: Int, _ values: [Int64]) {
        guard !values.isEmpty else { return }
        let inner = ProtoBuilder()
        for v in values { inner.rawVarint(UInt64(bitPattern: v)) }
        bytes(field, inner.data)
    }
}
