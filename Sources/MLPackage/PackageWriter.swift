import Foundation
import GraphIR
import Quantization
import SafeOutput

/// The version mlpkg writes into provenance.
public enum MLPkgVersion {
    /// This build's version, as `provenance.producer.version` records it.
    public static let current = "0.1.0"
}

/// The contents of report.json.
public struct PackageReport: Codable, Sendable, Equatable {
    /// Always "mlpkg-report".
    public var format = "mlpkg-report"
    /// The package's format version, the same as the manifest's.
    public var formatVersion = Manifest.baseVersion.description
    /// What the conversion did to each weight: converted and kept tensors and the totals.
    public var conversion: ConversionReport
    /// The compute-unit audit `convert --profile` ran (format 1.1); absent otherwise.
    public var audit: PackageAudit?
    /// What the graph passes did (absent in packages written before them).
    public var graph: GraphPassReport?

    /// A report; `audit` and `graph` are left out of the JSON when nil.
    public init(formatVersion: String = Manifest.baseVersion.description, conversion: ConversionReport,
                audit: PackageAudit? = nil, graph: GraphPassReport? = nil) {
        self.formatVersion = formatVersion
        self.conversion = conversion
        self.audit = audit
        self.graph = graph
    }
}

/// What `convert --profile` adds to a package: each node's compute unit (by `NodePath.key`) and the audit for
/// report.json. With it the package is format 1.1; without it, 1.0.
public struct PackageAssignment: Sendable, Equatable {
    /// Each node's compute unit (`neural-engine`, `gpu`, `cpu` or `unsupported`), by `NodePath.key`.
    public var computeUnits: [String: String]
    /// The audit kept in report.json.
    public var audit: PackageAudit

    /// An assignment of the given units with the audit they came from.
    public init(computeUnits: [String: String], audit: PackageAudit) {
        self.computeUnits = computeUnits
        self.audit = audit
    }
}

/// What `convert --profile` stores in report.json: the audit's summary and the nodes that are not on the target
/// unit, with their reasons (each node's unit is in the manifest, `computeUnit`). The summary and profiles are kept
/// as JSON, so reading a package needs no part of the audit.
public struct PackageAudit: Codable, Sendable, Equatable {
    /// A node the audit placed off the target unit.
    public struct Fallback: Codable, Sendable, Equatable {
        /// The node's name.
        public var name: String
        /// The node's operator.
        public var opType: String
        /// The operator's domain; "" is the default ONNX domain.
        public var domain: String
        /// The graph holding the node: "" for the main graph, a node path for a subgraph.
        public var graph: String
        /// The node's position in its graph.
        public var index: Int
        /// The unit it was placed on instead, or `unsupported` when no allowed unit can run it.
        public var unit: String
        /// Why it is not on the target: each rule that kept it off, with its confidence and source.
        public var reasons: [String]

        /// A fallback record with the given fields.
        public init(name: String, opType: String, domain: String, graph: String, index: Int, unit: String, reasons: [String]) {
            self.name = name
            self.opType = opType
            self.domain = domain
            self.graph = graph
            self.index = index
            self.unit = unit
            self.reasons = reasons
        }
    }

    /// The compute unit coverage was measured for (the `--profile`'s unit).
    public var target: String
    /// The set of units allowed (`all`, `cpu-and-ne`, `cpu-and-gpu` or `cpu-only`).
    public var computeUnits: String
    /// The chip whose numbers the cost estimate used.
    public var chip: String
    /// The `--input-shape` pins the audit ran with (`NAME=D0,D1,...`); empty when none.
    public var inputShapes: [String]
    /// The profiles used (`mlpkg-audit`'s `profiles`).
    public var profiles: JSONValue
    /// The audit's summary (`mlpkg-audit`'s `summary`: coverage, partitions, blockers, estimate…).
    public var summary: JSONValue
    /// The nodes not on the target unit, in report order.
    public var fallbacks: [Fallback]

    /// An audit record with the given fields.
    public init(target: String, computeUnits: String, chip: String, inputShapes: [String], profiles: JSONValue,
                summary: JSONValue, fallbacks: [Fallback]) {
        self.target = target
        self.computeUnits = computeUnits
        self.chip = chip
        self.inputShapes = inputShapes
        self.profiles = profiles
        self.summary = summary
        self.fallbacks = fallbacks
    }
}

/// The graph passes' part of report.json: the pipeline, what folding and dead-node elimination removed, and the
/// nodes whose output shapes stayed unknown.
public struct GraphPassReport: Codable, Sendable, Equatable {
    /// The passes run: "fold-and-infer", or "infer" with `--no-fold`.
    public var pipeline: String
    /// Rounds of folding and dead-node elimination until nothing changed.
    public var rounds: Int
    /// Nodes replaced by constants computed at conversion time.
    public var foldedNodes: Int
    /// BatchNormalization nodes folded into the linear node before them (absent in packages written before 1.2).
    public var foldedBatchNorms: Int?
    /// Dead nodes removed (their outputs reached no graph output).
    public var removedNodes: Int
    /// Initializers removed: ones folding created, and parameters of folded BatchNormalizations.
    public var removedInitializers: Int
    /// Values whose type has a dtype and a rank, of all values; values with every dim a number.
    public var typedValues: Int
    /// Values whose type has every dim a number.
    public var staticValues: Int
    /// Every value of every graph.
    public var values: Int
    /// Nodes whose output types stayed (partly) unknown, with the reason.
    public var unresolved: [UnresolvedNode]

    /// A report with the given counts.
    public init(pipeline: String, rounds: Int, foldedNodes: Int, foldedBatchNorms: Int?, removedNodes: Int,
                removedInitializers: Int, typedValues: Int, staticValues: Int, values: Int, unresolved: [UnresolvedNode]) {
        self.pipeline = pipeline
        self.rounds = rounds
        self.foldedNodes = foldedNodes
        self.foldedBatchNorms = foldedBatchNorms
        self.removedNodes = removedNodes
        self.removedInitializers = removedInitializers
        self.typedValues = typedValues
        self.staticValues = staticValues
        self.values = values
        self.unresolved = unresolved
    }
}

/// Writes a model as a `.mlpkg` directory: manifest.json, weights.bin (blobs 64-byte aligned, zero padded) and
/// report.json, atomically (see `AtomicDirectory`). The same model and provenance give byte-identical files.
public enum PackageWriter {
    /// Writes `model` as it is (its weights already in their final encoding).
    public static func write(model: Model, provenance: Provenance, report: ConversionReport,
                             assignment: PackageAssignment? = nil, graph: GraphPassReport? = nil,
                             to path: String) throws(PackageError) -> Manifest {
        do {
            return try writeFiles(model: model, provenance: { provenance }, assignment: assignment, graph: graph,
                                  to: path) { _, _ in report }.manifest
        } catch {
            throw PackageError(error)
        }
    }

    /// Converts `model`'s weights with `converter` and writes the package, streaming: weights are converted a window
    /// at a time on all cores, each result is appended to weights.bin as soon as its window is done and then freed,
    /// and the pages of mapped source weights are released once read. Memory stays near one window of weights
    /// (`windowBytes`) whatever the model's size.
    /// `provenance` is asked for once the weights are written (so a source digest can be computed meanwhile).
    /// `progress` hears of each tensor written (items and source bytes).
    public static func write(model: Model, converting converter: WeightConverter, provenance: () -> Provenance,
                             assignment: PackageAssignment? = nil, graph: GraphPassReport? = nil,
                             to path: String, progress: ProgressHandler? = nil) throws(PackageError) -> (manifest: Manifest, report: ConversionReport) {
        do {
            return try writeFiles(model: model, provenance: provenance, assignment: assignment, graph: graph,
                                  to: path) { model, weights throws(OutputError) in
                try streamConversion(&model, converter: converter, into: weights, progress: progress)
            }
        } catch {
            throw PackageError(error)
        }
    }

    /// Source bytes converted (or digested) per window: enough to keep every core busy, small enough to bound memory
    /// (a window holds at least one tensor per core, so memory is at most about cores × the largest tensor).
    static let windowBytes = 64 << 20

    /// Source bytes a streaming conversion holds at once: `windowBytes`, or enough for one tensor per core plus one
    /// being written when tensors are bigger.
    static func streamBudget(_ sizes: [Int]) -> Int {
        max(windowBytes, (windowMinimumItems + 1) * (sizes.max() ?? 0))
    }

    /// Items per window at least, whatever their size: one per core, so big tensors still convert in parallel.
    static let windowMinimumItems = max(ProcessInfo.processInfo.activeProcessorCount, 1)

    /// Splits `items` into consecutive windows of at most `windowBytes`, or of `windowMinimumItems` items when those
    /// are bigger (each core then holds one item).
    static func windows<T>(_ items: [T], bytes: (T) -> Int) -> [ArraySlice<T>] {
        var result: [ArraySlice<T>] = []
        var start = 0, total = 0
        for (i, item) in items.enumerated() {
            let size = bytes(item)
            if i - start >= windowMinimumItems && total + size > windowBytes {
                result.append(items[start..<i])
                start = i
                total = 0
            }
            total += size
        }
        if start < items.count { result.append(items[start...]) }
        return result
    }

    /// `prepare` runs once weights.bin is open: it may stream blobs into it (marking those tensors `.stored`) and
    /// returns the report. The remaining blobs follow in table order.
    private static func writeFiles(
        model: Model, provenance: () -> Provenance, assignment: PackageAssignment?, graph passes: GraphPassReport?,
        to path: String,
        prepare: (inout Model, OutputFile) throws(OutputError) -> ConversionReport
    ) throws(OutputError) -> (manifest: Manifest, report: ConversionReport) {
        let directory = try AtomicDirectory(target: path) { existing in
            FileManager.default.fileExists(atPath: existing + "/" + Manifest.manifestFileName)
        }
        do throws(OutputError) {
            let weights = try directory.file(Manifest.weightsFileName)
            var model = model
            let report = try prepare(&model, weights)
            var encoder = ManifestEncoder()
            encoder.computeUnits = assignment?.computeUnits ?? [:]
            let graph = encoder.graph(model.graph)
            let functions = model.functions.map { encoder.function($0) }
            let records = try writeWeights(encoder.tensors, encodings: encoder.encodings, to: weights)
            // The oldest version that holds what is written: 1.2 palettes, 1.1 compute units, else 1.0.
            let version = (encoder.usesPalettes ? Manifest.version
                           : assignment == nil ? Manifest.baseVersion : Manifest.unitsVersion).description
            try weights.finish()
            let manifest = Manifest(
                format: Manifest.formatName, formatVersion: version, functions: functions,
                graph: graph, metadata: model.metadata,
                model: ModelInfo(irVersion: model.irVersion, producerName: model.producerName,
                                 producerVersion: model.producerVersion, domain: model.domain,
                                 modelVersion: model.modelVersion, docString: model.docString),
                opsetImports: model.opsetImports, provenance: provenance(), tensors: records,
                weights: WeightsFile(file: Manifest.weightsFileName, bytes: weights.written, alignment: Manifest.alignment))
            try writeJSON(manifest, pretty: false, to: directory.file(Manifest.manifestFileName))
            try writeJSON(PackageReport(formatVersion: version, conversion: report, audit: assignment?.audit, graph: passes),
                          pretty: true, to: directory.file(Manifest.reportFileName))
            try directory.commit()
            return (manifest, report)
        } catch {
            directory.abandon()
            throw error
        }
    }

    /// One converted weight with the digests of its blobs (values, then scale and zero point for linear encodings).
    private enum Streamed: Sendable {
        case converted(Tensor, ConversionReport.Converted, digests: [String])
        case kept(ConversionReport.Kept)
    }

    private static func streamConversion(_ model: inout Model, converter: WeightConverter, into weights: OutputFile,
                                         progress: ProgressHandler?) throws(OutputError) -> ConversionReport {
        let plan = converter.plan(model)
        var converted: [ConversionReport.Converted] = []
        var kept = plan.kept
        let totalBytes = plan.jobs.reduce(0) { $0 + $1.tensor.byteCount }
        var doneBytes = 0
        progress?(WorkProgress(step: "convert weights", items: 0, totalItems: plan.jobs.count, bytes: 0, totalBytes: totalBytes))
        // Workers convert tensors in file order while this thread writes each finished one: at most
        // `streamBudget` of source bytes are converted or waiting to be written at any time.
        let jobs = plan.jobs
        try Parallel.pipeline(jobs, cost: { $0.tensor.byteCount }, budget: streamBudget(jobs.map(\.tensor.byteCount)),
                              produce: { job -> Streamed in
            let result = converter.run(job)
            if case .bytes(let source) = job.tensor.data { source.releaseMappedPages() }
            switch result {
            case .converted(let tensor, let entry):
                return .converted(tensor, entry, digests: blobs(of: tensor).map { Checksum.sha256($0.view) })
            case .kept(let entry):
                return .kept(entry)
            }
        }, consume: { (i: Int, result: Streamed) throws(OutputError) in
            switch result {
            case .converted(let tensor, let entry, let digests):
                converter.apply(try store(tensor, digests: digests, in: weights), for: jobs[i], in: &model)
                converted.append(entry)
            case .kept(let entry):
                kept.append(entry)
            }
            doneBytes += jobs[i].tensor.byteCount
            progress?(WorkProgress(step: "convert weights", items: i + 1, totalItems: jobs.count, bytes: doneBytes,
                                   totalBytes: totalBytes))
        })
        return converter.report(plan, converted: converted, kept: kept)
    }

    /// The blobs a tensor puts in weights.bin: its values, then its scale and zero point (linear encodings).
    private static func blobs(of tensor: Tensor) -> [Blob] {
        var result = [Blob(tensor)]
        if case .linear(let q) = tensor.encoding {
            result.append(Blob(q.scale))
            if let zeroPoint = q.zeroPoint { result.append(Blob(zeroPoint)) }
        }
        if case .palette(let p) = tensor.encoding { result.append(Blob(p.lut)) }
        return result
    }

    /// Appends one blob, 64-byte aligned, and returns where it went.
    private static func append(_ blob: Blob, to file: OutputFile) throws(OutputError) -> Int {
        try file.writeZeros((Manifest.alignment - file.written % Manifest.alignment) % Manifest.alignment)
        let offset = file.written
        try file.write(blob.view.bytes)
        return offset
    }

    /// Writes a converted tensor's blobs and returns it marked `.stored`, its memory released.
    private static func store(_ tensor: Tensor, digests: [String], in file: OutputFile) throws(OutputError) -> Tensor {
        func stored(_ t: Tensor, _ digest: String) throws(OutputError) -> Tensor {
            let blob = Blob(t)
            var t = t
            t.location = .stored(offset: try append(blob, to: file), length: blob.view.count, sha256: digest)
            t.data = .bytes(.empty)
            return t
        }
        var result = try stored(tensor, digests[0])
        if case .linear(var q) = tensor.encoding {
            q.scale = try stored(q.scale, digests[1])
            if let zeroPoint = q.zeroPoint { q.zeroPoint = try stored(zeroPoint, digests[2]) }
            result.encoding = .linear(q)
        }
        if case .palette(var p) = tensor.encoding {
            p.lut = try stored(p.lut, digests[1])
            result.encoding = .palette(p)
        }
        return result
    }

    /// Writes the table's blobs not streamed already, window by window: digests in parallel, then the bytes in order,
    /// then the source pages released.
    static func writeWeights(_ tensors: [Tensor], encodings: [EncodingRecord],
                             to file: OutputFile) throws(OutputError) -> [TensorRecord] {
        var placed: [(offset: Int, length: Int, sha256: String)?] = Array(repeating: nil, count: tensors.count)
        var pending: [Int] = []
        for (i, tensor) in tensors.enumerated() {
            if case .stored(let offset, let length, let sha256) = tensor.location {
                placed[i] = (offset, length, sha256)
            } else {
                pending.append(i)
            }
        }
        for window in windows(pending, bytes: { tensors[$0].byteCount }) {
            let blobs = window.map { Blob(tensors[$0]) }
            let digests = Parallel.map(blobs) { Checksum.sha256($0.view) }
            for (k, i) in window.enumerated() {
                placed[i] = (try append(blobs[k], to: file), blobs[k].view.count, digests[k])
                blobs[k].view.releaseMappedPages()
            }
        }
        return tensors.enumerated().map { i, tensor in
            let blob = placed[i]!
            return TensorRecord(name: tensor.name, dtype: tensor.dataType, shape: tensor.dims, encoding: encodings[i],
                                offset: blob.offset, length: blob.length, sha256: blob.sha256,
                                docString: tensor.docString.nonEmpty, metadata: tensor.metadata.nonEmpty)
        }
    }

    /// A tensor's bytes as weights.bin holds them (string tensors serialised; see FORMAT.md).
    struct Blob: Sendable {
        var view: ByteView
        init(_ tensor: Tensor) {
            switch tensor.data {
            case .bytes(let view): self.view = view
            case .strings(let strings): self.view = ByteView(copying: StringBlob.encode(strings))
            }
        }
    }

    /// manifest.json is compact (it can list thousands of nodes); report.json is pretty-printed for people.
    static func encoder(pretty: Bool) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity",
                                                                      negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }

    static func writeJSON<T: Encodable>(_ value: T, pretty: Bool, to file: OutputFile) throws(OutputError) {
        let data: Data
        do {
            data = try encoder(pretty: pretty).encode(value)
        } catch {
            throw OutputError(path: file.reportedPath, "cannot encode: \(error)")
        }
        try file.write(Array(data) + [0x0A])
        try file.finish()
    }
}
