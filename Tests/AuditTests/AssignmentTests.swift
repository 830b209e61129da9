import Foundation
import Testing
@testable import Audit
import GraphIR
import Profiles

/// The assignment pass: preference order, transition smoothing and its cost model, constants, subgraphs, functions.
@Suite struct AssignmentTests {
    typealias M = TestModels

    /// Profiles where op X cannot run on the Neural Engine; everything else runs everywhere. Chip "T": a fast Neural
    /// Engine, a slow GPU, 100 µs per switch.
    static func profiles(maxRunNodes: Int = 4) -> [ComputeUnit: Profile] {
        let support = [SupportEntry(id: "s", domain: nil, ops: ["Relu", "X", "MatMul", "Constant", "LSTM"], maps: "m",
                                    source: "https://example.org/s", confidence: .documented, note: nil)]
        let transfer = TransferCost(latencyMicroseconds: 100, maxRunNodes: maxRunNodes, source: "https://example.org/t",
                                    confidence: .community, note: nil)
        func chip(_ gflops: Double) -> [String: ChipCost] {
            ["T": ChipCost(gflops: gflops, bandwidthGBps: 1000, source: "https://example.org/c", confidence: .community, note: nil)]
        }
        let never = Rule(id: "no-x", kind: .never, ops: ["X", "LSTM"], reason: "X does not run here",
                         source: "https://example.org/x", confidence: .observed, profile: "ne")
        return [
            .neuralEngine: Profile(name: "ne", unit: .neuralEngine, support: support, rules: [never], transfer: transfer, chips: chip(10000)),
            .gpu: Profile(name: "gp", unit: .gpu, support: support, transfer: transfer, chips: chip(100)),
            .cpu: Profile(name: "cp", unit: .cpu, precision: Precision(compute: "float32", reason: "r", source: "s", confidence: .documented),
                          support: support, transfer: transfer, chips: chip(50)),
        ]
    }

    static func options(maxRunNodes: Int = 4, units: ComputeUnitSet = .all) -> AuditOptions {
        AuditOptions(target: .neuralEngine, computeUnits: units, profiles: profiles(maxRunNodes: maxRunNodes), chip: "T")
    }

    static func chain(_ ops: [String]) -> Model {
        var nodes: [Node] = []
        for (i, op) in ops.enumerated() {
            nodes.append(Node(name: "n\(i)", opType: op, inputs: [i == 0 ? "x" : "v\(i - 1)"], outputs: ["v\(i)"]))
        }
        return M.model(nodes, inputs: [M.tensor("x", .float, nil)], outputs: [M.tensor("v\(ops.count - 1)", .float, nil)])
    }

    @Test("each node goes to the first unit that supports it: Neural Engine, then GPU, then CPU")
    func preference() throws {
        let report = try M.audit(Self.chain(["Relu", "X"]), options: Self.options())
        #expect(report.nodes.map(\.unit) == ["neural-engine", "gpu"])
        let x = report.nodes[1]
        #expect(x.reasons.first == "neural-engine: X — X does not run here (observed: https://example.org/x)")
        #expect(x.reasons.last?.hasPrefix("runs on gpu: X converts to Core ML — m (documented: https://example.org/s)") == true)
        let cpuOnly = try M.audit(Self.chain(["Relu", "X"]),
                                  options: AuditOptions(target: .cpu, computeUnits: .cpuOnly, profiles: Self.profiles(), chip: "T"))
        #expect(cpuOnly.nodes.map(\.unit) == ["cpu", "cpu"])
        #expect(throws: AuditError.self) {
            try M.audit(Self.chain(["Relu"]), options: Self.options(units: .cpuAndGPU))
        }
    }

    @Test("a short Neural Engine run between two GPU runs moves to the GPU when costs are unknown (two switches saved)")
    func smoothingMovesShortRun() throws {
        let report = try M.audit(Self.chain(["Relu", "X", "Relu", "X"]), options: Self.options())
        #expect(report.nodes.map(\.unit) == ["neural-engine", "gpu", "gpu", "gpu"])
        #expect(report.nodes[2].preferredUnit == "neural-engine")
        #expect(report.nodes[2].reasons.contains { $0.hasPrefix("moved from neural-engine to gpu by transition smoothing") })
        #expect(report.summary.moved == 1)
        #expect(report.summary.partitions.count == 2 && report.summary.partitions.sizes == [1, 3])
        #expect(report.summary.transitions == 1)
        #expect(report.summary.coverage == 25)
    }

    @Test("a run longer than maxRunNodes stays")
    func smoothingLeavesLongRun() throws {
        let report = try M.audit(Self.chain(["X", "Relu", "Relu", "X"]), options: Self.options(maxRunNodes: 1))
        #expect(report.nodes.map(\.unit) == ["gpu", "neural-engine", "neural-engine", "gpu"])
        #expect(report.summary.transitions == 2)
    }

    @Test("a run whose work costs more on the other unit than the switches stays (cost model)")
    func smoothingKeepsExpensiveRun() throws {
        // n1: MatMul [64,1024]×[1024,4096] = 537 MFLOP: 54 µs on the Neural Engine, 5.4 ms on the GPU; switches 200 µs.
        let nodes = [
            Node(name: "n0", opType: "X", inputs: ["x"], outputs: ["a"]),
            Node(name: "n1", opType: "MatMul", inputs: ["a", "w"], outputs: ["b"]),
            Node(name: "n2", opType: "X", inputs: ["b"], outputs: ["y"]),
        ]
        let model = M.model(nodes, inputs: [M.tensor("x", .float, M.dims(64, 1024))], outputs: [M.tensor("y", .float, M.dims(64, 4096))],
                            valueInfo: [M.tensor("a", .float, M.dims(64, 1024)), M.tensor("b", .float, M.dims(64, 4096))],
                            initializers: [M.floats("w", [1024, 4096])])
        let report = try M.audit(model, options: Self.options())
        #expect(report.nodes.map(\.unit) == ["gpu", "neural-engine", "gpu"])
        #expect(report.nodes[1].flops == Double(2 * 64 * 1024 * 4096))
        #expect(report.summary.estimate.label == "estimate")
        #expect(report.summary.handOffs == 2)
        #expect(report.summary.flops.coverage != nil)
    }

    @Test("Constant nodes follow their consumer and are not counted")
    func constantsFollowConsumer() throws {
        let nodes = [
            Node(name: "c", opType: "Constant", inputs: [], outputs: ["k"],
                 attributes: [Attribute(name: "value", value: .tensor(M.floats("k", [2])))]),
            Node(name: "x", opType: "X", inputs: ["in", "k"], outputs: ["y"]),
        ]
        let report = try M.audit(M.model(nodes, inputs: [M.tensor("in", .float, nil)], outputs: [M.tensor("y", .float, nil)]),
                                 options: Self.options())
        #expect(report.nodes[0].constant && report.nodes[0].unit == "gpu")
        #expect(report.summary.nodes == 1 && report.summary.constantNodes == 1)
        #expect(report.summary.partitions.count == 1)
    }

    @Test("subgraph nodes get verdicts and their own partitions, named by graph path")
    func subgraphs() throws {
        let body = Graph(name: "then", outputs: [M.tensor("t", .float, nil)],
                         nodes: [Node(name: "inner", opType: "X", inputs: ["x"], outputs: ["t"])])
        let node = Node(name: "if", opType: "If", inputs: ["c"], outputs: ["y"],
                        attributes: [Attribute(name: "then_branch", value: .graph(body))])
        let report = try M.audit(M.model([node], inputs: [M.tensor("c", .bool, []), M.tensor("x", .float, nil)],
                                         outputs: [M.tensor("y", .float, nil)]), options: try M.builtInOptions())
        #expect(report.nodes.map(\.graph) == ["", "if/then_branch"])
        #expect(report.nodes[1].unit == "unsupported")
        #expect(report.nodes[1].reasons.contains { $0.contains("no rule for X") })
        #expect(report.partitions.map(\.graph) == ["", "if/then_branch"])
    }

    @Test("a call of a model-local function runs where its whole body can; findings name the body node")
    func functionBody() throws {
        let function = Function(name: "F", domain: "local", inputs: ["a"], outputs: ["b"],
                                nodes: [Node(name: "inner", opType: "LSTM", inputs: ["a"], outputs: ["b"])])
        let call = Node(name: "call", opType: "F", domain: "local", inputs: ["x"], outputs: ["y"])
        let model = M.model([call], inputs: [M.tensor("x", .float, nil)], outputs: [M.tensor("y", .float, nil)],
                            functions: [function])
        let report = try M.audit(model, options: Self.options())
        #expect(report.nodes[0].unit == "gpu")
        #expect(report.nodes[0].reasons.first?.contains("in function local:F, body node 'inner' (LSTM)") == true)
    }

    @Test("JSON contract: nodes[] name, opType, domain, unit, reasons; summary coverage and partitions")
    func jsonContract() throws {
        let report = try M.audit(Self.chain(["Relu", "X"]), options: Self.options())
        let data = try JSONEncoder().encode(report)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let nodes = try #require(object["nodes"] as? [[String: Any]])
        for node in nodes {
            #expect(node["name"] is String && node["opType"] is String && node["domain"] is String)
            #expect(["neural-engine", "gpu", "cpu", "unsupported"].contains(node["unit"] as? String ?? ""))
            #expect((node["reasons"] as? [String])?.isEmpty == false)
        }
        let summary = try #require(object["summary"] as? [String: Any])
        #expect(summary["coverage"] as? Double == 50)
        let partitions = try #require(summary["partitions"] as? [String: Any])
        #expect(partitions["count"] as? Int == 2)
    }
}

@Suite struct CostModelTests {
    typealias M = TestModels

    @Test("FLOPs from shapes: Conv, MatMul, Gemm, LSTM")
    func flops() throws {
        let conv = M.model([Node(opType: "Conv", inputs: ["x", "w"], outputs: ["y"])],
                           inputs: [M.tensor("x", .float, M.dims(1, 3, 8, 8))], outputs: [M.tensor("y", .float, M.dims(1, 4, 8, 8))],
                           initializers: [M.floats("w", [4, 3, 3, 3])])
        #expect(Work(try M.facts(conv)).flops == 2 * 256 * 27)
        let gemm = M.model([Node(opType: "Gemm", inputs: ["a", "b"], outputs: ["y"], attributes: [Attribute(name: "transB", value: .int(1))])],
                           inputs: [M.tensor("a", .float, [.symbol("n"), .value(32)])], outputs: [M.tensor("y", .float, M.dims(2, 10))],
                           initializers: [M.floats("b", [10, 32])])
        #expect(Work(try M.facts(gemm)).flops == 2 * 20 * 32)
        let lstm = M.model([Node(opType: "LSTM", inputs: ["x", "w", "r"], outputs: ["y"])],
                           inputs: [M.tensor("x", .float, M.dims(5, 1, 16))], outputs: [],
                           initializers: [M.floats("w", [1, 128, 16]), M.floats("r", [1, 128, 32])])
        #expect(Work(try M.facts(lstm)).flops == 2 * 5 * (2048 + 4096))
        let unknown = M.model([Node(opType: "MatMul", inputs: ["a", "b"], outputs: ["y"])],
                              inputs: [M.tensor("a", .float, nil), M.tensor("b", .float, nil)], outputs: [])
        #expect(Work(try M.facts(unknown)).flops == nil)
    }

    @Test("roofline: the larger of compute time and memory time; float16 units move half the bytes")
    func roofline() {
        let cost = CostModel(chip: "T", units: [
            .neuralEngine: .init(gflops: 1000, bandwidthGBps: 100, floatBytes: 2),
            .cpu: .init(gflops: 100, bandwidthGBps: 100, floatBytes: 4),
        ], transferLatency: 1e-4, maxRunNodes: 4)
        let size = TensorSize(.tensor(TensorType(elementType: .float, shape: [.value(1000)])))!
        let light = Work(flops: 10, tensors: [size, size])
        #expect(cost.seconds(light, on: .neuralEngine) == 4000 / 100e9)  // memory-bound: 2000 elements × 2 B
        #expect(cost.seconds(light, on: .cpu) == 8000 / 100e9)           // × 4 B on a float32 unit
        let heavy = Work(flops: 1e6, tensors: [size, size])
        #expect(cost.seconds(heavy, on: .neuralEngine) == 1e6 / 1000e9)  // compute-bound
        #expect(cost.seconds(heavy, on: .cpu) == 1e6 / 100e9)
        #expect(cost.transferSeconds(size, from: .neuralEngine, to: .cpu) == 2 * 4000 / 100e9)
        #expect(cost.seconds(Work(flops: nil, tensors: nil), on: .cpu) == nil)
    }
}

@Suite struct InputShapeTests {
    typealias M = TestModels

    @Test func parsing() {
        #expect(InputShapePin(argument: "x=1,3,224,224") == InputShapePin(name: "x", dims: [1, 3, 224, 224]))
        #expect(InputShapePin(argument: "a=b=2") == InputShapePin(name: "a=b", dims: [2]))
        #expect(InputShapePin(argument: "s=") == InputShapePin(name: "s", dims: []))
        for bad in ["x", "=1", "x=0", "x=1,,2", "x=-1", "x=a"] { #expect(InputShapePin(argument: bad) == nil, "\(bad)") }
    }

    @Test("a pin fixes the input and its symbols everywhere the model annotates them")
    func bindsSymbols() throws {
        let model = M.model([Node(opType: "Relu", inputs: ["x"], outputs: ["y"])],
                            inputs: [M.tensor("x", .float, [.symbol("batch"), .value(8)])],
                            outputs: [M.tensor("y", .float, [.symbol("batch"), .value(8)])])
        let input = try AuditInput.fromDeclaredTypes(model: model, pinning: [InputShapePin(name: "x", dims: [2, 8])])
        #expect(input.types["x"] == .tensor(TensorType(elementType: .float, shape: M.dims(2, 8))))
        #expect(input.types["y"] == .tensor(TensorType(elementType: .float, shape: M.dims(2, 8))))
        #expect(throws: PinError.self) {
            try AuditInput.fromDeclaredTypes(model: model, pinning: [InputShapePin(name: "z", dims: [1])])
        }
        #expect(throws: PinError.self) {
            try AuditInput.fromDeclaredTypes(model: model, pinning: [InputShapePin(name: "x", dims: [2])])
        }
        #expect(throws: PinError.self) {
            try AuditInput.fromDeclaredTypes(model: model, pinning: [InputShapePin(name: "x", dims: [2, 9])])
        }
    }
}

@Suite struct ReportRenderingTests {
    typealias M = TestModels

    @Test("markdown, html and text show every node and the fallbacks with their sources")
    func renderers() throws {
        let report = try M.audit(AssignmentTests.chain(["Relu", "X"]), options: AssignmentTests.options())
        let markdown = AuditMarkdown.render(report)
        #expect(markdown.contains("| `n1` | X | gpu | neural-engine: X — X does not run here (observed: https://example.org/x)"))
        #expect(markdown.contains("**neural-engine coverage 50% (1 of 2 nodes; 0 constant or folded, not counted)**"))
        // The blockers come before the node tables, in every format.
        let blockers = try #require(markdown.range(of: "### Blockers on neural-engine"))
        let fallbacks = try #require(markdown.range(of: "### Fallbacks"))
        #expect(blockers.lowerBound < fallbacks.lowerBound)
        #expect(markdown.contains("| `no-x` | 1 | 0 |"))
        let compact = AuditMarkdown.render(report, compact: true)
        #expect(!compact.contains("<details>") && compact.contains("- `no-x`, 1: `n1` (X → gpu)"))
        let html = AuditHTML.render(report)
        #expect(html.contains("<table id=\"fallbacks\">") && html.contains("data-node=\"n1\""))
        let fallbackTable = try #require(html.range(of: "<table id=\"fallbacks\">"))
        let graph = try #require(html.range(of: "<svg class=\"graph\""))
        #expect(fallbackTable.lowerBound < graph.lowerBound)
        #expect(html.contains("<a href=\"https://example.org/x\">"))
        #expect(!html.contains("<script") && !html.contains("src=\"http"))
        let text = AuditText.render(report)
        #expect(text.contains("n1") && text.contains("not on neural-engine (1)"))
        let textBlockers = try #require(text.range(of: "blockers on neural-engine"))
        let table = try #require(text.range(of: "\nnode "))
        #expect(textBlockers.lowerBound < table.lowerBound)
        #expect(!AuditText.render(report, compact: true).contains("not on neural-engine (1)"))
        #expect(!text.contains("\u{1B}["))
        #expect(AuditText.render(report, color: true).contains("\u{1B}[34mgpu"))
        #expect(AuditHTML.escape("<a href='x'>&") == "&lt;a href=&#39;x&#39;&gt;&amp;")
    }
}
