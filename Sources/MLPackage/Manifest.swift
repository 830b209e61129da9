import GraphIR

/// The manifest of a `.mlpkg` package (manifest.json), format version 1.0. docs/FORMAT.md is its specification.
///
/// JSON keys are written sorted, so `format` and `formatVersion` come first (every other top-level key sorts after
/// them): a reader checks those two before anything else.
public struct Manifest: Codable, Sendable, Equatable {
    public static let formatName = "mlpkg"
    public static let version = FormatVersion(major: 1, minor: 2)
    /// The version of packages with compute units but no palettized tensor.
    public static let unitsVersion = FormatVersion(major: 1, minor: 1)
    /// Packages that record no compute units are written as 1.0, byte for byte what 1.0 writers wrote.
    public static let baseVersion = FormatVersion(major: 1, minor: 0)
    /// The values `NodeRecord.computeUnit` may take.
    public static let computeUnits: Set<String> = ["neural-engine", "gpu", "cpu", "unsupported"]
    public static let alignment = 64
    public static let weightsFileName = "weights.bin"
    public static let manifestFileName = "manifest.json"
    public static let reportFileName = "report.json"

    public var format: String
    public var formatVersion: String
    public var functions: [FunctionRecord]
    public var graph: GraphRecord
    public var metadata: [MetadataEntry]
    public var model: ModelInfo
    public var opsetImports: [OpsetImport]
    public var provenance: Provenance
    /// Every tensor of the package, referenced by index from the graph.
    public var tensors: [TensorRecord]
    public var weights: WeightsFile
}

public struct FormatVersion: Sendable, Equatable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// Parses "MAJOR.MINOR".
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let major = Int(parts[0]), let minor = Int(parts[1]), major >= 0, minor >= 0 else { return nil }
        self.init(major: major, minor: minor)
    }

    public var description: String { "\(major).\(minor)" }
}

public struct ModelInfo: Codable, Sendable, Equatable {
    public var irVersion: Int64
    public var producerName: String
    public var producerVersion: String
    public var domain: String
    public var modelVersion: Int64
    public var docString: String
}

public struct Provenance: Codable, Sendable, Equatable {
    public struct Source: Codable, Sendable, Equatable {
        /// File name only (no folder), so the same model converts to the same package wherever it lies.
        public var file: String
        public var bytes: Int
        public var sha256: String
        /// External data files the model read, by location.
        public var externalData: [ExternalFile]

        public init(file: String, bytes: Int, sha256: String, externalData: [ExternalFile] = []) {
            self.file = file
            self.bytes = bytes
            self.sha256 = sha256
            self.externalData = externalData
        }
    }

    public struct ExternalFile: Codable, Sendable, Equatable {
        public var location: String
        public var bytes: Int

        public init(location: String, bytes: Int) {
            self.location = location
            self.bytes = bytes
        }
    }

    public struct Producer: Codable, Sendable, Equatable {
        public var name: String
        public var version: String

        public init(name: String, version: String) {
            self.name = name
            self.version = version
        }

        /// This build of mlpkg.
        public static let mlpkg = Producer(name: "mlpkg", version: MLPkgVersion.current)
    }

    public var source: Source
    public var producer: Producer
    /// Every option the package was made with, by name.
    public var options: [String: String]

    public init(source: Source, producer: Producer = .mlpkg, options: [String: String] = [:]) {
        self.source = source
        self.producer = producer
        self.options = options
    }
}

public struct WeightsFile: Codable, Sendable, Equatable {
    public var file: String
    public var bytes: Int
    public var alignment: Int
}

/// One blob of weights.bin.
public struct TensorRecord: Codable, Sendable, Equatable {
    public var name: String
    /// The element type the graph sees.
    public var dtype: DataType
    public var shape: [Int]
    public var encoding: EncodingRecord
    public var offset: Int
    public var length: Int
    public var sha256: String
    public var docString: String?
    public var metadata: [MetadataEntry]?
}

/// How a blob's bytes encode the tensor's values. `kind`: "raw" (ONNX raw layout of `dtype`; strings as
/// length-prefixed UTF-8), "float16" (float32 values stored as IEEE half) or "linear" (integers q with
/// w = scale · (q − zeroPoint); `storage`, `axis`, `blockSize`, and the table indices of `scale` and `zeroPoint`).
/// Readers refuse kinds they do not know.
public struct EncodingRecord: Codable, Sendable, Equatable {
    public var kind: String
    public var storage: DataType?
    public var axis: Int?
    public var blockSize: Int?
    public var scale: Int?
    public var zeroPoint: Int?
    /// `lut` (1.2): bits per index, slices along axis 0 per table, and the table's tensor index.
    public var bits: Int?
    public var groupSize: Int?
    public var lut: Int?

    public init(kind: String, storage: DataType? = nil, axis: Int? = nil, blockSize: Int? = nil, scale: Int? = nil,
                zeroPoint: Int? = nil, bits: Int? = nil, groupSize: Int? = nil, lut: Int? = nil) {
        self.kind = kind
        self.bits = bits
        self.groupSize = groupSize
        self.lut = lut
        self.storage = storage
        self.axis = axis
        self.blockSize = blockSize
        self.scale = scale
        self.zeroPoint = zeroPoint
    }
}

public struct GraphRecord: Codable, Sendable, Equatable {
    public var name: String
    public var docString: String?
    public var inputs: [ValueRecord]
    public var outputs: [ValueRecord]
    public var valueInfo: [ValueRecord]
    /// Tensor indices.
    public var initializers: [Int]
    public var sparseInitializers: [SparseRecord]
    /// In topological order.
    public var nodes: [NodeRecord]
    public var quantizationAnnotations: [AnnotationRecord]?
    public var metadata: [MetadataEntry]?
}

public struct ValueRecord: Codable, Sendable, Equatable {
    public var name: String
    public var type: ValueType
    public var docString: String?
    public var metadata: [MetadataEntry]?
}

public struct SparseRecord: Codable, Sendable, Equatable {
    public var values: Int
    public var indices: Int
    public var dims: [Int]
}

public struct AnnotationRecord: Codable, Sendable, Equatable {
    public var tensorName: String
    public var parameters: [MetadataEntry]
}

public struct NodeRecord: Codable, Sendable, Equatable {
    public var name: String
    public var opType: String
    public var domain: String
    public var overload: String?
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [AttributeRecord]
    public var docString: String?
    public var metadata: [MetadataEntry]?
    /// The compute unit `convert --profile` assigned (`neural-engine`, `gpu`, `cpu` or `unsupported`); absent when
    /// the package was made without a profile (format 1.1; 1.0 readers ignore it).
    public var computeUnit: String?
}

/// A node attribute. `type` is ONNX's attribute type name; exactly the field that type names is set, with ONNX's
/// field names: f, i, s, t, g, sparseTensor, tp, floats, ints, strings, tensors, graphs, sparseTensors, typeProtos.
/// Byte strings that are not valid UTF-8 go in `sBase64` / `stringsBase64` instead. Tensors are tensor indices.
public struct AttributeRecord: Codable, Sendable, Equatable {
    public var name: String
    public var type: String
    public var f: Float?
    public var i: Int64?
    public var s: String?
    public var sBase64: String?
    public var t: Int?
    public var g: GraphRecord?
    public var sparseTensor: SparseRecord?
    public var tp: ValueType?
    public var floats: [Float]?
    public var ints: [Int64]?
    public var strings: [String]?
    public var stringsBase64: [String]?
    public var tensors: [Int]?
    public var graphs: [GraphRecord]?
    public var sparseTensors: [SparseRecord]?
    public var typeProtos: [ValueType]?
    public var refAttrName: String?
    public var docString: String?

    public init(name: String, type: String) {
        self.name = name
        self.type = type
    }
}

public struct FunctionRecord: Codable, Sendable, Equatable {
    public var name: String
    public var domain: String
    public var overload: String?
    public var inputs: [String]
    public var outputs: [String]
    public var attributeNames: [String]
    public var attributeDefaults: [AttributeRecord]
    public var nodes: [NodeRecord]
    public var opsetImports: [OpsetImport]
    public var valueInfo: [ValueRecord]
    public var docString: String?
    public var metadata: [MetadataEntry]?
}
