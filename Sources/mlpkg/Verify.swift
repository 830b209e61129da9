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
            try JSONOutput.print(result)
            if !result.ok { throw ExitCode(1) }
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
