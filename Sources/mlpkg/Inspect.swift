import ArgumentParser
import Foundation
import GraphIR
import Inspection
import ONNXImport

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise a model: IR and opset versions, inputs and outputs, ops, weights, external data.",
        discussion: """
            Reads MODEL.onnx (with its external data files) and prints the IR version, producer, opset imports, \
            inputs and outputs with symbolic dims, node counts per op type and domain (subgraphs included), \
            parameters and bytes per dtype, the largest tensors, subgraphs, functions and external data files.
            """
    )

    @Argument(help: "The ONNX model to read.")
    var model: String

    @Flag(help: "Print one JSON document on stdout instead of the table.")
    var json = false

    func run() throws {
        if model.hasSuffix(".mlpkg") {
            throw CommandFailure("\(model): reading .mlpkg packages is not supported yet")
        }
        let loaded: Model
        do {
            loaded = try ONNXImporter.load(path: model)
        } catch {
            throw CommandFailure(error)
        }
        let summary = ModelSummary(model: loaded, file: model)
        if json {
            try JSONOutput.print(summary)
        } else {
            print(SummaryText.render(summary))
        }
    }
}

enum JSONOutput {
    /// One pretty-printed JSON document with sorted keys, so output is stable for scripts and diffs.
    static func print<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        FileHandleOutput.standardOutput.write(String(decoding: data, as: UTF8.self) + "\n")
    }
}
