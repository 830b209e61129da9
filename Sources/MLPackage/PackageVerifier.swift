import Foundation
import GraphIR

/// What `mlpkg verify` found.
public struct VerificationResult: Codable, Sendable, Equatable {
    /// One problem found.
    public struct Fault: Codable, Sendable, Equatable {
        /// The fault, one line starting with the package path.
        public var message: String
        /// The tensor at fault, when there is one.
        public var tensor: String?
    }

    /// The package checked, as given.
    public var package: String
    /// True when no fault was found.
    public var ok: Bool
    /// The manifest's `formatVersion`; nil when the manifest could not be read.
    public var formatVersion: String?
    /// Entries in the tensor table; 0 when the manifest could not be read.
    public var tensors: Int
    /// Actual size of weights.bin in bytes; 0 when it was not read.
    public var weightsBytes: Int
    /// Every fault found, in the order checked; empty when the package is sound.
    public var faults: [Fault]
}

/// Checks a package completely: format and version, manifest structure, weights.bin size, every blob's bounds,
/// alignment, length and SHA-256, zero padding between blobs, tensor references, the graph (acyclic, every input
/// produced) and report.json. Collects every fault rather than stopping at the first.
public enum PackageVerifier {
    /// Opens and checks the package at `path`; a package that cannot be opened gives one fault.
    /// `progress` hears of each tensor checked.
    public static func verify(path: String, progress: ProgressHandler? = nil) -> VerificationResult {
        var result = VerificationResult(package: path, ok: false, formatVersion: nil, tensors: 0, weightsBytes: 0, faults: [])
        let manifest: Manifest
        let files: PackageFiles
        do {
            files = try PackageFiles(path: path)  // one directory descriptor: every file from one version of it
            manifest = try PackageReader.readManifest(files)
        } catch {
            result.faults.append(.init(message: error.description, tensor: error.tensor))
            return result
        }
        let weights: ByteView
        let report: Data?
        do {
            weights = try files.map(Manifest.weightsFileName).view
            report = try files.report()
        } catch {
            result.formatVersion = manifest.formatVersion
            result.faults.append(.init(message: error.description, tensor: error.tensor))
            return result
        }
        return verify(path: path, manifest: manifest, weights: weights, report: report, progress: progress)
    }

    /// Checks a package whose parts are in memory (`report` nil: report.json is missing).
    public static func verify(path: String, manifest: Manifest, weights: ByteView, report: Data?,
                              progress: ProgressHandler? = nil) -> VerificationResult {
        var result = VerificationResult(package: path, ok: false, formatVersion: manifest.formatVersion,
                                        tensors: manifest.tensors.count, weightsBytes: 0, faults: [])
        func fault(_ error: PackageError) {
            result.faults.append(.init(message: error.description, tensor: error.tensor))
        }
        result.weightsBytes = weights.count
        if weights.count != manifest.weights.bytes {
            fault(PackageError(path: path, "weights.bin is \(weights.count) bytes, the manifest says \(manifest.weights.bytes) (truncated or replaced)"))
        }

        // Blobs: structure, checksum, and zero padding in the gaps between them.
        var covered: [(Int, Int)] = []
        var checked = 0
        for (index, record) in manifest.tensors.enumerated() {
            progress?(WorkProgress(step: "check checksums", items: index, totalItems: manifest.tensors.count,
                                   bytes: checked, totalBytes: weights.count))
            checked += max(0, min(record.length, weights.count))
            let structural = ManifestDecoder.faults(of: record, index: index, weightsSize: weights.count, path: path,
                                                           table: manifest.tensors)
            structural.forEach(fault)
            let end = record.offset &+ record.length
            guard record.offset >= 0, record.length >= 0, end <= weights.count, end >= record.offset else { continue }
            covered.append((record.offset, end))
            let blob = weights.slice(record.offset..<end)
            defer { blob.releaseMappedPages() }  // a multi-GB package is checked in bounded memory
            if Checksum.sha256(blob) != record.sha256 {
                fault(PackageError(path: path, "tensor '\(record.name)': checksum mismatch at bytes \(record.offset)..<\(end) of weights.bin",
                                   tensor: record.name))
            }
        }
        covered.sort { $0.0 < $1.0 }
        var cursor = 0
        for (start, end) in covered {
            if start < cursor {
                fault(PackageError(path: path, "blobs overlap at byte \(start) of weights.bin"))
            } else if let bad = firstNonZero(weights, cursor..<start) {
                fault(PackageError(path: path, "padding byte \(bad) of weights.bin is not zero (corrupt)"))
            }
            cursor = max(cursor, end)
        }
        if cursor < weights.count, let bad = firstNonZero(weights, cursor..<weights.count) {
            fault(PackageError(path: path, "trailing byte \(bad) of weights.bin is not zero (corrupt)"))
        }

        // The graph: references and structure. Tensor faults above already name bad blobs, so only look further
        // when the table is sound.
        if result.faults.isEmpty {
            do {
                let model = try ManifestDecoder(manifest: manifest, weights: weights, path: path).model()
                do {
                    _ = try GraphVerifier.verified(model.graph)
                } catch let error as GraphError {
                    fault(PackageError(path: path, error.description))
                }
            } catch let error as PackageError {
                fault(error)
            } catch {
                fault(PackageError(path: path, "\(error)"))
            }
        }

        // Recorded compute units must be ones readers know.
        func checkUnits(_ g: GraphRecord) {
            for n in g.nodes {
                if let unit = n.computeUnit, !Manifest.computeUnits.contains(unit) {
                    fault(PackageError(path: path, "node '\(n.name.isEmpty ? n.opType : n.name)': unknown computeUnit '\(unit)' (neural-engine, gpu, cpu or unsupported)"))
                }
                for a in n.attributes {
                    a.g.map(checkUnits)
                    a.graphs?.forEach(checkUnits)
                }
            }
        }
        checkUnits(manifest.graph)

        if let data = report {
            if (try? JSONSerialization.jsonObject(with: data)) == nil {
                fault(PackageError(path: path, "report.json is not valid JSON"))
            }
        } else {
            fault(PackageError(path: path, "report.json is missing"))
        }
        result.ok = result.faults.isEmpty
        return result
    }

    private static func firstNonZero(_ view: ByteView, _ range: Range<Int>) -> Int? {
        let bytes = view.bytes
        for i in range where bytes[i] != 0 { return i }
        return nil
    }
}
