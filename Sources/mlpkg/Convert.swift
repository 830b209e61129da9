import ArgumentParser
import CSystem
import Foundation
import Audit
import GraphIR
import Inspection
import MLPackage
import ONNXImport
import Conversion
import Evaluate
import CoreMLExport
import Passes
import Quantization

extension WeightFormat: ExpressibleByArgument {}
extension Granularity: ExpressibleByArgument {}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert an ONNX model into a .mlpkg package, re-encoding its float32 weights.",
        discussion: """
            Writes OUT.mlpkg/ (manifest.json, weights.bin, report.json) atomically: into a temporary folder beside \
            it, renamed into place when complete. An existing package at OUT is replaced; anything else there is \
            left alone and the command fails. The same model and options always give byte-identical packages.

            --weights fp16 stores every float32 weight (initializers and Constant values, subgraphs included) as \
            IEEE half precision, rounding to nearest even; values beyond ±65504 are clamped and counted; tensors \
            holding inf or NaN stay float32 and are listed. Inputs that drive shapes or quantization (Resize \
            scales, Range, QuantizeLinear/DequantizeLinear parameters) keep full precision.

            Before the weights, the graph passes run: constant folding (Shape → Gather → Concat → Reshape \
            chains and the like become initializers; dead nodes go) and shape inference, whose types the \
            package records for every value (export writes them as ONNX value_info). --input-shape pins input \
            dims first (the package's inputs take them). --no-fold keeps the graph exactly as imported.

            Examples:
              mlpkg convert model.onnx -o model.mlpkg
              mlpkg convert model.onnx -o model.mlpkg --weights int8 --exclude 'op:LayerNormalization'
              mlpkg convert model.onnx -o model.mlpkg --weights auto --min-snr 30 --json
              mlpkg convert model.onnx -o Model.mlpackage --weights int4 --input-shape input=1,3,224,224
              mlpkg convert model.onnx -o model.mlpkg --weights int4 --for coreml --deployment-target iOS17
              mlpkg convert model.onnx -o model.mlpkg --weights auto --max-size 16MB --block-size 16
              mlpkg convert model.onnx -o Model.mlpackage --author "Jane Doe" --license MIT --rename input=image
              mlpkg convert model.onnx -o Classifier.mlpackage --image-input input=rgb --scale 0.0039 --class-labels labels.txt
              mlpkg convert a.onnx b.onnx --output-dir build/models --jobs 2
            """
    )

    @Argument(help: "The ONNX model to convert (several with --output-dir).")
    var models: [String] = []

    @Option(name: .shortAndLong, help: "The package to write (a folder, conventionally NAME.mlpkg), or a .mlpackage for Core ML.")
    var output: String?

    @Option(help: ArgumentHelp("Convert every model given into this folder, as NAME.mlpkg (batch).", valueName: "dir"))
    var outputDir: String?

    @Option(help: ArgumentHelp("With --output-dir: models converted at once (default 1).", valueName: "n"))
    var jobs = 1

    /// The one model of a single conversion.
    var model: String { models.first ?? "" }

    /// Optional, so that a config's default can be told apart from an explicit `--weights`.
    @Option(name: .customLong("weights"), help: "Weight format: fp32 (unchanged), fp16 (the default), linear int8, int7, int6, int5, int4, int3, int2, a lookup table lut1, lut2, lut3, lut4, lut6, lut8, or auto (with --max-size or --min-snr).")
    var weightsOption: WeightFormat?

    /// The command line's format (fp16 unless --weights says otherwise; int8 with --activations int8: W8A8).
    var weights: WeightFormat { weightsOption ?? (coreML.activations != nil ? .int8 : .fp16) }

    @Option(help: ArgumentHelp("Real inputs (np.savez: one array per model input, by name; a leading axis of N samples allowed): --weights auto measures each tensor's effect on the outputs on them, and --activations int8 takes its ranges from them.",
                               valueName: "DATA.npz"))
    var calibration: String?

    @Option(help: "int8/int4 scales: per-tensor, per-channel (int8 default) or per-block (int4 default).")
    var granularity: Granularity?

    @Option(help: "Elements per block along the reduction axis, with per-block scales or auto's per-block candidates (default 32; moved to a block that divides the axis for Core ML).")
    var blockSize: Int?

    @Flag(exclusivity: .exclusive, help: "Linear formats: symmetric (signed levels; int8's default) or asymmetric (unsigned levels with zero points; the default below 8 bits).")
    var symmetry: Symmetry?

    @Option(help: "int8/int4: store scales as fp32 (int8 default) or fp16 (int4 default; export adds a Cast).")
    var scaleType: ScaleType?

    enum ScaleType: String, ExpressibleByArgument {
        case fp32, fp16
    }

    @Option(help: "Convert only float tensors with at least this many elements (default: every float tensor for fp16, 2048 for int8/int4).")
    var minElements: Int?

    @Option(help: ArgumentHelp("--weights auto: the whole output at most this many bytes (15MB = 15,000,000, 14MiB, 15000000), or the weights at most this fraction of the model's (0.25, 25%).",
                               valueName: "size"))
    var maxSize: String?

    @Option(help: ArgumentHelp("--weights auto: every tensor in the smallest format with at least this SNR (dB).", valueName: "dB"))
    var minSnr: Double?

    @Flag(help: "fp16: clamp values beyond ±65504 instead of keeping those tensors float32.")
    var fp16Clamp = false

    @Option(name: .customLong("for"), help: ArgumentHelp(
        "coreml: the package is for export --format coreml: every tensor takes a format its --deployment-target writes (default target: iOS18's formats). Implied by a .mlpackage output.",
        valueName: "coreml"))
    var destination: Destination?

    enum Destination: String, ExpressibleByArgument {
        case coreml
    }

    @Option(name: .customLong("exclude"), help: ArgumentHelp(
        "Leave these tensors as they are: a glob over tensor and node names, or op:TYPE (repeatable).",
        valueName: "pattern"))
    var excludes: [String] = []

    @Option(name: .customLong("include"), help: ArgumentHelp(
        "Convert only these tensors: a glob over tensor and node names, or op:TYPE (repeatable).", valueName: "pattern"))
    var includes: [String] = []

    @Option(help: ArgumentHelp("Per-layer settings: JSON with default, opTypes and names sections (docs/QUANTIZATION.md).",
                               valueName: "file"))
    var config: String?

    @OptionGroup(title: "Compute units (with --profile: audit the model and record each node's unit)")
    var profileOptions: ProfileOptions

    @OptionGroup var inputShape: InputShapeOptions

    @OptionGroup(title: "Core ML (when -o names a .mlpackage: convert, then export --format coreml in one step)")
    var coreML: CoreMLOptions

    @Flag(help: "Keep the graph as imported: no constant folding or dead-node elimination (shapes are still inferred).")
    var noFold = false

    @Flag(help: "Keep initializers the model also lists as graph inputs (all weights, in files before ONNX IR version 4) as inputs a caller may override; by default they are constants (docs/IMPORT.md). Not with a .mlpackage output.")
    var keepInitializerInputs = false

    @Flag(help: "Print one JSON document on stdout instead of the summary.")
    var json = false

    @Flag(help: "Print nothing but errors.")
    var quiet = false

    @Flag(help: "Print the time each step took, on stderr.")
    var verbose = false

    enum Symmetry: String, EnumerableFlag {
        case symmetric, asymmetric
    }

    func validate() throws {
        guard !models.isEmpty else { throw ValidationError("give the ONNX model to convert") }
        switch (output, outputDir) {
        case (nil, nil): throw ValidationError("give -o OUT (one model) or --output-dir DIR (one or more)")
        case (.some, .some): throw ValidationError("-o and --output-dir are alternatives: give one")
        case (.some, nil) where models.count > 1: throw ValidationError("several models need --output-dir DIR, not -o")
        default: break
        }
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be 1 to 64") }
        if jobs > 1 && outputDir == nil { throw ValidationError("--jobs applies to --output-dir") }
        if let minElements, minElements < 0 { throw ValidationError("--min-elements must be 0 or more") }
        if let blockSize, blockSize < 1 || blockSize > 1 << 20 { throw ValidationError("--block-size must be 1 to 1048576") }
        if fp16Clamp && weights != .fp16 && config == nil { throw ValidationError("--fp16-clamp applies to --weights fp16") }
        if maxSize != nil && minSnr != nil { throw ValidationError("--max-size and --min-snr are alternatives: give one") }
        if weights == .auto && config == nil && maxSize == nil && minSnr == nil {
            throw ValidationError("--weights auto needs a budget: --max-size SIZE or --min-snr DB")
        }
        if (maxSize != nil || minSnr != nil) && weights != .auto && config == nil {
            throw ValidationError("--max-size and --min-snr apply to --weights auto")
        }
        if let minSnr, !(minSnr.isFinite && minSnr > 0 && minSnr < 200) { throw ValidationError("--min-snr must be between 0 and 200 dB") }
        if weights == .auto && config == nil && (granularity != nil || symmetry != nil || scaleType != nil) {
            throw ValidationError("--weights auto chooses granularity, symmetry and scale type itself (--block-size sets the block of its per-block candidates)")
        }
        if weights == .auto {
        } else if weights.isPalette && config == nil {
            if symmetry != nil || scaleType != nil { throw ValidationError("--symmetric, --asymmetric and --scale-type apply to linear formats (int2…int8)") }
            if granularity == .perBlock { throw ValidationError("lookup tables are per-tensor or per-channel (--block-size slices of axis 0 per table)") }
            if blockSize != nil && granularity != .perChannel { throw ValidationError("--block-size with a lookup table needs --granularity per-channel") }
        } else if !weights.isLinear && config == nil && (granularity != nil || blockSize != nil || symmetry != nil || scaleType != nil) {
            throw ValidationError("--granularity, --block-size, --symmetric/--asymmetric and --scale-type apply to the linear (int2…int8) and lut formats only")
        } else if blockSize != nil && !weights.isPalette && (granularity ?? weights.defaultGranularity) != .perBlock {
            throw ValidationError("--block-size needs --granularity per-block")
        }
        if let output { try OutputExtension.checkConvert(output) }
        if coreML.activations != nil && calibration == nil {
            throw ValidationError("--activations int8 needs --calibration DATA.npz (the ranges come from running the model on real inputs)")
        }
        if calibration != nil && weights != .auto && coreML.activations == nil && config == nil {
            throw ValidationError("--calibration applies to --weights auto and to --activations int8")
        }
        if coreML.activations != nil, inputShape.pins.ranges.values.contains(where: { !$0.isEmpty }) || !inputShape.pins.enumerations.isEmpty {
            throw ValidationError("--activations int8 needs static input shapes: calibration runs one program (no ranges or enumerated shapes in --input-shape)")
        }
        // With --for coreml the deployment target decides the formats; the other Core ML options shape the export.
        let misplaced = coreML.given.filter { !(destination == .coreml && $0 == "--deployment-target") }
        if !writesCoreML, !misplaced.isEmpty {
            throw ValidationError("\(misplaced.joined(separator: ", ")) apply to a Core ML output (-o NAME.mlpackage)"
                                  + (misplaced == ["--deployment-target"] ? " or with --for coreml" : ""))
        }
        if !profileOptions.requested && profileOptions.chip != "M1" {
            throw ValidationError("--chip applies with --profile (or --profile-file)")
        }
        if !profileOptions.requested && profileOptions.computeUnits != .all && !writesCoreML {
            throw ValidationError("--compute-units applies with --profile (or --profile-file), or with a .mlpackage output (recorded as its recommendation)")
        }
        // Core ML places each op on a unit itself when the app loads the model; a Core ML package has no per-node
        // assignment to record, so a profile cannot apply (the audit reports the placement; --compute-units records
        // the recommendation).
        if writesCoreML && profileOptions.requested {
            throw ValidationError("--profile and --profile-file apply to .mlpkg outputs: Core ML places ops on compute units itself; "
                                  + "run `mlpkg audit MODEL.onnx --profile NAME` for the placement report, and give --compute-units to record a recommendation in the .mlpackage")
        }
        if keepInitializerInputs, writesCoreML {
            throw ValidationError("--keep-initializer-inputs applies to .mlpkg packages: a Core ML model has no overridable inputs")
        }
    }

    /// The Core ML target the formats are chosen for: `--deployment-target`, else iOS18's formats, when the output
    /// is Core ML (`-o X.mlpackage`) or `--for coreml`; nil otherwise.
    var coreMLTarget: CoreMLWeightTarget? {
        guard writesCoreML || destination == .coreml else { return nil }
        let version = coreML.deploymentTarget.flatMap(DeploymentTarget.init(parsing:))?.specificationVersion ?? 9
        return CoreMLWeightTarget(specificationVersion: version)
    }

    /// Whether `-o` names a Core ML package (one step: convert, then export --format coreml).
    var writesCoreML: Bool {
        guard let output else { return false }
        return output.hasSuffix(".mlpackage") || output.hasSuffix(".mlpackage/")
    }

    func run() throws {
        if let outputDir {
            try convertBatch(into: outputDir)
            return
        }
        let output = self.output ?? ""
        if writesCoreML {
            try convertToCoreML(output)
            return
        }
        try convert(to: output)
    }

    /// `-o X.mlpackage`: one library call (Conversion's `CoreMLConverter`): prepared once, no intermediate package.
    private func convertToCoreML(_ output: String) throws {
        do {
            let options = CoreMLConverter.Options(
                conversion: try conversionOptions(audit: nil),
                export: try coreML.options(dequantize: false, inputShapes: inputShape.pins, computeUnits: profileOptions.computeUnits.rawValue))
            let result = try CoreMLConverter.convert(input: model, output: output, options: options)
            if !quiet && !ScriptingMode.json, let activations = result.activations {
                for line in activations.summary { printText(line) }
            }
            if !quiet && !json {
                // The formats the target's rules chose instead of the ones asked for, tensor by tensor.
                let noted = result.conversion.converted.filter { $0.note != nil }
                for c in noted.prefix(8) { printNote("'\(c.name)': \(c.note!)") }
                if noted.count > 8 { printNote("\(noted.count - 8) more tensor(s) took formats Core ML writes (convert --for coreml -o X.mlpkg keeps the full report)") }
            }
            coreML.report(result.export, from: model, to: output, quiet: quiet)
            // Compressed weights change the answers: say by how much, against the fp32 program (text mode only).
            if !quiet, !ScriptingMode.json, weights != .fp32, weights != .fp16 {
                OutputAccuracy.report(reference: model, target: output)
            }
        } catch let error as CoreMLInterfaceError {
            throw UsageFailure(message: "\(model): \(error)")
        } catch let error as TensorRuleError {
            throw UsageFailure(message: "\(model): \(error)")
        } catch let error as UsageFailure {
            throw error
        } catch let error as InputShapeError {
            throw UsageFailure(message: "\(model): \(error)")
        } catch let error as CalibrationError {
            throw CommandFailure(error.message)
        } catch {
            throw CommandFailure(error)
        }
    }

    private func conversionOptions(audit: AuditOptions?) throws -> PackageConverter.Options {
        .init(weights: weights, minElements: minElements, granularity: granularity, blockSize: blockSize,
              symmetric: symmetry.map { $0 == .symmetric }, scaleType: scaleType.map { $0 == .fp16 ? .float16 : .float },
              fold: !noFold, inputShapes: inputShape.pins, audit: audit, rules: try tensorRules(), fp16Clamp: fp16Clamp,
              autoBudget: try autoBudget(),
              importing: ImportOptions(initializerInputs: keepInitializerInputs ? .overridable : .constant),
              coreML: coreMLTarget, coreMLTargetName: coreMLTarget == nil ? nil : coreML.deploymentTarget,
              calibration: try calibrationOptions())
    }

    /// `--calibration` read (exit 1 naming the file when it cannot be).
    private func calibrationOptions() throws -> CalibrationOptions? {
        guard let calibration else { return nil }
        do {
            return CalibrationOptions(data: try CalibrationData.read(path: calibration), int8Activations: coreML.activations == .int8)
        } catch {
            throw CommandFailure(error.message)
        }
    }

    private func autoBudget() throws -> AutoBudget? {
        do {
            if let maxSize { return try AutoBudget.maxSize(maxSize) }
            return minSnr.map { .minSNR($0) }
        } catch {
            throw UsageFailure(message: "\(error)")
        }
    }

    /// `--exclude`, `--include` and `--config`, checked: a malformed pattern or config, or a config default that
    /// contradicts an option given on the command line, is a usage error.
    private func tensorRules() throws -> TensorRules {
        do {
            var rules = TensorRules(excludes: try excludes.map { p throws(TensorRuleError) in try TensorSelector(p) },
                                    includes: try includes.map { p throws(TensorRuleError) in try TensorSelector(p) })
            if let config {
                guard let data = FileManager.default.contents(atPath: config) else {
                    throw TensorRuleError("\(config): cannot read the file")
                }
                let parsed = try QuantizationConfig(data: data, file: config, digest: Checksum.sha256(Array(data)))
                if let d = parsed.defaults {
                    func clash(_ option: String, _ given: String?, _ configured: String?) throws(TensorRuleError) {
                        if let given, let configured, given != configured {
                            throw TensorRuleError("\(option) \(given) on the command line contradicts default.\(option.dropFirst(2)) "
                                                  + "\(configured) in \(config)")
                        }
                    }
                    try clash("--weights", weightsOption?.rawValue, d.weights?.rawValue)
                    try clash("--granularity", granularity?.rawValue, d.granularity?.rawValue)
                    try clash("--blockSize", blockSize.map(String.init), d.blockSize.map(String.init))
                    try clash("--scaleType", scaleType?.rawValue, d.scaleType.map { $0 == .float16 ? "fp16" : "fp32" })
                    try clash("--minElements", minElements.map(String.init), d.minElements.map(String.init))
                }
                rules.config = parsed
            }
            return rules
        } catch {
            throw UsageFailure(message: "\(error)")
        }
    }

    private func convert(to output: String) throws {
        let audit = profileOptions.requested ? try profileOptions.auditOptions(inputShapes: inputShape.pins) : nil
        let options = try conversionOptions(audit: audit)
        let bar = ProgressBar.make(quiet: quiet)
        let result: PackageConverter.Result
        do {
            defer { bar?.finish() }
            result = try Self.convertOne(model, to: output, options: options, progress: bar?.handler)
        }
        if verbose {
            for (step, seconds) in result.timings {
                FileHandleOutput.standardError.write("\(step): \(Int((seconds * 1000).rounded())) ms\n")
            }
        }
        if quiet { return }
        if json {
            try JSONOutput.print(ConvertOutput(package: output, source: model, sourceBytes: result.sourceBytes,
                                               packageBytes: result.packageBytes, report: result.report, graph: result.graph,
                                               audit: result.audit.map(PackageAudit.init)))
        } else {
            printText(ConversionText.render(result.report, source: model, sourceBytes: result.sourceBytes, package: output,
                                        packageBytes: result.packageBytes, graph: result.graph))
            if let a = result.audit {
                let s = a.summary
                printText("compute units (\(a.computeUnits), chip \(a.chip)): \(ReportFormatting.percent(s.coverage)) of \(s.nodes) nodes on \(a.target), "
                      + "\(s.partitions.count) partition(s), \(s.fallbacks) elsewhere; each node's unit is in manifest.json, the audit in report.json")
            }
        }
    }
}

extension Convert {
    /// One conversion, its errors sorted into usage (exit 2) and failure (exit 1).
    static func convertOne(_ model: String, to output: String, options: PackageConverter.Options,
                           progress: ProgressHandler? = nil) throws -> PackageConverter.Result {
        TestHooks.beforeConverting(model)
        do {
            return try PackageConverter.convert(input: model, output: output, options: options, progress: progress)
        } catch let error as TensorRuleError {
            throw UsageFailure(message: "\(model): \(error)")
        } catch let error as InputShapeError {
            throw UsageFailure(message: "\(model): \(error)")
        } catch let error as CalibrationError {
            throw CommandFailure(error.message)
        } catch {
            throw CommandFailure(error)
        }
    }

    /// `convert A.onnx B.onnx … --output-dir D [--jobs N]`: each model to D/NAME.mlpkg (atomically, as one by
    /// one), one status line per model as it finishes, a summary, exit 1 if any failed. Each model is converted by
    /// a child mlpkg (`Batch`), so one that crashes the converter fails alone: the others still run, and the status
    /// lines, the summary and the `--json` document are always printed. Outputs are byte-identical to converting
    /// one by one (the same code path, deterministic). After Ctrl-C (SIGINT, SIGTERM, SIGHUP) the running children
    /// stop, and the error line lists the packages that were written.
    func convertBatch(into dir: String) throws {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) {
            // Created with its parents, as `mkdir -p` would (a batch run in a build script names a fresh folder).
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                throw CommandFailure("\(dir): cannot create the folder (--output-dir): \((error as NSError).localizedDescription)")
            }
        } else if !isDirectory.boolValue {
            throw CommandFailure("\(dir): exists and is not a folder (--output-dir)")
        }
        var outputs: [String] = []
        var seen: [String: String] = [:]
        for m in models {
            var name = URL(fileURLWithPath: m).lastPathComponent
            if name.lowercased().hasSuffix(".onnx") { name = String(name.dropLast(5)) }
            let out = URL(fileURLWithPath: dir).appendingPathComponent(name + ".mlpkg").path
            if let other = seen[out] { throw ValidationError("\(m) and \(other) would both be written to \(out)") }
            seen[out] = m
            outputs.append(out)
        }
        // Options are checked here once (a bad config is one usage error, not one per model).
        let audit = profileOptions.requested ? try profileOptions.auditOptions(inputShapes: inputShape.pins) : nil
        let options = try conversionOptions(audit: audit)
        if let item = Batch.childItem {
            // In a child of a batch: convert that one model, its result as one JSON object on stdout.
            guard models.indices.contains(item) else { throw CommandFailure("\(Batch.itemVariable): model \(item) is not given") }
            let start = Date()
            let r = try Self.convertOne(models[item], to: outputs[item], options: options)
            var result = BatchOutput.Item(model: models[item], package: outputs[item])
            result.sourceBytes = r.sourceBytes
            result.packageBytes = r.packageBytes
            result.seconds = (Date().timeIntervalSince(start) * 1000).rounded() / 1000
            try JSONOutput.print(result)
            return
        }
        mlpkg_begin_batch()
        let batch = Batch(models: models, outputs: outputs, arguments: Batch.childArguments(), json: json, quiet: quiet)
        batch.run(jobs: jobs)
        let failed = batch.results.filter { $0.error != nil }.count
        let signal = mlpkg_batch_interrupted()
        if json {
            try JSONOutput.print(BatchOutput(results: batch.results, converted: models.count - failed, failed: failed,
                                             interrupted: signal != 0 ? true : nil))
        } else if !quiet {
            printText("converted \(models.count - failed) of \(models.count) model(s) into \(dir)" + (failed > 0 ? "; \(failed) failed" : ""))
        }
        if signal != 0 {
            let written = batch.results.filter { $0.error == nil }.map(\.package)
            let what = written.isEmpty ? "no package was written"
                : "\(written.count) of \(models.count) package(s) written: \(written.joined(separator: ", "))"
            FileHandleOutput.standardError.write("error: interrupted; \(Printable.terminal(what)); the others were not (temporary output removed)\n")
            Foundation.exit(128 + signal)
        }
        if failed > 0 { throw ExitCode(1) }
    }
}

/// Test-only hooks (tests/oracle/test_batch.py), read from the environment; never set them otherwise.
/// `MLPKG_TEST_TRAP_ON=NAME`: converting the model file named NAME (its last path component) traps (`fatalError`),
/// standing for a converter crash on that model. `MLPKG_TEST_HANG_ON=NAME`: converting it waits until the process
/// is signalled, standing for a long conversion to interrupt.
enum TestHooks {
    static func beforeConverting(_ model: String) {
        let environment = ProcessInfo.processInfo.environment
        let name = URL(fileURLWithPath: model).lastPathComponent
        if environment["MLPKG_TEST_TRAP_ON"] == name { fatalError("MLPKG_TEST_TRAP_ON=\(name): a test-only trap") }
        if environment["MLPKG_TEST_HANG_ON"] == name { while true { pause() } }
    }
}

/// The models of a batch, each converted by a child mlpkg (the same command line, with `MLPKG_BATCH_ITEM` naming
/// the model and `--json` for its result), `jobs` at a time; results in the models' order.
final class Batch: @unchecked Sendable {
    /// Set by a batch for its children: `PID:INDEX`, the batch's process and the one model the child converts.
    /// Internal; a value whose PID is not this process's parent (one left in an environment) is ignored.
    static let itemVariable = "MLPKG_BATCH_ITEM"
    static var childItem: Int? {
        guard let value = ProcessInfo.processInfo.environment[itemVariable] else { return nil }
        let parts = value.split(separator: ":")
        guard parts.count == 2, Int32(parts[0]) == getppid(), let item = Int(parts[1]) else { return nil }
        return item
    }

    /// This command line for a child: the same arguments, with `--json` (its result is read back as JSON).
    static func childArguments() -> [String] {
        var arguments = Array(CommandLine.arguments.dropFirst())
        if !arguments.contains("--json") { arguments.insert("--json", at: min(1, arguments.count)) }
        return arguments
    }

    let models: [String]
    let outputs: [String]
    let arguments: [String]
    let json: Bool
    let quiet: Bool
    private(set) var results: [BatchOutput.Item]
    private let lock = NSLock()
    private var next = 0

    init(models: [String], outputs: [String], arguments: [String], json: Bool, quiet: Bool) {
        self.models = models
        self.outputs = outputs
        self.arguments = arguments
        self.json = json
        self.quiet = quiet
        results = zip(models, outputs).map { BatchOutput.Item(model: $0, package: $1) }
    }

    func run(jobs: Int) {
        let group = DispatchGroup()
        for _ in 0..<min(jobs, models.count) {
            group.enter()
            let thread = Thread { [self] in
                while let i = take() { convert(i) }
                group.leave()
            }
            thread.stackSize = 1 << 20  // the work is in the children
            thread.start()
        }
        group.wait()
    }

    private func take() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard next < models.count else { return nil }
        next += 1
        return next - 1
    }

    private func convert(_ i: Int) {
        let start = Date()
        var item = results[i]
        if mlpkg_batch_interrupted() != 0 {
            item.error = "\(models[i]): not converted (interrupted)"
        } else {
            do {
                let child = try ChildProcess.run(arguments, environment: [Self.itemVariable: "\(getpid()):\(i)"])
                item = Self.result(of: child, item: item)
                let stopped: Bool  // by a signal, or its interrupt handler (128 + signal)
                switch child.ending {
                case .exited(let code): stopped = code > 128
                case .signaled: stopped = true
                }
                if item.error != nil, stopped, mlpkg_batch_interrupted() != 0 {
                    item.error = "\(models[i]): interrupted before it finished; no package was written for it"
                }
                if !quiet && !json {
                    // Notes of the child (its errors are in its result); crash reports stay out of the batch's output.
                    for line in String(decoding: child.stderr, as: UTF8.self).split(separator: "\n") where line.hasPrefix("note: ") {
                        FileHandleOutput.standardError.write(String(line) + "\n")
                    }
                }
            } catch {
                item.error = "\(models[i]): \(error.message)"
            }
        }
        item.seconds = (Date().timeIntervalSince(start) * 1000).rounded() / 1000
        lock.lock()
        results[i] = item
        // One status line per model as it finishes (errors always, on stderr).
        if let error = item.error {
            FileHandleOutput.standardError.write("error: \(Printable.terminal(Printable.boundingQuotes(error)))\n")
        } else if !json && !quiet {
            printText("ok    \(item.model) → \(item.package) (\(item.sourceBytes ?? 0) → \(item.packageBytes ?? 0) bytes, \(String(format: "%.2f", item.seconds ?? 0)) s)")
        }
        lock.unlock()
    }

    /// The item a child's output gives: its result, its error object, or what is known of its crash.
    static func result(of child: ChildProcess, item: BatchOutput.Item) -> BatchOutput.Item {
        var item = item
        struct ErrorReply: Decodable {
            struct Body: Decodable { var message: String }
            var error: Body
        }
        struct Reply: Decodable {
            var sourceBytes: Int?
            var packageBytes: Int?
        }
        let data = Data(child.stdout)
        if child.ending == .exited(0), let reply = try? JSONDecoder().decode(Reply.self, from: data),
           reply.sourceBytes != nil {
            item.sourceBytes = reply.sourceBytes
            item.packageBytes = reply.packageBytes
        } else if let reply = try? JSONDecoder().decode(ErrorReply.self, from: data) {
            item.error = reply.error.message
        } else {
            // No result: the child crashed. Its own report (the runtime's message) says why.
            let report = String(decoding: child.stderr, as: UTF8.self).split(separator: "\n")
                .first { $0.contains("Fatal error") || $0.contains("fatal error") }
                .map { ": \(runtimeMessage(in: $0).trimmedSpaces)" } ?? ""
            let how: String
            switch child.ending {
            case .exited(let code): how = "crashed (exit status \(code)\(report))"
            case .signaled(let signal): how = "was killed by signal \(signal)\(report.isEmpty ? "" : " (\(report.dropFirst(2)))")"
            }
            item.error = "\(item.model): the conversion \(how); no package was written for it (the other models are not affected)"
        }
        return item
    }

    /// The runtime's message in a line of a crashed child's stderr: the line itself, or the part its fatal handler
    /// quotes ("error: mlpkg stopped: … (MESSAGE); nothing was written …", Sources/CSystem).
    static func runtimeMessage(in line: Substring) -> Substring {
        guard line.hasPrefix("error: mlpkg stopped: "), let open = line.firstIndex(of: "("),
              let close = line.range(of: "); nothing was written") else { return line }
        return line[line.index(after: open)..<close.lowerBound]
    }
}

/// What `convert … --output-dir D --json` prints.
struct BatchOutput: Encodable {
    struct Item: Encodable {
        var model: String
        var package: String
        var sourceBytes: Int?
        var packageBytes: Int?
        var seconds: Double?
        /// The one-line error, when the model failed.
        var error: String?
    }
    var results: [Item]
    var converted: Int
    var failed: Int
    /// Present (true) when the batch was interrupted: the models without a result were not converted.
    var interrupted: Bool?
}

struct ConvertOutput: Encodable {
    var package: String
    var source: String
    var sourceBytes: Int
    var packageBytes: Int
    var report: ConversionReport
    var graph: GraphPassReport
    var audit: PackageAudit?
}

