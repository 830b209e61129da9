import CoreMLProto
import CProtobufC

/// Decodes a `model.mlmodel` with the C code protoc-c generated from proto/coreml.proto into `CoreMLModelSpec`.
/// The nesting of blocks and types is bounded first (`ProtoNesting`): libprotobuf-c recurses once per nested
/// message with no limit, so a hostile file could otherwise overflow the stack inside the C library.
public enum CoreMLModelDecoder {
    /// Why a model does not decode.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// What is wrong, naming the byte or the limit.
        public var message: String
        /// The message.
        public var description: String { message }
    }

    /// Deepest message nesting accepted (ops inside blocks inside ops… and types inside types); real programs
    /// stay far below it.
    public static let maxNesting = 200

    /// The model in `bytes`.
    public static func decode(_ bytes: [UInt8]) throws(Failure) -> CoreMLModelSpec {
        if let problem = ProtoNesting.check(bytes, limit: maxNesting) { throw Failure(message: problem) }
        let decoded = bytes.withUnsafeBufferPointer { coreml__model__unpack(nil, $0.count, $0.baseAddress) }
        guard let model = decoded else { throw Failure(message: "does not decode as a Core ML Model message (protobuf)") }
        defer { coreml__model__free_unpacked(model, nil) }
        let m = model.pointee
        let description = m.description?.pointee
        var spec = CoreMLModelSpec(
            specificationVersion: Int(m.specificationversion), isUpdatable: m.isupdatable != 0,
            modelType: m.mlprogram != nil ? "mlProgram" : modelType(m.base), inputs: features(description?.input, description?.n_input),
            outputs: features(description?.output, description?.n_output), states: features(description?.state, description?.n_state),
            functions: [], defaultFunctionName: string(description?.defaultfunctionname), metadata: CoreMLMetadata(), program: nil)
        if let d = description {
            spec.predictedFeatureName = string(d.predictedfeaturename)
            spec.predictedProbabilitiesName = string(d.predictedprobabilitiesname)
            spec.functions = messages(d.functions, d.n_functions).map { f in
                CoreMLFunctionDescription(name: string(f.name), inputs: features(f.input, f.n_input),
                                          outputs: features(f.output, f.n_output), states: features(f.state, f.n_state))
            }
            if let meta = d.metadata?.pointee {
                spec.metadata = CoreMLMetadata(shortDescription: string(meta.shortdescription), versionString: string(meta.versionstring),
                                               author: string(meta.author), license: string(meta.license),
                                               userDefined: messages(meta.userdefined, meta.n_userdefined).map { (string($0.key), string($0.value)) })
            }
        }
        if let p = m.mlprogram?.pointee {
            spec.program = MILSpecProgram(version: Int(p.version), functions: messages(p.functions, p.n_functions).map { entry in
                let f = entry.value?.pointee
                return MILSpecFunction(name: string(entry.key), inputs: named(f?.inputs, f?.n_inputs ?? 0), opset: string(f?.opset),
                                       blocks: f.map { f in messages(f.block_specializations, f.n_block_specializations).map {
                                           (string($0.key), block($0.value))
                                       } } ?? [])
            })
        }
        return spec
    }

    /// The model type a `Model` holds other than an ML Program, from its unknown fields (`Model.Type`'s numbers).
    static func modelType(_ base: ProtobufCMessage) -> String {
        let names: [UInt32: String] = [
            200: "pipelineClassifier", 201: "pipelineRegressor", 202: "pipeline", 300: "glmRegressor",
            301: "supportVectorRegressor", 302: "treeEnsembleRegressor", 303: "neuralNetworkRegressor",
            304: "bayesianProbitRegressor", 400: "glmClassifier", 401: "supportVectorClassifier",
            402: "treeEnsembleClassifier", 403: "neuralNetworkClassifier", 404: "kNearestNeighborsClassifier",
            500: "neuralNetwork", 501: "itemSimilarityRecommender", 555: "customModel", 556: "linkedModel",
            560: "classConfidenceThresholding", 600: "oneHotEncoder", 601: "imputer", 602: "featureVectorizer",
            603: "dictVectorizer", 604: "scaler", 606: "categoricalMapping", 607: "normalizer",
            609: "arrayFeatureExtractor", 610: "nonMaximumSuppression", 900: "identity", 2000: "textClassifier",
            2001: "wordTagger", 2002: "visionFeaturePrint", 2003: "soundAnalysisPreprocessing", 2004: "gazetteer",
            2005: "wordEmbedding", 2006: "audioFeaturePrint", 3000: "serializedModel",
        ]
        for i in 0..<Int(base.n_unknown_fields) {
            let tag = base.unknown_fields[i].tag
            if let name = names[tag] { return name }
            if tag >= 200 { return "model type \(tag)" }
        }
        return "none"
    }

    // MARK: - protobuf-c structures → values

    static func string(_ p: UnsafeMutablePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }

    static func messages<T>(_ p: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ n: Int) -> [T] {
        guard let p else { return [] }
        return (0..<n).compactMap { p[$0]?.pointee }
    }

    static func features(_ p: UnsafeMutablePointer<UnsafeMutablePointer<Coreml__FeatureDescription>?>?, _ n: Int?) -> [CoreMLFeature] {
        messages(p, n ?? 0).map { f in
            CoreMLFeature(name: string(f.name), shortDescription: string(f.shortdescription),
                          type: f.type.map { featureType($0.pointee) } ?? .unknown, isOptional: f.type?.pointee.isoptional ?? 0 != 0)
        }
    }

    static func arrayDataType(_ t: Coreml__ArrayFeatureType__ArrayDataType) -> String {
        switch t.rawValue {
        case 65568: return "fp32"
        case 65552: return "fp16"
        case 65600: return "fp64"
        case 131104: return "int32"
        case 131080: return "int8"
        default: return "type \(t.rawValue)"
        }
    }

    static func featureType(_ t: Coreml__FeatureType) -> CoreMLFeatureType {
        switch t.type_case {
        case COREML__FEATURE_TYPE__TYPE_MULTI_ARRAY_TYPE:
            guard let a = t.multiarraytype?.pointee else { return .unknown }
            return .multiArray(dtype: arrayDataType(a.datatype), shape: ints(a.shape, a.n_shape), flexibility: flexibility(a))
        case COREML__FEATURE_TYPE__TYPE_IMAGE_TYPE:
            guard let i = t.imagetype?.pointee else { return .unknown }
            let space: String
            switch i.colorspace.rawValue {
            case 10: space = "grayscale"
            case 20: space = "RGB"
            case 30: space = "BGR"
            case 40: space = "grayscale fp16"
            default: space = "colour space \(i.colorspace.rawValue)"
            }
            var flexible: String?
            switch i.size_flexibility_case {
            case COREML__IMAGE_FEATURE_TYPE__SIZE_FLEXIBILITY_ENUMERATED_SIZES:
                flexible = "enumerated sizes: " + messages(i.enumeratedsizes?.pointee.sizes, i.enumeratedsizes?.pointee.n_sizes ?? 0)
                    .map { "\($0.width)×\($0.height)" }.joined(separator: " | ")
            case COREML__IMAGE_FEATURE_TYPE__SIZE_FLEXIBILITY_IMAGE_SIZE_RANGE:
                let r = i.imagesizerange?.pointee
                flexible = "size range: width \(range(r?.widthrange?.pointee)), height \(range(r?.heightrange?.pointee))"
            default: flexible = nil
            }
            return .image(width: Int(i.width), height: Int(i.height), colorSpace: space, flexibility: flexible)
        case COREML__FEATURE_TYPE__TYPE_INT64_TYPE: return .int64
        case COREML__FEATURE_TYPE__TYPE_DOUBLE_TYPE: return .double
        case COREML__FEATURE_TYPE__TYPE_STRING_TYPE: return .string
        case COREML__FEATURE_TYPE__TYPE_DICTIONARY_TYPE: return .dictionary
        case COREML__FEATURE_TYPE__TYPE_SEQUENCE_TYPE: return .sequence
        case COREML__FEATURE_TYPE__TYPE_STATE_TYPE:
            guard let a = t.statetype?.pointee.arraytype?.pointee else { return .unknown }
            return .state(dtype: arrayDataType(a.datatype), shape: ints(a.shape, a.n_shape))
        default: return .unknown
        }
    }

    static func ints(_ p: UnsafeMutablePointer<Int64>?, _ n: Int) -> [Int] {
        guard let p else { return [] }
        return (0..<n).map { Int(p[$0]) }
    }

    static func range(_ r: Coreml__SizeRange?) -> String {
        guard let r else { return "?" }
        return "\(r.lowerbound)…" + (r.upperbound < 0 ? "∞" : String(r.upperbound))
    }

    static func flexibility(_ a: Coreml__ArrayFeatureType) -> String? {
        switch a.shape_flexibility_case {
        case COREML__ARRAY_FEATURE_TYPE__SHAPE_FLEXIBILITY_ENUMERATED_SHAPES:
            return "enumerated shapes: " + messages(a.enumeratedshapes?.pointee.shapes, a.enumeratedshapes?.pointee.n_shapes ?? 0)
                .map { "\(ints($0.shape, $0.n_shape))" }.joined(separator: " | ")
        case COREML__ARRAY_FEATURE_TYPE__SHAPE_FLEXIBILITY_SHAPE_RANGE:
            return "shape range: [" + messages(a.shaperange?.pointee.sizeranges, a.shaperange?.pointee.n_sizeranges ?? 0)
                .map { range($0) }.joined(separator: ", ") + "]"
        default:
            return nil
        }
    }

    static func named(_ p: UnsafeMutablePointer<UnsafeMutablePointer<Coreml__NamedValueType>?>?, _ n: Int) -> [MILSpecNamed] {
        messages(p, n).map { MILSpecNamed(name: string($0.name), type: valueType($0.type)) }
    }

    static func valueType(_ p: UnsafeMutablePointer<Coreml__ValueType>?) -> MILSpecType {
        guard let t = p?.pointee else { return .none }
        switch t.type_case {
        case COREML__VALUE_TYPE__TYPE_TENSOR_TYPE:
            guard let tt = t.tensortype?.pointee else { return .none }
            let dims: [Int?] = messages(tt.dimensions, tt.n_dimensions).map { d in
                guard d.dimension_case == COREML__DIMENSION__DIMENSION_CONSTANT, let c = d.constant?.pointee,
                      c.size <= UInt64(Int.max) else { return nil }
                return Int(c.size)
            }
            // A rank without dims (rank given, dims left out) is a tensor of unknown dims.
            let padded = dims.isEmpty && tt.rank > 0 && tt.rank <= 64 ? [Int?](repeating: nil, count: Int(tt.rank)) : dims
            return .tensor(dataType: Int(tt.datatype.rawValue), dims: padded)
        case COREML__VALUE_TYPE__TYPE_LIST_TYPE:
            return .list(t.listtype?.pointee.type.map { valueType($0) })
        case COREML__VALUE_TYPE__TYPE_TUPLE_TYPE:
            guard let tuple = t.tupletype?.pointee, let types = tuple.types else { return .tuple([]) }
            return .tuple((0..<tuple.n_types).map { valueType(types[$0]) })
        case COREML__VALUE_TYPE__TYPE_DICTIONARY_TYPE:
            return .dictionary
        case COREML__VALUE_TYPE__TYPE_STATE_TYPE:
            return .state(t.statetype?.pointee.wrappedtype.map { valueType($0) })
        default:
            return .none
        }
    }

    static func value(_ p: UnsafeMutablePointer<Coreml__Value>?) -> MILSpecValue {
        guard let v = p?.pointee else { return MILSpecValue(type: .none, storage: .none) }
        let type = valueType(v.type)
        switch v.value_case {
        case COREML__VALUE__VALUE_BLOB_FILE_VALUE:
            guard let b = v.blobfilevalue?.pointee else { return MILSpecValue(type: type, storage: .none) }
            return MILSpecValue(type: type, storage: .blob(file: string(b.filename), offset: Int(clamping: b.offset)))
        case COREML__VALUE__VALUE_IMMEDIATE_VALUE:
            guard let t = v.immediatevalue?.pointee.tensor?.pointee else { return MILSpecValue(type: type, storage: .immediate(.empty)) }
            return MILSpecValue(type: type, storage: .immediate(tensorData(t)))
        default:
            return MILSpecValue(type: type, storage: .none)
        }
    }

    static func tensorData(_ t: Coreml__TensorValue) -> MILSpecTensorData {
        func array<T>(_ p: UnsafeMutablePointer<T>?, _ n: Int) -> [T] {
            guard let p, n > 0 else { return [] }
            return Array(UnsafeBufferPointer(start: p, count: n))
        }
        switch t.value_case {
        case COREML__TENSOR_VALUE__VALUE_FLOATS: return .floats(array(t.floats?.pointee.values, t.floats?.pointee.n_values ?? 0))
        case COREML__TENSOR_VALUE__VALUE_INTS: return .ints(array(t.ints?.pointee.values, t.ints?.pointee.n_values ?? 0))
        case COREML__TENSOR_VALUE__VALUE_BOOLS:
            return .bools(array(t.bools?.pointee.values, t.bools?.pointee.n_values ?? 0).map { $0 != 0 })
        case COREML__TENSOR_VALUE__VALUE_STRINGS:
            return .strings(array(t.strings?.pointee.values, t.strings?.pointee.n_values ?? 0).map { string($0) })
        case COREML__TENSOR_VALUE__VALUE_LONG_INTS:
            return .longInts(array(t.longints?.pointee.values, t.longints?.pointee.n_values ?? 0))
        case COREML__TENSOR_VALUE__VALUE_DOUBLES:
            return .doubles(array(t.doubles?.pointee.values, t.doubles?.pointee.n_values ?? 0))
        case COREML__TENSOR_VALUE__VALUE_BYTES:
            guard let b = t.bytes?.pointee.values else { return .bytes([]) }
            return .bytes(array(b.data, b.len))
        default:
            return .empty
        }
    }

    static func block(_ p: UnsafeMutablePointer<Coreml__Block>?) -> MILSpecBlock {
        guard let b = p?.pointee else { return MILSpecBlock(inputs: [], outputs: [], operations: []) }
        let outputs: [String] = b.outputs.map { o in (0..<b.n_outputs).map { string(o[$0]) } } ?? []
        return MILSpecBlock(inputs: named(b.inputs, b.n_inputs), outputs: outputs,
                            operations: messages(b.operations, b.n_operations).map(operation))
    }

    static func operation(_ op: Coreml__Operation) -> MILSpecOperation {
        MILSpecOperation(
            type: string(op.type),
            inputs: messages(op.inputs, op.n_inputs).map { entry in
                (string(entry.key), messages(entry.value?.pointee.arguments, entry.value?.pointee.n_arguments ?? 0).map { b in
                    b.binding_case == COREML__ARGUMENT__BINDING__BINDING_VALUE ? .value(value(b.value)) : .name(string(b.name))
                })
            },
            outputs: named(op.outputs, op.n_outputs),
            attributes: messages(op.attributes, op.n_attributes).map { (string($0.key), value($0.value)) },
            blocks: (0..<op.n_blocks).map { block(op.blocks[$0]) })
    }
}

/// Bounds the message nesting of a Core ML model before protobuf-c parses it, following the schema's recursive
/// paths (blocks inside ops, types inside types); other fields are skipped as bytes. Also checks the framing of
/// what it enters (tags, varints, lengths inside their message).
enum ProtoNesting {
    /// The message kinds on recursive paths of proto/coreml.proto.
    enum Kind {
        case model, program, functionsEntry, function, blockEntry, block, operation, inputsEntry, argument, binding,
             attribute, value, named, valueType, tensorType, listType, tupleType, dictionaryType, stateType

        func child(_ field: UInt64) -> Kind? {
            switch (self, field) {
            case (.model, 502): return .program
            case (.program, 2): return .functionsEntry
            case (.program, 4): return .attribute
            case (.functionsEntry, 2): return .function
            case (.function, 1): return .named
            case (.function, 3): return .blockEntry
            case (.function, 4): return .attribute
            case (.blockEntry, 2): return .block
            case (.block, 1): return .named
            case (.block, 3): return .operation
            case (.block, 4): return .attribute
            case (.operation, 2): return .inputsEntry
            case (.operation, 3): return .named
            case (.operation, 4): return .block
            case (.operation, 5): return .attribute
            case (.inputsEntry, 2): return .argument
            case (.argument, 1): return .binding
            case (.binding, 2): return .value
            case (.attribute, 2): return .value
            case (.value, 2): return .valueType
            case (.named, 2): return .valueType
            case (.valueType, 1): return .tensorType
            case (.valueType, 2): return .listType
            case (.valueType, 3): return .tupleType
            case (.valueType, 4): return .dictionaryType
            case (.valueType, 5): return .stateType
            case (.tensorType, 4): return .attribute
            case (.listType, 1): return .valueType
            case (.tupleType, 1): return .valueType
            case (.dictionaryType, 1), (.dictionaryType, 2): return .valueType
            case (.stateType, 1): return .valueType
            default: return nil
            }
        }
    }

    /// Nil when the nesting stays within `limit`, else what is wrong.
    static func check(_ bytes: [UInt8], limit: Int) -> String? {
        bytes.withUnsafeBufferPointer { buffer in
            var stack: [(kind: Kind, end: Int)] = [(.model, buffer.count)]
            var i = 0
            func varint() -> UInt64? {
                var value: UInt64 = 0
                var shift: UInt64 = 0
                while i < stack.last!.end, shift < 64 {
                    let b = buffer[i]
                    i += 1
                    value |= UInt64(b & 0x7F) << shift
                    if b & 0x80 == 0 { return value }
                    shift += 7
                }
                return nil
            }
            while !stack.isEmpty {
                if i == stack.last!.end {
                    stack.removeLast()
                    continue
                }
                let at = i
                guard let key = varint() else { return "model.mlmodel is truncated or corrupt at byte \(at) (a field tag)" }
                let field = key >> 3
                switch key & 7 {
                case 0:
                    guard varint() != nil else { return "model.mlmodel is truncated or corrupt at byte \(at) (a varint)" }
                case 1, 5:
                    let n = key & 7 == 1 ? 8 : 4
                    guard stack.last!.end - i >= n else { return "model.mlmodel is truncated at byte \(at)" }
                    i += n
                case 2:
                    guard let length = varint(), length <= UInt64(stack.last!.end - i) else {
                        return "model.mlmodel is truncated or corrupt at byte \(at) (a length past the end of its message)"
                    }
                    let end = i + Int(length)
                    if let kind = stack.last!.kind.child(field) {
                        guard stack.count < limit else { return "model.mlmodel nests messages deeper than \(limit) levels (blocks or types)" }
                        stack.append((kind, end))
                    } else {
                        i = end
                    }
                default:
                    return "model.mlmodel is corrupt at byte \(at) (wire type \(key & 7))"
                }
            }
            return nil
        }
    }
}
