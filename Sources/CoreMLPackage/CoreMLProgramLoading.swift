import MIL

/// Why a package's program cannot be run: the package and what is wrong with it.
public struct CoreMLProgramLoadError: Error, Sendable, CustomStringConvertible {
    /// The package's path.
    public var path: String
    /// What is wrong, in the package's terms.
    public var message: String
    /// The error line's text (`PATH: MESSAGE`).
    public var description: String { "\(path): \(message)" }
}

extension CoreMLPackageReader {
    /// The main function of the package's ML Program as a `MILProgram`, for evaluation: weights stay views of the
    /// memory-mapped weight files. Refuses a package with faults, without an ML Program, or whose main block holds
    /// ops or types mlpkg does not represent (control flow, lists, dynamic shapes), naming the first.
    public static func mainProgram(path: String) throws(CoreMLProgramLoadError) -> MILProgram {
        let contents = read(path: path)
        if let fault = contents.faults.first { throw CoreMLProgramLoadError(path: path, message: String(fault.dropFirst(path.count + 2))) }
        guard let spec = contents.spec, let program = spec.program else {
            throw CoreMLProgramLoadError(path: path, message: "is not an ML Program (only ML Programs can be run)")
        }
        guard let function = program.functions.first(where: { $0.name == "main" }) ?? program.functions.first else {
            throw CoreMLProgramLoadError(path: path, message: "the ML Program has no function")
        }
        guard let block = function.blocks.first(where: { $0.opset == function.opset })?.block ?? function.blocks.first?.block else {
            throw CoreMLProgramLoadError(path: path, message: "function \(function.name) has no block")
        }
        let target = CoreMLPackageVerifier.target(opset: function.opset) ?? .iOS18
        let decoded = MILProgramDecoder(contents: contents).decode(function, block: block, target: target)
        if let fault = decoded.faults.first { throw CoreMLProgramLoadError(path: path, message: fault) }
        if let skipped = decoded.skipped.first {
            throw CoreMLProgramLoadError(path: path, message: "op \(skipped.type) '\(skipped.op)' cannot be run: \(skipped.reason)")
        }
        if let opaque = decoded.opaque.sorted().first {
            throw CoreMLProgramLoadError(path: path, message: "variable '\(opaque)' has a type mlpkg does not represent")
        }
        if let (index, reason) = decoded.unchecked.min(by: { $0.key < $1.key }) {
            let op = decoded.program.operations[index]
            throw CoreMLProgramLoadError(path: path, message: "op \(op.type) '\(op.name)' cannot be run: \(reason)")
        }
        // The evaluator trusts shapes and parameters as the definitions check them: a program they reject is refused.
        let report = MILVerifier.check(decoded.program, opaque: decoded.opaque, unchecked: decoded.unchecked)
        if let error = report.errors.first { throw CoreMLProgramLoadError(path: path, message: error.description) }
        return decoded.program
    }
}
