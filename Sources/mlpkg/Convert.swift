import ArgumentParser
import CSystem
import Foundation
import Audit
import GraphIR
import Inspection
import MLPackage
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
            """
    )

    @Argument(help: "The ONNX model to convert.")
    var model: String

    @Option(name: .shortAndLong, help: "The package to write (a folder, conventionally NAME.mlpkg).")
    var output: String

    @Option(help: "Weight format: fp32 (unchanged), fp16, int8 or int4.")
    var weights: WeightFormat = .fp16

    @Option(help: "int8/int4 scales: per-tensor, per-channel (int8 default) or per-block (int4 default).")
    var granularity: Granularity?

    @Option(help: "Elements per block along the reduction axis, with per-block scales (default 32).")
    var blockSize: Int?

    @Flag(exclusivity: .exclusive, help: "int8/int4: symmetric (int8/int4, the default) or asymmetric (uint8/uint4 with zero points).")
    var symmetry: Symmetry = .symmetric

    @Option(help: "int8/int4: store scales as fp32 (int8 default) or fp16 (int4 default; export adds a Cast).")
    var scaleType: ScaleType?

    enum ScaleType: String, ExpressibleByArgument {
        case fp32, fp16
    }

    @Option(help: "Convert only float tensors with at least this many elements (default: every float tensor for fp16, 2048 for int8/int4).")
    var minElements: Int?

    @OptionGroup(title: "Compute units (with --profile: audit the model and record each node's unit)")
    var profileOptions: ProfileOptions

    @OptionGroup var inputShape: InputShapeOptions

    @OptionGroup(title: "Core ML (when -o names a .mlpackage: convert, then export --format coreml in one step)")
    var coreML: CoreMLOptions

    @Flag(help: "Keep the graph as imported: no constant folding or dead-node elimination (shapes are still inferred).")
    var noFold = false

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
        if let minElements, minElements < 0 { throw ValidationError("--min-elements must be 0 or more") }
        if let blockSize, blockSize < 1 || blockSize > 1 << 20 { throw ValidationError("--block-size must be 1 to 1048576") }
        if !weights.isLinear && (granularity != nil || blockSize != nil || symmetry == .asymmetric || scaleType != nil) {
            throw ValidationError("--granularity, --block-size, --asymmetric and --scale-type apply to --weights int8 and int4 only")
        }
        if blockSize != nil && (granularity ?? weights.defaultGranularity) != .perBlock {
            throw ValidationError("--block-size needs --granularity per-block")
        }
        if !profileOptions.requested && (profileOptions.computeUnits != .all || profileOptions.chip != "M1") {
            throw ValidationError("--compute-units and --chip apply with --profile (or --profile-file)")
        }
    }

    func run() throws {
        if output.hasSuffix(".mlpackage") || output.hasSuffix(".mlpackage/") {
            try convertToCoreML()
            return
        }
        try convert(to: output)
    }

    /// `-o X.mlpackage`: the package is written to a private temporary folder, exported, then removed.
    private func convertToCoreML() throws {
        guard !json else { throw ValidationError("--json applies to .mlpkg output") }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("mlpkg-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: false)
        } catch {
            throw CommandFailure("\(output): cannot create a temporary folder in \(FileManager.default.temporaryDirectory.path)")
        }
        let slot = mlpkg_register_temporary(scratch.path)  // removed on Ctrl-C too
        defer {
            try? FileManager.default.removeItem(at: scratch)
            mlpkg_unregister_temporary(slot)
        }
        let package = scratch.appendingPathComponent("model.mlpkg").path
        do {
            _ = try PackageConverter.convert(input: model, output: package, options: conversionOptions(audit: nil))
            try coreML.export(package: package, to: output, dequantize: false, inputShapes: inputShape.pins,
                              computeUnits: "all", quiet: quiet, reportedInput: model)
        } catch let error as InputShapeError {
            throw UsageFailure(message: "\(model): \(error)")
        } catch {
            throw CommandFailure(error)
        }
    }

    private func conversionOptions(audit: AuditOptions?) -> PackageConverter.Options {
        .init(weights: weights, minElements: minElements, granularity: granularity, blockSize: blockSize,
              symmetric: symmetry == .symmetric, scaleType: scaleType.map { $0 == .fp16 ? .float16 : .float },
              fold: !noFold, inputShapes: inputShape.pins, audit: audit)
    }

    private func convert(to output: String) throws {
        let audit = profileOptions.requested ? try profileOptions.auditOptions(inputShapes: inputShape.pins) : nil
        let result: PackageConverter.Result
        do {
            result = try PackageConverter.convert(input: model, output: output,
                                                  options: .init(weights: weights, minElements: minElements,
                                                                 granularity: granularity, blockSize: blockSize,
                                                                 symmetric: symmetry == .symmetric,
                                                                 scaleType: scaleType.map { $0 == .fp16 ? .float16 : .float },
                                                                 fold: !noFold, inputShapes: inputShape.pins,
                                                                 audit: audit))
        } catch let error as InputShapeError {
            throw UsageFailure(message: "\(model): \(error)")
        } catch {
            throw CommandFailure(error)
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

struct ConvertOutput: Encodable {
    var package: String
    var source: String
    var sourceBytes: Int
    var packageBytes: Int
    var report: ConversionReport
    var graph: GraphPassReport
    var audit: PackageAudit?
}

