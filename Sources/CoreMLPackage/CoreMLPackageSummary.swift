import MIL

/// What `mlpkg inspect X.mlpackage` shows: the interface with types and shapes, the functions, the MIL op
/// histogram, the weight blobs (count, encodings, sizes, the largest), the deployment target and the metadata.
public struct CoreMLPackageSummary: Sendable, Encodable {
    /// One feature of the interface.
    public struct Feature: Sendable, Encodable {
        /// The feature's name.
        public var name: String
        /// The feature's description (Xcode shows it), omitted when empty.
        public var description: String?
        /// `multiArray`, `image`, `int64`, `double`, `string`, `dictionary`, `sequence`, `state`, `unknown`.
        public var kind: String
        /// The whole type in one string: `fp32[1, 3, 224, 224]`, `image 224×224 RGB`…
        public var type: String
        /// Element type of a multi-array or state (`fp32`, `fp16`, `fp64`, `int32`, `int8`).
        public var dtype: String?
        /// Default shape of a multi-array or state.
        public var shape: [Int]?
        /// How the shape or image size may vary (enumerated, range); omitted when fixed.
        public var flexibility: String?
        /// Whether an app may leave it out.
        public var optional: Bool
    }

    /// One typed input of a function.
    public struct FunctionInput: Sendable, Encodable {
        /// The input's name.
        public var name: String
        /// Its MIL type, `fp16[1, ?, 64]`.
        public var type: String
    }

    /// One function of the ML Program.
    public struct Function: Sendable, Encodable {
        /// The function's name.
        public var name: String
        /// Its opset (`CoreML6`).
        public var opset: String
        /// The target the opset needs (`iOS16`), omitted for an opset mlpkg does not know.
        public var deploymentTarget: String?
        /// Its typed inputs.
        public var inputs: [FunctionInput]
        /// Its block outputs.
        public var outputs: [String]
        /// Ops of the function's block, nested ones included.
        public var operations: Int
    }

    /// How many ops of one type.
    public struct OpCount: Sendable, Encodable {
        /// The MIL op type.
        public var type: String
        /// How many.
        public var count: Int
    }

    /// The op histogram.
    public struct Operations: Sendable, Encodable {
        /// Every op, nested ones included.
        public var total: Int
        /// By op type, most frequent first.
        public var byType: [OpCount]
    }

    /// Blobs of one element type.
    public struct BlobType: Sendable, Encodable {
        /// The blob's element type (`fp16`, `int8`, `uint4`…).
        public var dtype: String
        /// How many blobs.
        public var blobs: Int
        /// Their data bytes.
        public var bytes: Int
    }

    /// One blob of weight.bin.
    public struct Blob: Sendable, Encodable {
        /// The op that reads it (a `const`'s name, or a `constexpr_*` op's).
        public var op: String
        /// That op's type.
        public var opType: String
        /// The value it holds, e.g. `uint4[512, 512]`.
        public var type: String
        /// The blob's element type.
        public var dtype: String
        /// Its data bytes.
        public var bytes: Int
        /// Offset of its metadata record in the file.
        public var offset: Int
    }

    /// One blob file.
    public struct Weights: Sendable, Encodable {
        /// The file, relative to the model (`weights/weight.bin`).
        public var file: String
        /// Its size in bytes.
        public var bytes: Int
        /// How many blobs it holds.
        public var blobs: Int
        /// Blobs and bytes per element type, most bytes first.
        public var byType: [BlobType]
        /// The 10 largest blobs.
        public var largest: [Blob]
    }

    /// `Model.description.metadata`.
    public struct Metadata: Sendable, Encodable {
        /// The author (empty when none).
        public var author: String
        /// The license.
        public var license: String
        /// The model's description.
        public var shortDescription: String
        /// The version string.
        public var versionString: String
        /// User-defined entries.
        public var userDefined: [String: String]
    }

    /// A classifier's outputs (`predictedFeatureName`, `predictedProbabilitiesName`).
    public struct Classifier: Sendable, Encodable {
        /// The predicted label's output.
        public var label: String
        /// The probabilities dictionary's output (empty when the model names none).
        public var probabilities: String
    }

    /// The package, as given.
    public var file: String
    /// Always `mlpackage`.
    public var format = "mlpackage"
    /// Manifest.json's `fileFormatVersion`.
    public var fileFormatVersion: String?
    /// model.mlmodel's size.
    public var modelBytes: Int
    /// `Model.specificationVersion`.
    public var specificationVersion: Int
    /// The releases the specification version corresponds to (`iOS16, macOS13, watchOS9, tvOS16`).
    public var deploymentTarget: String
    /// `mlProgram`, or the other model type the package holds.
    public var modelType: String
    /// `Model.isUpdatable`.
    public var isUpdatable: Bool
    /// The inputs an app feeds.
    public var inputs: [Feature]
    /// The outputs it reads.
    public var outputs: [Feature]
    /// States (iOS18 stateful models).
    public var states: [Feature]
    /// The ML Program's functions.
    public var functions: [Function]
    /// A multifunction model's default function, omitted otherwise.
    public var defaultFunction: String?
    /// The MIL op histogram.
    public var operations: Operations
    /// The weight-compression ops (`constexpr_*`) and how many of each.
    public var compression: [OpCount]
    /// The blob files (weights/weight.bin).
    public var weights: [Weights]
    /// Author, license, description, version, user-defined entries.
    public var metadata: Metadata
    /// The classifier's outputs; omitted for a model that is not a classifier.
    public var classifier: Classifier?
    /// Problems met while reading (the container; `mlpkg verify` checks everything).
    public var problems: [String]

    /// The releases of a specification version.
    public static func deploymentTarget(specificationVersion v: Int) -> String {
        let table: [Int: String] = [
            1: "iOS11, macOS10.13", 2: "iOS11.2, macOS10.13.2", 3: "iOS12, macOS10.14", 4: "iOS13, macOS10.15",
            5: "iOS14, macOS11", 6: "iOS15, macOS12, watchOS8, tvOS15", 7: "iOS16, macOS13, watchOS9, tvOS16",
            8: "iOS17, macOS14, watchOS10, tvOS17", 9: "iOS18, macOS15, watchOS11, tvOS18",
        ]
        return table[v] ?? (v > 9 ? "newer than iOS18" : "unknown")
    }

    /// The summary of a package read with `CoreMLPackageReader` (its model must have decoded).
    public init?(_ contents: CoreMLPackageContents) {
        guard let spec = contents.spec else { return nil }
        file = contents.path
        fileFormatVersion = contents.fileFormatVersion
        modelBytes = contents.modelBytes
        specificationVersion = spec.specificationVersion
        deploymentTarget = Self.deploymentTarget(specificationVersion: spec.specificationVersion)
        modelType = spec.modelType
        isUpdatable = spec.isUpdatable
        inputs = spec.inputs.map(Self.feature)
        outputs = spec.outputs.map(Self.feature)
        states = spec.states.map(Self.feature)
        defaultFunction = spec.defaultFunctionName.isEmpty ? nil : spec.defaultFunctionName
        classifier = spec.predictedFeatureName.isEmpty ? nil
            : Classifier(label: spec.predictedFeatureName, probabilities: spec.predictedProbabilitiesName)
        problems = contents.faults + contents.blobFiles.flatMap { name, reader in
            reader.faults.map { "\(contents.path): \(name.dropFirst("@model_path/".count)): \($0)" }
        }
        let m = spec.metadata
        var user: [String: String] = [:]
        for (k, v) in m.userDefined { user[k] = v }
        metadata = Metadata(author: m.author, license: m.license, shortDescription: m.shortDescription,
                            versionString: m.versionString, userDefined: user)

        var histogram: [String: Int] = [:]
        var readers: [String: (op: String, opType: String, type: MILSpecType)] = [:]  // "file@offset" → reader
        func visit(_ block: MILSpecBlock) -> Int {
            var n = 0
            for op in block.operations {
                n += 1
                histogram[op.type, default: 0] += 1
                for v in op.values {
                    if case .blob(let file, let offset) = v.storage, readers["\(file)@\(offset)"] == nil {
                        readers["\(file)@\(offset)"] = (op.name ?? op.outputs.first?.name ?? "?", op.type, v.type)
                    }
                }
                for b in op.blocks { n += visit(b) }
            }
            return n
        }
        functions = (spec.program?.functions ?? []).map { f in
            let main = f.blocks.first { $0.opset == f.opset }?.block ?? f.blocks.first?.block
            var count = 0
            for (_, b) in f.blocks { count += visit(b) }
            return Function(name: f.name, opset: f.opset, deploymentTarget: CoreMLPackageVerifier.target(opset: f.opset)?.description,
                            inputs: f.inputs.map { FunctionInput(name: $0.name, type: $0.type.description) },
                            outputs: main?.outputs ?? [], operations: count)
        }
        let counts = histogram.map { OpCount(type: $0.key, count: $0.value) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.type < $1.type }
        operations = Operations(total: histogram.values.reduce(0, +), byType: counts)
        compression = counts.filter { $0.type.hasPrefix("constexpr_") }

        weights = contents.blobFiles.map { name, reader in
            var byType: [String: (Int, Int)] = [:]
            for r in reader.records {
                let t = r.typeName
                byType[t] = ((byType[t]?.0 ?? 0) + 1, (byType[t]?.1 ?? 0) + r.size)
            }
            let largest = reader.records.sorted { $0.size != $1.size ? $0.size > $1.size : $0.offset < $1.offset }.prefix(10).map { r in
                let user = readers["\(name)@\(r.offset)"]
                return Blob(op: user?.op ?? "(not read by any op)", opType: user?.opType ?? "", type: user?.type.description ?? r.typeName,
                            dtype: r.typeName, bytes: r.size, offset: r.offset)
            }
            return Weights(file: String(name.dropFirst("@model_path/".count)), bytes: reader.size, blobs: reader.records.count,
                           byType: byType.map { BlobType(dtype: $0.key, blobs: $0.value.0, bytes: $0.value.1) }
                               .sorted { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.dtype < $1.dtype },
                           largest: Array(largest))
        }
    }

    static func feature(_ f: CoreMLFeature) -> Feature {
        var out = Feature(name: f.name, description: f.shortDescription.isEmpty ? nil : f.shortDescription, kind: f.type.kind,
                          type: f.type.description, optional: f.isOptional)
        switch f.type {
        case .multiArray(let dtype, let shape, let flexibility):
            out.dtype = dtype
            out.shape = shape
            out.flexibility = flexibility
        case .image(_, _, _, let flexibility):
            out.flexibility = flexibility
        case .state(let dtype, let shape):
            out.dtype = dtype
            out.shape = shape
        default:
            break
        }
        return out
    }
}
