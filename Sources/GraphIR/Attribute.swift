/// A typed node attribute (ONNX `AttributeProto`). Byte strings stay bytes: ONNX allows any encoding there.
public enum AttributeValue: Sendable {
    case float(Float)
    case int(Int64)
    case string([UInt8])
    case tensor(Tensor)
    case graph(Graph)
    case sparseTensor(SparseTensor)
    case type(ValueType)
    case floats([Float])
    case ints([Int64])
    case strings([[UInt8]])
    case tensors([Tensor])
    case graphs([Graph])
    case sparseTensors([SparseTensor])
    case types([ValueType])

    /// ONNX's attribute type name (`FLOAT`, `INTS`, `GRAPH`…).
    public var typeName: String {
        switch self {
        case .float: return "FLOAT"
        case .int: return "INT"
        case .string: return "STRING"
        case .tensor: return "TENSOR"
        case .graph: return "GRAPH"
        case .sparseTensor: return "SPARSE_TENSOR"
        case .type: return "TYPE_PROTO"
        case .floats: return "FLOATS"
        case .ints: return "INTS"
        case .strings: return "STRINGS"
        case .tensors: return "TENSORS"
        case .graphs: return "GRAPHS"
        case .sparseTensors: return "SPARSE_TENSORS"
        case .types: return "TYPE_PROTOS"
        }
    }

    /// The subgraphs this attribute holds (If branches, Loop and Scan bodies…).
    public var subgraphs: [Graph] {
        switch self {
        case .graph(let g): return [g]
        case .graphs(let gs): return gs
        default: return []
        }
    }
}

public struct Attribute: Sendable {
    public var name: String
    public var value: AttributeValue
    /// Set inside function bodies when the attribute takes the value of the calling node's attribute of this name.
    public var referencedAttribute: String?
    public var docString: String

    public init(name: String, value: AttributeValue, referencedAttribute: String? = nil, docString: String = "") {
        self.name = name
        self.value = value
        self.referencedAttribute = referencedAttribute
        self.docString = docString
    }
}
