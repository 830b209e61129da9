/// One dimension of a tensor type: a known size, a named symbol (ONNX `dim_param`), or unknown.
public enum Dim: Sendable, Hashable, CustomStringConvertible {
    case value(Int)
    case symbol(String)
    case unknown

    public var description: String {
        switch self {
        case .value(let v): return String(v)
        case .symbol(let s): return s
        case .unknown: return "?"
        }
    }
}

/// Element type and (possibly unknown, possibly symbolic) shape of a tensor value.
public struct TensorType: Sendable, Hashable {
    /// nil when the model leaves the element type undefined.
    public var elementType: DataType?
    /// nil when even the rank is unknown.
    public var shape: [Dim]?

    public init(elementType: DataType?, shape: [Dim]?) {
        self.elementType = elementType
        self.shape = shape
    }

    /// `[batch, 3, ?]`; `[...]` when even the rank is unknown.
    public var shapeDescription: String {
        guard let shape else { return "[...]" }
        return "[" + shape.map(\.description).joined(separator: ", ") + "]"
    }
}

/// The type of a graph value, mirroring ONNX `TypeProto`.
public indirect enum ValueType: Sendable, Hashable, CustomStringConvertible {
    case tensor(TensorType)
    case sparseTensor(TensorType)
    case sequence(ValueType)
    case map(key: DataType?, value: ValueType)
    case optional(ValueType)
    case opaque(domain: String, name: String)
    case unknown

    public var description: String {
        switch self {
        case .tensor(let t): return "\(t.elementType?.name ?? "?")\(t.shapeDescription)"
        case .sparseTensor(let t): return "sparse \(t.elementType?.name ?? "?")\(t.shapeDescription)"
        case .sequence(let e): return "seq(\(e))"
        case .map(let k, let v): return "map(\(k?.name ?? "?"), \(v))"
        case .optional(let e): return "optional(\(e))"
        case .opaque(let d, let n): return "opaque(\(d).\(n))"
        case .unknown: return "?"
        }
    }
}

/// A named, typed value at a graph boundary or annotated inside it (ONNX `ValueInfoProto`).
public struct ValueInfo: Sendable, Hashable {
    public var name: String
    public var type: ValueType
    public var docString: String
    public var metadata: [MetadataEntry]

    public init(name: String, type: ValueType, docString: String = "", metadata: [MetadataEntry] = []) {
        self.name = name
        self.type = type
        self.docString = docString
        self.metadata = metadata
    }
}

/// A key/value pair (ONNX `StringStringEntryProto`), kept in file order.
public struct MetadataEntry: Sendable, Hashable, Codable {
    public var key: String
    public var value: String
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}
