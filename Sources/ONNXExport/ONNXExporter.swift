import GraphIR
import SafeOutput

/// Writes a model as an ONNX file that onnxruntime and the `onnx` package load: tensors encoded in the package
/// become standard ONNX (see `ExportPreparation`), and weights go to an external data file `OUT.data` when the
/// protobuf would pass its 2 GiB limit (or when asked). Files are written atomically.
public enum ONNXExporter {
    public struct Options: Sendable {
        public var dequantize: Bool
        /// Put every tensor of at least `externalThreshold` bytes in `OUT.data` even when the model is small.
        public var forceExternalData: Bool
        public var externalThreshold: Int

        public init(dequantize: Bool = false, forceExternalData: Bool = false, externalThreshold: Int = 1024) {
            self.dequantize = dequantize
            self.forceExternalData = forceExternalData
            self.externalThreshold = externalThreshold
        }
    }

    /// Protobuf refuses messages of 2 GiB or more; stay clear of it with room for the graph itself.
    public static let embeddedLimit = (1 << 31) - (64 << 20)

    public struct Result: Sendable {
        public var modelBytes: Int
        public var externalDataFile: String?
        public var externalDataBytes: Int
        /// What could not be exported as asked, e.g. quantized weights written as float32 for an old opset.
        public var notes: [String]
    }

    public static func export(_ model: Model, to path: String, options: Options) throws(OutputError) -> Result {
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
        var dataFile: AtomicFile?
        var dataPath: String?
        if let plan {
            let target = String(path[..<(path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex)]) + plan.location
            let file = try AtomicFile(target: target)
            do throws(OutputError) {
                for blob in plan.blobs {
                    try file.file.writeZeros(blob.offset - file.file.written)
                    try file.file.write(blob.view.bytes)
                    blob.view.releaseMappedPages()  // weights read from a mapped package: keep memory bounded
                }
            } catch {
                file.abandon()
                throw error
            }
            dataFile = file
            dataPath = target
        }
        let modelFile: AtomicFile
        do {
            modelFile = try AtomicFile(target: path)
        } catch {
            dataFile?.abandon()
            throw error
        }
        do throws(OutputError) {
            embedded.flush()
            for segment in embedded.segments {
                switch segment {
                case .bytes(let bytes): try modelFile.file.write(bytes)
                case .view(let view):
                    try modelFile.file.write(view.bytes)
                    view.releaseMappedPages()
                }
            }
            try dataFile?.commit()
            try modelFile.commit()
        } catch {
            dataFile?.abandon()
            modelFile.abandon()
            throw error
        }
        return Result(modelBytes: embedded.size, externalDataFile: dataPath, externalDataBytes: plan?.size ?? 0,
                      notes: preparation.notes)
    }
}
