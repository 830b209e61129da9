import CoreMLExport
import GraphIR
import MIL
import MLPackage
import ONNXImport
import Passes

extension CoreMLConverter {
    /// The fp32 ML Program of an ONNX model or an `.mlpkg` package, lowered in memory (nothing is written): fp32
    /// compute, every weight dequantized to float32, dynamic dims pinned by `inputShapes` (names the model does not
    /// have are left out). `mlpkg compare`'s reference.
    public static func fp32Program(source: String, inputShapes: [String: [Int]]) throws -> MILProgram {
        let model: Model
        if source.hasSuffix(".mlpkg") {
            model = try PackageReader.load(path: source, checksums: true).model
        } else {
            model = try ONNXImporter.load(path: source)
        }
        let names = Set(model.graph.inputs.map(\.name))
        let pins = try InputShapes(parsing: inputShapes.keys.sorted().filter(names.contains).map { name in
            "\(name)=" + inputShapes[name]!.map(String.init).joined(separator: ",")
        })
        let options = CoreMLExporter.Options(compute: .fp32, dequantize: true, inputShapes: pins)
        let prepared: CoreMLExporter.PreparedModel
        do {
            prepared = try CoreMLExporter.prepare(model, options: options)
        } catch let error as InputShapeError {
            throw error
        } catch {
            throw PackageError(path: source, "\(error)")
        }
        let (outcomes, lowered) = CoreMLExporter.lower(prepared, options: options)
        guard let lowered else {
            let refused = outcomes.compactMap { o -> String? in
                guard case .refused(let r) = o.verdict else { return nil }
                return "node '\(o.name)' (\(o.opType)): \(r.reason)"
            }
            throw PackageError(path: source, "\(refused.count) node(s) have no Core ML lowering: " + refused.prefix(5).joined(separator: "; "))
        }
        try MILPipeline.standard.run(lowered.program)
        return lowered.program
    }
}
