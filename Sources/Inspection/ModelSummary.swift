import GraphIR

/// What `mlpkg inspect` reports about a model: a Codable summary, printed as JSON or as a text table.
public struct ModelSummary: Codable, Sendable, Equatable {
    /// The tool that wrote the model (ONNX `producer_name` and `producer_version`).
    public struct Producer: Codable, Sendable, Equatable {
        /// The producer's name; empty when the model names none.
        public var name: String
        /// The producer's version; empty when the model gives none.
        public var version: String
    }

    /// One operator set the model imports.
    public struct Opset: Codable, Sendable, Equatable {
        /// The operator domain; "" is the default ONNX domain (ai.onnx).
        public var domain: String
        /// The opset version imported for that domain.
        public var version: Int64
    }

    /// A graph input or output with its declared type.
    public struct Value: Codable, Sendable, Equatable {
        /// The value's name in the graph.
        public var name: String
        /// The declared type (dtype and shape, possibly partly unknown).
        public var type: ValueType
    }

    /// How many nodes the model has.
    public struct NodeCounts: Codable, Sendable, Equatable {
        /// Nodes of the main graph and of every subgraph.
        public var total: Int
        /// Nodes of the main graph alone.
        public var mainGraph: Int
    }

    /// How often one operator type occurs, over the main graph and all subgraphs.
    public struct OpCount: Codable, Sendable, Equatable {
        /// The operator's domain; "" is the default ONNX domain.
        public var domain: String
        /// The operator type, such as `Conv`.
        public var opType: String
        /// Nodes of this type.
        public var count: Int
    }

    /// The weights of one element type, summed.
    public struct DtypeTotal: Codable, Sendable, Equatable {
        /// The element type's name (`float`, `int64`…).
        public var dtype: String
        /// Weight tensors of this type.
        public var tensors: Int
        /// Elements stored in them.
        public var count: Int
        /// Bytes stored in them.
        public var bytes: Int
    }

    /// Totals over every weight of the model (initializers, sparse initializers and Constant values).
    public struct Parameters: Codable, Sendable, Equatable {
        /// Stored elements of all weights.
        public var count: Int
        /// Stored bytes of all weights.
        public var bytes: Int
        /// The same totals per element type, sorted by type name.
        public var byDtype: [DtypeTotal]
    }

    /// One of the largest weight tensors.
    public struct TensorEntry: Codable, Sendable, Equatable {
        /// The tensor's name in its graph.
        public var name: String
        /// The element type the graph sees.
        public var dtype: String
        /// The tensor's dims; empty for a scalar.
        public var shape: [Int]
        /// Bytes the tensor stores (values plus indices for a sparse tensor).
        public var bytes: Int
        /// Whether the bytes live in an external data file rather than in the model.
        public var external: Bool
        /// How the bytes are stored: "raw", or an encoding such as "float16" in a package.
        public var encoding: String
    }

    /// One external data file the model's weights are read from.
    public struct ExternalFile: Codable, Sendable, Equatable {
        /// The file's location as the model writes it (relative to the model's folder).
        public var location: String
        /// Weight tensors stored in the file.
        public var tensors: Int
        /// Bytes the model's tensors take from the file.
        public var bytes: Int
    }

    /// One model-local function (ONNX `FunctionProto`).
    public struct FunctionEntry: Codable, Sendable, Equatable {
        /// The function's domain.
        public var domain: String
        /// The function's name.
        public var name: String
        /// Nodes in the function's body.
        public var nodes: Int
    }

    /// The model or package as given to `inspect`.
    public var file: String
    /// The model's ONNX IR version.
    public var irVersion: Int64
    /// The tool that wrote the source model.
    public var producer: Producer
    /// The model's domain (ONNX `ModelProto.domain`); empty when unset.
    public var domain: String
    /// The model's own version number; 0 when unset.
    public var modelVersion: Int64
    /// The operator sets the model imports, sorted by domain.
    public var opsetImports: [Opset]
    /// Inputs a caller must feed: graph inputs not backed by an initializer of the same name.
    public var inputs: [Value]
    /// The main graph's outputs.
    public var outputs: [Value]
    /// Node counts of the main graph and of all graphs.
    public var nodes: NodeCounts
    /// Nodes per operator type, sorted by domain then operator.
    public var opCounts: [OpCount]
    /// Subgraphs held by node attributes (If branches, Loop bodies…), at any depth.
    public var subgraphCount: Int
    /// Dense initializers of the main graph and of every subgraph.
    public var initializerCount: Int
    /// Element and byte totals of every weight.
    public var parameters: Parameters
    /// The largest weights by bytes, at most `largestTensorLimit` of them, largest first.
    public var largestTensors: [TensorEntry]
    /// External data files the weights come from, sorted by location; empty when none.
    public var externalDataFiles: [ExternalFile]
    /// The model-local functions, in the model's order.
    public var functions: [FunctionEntry]
    /// The model's metadata (`metadata_props`) by key; a repeated key keeps its last value.
    public var metadata: [String: String]
    /// Present when the summary is of a package.
    public var package: PackageSummary?
    /// Present with `--shapes`.
    public var shapes: ShapeSummary?

    /// This summary with `package` set.
    public func with(package: PackageSummary) -> ModelSummary {
        var copy = self
        copy.package = package
        return copy
    }
}

