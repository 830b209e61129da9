import Foundation
import GraphIR
import Passes
import Quantization
import SafeOutput

/// The version mlpkg writes into provenance.
public enum MLPkgVersion {
    public static let current = "0.1.0"
}

/// The contents of report.json.
public struct PackageReport: Codable, Sendable, Equatable {
    public var format = "mlpkg-report"
    public var formatVersion = Manifest.version.description
    public var conversion: ConversionReport
    /// What the graph passes did (absent in packages written before them).
    public var graph: GraphPassReport?
}

/// The graph passes' part of report.json: the pipeline, what folding and dead-node elimination removed, and the
/// nodes whose output shapes stayed unknown.
public struct GraphPassReport: Codable, Sendable, Equatable {
    public var pipeline: String
    /// Rounds of folding and dead-node elimination until nothing changed.
    public var rounds: Int
    public var foldedNodes: Int
    public var removedNodes: Int
    public var removedInitializers: Int
    /// Values whose type has a dtype and a rank, of all values; values with every dim a number.
    public var typedValues: Int
    public var staticValues: Int
    public var values: Int
    public var unresolved: [UnresolvedNode]

    public init(pipeline: String, context: PassContext) {
        self.pipeline = pipeline
        rounds = context.rounds
        foldedNodes = context.foldedNodes
        removedNodes = context.removedNodes
        removedInitializers = context.removedInitializers
        let inferred = context.inference
        let all = inferred?.values ?? []
        values = all.count
        typedValues = all.filter { $0.type.hasRank }.count
        staticValues = all.filter { $0.type.isStatic }.count
        unresolved = inferred?.unresolved ?? []
    }
}

extension ValueType {
    /// A tensor with a dtype and a known rank.
    public var hasRank: Bool {
        if case .tensor(let t) = self { return t.elementType != nil && t.shape != nil }
        return false
    }

    /// A tensor with a dtype and every dim a number.
    public var isStatic: Bool {
        if case .tensor(let t) = self, t.elementType != nil, let s = t.shape {
            return s.allSatisfy { if case .value = $0 { return true }; return false }
        }
        return false
    }
}

/// Writes a model as a `.mlpkg` directory: manifest.json, weights.bin (blobs 64-byte aligned, zero padded) and
/// report.json, atomically (see `AtomicDirectory`). The same model and provenance give byte-identical files.
public enum PackageWriter {
    public static func write(model: Model, provenance: Provenance, report: ConversionReport, graph: GraphPassReport? = nil,
                             to path: String) throws(PackageError) -> Manifest {
        do {
            return try writeFiles(model: model, provenance: provenance, report: report, graph: graph, to: path)
        } catch {
            throw PackageError(error)
        }
    }

    private static func writeFiles(model: Model, provenance: Provenance, report: ConversionReport, graph passes: GraphPassReport?,
                                   to path: String) throws(OutputError) -> Manifest {
        var encoder = ManifestEncoder()
        let graph = encoder.graph(model.graph)
        let functions = model.functions.map { encoder.function($0) }
        let directory = try AtomicDirectory(target: path) { existing in
            FileManager.default.fileExists(atPath: existing + "/" + Manifest.manifestFileName)
        }
        do throws(OutputError) {
            let records = try writeWeights(encoder.tensors, encodings: encoder.encodings,
                                           to: directory.path(Manifest.weightsFileName))
            let weightsBytes = records.last.map { $0.offset + $0.length } ?? 0
            let manifest = Manifest(
                format: Manifest.formatName, formatVersion: Manifest.version.description, functions: functions,
                graph: graph, metadata: model.metadata,
                model: ModelInfo(irVersion: model.irVersion, producerName: model.producerName,
                                 producerVersion: model.producerVersion, domain: model.domain,
                                 modelVersion: model.modelVersion, docString: model.docString),
                opsetImports: model.opsetImports, provenance: provenance, tensors: records,
                weights: WeightsFile(file: Manifest.weightsFileName, bytes: weightsBytes, alignment: Manifest.alignment))
            try writeJSON(manifest, pretty: false, to: directory.path(Manifest.manifestFileName))
            try writeJSON(PackageReport(conversion: report, graph: passes), pretty: true, to: directory.path(Manifest.reportFileName))
            try directory.commit()
            return manifest
        } catch {
            directory.abandon()
            throw error
        }
    }

    /// Streams every blob into weights.bin. Digests are computed first, in parallel over the tensors.
    static func writeWeights(_ tensors: [Tensor], encodings: [EncodingRecord],
                             to path: String) throws(OutputError) -> [TensorRecord] {
        let blobs: [Blob] = tensors.map { tensor in
            switch tensor.data {
            case .bytes(let view): return Blob(view: view)
            case .strings(let strings): return Blob(view: ByteView(copying: StringBlob.encode(strings)))
            }
        }
        let digests = Parallel.map(blobs) { Checksum.sha256($0.view) }
        let file = try OutputFile(path: path)
        var records: [TensorRecord] = []
        records.reserveCapacity(tensors.count)
        for (i, tensor) in tensors.enumerated() {
            let padding = (Manifest.alignment - file.written % Manifest.alignment) % Manifest.alignment
            try file.writeZeros(padding)
            let offset = file.written
            try file.write(blobs[i].view.bytes)
            records.append(TensorRecord(name: tensor.name, dtype: tensor.dataType, shape: tensor.dims,
                                        encoding: encodings[i], offset: offset,
                                        length: blobs[i].view.count, sha256: digests[i],
                                        docString: tensor.docString.nonEmpty, metadata: tensor.metadata.nonEmpty))
        }
        try file.finish()
        return records
    }

    struct Blob: Sendable {
        var view: ByteView
    }

    /// manifest.json is compact (it can list thousands of nodes); report.json is pretty-printed for people.
    static func encoder(pretty: Bool) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity",
                                                                      negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }

    static func writeJSON<T: Encodable>(_ value: T, pretty: Bool, to path: String) throws(OutputError) {
        let data: Data
        do {
            data = try encoder(pretty: pretty).encode(value)
        } catch {
            throw OutputError(path: path, "cannot encode: \(error)")
        }
        let file = try OutputFile(path: path)
        try file.write(Array(data) + [0x0A])
        try file.finish()
    }
}
