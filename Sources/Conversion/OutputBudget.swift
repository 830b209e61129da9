import Evaluate
import Dispatch
import Foundation
import GraphIR
import Quantization

/// `--weights auto --max-size BYTES`: the budget bounds the whole written output — every file of the package folder
/// or the `.mlpackage` — not only the weights (a fraction, `--max-size 25%`, stays a ratio of the weights). The candidates are measured once; then the output is written to a
/// temporary folder with the weights chosen for `budget − overhead`, measured, and the overhead (JSON, the Core
/// ML model description, alignment padding: everything but the weights) corrected from what was written, until the
/// output fits (a few rounds; the overhead barely moves between choices). The real output is then written once
/// more with the same choice, so it has exactly the measured size.
enum OutputBudget {
    /// Trial writes at most; the overhead depends on the choice only through a few JSON fields and padding.
    static let rounds = 6

    /// The converter that fits the budget with its output (unchanged without a size budget). `write` writes the
    /// output with a converter to a path (that does not exist yet).
    /// With `calibration`, each tensor's effect on the outputs is measured first (AutoCalibration).
    static func resolve(_ converter: WeightConverter, model: Model, calibration: CalibrationData? = nil, modelName: String = "",
                        write: (WeightConverter, String) throws -> Void) throws -> WeightConverter {
        guard var measurement = converter.measuringAuto(model) else { return converter }
        if let calibration {
            try AutoCalibration.measure(&measurement, converter: converter, model: model, calibration: calibration, modelName: modelName)
        }
        let first = try converter.resolvingAuto(measurement, overheadBytes: 0)
        // A byte budget is a size on disk; a fraction (`25%`) is a compression ratio of the weights, and --min-snr
        // no size at all.
        guard case .maxBytes? = converter.options.autoBudget, let limit = first.options.autoReport?.budgetBytes else { return first }
        return try fit(converter, measurement, first: first, limit: limit, write: write)
    }

    private static func fit(_ converter: WeightConverter, _ measurement: WeightConverter.AutoMeasurement,
                            first: WeightConverter, limit: Int,
                            write: (WeightConverter, String) throws -> Void) throws -> WeightConverter {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("mlpkg-size-\(ProcessInfo.processInfo.processIdentifier)-\(DispatchTime.now().uptimeNanoseconds)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var resolved = first
        var overhead = 0
        for round in 0..<rounds {
            let path = folder.appendingPathComponent("trial\(round)").path
            try write(resolved, path)
            let total = bytes(atPath: path)
            let weights = resolved.options.autoReport?.predictedBytes ?? 0
            try? FileManager.default.removeItem(atPath: path)
            if total <= limit { return resolved }
            // Measured overhead of this choice, and at least the excess on top of what was assumed; plus room for
            // what another choice changes (report fields differ by format, each blob pads to 64 bytes), so that
            // one more trial usually fits.
            let slack = 256 * max(measurement.tensorCount, 1)
            overhead = max(total - weights + slack, overhead + (total - limit))
            resolved = try converter.resolvingAuto(measurement, overheadBytes: overhead)
        }
        throw TensorRuleError("\(converter.options.autoBudget!) could not be met with the model description and JSON around the weights "
                              + "(\(overhead) bytes) after \(rounds) trials; give a little more room")
    }

    /// Total bytes of the regular files at or under `path`.
    static func bytes(atPath path: String) -> Int {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else { return 0 }
        if !isDirectory.boolValue { return (try? fm.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 }
        var total = 0
        for case let name as String in fm.enumerator(atPath: path) ?? FileManager.DirectoryEnumerator() {
            let full = path + "/" + name
            if let attributes = try? fm.attributesOfItem(atPath: full), attributes[.type] as? FileAttributeType == .typeRegular {
                total += (attributes[.size] as? Int) ?? 0
            }
        }
        return total
    }
}
