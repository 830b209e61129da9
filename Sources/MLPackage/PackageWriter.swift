import Audit
import Foundation
import GraphIR
import Quantization
import SafeOutput

/// The version mlpkg writes into provenance.
public enum MLPkgVersion {
    public static let current = "0.1.0"
}

/// The contents of report.json.
public struct PackageReport: Codable, Sendable, Equatable {
    public var format = "mlpkg-report"
    public var formatVersion = Manifest.baseVersion.description
    public var conversion: ConversionReport
    /// The compute-unit audit `convert --profile` ran (format 1.1); absent otherwise.
    public var audit: PackageAudit?

    public init(formatVersion: String = Manifest.baseVersion.description, conversion: ConversionReport,
                audit: PackageAudit? = nil) {
        self.formatVersion = formatVersion
        self.conversion = conversion
        self.audit = audit
    }
}

/// Writes a model as a `.mlpkg` directory: manifest.json, weights.bin (blobs 64-byte aligned, zero padded) and
/// report.json, atomically (see `AtomicDirectory`). The same model and provenance give byte-identical files.
public enum PackageWriter {
    /// `computeUnits` (by `NodePath.key`) and `audit` come from `convert --profile`; with them the package is
    /// format 1.1, without them 1.0.
    public static func write(model: Model, provenance: Provenance, report: ConversionReport,
                             computeUnits: [String: String] = [:], audit: PackageAudit? = nil,
                             to path: String) throws(PackageError) -> Manifest {
        do {
            return try writeFiles(model: model, provenance: provenance, report: report, computeUnits: computeUnits,
                                  audit: audit, to: path)
        } catch {
            throw PackageError(error)
        }
    }

    private static func writeFiles(model: Model, provenance: Provenance, report: ConversionReport,
                                   computeUnits: [String: String], audit: PackageAudit?,
                                   to path: String) throws(OutputError) -> Manifest {
        let version = (computeUnits.isEmpty && audit == nil ? Manifest.baseVersion : Manifest.version).description
        var encoder = ManifestEncoder()
        encoder.computeUnits = computeUnits
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
                format: Manifest.formatName, formatVersion: version, functions: functions,
                graph: graph, metadata: model.metadata,
                model: ModelInfo(irVersion: model.irVersion, producerName: model.producerName,
                                 producerVersion: model.producerVersion, domain: model.domain,
                                 modelVersion: model.modelVersion, docString: model.docString),
                opsetImports: model.opsetImports, provenance: provenance, tensors: records,
                weights: WeightsFile(file: Manifest.weightsFileName, bytes: weightsBytes, alignment: Manifest.alignment))
            try writeJSON(manifest, pretty: false, to: directory.path(Manifest.manifestFileName))
            try writeJSON(PackageReport(formatVersion: version, conversion: report, audit: audit), pretty: true,
                          to: directory.path(Manifest.reportFileName))
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
