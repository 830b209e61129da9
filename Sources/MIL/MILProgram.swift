/// One argument of an op input: a named variable of the program, or a value written in place (the parameters of a
/// `constexpr_*` op; the serializer decides whether they become inputs or attributes for the target).
public enum MILArgument: Sendable {
    case variable(String)
    case value(MILConst)

    /// The variable's name, nil for a value written in place.
    public var variableName: String? {
        if case .variable(let n) = self { return n }
        return nil
    }
}

/// One operation of a MIL program: its type (a MIL op name), a unique name, named inputs, typed outputs, the
/// constant value of a `const` op, and the ONNX node it came from (coremltools calls this the op's scope).
public struct MILOperation: Sendable {
    /// The MIL op type (`conv`, `const`, `constexpr_lut_to_dense`…).
    public var type: String
    /// The op's name, written as its `name` attribute.
    public var name: String
    /// Parameters in order, each bound to one argument (or several for a tuple input such as concat's `values`).
    public var inputs: [(name: String, arguments: [MILArgument])]
    /// The variables the op defines, with their declared types.
    public var outputs: [MILVar]
    /// A `const` op's value.
    public var value: MILConst?
    /// The ONNX node (its name, or first output when unnamed) whose lowering emitted the op; nil for interface ops.
    public var source: String?

    /// An op of `type` named `name`.
    public init(type: String, name: String, inputs: [(name: String, arguments: [MILArgument])], outputs: [MILVar],
                value: MILConst? = nil, source: String? = nil) {
        self.type = type
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.value = value
        self.source = source
    }

    /// The arguments bound to parameter `name`, nil when the parameter is not given.
    public func arguments(_ name: String) -> [MILArgument]? { inputs.first { $0.name == name }?.arguments }

    /// Every variable the op reads, in parameter order.
    public var usedVariables: [String] { inputs.flatMap { $0.arguments.compactMap(\.variableName) } }

    /// Replaces every use of variable `old` by `new`.
    public mutating func replaceUses(of old: String, with new: String) {
        for i in inputs.indices {
            for j in inputs[i].arguments.indices where inputs[i].arguments[j].variableName == old {
                inputs[i].arguments[j] = .variable(new)
            }
        }
    }
}

/// An ML Program's main function as data: typed inputs, operations in order (SSA: every variable defined once,
/// before its uses), and the block outputs (the model's outputs, by variable name). Lowerings append to it, passes
/// rewrite it, the verifier checks it, and the serializer writes it (blobs placed last).
public final class MILProgram: @unchecked Sendable {
    /// The deployment target: decides the opset and which op versions and blob types are legal.
    public let target: DeploymentTarget
    /// The function inputs (the model's inputs).
    public var inputs: [MILVar]
    /// The operations, in order.
    public var operations: [MILOperation]
    /// The block outputs, by variable name (the model's outputs, in order).
    public var outputs: [String]
    /// Ops visited so far by passes: every op each time a whole-program table is built (`uses`, `producers`,
    /// `types`, `constants`, `unusedName`, a rewriter's tables) plus each op a rewriter reads. A work count the tests
    /// compare between program sizes (a pass that rescans the program per match grows quadratically).
    public internal(set) var rewriteVisits = 0

    /// An empty program for `target`.
    public init(target: DeploymentTarget, inputs: [MILVar] = [], operations: [MILOperation] = [], outputs: [String] = []) {
        self.target = target
        self.inputs = inputs
        self.operations = operations
        self.outputs = outputs
    }

    /// The ops other than `const` (what comparisons with other converters count).
    public var computeOperationCount: Int { operations.lazy.filter { $0.type != "const" }.count }

    /// Number of ops by type.
    public var histogram: [String: Int] {
        var counts: [String: Int] = [:]
        for op in operations { counts[op.type, default: 0] += 1 }
        return counts
    }

    /// For each variable, the indices of the ops that read it (an op reading a variable twice is listed twice).
    public func uses() -> [String: [Int]] {
        rewriteVisits += operations.count
        var table: [String: [Int]] = [:]
        for (i, op) in operations.enumerated() {
            for v in op.usedVariables { table[v, default: []].append(i) }
        }
        return table
    }

    /// For each variable an op defines, the index of that op.
    public func producers() -> [String: Int] {
        rewriteVisits += operations.count
        var table: [String: Int] = [:]
        for (i, op) in operations.enumerated() {
            for o in op.outputs { table[o.name] = i }
        }
        return table
    }

    /// The type of every variable: inputs and op outputs.
    public func types() -> [String: MILTensorType] {
        rewriteVisits += operations.count
        var table: [String: MILTensorType] = [:]
        for v in inputs { table[v.name] = v.type }
        for op in operations { for o in op.outputs { table[o.name] = o.type } }
        return table
    }

    /// The value of every `const` op's output, by variable name.
    public func constants() -> [String: MILConst] {
        rewriteVisits += operations.count
        var table: [String: MILConst] = [:]
        for op in operations where op.type == "const" {
            if let v = op.value, let out = op.outputs.first { table[out.name] = v }
        }
        return table
    }

    /// Replaces every use of variable `old` (op inputs and block outputs) by `new`.
    public func replaceUses(of old: String, with new: String) {
        for i in operations.indices where operations[i].usedVariables.contains(old) {
            operations[i].replaceUses(of: old, with: new)
        }
        for i in outputs.indices where outputs[i] == old { outputs[i] = new }
    }

    /// Removes the ops at `indices`.
    public func remove(_ indices: Set<Int>) {
        guard !indices.isEmpty else { return }
        operations = operations.enumerated().filter { !indices.contains($0.offset) }.map(\.element)
    }
}

extension MILProgram {
    /// A name no op or input of the program uses yet, from `base` (`base`, `base_1`, …).
    public func unusedName(_ base: String) -> String {
        rewriteVisits += operations.count
        var taken = Set(inputs.map(\.name))
        for op in operations {
            taken.insert(op.name)
            for o in op.outputs { taken.insert(o.name) }
        }
        var candidate = base
        var k = 1
        while taken.contains(candidate) {
            candidate = "\(base)_\(k)"
            k += 1
        }
        return candidate
    }

    /// Inserts a `const` op holding `value` before op `index`; returns its variable's name.
    @discardableResult
    public func insertConst(_ value: MILConst, name base: String, before index: Int, source: String?) -> String {
        let name = unusedName(base)
        operations.insert(MILOperation(type: "const", name: name, inputs: [], outputs: [MILVar(name: name, type: value.type)],
                                       value: value, source: source), at: index)
        return name
    }
}
