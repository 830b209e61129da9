import ArgumentParser
import Conversion
import CoreMLPackage
import Evaluate
import Foundation
import MIL

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare a Core ML .mlpackage's outputs with a reference's, on the CPU (no Mac, no Python).",
        discussion: """
            REFERENCE is another .mlpackage, or an ONNX model or .mlpkg package whose fp32 ML Program (every \
            weight dequantized, fp32 compute; lowered in memory, nothing written) is the reference, its dynamic \
            dims pinned to TARGET's input shapes. Both run in mlpkg's reference evaluator on the same inputs: \
            --inputs DATA.npz (one entry per input), or --samples N random inputs (default 4) from a fixed seed \
            (floats standard normal; integers in [0, n) with n the size of the smallest table a gather indexes \
            with the input, else [0, 2); the same on every run and machine).

            Per output: cosine similarity, SNR in dB, max |error|, and for classifier-like outputs (rank ≥ 2, last \
            dim > 1) top-1 agreement (rows whose arg-max matches) and top-5 agreement (rows whose reference top-1 \
            class is among TARGET's 5 highest). Outputs are matched by name, else by position.

            --min-cosine X exits 3 when any output's cosine is below X (a CI gate).

            Examples:
              mlpkg compare model.onnx Model.mlpackage --samples 8
              mlpkg compare Model-fp32.mlpackage Model-int4.mlpackage --inputs data.npz --min-cosine 0.99
            """
    )

    @Argument(help: "The reference: a .mlpackage, or an ONNX model or .mlpkg package (its fp32 program).")
    var reference: String

    @Argument(help: "The Core ML package (.mlpackage) to check.")
    var target: String

    @Option(help: ArgumentHelp("Inputs from a .npz archive (one entry per input).", valueName: "DATA.npz"))
    var inputs: String?

    @Option(help: "Number of random input samples from the fixed seed (when --inputs is not given).")
    var samples: Int?

    @Option(help: ArgumentHelp("Exit 3 when any output's cosine is below X.", valueName: "X"))
    var minCosine: Double?

    @Flag(help: "Print one JSON document with every output's statistics.")
    var json = false

    @Flag(help: "Print nothing but errors (the exit code still says whether --min-cosine holds).")
    var quiet = false

    func validate() throws {
        if inputs != nil, samples != nil { throw ValidationError("--inputs and --samples exclude each other") }
        if let samples, samples < 1 { throw ValidationError("--samples takes a positive count, not \(samples)") }
        if let minCosine, !(minCosine >= -1 && minCosine <= 1) { throw ValidationError("--min-cosine takes a value in [-1, 1]") }
    }

    func run() throws {
        let targetProgram = ProgramInputs.withDefaultShapes(try ProgramInputs.program(target), path: target)
        let referenceProgram: MILProgram
        if CoreMLPackageReader.isMLPackage(reference) {
            referenceProgram = try ProgramInputs.program(reference)
        } else {
            let pins = Dictionary(uniqueKeysWithValues: targetProgram.inputs.map { ($0.name, $0.type.shape) })
            do {
                referenceProgram = try CoreMLConverter.fp32Program(source: reference, inputShapes: pins)
            } catch {
                throw CommandFailure(error)
            }
        }
        var sampleSet: [[String: EvalTensor]]
        if let inputs {
            var given: [String: EvalTensor] = [:]
            for (name, value) in try ProgramInputs.archive(inputs) { given[name] = value }
            try ProgramInputs.check(given, files: Dictionary(uniqueKeysWithValues: given.keys.map { ($0, inputs) }), against: targetProgram, model: target)
            sampleSet = [given]
        } else {
            sampleSet = RandomInputs.samples(targetProgram, count: samples ?? 4)
        }
        let referenceInputs = Set(referenceProgram.inputs.map(\.name))
        if let missing = targetProgram.inputs.first(where: { !referenceInputs.contains($0.name) }) {
            throw CommandFailure("\(reference): has no input '\(missing.name)' that \(target) takes")
        }
        var accumulators = targetProgram.outputs.map { OutputAgreement.Accumulator(name: $0) }
        do {
            let referenceRun = try Evaluator(referenceProgram, precision: .fp32)
            let targetRun = try Evaluator(targetProgram)
            for sample in sampleSet {
                let expected = try referenceRun.run(sample.filter { referenceInputs.contains($0.key) })
                let got = try targetRun.run(sample)
                for (i, out) in got.enumerated() {
                    guard let ref = expected.first(where: { $0.name == out.name }) ?? (i < expected.count ? expected[i] : nil) else {
                        throw EvaluationError("the reference has no output '\(out.name)'")
                    }
                    try accumulators[i].add(reference: ref.value, target: out.value)
                }
            }
        } catch let error as EvaluationError {
            throw CommandFailure("\(target): \(error)")
        }
        let results = accumulators.map(\.result)
        let failing = minCosine.map { gate in results.filter { !($0.cosine >= gate) } } ?? []
        if !quiet {
            if json {
                try JSONOutput.print(CompareOutput(reference: reference, target: target, samples: sampleSet.count, outputs: results,
                                                   minCosine: minCosine, passed: failing.isEmpty))
            } else {
                printText("\(target) vs \(reference) on \(sampleSet.count) input sample(s):")
                for r in results {
                    var line = "  \(r.name): cosine \(String(format: "%.6f", r.cosine)), SNR \(String(format: "%.1f", r.snr)) dB, max |err| \(String(format: "%.4g", r.maxAbsError))"
                    if let t1 = r.top1, let t5 = r.top5, let rows = r.rows {
                        line += ", top-1 \(String(format: "%.1f", t1 * 100))%, top-5 \(String(format: "%.1f", t5 * 100))% of \(rows) row(s)"
                    }
                    printText(line)
                }
            }
        }
        if let gate = minCosine, let worst = failing.first {
            throw GateFailure("\(target): output '\(worst.name)' has cosine \(String(format: "%.6f", worst.cosine)) against \(reference), below --min-cosine \(gate)"
                              + (failing.count > 1 ? " (and \(failing.count - 1) more output(s))" : ""))
        }
    }
}

struct CompareOutput: Encodable {
    var reference: String
    var target: String
    var samples: Int
    var outputs: [OutputAgreement]
    var minCosine: Double?
    var passed: Bool
}

/// The output-level accuracy line a one-step Core ML conversion prints when its weights are compressed: the new
/// package against the source's fp32 program (as `compare`), on 3 random inputs from compare's fixed seed.
enum OutputAccuracy {
    static let samples = 3

    static func report(reference: String, target: String) {
        do {
            let targetProgram = ProgramInputs.withDefaultShapes(try CoreMLPackageReader.mainProgram(path: target), path: target)
            let pins = Dictionary(uniqueKeysWithValues: targetProgram.inputs.map { ($0.name, $0.type.shape) })
            let referenceProgram = try CoreMLConverter.fp32Program(source: reference, inputShapes: pins)
            let referenceRun = try Evaluator(referenceProgram, precision: .fp32), targetRun = try Evaluator(targetProgram)
            var accumulators = targetProgram.outputs.map { OutputAgreement.Accumulator(name: $0) }
            for sample in RandomInputs.samples(targetProgram, count: samples) {
                let expected = try referenceRun.run(sample), got = try targetRun.run(sample)
                for (i, out) in got.enumerated() {
                    guard let ref = expected.first(where: { $0.name == out.name }) ?? (i < expected.count ? expected[i] : nil) else { continue }
                    try accumulators[i].add(reference: ref.value, target: out.value)
                }
            }
            let parts = accumulators.map(\.result).map { r in
                "\(r.name) cosine \(String(format: "%.6f", r.cosine)), SNR \(String(format: "%.1f", r.snr)) dB"
                    + (r.top1.map { ", top-1 \(String(format: "%.0f", $0 * 100))%" } ?? "")
            }
            // A package holds its weights already compressed: against them, only the compute precision's error shows.
            let against = reference.hasSuffix(".mlpkg") ? "the package's decoded weights in an fp32 program (compare with the ONNX source for the compression's effect)"
                : "the fp32 program"
            printText("output accuracy vs \(against) on \(samples) random inputs (mlpkg compare for more): " + parts.joined(separator: "; "))
        } catch {
            printNote("output accuracy not measured: \(error)")
        }
    }
}
