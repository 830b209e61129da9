import Audit
import CoreMLExport
import Evaluate
import Foundation
import GraphIR
import MLPackage
import ONNXImport
import Passes
import Quantization
import SafeOutput

/// ONNX → Core ML `.mlpackage` in one call (`mlpkg convert model.onnx -o Model.mlpackage`): import, prepare once
/// (inline functions, pin inputs, fold, infer), re-encode the weights, lower, run the MIL passes, write. The graph
/// pipeline runs once. Weights up to `Options.inMemoryWeightLimit` are re-encoded in memory; a bigger model's are
/// streamed into a scratch package beside the output (converted a window at a time, each window written and freed,
/// as `convert -o X.mlpkg` does) which the export then reads mapped, so memory stays bounded by a window, not the
/// model (a 1 GiB model peaked at 1.5 GiB in memory). Both ways write the same bytes.
public enum CoreMLConverter {
    /// What to convert and how: the package conversion's weight options and the Core ML export's options.
    public struct Options: Sendable {
        /// Weight formats, per-layer rules and pins (`inputShapes` is what pins the Core ML program too).
        public var conversion: PackageConverter.Options
        /// Target, compute precision, metadata, `optimize`; its `inputShapes` is replaced by the conversion's.
        public var export: CoreMLExporter.Options

        /// Above this many bytes of weights (initializers, as the model stores them), the converted weights go
        /// through a scratch package beside the output instead of memory. 0 streams every model.
        public var inMemoryWeightLimit: Int

        /// Options for a conversion and an export.
        public init(conversion: PackageConverter.Options, export: CoreMLExporter.Options, inMemoryWeightLimit: Int = 256 << 20) {
            self.conversion = conversion
            self.export = export
            self.inMemoryWeightLimit = inMemoryWeightLimit
        }
    }

    /// What a one-step conversion wrote and measured.
    public struct Result: Sendable {
        /// The export's result (target, sizes, MIL op counts, every node's outcome, notes).
        public var export: CoreMLExporter.Result
        /// What the weight conversion did to each tensor (bytes, SNR, error), as a package's report.json holds it.
        public var conversion: ConversionReport
        /// Graph pipelines run during the conversion (1: the exporter reuses the prepared model).
        public var pipelineRuns: Int
        /// Wall time of each step, in order.
        public var timings: [(step: String, seconds: Double)]
        /// With `--activations int8`: what calibration found and kept in float.
        public var activations: Int8Activations?
    }

    /// Converts the ONNX model at `input` to a Core ML package at `output`, atomically.
    public static func convert(input: String, output: String, options: Options) throws -> Result {
        try PackageConverter.refuseOverwritingInput(input: input, output: output)
        var clock = StepClock()
        let mapped = try ONNXImporter.map(path: input)
        let digest = SourceDigest(file: mapped)
        let imported = try ONNXImporter.load(mapped: mapped, path: input, options: options.conversion.importing)
        clock.lap("import")
        var exportOptions = options.export
        exportOptions.inputShapes = options.conversion.inputShapes
        let context = PassContext()
        var prepared: CoreMLExporter.PreparedModel
        do {
            prepared = try CoreMLExporter.prepare(imported, options: exportOptions, context: context)
        } catch let error as InputShapeError {
            throw error
        } catch {
            throw PackageError(path: input, "\(error)")
        }
        clock.lap("fold constants, infer shapes")
        // Names, descriptions, --io-dtype, images and class labels against the model, before the weights are converted.
        try CoreMLExporter.checkInterface(prepared.model, options: exportOptions)
        try CoreMLExporter.checkFeatures(prepared, options: exportOptions)
        var conversion = options.conversion
        // Every format choice is one the target writes: the one asked for, else iOS18's encodings (the exporter
        // then takes the lowest target the chosen encodings need).
        if conversion.coreML == nil {
            conversion.coreML = CoreMLWeightTarget(specificationVersion: exportOptions.target?.specificationVersion ?? 9)
        }
        var converter = WeightConverter(options: conversion.converter)
        try converter.validate(prepared.model)
        // The provenance a package records, in the same keys and order as `export` of that package writes them, so
        // the one-step and the two-step (`convert --for coreml`, then export) conversions give byte-identical models.
        let (_, sha256) = digest.result()
        exportOptions.metadata = [
            ("com.mlpkg.source", URL(fileURLWithPath: input).lastPathComponent), ("com.mlpkg.source.sha256", sha256),
            ("com.mlpkg.producer", "mlpkg \(MLPkgVersion.current)"),
        ] + conversion.recorded.keys.sorted().map { ("com.mlpkg.option." + $0, conversion.recorded[$0]!) }
            + options.export.metadata
        let original = prepared.model
        var activations: Int8Activations?
        if let calibration = conversion.calibration, calibration.int8Activations {
            if let t = exportOptions.target, t < Int8Activations.minimumTarget {
                throw CalibrationError("\(input): --activations int8 needs --deployment-target iOS17 or later (quantize/dequantize are iOS17 ops), not \(t)")
            }
            activations = Int8Activations(calibration: calibration, modelName: input)
        }
        let streamed = original.graph.initializers.reduce(0) { $0 + $1.byteCount } > options.inMemoryWeightLimit
        func export(_ converter: WeightConverter, to path: String, final: Bool = false) throws -> (CoreMLExporter.Result, ConversionReport) {
            var model = prepared
            let converted: Model, report: ConversionReport
            var scratch: ScratchDirectory?
            defer { scratch?.remove() }
            if streamed {
                let folder = try ScratchDirectory(beside: path, purpose: "weights")
                scratch = folder
                let package = folder.path + "/weights.mlpkg"
                let written = try PackageWriter.write(model: original, converting: converter, provenance: {
                    Provenance(source: PackageConverter.sourceDescription(input: input, model: original, digest: digest))
                }, to: package)
                converted = try PackageReader.load(path: package, checksums: false).model
                report = written.report
            } else {
                (converted, report) = converter.convert(original)
            }
            model.model = converted
            var written = exportOptions
            if final, let activations {
                // quantize/dequantize are iOS17 ops: at least iOS17, more when the weights need it.
                written.target = max(CoreMLExporter.target(for: converted, options: written), Int8Activations.minimumTarget)
                written.finalRewrite = activations.rewrite
            }
            do {
                return (try CoreMLExporter.export(model, to: path, options: written), report)
            } catch var error as CoreMLExportError {
                // A model the exporter refuses is the input's fault: name the model, not the output path; dynamic
                // dims get the --input-shape flags the audit's pin suggestion computes.
                guard !error.isInternal else { throw error }
                error.path = input
                throw AuditAdvice.explaining(error, model: imported, file: input, pins: options.conversion.inputShapes)
            }
        }
        converter = try OutputBudget.resolve(converter, model: original, calibration: conversion.calibration?.data, modelName: input) { trial, path in
            _ = try export(trial, to: path)
        }
        clock.lap("convert weights (\(options.conversion.weights.rawValue))")
        let (result, report) = try export(converter, to: output, final: true)
        clock.lap("lower, optimize and write the ML Program")
        return Result(export: result, conversion: report, pipelineRuns: context.pipelineRuns, timings: clock.laps, activations: activations)
    }
}
