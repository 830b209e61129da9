import ArgumentParser
import MLPackage
import ONNXExport

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a package back out as an ONNX model that onnxruntime runs.",
        discussion: """
            fp16-stored weights become float16 initializers feeding a Cast to float (the graph stays type-correct \
            and the file stays small); int8/int4 weights become DequantizeLinear of the stored integers (ai.onnx \
            opset raised to 13 for per-channel, 21 for int4 or blocked scales, with the rewrites that keeps the \
            graph's meaning); --dequantize writes them as float32 instead. Weights go to OUT.data (external \
            data) when the model would pass protobuf's 2 GiB limit, or with --external-data. Every checksum is \
            checked before anything is written; the output is written atomically.
            """
    )

    @Argument(help: "The package to export.")
    var package: String

    @Option(name: .shortAndLong, help: "The ONNX file to write.")
    var output: String

    @Flag(help: "Write encoded weights as float32 instead of their stored form plus a Cast.")
    var dequantize = false

    @Flag(help: "Put every tensor of 1 KiB or more in OUT.data even when the model is small.")
    var externalData = false

    @Flag(help: "Print nothing but errors.")
    var quiet = false

    func run() throws {
        do {
            let loaded = try PackageReader.load(path: package, checksums: true)
            let result = try ONNXExporter.export(loaded.model, to: output,
                                                 options: .init(dequantize: dequantize, forceExternalData: externalData))
            for note in result.notes { FileHandleOutput.standardError.write("note: \(note)\n") }
            if quiet { return }
            var line = "\(package) → \(output) (\(result.modelBytes) bytes"
            if let data = result.externalDataFile { line += " + \(result.externalDataBytes) bytes in \(data)" }
            print(line + ")")
        } catch {
            throw CommandFailure(error)
        }
    }
}
