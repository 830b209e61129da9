import Testing
@testable import Audit
import GraphIR
import Profiles

/// One test per rule kind: the outcome and the concrete detail a report quotes.
@Suite struct RuleEvaluatorTests {
    typealias M = TestModels

    @Test func never() throws {
        let model = M.model([Node(name: "l", opType: "LSTM", inputs: ["x"], outputs: ["y"])],
                            inputs: [M.tensor("x", .float, M.dims(4, 1, 16))], outputs: [M.tensor("y", .float, nil)])
        #expect(RuleEvaluator.evaluate(M.rule(.never), try M.facts(model)) == .fail("LSTM"))
    }

    @Test func maxRank() throws {
        let model = M.model([Node(opType: "Relu", inputs: ["x"], outputs: ["y"])],
                            inputs: [M.tensor("x", .float, M.dims(1, 1, 1, 1, 1, 2))], outputs: [M.tensor("y", .float, M.dims(1, 1, 1, 1, 1, 2))])
        let outcome = RuleEvaluator.evaluate(M.rule(.maxRank, max: 5), try M.facts(model))
        #expect(outcome == .fail("input 0 'x' has rank 6 > 5; output 0 'y' has rank 6 > 5"))
        #expect(RuleEvaluator.evaluate(M.rule(.maxRank, max: 6), try M.facts(model)) == .pass)
    }

    @Test func maxDim() throws {
        let model = M.model([Node(opType: "Relu", inputs: ["x"], outputs: ["y"])],
                            inputs: [M.tensor("x", .float, M.dims(1, 20000))], outputs: [M.tensor("y", .float, M.dims(1, 20000))])
        guard case .fail(let detail) = RuleEvaluator.evaluate(M.rule(.maxDim, max: 16384), try M.facts(model)) else {
            Issue.record("dim 20000 passed")
            return
        }
        #expect(detail.hasPrefix("dim 20000 > 16384 (input 0 'x' [1, 20000])"))
    }

    @Test("static shapes: symbolic dims fail, unknown values are unchecked, pinned inputs pass")
    func staticShape() throws {
        let model = M.model([Node(opType: "Relu", inputs: ["x"], outputs: ["y"])],
                            inputs: [M.tensor("x", .float, [.symbol("batch"), .value(8)])], outputs: [])
        #expect(RuleEvaluator.evaluate(M.rule(.staticShape), try M.facts(model))
                == .fail("input 0 'x' has dynamic dims [batch, 8]"))
        let pinned = try AuditInput.fromDeclaredTypes(model: model, pinning: [InputShapePin(name: "x", dims: [2, 8])])
        let facts = NodeFacts(node: model.graph.nodes[0], types: pinned.types, constants: [], constantTensor: { _ in nil })
        #expect(RuleEvaluator.evaluate(M.rule(.staticShape), facts) == .unchecked("y"))
    }

    @Test func constantInputs() throws {
        let model = M.model([Node(opType: "Gemm", inputs: ["a", "b", "c"], outputs: ["y"])],
                            inputs: [M.tensor("a", .float, M.dims(1, 4)), M.tensor("b", .float, M.dims(4, 4))],
                            outputs: [], initializers: [M.floats("c", [4])])
        #expect(RuleEvaluator.evaluate(M.rule(.constantInputs, inputs: [1, 2]), try M.facts(model))
                == .fail("input 1 'b' is not constant"))
        #expect(RuleEvaluator.evaluate(M.rule(.constantInputs, inputs: [2, 5]), try M.facts(model)) == .pass)
    }

    @Test func dtypes() throws {
        let model = M.model([Node(opType: "ReduceSum", inputs: ["m", "axes"], outputs: ["y"])],
                            inputs: [M.tensor("m", .int64, M.dims(2, 3))], outputs: [], initializers: [M.int64s("axes", [1])])
        #expect(RuleEvaluator.evaluate(M.rule(.dtypes, inputs: [0], allowed: ["float", "float16"]), try M.facts(model))
                == .fail("input 0 'm' is int64"))
        #expect(RuleEvaluator.evaluate(M.rule(.dtypes, inputs: [0], allowed: ["int64"]), try M.facts(model)) == .pass)
    }

    @Test("attribute: values over the limit fail; a missing attribute takes the default")
    func attribute() throws {
        let dilated = M.model([Node(opType: "Conv", inputs: ["x", "w"], outputs: ["y"],
                                    attributes: [Attribute(name: "dilations", value: .ints([2, 2]))])],
                              inputs: [M.tensor("x", .float, M.dims(1, 3, 8, 8))], outputs: [],
                              initializers: [M.floats("w", [4, 3, 3, 3])])
        let rule = M.rule(.attribute, attribute: "dilations", defaultValue: [1], eachAtMost: 1)
        #expect(RuleEvaluator.evaluate(rule, try M.facts(dilated)) == .fail("Conv dilations [2, 2]"))
        var plain = dilated
        plain.graph.nodes[0].attributes = []
        #expect(RuleEvaluator.evaluate(rule, try M.facts(plain)) == .pass)
    }

    @Test func inputRank() throws {
        let model = M.model([Node(opType: "Conv", inputs: ["x", "w"], outputs: ["y"])],
                            inputs: [M.tensor("x", .float, nil)], outputs: [], initializers: [M.floats("w", [2, 1, 1, 1, 1])])
        #expect(RuleEvaluator.evaluate(M.rule(.inputRank, input: 1, oneOf: [3, 4]), try M.facts(model))
                == .fail("input 1 'w' has rank 5"))
        #expect(RuleEvaluator.evaluate(M.rule(.inputRank, input: 0, oneOf: [4]), try M.facts(model)) == .unchecked("x"))
    }

    @Test func spatialExtent() throws {
        let model = M.model([Node(opType: "GlobalAveragePool", inputs: ["x"], outputs: ["y"])],
                            inputs: [M.tensor("x", .float, M.dims(1, 32, 14, 14))], outputs: [])
        #expect(RuleEvaluator.evaluate(M.rule(.spatialExtent, max: 13), try M.facts(model))
                == .fail("input 0 'x' spatial dims [14, 14] > 13"))
        #expect(RuleEvaluator.evaluate(M.rule(.spatialExtent, max: 14), try M.facts(model)) == .pass)
    }

    @Test("resize scale: constant scales, or sizes over a static input shape")
    func resizeScale() throws {
        let byScales = M.model([Node(opType: "Resize", inputs: ["x", "", "scales"], outputs: ["y"])],
                               inputs: [M.tensor("x", .float, M.dims(1, 3, 8, 8))], outputs: [],
                               initializers: [M.floats("scales", [4], [1, 1, 4, 4])])
        #expect(RuleEvaluator.evaluate(M.rule(.resizeScale, max: 2), try M.facts(byScales))
                == .fail("Resize scale factors [1, 1, 4, 4] (from scales) > 2×"))
        let bySizes = M.model([Node(opType: "Resize", inputs: ["x", "", "", "sizes"], outputs: ["y"])],
                              inputs: [M.tensor("x", .float, M.dims(1, 3, 8, 8))], outputs: [],
                              initializers: [M.int64s("sizes", [1, 3, 16, 16])])
        #expect(RuleEvaluator.evaluate(M.rule(.resizeScale, max: 2), try M.facts(bySizes)) == .pass)
        let dynamic = M.model([Node(opType: "Resize", inputs: ["x", "", "s"], outputs: ["y"])],
                              inputs: [M.tensor("x", .float, M.dims(1, 3, 8, 8)), M.tensor("s", .float, M.dims(4))], outputs: [])
        #expect(RuleEvaluator.evaluate(M.rule(.resizeScale, max: 2), try M.facts(dynamic)) == .unchecked("s (scales not constant)"))
    }

    @Test("resize scale: huge, infinite and NaN factors are a verdict, not a trap (issue 16 item 4)")
    func resizeScaleHostile() throws {
        for (factors, expected) in [([1, 1, 1e30, 2] as [Float], "Resize scale factors [1, 1, \(Double(Float(1e30))), 2] (from scales) > 2×"),
                                    ([1, 1, .infinity, 2], "Resize scale factor inf (from scales) is not a finite positive number"),
                                    ([1, 1, .nan, 2], "Resize scale factor nan (from scales) is not a finite positive number")] {
            let model = M.model([Node(opType: "Resize", inputs: ["x", "", "scales"], outputs: ["y"])],
                                inputs: [M.tensor("x", .float, M.dims(1, 1, 4, 4))], outputs: [],
                                initializers: [M.floats("scales", [4], factors)])
            #expect(RuleEvaluator.evaluate(M.rule(.resizeScale, max: 2), try M.facts(model)) == .fail(expected))
        }
    }

    @Test("a `when` condition limits a rule to nodes with that attribute value")
    func whenCondition() throws {
        var rule = M.rule(.staticShape)
        rule.when = RuleCondition(attribute: "mode", equals: "CRD")
        func model(_ mode: String) -> Model {
            M.model([Node(opType: "DepthToSpace", inputs: ["x"], outputs: ["y"],
                          attributes: [Attribute(name: "mode", value: .string(Array(mode.utf8)))])],
                    inputs: [M.tensor("x", .float, [.symbol("n"), .value(4), .value(2), .value(2)])], outputs: [])
        }
        #expect(RuleEvaluator.evaluate(rule, try M.facts(model("DCR"))) == .pass)
        #expect(RuleEvaluator.evaluate(rule, try M.facts(model("CRD"))) != .pass)
    }

    @Test("findings quote the detail, the reason and the cited source")
    func findingText() {
        let finding = Finding(rule: M.rule(.never), detail: "LSTM")
        #expect(finding.text == "LSTM — test reason (documented: https://example.org/source)")
    }
}
