/// One operator application. Input names are "" where an optional input is left out.
public struct Node: Sendable {
    /// The node's name (`NodeProto.name`); may be empty.
    public var name: String
    /// The operator or model-local function the node applies (`NodeProto.op_type`).
    public var opType: String
    /// "" is the default ONNX domain (importers normalise "ai.onnx" to "").
    public var domain: String
    /// Which overload of a model-local function the node calls (`NodeProto.overload`); "" when unused.
    public var overload: String
    /// Names of the values read, in the operator's input order.
    public var inputs: [String]
    /// Names of the values defined, in the operator's output order.
    public var outputs: [String]
    /// The node's attributes, in file order.
    public var attributes: [Attribute]
    /// Free-form documentation (`NodeProto.doc_string`); empty when absent.
    public var docString: String
    /// Key/value annotations (`NodeProto.metadata_props`), in file order.
    public var metadata: [MetadataEntry]
    /// Where the node stems from: the position of a main-graph node in the model a conversion started from. Set by
    /// the Core ML exporter's preparation and kept through it: a pass that rewrites a node in place keeps it, a node
    /// that replaces another takes the other's, and the nodes an inlined call or a decided `If` expands into take the
    /// call's or the If's. Nil for nodes nothing numbered (never written to a file). Reports map verdicts on the
    /// prepared graph back to the user's nodes by it, never by names, which passes rename.
    public var origin: Int?

    /// Creates a node; the optional parts default to empty (the default ONNX domain).
    public init(name: String = "", opType: String, domain: String = "", overload: String = "", inputs: [String],
                outputs: [String], attributes: [Attribute] = [], docString: String = "", metadata: [MetadataEntry] = []) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.overload = overload
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
        self.docString = docString
        self.metadata = metadata
        self.origin = nil
    }

    /// The first attribute called `name`, or nil when the node has none.
    public func attribute(_ name: String) -> Attribute? { attributes.first { $0.name == name } }

    /// How errors and reports name the node: its name, or its op type and position when it has none.
    public func label(index: Int) -> String {
        name.isEmpty ? "#\(index) (\(opType))" : "'\(name)' (\(opType))"
    }

    /// True for an ONNX `Constant` node (default domain).
    public var isConstant: Bool { opType == "Constant" && domain.isEmpty }

    /// The dense tensor a `Constant` node produces, from whichever of its value attributes is set
    /// (`value`, `value_float(s)`, `value_int(s)`, `value_string(s)`); nil for `sparse_value` and non-Constant nodes.
    public var constantTensor: Tensor? {
        guard isConstant, let attr = attributes.first else { return nil }
        let name = outputs.first ?? ""
        switch (attr.name, attr.value) {
        case ("value", .tensor(var t)):
            t.name = name
            return t
        case ("value_float", .float(let f)):
            return Tensor(name: name, dataType: .float, dims: [], data: .bytes(LittleEndian.bytes(of: [f])))
        case ("value_floats", .floats(let fs)):
            return Tensor(name: name, dataType: .float, dims: [fs.count], data: .bytes(LittleEndian.bytes(of: fs)))
        case ("value_int", .int(let i)):
            return Tensor(name: name, dataType: .int64, dims: [], data: .bytes(LittleEndian.bytes(of: [i])))
        case ("value_ints", .ints(let values)):
            return Tensor(name: name, dataType: .int64, dims: [values.count], data: .bytes(LittleEndian.bytes(of: values)))
        case ("value_string", .string(let s)):
            return Tensor(name: name, dataType: .string, dims: [], data: .strings([s]))
        case ("value_strings", .strings(let ss)):
            return Tensor(name: name, dataType: .string, dims: [ss.count], data: .strings(ss))
        default:
            return nil
        }
    }

    /// The sparse tensor of a `Constant` node's `sparse_value`.
    public var constantSparseTensor: SparseTensor? {
        guard isConstant, let attr = attribute("sparse_value"), case .sparseTensor(var s) = attr.value else { return nil }
        s.values.name = outputs.first ?? s.values.name
        return s
    }
}

/// Little-endian packing of fixed-width numbers into bytes mlpkg owns.
public enum LittleEndian {
    /// The values in little-endian byte order, in a new buffer.
    @inlinable
    public static func bytes<T: FixedWidthInteger>(of values: [T]) -> ByteView {
        let buffer = OwnedBuffer(uninitializedCount: values.count * MemoryLayout<T>.size)
        #if _endian(little)
        values.withUnsafeBytes { buffer.mutableBytes.copyMemory(from: $0) }
        #else
        for (i, v) in values.enumerated() {
            buffer.mutableBytes.storeBytes(of: v.littleEndian, toByteOffset: i * MemoryLayout<T>.size, as: T.self)
        }
        #endif
        return buffer.view
    }

    /// The values' IEEE 754 bit patterns in little-endian byte order, in a new buffer.
    @inlinable
    public static func bytes(of values: [Float]) -> ByteView { floatBytes(values) { $0.bitPattern } }
    /// The values' IEEE 754 bit patterns in little-endian byte order, in a new buffer.
    @inlinable
    public static func bytes(of values: [Double]) -> ByteView { floatBytes(values) { $0.bitPattern } }

    /// Floats are stored as their bit patterns: one copy on a little-endian host (no per-element work, which a debug
    /// build made cost seconds on large weights), the patterns packed one by one elsewhere.
    @usableFromInline
    static func floatBytes<F: BinaryFloatingPoint, P: FixedWidthInteger>(_ values: [F], _ pattern: (F) -> P) -> ByteView {
        #if _endian(little)
        let buffer = OwnedBuffer(uninitializedCount: values.count * MemoryLayout<F>.size)
        values.withUnsafeBytes { buffer.mutableBytes.copyMemory(from: $0) }
        return buffer.view
        #else
        return bytes(of: values.map(pattern))
        #endif
    }
}
