import ArgumentParser
import Audit
import CSystem
import CoreMLExport
import GraphIR
import MLPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `mlpkg` command line: a thin shell over the library. Exit codes (a contract): 0 success, 1 the input or the
/// work failed, 2 usage error, 3 a quality gate failed.
@main
struct MLPkgCommand: ParsableCommand {
    static let version = MLPkgVersion.current

    static let configuration = CommandConfiguration(
        commandName: "mlpkg",
        abstract: "Turn ONNX models into small, self-describing packages for Apple Silicon.",
        version: version,
        subcommands: [Inspect.self, Convert.self, Verify.self, Export.self, Run.self, Compare.self, AuditCommand.self, ProfilesCommand.self]
    )

    static func main() {
        // Inputs are memory-mapped: if another process truncates one while it is read, the kernel raises SIGBUS.
        // Fail like any other bad input (outputs are written to temporary siblings, so nothing half-written remains).
        let input = CommandLine.arguments.dropFirst().filter { !$0.hasPrefix("-") }.dropFirst().first ?? "mlpkg"
        mlpkg_install_bus_error_handler("error: \(input): an input file changed size while mlpkg was reading it; nothing was written")
        // Past a file-size limit (ulimit -f) the kernel would kill the process with SIGXFSZ and leave its temporary
        // output behind; ignored, the write fails with EFBIG and the usual error path cleans up.
        signal(SIGXFSZ, SIG_IGN)
        // Ctrl-C, SIGTERM and SIGHUP remove the temporary outputs in progress and end with one error line.
        mlpkg_install_interrupt_handlers()
        // An allocation that fails (a `ulimit -v` below what the job needs) aborts in the Swift runtime: remove the
        // temporaries and end with an error line instead of a crash report and a leftover temporary.
        // The runtime prints its fatal message on stdio's stderr before it aborts: captured, it becomes part of that
        // one line (mlpkg's own output goes to fd 2 directly, never through stdio).
        if getenv("MLPKG_BACKTRACE") == nil {
            _ = mlpkg_capture_runtime_messages()
            mlpkg_install_fatal_handlers()
        }
        ScriptingMode.configure(arguments: Array(CommandLine.arguments.dropFirst()))
        // A first word that is no subcommand gets a suggestion instead of "unexpected arguments".
        if let first = CommandLine.arguments.dropFirst().first, !first.hasPrefix("-") {
            // A subcommand without an explicit name is named after its type, in lower case (Convert → convert).
            let names = configuration.subcommands.map { $0.configuration.commandName ?? String(describing: $0).lowercased() } + ["help"]
            if !names.contains(first) {
                let closest = names.map { ($0, editDistance($0, first)) }.min { $0.1 < $1.1 }
                let hint = closest.flatMap { $0.1 <= max(2, first.count / 3) ? "; did you mean '\($0.0)'?" : nil } ?? ""
                fail("unknown command '\(first)'\(hint) (commands: \(names.dropLast().joined(separator: ", ")))", code: 2, usage: true)
            }
        }
        do {
            // Repeatable patterns go around the parser, whose cost is quadratic in the number of arguments.
            let lifted = RepeatedOptions(Array(CommandLine.arguments.dropFirst()))
            var command = try parseAsRoot(lifted.remaining)
            if var convert = command as? Convert {
                convert.excludes = lifted.values(of: "--exclude", parsed: convert.excludes)
                convert.includes = lifted.values(of: "--include", parsed: convert.includes)
                command = convert
            }
            try command.run()
        } catch let failure as CommandFailure {
            fail(failure.message, code: 1, file: failure.file, tensor: failure.tensor)
        } catch let gate as GateFailure {
            fail(gate.message, code: 3)
        } catch let failure as UsageFailure {
            fail(failure.message, code: 2, usage: true)
        } catch let code as ExitCode {
            Glibc.exit(code.rawValue)
        } catch {
            // Help, version and usage errors from the argument parser.
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            fail(message(for: error), code: 2, usage: true)
        }
    }

    /// Levenshtein distance, for command suggestions.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let saved = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = saved
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }

    /// Prints one `error:` line on stderr and exits.
    static func fail(_ message: String, code: Int32, usage: Bool = false, file: String? = nil, tensor: String? = nil) -> Never {
        // One line, and a bounded one: long quoted values (a 20 MB config setting) are cut.
        let oneLine = Printable.boundingQuotes(message).split(whereSeparator: \.isNewline).map { $0.trimmedSpaces }
            .filter { !$0.isEmpty }.joined(separator: " ")
        // Names in messages come from model files: shown with control characters escaped (docs/HARDENING.md).
        var text = "error: \(Printable.terminal(oneLine))\n"
        if usage && !ScriptingMode.json { text += "Run 'mlpkg --help' for usage.\n" }
        FileHandleOutput.standardError.write(text)
        // In JSON mode the error is also a JSON object on stdout, unless a document is already there (an audit
        // report before its --min-coverage gate fails).
        var object = ErrorObject(code: code, message: oneLine)
        if let file { object.error.file = file }
        if let tensor { object.error.tensor = tensor }
        if ScriptingMode.json, !ScriptingMode.wroteStdout, let json = try? JSONOutput.string(object) {
            FileHandleOutput.standardOutput.write(json)
        }
        Glibc.exit(code)
    }
}

/// A failure of the input or the work (exit code 1); `message` names the file and the tensor or node at fault.
struct CommandFailure: Error {
    var message: String
    /// The file and tensor at fault, when the error says so in typed fields (a package's faults do).
    var file: String?
    var tensor: String?
    init(_ message: String) { self.message = message }
    init(_ error: any Error) {
        self.message = "\(error)"
        if let e = error as? PackageError {
            file = e.path
            tensor = e.tensor
        } else if let e = error as? DynamicInputShapesError {
            file = e.file
            tensor = e.inputs.first?.name
        } else if let e = error as? CoreMLExportError {
            file = e.path
        } else if let e = error as? CoreMLInputFileError {
            file = e.file
        }
    }
}

/// Unbuffered writes to stdout/stderr.
enum FileHandleOutput {
    case standardOutput, standardError

    func write(_ text: String) {
        let fd: Int32 = self == .standardOutput ? 1 : 2
        if fd == 1, !text.isEmpty { ScriptingMode.wroteStdout = true }
        var remaining = Array(text.utf8)[...]
        while !remaining.isEmpty {
            let written = remaining.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written <= 0 { return }
            remaining = remaining.dropFirst(written)
        }
    }
}

extension StringProtocol {
    var trimmedSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}

/// Human-readable output of a command: text that may carry names from a model file, printed with control
/// characters escaped (newlines and tabs kept).
func printText(_ text: String) {
    FileHandleOutput.standardOutput.write(Printable.terminal(text, keepLayout: true) + "\n")
}

/// A `note:` line on stderr, escaped the same way.
func printNote(_ text: String) {
    if ScriptingMode.quiet { return }  // --quiet: nothing but errors, notes included
    FileHandleOutput.standardError.write("note: " + Printable.terminal(text) + "\n")
}
