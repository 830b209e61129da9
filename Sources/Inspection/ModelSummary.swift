import GraphIR

/// What `mlpkg inspect` reports about a model: a Codable summary, printed as JSON or as a text table.
public struct ModelSummary: Codable, Sendable, Equatable {
    public struct Producer: Codable, Sendable, Equatable {
        public var name: String
        public var version: String
    }

    public struct Opset: Codable, Sendable, Equatable {
        public var domain: String
        public var version: Int64
    }

    public struct Value: Codable, Sendable, Equatable {
        public var name: String
        public var type: ValueType
    }

    public struct NodeCounts: Codable, Sendable, Equatable {
        /// Nodes of the main graph and of every subgraph.
        public var total: Int
        public var mainGraph: Int
    }

    public struct OpCount: Codable, Sendable, Equatable {
        public var domain: String
        public var opType: String
        public var count: Int
    }

    public struct DtypeTotal: Codable, Sendable, Equatable {
        public var dtype: String
        public var tensors: Int
        public var count: Int
        public var bytes: Int
    }

    public struct Parameters: Codable, Sendable, Equatable {
        public var count: Int
        public var bytes: Int
        public var byDtype: [DtypeTotal]
    }

    public struct TensorEntry: Codable, Sendable, Equatable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        public var bytes: Int
        public var external: Bool
        /// How the bytes are stored: "raw", or an encoding such as "float16" in a package.
        public var encoding: String
    }

    public struct ExternalFile: Codable, Sendable, Equatable {
        public var location: String
        public var tensors: Int
        public var bytes: Int
    }

    public struct FunctionEntry: Codable, Sendable, Equatable {
        public var domain: String
        public var name: String
        public var nodes: Int
    }

    public var file: String
    public var irVersion: Int64
    public var producer: Producer
    public var domain: String
    public var modelVersion: Int64
    public var opsetImports: [Opset]
    public var inputs: [Value]
    public var outputs: [Value]
    public var nodes: NodeCounts
    public var opCounts: [OpCount]
    public var subgraphCount: Int
    public var initializerCount: Int
    public var parameters: Parameters
    public var largestTensors: [TensorEntry]
    public var externalDataFiles: [ExternalFile]
    public var functions: [FunctionEntry]
    public var metadata: [String: String]
    /// Present when the summary is of a package.
    public var package: PackageSummary?
    /// Present with `--shapes`.
    public var shapes: ShapeSummary?

    public func with(package: PackageSummary) -> ModelSummary {
        var copy = self
        copy.package = package
        return copy
    }
}

