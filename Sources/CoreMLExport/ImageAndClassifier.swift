import Foundation
import GraphIR

/// An input an app feeds as an image (`--image-input NAME[=rgb|bgr|gray|gray-fp16] --scale S --bias …`). Core ML
/// turns the pixel buffer into a [1, C, H, W] tensor of 0…255 values; the program then computes
/// `x · scale + bias` as coremltools' `ct.ImageType(scale:, bias:)` does
/// (coremltools/converters/mil/backend/mil/passes/insert_image_preprocessing_op.py): a `mul` by a scalar when the
/// scale is not 1, then an `add` of the bias ([1, 3, 1, 1] for colour, a scalar for gray) when a bias is not 0,
/// both in the input's element type, before anything else reads the input.
public struct CoreMLImageInput: Sendable, Equatable {
    /// The input (ONNX name, Core ML name or its `--rename`d name).
    public var name: String
    /// RGB, BGR, GRAYSCALE (fp32 in the program) or GRAYSCALE_FLOAT16 (fp16 in the program, iOS16 and later).
    public var colorSpace: ImageColorSpace
    /// Multiplies every pixel value.
    public var scale: Float
    /// Added after the scale: one value for every channel, or three in R, G, B order (reordered to B, G, R for a
    /// BGR image, whose tensor holds the channels in that order).
    public var bias: [Float]

    /// An image input with no preprocessing unless `scale` or `bias` say so.
    public init(name: String, colorSpace: ImageColorSpace = .rgb, scale: Float = 1, bias: [Float] = []) {
        self.name = name
        self.colorSpace = colorSpace
        self.scale = scale
        self.bias = bias
    }

    /// The bias per tensor channel (empty when every value is 0: no `add`, as coremltools writes it).
    var channelBias: [Float] {
        guard bias.contains(where: { $0 != 0 }) else { return [] }
        if bias.count == 1 { return Array(repeating: bias[0], count: colorSpace.channels) }
        return colorSpace == .bgr ? bias.reversed() : bias
    }
}

/// Class labels for a classifier (`--class-labels [NAME=]FILE`): the probability vector named (the first output
/// when nil) becomes Core ML's `classify` op, with `classLabel` and `classLabel_probs` as the model's outputs.
public struct CoreMLClassLabels: Sendable {
    /// The output holding the probabilities (ONNX, Core ML or renamed name); nil: the model's first output.
    public var output: String?
    /// The labels, one per element of that output.
    public var labels: MILClassifier.Labels
    /// The file the labels came from (for messages).
    public var file: String

    /// Labels for `output` read from `file`.
    public init(output: String?, labels: MILClassifier.Labels, file: String) {
        self.output = output
        self.labels = labels
        self.file = file
    }

    /// Parses a labels file: one label a line (a final newline, `\r\n` line ends and a UTF-8 byte-order mark are
    /// fine); when every line is an integer the labels are int64. Empty lines and repeated labels are refused (labels
    /// are dictionary keys).
    public static func parse(_ text: String, file: String) throws(CoreMLInputFileError) -> MILClassifier.Labels {
        // A byte-order mark (Windows editors write one) is not part of the first label; "\r\n" is one Character in
        // Swift: split on it as on "\n".
        let text = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map(String.init)
        if lines.last == "" { lines.removeLast() }
        guard !lines.isEmpty else { throw CoreMLInputFileError(file: file, "no labels (one label a line)") }
        if let empty = lines.firstIndex(of: "") { throw CoreMLInputFileError(file: file, "line \(empty + 1) is empty (one label a line)") }
        var seen: [String: Int] = [:]
        for (i, l) in lines.enumerated() {
            if let first = seen[l] { throw CoreMLInputFileError(file: file, "label '\(l)' is on lines \(first + 1) and \(i + 1); labels must be unique") }
            seen[l] = i
        }
        let integers = lines.compactMap { Int64($0) }
        if integers.count == lines.count {
            guard Set(integers).count == integers.count else {
                throw CoreMLInputFileError(file: file, "integer labels must be unique (two lines spell the same number)")
            }
            return .int64s(integers)
        }
        return .strings(lines)
    }

    /// Reads and parses `file`.
    public static func read(file: String) throws(CoreMLInputFileError) -> MILClassifier.Labels {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CoreMLInputFileError(file: file, "cannot read the class labels file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw CoreMLInputFileError(file: file, "the class labels are not UTF-8 text") }
        return try parse(text, file: file)
    }
}

/// A file an option names is unreadable or malformed (exit 1: bad input, naming the file).
public struct CoreMLInputFileError: Error, CustomStringConvertible, Sendable {
    /// The file.
    public var file: String
    /// What is wrong with it.
    public var message: String
    /// An error about `file`.
    public init(file: String, _ message: String) {
        self.file = file
        self.message = message
    }
    /// `file: message`.
    public var description: String { "\(file): \(message)" }
}

/// Image inputs, image outputs and the classifier resolved against a prepared model: ONNX names, each checked
/// against its static type (shape [1, C, H, W] for images, a float vector as long as the labels for a classifier).
struct FeatureKindPlan {
    /// ONNX input name → its image options.
    var imageInputs: [String: CoreMLImageInput] = [:]
    /// ONNX output name → colour space (RGB for [1, 3, H, W], GRAYSCALE for [1, 1, H, W]).
    var imageOutputs: [String: ImageColorSpace] = [:]
    /// The ONNX output holding the probabilities, and the labels.
    var classifier: (output: String, labels: MILClassifier.Labels)?

    /// Resolves the options; `type` gives a value's static MIL type (nil when it is not known yet: the shape
    /// checks are then left to lowering, which refuses dynamic dims with advice).
    static func resolve(_ graph: Graph, _ options: CoreMLInterfaceOptions, type: (String) -> MILTensorType?)
        throws(CoreMLInterfaceError) -> FeatureKindPlan {
        var plan = FeatureKindPlan()
        let inputs = graph.runtimeInputs.map(\.name)
        let outputs = graph.outputs.map(\.name)
        func lookup(_ name: String, in names: [String]) -> String? {
            names.first { $0 == name } ?? names.first { MILBuilder.identifier($0) == name }
                ?? options.renames.first { $0.1 == name }.flatMap { r in names.first { $0 == r.0 || MILBuilder.identifier($0) == r.0 } }
        }
        func valid(_ names: [String], _ what: String) -> String {
            names.isEmpty ? "the model has no \(what)s" : "the model's \(what)s are " + names.map { "'\($0)'" }.joined(separator: ", ")
        }
        func imageShape(_ t: MILTensorType, channels: Int) -> Bool {
            t.rank == 4 && t.shape[0] == 1 && t.shape[1] == channels
        }
        for image in options.imageInputs {
            guard let onnx = lookup(image.name, in: inputs) else {
                throw CoreMLInterfaceError("--image-input: no input '\(image.name)'; \(valid(inputs, "input"))")
            }
            guard plan.imageInputs[onnx] == nil else { throw CoreMLInterfaceError("--image-input: input '\(onnx)' is given twice") }
            let channels = image.colorSpace.channels
            if image.bias.count != 1 && image.bias.count != channels && !image.bias.isEmpty {
                throw CoreMLInterfaceError("--bias: \(image.bias.count) values for the \(channels)-channel image input '\(onnx)'; give 1 or \(channels)")
            }
            if let t = type(onnx) {
                guard t.dtype.isFloat else {
                    throw CoreMLInterfaceError("--image-input: input '\(onnx)' holds \(t.dtype) values; an image input must be a float tensor")
                }
                guard imageShape(t, channels: channels) else {
                    throw CoreMLInterfaceError("--image-input: input '\(onnx)' has shape \(t.shape); a \(Self.name(image.colorSpace)) image is [1, \(channels), H, W]")
                }
            }
            plan.imageInputs[onnx] = image
        }
        for name in options.imageOutputs {
            guard let onnx = lookup(name, in: outputs) else {
                throw CoreMLInterfaceError("--image-output: no output '\(name)'; \(valid(outputs, "output"))")
            }
            guard plan.imageOutputs[onnx] == nil else { throw CoreMLInterfaceError("--image-output: output '\(onnx)' is given twice") }
            var space = ImageColorSpace.rgb
            if let t = type(onnx) {
                guard t.dtype.isFloat else {
                    throw CoreMLInterfaceError("--image-output: output '\(onnx)' holds \(t.dtype) values; an image output must be a float tensor")
                }
                guard imageShape(t, channels: 3) || imageShape(t, channels: 1) else {
                    throw CoreMLInterfaceError("--image-output: output '\(onnx)' has shape \(t.shape); an image output is [1, 3, H, W] (RGB) or [1, 1, H, W] (grayscale)")
                }
                space = t.shape[1] == 3 ? .rgb : .grayscale
            }
            plan.imageOutputs[onnx] = space
        }
        if let labels = options.classLabels {
            let onnx: String
            if let name = labels.output {
                guard let found = lookup(name, in: outputs) else {
                    throw CoreMLInterfaceError("--class-labels: no output '\(name)'; \(valid(outputs, "output"))")
                }
                onnx = found
            } else {
                guard let first = outputs.first else { throw CoreMLInterfaceError("--class-labels: the model has no outputs") }
                onnx = first
            }
            guard plan.imageOutputs[onnx] == nil else {
                throw CoreMLInterfaceError("--class-labels: output '\(onnx)' is also an --image-output")
            }
            if let t = type(onnx) {
                guard t.dtype.isFloat else {
                    throw CoreMLInterfaceError("--class-labels '\(labels.file)': output '\(onnx)' holds \(t.dtype) values; the probabilities must be floats")
                }
                guard t.count == labels.labels.count, t.shape.filter({ $0 != 1 }).count <= 1 else {
                    throw CoreMLInterfaceError("--class-labels '\(labels.file)': \(labels.labels.count) labels, but output '\(onnx)' has shape \(t.shape) "
                                               + "(\(t.count) values); give one label per element of a probability vector"
                                               + (outputs.count > 1 ? " (the model's outputs are \(outputs.map { "'\($0)'" }.joined(separator: ", ")); name one with --class-labels NAME=FILE)" : ""))
                }
            }
            plan.classifier = (onnx, labels.labels)
        }
        return plan
    }

    /// The spelling `--image-input` takes.
    static func name(_ space: ImageColorSpace) -> String {
        switch space {
        case .rgb: return "rgb"
        case .bgr: return "bgr"
        case .grayscale: return "gray"
        case .grayscaleFloat16: return "gray-fp16"
        }
    }

    /// Emits the image preprocessing on the input variable: `mul` by the scale (when not 1), then `add` of the
    /// bias (when not all 0), named `NAME__scaled__` and `NAME__biased__` as coremltools names them.
    static func preprocess(_ input: MILVar, _ image: CoreMLImageInput, builder: MILBuilder) -> MILVar {
        var v = input
        let dtype = input.type.dtype
        if image.scale != 1 {
            v = builder.op1("mul", name: input.name + "__scaled__", [("x", .v(v)), ("y", .c(.float(image.scale, dtype)))], output: v.type)
        }
        let bias = image.channelBias
        if !bias.isEmpty {
            let shape = image.colorSpace.channels == 3 ? [1, 3, 1, 1] : []
            let values = image.colorSpace.channels == 3 ? bias : [bias[0]]
            v = builder.op1("add", name: input.name + "__biased__", [("x", .v(v)), ("y", .c(.floats(values, dtype, shape: shape)))], output: v.type)
        }
        return v
    }
}
