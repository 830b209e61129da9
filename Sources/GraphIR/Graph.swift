/// A computation graph (ONNX `GraphProto`): the main graph of a model, or a subgraph held by an attribute.
public struct Graph: Sendable {
    public var name: String
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    /// Type annotations of intermediate values.
    public var valueInfo: [ValueInfo]
    public var initializers: [Tensor]
    public var sparseInitializers: [SparseTensor]
    /// In topological order once the graph has been verified.
    public var nodes: [Node]
    public var quantizationAnnotations: [QuantizationAnnotation]
    public var docString: String
    public var metadata: [MetadataEntry]

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
    public var tensorName: String
    public var parameters: [MetadataEntry]
    public init(tensorName: String, parameters: [MetadataEntry]) {
        self.tensorName = tensorName
        self.parameters = parameters
    }
}

/// A domain and version the model's nodes are written against.
public struct OpsetImport: Sendable, Hashable, Codable {
    /// "" for the default ONNX domain.
    public var domain: String
    public var version: Int64
    public init(domain: String, version: Int64) {
        self.domain = domain
        self.version = version
    }
}

/// A model-local function (ONNX `FunctionProto`): nodes whose op type and domain match it expand to its body.
public struct Function: Sendable {
    public var name: String
    public var domain: String
    public var overload: String
    public var inputs: [String]
    public var outputs: [String]
    /// Attribute names without defaults.
    public var attributeNames: [String]
    /// Attributes with default values.
    public var attributeDefaults: [Attribute]
    public var nodes: [Node]
    public var opsetImports: [OpsetImport]
    public var valueInfo: [ValueInfo]
    public var docString: String
    public var metadata: [MetadataEntry]

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
    public var irVersion: Int64
    public var producerName: String
    public var producerVersion: String
    public var domain: String
    public var modelVersion: Int64
    public var docString: String
    /// One entry per domain (duplicates merged by the importer), in file order.
    public var opsetImports: [OpsetImport]
    public var metadata: [MetadataEntry]
    public var graph: Graph
    public var functions: [Function]

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

    public func opsetVersion(domain: String) -> Int64? {
        opsetImports.first { $0.domain == domain }?.version
    }
}
