/// A program rewritten in one walk: the tables a fusion needs (producers, use counts, constants, types) are built
/// once and kept current as ops are replaced and removed; removals and inserted constants are applied when the walk
/// finishes, in one rebuild. A fusion pass is then linear in the program's size: it visits each op once as a pattern
/// anchor and follows use lists from there, instead of rescanning the program after every match.
final class MILRewriter {
    let program: MILProgram
    /// The block outputs (their producers must keep their names).
    let blockOutputs: Set<String>
    private var producers: [String: Int] = [:]
    /// Exact number of op inputs reading each variable.
    private var useCounts: [String: Int] = [:]
    /// The ops that read each variable, in the order they were recorded (may hold ops that no longer read it).
    private var users: [String: [Int]] = [:]
    private var constants: [String: MILConst] = [:]
    private var types: [String: MILTensorType] = [:]
    private var removed: Set<Int> = []
    private var insertions: [Int: [MILOperation]] = [:]
    private var taken: Set<String> = []

    init(_ program: MILProgram) {
        self.program = program
        blockOutputs = Set(program.outputs)
        for v in program.inputs {
            types[v.name] = v.type
            taken.insert(v.name)
        }
        for (i, op) in program.operations.enumerated() {
            taken.insert(op.name)
            for b in op.blocks { taken.formUnion(b.definedNames) }
            for o in op.outputs {
                producers[o.name] = i
                types[o.name] = o.type
                taken.insert(o.name)
            }
            if op.type == "const", let v = op.value, let out = op.outputs.first { constants[out.name] = v }
            for v in op.usedVariables {
                useCounts[v, default: 0] += 1
                users[v, default: []].append(i)
            }
        }
        program.rewriteVisits += program.operations.count
    }

    /// The number of ops when the walk started (indices stay valid until `finish`).
    var count: Int { program.operations.count }

    /// Op `i` as it is now (counted as one visit).
    func op(_ i: Int) -> MILOperation {
        program.rewriteVisits += 1
        return program.operations[i]
    }

    /// Whether op `i` has been removed.
    func isRemoved(_ i: Int) -> Bool { removed.contains(i) }

    /// The type of a variable.
    func type(_ v: String) -> MILTensorType? { types[v] }

    /// The value of a `const` op's output.
    func constant(_ v: String) -> MILConst? { constants[v] }

    /// A float constant of one element (any rank), as a Float.
    func scalar(_ v: String) -> Float? {
        guard let c = constants[v], c.type.dtype.isFloat, c.type.count == 1 else { return nil }
        return c.floatValues?.first
    }

    /// Whether `v` is a one-element float constant within `tolerance` (relative) of `value`.
    func isScalar(_ v: String, _ value: Float, tolerance: Float = 1e-3) -> Bool {
        guard let s = scalar(v) else { return false }
        return abs(s - value) <= tolerance * abs(value)
    }

    /// Readers of `v`: op inputs plus one if it is a block output.
    func useCount(_ v: String) -> Int { (useCounts[v] ?? 0) + (blockOutputs.contains(v) ? 1 : 0) }

    /// The index of the only op reading `v`, when that op is its only reader (not a block output, read once).
    func soleUser(_ v: String) -> Int? {
        guard useCount(v) == 1, let list = users[v] else { return nil }
        for i in list.reversed() where !removed.contains(i) && program.operations[i].usedVariables.contains(v) { return i }
        return nil
    }

    /// The indices of the ops reading `v` now (each once).
    func readers(_ v: String) -> [Int] {
        var seen: Set<Int> = []
        return (users[v] ?? []).filter { !removed.contains($0) && program.operations[$0].usedVariables.contains(v) && seen.insert($0).inserted }
    }

    /// The op defining `v`, when it is an op (not a function input or an inserted constant) and still present.
    func producer(_ v: String) -> (index: Int, op: MILOperation)? {
        guard let i = producers[v], !removed.contains(i) else { return nil }
        return (i, op(i))
    }

    /// The variable bound to parameter `p` of `op`.
    func arg(_ op: MILOperation, _ p: String) -> String? { op.arguments(p)?.first?.variableName }

    /// The x and y of a binary op.
    func operands(_ op: MILOperation) -> (x: String, y: String)? {
        guard let x = arg(op, "x"), let y = arg(op, "y") else { return nil }
        return (x, y)
    }

    /// The operand of a binary op other than `v` (nil when `v` is not an operand).
    func other(_ op: MILOperation, _ v: String) -> String? {
        guard let (x, y) = operands(op) else { return nil }
        return x == v ? y : (y == v ? x : nil)
    }

    /// The constant value of parameter `p` (a const op's output or a value bound in place).
    func constantArgument(_ op: MILOperation, _ p: String) -> MILConst? {
        guard let a = op.arguments(p)?.first else { return nil }
        switch a {
        case .value(let c): return c
        case .variable(let n): return constants[n]
        }
    }

    /// A bool parameter's value (`fallback` when absent or not constant).
    func flag(_ op: MILOperation, _ p: String, default fallback: Bool = false) -> Bool {
        if case .bools(let b)? = constantArgument(op, p)?.data, let first = b.first { return first }
        return fallback
    }

    /// A name no op or variable of the program uses, from `base`.
    func fresh(_ base: String) -> String {
        var candidate = base, k = 1
        while taken.contains(candidate) {
            candidate = "\(base)_\(k)"
            k += 1
        }
        taken.insert(candidate)
        return candidate
    }

    /// Schedules a `const` op holding `value` before op `index`; returns its variable.
    @discardableResult
    func insertConst(_ value: MILConst, name base: String, before index: Int, source: String?) -> String {
        let name = fresh(base)
        insertions[index, default: []].append(MILOperation(type: "const", name: name, inputs: [],
                                                           outputs: [MILVar(name: name, type: value.type)], value: value, source: source))
        constants[name] = value
        types[name] = value.type
        return name
    }

    /// Schedules `op` (which reads only variables defined before op `index`) before op `index` (`count`: at the end).
    func insert(_ op: MILOperation, before index: Int) {
        insertions[index, default: []].append(op)
        for o in op.outputs { types[o.name] = o.type }
        for v in op.usedVariables {
            useCounts[v, default: 0] += 1
        }
    }

    /// Replaces op `index` by `op` (which must define the same variables, or variables nothing else reads yet).
    func replace(_ index: Int, with op: MILOperation) {
        forget(index)
        program.operations[index] = op
        for o in op.outputs {
            producers[o.name] = index
            types[o.name] = o.type
        }
        for v in op.usedVariables {
            useCounts[v, default: 0] += 1
            users[v, default: []].append(index)
        }
    }

    /// Removes op `index` (dropped when the walk finishes).
    func remove(_ index: Int) {
        guard !removed.contains(index) else { return }
        forget(index)
        removed.insert(index)
    }

    /// Makes `reader` (an op index) read `new` wherever it read `old`.
    func redirect(_ reader: Int, from old: String, to new: String) {
        var op = program.operations[reader]
        op.replaceUses(of: old, with: new)
        replace(reader, with: op)
    }

    private func forget(_ index: Int) {
        for v in program.operations[index].usedVariables { useCounts[v, default: 0] -= 1 }
    }

    /// Applies the removals and insertions in one rebuild of the op list.
    func finish() {
        guard !removed.isEmpty || !insertions.isEmpty else { return }
        var rebuilt: [MILOperation] = []
        rebuilt.reserveCapacity(program.operations.count + insertions.count)
        for (i, op) in program.operations.enumerated() {
            if let before = insertions[i] { rebuilt += before }
            if !removed.contains(i) { rebuilt.append(op) }
        }
        rebuilt += insertions[program.operations.count] ?? []
        program.operations = rebuilt
    }
}

extension MILRewriter {
    /// The float elements of a plain `const` (fp16 or fp32), read for folding into another constant.
    func floatConstant(_ v: String) -> (MILConst, [Float])? {
        guard let c = constants[v], c.type.dtype.isFloat, let values = c.floatValues else { return nil }
        return (c, values)
    }

    /// The ops of `0.5 · x · a` after `a` (GELU's tail, as exporters write it): mul(mul(x, a), 0.5),
    /// mul(mul(a, 0.5), x) or mul(mul(x, 0.5), a), operands in either order, every intermediate read once.
    /// Returns the last op's index and the intermediate muls.
    func halfProduct(x: String, a: String) -> (last: Int, intermediates: [Int])? {
        guard let m1 = soleUser(a) else { return nil }
        let first = op(m1)
        guard first.type == "mul", let o = other(first, a) else { return nil }
        if o == x || isScalar(o, 0.5, tolerance: 1e-6) {
            // mul(mul(x, a), 0.5) or mul(mul(a, 0.5), x)
            guard let m2 = soleUser(first.outputs[0].name) else { return nil }
            let second = op(m2)
            guard second.type == "mul", let o2 = other(second, first.outputs[0].name),
                  o == x ? isScalar(o2, 0.5, tolerance: 1e-6) : o2 == x else { return nil }
            return (m2, [m1])
        }
        // mul(mul(x, 0.5), a)
        guard let (h, half) = producer(o), half.type == "mul", soleUser(o) == m1, let hv = other(half, x),
              isScalar(hv, 0.5, tolerance: 1e-6) else { return nil }
        return (m1, [h])
    }
}
