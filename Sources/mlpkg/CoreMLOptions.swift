import ArgumentParser
import Audit
import CoreMLExport
import MLPackage
import Passes

enum ExportFormat: String, ExpressibleByArgument, CaseIterable {
    case onnx, coreml
}

enum ComputePrecision: String, ExpressibleByArgument, CaseIterable {
    case fp16, fp32
}

enum ComputeUnitsChoice: String, ExpressibleByArgument, CaseIterable {
    case all, cpuOnly = "cpu-only", cpuAndGPU = "cpu-and-gpu", cpuAndNeuralEngine = "cpu-and-neural-engine"
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

    func validate() throws {
        if let t = deploymentTarget, DeploymentTarget(parsing: t) == nil {
            throw ValidationError("unknown --deployment-target '\(t)'; one of " + DeploymentTarget.names.map(\.0).joined(separator: ", "))
        }
    }

    func options(dequantize: Bool, inputShapes: InputShapes, computeUnits: String) -> CoreMLExporter.Options {
        var options = CoreMLExporter.Options(target: deploymentTarget.flatMap(DeploymentTarget.init(parsing:)),
                                             compute: computePrecision == .fp16 ? .fp16 : .fp32, computeUnits: computeUnits,
                                             dequantize: dequantize, inputShapes: inputShapes)
        options.optimize = !noOptimize
        return options
    }

    /// Writes `package` as a Core ML model at `output`.
    func export(package: String, to output: String, dequantize: Bool, inputShapes: InputShapes, computeUnits: String,
                quiet: Bool, reportedInput: String? = nil) throws {
        let loaded = try PackageReader.load(path: package, checksums: true)
        var options = options(dequantize: dequantize, inputShapes: inputShapes, computeUnits: computeUnits)
        options.metadata = Self.provenance(loaded.manifest)
        let result: CoreMLExporter.Result
        do {
            result = try CoreMLExporter.export(loaded.model, to: output, options: options)
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
    @Option(help: "Recommended MLComputeUnits, recorded in the model's metadata: all, cpu-only, cpu-and-gpu, cpu-and-neural-engine.")
    var computeUnits: ComputeUnitsChoice = .all
}
