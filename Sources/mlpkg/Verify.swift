import ArgumentParser
import CoreMLPackage
import Evaluate
import Foundation
import GraphIR
import MLPackage

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a package: format and version, structure, graph and every checksum; or a Core ML .mlpackage.",
        discussion: """
            Exit 0 when the package is sound. Otherwise exit 1 with one error line naming the first fault; with \
            --json, one JSON document listing every fault.

            A Core ML .mlpackage (written by mlpkg or any other tool) is checked as Core ML would read it: \
            Manifest.json and the paths it names, model.mlmodel against Core ML's schema, weight.bin's header and \
            every blob's metadata record, offsets and sizes, every blob a value reads (type and size), the \
            interface against the main function, and every op's types by mlpkg's MIL definitions. Ops mlpkg has \
            no definition for are reported as not checked, not as faults.

            Examples:
              mlpkg verify model.mlpkg
              mlpkg verify model.mlpkg --json
              mlpkg verify model.mlpkg --quiet && echo sound
              mlpkg verify Model.mlpackage
              mlpkg verify Model.mlpackage --run
              mlpkg verify Model.mlpackage --run --inputs data.npz

            --run (a .mlpackage) also runs the program in mlpkg's reference evaluator, as Core ML computes it (an fp16 \
            program rounds every fp16 op output to fp16), on --inputs DATA.npz or one random sample from a fixed \
            seed (as `compare --samples`), and reports the first op whose output overflows fp16 (±inf) or becomes \
            NaN: exit 1 naming the op, its output and how many values are inf or NaN.
            """
    )

    @Argument(help: "The package (.mlpkg) or Core ML package (.mlpackage) to check.")
    var package: String

    @Flag(help: "Print one JSON document listing every fault.")
    var json = false

    @Flag(name: .customLong("run"), help: "Also run a .mlpackage and report the first op whose output overflows or becomes NaN.")
    var runProgram = false

    @Option(help: ArgumentHelp("Inputs for --run from a .npz archive (default: one random sample from a fixed seed).", valueName: "DATA.npz"))
    var inputs: String?

    @Flag(help: "Print nothing but errors: the exit code says whether the package is sound.")
    var quiet = false

    func validate() throws {
        if inputs != nil, !runProgram { throw ValidationError("--inputs applies to --run") }
    }

    func run() throws {
        if CoreMLPackageReader.isMLPackage(package) {
            try verifyCoreML()
            if runProgram { try runForNonFinite() }
            return
        }
        if runProgram { throw ValidationError("--run applies to a Core ML .mlpackage") }
        let bar = ProgressBar.make(quiet: quiet)
        let result = PackageVerifier.verify(path: package, progress: bar?.handler)
        bar?.finish()
        if json && !quiet {
            try JSONOutput.print(VerifyOutput(result: result))
            if !result.ok, let first = result.faults.first { throw CommandFailure(first.message) }
            return
        }
        if let first = result.faults.first {
            let more = result.faults.count > 1 ? " (and \(result.faults.count - 1) more fault(s); --json lists all)" : ""
            throw CommandFailure(first.message + more)
        }
        if quiet { return }
        printText("\(package): ok — format \(result.formatVersion ?? "?"), \(result.tensors) tensors, "
              + "\(result.weightsBytes) bytes of weights, every checksum matches")
    }
}

extension Verify {
    /// `verify X.mlpackage --run`: the first op whose output is inf or NaN in the program's own precision.
    func runForNonFinite() throws {
        let program = try ProgramInputs.program(package)
        var sample: [String: EvalTensor]
        if let inputs {
            sample = [:]
            for (name, value) in try ProgramInputs.archive(inputs) { sample[name] = value }
            try ProgramInputs.check(sample, files: Dictionary(uniqueKeysWithValues: sample.keys.map { ($0, inputs) }), against: program, model: package)
        } else {
            sample = RandomInputs.samples(program, count: 1)[0]
        }
        let found: NonFiniteOutput?
        do {
            found = try NonFiniteOutput.first(try Evaluator(program), inputs: sample)
        } catch {
            throw CommandFailure("\(package): \(error)")
        }
        if let f = found {
            var what: [String] = []
            if f.infinities > 0 { what.append("\(f.infinities) value(s) overflow to ±inf") }
            if f.nans > 0 { what.append("\(f.nans) value(s) are NaN") }
            throw CommandFailure("\(package): op \(f.op) '\(f.name)' is the first whose output '\(f.output)' (\(f.type)) is not finite: "
                                 + what.joined(separator: ", ") + " (in the program's own precision; --compute-precision fp32 when exporting avoids fp16 overflow)")
        }
        if !quiet && !json { printText("\(package): run on \(inputs ?? "a random sample"): every op's output is finite") }
    }

    /// `verify X.mlpackage`.
    func verifyCoreML() throws {
        let result = CoreMLPackageVerifier.verify(path: package)
        if json && !quiet {
            try JSONOutput.print(CoreMLVerifyOutput(result: result))
            if let first = result.faults.first { throw CommandFailure(first.message) }
            return
        }
        if let first = result.faults.first {
            let more = result.faults.count > 1 ? " (and \(result.faults.count - 1) more fault(s); --json lists all)" : ""
            throw CommandFailure(first.message + more)
        }
        if quiet { return }
        printText(Self.summary(result))
    }

    /// One line: what the package holds and how much of it was checked.
    static func summary(_ r: CoreMLVerification) -> String {
        let version = r.specificationVersion.map { "specification version \($0) (\(CoreMLPackageSummary.deploymentTarget(specificationVersion: $0)))" } ?? ""
        guard r.modelType == "mlProgram" else {
            return "\(r.package): ok — a \(r.modelType ?? "?") model, \(version); container and model.mlmodel checked, its layers are not (mlpkg checks ML Programs)"
        }
        var line = "\(r.package): ok — ML Program, \(version), \(r.functions) function\(r.functions == 1 ? "" : "s"), \(r.operations) MIL ops: "
            + "\(r.checked) checked by mlpkg's MIL definitions"
        if !r.notChecked.isEmpty {
            var byType: [String: Int] = [:]
            for s in r.notChecked { byType[s.type, default: 0] += 1 }
            let listed = byType.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(5)
                .map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
            line += ", \(r.notChecked.count) not checked (\(listed)\(byType.count > 5 ? ", …" : ""); --json says why)"
        }
        return line + "; \(r.blobs) blob\(r.blobs == 1 ? "" : "s") in \(r.weightBytes) bytes of weights"
    }
}

/// `verify X.mlpackage --json`: the result, and the first fault as the error object every command's JSON mode gives.
struct CoreMLVerifyOutput: Encodable {
    var result: CoreMLVerification

    enum Keys: String, CodingKey { case error }

    func encode(to encoder: any Encoder) throws {
        try result.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        if let first = result.faults.first {
            try container.encode(ErrorObject(code: 1, message: first.message).error, forKey: .error)
        }
    }
}

/// `verify --json`: the verification result, and for an unsound package the first fault as the error object every
/// command's JSON mode gives (exit 1).
struct VerifyOutput: Encodable {
    var result: VerificationResult

    enum Keys: String, CodingKey { case error }

    func encode(to encoder: any Encoder) throws {
        try result.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        if let first = result.faults.first {
            var body = ErrorObject(code: 1, message: first.message).error
            body.tensor = first.tensor ?? body.tensor
            try container.encode(body, forKey: .error)
        }
    }
}
