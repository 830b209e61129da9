import Foundation
import GraphIR
import MIL

/// A `.mlpackage` as it is on disk, written by mlpkg or any other tool: its `Manifest.json`, the root model's
/// specification decoded, and its blob files. Reading collects faults instead of stopping at the first, so
/// `verify` can list them all; `inspect` needs only the model to decode.
public struct CoreMLPackageContents: Sendable {
    /// The package folder as given.
    public var path: String
    /// `Manifest.json`'s `fileFormatVersion`.
    public var fileFormatVersion: String?
    /// The root model file, relative to the package (`Data/com.apple.CoreML/model.mlmodel`).
    public var modelFile: String?
    /// Size of the model file in bytes.
    public var modelBytes: Int = 0
    /// The decoded model, nil when it could not be read or decoded.
    public var spec: CoreMLModelSpec?
    /// The blob files the program reads (and `weights/weight.bin` when present), by the name the program uses
    /// (`@model_path/weights/weight.bin`).
    public var blobFiles: [(name: String, reader: BlobStorageReader)] = []
    /// What is wrong, in the order found, each naming the file.
    public var faults: [String] = []

    /// The blob file a `BlobFileValue` names, when it was read.
    public func blobFile(_ name: String) -> BlobStorageReader? { blobFiles.first { $0.name == name }?.reader }
}

/// Reads `.mlpackage` folders (`mlpkg inspect` and `verify`).
public enum CoreMLPackageReader {
    /// Whether `path` is meant as a Core ML package: it ends in `.mlpackage`, or it is a folder holding
    /// `Manifest.json` and `Data/` (an mlpkg package has `manifest.json` and no `Data/`, which matters on
    /// case-insensitive file systems).
    public static func isMLPackage(_ path: String) -> Bool {
        var p = path
        while p.count > 1, p.hasSuffix("/") { p.removeLast() }
        if p.lowercased().hasSuffix(".mlpackage") { return true }
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
            && FileManager.default.fileExists(atPath: path + "/Manifest.json") && FileManager.default.fileExists(atPath: path + "/Data")
    }

    /// The name a const uses for the standard weight file.
    public static let weightFile = "@model_path/weights/weight.bin"

    /// Reads the container, the model and its blob files; every problem goes to `faults`.
    public static func read(path: String) -> CoreMLPackageContents {
        var contents = CoreMLPackageContents(path: path)
        func fault(_ message: String) { contents.faults.append("\(path): \(message)") }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            fault("no such file or folder")
            return contents
        }
        guard isDirectory.boolValue else {
            fault("is not a folder; a .mlpackage is a folder with Manifest.json and Data/")
            return contents
        }

        // Manifest.json: format version, item entries, the root model's identifier.
        var rootPath: String?
        if let data = FileManager.default.contents(atPath: path + "/Manifest.json") {
            if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                contents.fileFormatVersion = object["fileFormatVersion"] as? String
                if contents.fileFormatVersion == nil { fault("Manifest.json has no fileFormatVersion") }
                let entries = object["itemInfoEntries"] as? [String: Any] ?? [:]
                if object["itemInfoEntries"] == nil { fault("Manifest.json has no itemInfoEntries") }
                for (id, value) in entries.sorted(by: { $0.key < $1.key }) {
                    guard let entry = value as? [String: Any], let item = entry["path"] as? String else {
                        fault("Manifest.json: item \(id) has no path")
                        continue
                    }
                    guard let relative = safeRelative(item) else {
                        fault("Manifest.json: item \(id)'s path '\(item)' leaves the package (absolute or with ..)")
                        continue
                    }
                    if !FileManager.default.fileExists(atPath: path + "/Data/" + relative) {
                        fault("Manifest.json: item \(id)'s path Data/\(relative) does not exist")
                    }
                }
                if let root = object["rootModelIdentifier"] as? String {
                    if let entry = entries[root] as? [String: Any], let item = entry["path"] as? String, let relative = safeRelative(item) {
                        rootPath = "Data/" + relative
                    } else if entries[root] == nil {
                        fault("Manifest.json: rootModelIdentifier \(root) is not among its itemInfoEntries")
                    }
                } else {
                    fault("Manifest.json has no rootModelIdentifier")
                }
            } else {
                fault("Manifest.json is not a JSON object")
            }
        } else {
            fault("has no Manifest.json")
        }
        // Without a usable manifest, the conventional place (what every writer uses).
        let modelFile = rootPath ?? "Data/com.apple.CoreML/model.mlmodel"
        contents.modelFile = modelFile

        guard let bytes = FileManager.default.contents(atPath: path + "/" + modelFile) else {
            fault("\(modelFile): cannot be read (missing, or not a file)")
            return contents
        }
        contents.modelBytes = bytes.count
        do throws(CoreMLModelDecoder.Failure) {
            contents.spec = try CoreMLModelDecoder.decode(Array(bytes))
        } catch {
            fault("\(modelFile): \(error.message)")
            return contents
        }

        // Blob files: the ones the program names, and weights/weight.bin beside the model in any case.
        let modelFolder = (modelFile as NSString).deletingLastPathComponent
        var names = Set<String>()
        if let program = contents.spec?.program {
            for f in program.functions { for (_, b) in f.blocks { collectBlobFiles(b, into: &names) } }
        }
        if FileManager.default.fileExists(atPath: path + "/" + modelFolder + "/weights/weight.bin") { names.insert(weightFile) }
        for name in names.sorted() {
            guard name.hasPrefix("@model_path/"), let relative = safeRelative(String(name.dropFirst("@model_path/".count))) else {
                fault("\(modelFile): a blob file '\(name)' is not inside the package (@model_path/…)")
                continue
            }
            let file = path + "/" + modelFolder + "/" + relative
            do throws(MappedFile.Failure) {
                let mapped = try MappedFile(path: file)
                contents.blobFiles.append((name, BlobStorageReader(mapped.view)))
            } catch {
                fault("\(modelFolder)/\(relative): cannot be read (\(describe(error)))")
            }
        }
        return contents
    }

    /// A path relative to the package, nil for an absolute one or one with `..`.
    static func safeRelative(_ path: String) -> String? {
        guard !path.hasPrefix("/"), !path.split(separator: "/").contains("..") else { return nil }
        return path
    }

    static func describe(_ error: MappedFile.Failure) -> String {
        switch error {
        case .open(let code), .map(let code): return MappedFile.describe(errno: code)
        case .notRegular: return "not a regular file"
        }
    }

    static func collectBlobFiles(_ block: MILSpecBlock, into names: inout Set<String>) {
        for op in block.operations {
            for v in op.values { if case .blob(let file, _) = v.storage { names.insert(file) } }
            for b in op.blocks { collectBlobFiles(b, into: &names) }
        }
    }
}

extension MILSpecOperation {
    /// Every value the op holds: attributes and arguments bound in place.
    var values: [MILSpecValue] {
        attributes.map(\.value) + inputs.flatMap { $0.arguments.compactMap { b -> MILSpecValue? in
            if case .value(let v) = b { return v }
            return nil
        } }
    }
}
