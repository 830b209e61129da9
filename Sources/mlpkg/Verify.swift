import ArgumentParser
import GraphIR
import MLPackage

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a package: format and version, structure, graph and every checksum.",
        discussion: """
            Exit 0 when the package is sound. Otherwise exit 1 with one error line naming the first fault; with \
            --json, one JSON document listing every fault.

            Examples:
              mlpkg verify model.mlpkg
              mlpkg verify model.mlpkg --json
              mlpkg verify model.mlpkg --quiet && echo sound
            """
    )

    @Argument(help: "The package to check.")
    var package: String

    @Flag(help: "Print one JSON document listing every fault.")
    var json = false

    @Flag(help: "Print nothing but errors: the exit code says whether the package is sound.")
    var quiet = false

    func run() throws {
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
