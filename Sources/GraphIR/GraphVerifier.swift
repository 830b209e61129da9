/// A structural fault in a graph. Messages name the node and the value at fault.
public enum GraphError: Error, Equatable, CustomStringConvertible {
    /// A node reads a value that nothing in the graph or an enclosing graph defines.
    case unproducedInput(node: String, input: String, graph: String)
    /// A graph output that no node, initializer or input defines.
    case unproducedOutput(output: String, graph: String)
    /// A value defined more than once in one graph (by nodes, initializers or inputs).
    case duplicateDefinition(value: String, graph: String)
    /// Nodes that depend on one another in a loop, listed around the cycle.
    case cycle(nodes: [String], graph: String)
    /// A node output with an empty name.
    case emptyOutputName(node: String, graph: String)
    /// A model-local function that calls itself; `path` is the chain of calls back to it.
    case recursiveFunction(path: [String])
    /// A value declared (graph input, output or value_info) with a shape of more elements than fit in 64 bits.
    case oversizedValue(value: String, shape: String, graph: String)
    /// Subgraphs nested deeper than `Graph.maxNesting`; `node` holds the subgraph one level too deep.
    case nestedTooDeep(node: String, attribute: String, graph: String)

    /// A one-line message naming the graph, node and value at fault.
    public var description: String {
        switch self {
        case .recursiveFunction(let path):
            return "model-local function '\(path[0])' calls itself (\(path.joined(separator: " → "))); ONNX functions cannot recurse"
        case .unproducedInput(let node, let input, let graph):
            return "node \(node) reads '\(input)', which no node, initializer or input of graph '\(graph)' produces"
        case .unproducedOutput(let output, let graph):
            return "graph '\(graph)' output '\(output)' is not produced by any node, initializer or input"
        case .duplicateDefinition(let value, let graph):
            return "value '\(value)' is defined more than once in graph '\(graph)'"
        case .cycle(let nodes, let graph):
            let shown = nodes.prefix(5).joined(separator: ", ") + (nodes.count > 5 ? ", …" : "")
            return "graph '\(graph)' has a cycle through \(nodes.count) node(s): \(shown)"
        case .emptyOutputName(let node, let graph):
            return "node \(node) in graph '\(graph)' has an output with an empty name"
        case .oversizedValue(let value, let shape, let graph):
            return "value '\(value)' of graph '\(graph)' is declared with shape \(shape): more elements than fit in 64 bits"
        case .nestedTooDeep(let node, let attribute, let graph):
            return "node \(node) attribute '\(attribute)' in graph '\(graph)' nests subgraphs more than \(Graph.maxNesting) levels deep; "
                + "ONNX readers stop at 100 nested protobuf messages (\(Graph.maxNesting) levels), so mlpkg refuses it"
        }
    }
}

/// Checks that a graph is well formed — every value defined once, every input produced (here or in an enclosing
/// graph), no cycle — and puts its nodes in topological order, keeping the file's order wherever it is already valid.
public enum GraphVerifier {
    /// Returns `graph` with the nodes of it and of every subgraph topologically ordered, or throws the first fault.
    public static func verified(_ graph: Graph, outerScope: Set<String> = []) throws -> Graph {
        try verified(graph, outerScope: outerScope, depth: 0)
    }

    private static func verified(_ graph: Graph, outerScope: Set<String>, depth: Int) throws -> Graph {
        var graph = graph
        for value in graph.inputs + graph.outputs + graph.valueInfo {
            if case .tensor(let t) = value.type, t.holdsTooManyElements {
                throw GraphError.oversizedValue(value: value.name, shape: t.shapeDescription, graph: graph.name)
            }
        }
        var defined = Set<String>()
        func define(_ name: String) throws {
            guard defined.insert(name).inserted else {
                throw GraphError.duplicateDefinition(value: name, graph: graph.name)
            }
        }
        // Before IR 4, initializers were listed as inputs too: a name may be both.
        let initializerNames = Set(graph.initializers.map(\.name)).union(graph.sparseInitializers.map(\.name))
        for input in graph.inputs where !initializerNames.contains(input.name) { try define(input.name) }
        for tensor in graph.initializers { try define(tensor.name) }
        for tensor in graph.sparseInitializers { try define(tensor.name) }
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { try define(output) }
            if node.outputs.isEmpty == false, node.outputs.allSatisfy(\.isEmpty) {
                throw GraphError.emptyOutputName(node: node.label(index: index), graph: graph.name)
            }
        }
        let visible = defined.union(outerScope)

        // Subgraphs see every name of this graph and of the enclosing ones.
        for n in graph.nodes.indices {
            for a in graph.nodes[n].attributes.indices {
                let attribute = graph.nodes[n].attributes[a]
                if !attribute.value.subgraphs.isEmpty, depth >= Graph.maxNesting {
                    throw GraphError.nestedTooDeep(node: graph.nodes[n].label(index: n), attribute: attribute.name, graph: graph.name)
                }
                switch attribute.value {
                case .graph(let sub):
                    graph.nodes[n].attributes[a].value = .graph(try verified(sub, outerScope: visible, depth: depth + 1))
                case .graphs(let subs):
                    graph.nodes[n].attributes[a].value = .graphs(try subs.map { try verified($0, outerScope: visible, depth: depth + 1) })
                default:
                    break
                }
            }
        }

        for (index, node) in graph.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty && !visible.contains(input) {
                throw GraphError.unproducedInput(node: node.label(index: index), input: input, graph: graph.name)
            }
        }
        for output in graph.outputs where !visible.contains(output.name) {
            throw GraphError.unproducedOutput(output: output.name, graph: graph.name)
        }
        graph.nodes = try topologicalOrder(graph)
        return graph
    }

    /// The nodes in an order where each comes after the producers of everything it reads (including values its
    /// subgraphs capture), as close to the original order as possible.
    static func topologicalOrder(_ graph: Graph) throws -> [Node] {
        let nodes = graph.nodes
        var producer = [String: Int]()
        for (i, node) in nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producer[output] = i }
        }
        let dependencies: [[Int]] = nodes.map { node in
            var names = Set(node.inputs.filter { !$0.isEmpty })
            for attribute in node.attributes {
                for sub in attribute.value.subgraphs { names.formUnion(sub.outerScopeReferences) }
            }
            return names.compactMap { producer[$0] }.sorted()
        }
        if dependencies.enumerated().allSatisfy({ i, deps in deps.allSatisfy { $0 < i } }) { return nodes }

        // Iterative depth-first post-order from each node in file order; a node met while on the stack is a cycle.
        enum Mark { case unvisited, onStack, done }
        var marks = [Mark](repeating: .unvisited, count: nodes.count)
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        for root in nodes.indices where marks[root] == .unvisited {
            var stack: [(node: Int, next: Int)] = [(root, 0)]
            marks[root] = .onStack
            while let top = stack.last {
                let deps = dependencies[top.node]
                if top.next < deps.count {
                    stack[stack.count - 1].next += 1
                    let dep = deps[top.next]
                    switch marks[dep] {
                    case .unvisited:
                        marks[dep] = .onStack
                        stack.append((dep, 0))
                    case .onStack:
                        let cycleStart = stack.firstIndex { $0.node == dep } ?? 0
                        let members = stack[cycleStart...].map { nodes[$0.node].label(index: $0.node) }
                        throw GraphError.cycle(nodes: members, graph: graph.name)
                    case .done:
                        break
                    }
                } else {
                    marks[top.node] = .done
                    order.append(top.node)
                    stack.removeLast()
                }
            }
        }
        return order.map { nodes[$0] }
    }
}

extension GraphVerifier {
    /// Refuses model-local functions that call themselves, directly or through others (including calls made from
    /// subgraphs inside a body): expanding such a model would never end. Functions are keyed by domain, name and
    /// overload, as ONNX resolves them.
    public static func checkFunctionCalls(_ model: Model) throws {
        struct Key: Hashable { var domain: String; var name: String; var overload: String }
        func key(_ domain: String, _ name: String, _ overload: String) -> Key {
            Key(domain: domain == "ai.onnx" ? "" : domain, name: name, overload: overload)
        }
        var bodies: [Key: [Node]] = [:]
        for f in model.functions { bodies[key(f.domain, f.name, f.overload)] = f.nodes }
        guard !bodies.isEmpty else { return }

        /// Functions called anywhere in `nodes`, subgraphs included, in first-call order.
        func callees(_ nodes: [Node]) -> [Key] {
            var found: [Key] = []
            var stack = [nodes]
            while let list = stack.popLast() {
                for node in list {
                    let k = key(node.domain, node.opType, node.overload)
                    if bodies[k] != nil, !found.contains(k) { found.append(k) }
                    for attribute in node.attributes {
                        switch attribute.value {
                        case .graph(let g): stack.append(g.nodes)
                        case .graphs(let gs): stack.append(contentsOf: gs.map(\.nodes))
                        default: break
                        }
                    }
                }
            }
            return found
        }
        let edges = bodies.mapValues(callees)
        func label(_ k: Key) -> String { (k.domain.isEmpty ? "" : k.domain + ".") + k.name + (k.overload.isEmpty ? "" : ":" + k.overload) }

        // Iterative depth-first search with colours; a grey node reached again closes a cycle.
        enum Colour { case grey, black }
        var colour: [Key: Colour] = [:]
        let roots = model.functions.map { key($0.domain, $0.name, $0.overload) }
        for root in roots where colour[root] == nil {
            var path: [(key: Key, next: Int)] = [(root, 0)]
            colour[root] = .grey
            while let top = path.last {
                let successors = edges[top.key] ?? []
                if top.next == successors.count {
                    colour[top.key] = .black
                    path.removeLast()
                    continue
                }
                path[path.count - 1].next += 1
                let child = successors[top.next]
                switch colour[child] {
                case .grey:
                    let start = path.firstIndex { $0.key == child }!
                    throw GraphError.recursiveFunction(path: (path[start...].map(\.key) + [child]).map(label))
                case .black:
                    continue
                case nil:
                    colour[child] = .grey
                    path.append((child, 0))
                }
            }
        }
    }
}
