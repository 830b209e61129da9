import Foundation
import GraphIR
import Quantization

/// Rebuilds a model from a manifest and the mapped weights.bin: tensors become views of their blobs (no copy).
/// Every structural fault — a blob out of bounds or misaligned, a length that does not match the shape and encoding,
/// an unknown encoding, a tensor index out of range — is reported with the tensor's name.
struct ManifestDecoder {
    let manifest: Manifest
    let weights: ByteView
    let path: String

    /// The faults of one tensor record, without reading its bytes (checksums are checked elsewhere). `table` lets
    /// linear encodings check their scale and zero-point entries.
    static func faults(of record: TensorRecord, index: Int, weightsSize: Int, path: String,
                       table: [TensorRecord]) -> [PackageError] {
        var faults: [PackageError] = []
        func fault(_ message: String) {
            faults.append(PackageError(path: path, "tensor #\(index) '\(record.name)': \(message)", tensor: record.name))
        }
        guard let elements = Tensor.elementCount(of: record.shape) else {
            fault("shape \(record.shape) has a negative dim or overflows")
            return faults
        }
        if record.offset < 0 || record.length < 0 { fault("negative offset or length") }
        if record.offset % Manifest.alignment != 0 { fault("offset \(record.offset) is not \(Manifest.alignment)-byte aligned") }
        let (end, overflow) = record.offset.addingReportingOverflow(record.length)
        if overflow || end > weightsSize {
            fault("bytes \(record.offset)..<\(record.offset &+ record.length) lie past the end of weights.bin (\(weightsSize) bytes)")
        }
        switch record.encoding.kind {
        case "raw":
            if record.dtype != .string {
                // A size that does not fit in 64 bits can never match the stored length (issue 16: it was skipped).
                guard let need = record.dtype.storageBytes(elements: elements) else {
                    fault("shape \(record.shape) of \(record.dtype.name) needs more bytes than fit in 64 bits")
                    return faults
                }
                if need != record.length {
                    fault("length \(record.length) bytes, but shape \(record.shape) of \(record.dtype.name) needs \(need)")
                }
            }
        case "float16":
            if record.dtype != .float { fault("float16 encoding of a \(record.dtype.name) tensor (only float is allowed)") }
            guard let need = DataType.float16.storageBytes(elements: elements) else {
                fault("shape \(record.shape) stored as float16 needs more bytes than fit in 64 bits")
                return faults
            }
            if need != record.length {
                fault("length \(record.length) bytes, but shape \(record.shape) stored as float16 needs \(need)")
            }
        case "linear":
            linearFaults(record, elements: elements, table: table, index: index).forEach(fault)
        case "lut":
            paletteFaults(record, elements: elements, table: table, index: index).forEach(fault)
        default:
            fault("unknown encoding '\(record.encoding.kind)'")
        }
        return faults
    }

    private static func linearFaults(_ record: TensorRecord, elements: Int, table: [TensorRecord], index: Int) -> [String] {
        let e = record.encoding
        guard record.dtype == .float else { return ["linear encoding of a \(record.dtype.name) tensor (only float)"] }
        guard let storage = e.storage, [.int8, .uint8, .int4, .uint4].contains(storage) else {
            return ["linear encoding needs storage int8, uint8, int4 or uint4"]
        }
        var faults: [String] = []
        let width = storage == .int4 || storage == .uint4 ? 4 : 8
        if let bits = e.bits, !(2...width).contains(bits) || bits == width || (width == 8 && bits <= 4) {
            return ["bits \(bits) is not a packed width of \(storage.name) (2 or 3 for 4-bit storage, 5 to 7 for 8-bit)"]
        }
        let (bitCount, overflow) = elements.multipliedReportingOverflow(by: e.bits ?? width)
        guard !overflow else {
            return ["shape \(record.shape) stored as \(storage.name) needs more bytes than fit in 64 bits"]
        }
        let need = bitCount / 8 + (bitCount % 8 == 0 ? 0 : 1)
        if need != record.length {
            faults.append("length \(record.length) bytes, but shape \(record.shape) stored as \(e.bits.map { "\($0)-bit " } ?? "")\(storage.name) needs \(need)")
        }
        if let axis = e.axis, !(0..<record.shape.count).contains(axis) {
            return faults + ["axis \(axis) is outside shape \(record.shape)"]
        }
        if let b = e.blockSize, b <= 0 || e.axis == nil {
            return faults + ["block size \(b) needs a positive size and an axis"]
        }
        let granularity: Granularity = e.blockSize != nil ? .perBlock : e.axis != nil ? .perChannel : .perTensor
        let layout = GroupLayout(dims: record.shape, granularity: granularity, axis: e.axis, blockSize: e.blockSize)
        guard let s = e.scale, table.indices.contains(s), s != index else { return faults + ["scale index is missing or out of range"] }
        if ![.float, .float16].contains(table[s].dtype) || table[s].shape != layout.scaleShape || table[s].encoding.kind != "raw" {
            faults.append("scale tensor #\(s) must be raw float or float16 of shape \(layout.scaleShape)")
        }
        if let z = e.zeroPoint {
            if !table.indices.contains(z) || table[z].dtype != storage || table[z].shape != layout.scaleShape {
                faults.append("zero point tensor #\(z) must be \(storage.name) of shape \(layout.scaleShape)")
            }
        }
        return faults
    }

    private static func paletteFaults(_ record: TensorRecord, elements: Int, table: [TensorRecord], index: Int) -> [String] {
        let e = record.encoding
        guard record.dtype == .float else { return ["lut encoding of a \(record.dtype.name) tensor (only float)"] }
        guard let bits = e.bits, (1...8).contains(bits) else { return ["lut encoding needs bits from 1 to 8"] }
        var faults: [String] = []
        let p = PaletteQuantization(bits: bits, groupSize: nil, lut: Tensor(name: "", dataType: .float16, dims: [], data: .bytes(.empty)))
        guard let need = p.indexBytes(elements: elements) else {
            return ["shape \(record.shape) of \(bits)-bit indices needs more bytes than fit in 64 bits"]
        }
        if need != record.length {
            faults.append("length \(record.length) bytes, but shape \(record.shape) of \(bits)-bit indices needs \(need)")
        }
        let entries = 1 << bits
        var lutShape = [entries]
        if let g = e.groupSize {
            guard g > 0, let rows = record.shape.first, rows > 0 else {
                return faults + ["group size \(g) needs a positive size and a first axis of at least one slice"]
            }
            // Whole groups only: ONNX export reshapes the tensor to [tables, G, …] and Core ML's lut op needs them.
            guard rows % g == 0 else { return faults + ["group size \(g) does not divide shape[0] (\(rows))"] }
            lutShape = [rows / g, entries]
        }
        guard let l = e.lut, table.indices.contains(l), l != index else { return faults + ["lut index is missing or out of range"] }
        if ![.float, .float16].contains(table[l].dtype) || table[l].shape != lutShape || table[l].encoding.kind != "raw" {
            faults.append("lut tensor #\(l) must be raw float or float16 of shape \(lutShape)")
        }
        return faults
    }

    /// The tensor at `index`, after checking its record.
    func tensor(_ index: Int) throws(PackageError) -> Tensor {
        guard manifest.tensors.indices.contains(index) else {
            throw PackageError(path: path, "tensor index \(index) is out of range (the table has \(manifest.tensors.count))")
        }
        let record = manifest.tensors[index]
        if let fault = Self.faults(of: record, index: index, weightsSize: weights.count, path: path,
                                   table: manifest.tensors).first { throw fault }
        let blob = weights.slice(record.offset..<(record.offset + record.length))
        let encoding: WeightEncoding
        switch record.encoding.kind {
        case "float16": encoding = .float16
        case "linear":
            let e = record.encoding
            encoding = .linear(LinearQuantization(storage: e.storage!, axis: e.axis, blockSize: e.blockSize,
                                                  scale: try tensor(e.scale!), zeroPoint: try e.zeroPoint.map { i throws(PackageError) in try tensor(i) },
                                                  bits: e.bits))
        case "lut":
            let e = record.encoding
            encoding = .palette(PaletteQuantization(bits: e.bits!, groupSize: e.groupSize, lut: try tensor(e.lut!)))
        default: encoding = .raw
        }
        let data: TensorData
        if record.dtype == .string {
            guard let strings = StringBlob.decode(blob, count: Tensor.elementCount(of: record.shape)!) else {
                throw PackageError(path: path, "tensor #\(index) '\(record.name)': string blob is malformed", tensor: record.name)
            }
            data = .strings(strings)
        } else {
            data = .bytes(blob)
        }
        return Tensor(name: record.name, dataType: record.dtype, dims: record.shape, data: data, encoding: encoding,
                      docString: record.docString ?? "", metadata: record.metadata ?? [])
    }

    func model() throws(PackageError) -> Model {
        let m = manifest.model
        var functions: [Function] = []
        for f in manifest.functions { functions.append(try function(f)) }
        return Model(irVersion: m.irVersion, producerName: m.producerName, producerVersion: m.producerVersion,
                     domain: m.domain, modelVersion: m.modelVersion, docString: m.docString,
                     opsetImports: manifest.opsetImports, metadata: manifest.metadata,
                     graph: try graph(manifest.graph), functions: functions)
    }

    func graph(_ g: GraphRecord) throws(PackageError) -> Graph {
        var initializers: [Tensor] = []
        for i in g.initializers { initializers.append(try tensor(i)) }
        var sparse: [SparseTensor] = []
        for s in g.sparseInitializers { sparse.append(try sparseTensor(s)) }
        var nodes: [Node] = []
        for n in g.nodes { nodes.append(try node(n)) }
        return Graph(name: g.name, inputs: g.inputs.map(value), outputs: g.outputs.map(value),
                     valueInfo: g.valueInfo.map(value), initializers: initializers, sparseInitializers: sparse,
                     nodes: nodes,
                     quantizationAnnotations: (g.quantizationAnnotations ?? []).map {
                         QuantizationAnnotation(tensorName: $0.tensorName, parameters: $0.parameters)
                     },
                     docString: g.docString ?? "", metadata: g.metadata ?? [])
    }

    func value(_ v: ValueRecord) -> ValueInfo {
        ValueInfo(name: v.name, type: v.type, docString: v.docString ?? "", metadata: v.metadata ?? [])
    }

    /// The sparse tensor of a record, checked (`SparseTensor.fault`): its index values are read here, so no reader
    /// (export, the audit, Core ML densifying) can be sent past the indices' blob.
    func sparseTensor(_ s: SparseRecord) throws(PackageError) -> SparseTensor {
        let sparse = SparseTensor(values: try tensor(s.values), indices: try tensor(s.indices), dims: s.dims)
        if let fault = sparse.fault {
            throw PackageError(path: path, "sparse tensor '\(sparse.name)' (values tensor #\(s.values), indices tensor #\(s.indices)): \(fault)",
                               tensor: sparse.name)
        }
        return sparse
    }

    func node(_ n: NodeRecord) throws(PackageError) -> Node {
        var attributes: [Attribute] = []
        for a in n.attributes { attributes.append(try attribute(a, node: n.name.isEmpty ? n.opType : n.name)) }
        return Node(name: n.name, opType: n.opType, domain: n.domain, overload: n.overload ?? "", inputs: n.inputs,
                    outputs: n.outputs, attributes: attributes, docString: n.docString ?? "", metadata: n.metadata ?? [])
    }

    func attribute(_ a: AttributeRecord, node: String) throws(PackageError) -> Attribute {
        func missing() -> PackageError {
            PackageError(path: path, "node '\(node)' attribute '\(a.name)' of type \(a.type) has no value")
        }
        func bytes(_ text: String?, _ base64: String?) -> [UInt8]? {
            if let text { return Array(text.utf8) }
            if let base64, let data = Data(base64Encoded: base64) { return Array(data) }
            return nil
        }
        let value: AttributeValue
        switch a.type {
        case "FLOAT": guard let f = a.f else { throw missing() }; value = .float(f)
        case "INT": guard let i = a.i else { throw missing() }; value = .int(i)
        case "STRING": guard let s = bytes(a.s, a.sBase64) else { throw missing() }; value = .string(s)
        case "TENSOR": guard let t = a.t else { throw missing() }; value = .tensor(try tensor(t))
        case "GRAPH": guard let g = a.g else { throw missing() }; value = .graph(try graph(g))
        case "SPARSE_TENSOR": guard let s = a.sparseTensor else { throw missing() }; value = .sparseTensor(try sparseTensor(s))
        case "TYPE_PROTO": guard let tp = a.tp else { throw missing() }; value = .type(tp)
        case "FLOATS": value = .floats(a.floats ?? [])
        case "INTS": value = .ints(a.ints ?? [])
        case "STRINGS":
            if let base64 = a.stringsBase64 {
                var list: [[UInt8]] = []
                for item in base64 {
                    guard let data = Data(base64Encoded: item) else { throw missing() }
                    list.append(Array(data))
                }
                value = .strings(list)
            } else {
                value = .strings((a.strings ?? []).map { Array($0.utf8) })
            }
        case "TENSORS":
            var list: [Tensor] = []
            for t in a.tensors ?? [] { list.append(try tensor(t)) }
            value = .tensors(list)
        case "GRAPHS":
            var list: [Graph] = []
            for g in a.graphs ?? [] { list.append(try graph(g)) }
            value = .graphs(list)
        case "SPARSE_TENSORS":
            var list: [SparseTensor] = []
            for s in a.sparseTensors ?? [] { list.append(try sparseTensor(s)) }
            value = .sparseTensors(list)
        case "TYPE_PROTOS": value = .types(a.typeProtos ?? [])
        default:
            throw PackageError(path: path, "node '\(node)' attribute '\(a.name)' has unknown type '\(a.type)'")
        }
        return Attribute(name: a.name, value: value, referencedAttribute: a.refAttrName, docString: a.docString ?? "")
    }

    func function(_ f: FunctionRecord) throws(PackageError) -> Function {
        var nodes: [Node] = []
        for n in f.nodes { nodes.append(try node(n)) }
        var defaults: [Attribute] = []
        for a in f.attributeDefaults { defaults.append(try attribute(a, node: "function \(f.domain).\(f.name)")) }
        return Function(name: f.name, domain: f.domain, overload: f.overload ?? "", inputs: f.inputs, outputs: f.outputs,
                        attributeNames: f.attributeNames, attributeDefaults: defaults, nodes: nodes,
                        opsetImports: f.opsetImports, valueInfo: f.valueInfo.map(value), docString: f.docString ?? "",
                        metadata: f.metadata ?? [])
    }
}

/// String tensors in weights.bin: for each element, its UTF-8 byte length as a little-endian uint64, then the bytes.
enum StringBlob {
    static func encode(_ strings: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(strings.reduce(0) { $0 + 8 + $1.count })
        for s in strings {
            var length = UInt64(s.count).littleEndian
            withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
            out.append(contentsOf: s)
        }
        return out
    }

    /// nil unless the blob holds exactly `count` strings.
    static func decode(_ blob: ByteView, count: Int) -> [[UInt8]]? {
        var strings: [[UInt8]] = []
        var offset = 0
        let bytes = blob.bytes
        while offset < bytes.count {
            guard bytes.count - offset >= 8, strings.count < count else { return nil }
            var length: UInt64 = 0
            for k in 0..<8 { length |= UInt64(bytes[offset + k]) << (8 * UInt64(k)) }
            offset += 8
            guard length <= UInt64(bytes.count - offset) else { return nil }
            strings.append(Array(bytes[offset..<(offset + Int(length))]))
            offset += Int(length)
        }
        return strings.count == count ? strings : nil
    }
}
