import ArgumentParser
import CoreMLPackage
import Foundation
import GraphIR
import Inspection
import MLPackage
import ONNXImport
import Passes

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise a model: IR and opset versions, inputs and outputs, ops, weights, external data.",
        discussion: """
            Reads MODEL.onnx (with its external data files) and prints the IR version, producer, opset imports, \
            inputs and outputs with symbolic dims, node counts per op type and domain (subgraphs included), \
            parameters and bytes per dtype, the largest tensors, subgraphs, functions and external data files.

            --shapes adds every value's inferred dtype and shape (symbolic dims such as batch, seq*2 or \
            (H+1)/2; unk__N for sizes nothing can know before run time), the nodes whose output shapes stayed \
            unknown with the reason, and declared types that contradict the inferred ones. --input-shape pins \
            an input's dims first (the inputs table shows them too).

            A Core ML .mlpackage (written by mlpkg or any other tool) shows its interface with types and shapes, \
            its functions, the MIL op histogram, the weight blobs in weight.bin (count, encodings, sizes, the \
            largest), the deployment target and the metadata.

            Examples:
              mlpkg inspect model.onnx
              mlpkg inspect model.onnx --shapes --input-shape input=1,3,224,224
              mlpkg inspect model.mlpkg --json
              mlpkg inspect Model.mlpackage
            """
    )

    @Argument(help: "The ONNX model, .mlpkg package or Core ML .mlpackage to read.")
    var model: String

    @Flag(help: "Print one JSON document on stdout instead of the table.")
    var json = false

    @Flag(help: "Infer and list every value's dtype and shape.")
    var shapes = false

    @Flag(help: "Print nothing but errors: the exit code says whether the model reads (and infers, with --shapes).")
    var quiet = false

    @OptionGroup var inputShape: InputShapeOptions

    func run() throws {
        if CoreMLPackageReader.isMLPackage(model) {
            try inspectCoreML()
            return
        }
        var summary: ModelSummary
        var loaded: Model
        do {
            if PackageReader.isPackage(path: model) {
                let package = try PackageReader.load(path: model, checksums: true)
                loaded = package.model
                summary = ModelSummary(model: package.model, file: model).with(package: PackageSummary(package.manifest))
            } else {
                loaded = try ONNXImporter.load(path: model)
                summary = ModelSummary(model: loaded, file: model)
            }
        } catch {
            throw CommandFailure(error)
        }
        let pins = inputShape.pins
        if !pins.isEmpty || shapes {
            do {
                loaded = try pins.apply(to: loaded)
            } catch {
                throw UsageFailure(message: "\(model): \(error)")
            }
            let base = ModelSummary(model: loaded, file: model)
            summary.inputs = base.inputs
            if shapes {
                let result = try ShapeInference.run(loaded)
                summary = summary.with(shapes: ShapeSummary(result, inputShapes: pins))
            }
        }
        if quiet { return }
        if json {
            try JSONOutput.print(summary)
        } else {
            printText(SummaryText.render(summary))
        }
    }
}

extension Inspect {
    /// `inspect X.mlpackage`: the interface, functions, MIL ops, weight blobs, target and metadata of a Core ML
    /// package any tool wrote. Fails (exit 1) only when its model cannot be read; other problems are notes
    /// (`mlpkg verify` checks everything).
    func inspectCoreML() throws {
        if shapes || !inputShape.inputShapes.isEmpty {
            throw UsageFailure(message: "\(model): --shapes and --input-shape apply to ONNX models and .mlpkg packages, not to a Core ML package")
        }
        let contents = CoreMLPackageReader.read(path: model)
        guard let summary = CoreMLPackageSummary(contents) else {
            throw CommandFailure(contents.faults.first ?? "\(model): cannot be read")
        }
        if quiet { return }
        if json {
            try JSONOutput.print(summary)
            return
        }
        for problem in summary.problems { printNote(problem + " (mlpkg verify checks the whole package)") }
        printText(CoreMLSummaryText.render(summary))
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
