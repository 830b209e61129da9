import Testing
@testable import GraphIR

private func tensorInput(_ name: String) -> ValueInfo {
    ValueInfo(name: name, type: .tensor(TensorType(elementType: .float, shape: [.symbol("n")])))
}

private func relu(_ input: String, _ output: String, name: String = "") -> Node {
    Node(name: name, opType: "Relu", inputs: [input], outputs: [output])
}

@Suite struct GraphVerifierTests {
    @Test("a sorted graph keeps its order")
    func sortedGraphUnchanged() throws {
        let graph = Graph(name: "g", inputs: [tensorInput("x")], outputs: [tensorInput("c")],
                          nodes: [relu("x", "a", name: "n0"), relu("a", "b", name: "n1"), relu("b", "c", name: "n2")])
        let verified = try GraphVerifier.verified(graph)
        #expect(verified.nodes.map(\.name) == ["n0", "n1", "n2"])
    }

    @Test("unsorted nodes are put in topological order, keeping file order where possible")
    func unsortedGraphSorted() throws {
        let graph = Graph(name: "g", inputs: [tensorInput("x")], outputs: [tensorInput("c"), tensorInput("d")],
                          nodes: [relu("b", "c", name: "n2"), relu("x", "d", name: "free"), relu("a", "b", name: "n1"),
                                  relu("x", "a", name: "n0")])
        let verified = try GraphVerifier.verified(graph)
        #expect(verified.nodes.map(\.name) == ["n0", "n1", "n2", "free"])
    }

    @Test func cycleIsNamed() {
        let graph = Graph(name: "g", inputs: [tensorInput("x")], outputs: [tensorInput("b")],
                          nodes: [Node(name: "p", opType: "Add", inputs: ["x", "b"], outputs: ["a"]), relu("a", "b", name: "q")])
        #expect(throws: GraphError.cycle(nodes: ["'p' (Add)", "'q' (Relu)"], graph: "g")) {
            try GraphVerifier.verified(graph)
        }
    }

    @Test func selfLoopIsACycle() {
        let graph = Graph(name: "g", outputs: [tensorInput("a")], nodes: [relu("a", "a", name: "loop")])
        #expect(throws: GraphError.self) { try GraphVerifier.verified(graph) }
    }

    @Test func unproducedInputNamesNodeAndValue() {
        let graph = Graph(name: "g", inputs: [tensorInput("x")], outputs: [tensorInput("y")],
                          nodes: [Node(opType: "Add", inputs: ["x", "ghost"], outputs: ["y"])])
        #expect(throws: GraphError.unproducedInput(node: "#0 (Add)", input: "ghost", graph: "g")) {
            try GraphVerifier.verified(graph)
        }
    }

    @Test func duplicateDefinitionIsRefused() {
        let graph = Graph(name: "g", inputs: [tensorInput("x")], outputs: [tensorInput("y")],
                          nodes: [relu("x", "y"), relu("x", "y")])
        #expect(throws: GraphError.duplicateDefinition(value: "y", graph: "g")) { try GraphVerifier.verified(graph) }
    }

    @Test("optional inputs left out are empty names, not faults")
    func emptyInputsAllowed() throws {
        let graph = Graph(name: "g", inputs: [tensorInput("x")], outputs: [tensorInput("y")],
                          nodes: [Node(opType: "Clip", inputs: ["x", "", ""], outputs: ["y"])])
        _ = try GraphVerifier.verified(graph)
    }

    @Test("a subgraph may read values of the enclosing graph, and its node is ordered after their producers")
    func subgraphCapturesOuterValues() throws {
        let branch = Graph(name: "then", outputs: [tensorInput("t")], nodes: [relu("outer", "t")])
        let other = Graph(name: "else", outputs: [tensorInput("e")], nodes: [relu("x", "e")])
        let ifNode = Node(name: "if", opType: "If", inputs: ["cond"], outputs: ["y"],
                          attributes: [Attribute(name: "then_branch", value: .graph(branch)),
                                       Attribute(name: "else_branch", value: .graph(other))])
        let graph = Graph(name: "main", inputs: [tensorInput("x"), tensorInput("cond")], outputs: [tensorInput("y")],
                          nodes: [ifNode, relu("x", "outer", name: "producer")])
        let verified = try GraphVerifier.verified(graph)
        #expect(verified.nodes.map(\.name) == ["producer", "if"])
    }

    @Test func subgraphFaultsAreFound() {
        let branch = Graph(name: "body", outputs: [tensorInput("t")], nodes: [relu("nowhere", "t", name: "inner")])
        let loop = Node(name: "loop", opType: "Loop", inputs: ["x"], outputs: ["y"],
                        attributes: [Attribute(name: "body", value: .graph(branch))])
        let graph = Graph(name: "main", inputs: [tensorInput("x")], outputs: [tensorInput("y")], nodes: [loop])
        #expect(throws: GraphError.unproducedInput(node: "'inner' (Relu)", input: "nowhere", graph: "body")) {
            try GraphVerifier.verified(graph)
        }
    }

    @Test("initializers listed as inputs (IR < 4) are not duplicates")
    func initializerAlsoInput() throws {
        let w = Tensor(name: "w", dataType: .float, dims: [1], data: .bytes(LittleEndian.bytes(of: [Float(1)])))
        let graph = Graph(name: "g", inputs: [tensorInput("x"), tensorInput("w")], outputs: [tensorInput("y")],
                          initializers: [w], nodes: [Node(opType: "Add", inputs: ["x", "w"], outputs: ["y"])])
        let verified = try GraphVerifier.verified(graph)
        #expect(verified.runtimeInputs.map(\.name) == ["x"])
    }

    @Test("a long chain in reverse order sorts without deep recursion")
    func longChain() throws {
        let count = 50_000
        var nodes = (0..<count).map { relu("v\($0)", "v\($0 + 1)", name: "n\($0)") }
        nodes.reverse()
        let graph = Graph(name: "g", inputs: [tensorInput("v0")], outputs: [tensorInput("v\(count)")], nodes: nodes)
        let verified = try GraphVerifier.verified(graph)
        #expect(verified.nodes.first?.name == "n0")
        #expect(verified.nodes.last?.name == "n\(count - 1)")
    }
}

@Suite struct FunctionRecursionTests {
    private func model(_ functions: [Function]) -> Model {
        Model(irVersion: 10, opsetImports: [OpsetImport(domain: "", version: 17), OpsetImport(domain: "local", version: 1)],
              graph: Graph(name: "g"), functions: functions)
    }

    private func call(_ callee: String, domain: String = "local", overload: String = "") -> Node {
        Node(opType: callee, domain: domain, overload: overload, inputs: ["a"], outputs: ["b"])
    }

    @Test("a function calling itself is refused")
    func selfCall() {
        let f = Function(name: "f", domain: "local", inputs: ["a"], outputs: ["b"], nodes: [call("f")])
        #expect(throws: GraphError.recursiveFunction(path: ["local.f", "local.f"])) { try GraphVerifier.checkFunctionCalls(model([f])) }
    }

    @Test("a call hidden in a subgraph of another function's body closes the cycle too")
    func callThroughSubgraph() {
        let body = Graph(name: "then", outputs: [ValueInfo(name: "b", type: .unknown)], nodes: [call("f")])
        let g = Function(name: "g", domain: "local", inputs: ["a"], outputs: ["b"],
                         nodes: [Node(opType: "If", inputs: ["c"], outputs: ["b"],
                                      attributes: [Attribute(name: "then_branch", value: .graph(body))])])
        let f = Function(name: "f", domain: "local", inputs: ["a"], outputs: ["b"], nodes: [call("g")])
        #expect(throws: GraphError.recursiveFunction(path: ["local.f", "local.g", "local.f"])) {
            try GraphVerifier.checkFunctionCalls(model([f, g]))
        }
    }

    @Test("a chain and a diamond of calls are fine; overloads are distinct functions")
    func acyclicCalls() throws {
        let leaf = Function(name: "leaf", domain: "local", inputs: ["a"], outputs: ["b"], nodes: [relu("a", "b")])
        let left = Function(name: "left", domain: "local", inputs: ["a"], outputs: ["b"], nodes: [call("leaf")])
        let right = Function(name: "right", domain: "local", inputs: ["a"], outputs: ["b"], nodes: [call("leaf")])
        let top = Function(name: "top", domain: "local", inputs: ["a"], outputs: ["b"], nodes: [call("left"), call("right")])
        let v1 = Function(name: "f", domain: "local", overload: "v1", inputs: ["a"], outputs: ["b"], nodes: [call("f", overload: "v2")])
        let v2 = Function(name: "f", domain: "local", overload: "v2", inputs: ["a"], outputs: ["b"], nodes: [relu("a", "b")])
        try GraphVerifier.checkFunctionCalls(model([top, left, right, leaf, v1, v2]))
    }
}
