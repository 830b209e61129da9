import CoreMLExport
import Evaluate
import Foundation
import GraphIR
import MIL

/// `--activations int8 --calibration DATA.npz`: the exporter's last rewrite calibrates the optimized program (its
/// own weights, its compute precision) on the calibration inputs, keeps the sensitive layers in float
/// (ActivationCalibration), inserts the quantize/dequantize pairs, and checks the written program against the one
/// without them on the same inputs. What it found is recorded in the model's metadata and kept for the caller.
public final class Int8Activations: @unchecked Sendable {
    /// What calibration found, after the export ran.
    public private(set) var result: ActivationCalibration.Result?
    /// The written program's output cosine against the same program with float activations (measured on it).
    public private(set) var writtenCosine: Double?

    let calibration: CalibrationOptions
    let modelName: String
    private let lock = NSLock()

    /// A stage for `calibration`; `modelName` names the model in errors.
    public init(calibration: CalibrationOptions, modelName: String) {
        self.calibration = calibration
        self.modelName = modelName
    }

    /// The lowest target W8A8 writes (quantize/dequantize are iOS17 ops).
    public static let minimumTarget = DeploymentTarget.iOS17

    /// The exporter option that runs this stage.
    public var rewrite: @Sendable (MILProgram) throws -> [(String, String)] {
        { [self] program in try run(program) }
    }

    func run(_ program: MILProgram) throws -> [(String, String)] {
        guard program.target >= Self.minimumTarget else {
            throw CalibrationError("\(modelName): --activations int8 needs --deployment-target iOS17 or later (quantize/dequantize are iOS17 ops); the program targets \(program.target)")
        }
        if program.inputs.contains(where: { !$0.type.isStatic }) {
            throw CalibrationError("\(modelName): --activations int8 needs static input shapes (calibration runs the program); pin each input with --input-shape NAME=D0,D1,…")
        }
        let (samples, _) = try calibration.data.samples(for: CalibrationInput.of(program), model: modelName)
        let baseline = MILProgram(target: program.target, inputs: program.inputs, operations: program.operations, outputs: program.outputs)
        let found: ActivationCalibration.Result
        let cosine: Double
        do {
            found = try ActivationCalibration.calibrate(program, samples: samples, minimumCosine: calibration.minimumCosine)
            try ActivationQuantization.insert(found.ranges, into: program)
            cosine = try Self.cosine(program, against: baseline, samples: samples)
        } catch let error as ActivationQuantization.Failure {
            throw CalibrationError("\(modelName): \(error.message)")
        } catch {
            throw CalibrationError("\(modelName): the calibration run failed: \(error)")
        }
        lock.lock()
        result = found
        writtenCosine = cosine
        lock.unlock()
        var entries: [(String, String)] = [
            ("com.mlpkg.activations", "int8"),
            ("com.mlpkg.activations.calibration", URL(fileURLWithPath: calibration.data.file).lastPathComponent),
            ("com.mlpkg.activations.quantized", "\(found.ranges.count) of \(found.ranges.count + found.kept.count) layer inputs"),
            ("com.mlpkg.activations.cosine", String(format: "%.6f", cosine)),
        ]
        if !found.kept.isEmpty {
            entries.append(("com.mlpkg.activations.keptFloat", found.kept.map(\.site).joined(separator: "; ")))
        }
        return entries
    }

    /// The lowest output cosine of `program` against `reference` over `samples` (both evaluated as declared).
    static func cosine(_ program: MILProgram, against reference: MILProgram, samples: [[String: EvalTensor]]) throws -> Double {
        let a = try Evaluator(reference), b = try Evaluator(program)
        var accumulators = program.outputs.map { OutputAgreement.Accumulator(name: $0) }
        for s in samples {
            let expected = try a.run(s), got = try b.run(s)
            for (i, out) in got.enumerated() { try accumulators[i].add(reference: expected[i].value, target: out.value) }
        }
        return accumulators.map(\.result.cosine).min() ?? 1
    }

    /// The lines a command prints after the export: how many layer inputs were quantized, the cosine, and each
    /// layer kept in float with what quantizing it alone did.
    public var summary: [String] {
        guard let r = result else { return [] }
        let total = r.ranges.count + r.kept.count
        var lines = ["int8 activations: \(r.ranges.count) of \(total) layer inputs quantized (scales from \(r.samples) calibration sample(s), \(r.runs) runs); "
                     + "output cosine \(String(format: "%.6f", writtenCosine ?? r.cosine)) against float activations"
                     + (r.kept.isEmpty ? "" : " (\(String(format: "%.6f", r.cosineAllQuantized)) with every layer quantized; floor \(calibration.minimumCosine))")]
        for k in r.kept {
            lines.append("  kept in fp16: \(k.site): quantized alone it gives output cosine \(String(format: "%.6f", k.cosineAlone))")
        }
        return lines
    }
}
