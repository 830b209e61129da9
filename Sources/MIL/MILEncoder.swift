import GraphIR

/// One feature of the model's interface (a function input or output) as Core ML describes it.
public struct FeatureDescription: Sendable {
    /// The feature's name (a MIL identifier).
    public var name: String
    /// Its type.
    public var type: MILTensorType
    /// Shown in Xcode.
    public var shortDescription: String
    /// The sizes an input's unknown dims take (FeatureTypes.proto `ArrayFeatureType.shapeRange`): one
    /// `lower...upper` per dim (a static dim is `n...n`), and the default shape written as `shape`. nil for static
    /// features; an output with unknown dims is written without a shape, as coremltools writes it.
    public var shapeRange: (defaultShape: [Int], bounds: [ClosedRange<Int>])?
    /// The shapes an input takes (`ArrayFeatureType.enumeratedShapes`); the first is written as `shape`, the default.
    public var enumeratedShapes: [[Int]]?
    /// How Core ML presents it to an app: a multi-array (the default), an image, or a classifier's label or
    /// probabilities (for which `type` is only the tensor behind it).
    public var kind: FeatureKind

    /// A feature `name` of `type`.
    public init(name: String, type: MILTensorType, shortDescription: String = "", kind: FeatureKind = .multiArray) {
        self.name = name
        self.type = type
        self.shortDescription = shortDescription
        self.kind = kind
    }
}

/// What an app sees of a feature: the `FeatureType` case Core ML's model description declares
/// (coremltools/proto FeatureTypes_pb2: multiArrayType = 5, imageType = 4, stringType = 3, int64Type = 1,
/// dictionaryType = 6).
public enum FeatureKind: Sendable, Equatable {
    /// An `MLMultiArray` of the feature's tensor type.
    case multiArray
    /// A `CVPixelBuffer` of the tensor's last two dims (width = last, height = the one before).
    case image(ImageColorSpace)
    /// A classifier's predicted label: a string, or an int64 when the labels are integers.
    case label(int64: Bool)
    /// A classifier's probabilities: a dictionary from label (string or int64) to probability.
    case probabilities(int64Keys: Bool)
}

/// `ImageFeatureType.ColorSpace` (coremltools/proto FeatureTypes_pb2), as raw values.
public enum ImageColorSpace: Int, Sendable, Equatable {
    /// One channel, 8 bits per pixel in the buffer; the program sees fp32.
    case grayscale = 10
    /// Three channels in R, G, B order.
    case rgb = 20
    /// Three channels in B, G, R order.
    case bgr = 30
    /// One channel, fp16 in the buffer and in the program (iOS16 and later).
    case grayscaleFloat16 = 40

    /// The channel count of the tensor behind the image.
    public var channels: Int { self == .rgb || self == .bgr ? 3 : 1 }
}

/// A classifier's `classify` op, appended by the serializer after the last op as coremltools' backend adds it
/// (coremltools/converters/mil/backend/mil/load.py `_add_classify_op`): it reads the fp32 probabilities and
/// defines the label and the dictionary, which replace the probabilities among the block outputs and come first.
public struct MILClassifier: Sendable {
    /// The labels, in the order of the probability vector's elements.
    public enum Labels: Sendable {
        /// String labels (`classLabel` is a string).
        case strings([String])
        /// Integer labels (`classLabel` is an int64).
        case int64s([Int64])

        /// How many labels there are.
        public var count: Int {
            switch self {
            case .strings(let s): return s.count
            case .int64s(let i): return i.count
            }
        }

        /// True for integer labels.
        public var isInt64: Bool {
            if case .int64s = self { return true }
            return false
        }
    }

    /// The fp32 variable holding the probabilities (a block output of the program).
    public var probabilities: String
    /// The labels (classify's `classes`, written as a list literal bound in place).
    public var labels: Labels
    /// The classify op's name.
    public var opName: String
    /// The predicted label's feature (`predictedFeatureName`).
    public var labelName: String
    /// The probabilities dictionary's feature (`predictedProbabilitiesName`).
    public var probabilitiesName: String

    /// A classifier reading `probabilities`.
    public init(probabilities: String, labels: Labels, opName: String, labelName: String, probabilitiesName: String) {
        self.probabilities = probabilities
        self.labels = labels
        self.opName = opName
        self.labelName = labelName
        self.probabilitiesName = probabilitiesName
    }

    /// The block outputs with the classifier's: label and dictionary first, the probabilities removed.
    public func blockOutputs(_ outputs: [String]) -> [String] {
        [labelName, probabilitiesName] + outputs.filter { $0 != probabilities }
    }
}

/// A value as a MIL protobuf `Value` holds it: inline, or a blob in weight.bin.
enum MILValue {
    case immediate(MILConst)
    case blob(MILTensorType, offset: Int)

    var type: MILTensorType {
        switch self {
        case .immediate(let c): return c.type
        case .blob(let t, _): return t
        }
    }
}

/// One argument binding of an op input as written: a named variable, or a value in place.
enum MILBinding {
    case name(String)
    case value(MILValue)
}

/// One MIL operation as it is written.
struct EncodedOperation {
    var type: String
    var inputs: [(String, [MILBinding])]
    var outputs: [MILVar]
    var attributes: [(String, MILValue)]
    var blocks: [EncodedBlock] = []
}

/// One nested block as it is written.
struct EncodedBlock {
    var inputs: [MILVar]
    var operations: [EncodedOperation]
    var outputs: [String]
}

/// One function as it is written.
struct EncodedFunction {
    var name: String
    var inputs: [FeatureDescription]
    var outputs: [FeatureDescription]
    var operations: [EncodedOperation]
    var blockOutputs: [String]
}

/// Writes Core ML's `Model` message holding an ML Program. Field numbers are Core ML's (proto/coreml.proto cites
/// them); maps are written as repeated entries in a fixed order, so the bytes are deterministic.
struct MILEncoder {
    var specificationVersion: Int
    var opset: String
    var functions: [EncodedFunction]
    /// Set for a multifunction model: the description lists `functions` and names the default (Model.proto
    /// ModelDescription functions = 20, defaultFunctionName = 21; no top-level input or output, as
    /// coremltools' `save_multifunction` writes it).
    var defaultFunction: String?
    var metadata: [(String, String)]
    var shortDescription: String
    var author: String
    var license: String
    var versionString: String
    /// A classifier's `classify` op, appended to every function's block; its two features are the prediction's.
    var classifier: MILClassifier? = nil
    static let weightFile = "@model_path/weights/weight.bin"

    func encode() -> [UInt8] {
        let p = ProtoBuilder()
        p.int32(1, Int32(specificationVersion))
        p.message(2) { d in
            if let defaultFunction {
                for function in functions {
                    d.message(20) { f in
                        f.string(1, function.name)
                        for input in function.inputs { f.message(2) { feature(input, into: $0) } }
                        for output in function.outputs { f.message(3) { feature(output, into: $0) } }
                    }
                }
                d.string(21, defaultFunction)
            } else {
                for f in functions[0].inputs { d.message(1) { feature(f, into: $0) } }
                for f in functions[0].outputs { d.message(10) { feature(f, into: $0) } }
            }
            if let classifier {
                d.string(11, classifier.labelName)
                d.string(12, classifier.probabilitiesName)
            }
            d.message(100) { m in
                m.string(1, shortDescription)
                m.string(2, versionString)
                m.string(3, author)
                m.string(4, license)
                for (k, v) in metadata {
                    m.message(100) { e in
                        e.string(1, k)
                        e.string(2, v)
                    }
                }
            }
        }
        p.message(502) { program in
            program.int64(1, 1)
            for encoded in functions {
                program.message(2) { entry in
                    entry.string(1, encoded.name)
                    entry.message(2) { function in
                        for f in encoded.inputs {
                            function.message(1) { named(f.name, f.type, into: $0) }
                        }
                        function.string(2, opset)
                        function.message(3) { spec in
                            spec.string(1, opset)
                            spec.message(2) { block in
                                block.repeatedStrings(2, encoded.blockOutputs)
                                for op in encoded.operations { block.message(3) { operation(op, into: $0) } }
                                if let classifier { block.message(3) { classify(classifier, into: $0) } }
                            }
                        }
                    }
                }
            }
        }
        return p.data
    }

    private func feature(_ f: FeatureDescription, into p: ProtoBuilder) {
        p.string(1, f.name)
        p.string(2, f.shortDescription)
        p.message(3) { type in
            switch f.kind {
            case .multiArray:
                type.message(5) { array in
                    // FeatureTypes.proto ArrayFeatureType: shape = 1, dataType = 2, shapeRange = 31 (SizeRange:
                    // lowerBound = 1, upperBound = 2).
                    if let shapes = f.enumeratedShapes {
                        array.packedVarints(1, shapes[0].map(Int64.init))
                    } else if let range = f.shapeRange {
                        array.packedVarints(1, range.defaultShape.map(Int64.init))
                    } else if f.type.isStatic {
                        array.packedVarints(1, f.type.shape.map(Int64.init))
                    }
                    array.int64(2, Int64(Self.arrayDataType(f.type.dtype)))
                    // enumeratedShapes = 21: EnumeratedShapes { repeated Shape shapes = 1 }, Shape { repeated int64 shape = 1 }.
                    if let shapes = f.enumeratedShapes {
                        array.message(21) { list in
                            for shape in shapes { list.message(1) { $0.packedVarints(1, shape.map(Int64.init)) } }
                        }
                    } else if let range = f.shapeRange {
                        array.message(31) { ranges in
                            for b in range.bounds {
                                ranges.message(1) { size in
                                    size.uint64(1, UInt64(b.lowerBound))
                                    size.int64(2, Int64(b.upperBound))
                                }
                            }
                        }
                    }
                }
            case .image(let colorSpace):
                type.message(4) { image in
                    image.int64(1, Int64(f.type.shape.last ?? 1))
                    image.int64(2, Int64(f.type.shape.dropLast().last ?? 1))
                    image.int64(3, Int64(colorSpace.rawValue))
                }
            case .label(let int64):
                type.message(int64 ? 1 : 3) { _ in }
            case .probabilities(let int64Keys):
                // DictionaryFeatureType: int64KeyType = 1, stringKeyType = 2.
                type.message(6) { dictionary in dictionary.message(int64Keys ? 1 : 2) { _ in } }
            }
        }
    }

    /// The classify op as coremltools writes it: `probabilities` by name, `classes` a list literal bound in place,
    /// outputs a scalar label and a dictionary from label to fp64 (coremltools/converters/mil/mil/ops/defs/iOS15/classify.py).
    private func classify(_ c: MILClassifier, into p: ProtoBuilder) {
        let key = c.labels.isInt64 ? MILDataType.int64.rawValue : MILDataType.string.rawValue
        p.string(1, "classify")
        p.message(2) { entry in
            entry.string(1, "probabilities")
            entry.message(2) { argument in argument.message(1) { $0.string(1, c.probabilities) } }
        }
        p.message(2) { entry in
            entry.string(1, "classes")
            entry.message(2) { argument in
                argument.message(1) { binding in
                    binding.message(2) { value in
                        value.message(2) { type in
                            type.message(2) { list in  // ValueType.listType
                                list.message(1) { scalarType($0, key) }
                                list.message(2) { dim in dim.message(1) { $0.uint64(1, UInt64(c.labels.count)) } }
                            }
                        }
                        value.message(3) { immediate in
                            immediate.message(3) { list in  // ImmediateValue.list: ListValue.values
                                func element(_ write: @escaping (ProtoBuilder) -> Void) {
                                    list.message(1) { v in
                                        v.message(2) { scalarType($0, key) }
                                        v.message(3) { $0.message(1) { write($0) } }
                                    }
                                }
                                switch c.labels {
                                case .strings(let labels):
                                    for l in labels { element { $0.message(4) { $0.bytes(1, Array(l.utf8)) } } }
                                case .int64s(let labels):
                                    for l in labels { element { $0.message(5) { $0.packedVarints(1, [l]) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.message(3) { out in
            out.string(1, c.labelName)
            out.message(2) { scalarType($0, key) }
        }
        p.message(3) { out in
            out.string(1, c.probabilitiesName)
            out.message(2) { type in
                type.message(4) { dictionary in  // ValueType.dictionaryType
                    dictionary.message(1) { scalarType($0, key) }
                    dictionary.message(2) { scalarType($0, 12) }  // MIL.proto DataType FLOAT64
                }
            }
        }
        p.message(5) { entry in
            entry.string(1, "name")
            entry.message(2) { value(.immediate(.scalar(c.opName)), into: $0) }
        }
    }

    /// A rank-0 tensor ValueType of MIL.proto's DataType `dtype`.
    private func scalarType(_ p: ProtoBuilder, _ dtype: Int) {
        p.message(1) { $0.int64(1, Int64(dtype)) }
    }

    /// Core ML's `ArrayFeatureType.ArrayDataType` for an interface dtype.
    static func arrayDataType(_ t: MILDataType) -> Int {
        switch t {
        case .fp16: return 65552
        case .int32: return 131104
        case .int8: return 131080
        default: return 65568  // FLOAT32
        }
    }

    private func named(_ name: String, _ type: MILTensorType, into p: ProtoBuilder) {
        p.string(1, name)
        p.message(2) { valueType($0, type) }
    }

    private func valueType(_ p: ProtoBuilder, _ t: MILTensorType) {
        p.message(1) { tensor in
            tensor.int64(1, Int64(t.dtype.rawValue))
            if t.rank > 0 { tensor.int64(2, Int64(t.rank)) }
            // MIL.proto Dimension: constant = 1 (size = 1), unknown = 2 (variadic = 1, false: an empty message).
            for d in t.shape {
                if d == MILTensorType.unknownDim {
                    tensor.message(3) { dim in dim.message(2) { _ in } }
                } else {
                    tensor.message(3) { dim in dim.message(1) { $0.uint64(1, UInt64(d)) } }
                }
            }
        }
    }

    private func operation(_ op: EncodedOperation, into p: ProtoBuilder) {
        p.string(1, op.type)
        for (name, bindings) in op.inputs {
            p.message(2) { entry in
                entry.string(1, name)
                entry.message(2) { argument in
                    for b in bindings {
                        argument.message(1) { binding in
                            switch b {
                            case .name(let n): binding.string(1, n)
                            case .value(let v): binding.message(2) { value(v, into: $0) }
                            }
                        }
                    }
                }
            }
        }
        for out in op.outputs { p.message(3) { named(out.name, out.type, into: $0) } }
        // MIL.proto Operation.blocks = 4: Block { inputs = 1 (NamedValueType), outputs = 2 (names), operations = 3 }.
        for b in op.blocks {
            p.message(4) { block in
                for v in b.inputs { block.message(1) { named(v.name, v.type, into: $0) } }
                block.repeatedStrings(2, b.outputs)
                for inner in b.operations { block.message(3) { operation(inner, into: $0) } }
            }
        }
        for (name, v) in op.attributes {
            p.message(5) { entry in
                entry.string(1, name)
                entry.message(2) { value(v, into: $0) }
            }
        }
    }

    private func value(_ v: MILValue, into p: ProtoBuilder) {
        p.message(2) { valueType($0, v.type) }
        switch v {
        case .blob(_, let offset):
            p.message(5) { file in
                file.string(1, Self.weightFile)
                file.uint64(2, UInt64(offset))
            }
        case .immediate(let c):
            p.message(3) { immediate in
                immediate.message(1) { tensor in
                    switch c.data {
                    case .floats(let values): tensor.message(1) { $0.packedFloats(1, values) }
                    case .ints(let values): tensor.message(2) { $0.packedVarints(1, values.map(Int64.init)) }
                    case .bools(let values): tensor.message(3) { $0.packedVarints(1, values.map { $0 ? 1 : 0 }) }
                    case .strings(let values): tensor.message(4) { $0.repeatedStrings(1, values) }
                    case .bytes(let view): tensor.message(7) { $0.bytes(1, view.array) }
                    }
                }
            }
        }
    }
}
