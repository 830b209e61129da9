import ArgumentParser
import Conversion
import Evaluate
import CoreMLExport
import MLPackage
import ONNXExport
import SafeOutput

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a package out as an ONNX model that onnxruntime runs, or as a Core ML .mlpackage (--format coreml).",
        discussion: """
            fp16-stored weights become float16 initializers feeding a Cast to float (the graph stays type-correct \
            and the file stays small); int8/int4 weights become DequantizeLinear of the stored integers (ai.onnx \
            opset raised to 13 for per-channel, 21 for int4 or blocked scales, with the rewrites that keeps the \
            graph's meaning); --dequantize writes them as float32 instead. Weights go to OUT.data (external \
            data) when the model would pass protobuf's 2 GiB limit, or with --external-data. Every checksum is \
            checked before anything is written; the output is written atomically.

            --format coreml writes an ML Program .mlpackage that Xcode and MLModel load (docs/COREML.md): fp16 \
            weights as fp16 consts, int8 per-tensor/per-channel as constexpr_affine_dequantize (iOS16+), int4 or \
            per-block as constexpr_blockwise_shift_scale (iOS18+). Dynamic input dims must be pinned with \
            --input-shape. A node with no valid lowering fails the export, every such node listed with its reason. \
            Float inputs and outputs are fp32 on every target (--io-dtype fp16 from iOS16); author, license, \
            description, version, feature descriptions and names are yours to set; --image-input, --image-output and \
            --class-labels make image inputs and outputs and classifiers (docs/COREML.md#images-and-classifiers).

            Examples:
              mlpkg export model.mlpkg -o model.onnx
              mlpkg export model.mlpkg --format coreml -o Model.mlpackage --input-shape input=1,3,224,224
              mlpkg export t4.mlpkg --format coreml -o T.mlpackage --deployment-target iOS18 --compute-precision fp32
              mlpkg export m.mlpkg --format coreml -o M.mlpackage --author "Jane Doe" --license MIT --version 2.1 \\
                --rename input=image --input-description "image=RGB, 1×3×224×224" --io-dtype fp16
              mlpkg export m.mlpkg --format coreml -o C.mlpackage --image-input input=rgb --scale 0.0039 \\
                --bias -0.5,-0.5,-0.5 --class-labels labels.txt
            """
    )

    @Argument(help: "The package to export.")
    var package: String

    @Option(name: .shortAndLong, help: "The ONNX file or .mlpackage folder to write.")
    var output: String

    @Option(help: "onnx (default) or coreml.")
    var format: ExportFormat = .onnx

    @OptionGroup(title: "Core ML (--format coreml)")
    var coreML: CoreMLOptions

    @OptionGroup var inputShape: InputShapeOptions

    @OptionGroup var recommended: RecommendedComputeUnits

    @Option(help: ArgumentHelp("With --activations int8: real inputs (np.savez: one array per model input, by name; a leading axis of N samples allowed) whose run gives the activation ranges.",
                               valueName: "DATA.npz"))
    var calibration: String?

    @Flag(help: "Write encoded weights as float32 instead of their stored form plus a Cast.")
    var dequantize = false

    @Flag(help: "Put every tensor of 1 KiB or more in OUT.data even when the model is small.")
    var externalData = false

    @Flag(help: "Print nothing but errors.")
    var quiet = false

    @Flag(help: "Replace an existing file at -o even when it is not an ONNX model (never a folder, a symlink or the input).")
    var force = false

    @Flag(help: "Print one JSON document on stdout (files written, sizes, notes); an error is a JSON object too.")
    var json = false

    func validate() throws {
        try OutputExtension.checkExport(output, coreML: format == .coreml)
        if coreML.activations != nil && calibration == nil {
            throw ValidationError("--activations int8 needs --calibration DATA.npz (the ranges come from running the model on real inputs)")
        }
        if calibration != nil && coreML.activations == nil {
            throw ValidationError("--calibration applies to --activations int8 (export keeps the package's weights; convert --weights auto --calibration chooses them)")
        }
        if coreML.activations != nil, inputShape.pins.ranges.values.contains(where: { !$0.isEmpty }) || !inputShape.pins.enumerations.isEmpty {
            throw ValidationError("--activations int8 needs static input shapes: calibration runs one program (no ranges or enumerated shapes in --input-shape)")
        }
        if format == .onnx {
            let given = coreML.given + (recommended.computeUnits != .all ? ["--compute-units"] : [])
            if !given.isEmpty { throw ValidationError("\(given.joined(separator: ", ")) apply to --format coreml") }
        }
    }

    func run() throws {
        do {
            try OutputPlacement.refuseInside(output: output, input: package)
        } catch {
            throw CommandFailure(error)
        }
        if format == .coreml {
            do {
                var activations: Int8Activations?
                if let calibration {
                    let data: CalibrationData
                    do { data = try CalibrationData.read(path: calibration) } catch { throw CommandFailure(error.message) }
                    activations = Int8Activations(calibration: CalibrationOptions(data: data, int8Activations: true), modelName: package)
                }
                try coreML.export(package: package, to: output, dequantize: dequantize, inputShapes: inputShape.pins,
                                 computeUnits: recommended.computeUnits.rawValue, quiet: quiet, activations: activations)
                if !quiet, !ScriptingMode.json, let activations { for line in activations.summary { printText(line) } }
                // Compressed weights: the outputs' accuracy against the package's fp32 program (text mode only).
                if !quiet, !ScriptingMode.json, !dequantize,
                   let weights = (try? PackageReader.load(path: package, checksums: false))?.manifest.provenance.options["weights"],
                   weights != "fp32", weights != "fp16" {
                    OutputAccuracy.report(reference: package, target: output)
                }
            } catch let error as UsageFailure {
                throw error
            } catch let error as CommandFailure {
                throw error
            } catch let error as CalibrationError {
                throw CommandFailure(error.message)
            } catch {
                throw CommandFailure(error)
            }
            return
        }
        guard inputShape.inputShapes.isEmpty else { throw ValidationError("--input-shape applies to --format coreml") }
        do {
            let loaded = try PackageReader.load(path: package, checksums: true)
            let bar = ProgressBar.make(quiet: quiet)
            let result: ONNXExporter.Result
            do {
                defer { bar?.finish() }
                result = try ONNXExporter.export(loaded.model, to: output, options: .init(dequantize: dequantize, forceExternalData: externalData, force: force),
                                                 progress: bar?.handler)
            }
            if quiet { return }  // --quiet: nothing but errors (notes included)
            if json {
                try JSONOutput.print(ExportOutput(input: package, output: output, format: "onnx", modelBytes: result.modelBytes,
                                                  weightBytes: result.externalDataBytes, externalData: result.externalDataFile,
                                                  notes: result.notes))
                return
            }
            for note in result.notes { printNote(note) }
            var line = "\(package) → \(output) (\(result.modelBytes) bytes"
            if let data = result.externalDataFile { line += " + \(result.externalDataBytes) bytes in \(data)" }
            printText(line + ")")
        } catch {
            throw CommandFailure(error)
        }
    }
}
