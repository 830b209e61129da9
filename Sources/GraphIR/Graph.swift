/// A computation graph (ONNX `GraphProto`): the main graph of a model, or a subgraph held by an attribute.
public struct Graph: Sendable {
    /// Deepest nesting of subgraphs any reader accepts (the main graph is level 0). Each level is three protobuf
    /// messages (GraphProto → NodeProto → AttributeProto → GraphProto) and ONNX readers (protobuf's default limit,
    /// the `onnx` package) stop at 100 nested messages: 33 levels can never be read back by them.
    public static let maxNesting = 32

    /// The graph's name (`GraphProto.name`); may be empty.
    public var name: String
    /// Declared inputs (`GraphProto.input`), in order; see `runtimeInputs` for the ones a caller feeds.
    public var inputs: [ValueInfo]
    /// Values the graph produces (`GraphProto.output`), in order.
    public var outputs: [ValueInfo]
    /// Type annotations of intermediate values.
    public var valueInfo: [ValueInfo]
    /// Constant tensors such as weights (`GraphProto.initializer`), each named like the value it defines.
    public var initializers: [Tensor]
    /// Sparse constant tensors (`GraphProto.sparse_initializer`).
    public var sparseInitializers: [SparseTensor]
    /// In topological order once the graph has been verified.
    public var nodes: [Node]
    /// Quantization parameters attached to values (`GraphProto.quantization_annotation`).
    public var quantizationAnnotations: [QuantizationAnnotation]
    /// Free-form documentation (`GraphProto.doc_string`); empty when absent.
    public var docString: String
    /// Key/value annotations (`GraphProto.metadata_props`), in file order.
    public var metadata: [MetadataEntry]

    /// Creates a graph; every part not given is empty.
    public init(name: String = "", inputs: [ValueInfo] = [], outputs: [ValueInfo] = [], valueInfo: [ValueInfo] = [],
                initializers: [Tensor] = [], sparseInitializers: [SparseTensor] = [], nodes: [Node] = [],
                quantizationAnnotations: [QuantizationAnnotation] = [], docString: String = "",
                metadata: [MetadataEntry] = []) {
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.valueInfo = valueInfo
        self.initializers = initializers
        self.sparseInitializers = sparseInitializers
        self.nodes = nodes
        self.quantizationAnnotations = quantizationAnnotations
        self.docString = docString
        self.metadata = metadata
    }

    /// Graph inputs that no initializer of the same name backs: the values a caller must feed.
    /// (Before IR version 4, initializers were also listed as inputs.)
    public var runtimeInputs: [ValueInfo] {
        let initialized = Set(initializers.map(\.name)).union(sparseInitializers.map(\.name))
        return inputs.filter { !initialized.contains($0.name) }
    }

    /// Calls `body` for this graph and every subgraph below it, depth first, with the nesting depth (0 here).
    public func forEachGraph(depth: Int = 0, _ body: (Graph, Int) throws -> Void) rethrows {
        var stack: [(Graph, Int)] = [(self, depth)]
        while let (graph, level) = stack.popLast() {
            try body(graph, level)
            for node in graph.nodes.reversed() {
                for attribute in node.attributes.reversed() {
                    for sub in attribute.value.subgraphs.reversed() { stack.append((sub, level + 1)) }
                }
            }
        }
    }

    /// Names this graph's nodes (and their subgraphs) read but do not define: values captured from enclosing graphs.
    public var outerScopeReferences: Set<String> {
        var defined = Set(inputs.map(\.name))
        defined.formUnion(initializers.map(\.name))
        defined.formUnion(sparseInitializers.map(\.name))
        var referenced = Set<String>()
        for node in nodes {
            for input in node.inputs where !input.isEmpty { referenced.insert(input) }
            for attribute in node.attributes {
                for sub in attribute.value.subgraphs { referenced.formUnion(sub.outerScopeReferences) }
            }
            defined.formUnion(node.outputs)
        }
        for output in outputs { referenced.insert(output.name) }
        return referenced.subtracting(defined)
    }
}

/// ONNX `TensorAnnotation`: quantization parameter tensors attached to a value.
public struct QuantizationAnnotation: Sendable {
    /// The value the parameters describe (`TensorAnnotation.tensor_name`).
    public var tensorName: String
    /// Parameter role to tensor name, e.g. `SCALE_TENSOR` (`TensorAnnotation.quant_parameter_tensor_names`).
    public var parameters: [MetadataEntry]
    /// Creates an annotation of `tensorName` with its parameter entries.
    public init(tensorName: String, parameters: [MetadataEntry]) {
        self.tensorName = tensorName
        self.parameters = parameters
    }
}

/// A domain and version the model's nodes are written against.
public struct OpsetImport: Sendable, Hashable, Codable {
    /// "" for the default ONNX domain.
    public var domain: String
    /// The opset version imported for `domain` (`OperatorSetIdProto.version`).
    public var version: Int64
    /// Creates an import of `version` of `domain` ("" for the default ONNX domain).
    public init(domain: String, version: Int64) {
        self.domain = domain
        self.version = version
    }
}

/// A model-local function (ONNX `FunctionProto`): nodes whose op type and domain match it expand to its body.
public struct Function: Sendable {
    /// The function's name: nodes call it with this op type (`FunctionProto.name`).
    public var name: String
    /// The domain calling nodes must have (`FunctionProto.domain`).
    public var domain: String
    /// Distinguishes functions sharing a domain and name (`FunctionProto.overload`); "" when unused.
    public var overload: String
    /// Names of the formal inputs, matched to a calling node's inputs by position.
    public var inputs: [String]
    /// Names of the formal outputs, matched to a calling node's outputs by position.
    public var outputs: [String]
    /// Attribute names without defaults.
    public var attributeNames: [String]
    /// Attributes with default values.
    public var attributeDefaults: [Attribute]
    /// The function body (`FunctionProto.node`).
    public var nodes: [Node]
    /// The opsets the body's nodes are written against (`FunctionProto.opset_import`).
    public var opsetImports: [OpsetImport]
    /// Type annotations of the body's values (`FunctionProto.value_info`).
    public var valueInfo: [ValueInfo]
    /// Free-form documentation (`FunctionProto.doc_string`); empty when absent.
    public var docString: String
    /// Key/value annotations (`FunctionProto.metadata_props`), in file order.
    public var metadata: [MetadataEntry]

    /// Creates a function; the optional parts default to empty.
    public init(name: String, domain: String, overload: String = "", inputs: [String], outputs: [String],
                attributeNames: [String] = [], attributeDefaults: [Attribute] = [], nodes: [Node],
                opsetImports: [OpsetImport] = [], valueInfo: [ValueInfo] = [], docString: String = "",
                metadata: [MetadataEntry] = []) {
        self.name = name
        self.domain = domain
        self.overload = overload
        self.inputs = inputs
        self.outputs = outputs
        self.attributeNames = attributeNames
        self.attributeDefaults = attributeDefaults
        self.nodes = nodes
        self.opsetImports = opsetImports
        self.valueInfo = valueInfo
        self.docString = docString
        self.metadata = metadata
    }
}

/// A whole model (ONNX `ModelProto`).
public struct Model: Sendable {
    /// The ONNX IR version the file declares (`ModelProto.ir_version`).
    public var irVersion: Int64
    /// The tool that wrote the model (`ModelProto.producer_name`); empty when not recorded.
    public var producerName: String
    /// That tool's version (`ModelProto.producer_version`); empty when not recorded.
    public var producerVersion: String
    /// The model's namespace, usually reverse-DNS (`ModelProto.domain`); empty when not recorded.
    public var domain: String
    /// The model's own version number (`ModelProto.model_version`); 0 when not recorded.
    public var modelVersion: Int64
    /// Free-form documentation (`ModelProto.doc_string`); empty when absent.
    public var docString: String
    /// One entry per domain (duplicates merged by the importer), in file order.
    public var opsetImports: [OpsetImport]
    /// Key/value annotations (`ModelProto.metadata_props`), in file order.
    public var metadata: [MetadataEntry]
    /// The main graph (`ModelProto.graph`).
    public var graph: Graph
    /// Model-local functions (`ModelProto.functions`) that nodes can call by domain and name.
    public var functions: [Function]

    /// Creates a model; the optional parts default to empty (0 for `modelVersion`).
    public init(irVersion: Int64, producerName: String = "", producerVersion: String = "", domain: String = "",
                modelVersion: Int64 = 0, docString: String = "", opsetImports: [OpsetImport], metadata: [MetadataEntry] = [],
                graph: Graph, functions: [Function] = []) {
        self.irVersion = irVersion
        self.producerName = producerName
        self.producerVersion = producerVersion
        self.domain = domain
        self.modelVersion = modelVersion
        self.docString = docString
        self.opsetImports = opsetImports
        self.metadata = metadata
        self.graph = graph
        self.functions = functions
    }

    /// The opset version imported for `domain` ("" for the default ONNX domain), or nil when it is not imported.
    public func opsetVersion(domain: String) -> Int64? {
        opsetImports.first { $0.domain == domain }?.version
    }
}
