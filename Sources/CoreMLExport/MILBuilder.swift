import GraphIR
@_exported import MIL

/// An op parameter when emitting: a variable, a list of variables, or a constant (emitted as its own `const` op,
/// as coremltools writes them).
public enum MILArg {
    case v(MILVar)
    case list([MILVar])
    case c(MILConst)
}

/// Appends the ops of the lowerings to a `MILProgram`: unique MIL identifiers, const ops, ops with their declared
/// output types, each tagged with the ONNX node being lowered (`source`). Storage (inline or weight.bin) is decided
/// later by the serializer, so passes can still remove or share constants.
public final class MILBuilder {
    /// The deployment target the program is written for.
    public let target: DeploymentTarget
    /// The program being built.
    public let program: MILProgram
    /// The ONNX node whose lowering is emitting (set by the exporter around each node).
    var source: String?
    private var used: Set<String> = []
    /// The blocks being filled, innermost last (empty: ops go to the program's top level).
    private var open: [[MILOperation]] = []
    /// The next suffix to try per stem, so uniquing many names with one stem stays linear.
    private var nextSuffix: [String: Int] = [:]

    init(target: DeploymentTarget) {
        self.target = target
        self.program = MILProgram(target: target)
    }

    /// `base` as a MIL identifier ([A-Za-z_][A-Za-z0-9_]*): other characters become `_`, a leading digit (or an
    /// empty name) gets a `_` before it.
    public static func identifier(_ base: String) -> String {
        var scalars = base.unicodeScalars.map { s -> Character in
            (s.isASCII && (s.properties.isAlphabetic || ("0"..."9").contains(Character(s)))) || s == "_" ? Character(s) : "_"
        }
        if scalars.isEmpty || ("0"..."9").contains(scalars[0]) { scalars.insert("_", at: 0) }
        return String(scalars)
    }

    /// Whether `name` is a MIL identifier as it is (`identifier` would not change it).
    public static func isIdentifier(_ name: String) -> Bool { !name.isEmpty && identifier(name) == name }

    /// A MIL identifier from `base` ([A-Za-z_][A-Za-z0-9_]*; other characters become `_`), unique in the program.
    public func name(_ base: String) -> String {
        let stem = Self.identifier(base)
        var candidate = stem
        if used.contains(candidate) {
            var k = nextSuffix[stem] ?? 1
            repeat {
                candidate = "\(stem)_\(k)"
                k += 1
            } while used.contains(candidate)
            nextSuffix[stem] = k
        }
        used.insert(candidate)
        return candidate
    }

    /// Interface names (function inputs and outputs) reserved up front; an op output may claim one once.
    private var interface: Set<String> = []

    /// Reserves the MIL identifier of a model input or output, so no internal op takes it.
    func reserveInterface(_ base: String) -> String {
        let n = name(base)
        interface.insert(n)
        return n
    }

    /// Appends an op to the innermost open block, or to the program.
    private func append(_ op: MILOperation) {
        if open.isEmpty { program.operations.append(op) } else { open[open.count - 1].append(op) }
    }

    /// A nested block: inputs named from `inputs` (unique in the program), then whatever `body` emits (into the
    /// block, not the program), returning the values `body` returns as the block's outputs.
    public func block<E: Error>(inputs: [(name: String, type: MILTensorType)],
                                _ body: ([MILVar]) throws(E) -> [MILVar]) throws(E) -> MILBlock {
        let vars = inputs.map { MILVar(name: name($0.name), type: $0.type) }
        open.append([])
        let outputs: [MILVar]
        do {
            outputs = try body(vars)
        } catch {
            open.removeLast()
            throw error
        }
        let ops = open.removeLast()
        return MILBlock(inputs: vars, operations: ops, outputs: outputs.map(\.name))
    }

    /// Runs `emit` with its ops going to the program's top level even while a block is open: they land before the
    /// op the open blocks will belong to, so every block sees them (constants materialized on first use).
    func topLevel<T, E: Error>(_ emit: () throws(E) -> T) throws(E) -> T {
        let saved = open
        open = []
        defer { open = saved }
        return try emit()
    }

    /// Whether a block is being filled.
    var inBlock: Bool { !open.isEmpty }

    /// Whether an op of the innermost open block defines variable `name`.
    func definedInOpenBlock(_ name: String) -> Bool {
        guard let ops = open.last else { return false }
        return ops.contains { $0.outputs.contains { $0.name == name } }
    }

    /// Emits `const` and returns its variable.
    @discardableResult
    public func const(_ c: MILConst, name base: String) -> MILVar {
        let out = MILVar(name: name(base), type: c.type)
        append(MILOperation(type: "const", name: out.name, inputs: [], outputs: [out], value: c, source: source))
        return out
    }

    /// Emits an op; constant parameters become const ops named after the op and the parameter.
    public func op(_ type: String, name base: String, _ params: [(String, MILArg)], outputs: [MILTensorType],
                   outputNames: [String]? = nil, interface: Bool = false, blocks: [MILBlock] = []) -> [MILVar] {
        let opName = name(base)
        var inputs: [(name: String, arguments: [MILArgument])] = []
        for (param, arg) in params {
            switch arg {
            case .v(let v): inputs.append((param, [.variable(v.name)]))
            case .list(let vs): inputs.append((param, vs.map { .variable($0.name) }))
            case .c(let c): inputs.append((param, [.variable(const(c, name: opName + "_" + param).name)]))
            }
        }
        let outs: [MILVar] = outputs.enumerated().map { i, t in
            let n = outputNames.map { $0[i] } ?? (outputs.count == 1 ? opName : "\(opName)_\(i)")
            if interface, n != opName, self.interface.remove(n) != nil { return MILVar(name: n, type: t) }
            return MILVar(name: n == opName ? n : name(n), type: t)
        }
        append(MILOperation(type: type, name: opName, inputs: inputs, outputs: outs, blocks: blocks, source: source))
        return outs
    }

    /// An op with one output.
    public func op1(_ type: String, name: String, _ params: [(String, MILArg)], output: MILTensorType,
                    outputName: String? = nil, interface: Bool = false) -> MILVar {
        op(type, name: name, params, outputs: [output], outputNames: outputName.map { [$0] }, interface: interface)[0]
    }

    /// A `constexpr_*` op: its parameters are values bound in place (the serializer writes them as attributes
    /// before iOS18 and as inputs from iOS18 on, as Core ML's own serializer does).
    public func constexpr(_ type: String, name base: String, _ params: [(String, MILConst)],
                          output: MILTensorType) -> MILVar {
        let opName = name(base)
        let out = MILVar(name: opName, type: output)
        append(MILOperation(type: type, name: opName, inputs: params.map { ($0.0, [.value($0.1)]) },
                            outputs: [out], source: source))
        return out
    }

    /// The number of ops emitted so far.
    var count: Int { program.operations.count }
}
