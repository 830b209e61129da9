import Audit
import Dispatch
import Foundation
import GraphIR
import MLPackage
import ONNXImport
import Passes
import Quantization

/// `mlpkg convert` as a library call: import an ONNX model, re-encode its weights, write the package.
public enum PackageConverter {
    /// The settings of one conversion, as `convert`'s flags give them; a nil field takes the format's default.
    public struct Options: Sendable, Equatable {
        /// The weight format (`--weights`): fp32, fp16, int2…int8, lut1…lut8, or auto.
        public var weights: WeightFormat
        /// Float tensors with fewer elements stay as they are (`--min-elements`); nil: 2048 for integer and lut
        /// formats, 1 otherwise.
        public var minElements: Int?
        /// How finely scales (or lookup tables) are shared (`--granularity`); nil: the format's default.
        public var granularity: Granularity?
        /// Elements per block of per-block scales, or slices of axis 0 per lut table (`--block-size`);
        /// nil: 32, or 16 for lut.
        public var blockSize: Int?
        /// nil: the format's default (asymmetric below 8 bits, symmetric int8).
        public var symmetric: Bool?
        /// `float` or `float16` scales for linear formats (`--scale-type`); nil: float16 below 8 bits, float for int8.
        public var scaleType: DataType?
        /// Fold constants and drop dead nodes before inferring shapes (`--no-fold` turns it off: the graph is
        /// then kept exactly as imported, and only value_info gains the inferred types).
        public var fold: Bool
        /// Dims pinned on the model's inputs (`--input-shape`); the package's inputs take these shapes.
        public var inputShapes: InputShapes
        /// With `convert --profile`: audit the model and record each node's compute unit and the audit summary.
        public var audit: AuditOptions?
        /// Per-layer control (`--exclude`, `--include`, `--config`).
        public var rules: TensorRules
        /// fp16: clamp out-of-range values instead of keeping those tensors float32 (`--fp16-clamp`).
        public var fp16Clamp: Bool
        /// `--weights auto`: `--max-size` or `--min-snr`.
        public var autoBudget: AutoBudget?
        /// How the model is read; `--keep-initializer-inputs` keeps initializers listed as inputs overridable
        /// (by default they are constants: docs/IMPORT.md).
        public var importing: ImportOptions
        /// The Core ML target the output is for (`convert --for coreml`, a `.mlpackage` output): every tensor takes
        /// a format it writes. nil: a package not meant for Core ML.
        public var coreML: CoreMLWeightTarget?
        /// `--deployment-target` as given with `--for coreml` (recorded in provenance); nil when not given.
        public var coreMLTargetName: String?
        /// `--calibration DATA.npz`: `--weights auto` measures each tensor's effect on the outputs on these inputs
        /// (and a Core ML output may take int8 activations); nil: data-free.
        public var calibration: CalibrationOptions?

        /// Options for `weights`; every other value defaults as when its flag is not given.
        public init(weights: WeightFormat, minElements: Int? = nil, granularity: Granularity? = nil,
                    blockSize: Int? = nil, symmetric: Bool? = nil, scaleType: DataType? = nil, fold: Bool = true,
                    inputShapes: InputShapes = InputShapes(), audit: AuditOptions? = nil,
                    rules: TensorRules = TensorRules(), fp16Clamp: Bool = false, autoBudget: AutoBudget? = nil,
                    importing: ImportOptions = ImportOptions(), coreML: CoreMLWeightTarget? = nil,
                    coreMLTargetName: String? = nil, calibration: CalibrationOptions? = nil) {
            self.calibration = calibration
            self.importing = importing
            self.coreML = coreML
            self.coreMLTargetName = coreMLTargetName
            self.audit = audit
            self.autoBudget = autoBudget
            self.rules = rules
            self.fp16Clamp = fp16Clamp
            self.weights = weights
            self.minElements = minElements
            self.granularity = granularity
            self.blockSize = blockSize
            self.symmetric = symmetric
            self.scaleType = scaleType
            self.fold = fold
            self.inputShapes = inputShapes
        }

        /// The graph passes convert runs.
        public var pipeline: Pipeline { fold ? .foldAndInfer : .infer }

        var converter: WeightConverter.Options {
            WeightConverter.Options(format: weights, minElements: minElements, granularity: granularity,
                                    blockSize: blockSize, symmetric: symmetric, scaleType: scaleType, rules: rules,
                                    fp16Clamp: fp16Clamp, autoBudget: autoBudget, coreML: coreML)
        }

        /// Patterns as one provenance value: a JSON array of strings.
        static func list(_ items: [String]) -> String {
            let data = (try? JSONSerialization.data(withJSONObject: items, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }

        /// Every option in effect, by name, as provenance records it.
        var recorded: [String: String] {
            let c = converter
            var options = ["weights": weights.rawValue, "minElements": String(c.minElements), "fold": String(fold)]
            if !inputShapes.isEmpty { options["inputShapes"] = inputShapes.recorded }
            if fp16Clamp { options["fp16Clamp"] = "true" }
            if coreML != nil { options["for"] = "coreml" }
            if let coreMLTargetName { options["deploymentTarget"] = coreMLTargetName }
            if importing.initializerInputs != .constant { options["initializerInputs"] = importing.initializerInputs.rawValue }
            switch autoBudget {
            case .maxBytes(let b)?: options["maxSize"] = String(b)
            case .maxRatio(let r)?: options["maxSize"] = String(r)
            case .minSNR(let d)?: options["minSNR"] = String(d)
            case nil: break
            }
            if !rules.excludes.isEmpty { options["exclude"] = Self.list(rules.excludes.map(\.description)) }
            if !rules.includes.isEmpty { options["include"] = Self.list(rules.includes.map(\.description)) }
            if let config = rules.config { options["config"] = "sha256:" + config.digest }
            if let calibration {
                options["calibration"] = URL(fileURLWithPath: calibration.data.file).lastPathComponent
                if calibration.int8Activations { options["activations"] = "int8" }
            }
            if weights == .auto, let blockSize { options["blockSize"] = String(blockSize) }  // its per-block candidates'
            if weights.isPalette {
                options["granularity"] = c.granularity.rawValue
                if c.granularity != .perTensor { options["blockSize"] = String(c.blockSize) }
            }
            if weights.isLinear {
                options["granularity"] = c.granularity.rawValue
                options["symmetric"] = String(c.symmetric)
                options["scaleType"] = c.scaleType == .float16 ? "fp16" : "fp32"
                if c.granularity == .perBlock { options["blockSize"] = String(c.blockSize) }
            }
            if let audit {
                options["profile"] = audit.profiles[audit.target]?.name ?? audit.target.rawValue
                options["computeUnits"] = audit.computeUnits.rawValue
                options["chip"] = audit.chip
                let files = audit.preference.compactMap { audit.profiles[$0]?.file }
                if !files.isEmpty {
                    options["profileFiles"] = files.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: " ")
                }
            }
            return options
        }
    }

    /// What a conversion produced: the manifest and report written, the graph passes' counts, sizes and timings.
    public struct Result: Sendable {
        /// Wall time of each step, in order.
        public var timings: [(step: String, seconds: Double)]
        /// The manifest written to manifest.json.
        public var manifest: Manifest
        /// What the conversion did to each weight (the `conversion` section of report.json).
        public var report: ConversionReport
        /// What the graph passes did.
        public var graph: GraphPassReport
        /// Size in bytes of the source ONNX file (external data files not included).
        public var sourceBytes: Int
        /// Total bytes of manifest.json, weights.bin and report.json in the written package.
        public var packageBytes: Int
        /// The compute-unit audit, with `Options.audit`.
        public var audit: AuditReport?
    }

    /// `progress` hears of each step and of each tensor converted (a progress bar's feed).
    public static func convert(input: String, output: String, options: Options,
                               progress: ProgressHandler? = nil) throws -> Result {
        try refuseOverwritingInput(input: input, output: output)
        progress?(WorkProgress(step: "import", items: 0, totalItems: 1))
        var clock = StepClock()
        // One mapping serves the importer and the source digest, which runs on another core meanwhile.
        let mapped = try ONNXImporter.map(path: input)
        let digest = SourceDigest(file: mapped)
        let imported = try ONNXImporter.load(mapped: mapped, path: input, options: options.importing)
        clock.lap("import")
        progress?(WorkProgress(step: "fold constants, infer shapes", items: 0, totalItems: 1))
        let pinned = try options.inputShapes.apply(to: imported)
        let context = PassContext()
        var model: Model
        do {
            model = try options.pipeline.run(pinned, context: context)
        } catch {
            throw PackageError(path: input, "\(error)")
        }
        if !options.inputShapes.isEmpty, let inferred = context.inference {
            model = ShapeInference.specializingOutputs(of: model, with: inferred)
        }
        let graphReport = GraphPassReport(pipeline: options.pipeline.name, context: context)
        clock.lap(options.fold ? "fold constants, infer shapes" : "infer shapes")
        var audit: AuditReport?
        if let auditOptions = options.audit {
            // The audit sees the graph the package holds (folded, pinned) with the types inference found.
            let shapes = context.inference.map(AuditInput.inferred)
                ?? AuditInput(model: model, types: [:], constants: [])
            do {
                // The package's graph (specialised outputs included) with the types inference found for it.
                audit = try Auditor.audit(AuditInput(model: model, types: shapes.types, constants: shapes.constants),
                                          modelName: URL(fileURLWithPath: input).lastPathComponent, options: auditOptions)
            } catch {
                throw PackageError(path: input, "\(error)")
            }
            clock.lap("audit compute units")
        }
        var converter = WeightConverter(options: options.converter)
        // A per-layer rule conflict is the user's to resolve: refused before anything is written.
        try converter.validate(model)
        let passed = model
        func write(_ converter: WeightConverter, to path: String, progress: ProgressHandler?) throws -> (Manifest, ConversionReport) {
            try PackageWriter.write(model: passed, converting: converter, provenance: {
                clock.lap("convert and write weights (\(options.weights.rawValue))")
                let source = sourceDescription(input: input, model: passed, digest: digest)
                clock.lap("source digest (wait)")
                return Provenance(source: source, producer: .init(name: "mlpkg", version: MLPkgVersion.current),
                                  options: options.recorded)
            }, assignment: audit.map(PackageAssignment.init), graph: graphReport, to: path, progress: progress)
        }
        converter = try OutputBudget.resolve(converter, model: model, calibration: options.calibration?.data, modelName: input) { trial, path in
            _ = try write(trial, to: path, progress: nil)
        }
        if converter.options.autoBudget != nil { clock.lap("measure candidate formats (auto)") }
        let (manifest, report) = try write(converter, to: output, progress: progress)
        clock.lap("write manifest and report")
        let source = manifest.provenance.source
        let packageBytes = OutputBudget.bytes(atPath: output)
        return Result(timings: clock.laps, manifest: manifest, report: report, graph: graphReport, sourceBytes: source.bytes,
                      packageBytes: packageBytes, audit: audit)
    }

    /// The package must not replace the model it reads (or the folder holding it).
    static func refuseOverwritingInput(input: String, output: String) throws(PackageError) {
        let inputPath = URL(fileURLWithPath: input).resolvingSymlinksInPath().standardizedFileURL.path
        let outputPath = URL(fileURLWithPath: output).resolvingSymlinksInPath().standardizedFileURL.path
        if inputPath == outputPath || inputPath.hasPrefix(outputPath + "/") {
            throw PackageError(path: output, "is the input model or contains it; refusing to write over the input")
        }
    }

    static func sourceDescription(input: String, model: Model, digest: SourceDigest) -> Provenance.Source {
        let (bytes, sha256) = digest.result()
        var external: [String: Int] = [:]
        model.graph.forEachGraph { graph, _ in
            for tensor in graph.initializers {
                if case .external(let location, _, let length) = tensor.location { external[location, default: 0] += length }
            }
        }
        return Provenance.Source(
            file: URL(fileURLWithPath: input).lastPathComponent, bytes: bytes, sha256: sha256,
            externalData: external.keys.sorted().map { Provenance.ExternalFile(location: $0, bytes: external[$0]!) })
    }
}

/// SHA-256 of a mapped file, computed on a background thread from the moment it is created.
final class SourceDigest: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var digest = ""
    private let size: Int

    init(file: MappedFile) {
        size = file.bytes.count
        if Parallel.serial {  // no worker thread under `ulimit -v` (see Parallel.serial)
            digest = Checksum.sha256(file.bytes)
            done.signal()
            return
        }
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            digest = Checksum.sha256(file.bytes)
            done.signal()
        }
    }

    /// Waits for the digest: (file size, hex SHA-256). May be called again (`--max-size` writes trial outputs).
    func result() -> (Int, String) {
        done.wait()
        done.signal()
        return (size, digest)
    }
}

/// Wall-clock laps for `--verbose`.
public struct StepClock: Sendable {
    private var last = DispatchTime.now()
    /// Each step's name and its wall time in seconds, in the order the laps were taken.
    public private(set) var laps: [(step: String, seconds: Double)] = []

    /// A clock whose first lap starts now.
    public init() {}

    /// Records the time since the previous lap (or since the clock was made) as `step`, and starts the next lap.
    public mutating func lap(_ step: String) {
        let now = DispatchTime.now()
        laps.append((step, Double(now.uptimeNanoseconds - last.uptimeNanoseconds) / 1e9))
        last = now
    }
}
