import Foundation
import GraphIR

/// A package opened for reading: its manifest, the model it holds (tensors are views of the mapped weights.bin).
public struct LoadedPackage: Sendable {
    /// The package directory as given.
    public var path: String
    /// The decoded manifest.json.
    public var manifest: Manifest
    /// The model rebuilt from the manifest, verified, its weights viewing the mapped weights.bin.
    public var model: Model
}

/// Opens `.mlpkg` packages. The manifest's `format` and `formatVersion` are checked before anything else is read:
/// another format, or a newer major version, is refused with a clear message.
public enum PackageReader {
    /// Manifests larger than this are refused before parsing.
    public static let maxManifestBytes = 1 << 30

    /// Whether `path` names a package (a folder holding manifest.json, or any path ending in `.mlpkg`).
    public static func isPackage(path: String) -> Bool {
        if path.hasSuffix(".mlpkg") || path.hasSuffix(".mlpkg/") { return true }
        return FileManager.default.fileExists(atPath: path + "/" + Manifest.manifestFileName)
    }

    /// Opens the package at `path` and reads its manifest.json.
    public static func readManifest(path: String) throws(PackageError) -> Manifest {
        try readManifest(PackageFiles(path: path))
    }

    /// Reads manifest.json of an opened package.
    public static func readManifest(_ files: PackageFiles) throws(PackageError) -> Manifest {
        let file = try files.map(Manifest.manifestFileName)
        guard file.bytes.count <= maxManifestBytes else {
            throw PackageError(path: files.path, "manifest.json is \(file.bytes.count) bytes, over the \(maxManifestBytes)-byte limit")
        }
        return try decodeManifest(Data(file.bytes), path: files.path)
    }

    /// Checks the header, then decodes the manifest held in `data` (`path` names the package in errors).
    public static func decodeManifest(_ data: Data, path: String) throws(PackageError) -> Manifest {
        try checkHeader(data, path: path)
        if let key = DuplicateKeys.first(in: data) {
            throw PackageError(path: path, "manifest.json has the key '\(key)' twice in one object; JSON readers disagree on which one counts, so mlpkg refuses it")
        }
        do {
            return try decoder.decode(Manifest.self, from: data)
        } catch let error as DecodingError {
            throw PackageError(path: path, "manifest.json does not match format \(Manifest.version): \(error.summary)")
        } catch {
            throw PackageError(path: path, "manifest.json cannot be read: \(error)")
        }
    }

    /// Checks `format` and `formatVersion` alone, so a newer or foreign manifest gets a message about its version
    /// rather than about whatever field changed.
    static func checkHeader(_ data: Data, path: String) throws(PackageError) {
        struct Header: Decodable {
            var format: String?
            var formatVersion: String?
        }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: data)
        } catch {
            throw PackageError(path: path, "manifest.json is not valid JSON (\(error.summary))")
        }
        guard header.format == Manifest.formatName else {
            throw PackageError(path: path, "manifest.json format is \(header.format.map { "'\($0)'" } ?? "missing"), not '\(Manifest.formatName)'")
        }
        guard let text = header.formatVersion, let version = FormatVersion(text) else {
            throw PackageError(path: path, "manifest.json formatVersion is missing or not MAJOR.MINOR")
        }
        guard version.major <= Manifest.version.major else {
            throw PackageError(path: path, "package format version \(version) is newer than this mlpkg reads (\(Manifest.version.major).x); upgrade mlpkg to read it")
        }
    }

    /// Reads the manifest, maps weights.bin and rebuilds the model. With `checksums`, every blob's SHA-256 is
    /// checked first (the first mismatch is thrown, naming the tensor).
    public static func load(path: String, checksums: Bool) throws(PackageError) -> LoadedPackage {
        let files = try PackageFiles(path: path)
        let manifest = try readManifest(files)
        let weights = try mapWeights(files, manifest: manifest)
        return try load(path: path, manifest: manifest, weights: weights, checksums: checksums)
    }

    /// Rebuilds the model from a decoded manifest and the bytes of weights.bin.
    public static func load(path: String, manifest: Manifest, weights: ByteView,
                            checksums: Bool) throws(PackageError) -> LoadedPackage {
        guard weights.count == manifest.weights.bytes else {
            throw PackageError(path: path, "weights.bin is \(weights.count) bytes, the manifest says \(manifest.weights.bytes) (truncated or replaced)")
        }
        // Structure and overlap are checked for every reader (cheap); the same checks `verify` makes, so no command
        // reads a package verify would refuse (issue 16: overlapping blobs passed export, inspect and audit).
        var ranges: [(start: Int, end: Int, name: String)] = []
        for (index, record) in manifest.tensors.enumerated() {
            if let fault = ManifestDecoder.faults(of: record, index: index, weightsSize: weights.count, path: path,
                                                  table: manifest.tensors).first {
                throw fault
            }
            ranges.append((record.offset, record.offset + record.length, record.name))
        }
        ranges.sort { $0.start < $1.start }
        for (a, b) in zip(ranges, ranges.dropFirst()) where b.start < a.end {
            throw PackageError(path: path, "tensor '\(b.name)': its bytes overlap those of '\(a.name)' in weights.bin", tensor: b.name)
        }
        if checksums {
            for record in manifest.tensors {
                let blob = weights.slice(record.offset..<(record.offset + record.length))
                defer { blob.releaseMappedPages() }  // read again when used; memory stays bounded meanwhile
                guard Checksum.sha256(blob) == record.sha256 else {
                    throw PackageError(path: path, "tensor '\(record.name)': checksum mismatch (weights.bin is corrupt)", tensor: record.name)
                }
            }
        }
        let decoder = ManifestDecoder(manifest: manifest, weights: weights, path: path)
        var model = try decoder.model()
        do {
            model.graph = try GraphVerifier.verified(model.graph)
        } catch let error as GraphError {
            throw PackageError(path: path, error.description)
        } catch {
            throw PackageError(path: path, "\(error)")
        }
        return LoadedPackage(path: path, manifest: manifest, model: model)
    }

    static func mapWeights(_ files: PackageFiles, manifest: Manifest) throws(PackageError) -> ByteView {
        let file = try files.map(Manifest.weightsFileName)
        guard file.bytes.count == manifest.weights.bytes else {
            throw PackageError(path: files.path, "weights.bin is \(file.bytes.count) bytes, the manifest says \(manifest.weights.bytes) (truncated or replaced)")
        }
        return file.view
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity",
                                                                         negativeInfinity: "-Infinity", nan: "NaN")
        return decoder
    }
}

extension Error {
    /// One line about a decoding failure: what and where.
    var summary: String {
        guard let error = self as? DecodingError else { return "\(self)" }
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case .typeMismatch(_, let c): return "wrong type at \(path(c)): \(c.debugDescription)"
        case .valueNotFound(_, let c): return "missing value at \(path(c))"
        case .keyNotFound(let key, let c): return "missing key '\(key.stringValue)' at \(path(c).isEmpty ? "top level" : path(c))"
        case .dataCorrupted(let c): return "\(c.debugDescription) \(path(c))".trimmingCharacters(in: .whitespaces)
        @unknown default: return "\(error)"
        }
    }
}
