import CoreMLExport
import Evaluate
import Foundation
import GraphIR
import MIL
import Passes
import Quantization

/// `--calibration DATA.npz`: real inputs, and what they are used for.
public struct CalibrationOptions: Sendable, Equatable {
    /// The inputs (one array per model input; a leading axis of samples allowed).
    public var data: CalibrationData
    /// `--activations int8`: W8A8 quantize/dequantize pairs with ranges from the calibration run (Core ML only).
    public var int8Activations: Bool
    /// The output cosine W8A8 must keep against the same program with float activations.
    public var minimumCosine: Double

    /// Options for `data`.
    public init(data: CalibrationData, int8Activations: Bool = false,
                minimumCosine: Double = ActivationCalibration.defaultMinimumCosine) {
        self.data = data
        self.int8Activations = int8Activations
        self.minimumCosine = minimumCosine
    }

    /// The same file and settings (the file's arrays are what it holds).
    public static func == (a: CalibrationOptions, b: CalibrationOptions) -> Bool {
        a.data.file == b.data.file && a.int8Activations == b.int8Activations && a.minimumCosine == b.minimumCosine
    }
}

/// Calibrated `--weights auto`: each compressible tensor's effect on the outputs, measured by running the model's
/// fp32 ML Program (lowered in memory, no MIL passes, so each weight is one `const` holding the tensor's own bytes)
/// on the calibration inputs with that one tensor replaced by its probe candidate (int4 per block where offered),
/// against the unchanged program. The outputs' noise-to-signal ratio over the weight's gives the tensor's
/// sensitivity (`AutoMeasurement.calibrate`); every other candidate's output error is then predicted from its
/// measured weight error. One program run per tensor and sample, instead of one per tensor, candidate and sample.
enum AutoCalibration {
    /// Measures every compressible tensor of `measurement` whose weight the lowered program holds as a const.
    static func measure(_ measurement: inout WeightConverter.AutoMeasurement, converter: WeightConverter, model: Model,
                        calibration: CalibrationData, modelName: String) throws {
        let inputs = calibrationInputs(model)
        let (samples, shapes) = try calibration.samples(for: inputs, model: modelName)
        let program = try referenceProgram(model, shapes: shapes, modelName: modelName)
        // Which const holds which tensor: the lowering keeps an fp32 initializer's bytes as they are (same memory).
        var constOf: [Int: (name: String, shape: [Int])] = [:]
        for op in program.operations where op.type == "const" {
            if let value = op.value, value.type.dtype == .fp32, case .bytes(let view) = value.data, let base = view.bytes.baseAddress {
                constOf[Int(bitPattern: base)] = (op.outputs[0].name, value.type.shape)
            }
        }
        let evaluator: Evaluator
        var references: [[(name: String, value: EvalTensor)]] = []
        do {
            evaluator = try Evaluator(program, precision: .fp32)
            for s in samples { references.append(try evaluator.run(s)) }
        } catch {
            throw CalibrationError("\(modelName): the calibration run failed: \(error)")
        }
        let tensors = measurement.tensors
        var errors: [Double?] = Array(repeating: nil, count: tensors.count)
        var probes: [Double?] = Array(repeating: nil, count: tensors.count)
        for k in tensors.indices where measurement.isCompressible(k) {
            guard case .bytes(let view) = tensors[k].data, let base = view.bytes.baseAddress,
                  let target = constOf[Int(bitPattern: base)], target.shape == tensors[k].dims,
                  let probe = measurement.probe(k, converter: converter) else { continue }
            let replacement = EvalTensor(.fp32, target.shape, .mapped(probe.values))
            do {
                let constants = try evaluator.constants(substituting: [target.name: replacement])
                var noise = [Double](repeating: 0, count: program.outputs.count)
                var signal = [Double](repeating: 0, count: program.outputs.count)
                for (s, sample) in samples.enumerated() {
                    let got = try evaluator.run(sample, constants: constants)
                    for (i, out) in got.enumerated() {
                        let r = references[s][i].value.floats, o = out.value.floats
                        for j in r.indices where r[j].isFinite && o[j].isFinite {
                            let d = Double(r[j]) - Double(o[j])
                            noise[i] += d * d
                            signal[i] += Double(r[j]) * Double(r[j])
                        }
                    }
                }
                // The outputs' mean noise-to-signal ratio (each output counts alike, whatever its scale).
                let ratios = zip(noise, signal).map { $1 > 0 ? $0 / $1 : 0 }
                errors[k] = ratios.reduce(0, +) / Double(max(ratios.count, 1))
                probes[k] = probe.nsr
            } catch {
                throw CalibrationError("\(modelName): the calibration run with '\(tensors[k].name)' quantized failed: \(error)")
            }
        }
        measurement.calibrate(outputErrors: errors, probeNSR: probes)
    }

    /// The model's inputs as calibration arrays must give them.
    static func calibrationInputs(_ model: Model) -> [CalibrationInput] {
        let initializers = Set(model.graph.initializers.map(\.name))
        return model.graph.inputs.filter { !initializers.contains($0.name) }.map { v in
            var kind = CalibrationInput.Kind.float
            var dims: [Int?] = []
            if case .tensor(let t) = v.type {
                if let e = t.elementType { kind = e.isFloatingPoint ? .float : (e == .bool ? .bool : .integer) }
                dims = (t.shape ?? []).map { if case .value(let d) = $0 { return d } else { return nil } }
            }
            return CalibrationInput(name: v.name, kind: kind, dims: dims)
        }
    }

    /// The fp32 program of `model` with its inputs pinned to the calibration shapes, as lowered (no MIL passes).
    static func referenceProgram(_ model: Model, shapes: [String: [Int]], modelName: String) throws -> MILProgram {
        let pins = try InputShapes(Dictionary(uniqueKeysWithValues: shapes.map { ($0.key, $0.value.map { Dim.value($0) }) }))
        let options = CoreMLExporter.Options(compute: .fp32, dequantize: true, inputShapes: pins)
        let (outcomes, lowered) = try CoreMLExporter.lower(model, options: options)
        guard let lowered else {
            let refused = outcomes.compactMap { o -> String? in
                guard case .refused(let r) = o.verdict else { return nil }
                return "node '\(o.name)' (\(o.opType)): \(r.reason)"
            }
            throw CalibrationError("\(modelName): --calibration runs the model as an ML Program, and \(refused.count) node(s) have no Core ML lowering: "
                                   + refused.prefix(3).joined(separator: "; "))
        }
        do {
            try MILPipeline.none.run(lowered.program)
        } catch {
            throw CalibrationError("\(modelName): internal error: the calibration program is invalid (\(error))")
        }
        return lowered.program
    }
}
