@testable import CoreMLExport
import Foundation
import Ops
import GraphIR
import Testing

/// Every condition a lowering rule states, positive and negative: each MIL element type mlpkg's programs use (fp16,
/// fp32, int32, bool) passes a rule's type check exactly when the cited definition's type domain holds it, and each
/// stated rank bound passes at its ends and fails just outside them.
@Suite struct LoweringRuleTests {
    static let dtypes: [(MILDataType, DataType)] = [(.fp16, .float16), (.fp32, .float), (.int32, .int32), (.bool, .bool)]

    /// A node of `op` whose inputs (arity `arity`) have the given ONNX type and shape.
    static func view(_ op: String, arity: Int, type: DataType, shape: [Int], position: Int, other: DataType = .float) -> NodeView {
        var types: [String: ValueType] = [:]
        for i in 0..<arity {
            types["in\(i)"] = .tensor(TensorType(elementType: i == position ? type : other, shape: shape.map { .value($0) }))
        }
        let table = ValueTable(types: types, compute: .fp32, target: .iOS15)
        let node = Node(name: "n", opType: op, inputs: (0..<arity).map { "in\($0)" }, outputs: ["y"])
        return NodeView(node: node, opset: 17, target: .iOS15, compute: .fp32, values: table)
    }

    static func passes(_ rule: LoweringRule, _ v: NodeView) -> Bool {
        do throws(LoweringRefusal) {
            try rule.check(v)
            return true
        } catch {
            return false
        }
    }

    @Test("type domains: every (lowering, op, input, dtype) passes iff the definition allows the dtype")
    func typeDomains() throws {
        var checked = 0
        for lowering in LoweringRegistry.lowerings {
            let rule = lowering.rule
            for op in lowering.opTypes {
                guard let domains = rule.inputTypes[op] ?? rule.inputTypes["*"] else { continue }
                let arity = (domains.keys.max() ?? 0) + 1
                for (position, allowed) in domains {
                    for (mil, onnx) in Self.dtypes {
                        // The other inputs get a type their own domains allow, so only `position` is under test.
                        let other = Self.dtypes.first { d in domains.filter { $0.key != position }.values.allSatisfy { $0.contains(d.0) } }?.1 ?? .float
                        // A rank the rule's own bound allows, so only the type is under test.
                        let bound = rule.ranks[op] ?? rule.ranks["*"] ?? 4...4
                        let shape = Array([1, 2, 3, 3, 2].prefix(bound.contains(4) ? 4 : bound.lowerBound))
                        let v = Self.view(op, arity: arity, type: onnx, shape: shape, position: position, other: other)
                        #expect(Self.passes(rule, v) == allowed.contains(mil),
                                "\(rule.id) \(op) input \(position) \(mil): expected \(allowed.contains(mil) ? "pass" : "refusal")")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked > 300)
    }

    @Test("rank bounds: each passes at both ends and fails one outside them")
    func rankBounds() throws {
        var checked = 0
        for lowering in LoweringRegistry.lowerings {
            let rule = lowering.rule
            for op in lowering.opTypes {
                guard let range = rule.ranks[op] ?? rule.ranks["*"] else { continue }
                let type: DataType = (rule.inputTypes[op] ?? rule.inputTypes["*"])?[0]?.contains(.fp32) == false ? .bool : .float
                for rank in [range.lowerBound - 1, range.lowerBound, range.upperBound, range.upperBound + 1] where rank >= 0 {
                    let v = Self.view(op, arity: 1, type: type, shape: Array(repeating: 2, count: rank), position: 0)
                    #expect(Self.passes(rule, v) == range.contains(rank), "\(rule.id) \(op) rank \(rank)")
                    checked += 1
                }
            }
        }
        #expect(checked >= 40)
    }

    @Test("every tensor has rank 5 at most (every lowering)")
    func maxRank() throws {
        for rank in [5, 6] {
            let v = Self.view("Relu", arity: 1, type: .float, shape: Array(repeating: 1, count: rank), position: 0)
            var refused: LoweringRefusal?
            do throws(LoweringRefusal) { try CoreMLLimits.checkRanks(v) } catch { refused = error }
            #expect((refused == nil) == (rank == 5))
            if rank == 6 { #expect(refused?.rule == "coreml-max-rank") }
        }
    }

    @Test("every lowering names a rule with a source and what it says; ids are unique")
    func rulesAreCited() throws {
        let rules = LoweringRegistry.rules
        #expect(Set(rules.map(\.id)).count == rules.count)
        for rule in rules {
            #expect(!rule.says.isEmpty && !rule.source.isEmpty && !rule.milOps.isEmpty, "\(rule.id)")
            #expect(rule.id.hasPrefix("mil-") || rule.id.hasPrefix("coreml-"))
        }
    }

    @Test("docs/AUDIT.md lists every lowering rule with its ONNX ops and its definition file")
    func documented() throws {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let text = try String(contentsOf: url.appendingPathComponent("docs/AUDIT.md"), encoding: .utf8)
        let rows = text.split(separator: "\n").filter { $0.hasPrefix("| `mil-") || $0.hasPrefix("| `coreml-") }
        for rule in LoweringRegistry.rules {
            let row = try #require(rows.first { $0.hasPrefix("| `\(rule.id)` |") }, "docs/AUDIT.md has no row for \(rule.id)")
            for op in LoweringRegistry.opTypes(ofRule: rule.id) { #expect(row.contains(op), "\(rule.id): \(op)") }
            if rule.source.hasPrefix(LoweringRule.definitions) {
                #expect(row.contains(String(rule.source.dropFirst(LoweringRule.definitions.count))), "\(rule.id)")
            }
        }
    }
}

/// Per-op knowledge stays in one place: the lists these tests walk come from the registries themselves.
@Suite("registries agree")
struct RegistryAgreementTests {
    @Test("every ONNX op with a Core ML lowering has shape inference (a node is never lowered from declared types alone)")
    func everyLoweringHasInference() {
        for op in LoweringRegistry.opTypes {
            if case .unknown = OpRegistry.standard.lookup(domain: "", opType: op, opset: 21) {
                Issue.record("\(op) has a lowering but no shape inference")
            }
        }
    }

    @Test("every lowering rule is registered once and every op type has exactly one lowering")
    func uniqueLowerings() {
        var seen: [String: String] = [:]
        for lowering in LoweringRegistry.lowerings {
            for op in lowering.opTypes {
                #expect(seen[op] == nil, "\(op) is lowered by both \(seen[op] ?? "") and \(lowering.rule.id)")
                seen[op] = lowering.rule.id
            }
        }
    }
}
