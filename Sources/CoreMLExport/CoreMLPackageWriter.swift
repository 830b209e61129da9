import Crypto
import Foundation
import SafeOutput

/// The `.mlpackage` container: a directory with `Manifest.json` (item entries and the root model's identifier)
/// and `Data/com.apple.CoreML/` holding `model.mlmodel` and `weights/weight.bin`. Identifiers are UUID-shaped
/// digests of the content (not random), so the same model gives a byte-identical package; the directory is
/// written beside the target and renamed into place.
enum CoreMLPackageWriter {
    static let manifestName = "Manifest.json"

    /// Whether a directory is an `.mlpackage` (only those are replaced).
    static func isMLPackage(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/" + manifestName)
            && FileManager.default.fileExists(atPath: path + "/Data/com.apple.CoreML")
    }

    static func write(path: String, model: [UInt8], weights: BlobStorage) throws(OutputError) {
        let directory = try AtomicDirectory(target: path) { isMLPackage($0) }
        do throws(OutputError) {
            for folder in ["Data", "Data/com.apple.CoreML", "Data/com.apple.CoreML/weights"] {
                guard mkdir(directory.path(folder), 0o755) == 0 else {
                    throw OutputError(path: path, "cannot create \(folder): \(String(cString: strerror(errno)))")
                }
            }
            let modelFile = try directory.file("Data/com.apple.CoreML/model.mlmodel")
            try modelFile.write(model)
            try modelFile.finish()
            let weightFile = try directory.file("Data/com.apple.CoreML/weights/weight.bin")
            try weights.write(to: weightFile)
            try weightFile.finish()
            let manifest = try directory.file(manifestName)
            try manifest.write(Array(manifestJSON(model: model).utf8))
            try manifest.finish()
            try directory.commit()
        } catch {
            directory.abandon()
            throw error
        }
    }

    /// A UUID-formatted identifier from a digest of `parts`.
    static func identifier(_ parts: [[UInt8]]) -> String {
        var hash = SHA256()
        for p in parts { hash.update(data: p) }
        var bytes = Array(hash.finalize().prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x50  // name-based UUID layout (version 5 bits), variant 10
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = bytes.map { String(format: "%02X", $0) }.joined()
        let i = hex.startIndex
        func part(_ a: Int, _ b: Int) -> Substring { hex[hex.index(i, offsetBy: a)..<hex.index(i, offsetBy: b)] }
        return "\(part(0, 8))-\(part(8, 12))-\(part(12, 16))-\(part(16, 20))-\(part(20, 32))"
    }

    static func manifestJSON(model: [UInt8]) -> String {
        let modelID = identifier([Array("model.mlmodel".utf8), model])
        let weightsID = identifier([Array("weights".utf8), model])
        let entries = [
            (modelID, "CoreML Model Specification", "model.mlmodel", "com.apple.CoreML/model.mlmodel"),
            (weightsID, "CoreML Model Weights", "weights", "com.apple.CoreML/weights"),
        ].sorted { $0.0 < $1.0 }
        var text = "{\n    \"fileFormatVersion\": \"1.0.0\",\n    \"itemInfoEntries\": {\n"
        text += entries.map { id, description, name, path in
            "        \"\(id)\": {\n            \"author\": \"com.apple.CoreML\",\n            \"description\": \"\(description)\",\n"
                + "            \"name\": \"\(name)\",\n            \"path\": \"\(path)\"\n        }"
        }.joined(separator: ",\n")
        text += "\n    },\n    \"rootModelIdentifier\": \"\(modelID)\"\n}\n"
        return text
    }
}
