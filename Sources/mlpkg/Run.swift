import ArgumentParser
import CoreMLPackage
import Evaluate
import Foundation
import MIL
import SafeOutput

/// Reading a program and its inputs, shared by `run` and `compare`.
enum ProgramInputs {
    /// The main program of a `.mlpackage` (exit 1 when it cannot be read or run).
    static func program(_ path: String) throws -> MILProgram {
        do {
            return try CoreMLPackageReader.mainProgram(path: path)
        } catch {
            throw CommandFailure("\(error)")
        }
    }

    /// `program` with each input's flexible dims set to the model interface's default shape (what an app gets
    /// without asking for another size): random samples and a reference's pins need sizes.
    static func withDefaultShapes(_ program: MILProgram, path: String) -> MILProgram {
        guard program.inputs.contains(where: { !$0.type.isStatic }),
              let features = CoreMLPackageReader.read(path: path).spec?.inputs else { return program }
        let out = program  // a class: the inputs are set in place
        for (i, input) in program.inputs.enumerated() where !input.type.isStatic {
            guard let feature = features.first(where: { $0.name == input.name }),
                  case .multiArray(_, let shape, _) = feature.type, shape.count == input.type.rank else { continue }
            out.inputs[i] = MILVar(name: input.name, type: input.type.with(shape: shape))
        }
        return out
    }

    /// Reads a whole file (exit 1 naming it when it cannot).
    static func bytes(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw CommandFailure("\(path): cannot be read (missing, or not a file)") }
        return Array(data)
    }

    /// The arrays of an `.npz` file, by name.
    static func archive(_ path: String) throws -> [(name: String, value: EvalTensor)] {
        do {
            return try NumPyArchive.arrays(npz: try bytes(path), name: path)
        } catch let error as NumPyArchive.Failure {
            throw CommandFailure(error.message)
        }
    }

    /// Checks that `given` holds exactly the program's inputs with their shapes; missing or unknown names are usage
    /// errors, a wrong shape is the input file's fault.
    static func check(_ given: [String: EvalTensor], files: [String: String], against program: MILProgram, model: String) throws {
        let declared = Set(program.inputs.map(\.name))
        if let unknown = given.keys.sorted().first(where: { !declared.contains($0) }) {
            throw UsageFailure(message: "\(model) has no input '\(unknown)' (inputs: \(program.inputs.map(\.name).joined(separator: ", ")))")
        }
        let missing = program.inputs.filter { given[$0.name] == nil }
        if !missing.isEmpty {
            throw UsageFailure(message: "\(model): no value for input(s) " + missing.map { "'\($0.name)' \($0.type)" }.joined(separator: ", ")
                               + "; give each with --input NAME=FILE.npy")
        }
        for v in program.inputs {
            let t = given[v.name]!
            // A dim known only at run time (a flexible input's) takes any size.
            guard t.shape.count == v.type.rank,
                  zip(t.shape, v.type.shape).allSatisfy({ $1 == MILTensorType.unknownDim || $0 == $1 }) else {
                throw CommandFailure("\(files[v.name] ?? v.name): input '\(v.name)' has shape \(t.shape); \(model) takes \(v.type)")
            }
            guard t.isFloat == v.type.dtype.isFloat else {
                throw CommandFailure("\(files[v.name] ?? v.name): input '\(v.name)' holds \(t.dtype) values; \(model) takes \(v.type)")
            }
        }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a Core ML .mlpackage's ML Program on the CPU with mlpkg's reference evaluator.",
        discussion: """
            Every input is given as a NumPy .npy file (--input NAME=FILE.npy, repeated) or all of them in one .npz \
            (--inputs DATA.npz); a missing input is a usage error (exit 2). Inputs are converted to the declared \
            element type (float64 to fp32, int64 to int32). The program runs as Core ML would compute it: an fp16 \
            program rounds every op's fp16 output to fp16 (--compute fp32 keeps float32 throughout), compressed \
            weights are decoded as Core ML decodes them. Matrix products and convolutions use BLAS (OpenBLAS on \
            Linux, Accelerate on macOS).

            With -o OUT.npz the outputs are written (atomically; stored entries named after the outputs, in their \
            declared element types); without it, each output's shape and a summary are printed.

            Examples:
              mlpkg run Model.mlpackage --input input_ids=ids.npy --input attention_mask=mask.npy -o out.npz
              mlpkg run Model.mlpackage --inputs data.npz --compute fp32 --json
            """
    )

    @Argument(help: "The Core ML package (.mlpackage) to run.")
    var model: String

    @Option(name: .customLong("input"), help: ArgumentHelp("An input as NAME=FILE.npy (repeatable).", valueName: "NAME=FILE.npy"))
    var inputFiles: [String] = []

    @Option(name: .customLong("inputs"), help: ArgumentHelp("Every input from one .npz archive (entries named after the inputs).", valueName: "DATA.npz"))
    var archive: String?

    @Option(name: .shortAndLong, help: "Write the outputs to this .npz file.")
    var output: String?

    @Option(help: "declared (default: as the program declares, fp16 rounding after each fp16 op) or fp32.")
    var compute: String = "declared"

    @Flag(help: "Print one JSON document (outputs with shape, type and summary statistics).")
    var json = false

    @Flag(help: "Print nothing but errors.")
    var quiet = false

    func validate() throws {
        guard ["declared", "fp32"].contains(compute) else { throw ValidationError("--compute takes declared or fp32, not '\(compute)'") }
        for a in inputFiles where !a.contains("=") { throw ValidationError("--input takes NAME=FILE.npy, got '\(a)'") }
        if let output, !output.hasSuffix(".npz") { throw ValidationError("-o writes a .npz archive; name it OUT.npz") }
    }

    func run() throws {
        let program = try ProgramInputs.program(model)
        var given: [String: EvalTensor] = [:]
        var files: [String: String] = [:]
        if let archive {
            for (name, value) in try ProgramInputs.archive(archive) { given[name] = value; files[name] = archive }
        }
        for a in inputFiles {
            let parts = a.split(separator: "=", maxSplits: 1).map(String.init)
            let (name, file) = (parts[0], parts.count > 1 ? parts[1] : "")
            if files[name] != nil, archive == nil { throw UsageFailure(message: "input '\(name)' is given twice") }
            do {
                given[name] = try NumPyArchive.array(npy: try ProgramInputs.bytes(file), name: file)
            } catch let error as NumPyArchive.Failure {
                throw CommandFailure(error.message)
            }
            files[name] = file
        }
        try ProgramInputs.check(given, files: files, against: program, model: model)
        if let output { try OutputPlacement.refuseInside(output: output, input: model) }
        let outputs: [(name: String, value: EvalTensor)]
        do {
            let evaluator = try Evaluator(program, precision: compute == "fp32" ? .fp32 : .asDeclared)
            outputs = try evaluator.run(given)
        } catch {
            throw CommandFailure("\(model): \(error)")
        }
        if let output {
            do {
                let file = try AtomicFile(target: output, kind: "a .npz archive", replaceable: { $0.hasSuffix(".npz") })
                do {
                    try file.file.write(NumPyArchive.npz(outputs))
                    try file.commit()
                } catch {
                    file.abandon()
                    throw error
                }
            } catch {
                throw CommandFailure("\(error)")
            }
        }
        if quiet { return }
        let summaries = outputs.map { RunOutput.Tensor($0.name, $0.value) }
        if json {
            try JSONOutput.print(RunOutput(model: model, output: output, outputs: summaries))
            return
        }
        for s in summaries {
            printText("\(s.name): \(s.dtype)\(s.shape)  min \(format(s.min)) max \(format(s.max)) mean \(format(s.mean))"
                      + (s.nonFinite > 0 ? "  \(s.nonFinite) inf/NaN" : ""))
        }
        if let output { printText("\(model) → \(output) (\(outputs.count) output(s))") }
    }

    func format(_ v: Double?) -> String { v.map { String(format: "%.6g", $0) } ?? "-" }
}

struct RunOutput: Encodable {
    struct Tensor: Encodable {
        var name: String
        var dtype: String
        var shape: [Int]
        var min: Double?
        var max: Double?
        var mean: Double?
        var nonFinite: Int

        init(_ name: String, _ t: EvalTensor) {
            self.name = name
            dtype = t.dtype.description
            shape = t.shape
            var lo = Double.infinity, hi = -Double.infinity, sum = 0.0, finite = 0, bad = 0
            for v in t.floats {
                let d = Double(v)
                guard d.isFinite else { bad += 1; continue }
                lo = Swift.min(lo, d); hi = Swift.max(hi, d); sum += d; finite += 1
            }
            min = finite > 0 ? lo : nil
            max = finite > 0 ? hi : nil
            mean = finite > 0 ? sum / Double(finite) : nil
            nonFinite = bad
        }
    }
    var model: String
    var output: String?
    var outputs: [Tensor]
}
