import GraphIR

/// Expands calls of model-local functions in the main graph into their bodies, so each body node goes through its
/// own lowering (MIL has no functions to call). Formal inputs and outputs take the call's names; values internal to a
/// body get the call's name as a prefix; attributes a body node refers to (`referencedAttribute`) take the call's
/// value or the function's default, and are dropped when neither exists (as ONNX specifies). Nested calls expand
/// too, at most `maxDepth` levels deep and `maxNodes` nodes in all: past that the calls stay and are refused.
enum FunctionInlining {
    static let maxDepth = 8
    static let maxNodes = 1 << 16

    /// The model with calls expanded, and for each expanded body node's first output the first output of the
    /// main-graph call it came from (how outcomes are reported against the nodes a user sees).
    static func inline(_ model: Model) -> (Model, origin: [String: String]) {
        guard !model.functions.isEmpty else { return (model, [:]) }
        var model = model
        var budget = maxNodes
        var used = Set<String>()
        var origin: [String: String] = [:]
        for n in model.graph.nodes { used.formUnion(n.outputs); used.insert(n.name) }
        model.graph.nodes = expand(model.graph.nodes, functions: model.functions, depth: 0, budget: &budget, used: &used,
                                   origin: &origin, call: nil)
        return (model, origin)
    }

    private static func expand(_ nodes: [Node], functions: [Function], depth: Int, budget: inout Int,
                               used: inout Set<String>, origin: inout [String: String], call: String?) -> [Node] {
        var out: [Node] = []
        for node in nodes {
            guard depth < maxDepth,
                  let function = functions.first(where: { $0.domain == node.domain && $0.name == node.opType && $0.overload == node.overload }),
                  function.nodes.count <= budget else {
                if let call, let first = node.outputs.first { origin[first] = call }
                out.append(node)
                continue
            }
            budget -= function.nodes.count
            let prefix = (node.name.isEmpty ? node.outputs.first ?? node.opType : node.name) + "/"
            var rename: [String: String] = ["": ""]
            for (formal, actual) in zip(function.inputs, node.inputs) { rename[formal] = actual }
            for formal in function.inputs.dropFirst(node.inputs.count) { rename[formal] = "" }  // omitted optional input
            for (formal, actual) in zip(function.outputs, node.outputs) { rename[formal] = actual }
            func mapped(_ name: String) -> String {
                if let r = rename[name] { return r }
                var candidate = prefix + name
                var k = 1
                while used.contains(candidate) { candidate = "\(prefix)\(name)_\(k)"; k += 1 }
                used.insert(candidate)
                rename[name] = candidate
                return candidate
            }
            var body: [Node] = []
            for inner in function.nodes {
                var copy = inner
                copy.origin = node.origin
                copy.name = mapped(inner.name.isEmpty ? inner.opType : inner.name)
                copy.inputs = inner.inputs.map(mapped)
                copy.outputs = inner.outputs.map(mapped)
                copy.attributes = inner.attributes.compactMap { attribute in
                    guard let ref = attribute.referencedAttribute else { return attribute }
                    let value = node.attribute(ref)?.value ?? function.attributeDefaults.first { $0.name == ref }?.value
                    return value.map { Attribute(name: attribute.name, value: $0) }
                }
                body.append(copy)
            }
            out += expand(body, functions: functions, depth: depth + 1, budget: &budget, used: &used, origin: &origin,
                          call: call ?? node.outputs.first)
        }
        return out
    }
}
