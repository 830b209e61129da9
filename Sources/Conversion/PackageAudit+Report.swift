import Audit
import GraphIR
import MLPackage
import Passes

extension PackageAudit {
    /// The part of an audit a package keeps in report.json.
    public init(_ report: AuditReport) {
        self.init(target: report.target, computeUnits: report.computeUnits, chip: report.chip,
                  inputShapes: report.inputShapes, profiles: JSONValue(encoding: report.profiles) ?? .null,
                  summary: JSONValue(encoding: report.summary) ?? .null,
                  fallbacks: report.fallbacks.map {
                      Fallback(name: $0.name, opType: $0.opType, domain: $0.domain, graph: $0.graph, index: $0.index,
                               unit: $0.unit, reasons: $0.reasons)
                  })
    }
}

extension PackageAssignment {
    /// Each node's unit and the audit, from an audit of the graph the package holds.
    public init(_ report: AuditReport) {
        self.init(computeUnits: report.unitsByNodeKey, audit: PackageAudit(report))
    }
}

extension GraphPassReport {
    /// What a pipeline run did, from its context.
    public init(pipeline: String, context: PassContext) {
        let all = context.inference?.values ?? []
        self.init(pipeline: pipeline, rounds: context.rounds, foldedNodes: context.foldedNodes,
                  foldedBatchNorms: context.foldedBatchNorms, removedNodes: context.removedNodes,
                  removedInitializers: context.removedInitializers,
                  typedValues: all.filter { $0.type.hasRank }.count, staticValues: all.filter { $0.type.isStatic }.count,
                  values: all.count, unresolved: context.inference?.unresolved ?? [])
    }
}
