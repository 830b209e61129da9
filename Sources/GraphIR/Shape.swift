/// One dimension of a tensor type: a known size, a named symbol (ONNX `dim_param`), or unknown.
public enum Dim: Sendable, Hashable, CustomStringConvertible {
    /// A known size (ONNX `dim_value`).
    case value(Int)
    /// A named size (ONNX `dim_param`); shape inference also renders expressions of names here (`seq*2`).
    case symbol(String)
    /// A size nothing is known about.
    case unknown

    /// The size, the symbol's name, or `?` when unknown.
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

    /// Creates a tensor type; pass nil for an unknown element type or an unknown rank.
    public init(elementType: DataType?, shape: [Dim]?) {
        self.elementType = elementType
        self.shape = shape
    }

    /// `[batch, 3, ?]`; `[...]` when even the rank is unknown.
    public var shapeDescription: String {
        guard let shape else { return "[...]" }
        return "[" + shape.map(\.description).joined(separator: ", ") + "]"
    }

    /// True when the known dims alone hold more elements than fit in `Int` (and none is 0): no tensor can have
    /// this shape, and every count or byte size computed from it would overflow. Whatever the symbolic dims are
    /// (≥ 1 at run time), the product only grows.
    public var holdsTooManyElements: Bool {
        guard let shape else { return false }
        var count = 1, overflow = false
        for case .value(let v) in shape {
            if v == 0 { return false }
            if !overflow { (count, overflow) = count.multipliedReportingOverflow(by: v) }
        }
        return overflow
    }
}

/// The type of a graph value, mirroring ONNX `TypeProto`.
public indirect enum ValueType: Sendable, Hashable, CustomStringConvertible {
    /// A dense tensor (`TypeProto.tensor_type`).
    case tensor(TensorType)
    /// A sparse tensor (`TypeProto.sparse_tensor_type`).
    case sparseTensor(TensorType)
    /// A sequence of values of one type (`TypeProto.sequence_type`).
    case sequence(ValueType)
    /// A map from a key element type to a value type (`TypeProto.map_type`).
    case map(key: DataType?, value: ValueType)
    /// A value that may be absent (`TypeProto.optional_type`).
    case optional(ValueType)
    /// A type named by a domain and name (`TypeProto.opaque_type`).
    case opaque(domain: String, name: String)
    /// A type that is not given, or not understood.
    case unknown

    /// A compact form for messages: `float[batch, 3]`, `seq(…)`, `map(…)`, `?` for unknown.
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
    /// The value's name (`ValueInfoProto.name`).
    public var name: String
    /// The value's declared type (`ValueInfoProto.type`); `.unknown` when the model leaves it out.
    public var type: ValueType
    /// Free-form documentation (`ValueInfoProto.doc_string`); empty when absent.
    public var docString: String
    /// Key/value annotations (`ValueInfoProto.metadata_props`), in file order.
    public var metadata: [MetadataEntry]

    /// Creates a value info; documentation and metadata default to empty.
    public init(name: String, type: ValueType, docString: String = "", metadata: [MetadataEntry] = []) {
        self.name = name
        self.type = type
        self.docString = docString
        self.metadata = metadata
    }
}

/// A key/value pair (ONNX `StringStringEntryProto`), kept in file order.
public struct MetadataEntry: Sendable, Hashable, Codable {
    /// The entry's key (`StringStringEntryProto.key`).
    public var key: String
    /// The entry's value (`StringStringEntryProto.value`).
    public var value: String
    /// Creates an entry.
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}
