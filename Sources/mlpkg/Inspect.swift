import ArgumentParser
import Foundation
import GraphIR
import Inspection
import MLPackage
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

    @Argument(help: "The ONNX model or .mlpkg package to read.")
    var model: String

    @Flag(help: "Print one JSON document on stdout instead of the table.")
    var json = false

    func run() throws {
        let summary: ModelSummary
        do {
            if PackageReader.isPackage(path: model) {
                let package = try PackageReader.load(path: model, checksums: false)
                summary = ModelSummary(model: package.model, file: model)
                    .with(package: PackageSummary(package.manifest))
            } else {
                summary = ModelSummary(model: try ONNXImporter.load(path: model), file: model)
            }
        } catch {
            throw CommandFailure(error)
        }
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
        FileHandleOutput.standardOutput.write(try string(value))
    }

    /// The document `print` writes, with its final newline.
    static func string<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
