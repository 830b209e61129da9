/// A typed node attribute (ONNX `AttributeProto`). Byte strings stay bytes: ONNX allows any encoding there.
public enum AttributeValue: Sendable {
    /// One float (`FLOAT`).
    case float(Float)
    /// One integer (`INT`).
    case int(Int64)
    /// One byte string (`STRING`).
    case string([UInt8])
    /// One dense tensor (`TENSOR`).
    case tensor(Tensor)
    /// One subgraph (`GRAPH`), such as an If branch or a Loop body.
    case graph(Graph)
    /// One sparse tensor (`SPARSE_TENSOR`).
    case sparseTensor(SparseTensor)
    /// One type (`TYPE_PROTO`).
    case type(ValueType)
    /// A list of floats (`FLOATS`).
    case floats([Float])
    /// A list of integers (`INTS`).
    case ints([Int64])
    /// A list of byte strings (`STRINGS`).
    case strings([[UInt8]])
    /// A list of dense tensors (`TENSORS`).
    case tensors([Tensor])
    /// A list of subgraphs (`GRAPHS`).
    case graphs([Graph])
    /// A list of sparse tensors (`SPARSE_TENSORS`).
    case sparseTensors([SparseTensor])
    /// A list of types (`TYPE_PROTOS`).
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

/// A named attribute of a node or function (ONNX `AttributeProto`).
public struct Attribute: Sendable {
    /// The attribute's name (`AttributeProto.name`).
    public var name: String
    /// The attribute's typed value; its case is the ONNX attribute type.
    public var value: AttributeValue
    /// Set inside function bodies when the attribute takes the value of the calling node's attribute of this name.
    public var referencedAttribute: String?
    /// Free-form documentation (`AttributeProto.doc_string`); empty when absent.
    public var docString: String

    /// Creates an attribute; `referencedAttribute` is set only inside function bodies.
    public init(name: String, value: AttributeValue, referencedAttribute: String? = nil, docString: String = "") {
        self.name = name
        self.value = value
        self.referencedAttribute = referencedAttribute
        self.docString = docString
    }
}
