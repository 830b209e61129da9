import GraphIR

/// The manifest of a `.mlpkg` package (manifest.json), format version 1.0. docs/FORMAT.md is its specification.
///
/// JSON keys are written sorted, so `format` and `formatVersion` come first (every other top-level key sorts after
/// them): a reader checks those two before anything else.
public struct Manifest: Codable, Sendable, Equatable {
    /// The value of `format` in every manifest.
    public static let formatName = "mlpkg"
    /// The newest format version this build writes (1.2); a package with a newer major version is refused.
    public static let version = FormatVersion(major: 1, minor: 2)
    /// The version of packages with compute units but no palettized tensor.
    public static let unitsVersion = FormatVersion(major: 1, minor: 1)
    /// Packages that record no compute units are written as 1.0, byte for byte what 1.0 writers wrote.
    public static let baseVersion = FormatVersion(major: 1, minor: 0)
    /// The values `NodeRecord.computeUnit` may take.
    public static let computeUnits: Set<String> = ["neural-engine", "gpu", "cpu", "unsupported"]
    /// Every blob in weights.bin starts at a multiple of this many bytes.
    public static let alignment = 64
    /// The file holding every tensor's bytes.
    public static let weightsFileName = "weights.bin"
    /// The file holding the manifest.
    public static let manifestFileName = "manifest.json"
    /// The file holding the conversion report (informative; never affects the graph).
    public static let reportFileName = "report.json"

    /// Always "mlpkg" (`formatName`); anything else is another format and is refused.
    public var format: String
    /// "MAJOR.MINOR": the oldest version that holds what the package uses (1.0, 1.1 or 1.2).
    public var formatVersion: String
    /// Model-local functions (ONNX `FunctionProto`); may be empty.
    public var functions: [FunctionRecord]
    /// The main graph.
    public var graph: GraphRecord
    /// The model's metadata (ONNX `metadata_props`), in order.
    public var metadata: [MetadataEntry]
    /// The source model's header fields: IR version, producer, domain, model version, doc string.
    public var model: ModelInfo
    /// One entry per operator domain; "" is the default ONNX domain.
    public var opsetImports: [OpsetImport]
    /// Where the package came from and the options it was made with.
    public var provenance: Provenance
    /// Every tensor of the package, referenced by index from the graph.
    public var tensors: [TensorRecord]
    /// Describes weights.bin: its name, exact size in bytes and blob alignment.
    public var weights: WeightsFile
}

/// A package format version, `MAJOR.MINOR`; a reader refuses a newer MAJOR and reads a newer MINOR.
public struct FormatVersion: Sendable, Equatable, CustomStringConvertible {
    /// Incremented by changes older readers cannot read.
    public var major: Int
    /// Incremented when optional keys or new encoding kinds are added.
    public var minor: Int

    /// The version `major`.`minor`.
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

    /// "MAJOR.MINOR", as manifest.json writes it.
    public var description: String { "\(major).\(minor)" }
}

/// The source model's header (the `model` key): ONNX `ModelProto` fields other than the graph.
public struct ModelInfo: Codable, Sendable, Equatable {
    /// The ONNX IR version of the source model.
    public var irVersion: Int64
    /// The tool that wrote the source model; empty when unset.
    public var producerName: String
    /// That tool's version; empty when unset.
    public var producerVersion: String
    /// The model's domain (reverse-DNS by convention); empty when unset.
    public var domain: String
    /// The model's own version number; 0 when unset.
    public var modelVersion: Int64
    /// The model's documentation string; empty when unset.
    public var docString: String
}

/// Where a package came from (the `provenance` key): the source file, the writer and the options used.
public struct Provenance: Codable, Sendable, Equatable {
    /// The source model file (`provenance.source`).
    public struct Source: Codable, Sendable, Equatable {
        /// File name only (no folder), so the same model converts to the same package wherever it lies.
        public var file: String
        /// Size of the source file in bytes (external data files not included).
        public var bytes: Int
        /// SHA-256 of the source file, 64 lower-case hex digits.
        public var sha256: String
        /// External data files the model read, by location.
        public var externalData: [ExternalFile]

        /// A source record; `externalData` lists the external data files read, if any.
        public init(file: String, bytes: Int, sha256: String, externalData: [ExternalFile] = []) {
            self.file = file
            self.bytes = bytes
            self.sha256 = sha256
            self.externalData = externalData
        }
    }

    /// One external data file the source model read weights from.
    public struct ExternalFile: Codable, Sendable, Equatable {
        /// The file's location as the model names it (relative to the model's folder).
        public var location: String
        /// Bytes taken from that file (the sum of the lengths of the tensors stored in it).
        public var bytes: Int

        /// A record of `bytes` read from the external file at `location`.
        public init(location: String, bytes: Int) {
            self.location = location
            self.bytes = bytes
        }
    }

    /// The program that wrote the package (`provenance.producer`).
    public struct Producer: Codable, Sendable, Equatable {
        /// The program's name, "mlpkg".
        public var name: String
        /// The program's version, such as "0.1.0".
        public var version: String

        /// A producer record with the given name and version.
        public init(name: String, version: String) {
            self.name = name
            self.version = version
        }

        /// This build of mlpkg.
        public static let mlpkg = Producer(name: "mlpkg", version: MLPkgVersion.current)
    }

    /// The source model file.
    public var source: Source
    /// The program that wrote the package.
    public var producer: Producer
    /// Every option the package was made with, by name.
    public var options: [String: String]

    /// Provenance of a package made from `source`, by this build of mlpkg unless `producer` says otherwise.
    public init(source: Source, producer: Producer = .mlpkg, options: [String: String] = [:]) {
        self.source = source
        self.producer = producer
        self.options = options
    }
}

/// The `weights` key: which file holds the blobs, its size and their alignment.
public struct WeightsFile: Codable, Sendable, Equatable {
    /// The file's name in the package, "weights.bin".
    public var file: String
    /// The file's exact size in bytes; a different size means it was truncated or replaced.
    public var bytes: Int
    /// Every blob's offset is a multiple of this many bytes (64).
    public var alignment: Int
}

/// One blob of weights.bin.
public struct TensorRecord: Codable, Sendable, Equatable {
    /// The tensor's name in its graph; may be empty (a Constant node's value) and is not unique.
    public var name: String
    /// The element type the graph sees.
    public var dtype: DataType
    /// The dims, each 0 or more; empty for a scalar (one element).
    public var shape: [Int]
    /// How the blob encodes the values (`kind` and its keys).
    public var encoding: EncodingRecord
    /// Byte offset of the blob in weights.bin, a multiple of 64.
    public var offset: Int
    /// Byte length of the blob; what the encoding needs for the shape's elements (0 for an empty tensor).
    public var length: Int
    /// SHA-256 of the blob's `length` bytes, 64 lower-case hex digits.
    public var sha256: String
    /// The tensor's documentation string; nil when it has none.
    public var docString: String?
    /// The tensor's metadata entries; nil when it has none.
    public var metadata: [MetadataEntry]?
}

/// How a blob's bytes encode the tensor's values. `kind`: "raw" (ONNX raw layout of `dtype`; strings as
/// length-prefixed UTF-8), "float16" (float32 values stored as IEEE half) or "linear" (integers q with
/// w = scale · (q − zeroPoint); `storage`, `axis`, `blockSize`, and the table indices of `scale` and `zeroPoint`).
/// Readers refuse kinds they do not know.
public struct EncodingRecord: Codable, Sendable, Equatable {
    /// "raw", "float16", "linear" or "lut" (1.2); the keys below belong to linear or lut.
    public var kind: String
    /// linear: the integers' type, int8, uint8, int4 or uint4; nil for other kinds.
    public var storage: DataType?
    /// linear: the axis of per-channel scales, or the one blocks run along; nil: one scale for the tensor.
    public var axis: Int?
    /// linear: elements per block along `axis` (the last may be shorter); nil unless scales are per block.
    public var blockSize: Int?
    /// linear: table index of the raw float or float16 tensor holding the scales.
    public var scale: Int?
    /// linear: table index of the zero points, of dtype `storage`; nil means every zero point is 0.
    public var zeroPoint: Int?
    /// `lut` (1.2): bits per index, slices along axis 0 per table, and the table's tensor index.
    public var bits: Int?
    /// lut: slices along axis 0 that share a table; nil: one table for the whole tensor.
    public var groupSize: Int?
    /// lut: table index of the float16 (or float) tensor holding the lookup tables.
    public var lut: Int?

    /// An encoding of `kind`; only the keys that kind uses are given, the rest stay nil (absent in JSON).
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

/// A graph: the main one, or a subgraph held by a node attribute (ONNX `GraphProto`).
public struct GraphRecord: Codable, Sendable, Equatable {
    /// The graph's name.
    public var name: String
    /// The graph's documentation string; nil when it has none.
    public var docString: String?
    /// Graph inputs; one named like an initializer is an overridable initializer.
    public var inputs: [ValueRecord]
    /// Graph outputs, with their declared types.
    public var outputs: [ValueRecord]
    /// Types of intermediate values; convert writes the inferred type of each node output that is not a graph output.
    public var valueInfo: [ValueRecord]
    /// Tensor indices.
    public var initializers: [Int]
    /// Sparse initializers, whose values and indices are tensors of the table.
    public var sparseInitializers: [SparseRecord]
    /// In topological order.
    public var nodes: [NodeRecord]
    /// Quantization parameters per tensor (ONNX `TensorAnnotation`); nil when there are none.
    public var quantizationAnnotations: [AnnotationRecord]?
    /// The graph's metadata entries; nil when it has none.
    public var metadata: [MetadataEntry]?
}

/// A named value of a graph with its type: an input, an output or a value_info entry.
public struct ValueRecord: Codable, Sendable, Equatable {
    /// The value's name.
    public var name: String
    /// The value's type: tensor dtype and shape (possibly unknown), sequence, map, optional and so on.
    public var type: ValueType
    /// The value's documentation string; nil when it has none.
    public var docString: String?
    /// The value's metadata entries; nil when it has none.
    public var metadata: [MetadataEntry]?
}

/// A sparse tensor (ONNX `SparseTensorProto`) whose parts are tensors of the table.
public struct SparseRecord: Codable, Sendable, Equatable {
    /// Table index of the 1-D tensor of the NNZ stored values.
    public var values: Int
    /// Table index of the int64 indices: `[NNZ]` linear or `[NNZ, rank]` coordinates.
    public var indices: Int
    /// The dense tensor's shape.
    public var dims: [Int]
}

/// Quantization parameters attached to one tensor (ONNX `TensorAnnotation`).
public struct AnnotationRecord: Codable, Sendable, Equatable {
    /// The annotated tensor's name.
    public var tensorName: String
    /// The parameters as key-value entries, in order.
    public var parameters: [MetadataEntry]
}

/// A node of a graph or function body (ONNX `NodeProto`).
public struct NodeRecord: Codable, Sendable, Equatable {
    /// The node's name; may be empty.
    public var name: String
    /// The operator, such as "Conv".
    public var opType: String
    /// The operator's domain; "" is the default ONNX domain.
    public var domain: String
    /// The function overload the node calls; nil when it names none.
    public var overload: String?
    /// Input value names in order; "" marks an omitted optional input.
    public var inputs: [String]
    /// Output value names in order.
    public var outputs: [String]
    /// The node's attributes, in the source's order.
    public var attributes: [AttributeRecord]
    /// The node's documentation string; nil when it has none.
    public var docString: String?
    /// The node's metadata entries; nil when it has none.
    public var metadata: [MetadataEntry]?
    /// The compute unit `convert --profile` assigned (`neural-engine`, `gpu`, `cpu` or `unsupported`); absent when
    /// the package was made without a profile (format 1.1; 1.0 readers ignore it).
    public var computeUnit: String?
}

/// A node attribute. `type` is ONNX's attribute type name; exactly the field that type names is set, with ONNX's
/// field names: f, i, s, t, g, sparseTensor, tp, floats, ints, strings, tensors, graphs, sparseTensors, typeProtos.
/// Byte strings that are not valid UTF-8 go in `sBase64` / `stringsBase64` instead. Tensors are tensor indices.
public struct AttributeRecord: Codable, Sendable, Equatable {
    /// The attribute's name.
    public var name: String
    /// ONNX's attribute type name (FLOAT, INT, STRING, TENSOR, GRAPH, …, TYPE_PROTOS).
    public var type: String
    /// FLOAT: the value (NaN and infinities are written as strings).
    public var f: Float?
    /// INT: the value, a full 64-bit integer.
    public var i: Int64?
    /// STRING: the bytes as text, when they are valid UTF-8.
    public var s: String?
    /// STRING: the bytes in base64, when they are not valid UTF-8.
    public var sBase64: String?
    /// TENSOR: the tensor's index in the table.
    public var t: Int?
    /// GRAPH: the subgraph.
    public var g: GraphRecord?
    /// SPARSE_TENSOR: the sparse tensor.
    public var sparseTensor: SparseRecord?
    /// TYPE_PROTO: the type.
    public var tp: ValueType?
    /// FLOATS: the values.
    public var floats: [Float]?
    /// INTS: the values.
    public var ints: [Int64]?
    /// STRINGS: the values as text, when every one is valid UTF-8.
    public var strings: [String]?
    /// STRINGS: every value in base64, when any one is not valid UTF-8.
    public var stringsBase64: [String]?
    /// TENSORS: the tensors' indices in the table.
    public var tensors: [Int]?
    /// GRAPHS: the subgraphs.
    public var graphs: [GraphRecord]?
    /// SPARSE_TENSORS: the sparse tensors.
    public var sparseTensors: [SparseRecord]?
    /// TYPE_PROTOS: the types.
    public var typeProtos: [ValueType]?
    /// In a function body: the calling node's attribute this one takes its value from; nil elsewhere.
    public var refAttrName: String?
    /// The attribute's documentation string; nil when it has none.
    public var docString: String?

    /// An attribute with no value set yet; set the one field `type` names.
    public init(name: String, type: String) {
        self.name = name
        self.type = type
    }
}

/// A model-local function (ONNX `FunctionProto`).
public struct FunctionRecord: Codable, Sendable, Equatable {
    /// The function's name, which nodes use as their `opType`.
    public var name: String
    /// The function's domain, which calling nodes name as theirs.
    public var domain: String
    /// The overload this definition provides; nil when it has none.
    public var overload: String?
    /// The function's formal input names.
    public var inputs: [String]
    /// The function's formal output names.
    public var outputs: [String]
    /// Attributes a call may set that have no default.
    public var attributeNames: [String]
    /// Attributes a call may set, with their default values.
    public var attributeDefaults: [AttributeRecord]
    /// The body's nodes (they never record a compute unit).
    public var nodes: [NodeRecord]
    /// The operator sets the body uses.
    public var opsetImports: [OpsetImport]
    /// Types of values in the body.
    public var valueInfo: [ValueRecord]
    /// The function's documentation string; nil when it has none.
    public var docString: String?
    /// The function's metadata entries; nil when it has none.
    public var metadata: [MetadataEntry]?
}
