import GraphIR

/// The model around a program: interface descriptions and metadata, as Core ML's `Model` message holds them.
public struct MILModelDescription: Sendable {
    /// The function inputs as features (same names and order as the program's inputs).
    public var inputs: [FeatureDescription]
    /// The block outputs as features.
    public var outputs: [FeatureDescription]
    /// User-defined metadata, in order.
    public var metadata: [(String, String)]
    /// Shown in Xcode.
    public var shortDescription: String
    /// Shown in Xcode.
    public var author: String
    /// Shown in Xcode.
    public var versionString: String
    /// Shown in Xcode.
    public var license: String
    /// A classifier's `classify` op, appended after the program's last op; nil for other models.
    public var classifier: MILClassifier?

    /// A description of the interface and metadata.
    public init(inputs: [FeatureDescription], outputs: [FeatureDescription], metadata: [(String, String)] = [],
                shortDescription: String = "", author: String = "", license: String = "", versionString: String = "") {
        self.inputs = inputs
        self.outputs = outputs
        self.metadata = metadata
        self.shortDescription = shortDescription
        self.author = author
        self.license = license
        self.versionString = versionString
    }
}

/// One function of a model: its program and its interface (a multifunction model has one per static shape).
public struct MILFunction {
    /// The function's name (`main` for a single-function model).
    public var name: String
    /// Its program.
    public var program: MILProgram
    /// Its inputs as features (same names and order as the program's inputs).
    public var inputs: [FeatureDescription]
    /// Its block outputs as features.
    public var outputs: [FeatureDescription]

    /// A function `name` running `program`.
    public init(name: String, program: MILProgram, inputs: [FeatureDescription], outputs: [FeatureDescription]) {
        self.name = name
        self.program = program
        self.inputs = inputs
        self.outputs = outputs
    }
}

/// A serialized program: the `Model` protobuf bytes and weight.bin's blobs.
public struct MILSerialized {
    /// model.mlmodel.
    public var model: [UInt8]
    /// weight.bin, written by the package writer.
    public var blobs: BlobStorage
    /// Op types and output names as written (every function's, in order), for the read-back check.
    public var operations: [(type: String, outputs: [String])]
}

/// Writes a verified program. Storage is decided here, last: constants of at least `blobThreshold` elements of a
/// type weight.bin holds at the target go to blobs (identical blobs stored once), the rest inline; `constexpr_*`
/// parameters are attributes before iOS18 and inputs bound in place from iOS18 (as Core ML's own serializer writes
/// them). Ops removed by passes were never given storage, so nothing they held is written.
public enum MILSerializer {
    /// Consts with at least this many elements go to weight.bin (coremltools' threshold).
    public static let blobThreshold = 10

    /// Serializes `program` with `description` (one function, `main`).
    public static func serialize(_ program: MILProgram, description: MILModelDescription) -> MILSerialized {
        serialize(functions: [MILFunction(name: "main", program: program, inputs: description.inputs, outputs: description.outputs)],
                  description: description, defaultFunction: nil)
    }

    /// Serializes several functions into one model (iOS18's multifunction models, Model.proto `functions` and
    /// `defaultFunctionName` when `defaultFunction` is given); their constants share one weight.bin, where identical
    /// blobs are stored once (as coremltools' `save_multifunction` deduplicates constants across functions).
    public static func serialize(functions: [MILFunction], description: MILModelDescription, defaultFunction: String?) -> MILSerialized {
        let blobs = BlobStorage()
        let target = functions[0].program.target
        var encodedFunctions: [EncodedFunction] = []
        var written: [(type: String, outputs: [String])] = []
        for function in functions {
            let program = function.program
            let encoded = program.operations.map { encode($0, target: target, blobs: blobs) }
            // Ops in order, each followed by the ops of its nested blocks (the read-back check walks them so).
            func list(_ ops: [EncodedOperation]) {
                for op in ops {
                    written.append((op.type, op.outputs.map(\.name)))
                    for b in op.blocks { list(b.operations) }
                }
            }
            list(encoded)
            if let c = description.classifier { written.append(("classify", [c.labelName, c.probabilitiesName])) }
            encodedFunctions.append(EncodedFunction(name: function.name, inputs: function.inputs, outputs: function.outputs,
                                                    operations: encoded,
                                                    blockOutputs: description.classifier?.blockOutputs(program.outputs) ?? program.outputs))
        }
        let encoder = MILEncoder(specificationVersion: target.specificationVersion, opset: target.opset,
                                 functions: encodedFunctions, defaultFunction: defaultFunction, metadata: description.metadata,
                                 shortDescription: description.shortDescription, author: description.author,
                                 license: description.license, versionString: description.versionString,
                                 classifier: description.classifier)
        return MILSerialized(model: encoder.encode(), blobs: blobs, operations: written)
    }

    /// One op as it is written, with its nested blocks (MIL.proto `Operation.blocks`: inputs, outputs by name,
    /// operations).
    static func encode(_ op: MILOperation, target: DeploymentTarget, blobs: BlobStorage) -> EncodedOperation {
        var attributes: [(String, MILValue)] = [("name", .immediate(.scalar(op.name)))]
        var inputs: [(String, [MILBinding])] = []
        if op.type == "const", let value = op.value {
            attributes.append(("val", storage(value, target: target, blobs: blobs)))
        }
        let paramsAsAttributes = op.type.hasPrefix("constexpr_") && target < .iOS18
        for (param, arguments) in op.inputs {
            if paramsAsAttributes, arguments.count == 1, case .value(let c) = arguments[0] {
                attributes.append((param, storage(c, target: target, blobs: blobs)))
                continue
            }
            inputs.append((param, arguments.map { a -> MILBinding in
                switch a {
                case .variable(let n): return .name(n)
                case .value(let c): return .value(storage(c, target: target, blobs: blobs))
                }
            }))
        }
        let blocks = op.blocks.map { b in
            EncodedBlock(inputs: b.inputs, operations: b.operations.map { encode($0, target: target, blobs: blobs) }, outputs: b.outputs)
        }
        return EncodedOperation(type: op.type, inputs: inputs, outputs: op.outputs, attributes: attributes, blocks: blocks)
    }

    /// How a constant is stored: weight.bin when large and of a type blob storage takes at this target.
    static func storage(_ c: MILConst, target: DeploymentTarget, blobs: BlobStorage) -> MILValue {
        guard c.type.count >= blobThreshold, c.type.dtype.blobType != nil else { return .immediate(immediateForm(c)) }
        switch c.type.dtype {
        case .fp16, .fp32, .int8, .uint8: break
        case .int4, .uint4, .uint1, .uint2, .uint3, .uint6, .int16, .uint16, .int32:
            guard target >= .iOS18 else { return .immediate(immediateForm(c)) }
        default: return .immediate(immediateForm(c))
        }
        let bytes: ByteView
        switch c.data {
        case .bytes(let view): bytes = view
        case .floats(let values): bytes = LittleEndian.bytes(of: values)
        case .ints(let values): bytes = LittleEndian.bytes(of: values)
        case .bools, .strings: return .immediate(c)
        }
        return .blob(c.type, offset: blobs.add(c.type.dtype, bytes, elements: c.type.count))
    }

    /// Inline values in the field MIL reads for their type: fp32 in `floats`, int32 in `ints`, bool in `bools`;
    /// fp16, 8-bit and sub-byte types stay packed in `bytes` (coremltools' milproto serializer does the same).
    static func immediateForm(_ c: MILConst) -> MILConst {
        guard case .bytes(let view) = c.data else { return c }
        let n = c.type.count
        switch c.type.dtype {
        case .fp32:
            return MILConst(c.type, .floats((0..<n).map { view.bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }))
        case .int32:
            return MILConst(c.type, .ints((0..<n).map { view.bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self) }))
        case .bool:
            return MILConst(c.type, .bools((0..<n).map { view.bytes[$0] != 0 }))
        default:
            return c
        }
    }
}
