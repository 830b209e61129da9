import MIL

/// A Core ML `Model` message as read from a `.mlpackage` (any writer): the specification version, the interface
/// and metadata an app sees, and the ML Program. Plain values: the protobuf-c structures are freed once decoded.
public struct CoreMLModelSpec: Sendable {
    /// `Model.specificationVersion` (6 = iOS15 … 9 = iOS18).
    public var specificationVersion: Int
    /// `Model.isUpdatable`.
    public var isUpdatable: Bool
    /// What the model is: `mlProgram`, or the name of another model type (`neuralNetwork`, `pipeline`…).
    public var modelType: String
    /// The inputs an app feeds.
    public var inputs: [CoreMLFeature]
    /// The outputs it reads.
    public var outputs: [CoreMLFeature]
    /// Stateful models' states (iOS18).
    public var states: [CoreMLFeature]
    /// A multifunction model's functions as the description lists them.
    public var functions: [CoreMLFunctionDescription]
    /// The function an app gets by default (multifunction models).
    public var defaultFunctionName: String
    /// Author, license, description, version and user-defined entries.
    public var metadata: CoreMLMetadata
    /// The ML Program, when the model is one.
    public var program: MILSpecProgram?
    /// A classifier's label output (`ModelDescription.predictedFeatureName`); empty for other models.
    public var predictedFeatureName = ""
    /// A classifier's probabilities output (`predictedProbabilitiesName`); empty when none.
    public var predictedProbabilitiesName = ""
}

/// `Model.description.metadata`.
public struct CoreMLMetadata: Sendable {
    /// Shown in Xcode as the model's description.
    public var shortDescription = ""
    /// The model's version string.
    public var versionString = ""
    /// The model's author.
    public var author = ""
    /// The model's license.
    public var license = ""
    /// User-defined entries, in file order.
    public var userDefined: [(key: String, value: String)] = []
}

/// One feature of the interface.
public struct CoreMLFeature: Sendable {
    /// The feature's name (what an app passes or reads).
    public var name: String
    /// Its description (Xcode shows it).
    public var shortDescription: String
    /// Its type.
    public var type: CoreMLFeatureType
    /// Whether an app may leave it out.
    public var isOptional: Bool
}

/// A multifunction model's function as `ModelDescription.functions` describes it.
public struct CoreMLFunctionDescription: Sendable {
    /// The function's name.
    public var name: String
    /// Its inputs.
    public var inputs: [CoreMLFeature]
    /// Its outputs.
    public var outputs: [CoreMLFeature]
    /// Its states.
    public var states: [CoreMLFeature]
}

/// A feature's type (`FeatureType`).
public enum CoreMLFeatureType: Sendable, CustomStringConvertible {
    /// An `MLMultiArray`: element type (`fp32`, `fp16`, `fp64`, `int32`, `int8`), default shape, and how the
    /// shape may vary (`enumerated …`, `range …`), nil for a fixed shape.
    case multiArray(dtype: String, shape: [Int], flexibility: String?)
    /// A `CVPixelBuffer`: size, colour space, and how the size may vary.
    case image(width: Int, height: Int, colorSpace: String, flexibility: String?)
    case int64, double, string, dictionary, sequence
    /// A state (iOS18): the array it holds.
    case state(dtype: String, shape: [Int])
    /// No type, or one this reader does not know.
    case unknown

    /// The kind, as JSON names it (`multiArray`, `image`, …).
    public var kind: String {
        switch self {
        case .multiArray: return "multiArray"
        case .image: return "image"
        case .int64: return "int64"
        case .double: return "double"
        case .string: return "string"
        case .dictionary: return "dictionary"
        case .sequence: return "sequence"
        case .state: return "state"
        case .unknown: return "unknown"
        }
    }

    /// `fp32[1, 3, 224, 224]`, `image 224×224 RGB`, `state fp16[1, 8]`, `int64`…
    public var description: String {
        switch self {
        case .multiArray(let dtype, let shape, let flexibility):
            // Outputs whose shape is only known at run time are written without one.
            return (shape.isEmpty ? "\(dtype) (shape not given)" : "\(dtype)\(shape)") + (flexibility.map { " (\($0))" } ?? "")
        case .image(let w, let h, let space, let flexibility):
            return "image \(w)×\(h) \(space)" + (flexibility.map { " (\($0))" } ?? "")
        case .state(let dtype, let shape): return "state \(dtype)\(shape)"
        default: return kind
        }
    }
}

/// `MILSpec.Program`.
public struct MILSpecProgram: Sendable {
    /// `Program.version` (1).
    public var version: Int
    /// The functions, in file order.
    public var functions: [MILSpecFunction]
}

/// `MILSpec.Function`: typed inputs, the opset, and one block per specialization (keyed by opset).
public struct MILSpecFunction: Sendable {
    /// The function's name (`main`).
    public var name: String
    /// Its typed inputs.
    public var inputs: [MILSpecNamed]
    /// Its opset (`CoreML5` = iOS15 … `CoreML8` = iOS18).
    public var opset: String
    /// Its blocks, keyed by the opset they specialise for.
    public var blocks: [(opset: String, block: MILSpecBlock)]
}

/// `MILSpec.Block`: inputs (of nested blocks), outputs by name, operations in order.
public struct MILSpecBlock: Sendable {
    /// Inputs (nested blocks' loop variables; empty for a function's block).
    public var inputs: [MILSpecNamed]
    /// The block's outputs, by variable name.
    public var outputs: [String]
    /// The operations, in order.
    public var operations: [MILSpecOperation]
}

/// `MILSpec.Operation`.
public struct MILSpecOperation: Sendable {
    /// The MIL op type (`conv`, `const`…).
    public var type: String
    /// Parameters, each bound to its arguments.
    public var inputs: [(name: String, arguments: [MILSpecBinding])]
    /// The variables it defines.
    public var outputs: [MILSpecNamed]
    /// Attributes (`name`; a `const`'s `val`; `constexpr_*` parameters before iOS18).
    public var attributes: [(name: String, value: MILSpecValue)]
    /// Nested blocks (`cond`, `while_loop`…).
    public var blocks: [MILSpecBlock]

    /// The `name` attribute, when it is a string.
    public var name: String? {
        guard let v = attributes.first(where: { $0.name == "name" })?.value,
              case .immediate(.strings(let s)) = v.storage, s.count == 1 else { return nil }
        return s[0]
    }
}

/// One argument: a variable by name, or a value in place.
public enum MILSpecBinding: Sendable {
    case name(String)
    case value(MILSpecValue)
}

/// A name with its type (function inputs, op outputs).
public struct MILSpecNamed: Sendable {
    /// The variable's name.
    public var name: String
    /// Its type.
    public var type: MILSpecType
}

/// `MILSpec.ValueType`.
public indirect enum MILSpecType: Sendable, CustomStringConvertible {
    /// A tensor: `MILSpec.DataType` number and dims (nil for an unknown dim).
    case tensor(dataType: Int, dims: [Int?])
    case list(MILSpecType?)
    case tuple([MILSpecType])
    case dictionary
    case state(MILSpecType?)
    /// No type given.
    case none

    /// The MIL tensor type, when mlpkg's `MILTensorType` can hold it (a known element type, a static shape of at
    /// most 2^53 elements: counts read from a file must not overflow).
    public var tensorType: MILTensorType? {
        guard case .tensor(let dt, let dims) = self, let dtype = MILDataType(rawValue: dt) else { return nil }
        var shape: [Int] = []
        var count = 1
        for d in dims {
            // A dim known only at run time (a flexible input's) is MIL's unknown dim.
            guard let d else { shape.append(MILTensorType.unknownDim); continue }
            guard d <= 1 << 40 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= 1 << 53 else { return nil }
            count = product
            shape.append(d)
        }
        return MILTensorType(dtype, shape)
    }

    /// `fp16[1, ?, 64]`, `list<fp32[4]>`, `state<fp16[1, 8]>`…
    public var description: String {
        switch self {
        case .tensor(let dt, let dims):
            return MILSpecType.dataTypeName(dt) + "[" + dims.map { $0.map(String.init) ?? "?" }.joined(separator: ", ") + "]"
        case .list(let t): return "list<\(t?.description ?? "?")>"
        case .tuple(let ts): return "tuple<" + ts.map(\.description).joined(separator: ", ") + ">"
        case .dictionary: return "dictionary"
        case .state(let t): return "state<\(t?.description ?? "?")>"
        case .none: return "(no type)"
        }
    }

    /// The name of a `MILSpec.DataType` number (`fp16`, `bf16`, `uint32`…; `type N` for an unknown one).
    public static func dataTypeName(_ dt: Int) -> String {
        if let t = MILDataType(rawValue: dt) { return t.description }
        switch dt {
        case 12: return "fp64"
        case 13: return "bf16"
        case 33: return "uint32"
        case 34: return "uint64"
        case 40: return "fp8e4m3fn"
        case 41: return "fp8e5m2"
        default: return "type \(dt)"
        }
    }
}

/// `MILSpec.Value`: a type and its data, in place or in a blob file.
public struct MILSpecValue: Sendable {
    /// Where the data is.
    public enum Storage: Sendable {
        case immediate(MILSpecTensorData)
        /// A blob: the file (`@model_path/weights/weight.bin`) and the offset of its metadata record.
        case blob(file: String, offset: Int)
        case none
    }
    /// The value's type.
    public var type: MILSpecType
    /// Where its data is.
    public var storage: Storage
}

/// `MILSpec.TensorValue`'s storage forms.
public enum MILSpecTensorData: Sendable {
    case floats([Float])
    case ints([Int32])
    case bools([Bool])
    case strings([String])
    case longInts([Int64])
    case doubles([Double])
    case bytes([UInt8])
    case empty

    /// Elements stored (bytes: the byte count).
    var count: Int {
        switch self {
        case .floats(let v): return v.count
        case .ints(let v): return v.count
        case .bools(let v): return v.count
        case .strings(let v): return v.count
        case .longInts(let v): return v.count
        case .doubles(let v): return v.count
        case .bytes(let v): return v.count
        case .empty: return 0
        }
    }

    /// The storage form's name, for messages.
    var form: String {
        switch self {
        case .floats: return "floats"
        case .ints: return "ints"
        case .bools: return "bools"
        case .strings: return "strings"
        case .longInts: return "longInts"
        case .doubles: return "doubles"
        case .bytes: return "bytes"
        case .empty: return "nothing"
        }
    }
}
