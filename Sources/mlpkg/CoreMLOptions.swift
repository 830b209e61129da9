import ArgumentParser
import Audit
import Conversion
import CoreMLExport
import Foundation
import MLPackage
import Passes
import Profiles

enum ExportFormat: String, ExpressibleByArgument, CaseIterable {
    case onnx, coreml
}

enum ComputePrecision: String, ExpressibleByArgument, CaseIterable {
    case fp16, fp32
}

enum InterfaceDtype: String, ExpressibleByArgument, CaseIterable {
    case fp32, fp16
}

/// Options of a Core ML export, shared by `export --format coreml` and `convert -o X.mlpackage`.
struct CoreMLOptions: ParsableArguments {
    @Option(help: ArgumentHelp("iOS15…iOS18, macOS12…macOS15, watchOS8…watchOS11 or tvOS15…tvOS18 (default: the lowest target every stored weight encoding needs).",
                               valueName: "TARGET"))
    var deploymentTarget: String?

    @Option(help: "fp16 (default: the Neural Engine computes in fp16) or fp32.")
    var computePrecision: ComputePrecision = .fp16

    @Flag(help: "Write the MIL program as the lowerings emit it, without the MIL passes (clean-ups and fusions), for debugging.")
    var noOptimize = false

    @Option(help: ArgumentHelp("Element type of float inputs and outputs: fp32 (default, on every target) or fp16 (iOS16 and later; raises the default target to iOS16).",
                               valueName: "fp32|fp16"))
    var ioDtype: InterfaceDtype = .fp32

    @Option(help: ArgumentHelp("The model's author, shown in Xcode (default: none).", valueName: "text"))
    var author: String?

    @Option(help: ArgumentHelp("The model's license, shown in Xcode (default: none).", valueName: "text"))
    var license: String?

    @Option(name: .customLong("description"), help: ArgumentHelp("The model's description, shown in Xcode (default: the ONNX doc string).", valueName: "text"))
    var modelDescription: String?

    @Option(name: .customLong("version"), help: ArgumentHelp("The model's version string, shown in Xcode (default: the ONNX model_version).", valueName: "text"))
    var modelVersion: String?

    @Option(name: .customLong("input-description"), help: ArgumentHelp("Describe an input, shown in Xcode (repeatable).", valueName: "NAME=TEXT"))
    var inputDescriptions: [String] = []

    @Option(name: .customLong("output-description"), help: ArgumentHelp("Describe an output, shown in Xcode (repeatable).", valueName: "NAME=TEXT"))
    var outputDescriptions: [String] = []

    @Option(name: .customLong("rename"), help: ArgumentHelp("Rename an input or output (repeatable); NEW is a MIL identifier ([A-Za-z_][A-Za-z0-9_]*), unique among the features.",
                                                   valueName: "NAME=NEW"))
    var renames: [String] = []

    @Option(name: .customLong("image-input"), help: ArgumentHelp(
        "Declare that an input is an image, fed by the app as a pixel buffer (repeatable): rgb (default), bgr, gray, or gray-fp16 (GRAYSCALE_FLOAT16, iOS16 and later); its tensor must be [1, 3, H, W] ([1, 1, H, W] for gray).",
        valueName: "NAME[=rgb|bgr|gray|gray-fp16]"))
    var imageInputs: [String] = []

    @Option(parsing: .unconditional, help: ArgumentHelp("Multiply the image inputs' pixel values (0…255) by S before the model sees them (default 1).", valueName: "S"))
    var scale: Float?

    @Option(parsing: .unconditional, help: ArgumentHelp("Add to the image inputs' values after --scale: R,G,B (reordered for a bgr image) or one value for every channel (gray: one value).",
                               valueName: "R,G,B"))
    var bias: String?

    @Option(name: .customLong("image-output"), help: ArgumentHelp("Declare that an output is an image (repeatable): [1, 3, H, W] is RGB, [1, 1, H, W] grayscale.",
                                                          valueName: "NAME"))
    var imageOutputs: [String] = []

    @Option(name: .customLong("class-labels"), help: ArgumentHelp(
        "Make the model a classifier: one label a line (int64 labels when every line is an integer), one per element of the probability vector, which is the first output unless NAME= names another; the outputs become classLabel and classLabel_probs.",
        valueName: "[NAME=]FILE"))
    var classLabels: String?
    @Flag(help: "One function per enumerated shape (--input-shape NAME=1,128|1,256) in a multifunction model (iOS18), sharing the weights.")
    var functions = false

    @Option(help: ArgumentHelp("int8: quantize/dequantize pairs (iOS17) before every conv, linear and matmul input, with ranges from --calibration; layers whose quantization costs the outputs most stay fp16 until the output cosine against float activations is at least 0.999 (W8A8 with int8 weights).",
                               valueName: "int8"))
    var activations: ActivationFormat?

    enum ActivationFormat: String, ExpressibleByArgument {
        case int8
    }

    func validate() throws {
        if activations != nil {
            if let t = deploymentTarget.flatMap(DeploymentTarget.init(parsing:)), t < .iOS17 {
                throw ValidationError("--activations int8 needs --deployment-target iOS17 or later (quantize/dequantize are iOS17 ops), not \(t)")
            }
            if functions { throw ValidationError("--activations int8 and --functions exclude each other (calibration runs one program)") }
        }
        if functions, let t = deploymentTarget.flatMap(DeploymentTarget.init(parsing:)), t < .iOS18 {
            throw ValidationError("--functions needs --deployment-target iOS18 or later (multifunction models are Core ML 8), not \(t)")
        }
        if let t = deploymentTarget, DeploymentTarget(parsing: t) == nil {
            throw ValidationError("unknown --deployment-target '\(t)'; one of " + DeploymentTarget.names.map(\.0).joined(separator: ", "))
        }
        if ioDtype == .fp16, let t = deploymentTarget.flatMap(DeploymentTarget.init(parsing:)), t < .iOS16 {
            throw ValidationError("--io-dtype fp16 needs --deployment-target iOS16 or later (Core ML takes fp16 inputs and outputs from iOS16), not \(t)")
        }
        for r in renames {
            let (old, new) = try Self.pair(r, option: "--rename", value: "NAME=NEW")
            guard MILBuilder.isIdentifier(new) else {
                throw ValidationError("--rename \(old)=\(new): '\(new)' is not a MIL identifier (letters, digits and _, not starting with a digit)")
            }
        }
        for i in imageInputs { _ = try Self.imageInput(i) }
        if imageInputs.isEmpty && (scale != nil || bias != nil) {
            throw ValidationError("--scale and --bias apply to image inputs: give --image-input NAME")
        }
        if let scale, !scale.isFinite { throw ValidationError("--scale must be a finite number, not \(scale)") }
        _ = try biasValues()
        for o in imageOutputs where o.isEmpty { throw ValidationError("--image-output: expected an output's NAME") }
        if classLabels == "" { throw ValidationError("--class-labels: expected [NAME=]FILE") }
        for d in inputDescriptions { _ = try Self.pair(d, option: "--input-description", value: "NAME=TEXT") }
        for d in outputDescriptions { _ = try Self.pair(d, option: "--output-description", value: "NAME=TEXT") }
    }

    /// `NAME=VALUE` split at the first `=`; NAME must not be empty.
    static func pair(_ text: String, option: String, value: String) throws -> (String, String) {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
            throw ValidationError("\(option) '\(text)': expected \(value)")
        }
        return (String(text[..<eq]), String(text[text.index(after: eq)...]))
    }

    /// `NAME[=rgb|bgr|gray|gray-fp16]` as a name and colour space.
    static func imageInput(_ text: String) throws -> (String, ImageColorSpace) {
        let spaces: [String: ImageColorSpace] = ["rgb": .rgb, "bgr": .bgr, "gray": .grayscale, "gray-fp16": .grayscaleFloat16]
        guard let eq = text.lastIndex(of: "=") else {
            guard !text.isEmpty else { throw ValidationError("--image-input: expected NAME[=rgb|bgr|gray|gray-fp16]") }
            return (text, .rgb)
        }
        let name = String(text[..<eq])
        let space = String(text[text.index(after: eq)...])
        guard !name.isEmpty, let s = spaces[space] else {
            throw ValidationError("--image-input '\(text)': expected NAME[=rgb|bgr|gray|gray-fp16]")
        }
        return (name, s)
    }

    /// `--bias`: one or three finite numbers; empty when not given.
    func biasValues() throws -> [Float] {
        guard let bias else { return [] }
        let values = bias.split(separator: ",", omittingEmptySubsequences: false).map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard values.count == 1 || values.count == 3, values.allSatisfy({ $0?.isFinite == true }) else {
            throw ValidationError("--bias '\(bias)': expected R,G,B or one number")
        }
        return values.map { $0! }
    }

    /// `--class-labels [NAME=]FILE` read: a path that exists is the file, whatever characters it holds; otherwise
    /// NAME= names the output. An unreadable or malformed file is bad input (exit 1).
    func classifier() throws(CoreMLInputFileError) -> CoreMLClassLabels? {
        guard let classLabels else { return nil }
        var output: String?
        var file = classLabels
        if !FileManager.default.fileExists(atPath: classLabels), let eq = classLabels.firstIndex(of: "="), eq != classLabels.startIndex {
            output = String(classLabels[..<eq])
            file = String(classLabels[classLabels.index(after: eq)...])
        }
        return CoreMLClassLabels(output: output, labels: try CoreMLClassLabels.read(file: file), file: file)
    }

    /// The options of this group that were given, by flag (a command whose output is not a Core ML model refuses them).
    var given: [String] {
        var flags: [String] = []
        if deploymentTarget != nil { flags.append("--deployment-target") }
        if computePrecision != .fp16 { flags.append("--compute-precision") }
        if noOptimize { flags.append("--no-optimize") }
        if ioDtype != .fp32 { flags.append("--io-dtype") }
        if author != nil { flags.append("--author") }
        if license != nil { flags.append("--license") }
        if modelDescription != nil { flags.append("--description") }
        if modelVersion != nil { flags.append("--version") }
        if !inputDescriptions.isEmpty { flags.append("--input-description") }
        if !outputDescriptions.isEmpty { flags.append("--output-description") }
        if !renames.isEmpty { flags.append("--rename") }
        if !imageInputs.isEmpty { flags.append("--image-input") }
        if scale != nil { flags.append("--scale") }
        if bias != nil { flags.append("--bias") }
        if !imageOutputs.isEmpty { flags.append("--image-output") }
        if classLabels != nil { flags.append("--class-labels") }
        if functions { flags.append("--functions") }
        if activations != nil { flags.append("--activations") }
        return flags
    }

    /// The interface and metadata options (validated).
    var interface: CoreMLInterfaceOptions {
        var i = CoreMLInterfaceOptions()
        i.ioDtype = ioDtype == .fp16 ? .fp16 : .fp32
        i.author = author
        i.license = license
        i.shortDescription = modelDescription
        i.version = modelVersion
        let split = { (t: String) in (try? Self.pair(t, option: "", value: "")) ?? (t, "") }
        i.renames = renames.map(split)
        i.inputDescriptions = inputDescriptions.map(split)
        i.outputDescriptions = outputDescriptions.map(split)
        let bias = (try? biasValues()) ?? []
        i.imageInputs = imageInputs.compactMap { try? Self.imageInput($0) }.map {
            CoreMLImageInput(name: $0.0, colorSpace: $0.1, scale: scale ?? 1, bias: bias)
        }
        i.imageOutputs = imageOutputs
        return i
    }

    /// The export's options; reads the class labels file (`CoreMLInputFileError` when it is bad).
    func options(dequantize: Bool, inputShapes: InputShapes, computeUnits: String) throws(CoreMLInputFileError) -> CoreMLExporter.Options {
        var options = CoreMLExporter.Options(target: deploymentTarget.flatMap(DeploymentTarget.init(parsing:)),
                                             compute: computePrecision == .fp16 ? .fp16 : .fp32, computeUnits: computeUnits,
                                             dequantize: dequantize, inputShapes: inputShapes)
        options.optimize = !noOptimize
        options.interface = interface
        options.interface.classLabels = try classifier()
        options.functions = functions
        return options
    }

    /// Writes `package` as a Core ML model at `output`.
    func export(package: String, to output: String, dequantize: Bool, inputShapes: InputShapes, computeUnits: String,
                quiet: Bool, reportedInput: String? = nil, activations: Int8Activations? = nil) throws {
        let loaded = try PackageReader.load(path: package, checksums: true)
        var options = try options(dequantize: dequantize, inputShapes: inputShapes, computeUnits: computeUnits)
        options.metadata = Self.provenance(loaded.manifest)
        if let activations {
            // quantize/dequantize are iOS17 ops: at least iOS17, more when the stored weights need it.
            if options.target == nil {
                options.target = max(CoreMLExporter.target(for: loaded.model, options: options), Int8Activations.minimumTarget)
            }
            options.finalRewrite = activations.rewrite
        }
        let result: CoreMLExporter.Result
        do {
            result = try CoreMLExporter.export(loaded.model, to: output, options: options)
        } catch let error as CoreMLInterfaceError {
            throw UsageFailure(message: "\(reportedInput ?? package): \(error)")
        } catch let error as CoreMLExportError {
            // Dynamic dims: name the model the user gave and the pins that fix it.
            throw AuditAdvice.explaining(error, model: loaded.model, file: reportedInput ?? package, pins: inputShapes)
        }
        report(result, from: reportedInput ?? package, to: output, quiet: quiet)
    }

    /// The package's provenance as user-defined metadata: source file, its SHA-256, producer, every option.
    static func provenance(_ manifest: Manifest) -> [(String, String)] {
        let p = manifest.provenance
        var entries: [(String, String)] = [
            ("com.mlpkg.source", p.source.file), ("com.mlpkg.source.sha256", p.source.sha256),
            ("com.mlpkg.producer", "\(p.producer.name) \(p.producer.version)"),
        ]
        for key in p.options.keys.sorted() { entries.append(("com.mlpkg.option." + key, p.options[key]!)) }
        return entries
    }

    func report(_ result: CoreMLExporter.Result, from input: String, to output: String, quiet: Bool) {
        if quiet { return }  // --quiet: nothing but errors (notes included)
        if ScriptingMode.json {
            try? JSONOutput.print(ExportOutput(input: input, output: output, format: "coreml", modelBytes: result.modelBytes,
                                               weightBytes: result.weightBytes, target: "\(result.target)",
                                               operations: result.operations.values.reduce(0, +), notes: result.notes))
            return
        }
        for note in result.notes { printNote(note) }
        let ops = result.operations.values.reduce(0, +)
        let folded = result.outcomes.filter { $0.verdict == .folded }.count
        printText("\(input) → \(output) (\(result.target), \(ops) MIL ops from \(result.outcomes.count - folded) nodes, \(folded) folded; "
              + "model.mlmodel \(result.modelBytes) bytes, weight.bin \(result.weightBytes) bytes)")
    }
}

/// What `export --json` prints.
struct ExportOutput: Encodable {
    var input: String
    var output: String
    /// `onnx` or `coreml`.
    var format: String
    /// The model file's bytes (model.onnx, or the .mlpackage's model.mlmodel).
    var modelBytes: Int
    /// Bytes of weights written beside the model (OUT.data or weight.bin); 0 when none.
    var weightBytes: Int
    var externalData: String? = nil
    /// The Core ML deployment target (coreml only).
    var target: String? = nil
    /// MIL operations written (coreml only).
    var operations: Int? = nil
    var notes: [String]
}

/// `export --compute-units`: the MLComputeUnits recommendation written into the model's metadata.
struct RecommendedComputeUnits: ParsableArguments {
    @Option(help: "Recommended MLComputeUnits, recorded in the model's metadata: all, cpu-only, cpu-and-gpu or cpu-and-neural-engine (cpu-and-ne is accepted too).")
    var computeUnits: ComputeUnitSet = .all
}
