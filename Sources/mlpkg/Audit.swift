import ArgumentParser
import Audit
import Foundation
import GraphIR
import MLPackage
import ONNXImport
import Passes
import SafeOutput
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Audit which compute unit (Neural Engine, GPU, CPU) can run each node, with each rule's reason and source.",
        discussion: """
            Every node (subgraphs included) gets a verdict per allowed compute unit: whether it converts comes from \
            mlpkg's Core ML lowering rules (each citing coremltools' MIL op definition), where it runs from the unit \
            profiles' rules; each rule names its source and confidence (documented, observed, community). A \
            placement no source supports is marked assumed. Reports start with the coverage, the nodes that block \
            loading, the blockers by rule with what fixes each, and pins for dynamic inputs with the coverage a \
            second audit with them measured. Nodes go to the Neural Engine \
            when it can run them, else the GPU, else the CPU; short runs between two segments of another unit then \
            move when the cost model estimates the saved transfers outweigh the slower unit. Ops no rule covers are \
            reported 'no rule', never assumed to run. Dynamic shapes keep nodes off the Neural Engine: pin them \
            with --input-shape. Times are estimates. --min-coverage exits 3 when the target unit's coverage (percent \
            of nodes) is below the threshold.

            Examples:
              mlpkg audit model.onnx
              mlpkg audit model.onnx --input-shape input_ids=1,128 --input-shape attention_mask=1,128
              mlpkg audit model.onnx --format markdown --compact -o audit.md --min-coverage 90
              mlpkg audit model.mlpkg --profile gpu --compute-units cpu-and-gpu --json
            """
    )

    @Argument(help: "The ONNX model or .mlpkg package to audit (several with --output-dir).")
    var models: [String] = []

    @Option(help: ArgumentHelp("Audit every model given, each report to this folder as NAME.txt, .json, .md or .html (batch).",
                               valueName: "dir"))
    var outputDir: String?

    /// The one model of a single audit.
    var model: String { models.first ?? "" }

    @OptionGroup var profileOptions: ProfileOptions

    @OptionGroup var inputShape: InputShapeOptions

    @Option(help: "text (default: a table; colour on a terminal), json (complete), markdown or html (one self-contained file).")
    var format: Format = .text

    @Option(name: .shortAndLong, help: "Write the report to this file (atomically) instead of stdout.")
    var output: String?

    @Flag(help: "Replace an existing file at -o even when it is not an mlpkg audit report (never a folder, a symlink or the input).")
    var force = false

    @Flag(help: "The same as --format json.")
    var json = false

    @Flag(help: "Print nothing but errors (a report goes only to -o FILE; --min-coverage still exits 3).")
    var quiet = false

    @Option(help: ArgumentHelp("Exit 3 when the target unit's coverage (percent of nodes) is below this.", valueName: "percent"))
    var minCoverage: Double?

    @Flag(help: "With text or markdown: the summary, blockers, pin suggestion and fallbacks by rule only; compact markdown stays under 60,000 characters (a pull-request comment).")
    var compact = false

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json, markdown, html
    }

    func validate() throws {
        guard !models.isEmpty else { throw ValidationError("give the ONNX model or package to audit") }
        if outputDir != nil && output != nil { throw ValidationError("-o and --output-dir are alternatives: give one") }
        if models.count > 1 && outputDir == nil { throw ValidationError("several models need --output-dir DIR") }
        if let minCoverage, !(0...100).contains(minCoverage) { throw ValidationError("--min-coverage must be 0 to 100") }
        if json, format != .text, format != .json { throw ValidationError("--json and --format \(format.rawValue) disagree") }
        if compact, json || format == .json || format == .html { throw ValidationError("--compact applies to --format text and markdown (json is complete; html folds its node tables)") }
    }

    func run() throws {
        let options = try profileOptions.auditOptions(inputShapes: inputShape.pins)
        if let outputDir {
            try auditBatch(into: outputDir, options: options)
            return
        }
        try audit(model, to: output, options: options, stdout: !quiet)
    }

    /// `audit A B … --output-dir D`: each report to D/NAME.EXT, one status line per model, a summary; exit 1 if any
    /// model failed, else 3 if any is below --min-coverage. A failure does not stop the others.
    func auditBatch(into dir: String, options: AuditOptions) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CommandFailure("\(dir): no such folder (--output-dir)")
        }
        let format = json ? Format.json : self.format
        let ext = ["text": "txt", "json": "json", "markdown": "md", "html": "html"][format.rawValue]!
        var seen: Set<String> = []
        var failed = 0, belowGate = 0
        var items: [BatchAuditOutput.Item] = []
        for m in models {
            var name = URL(fileURLWithPath: m).lastPathComponent
            for suffix in [".onnx", ".mlpkg", ".mlpkg/"] where name.lowercased().hasSuffix(suffix) { name = String(name.dropLast(suffix.count)) }
            let out = URL(fileURLWithPath: dir).appendingPathComponent(name + "." + ext).path
            guard seen.insert(out).inserted else { throw ValidationError("two models would both be written to \(out)") }
            do {
                let report = try audit(m, to: out, options: options, stdout: false, gate: false)
                let s = report.summary
                let below = minCoverage.map { (s.coverageExact ?? s.coverage) < $0 } ?? false
                if below { belowGate += 1 }
                items.append(.init(model: m, report: out, coverage: s.coverageExact ?? s.coverage, nodesOnTarget: s.nodesOnTarget,
                                   nodes: s.nodes, belowMinCoverage: minCoverage == nil ? nil : below))
                if !quiet && !json {
                    printText("\(below ? "below" : "ok   ") \(m) → \(out) (\(report.target) \(ReportFormatting.exactPercent(s.coverageExact ?? s.coverage)), \(s.nodesOnTarget ?? 0) of \(s.nodes) nodes)")
                }
            } catch let f as CommandFailure {
                failed += 1
                items.append(.init(model: m, report: out, error: f.message))
                FileHandleOutput.standardError.write("error: \(Printable.terminal(f.message))\n")
            } catch let f as UsageFailure {
                failed += 1
                items.append(.init(model: m, report: out, error: f.message))
                FileHandleOutput.standardError.write("error: \(Printable.terminal(f.message))\n")
            }
        }
        if json && !quiet {
            try JSONOutput.print(BatchAuditOutput(results: items, audited: models.count - failed, failed: failed,
                                                  belowMinCoverage: belowGate))
        }
        if !quiet && !json {
            var line = "audited \(models.count - failed) of \(models.count) model(s) into \(dir)"
            if failed > 0 { line += "; \(failed) failed" }
            if belowGate > 0, let minCoverage { line += "; \(belowGate) below --min-coverage \(ReportFormatting.exactPercent(minCoverage))" }
            printText(line)
        }
        if failed > 0 { throw ExitCode(1) }
        if belowGate > 0 { throw ExitCode(3) }
    }

    /// Audits one model, writes its report to `output` (or stdout), and applies the gate.
    @discardableResult
    func audit(_ model: String, to output: String?, options: AuditOptions, stdout: Bool, gate: Bool = true) throws -> AuditReport {
        let report: AuditReport
        do {
            let graphModel: Model
            if PackageReader.isPackage(path: model) {
                graphModel = try PackageReader.load(path: model, checksums: true).model
            } else {
                graphModel = try ONNXImporter.load(path: model)
            }
            do {
                report = try AuditAdvice.audit(graphModel, pins: inputShape.pins, modelName: model, options: options)
            } catch let error as PinError {
                throw UsageFailure(message: "\(model): \(error)")
            }
        } catch let failure as CommandFailure {
            throw failure
        } catch let failure as UsageFailure {
            throw failure
        } catch {
            throw CommandFailure(error)
        }
        // The document, written piece by piece: JSON streams one node at a time, so a graph of 10^5 nodes does not
        // build the encoder's tree of the whole report in memory (issue 16).
        let format = json ? Format.json : self.format
        func render(_ write: (String) throws -> Void) throws {
            switch format {
            case .text: try write(AuditText.render(report, color: output == nil && isatty(1) == 1 && getenv("NO_COLOR") == nil, compact: compact))
            case .json: try JSONOutput.stream(report, write)
            case .markdown: try write(AuditMarkdown.render(report, compact: compact))
            case .html: try write(AuditHTML.render(report))
            }
        }
        if let output {
            do {
                try OutputPlacement.refuseInside(output: output, input: model)
                let file = try AtomicFile(target: output, kind: "an mlpkg audit report",
                                          replaceable: { force || OutputKind.isAuditReport($0) })
                do {
                    var last: Character?
                    try render { chunk in
                        try file.file.write(Array(chunk.utf8))
                        last = chunk.last ?? last
                    }
                    if last != "\n" { try file.file.write(Array("\n".utf8)) }
                    try file.commit()
                } catch {
                    file.abandon()
                    throw error
                }
            } catch {
                throw CommandFailure("\(error)")
            }
        } else if stdout {
            var last: Character?
            try render { chunk in
                FileHandleOutput.standardOutput.write(chunk)
                last = chunk.last ?? last
            }
            if last != "\n" { FileHandleOutput.standardOutput.write("\n") }
        }
        // The exact fraction is compared, not the rounded percentage (96.28% used to pass --min-coverage 96.3).
        let exact = report.summary.coverageExact ?? report.summary.coverage
        if gate, let minCoverage, exact < minCoverage {
            let on = report.summary.nodesOnTarget.map { "\($0) of \(report.summary.nodes) nodes" } ?? "\(report.summary.nodes) nodes"
            let (a, b) = ReportFormatting.distinct(exact, minCoverage)
            throw GateFailure("\(model): \(report.target) coverage \(a) (\(on)) is below --min-coverage \(b)")
        }
        return report
    }
}

/// What `audit … --output-dir D --json` prints (each report is in its file).
struct BatchAuditOutput: Encodable {
    struct Item: Encodable {
        var model: String
        /// The report file written (absent when the model failed).
        var report: String
        var coverage: Double? = nil
        var nodesOnTarget: Int? = nil
        var nodes: Int? = nil
        var belowMinCoverage: Bool? = nil
        /// The one-line error, when the model failed.
        var error: String? = nil
    }
    var results: [Item]
    var audited: Int
    var failed: Int
    var belowMinCoverage: Int
}

/// A quality gate that failed (exit code 3).
struct GateFailure: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

enum ReportFormatting {
    /// A percentage with the digits it needs to tell it from a neighbour (up to 4 decimals): 66.6667%, 96.3%, 75%.
    static func exactPercent(_ p: Double) -> String {
        var text = String(format: "%.4f", p)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text + "%"
    }

    /// Two percentages with as many digits as it takes to tell them apart (at least `exactPercent`'s).
    static func distinct(_ a: Double, _ b: Double) -> (String, String) {
        var x = exactPercent(a), y = exactPercent(b)
        var digits = 5
        while x == y, digits <= 15 {
            x = trimmed(String(format: "%.\(digits)f", a)) + "%"
            y = trimmed(String(format: "%.\(digits)f", b)) + "%"
            digits += 1
        }
        return (x, y)
    }

    static func trimmed(_ text: String) -> String {
        var text = text
        while text.contains("."), text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    static func percent(_ p: Double) -> String {
        p == p.rounded() ? "\(Int(p))%" : String(format: "%.1f%%", p)
    }
}

extension JSONOutput {
    /// The audit report as `string` writes it (pretty-printed, sorted keys), produced node by node.
    static func stream(_ report: AuditReport, _ write: (String) throws -> Void) throws {
        var shell = report
        shell.nodes = []
        let whole = try string(shell)
        // The shell's empty "nodes" array is replaced by the nodes, each encoded alone and indented to its place.
        guard let key = whole.range(of: "\"nodes\" : ["),
              let close = whole[key.upperBound...].firstIndex(where: { !$0.isWhitespace }), whole[close] == "]" else {
            try write(try string(report))
            return
        }
        try write(String(whole[..<key.upperBound]))
        // One encoder for every node; each node's lines indented to their place byte by byte, written in ~1 MiB
        // chunks (string surgery per node cost more than encoding it: 10,000 nodes took 11 s).
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 20)
        for (i, node) in report.nodes.enumerated() {
            let data = try encoder.encode(node)
            buffer.append(contentsOf: (i == 0 ? "\n" : ",\n").utf8)
            data.withUnsafeBytes { bytes in
                var lineStart = true
                for byte in bytes {
                    if lineStart && byte != 0x0A { buffer.append(contentsOf: [0x20, 0x20, 0x20, 0x20]) }
                    buffer.append(byte)
                    lineStart = byte == 0x0A
                }
            }
            if buffer.count >= 1 << 20 {
                try write(String(decoding: buffer, as: UTF8.self))
                buffer.removeAll(keepingCapacity: true)
            }
        }
        if !buffer.isEmpty { try write(String(decoding: buffer, as: UTF8.self)) }
        try write(report.nodes.isEmpty ? String(whole[key.upperBound...close]) : "\n  " + String(whole[close...]))
    }
}
