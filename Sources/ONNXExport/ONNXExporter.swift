import Crypto
import Foundation
import GraphIR
import SafeOutput

/// Writes a model as an ONNX file that onnxruntime and the `onnx` package load: tensors encoded in the package
/// become standard ONNX (see `ExportPreparation`), and weights go to an external data file
/// `OUT.<digest>.data` when the protobuf would pass its 2 GiB limit (or when asked). Both files are replaced as a
/// unit: a reader sees the old pair or the new one.
public enum ONNXExporter {
    /// How to write the file.
    public struct Options: Sendable {
        /// Decode every encoded tensor (float16, quantized, palettized) to its dtype instead of keeping it stored.
        public var dequantize: Bool
        /// Put every tensor of at least `externalThreshold` bytes in `OUT.data` even when the model is small.
        public var forceExternalData: Bool
        /// Smallest tensor, in bytes, that goes to the external data file when one is written (default 1024).
        public var externalThreshold: Int
        /// Replace an existing file at the target even when it is not an ONNX model.
        public var force: Bool

        /// Options with the defaults: encodings kept, external data only past the size limit, no forced replacement.
        public init(dequantize: Bool = false, forceExternalData: Bool = false, externalThreshold: Int = 1024,
                    force: Bool = false) {
            self.dequantize = dequantize
            self.forceExternalData = forceExternalData
            self.externalThreshold = externalThreshold
            self.force = force
        }
    }

    /// Deepest message nesting ONNX readers accept (protobuf's default recursion limit; the `onnx` package's too).
    public static let maxMessageDepth = 100

    /// Protobuf refuses messages of 2 GiB or more; stay clear of it with room for the graph itself.
    public static let embeddedLimit = (1 << 31) - (64 << 20)

    /// What an export wrote.
    public struct Result: Sendable {
        /// Size of the model file, in bytes.
        public var modelBytes: Int
        /// Path of the external data file written; nil when every tensor is embedded.
        public var externalDataFile: String?
        /// Bytes of external data written; 0 when there is no external data file.
        public var externalDataBytes: Int
        /// What could not be exported as asked, e.g. quantized weights written as float32 for an old opset.
        public var notes: [String]
    }

    /// `progress` hears of the bytes written (external data, then the model file).
    public static func export(_ model: Model, to path: String, options: Options,
                              progress: ProgressHandler? = nil) throws(OutputError) -> Result {
        var preparation = ExportPreparation(dequantize: options.dequantize)
        let prepared = preparation.prepare(model)
        var embedded = ONNXEncoder(external: nil).model(prepared)
        var plan: ONNXEncoder.ExternalDataPlan?
        if options.forceExternalData || embedded.size >= embeddedLimit {
            let location = (path.split(separator: "/").last.map(String.init) ?? path) + ".data"
            let external = ONNXEncoder.ExternalDataPlan(location: location, minimumBytes: options.externalThreshold)
            embedded = ONNXEncoder(external: external).model(prepared)
            plan = external
        }
        guard embedded.size < (1 << 31) else {
            throw OutputError(path: path, "the graph alone is over protobuf's 2 GiB limit")
        }
        // Package readers refuse subgraphs nested past `Graph.maxNesting`; types nested inside the deepest ones can
        // still pass protobuf's recursion limit, and no ONNX reader would read the file back.
        guard embedded.depth <= maxMessageDepth else {
            throw OutputError(path: path, "the model would nest protobuf messages \(embedded.depth) levels deep (subgraphs and the types "
                              + "inside them); ONNX readers stop at \(maxMessageDepth), so nothing was written")
        }
        // Two files replaced as a unit: the data goes to a fresh name derived from its content
        // (`OUT.onnx.<digest>.data`), the model that references it is renamed into place last, and only then are
        // data files of earlier exports to the same OUT removed. A kill at any point leaves OUT.onnx with the data
        // file it names (issue 16).
        var dataPath: String?
        var createdData = false
        let stem = path.split(separator: "/").last.map(String.init) ?? path
        let folder = String(path[..<(path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex)])
        if let plan {
            let file = try AtomicFile(target: folder + stem + ".data")
            var hash = SHA256()
            embedded.flush()
            for segment in embedded.segments {
                switch segment {
                case .bytes(let b): hash.update(data: b)
                case .view(let v): hash.update(bufferPointer: v.bytes)
                }
            }
            do throws(OutputError) {
                for (k, blob) in plan.blobs.enumerated() {
                    progress?(WorkProgress(step: "write external data", items: k, totalItems: plan.blobs.count,
                                           bytes: file.file.written, totalBytes: plan.size))
                    let gap = blob.offset - file.file.written
                    try file.file.writeZeros(gap)
                    hash.update(data: [UInt8](repeating: 0, count: gap))
                    try file.file.write(blob.view.bytes)
                    hash.update(bufferPointer: blob.view.bytes)
                    blob.view.releaseMappedPages()  // weights read from a mapped package: keep memory bounded
                }
            } catch {
                file.abandon()
                throw error
            }
            let digest = hash.finalize().prefix(6).map { String(format: "%02x", $0) }.joined()
            let location = stem + "." + digest + ".data"
            createdData = access(folder + location, F_OK) != 0
            try file.commit(as: location)
            dataPath = folder + location
            let external = ONNXEncoder.ExternalDataPlan(location: location, minimumBytes: options.externalThreshold)
            embedded = ONNXEncoder(external: external).model(prepared)
        }
        let modelFile: AtomicFile
        do {
            modelFile = try AtomicFile(target: path, kind: "an ONNX model",
                                       replaceable: { options.force || OutputKind.isONNXModel($0) })
        } catch {
            if createdData, let dataPath { unlink(dataPath) }
            throw error
        }
        do throws(OutputError) {
            embedded.flush()
            for (k, segment) in embedded.segments.enumerated() {
                progress?(WorkProgress(step: "write model", items: k, totalItems: embedded.segments.count,
                                       bytes: modelFile.file.written, totalBytes: embedded.size))
                switch segment {
                case .bytes(let bytes): try modelFile.file.write(bytes)
                case .view(let view):
                    try modelFile.file.write(view.bytes)
                    view.releaseMappedPages()
                }
            }
            try modelFile.commit()
        } catch {
            if createdData, let dataPath { unlink(dataPath) }
            modelFile.abandon()
            throw error
        }
        Self.removeEarlierData(folder: folder, stem: stem, keeping: dataPath)
        return Result(modelBytes: embedded.size, externalDataFile: dataPath, externalDataBytes: plan?.size ?? 0,
                      notes: preparation.notes)
    }

    /// Data files an earlier export to the same model path wrote (`STEM.<12 hex digits>.data`), other than `keeping`.
    static func removeEarlierData(folder: String, stem: String, keeping: String?) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.isEmpty ? "." : folder) else { return }
        for name in names where name.hasPrefix(stem + ".") && name.hasSuffix(".data") {
            let middle = name.dropFirst(stem.count + 1).dropLast(5)
            guard middle.count == 12, middle.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { continue }
            if folder + name != keeping { unlink(folder + name) }
        }
    }
}
