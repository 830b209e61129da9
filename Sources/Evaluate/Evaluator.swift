import MIL

/// How float ops compute: fp32 keeps every value in float32; fp16 rounds each fp16-typed op output to fp16 after
/// the op, as an fp16 ML Program's values are stored between ops (the op itself computes in float32, as Core ML's
/// CPU kernels accumulate).
public enum ComputePrecision: String, Sendable, CaseIterable {
    /// As the program declares: outputs typed fp16 are rounded to fp16 after each op.
    case asDeclared = "declared"
    /// Every fp16 value computed in float32 (fp16 outputs are not rounded): the program's fp32 counterpart.
    case fp32
}

/// Runs a MIL program's ops in order on the CPU. Constants and compressed weights (`constexpr_*`) are decoded
/// once, when the evaluator is made; each `run` evaluates the rest.
public final class Evaluator: @unchecked Sendable {
    /// The program run.
    public let program: MILProgram
    /// How float values are rounded between ops.
    public let precision: ComputePrecision
    /// Values known before any input: consts, and ops whose inputs are all such values.
    private var constants: [String: EvalTensor] = [:]
    /// The ops that read inputs, in order.
    private var steps: [MILOperation] = []
    /// For each step, the variables whose last use it is (freed after it runs).
    private var lastUses: [[String]] = []
    /// The ops other than `const` evaluated when the evaluator was made (constexpr decoding, ops on constants), in
    /// order: what a substituted constant must evaluate again.
    private var foldedOps: [MILOperation] = []

    /// An evaluator of `program`; decodes its constants (throws when one cannot be decoded or an op has no kernel).
    public init(_ program: MILProgram, precision: ComputePrecision = .asDeclared) throws(EvaluationError) {
        self.program = program
        self.precision = precision
        var known = Set<String>()
        for op in program.operations {
            try Self.checkKernels(op)
            // consts, constexpr_* ops and anything computed from them alone are evaluated once, here.
            let constant = op.type == "const" || op.usedVariables.allSatisfy { known.contains($0) }
            if constant {
                let outs = try evaluate(op, env: constants)
                for (v, t) in zip(op.outputs, outs) { constants[v.name] = t; known.insert(v.name) }
                if op.type != "const" { foldedOps.append(op) }
            } else {
                steps.append(op)
            }
        }
        var last: [String: Int] = [:]
        for (i, op) in steps.enumerated() { for v in op.usedVariables { last[v] = i } }
        lastUses = Array(repeating: [], count: steps.count)
        let kept = Set(program.outputs)
        for (v, i) in last where !kept.contains(v) && constants[v] == nil { lastUses[i].append(v) }
    }

    /// Control-flow ops, run by the evaluator itself (their blocks read the environment): iOS15/control_flow.py.
    static let controlFlow: Set<String> = ["while_loop", "cond"]

    /// The most iterations a `while_loop` runs before the evaluator gives up (a condition that never turns false).
    public static let maxIterations = 1 << 24

    /// Throws when `op` or an op in its blocks has no kernel.
    static func checkKernels(_ op: MILOperation) throws(EvaluationError) {
        guard op.type == "const" || Kernels.table[op.type] != nil || controlFlow.contains(op.type) else {
            throw EvaluationError("op \(op.type) '\(op.name)': the evaluator has no kernel for \(op.type)")
        }
        for b in op.blocks { for inner in b.operations { try checkKernels(inner) } }
    }

    /// Whether a computed shape is one the declared shape allows: equal, where a dim known only at run time (a
    /// flexible input's) takes any size.
    static func fits(_ shape: [Int], _ declared: [Int]) -> Bool {
        shape.count == declared.count && zip(shape, declared).allSatisfy { $1 == MILTensorType.unknownDim || $0 == $1 }
    }

    /// Runs the program on `inputs` (by input name; each must have the declared shape; float values are rounded
    /// to fp16 for fp16 inputs); returns the block outputs by name, in the program's output order.
    /// `observe` sees every op's outputs as they are computed (for `verify --run`); returning false stops the run,
    /// which then returns the outputs computed so far.
    public func run(_ inputs: [String: EvalTensor],
                    observe: ((MILOperation, [EvalTensor]) -> Bool)? = nil) throws(EvaluationError) -> [(name: String, value: EvalTensor)] {
        try run(inputs, constants: constants, observe: observe)
    }

    /// The constants with `values` in place of the named `const` outputs (same shape and type), and every value
    /// computed from them before run time evaluated again. Calibration runs the program with one weight replaced
    /// by its quantized copy; nothing else is decoded again.
    public func constants(substituting values: [String: EvalTensor]) throws(EvaluationError) -> EvaluatorConstants {
        var table = constants
        var changed = Set<String>()
        for (name, value) in values {
            guard let old = table[name] else { throw EvaluationError("'\(name)' is not a constant of the program") }
            guard old.shape == value.shape else {
                throw EvaluationError("'\(name)' has shape \(old.shape); the substitute \(value.shape)")
            }
            table[name] = value
            changed.insert(name)
        }
        for op in foldedOps where op.usedVariables.contains(where: changed.contains) {
            let outs = try evaluate(op, env: table)
            for (v, t) in zip(op.outputs, outs) { table[v.name] = t; changed.insert(v.name) }
        }
        return EvaluatorConstants(table: table)
    }

    /// Runs the program with another set of constants (`constants(substituting:)`).
    public func run(_ inputs: [String: EvalTensor], constants: EvaluatorConstants) throws(EvaluationError) -> [(name: String, value: EvalTensor)] {
        try run(inputs, constants: constants.table, observe: nil)
    }

    /// Runs the program as if a `quantize` → `dequantize` pair (int8, zero point 0) stood in front of the given
    /// op parameters: `fakeQuantizing[op name][parameter]` is the scale. The values equal those of the program with
    /// the pairs inserted (`ActivationQuantization.insert`), without building and decoding a program per trial.
    public func run(_ inputs: [String: EvalTensor], fakeQuantizing: [String: [String: Float]]) throws(EvaluationError) -> [(name: String, value: EvalTensor)] {
        try run(inputs, constants: constants, observe: nil, fakeQuantizing: fakeQuantizing)
    }

    private func run(_ inputs: [String: EvalTensor], constants: [String: EvalTensor],
                     observe: ((MILOperation, [EvalTensor]) -> Bool)?,
                     fakeQuantizing: [String: [String: Float]] = [:]) throws(EvaluationError) -> [(name: String, value: EvalTensor)] {
        var env = constants
        for v in program.inputs {
            guard var t = inputs[v.name] else { throw EvaluationError("input '\(v.name)' is not given") }
            guard Self.fits(t.shape, v.type.shape) else {
                throw EvaluationError("input '\(v.name)' has shape \(t.shape); the model takes \(v.type.shape)")
            }
            t = try Kernels.convert(t, to: v.type.dtype)
            round(&t)
            env[v.name] = t
        }
        var stopped = false
        for (i, op) in steps.enumerated() {
            let outs = try evaluate(op, env: env, fakeQuantizing: fakeQuantizing[op.name])
            for (v, t) in zip(op.outputs, outs) { env[v.name] = t }
            if let observe, !observe(op, outs) { stopped = true; break }
            for v in lastUses[i] { env[v] = nil }
        }
        var result: [(name: String, value: EvalTensor)] = []
        for name in program.outputs {
            guard let t = env[name] else {
                if stopped { continue }  // the observer ended the run before this output
                throw EvaluationError("output '\(name)' is never computed")
            }
            result.append((name, t))
        }
        return result
    }

    private func round(_ t: inout EvalTensor) {
        guard t.dtype == .fp16, precision == .asDeclared else { return }
        if case .floats(var f) = t.storage {
            t.storage = .floats([])
            Rounding.toHalf(&f)
            t.storage = .floats(f)
        } else {
            var f = t.floats
            Rounding.toHalf(&f)
            t.storage = .floats(f)
        }
    }

    /// `t` through int8 quantization with `scale` and back (iOS17 quantize then dequantize, zero point 0).
    func fakeQuantized(_ t: EvalTensor, scale: Float) -> EvalTensor {
        var out = t.withFloats { p in
            (0..<p.count).map { i -> Float in
                let q = (p[i] / scale).rounded(.toNearestOrEven)
                return (q.isNaN ? 0 : min(max(q, -128), 127)) * scale
            }
        }
        if t.dtype == .fp16 { Rounding.toHalf(&out) }
        return EvalTensor(floats: out, shape: t.shape, dtype: t.dtype)
    }

    private func evaluate(_ op: MILOperation, env: [String: EvalTensor],
                          fakeQuantizing: [String: Float]? = nil) throws(EvaluationError) -> [EvalTensor] {
        if op.type == "const" {
            guard let c = op.value else { throw EvaluationError("op const '\(op.name)' has no value") }
            return [try EvalTensor(const: c)]
        }
        var outs: [EvalTensor]
        if Self.controlFlow.contains(op.type) {
            outs = try control(op, env: env)
        } else {
            outs = try kernel(op, env: env, fakeQuantizing: fakeQuantizing)
        }
        guard outs.count == op.outputs.count else {
            throw EvaluationError("op \(op.type) '\(op.name)': \(outs.count) results for \(op.outputs.count) declared outputs")
        }
        for i in outs.indices {
            let declared = op.outputs[i].type
            guard Self.fits(outs[i].shape, declared.shape) else {
                throw EvaluationError("op \(op.type) '\(op.name)': output '\(op.outputs[i].name)' computed as \(outs[i].shape), declared \(declared.shape)")
            }
            if outs[i].dtype != declared.dtype { outs[i] = try Kernels.convert(outs[i], to: declared.dtype) }
            round(&outs[i])
        }
        return outs
    }

    /// An op's kernel on its arguments read from `env`.
    private func kernel(_ op: MILOperation, env: [String: EvalTensor],
                        fakeQuantizing: [String: Float]?) throws(EvaluationError) -> [EvalTensor] {
        var args = OpArguments(op: op)
        for (param, arguments) in op.inputs {
            var list: [EvalTensor] = []
            for a in arguments {
                switch a {
                case .variable(let v):
                    guard let t = env[v] else { throw EvaluationError("op \(op.type) '\(op.name)': '\(v)' is not defined before it") }
                    list.append(t)
                case .value(let c): list.append(try EvalTensor(const: c))
                }
            }
            if let scale = fakeQuantizing?[param], list.count == 1, list[0].isFloat { list[0] = fakeQuantized(list[0], scale: scale) }
            args.values[param] = list
        }
        do {
            return try Kernels.table[op.type]!(args)
        } catch let error as EvaluationError {
            throw EvaluationError("op \(op.type) '\(op.name)': \(error.message)")
        } catch {
            throw EvaluationError("op \(op.type) '\(op.name)': \(error)")
        }
    }
}

extension Evaluator {
    /// Runs a block's ops in `env` extended by its inputs bound to `inputs`; returns its outputs.
    fileprivate func run(_ block: MILBlock, _ inputs: [EvalTensor], env: [String: EvalTensor], in op: MILOperation) throws(EvaluationError) -> [EvalTensor] {
        guard block.inputs.count == inputs.count else {
            throw EvaluationError("op \(op.type) '\(op.name)': a block takes \(block.inputs.count) inputs, given \(inputs.count)")
        }
        var scope = env
        for (v, t) in zip(block.inputs, inputs) {
            guard Self.fits(t.shape, v.type.shape) else {
                throw EvaluationError("op \(op.type) '\(op.name)': block input '\(v.name)' is \(v.type.shape), given \(t.shape)")
            }
            scope[v.name] = try Kernels.convert(t, to: v.type.dtype)
        }
        for inner in block.operations {
            let outs = try evaluate(inner, env: scope)
            for (v, t) in zip(inner.outputs, outs) { scope[v.name] = t }
        }
        var outputs: [EvalTensor] = []
        for name in block.outputs {
            guard let t = scope[name] else { throw EvaluationError("op \(op.type) '\(op.name)': block output '\(name)' is never computed") }
            outputs.append(t)
        }
        return outputs
    }

    /// `while_loop` and `cond` (iOS15/control_flow.py): a loop runs its condition block on the loop variables and,
    /// while it returns true, its body, whose outputs become the next loop variables; the op returns the last ones.
    /// A cond runs the branch `pred` selects.
    func control(_ op: MILOperation, env: [String: EvalTensor]) throws(EvaluationError) -> [EvalTensor] {
        guard op.blocks.count == 2 else { throw EvaluationError("op \(op.type) '\(op.name)': \(op.blocks.count) blocks, 2 expected") }
        func value(_ a: MILArgument) throws(EvaluationError) -> EvalTensor {
            switch a {
            case .variable(let v):
                guard let t = env[v] else { throw EvaluationError("op \(op.type) '\(op.name)': '\(v)' is not defined before it") }
                return t
            case .value(let c): return try EvalTensor(const: c)
            }
        }
        if op.type == "cond" {
            guard let pred = op.arguments("pred"), pred.count == 1 else { throw EvaluationError("op cond '\(op.name)': parameter 'pred' is missing") }
            let p = try value(pred[0])
            guard p.count == 1 else { throw EvaluationError("op cond '\(op.name)': pred has \(p.count) elements") }
            let taken = p.isFloat ? p.floats[0] != 0 : p.ints[0] != 0
            return try run(op.blocks[taken ? 0 : 1], [], env: env, in: op)
        }
        var vars: [EvalTensor] = []
        for a in op.arguments("loop_vars") ?? [] { vars.append(try value(a)) }
        var iterations = 0
        while true {
            let c = try run(op.blocks[0], vars, env: env, in: op)
            guard c.count == 1, c[0].count == 1 else { throw EvaluationError("op while_loop '\(op.name)': the condition block must return one bool") }
            if (c[0].isFloat ? c[0].floats[0] : Float(c[0].ints[0])) == 0 { break }
            guard iterations < Self.maxIterations else {
                throw EvaluationError("op while_loop '\(op.name)': still running after \(Self.maxIterations) iterations")
            }
            iterations += 1
            vars = try run(op.blocks[1], vars, env: env, in: op)
        }
        return vars
    }
}

/// An evaluator's constants with some replaced (`Evaluator.constants(substituting:)`).
public struct EvaluatorConstants: @unchecked Sendable {
    let table: [String: EvalTensor]
}

/// The arguments of one op, by parameter name.
struct OpArguments {
    let op: MILOperation
    var values: [String: [EvalTensor]] = [:]

    func has(_ name: String) -> Bool { values[name] != nil }

    func tensor(_ name: String) throws(EvaluationError) -> EvalTensor {
        guard let list = values[name], list.count == 1 else { throw EvaluationError("parameter '\(name)' is missing") }
        return list[0]
    }

    func optional(_ name: String) throws(EvaluationError) -> EvalTensor? { has(name) ? try tensor(name) : nil }

    func list(_ name: String) throws(EvaluationError) -> [EvalTensor] {
        guard let list = values[name] else { throw EvaluationError("parameter '\(name)' is missing") }
        return list
    }

    func ints(_ name: String, default fallback: [Int]? = nil) throws(EvaluationError) -> [Int] {
        guard has(name) else {
            if let fallback { return fallback }
            throw EvaluationError("parameter '\(name)' is missing")
        }
        return try tensor(name).intValues
    }

    func int(_ name: String, default fallback: Int? = nil) throws(EvaluationError) -> Int {
        let v = try ints(name, default: fallback.map { [$0] })
        guard v.count == 1 else { throw EvaluationError("parameter '\(name)' must be a scalar") }
        return v[0]
    }

    func float(_ name: String, default fallback: Float? = nil) throws(EvaluationError) -> Float {
        guard has(name) else {
            if let fallback { return fallback }
            throw EvaluationError("parameter '\(name)' is missing")
        }
        let v = try tensor(name).floats
        guard v.count == 1 else { throw EvaluationError("parameter '\(name)' must be a scalar") }
        return v[0]
    }

    func bool(_ name: String, default fallback: Bool) throws(EvaluationError) -> Bool {
        guard has(name) else { return fallback }
        let v = try tensor(name).ints
        guard v.count == 1 else { throw EvaluationError("parameter '\(name)' must be a scalar") }
        return v[0] != 0
    }

    func bools(_ name: String, count: Int) throws(EvaluationError) -> [Bool] {
        guard has(name) else { return Array(repeating: false, count: count) }
        return try tensor(name).ints.map { $0 != 0 }
    }

    func string(_ name: String, default fallback: String? = nil) throws(EvaluationError) -> String {
        guard has(name) else {
            if let fallback { return fallback }
            throw EvaluationError("parameter '\(name)' is missing")
        }
        guard let s = try tensor(name).string else { throw EvaluationError("parameter '\(name)' must be a string") }
        return s
    }

    func axis(_ name: String, rank: Int, default fallback: Int? = nil) throws(EvaluationError) -> Int {
        try normalizeAxis(try int(name, default: fallback), rank: rank)
    }
}

func normalizeAxis(_ a: Int, rank: Int) throws(EvaluationError) -> Int {
    let r = max(rank, 1)
    guard a >= -r, a < r else { throw EvaluationError("axis \(a) is out of range for rank \(rank)") }
    return a < 0 ? a + r : a
}

/// One op's computation: arguments in, outputs out (their element types are converted to the declared ones after).
typealias Kernel = @Sendable (OpArguments) throws -> [EvalTensor]
