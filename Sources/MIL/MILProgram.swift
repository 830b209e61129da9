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

/// A nested block of a control-flow op (MIL.proto `Block`): typed inputs (a `while_loop`'s loop variables as the
/// block names them; none for `cond`'s branches), operations in order, and its outputs by variable name. A block
/// sees the variables defined before its op in the enclosing blocks, plus its inputs; names are unique across the
/// whole program, nested blocks included (coremltools' milproto loader registers every name in one table, load.py).
public struct MILBlock: Sendable {
    /// The block's inputs (loop variables inside a `while_loop`'s blocks).
    public var inputs: [MILVar]
    /// The operations, in order.
    public var operations: [MILOperation]
    /// The values the block returns, by variable name.
    public var outputs: [String]

    /// A block with `inputs`, `operations` and `outputs`.
    public init(inputs: [MILVar] = [], operations: [MILOperation] = [], outputs: [String] = []) {
        self.inputs = inputs
        self.operations = operations
        self.outputs = outputs
    }

    /// The variables the block reads from enclosing scopes (each once, in order of first use): what its ops and
    /// outputs read that neither its inputs nor its ops define.
    public var freeVariables: [String] {
        var defined = Set(inputs.map(\.name))
        var seen: Set<String> = []
        var free: [String] = []
        for op in operations {
            for v in op.usedVariables where !defined.contains(v) && seen.insert(v).inserted { free.append(v) }
            for o in op.outputs { defined.insert(o.name) }
        }
        for v in outputs where !defined.contains(v) && seen.insert(v).inserted { free.append(v) }
        return free
    }

    /// Every name the block defines: its inputs, its ops' names and outputs, and those of blocks nested in them.
    public var definedNames: [String] {
        inputs.map(\.name) + operations.flatMap(\.definedNames)
    }

    /// Number of ops in the block, nested ones included.
    public var operationCount: Int { operations.reduce(0) { $0 + 1 + $1.blocks.reduce(0) { $0 + $1.operationCount } } }

    /// Replaces every use of a variable by `rename(name)` (op inputs and outputs, nested blocks included).
    public mutating func renameUses(_ rename: (String) -> String?) {
        for i in operations.indices { operations[i].renameUses(rename) }
        for i in outputs.indices { if let n = rename(outputs[i]) { outputs[i] = n } }
    }
}

/// One operation of a MIL program: its type (a MIL op name), a unique name, named inputs, typed outputs, the
/// constant value of a `const` op, nested blocks (`while_loop`, `cond`), and the ONNX node it came from (coremltools
/// calls this the op's scope).
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
    /// Nested blocks: a `while_loop`'s condition and body, a `cond`'s true and false branches (MIL.proto
    /// `Operation.blocks`); empty for other ops.
    public var blocks: [MILBlock]
    /// The ONNX node (its name, or first output when unnamed) whose lowering emitted the op; nil for interface ops.
    public var source: String?

    /// An op of `type` named `name`.
    public init(type: String, name: String, inputs: [(name: String, arguments: [MILArgument])], outputs: [MILVar],
                value: MILConst? = nil, blocks: [MILBlock] = [], source: String? = nil) {
        self.type = type
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.value = value
        self.blocks = blocks
        self.source = source
    }

    /// The arguments bound to parameter `name`, nil when the parameter is not given.
    public func arguments(_ name: String) -> [MILArgument]? { inputs.first { $0.name == name }?.arguments }

    /// Every variable the op reads, in parameter order, then the outer variables its blocks read (a loop body
    /// reading a weight defined before the loop uses it as much as a parameter does: dead-code elimination,
    /// use counts and renames must all see it).
    public var usedVariables: [String] {
        let direct = inputs.flatMap { $0.arguments.compactMap(\.variableName) }
        guard !blocks.isEmpty else { return direct }
        return direct + blocks.flatMap(\.freeVariables)
    }

    /// The op's name, its outputs' names, and every name defined in its blocks.
    public var definedNames: [String] {
        [name] + outputs.map(\.name) + blocks.flatMap(\.definedNames)
    }

    /// Replaces every use of variable `old` by `new` (in nested blocks too).
    public mutating func replaceUses(of old: String, with new: String) {
        renameUses { $0 == old ? new : nil }
    }

    /// Replaces every use of a variable by `rename(name)` where that is not nil (parameters, and in nested blocks
    /// their ops' parameters and the block outputs).
    public mutating func renameUses(_ rename: (String) -> String?) {
        for i in inputs.indices {
            for j in inputs[i].arguments.indices {
                if let n = inputs[i].arguments[j].variableName, let r = rename(n) { inputs[i].arguments[j] = .variable(r) }
            }
        }
        for b in blocks.indices { blocks[b].renameUses(rename) }
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

    /// The top-level ops other than `const` (what comparisons with other converters count: a `while_loop` is one
    /// op, whatever its body holds).
    public var computeOperationCount: Int { operations.lazy.filter { $0.type != "const" }.count }

    /// Number of ops, nested ones included.
    public var operationCount: Int { MILBlock(operations: operations).operationCount }

    /// Number of ops by type, nested ones included.
    public var histogram: [String: Int] {
        var counts: [String: Int] = [:]
        func visit(_ ops: [MILOperation]) {
            for op in ops {
                counts[op.type, default: 0] += 1
                for b in op.blocks { visit(b.operations) }
            }
        }
        visit(operations)
        return counts
    }

    /// Every name defined in the program: inputs, ops and their outputs, and everything in nested blocks.
    public func definedNames() -> Set<String> {
        rewriteVisits += operations.count
        var names = Set(inputs.map(\.name))
        for op in operations {
            names.insert(op.name)
            for o in op.outputs { names.insert(o.name) }
            for b in op.blocks { names.formUnion(b.definedNames) }
        }
        return names
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

    /// Replaces every use of a variable by `rename(name)` where that is not nil, in every op (nested blocks too)
    /// and the block outputs.
    public func renameUses(_ rename: (String) -> String?) {
        for i in operations.indices { operations[i].renameUses(rename) }
        for i in outputs.indices { if let n = rename(outputs[i]) { outputs[i] = n } }
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
        let taken = definedNames()
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
