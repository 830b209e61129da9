import GraphIR
import Profiles

/// What `convert --profile` stores in report.json: the audit's summary and the nodes that are not on the target unit,
/// with their reasons. Each node's unit is in the manifest (`computeUnit`).
public struct PackageAudit: Codable, Sendable, Equatable {
    public struct Fallback: Codable, Sendable, Equatable {
        public var name: String
        public var opType: String
        public var domain: String
        public var graph: String
        public var index: Int
        public var unit: String
        public var reasons: [String]
    }

    public var target: String
    public var computeUnits: String
    public var chip: String
    public var inputShapes: [String]
    public var profiles: [AuditReport.ProfileReference]
    public var summary: AuditReport.Summary
    public var fallbacks: [Fallback]

    public init(_ report: AuditReport) {
        target = report.target
        computeUnits = report.computeUnits
        chip = report.chip
        inputShapes = report.inputShapes
        profiles = report.profiles
        summary = report.summary
        fallbacks = report.fallbacks.map {
            Fallback(name: $0.name, opType: $0.opType, domain: $0.domain, graph: $0.graph, index: $0.index,
                     unit: $0.unit, reasons: $0.reasons)
        }
    }
}

extension AuditReport {
    /// Each node's unit by `NodePath.key`, as the package manifest records them.
    public var unitsByNodeKey: [String: String] {
        var units: [String: String] = [:]
        for n in nodes { units[NodePath.key(graph: n.graph, index: n.index)] = n.unit }
        return units
    }
}
