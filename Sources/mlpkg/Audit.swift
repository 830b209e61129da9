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
            Every node (subgraphs included) gets a verdict per allowed compute unit from the profiles' rules; each \
            rule names its source and confidence (documented, observed, community). Nodes go to the Neural Engine \
            when it can run them, else the GPU, else the CPU; short runs between two segments of another unit then \
            move when the cost model estimates the saved transfers outweigh the slower unit. Ops no rule covers are \
            reported 'no rule', never assumed to run. Dynamic shapes keep nodes off the Neural Engine: pin them \
            with --input-shape. Times are estimates. --min-coverage exits 3 when the target unit's coverage (percent \
            of nodes) is below the threshold.
            """
    )

    @Argument(help: "The ONNX model or .mlpkg package to audit.")
    var model: String

    @OptionGroup var profileOptions: ProfileOptions

    @OptionGroup var inputShape: InputShapeOptions

    @Option(help: "text (default: a table; colour on a terminal), json (complete), markdown or html (one self-contained file).")
    var format: Format = .text

    @Option(name: .shortAndLong, help: "Write the report to this file (atomically) instead of stdout.")
    var output: String?

    @Option(help: ArgumentHelp("Exit 3 when the target unit's coverage (percent of nodes) is below this.", valueName: "percent"))
    var minCoverage: Double?

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json, markdown, html
    }

    func validate() throws {
        if let minCoverage, !(0...100).contains(minCoverage) { throw ValidationError("--min-coverage must be 0 to 100") }
    }

    func run() throws {
        let options = try profileOptions.auditOptions(inputShapes: inputShape.pins)
        let report: AuditReport
        do {
            let graphModel: Model
            if PackageReader.isPackage(path: model) {
                graphModel = try PackageReader.load(path: model, checksums: true).model
            } else {
                graphModel = try ONNXImporter.load(path: model)
            }
            let input: AuditInput
            do {
                input = try AuditInput.forModel(graphModel, pinning: inputShape.pins)
            } catch {
                throw UsageFailure(message: "\(model): \(error)")
            }
            report = try Auditor.audit(input, modelName: model, options: options)
        } catch let failure as CommandFailure {
            throw failure
        } catch let failure as UsageFailure {
            throw failure
        } catch {
            throw CommandFailure(error)
        }
        let text: String
        switch format {
        case .text: text = AuditText.render(report, color: output == nil && isatty(1) == 1 && getenv("NO_COLOR") == nil)
        case .json: text = try JSONOutput.string(report)
        case .markdown: text = AuditMarkdown.render(report)
        case .html: text = AuditHTML.render(report)
        }
        if let output {
            do {
                try OutputPlacement.refuseInside(output: output, input: model)
                let file = try AtomicFile(target: output)
                do {
                    try file.file.write(Array(text.utf8))
                    try file.commit()
                } catch {
                    file.abandon()
                    throw error
                }
            } catch {
                throw CommandFailure("\(error)")
            }
        } else {
            FileHandleOutput.standardOutput.write(text.hasSuffix("\n") ? text : text + "\n")
        }
        if let minCoverage, report.summary.coverage < minCoverage {
            throw GateFailure("\(model): \(report.target) coverage \(ReportFormatting.percent(report.summary.coverage)) is below --min-coverage \(ReportFormatting.percent(minCoverage)) (\(report.summary.fallbacks) of \(report.summary.nodes) nodes elsewhere)")
        }
    }
}

/// A quality gate that failed (exit code 3).
struct GateFailure: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

enum ReportFormatting {
    static func percent(_ p: Double) -> String {
        p == p.rounded() ? "\(Int(p))%" : String(format: "%.1f%%", p)
    }
}
