/// Why an op's output types cannot be inferred: the definition's condition that failed.
public struct MILTypeError: Error, Sendable, CustomStringConvertible {
    /// The condition that failed, in the definition's terms.
    public var message: String
    /// The op uses what mlpkg's definition does not describe (a type or parameter a later opset added, a form
    /// mlpkg never writes): not known to be wrong. mlpkg's own programs must not do it; a package another tool
    /// wrote reports the op as not checked.
    public var beyondDefinition = false
    /// An error with `message`.
    public init(_ message: String) { self.message = message }
    /// An op that goes beyond what the definition describes (see `beyondDefinition`).
    public static func beyond(_ message: String) -> MILTypeError {
        var e = MILTypeError(message)
        e.beyondDefinition = true
        return e
    }
    /// The message.
    public var description: String { message }
}

/// What an op definition sees while inferring types: the op, the types of the variables it reads, and the values of
/// its constant parameters (a `const` op's output or a value written in place).
public struct MILOpContext {
    /// The op being inferred.
    public let op: MILOperation
    /// The program's deployment target.
    public let target: DeploymentTarget
    let types: [String: MILTensorType]
    let constants: [String: MILConst]
    /// The types of the op's nested blocks (inputs and returned values), as the verifier found them.
    public var blocks: [MILBlockTypes] = []

    /// Whether parameter `name` is given.
    public func has(_ name: String) -> Bool { op.arguments(name) != nil }

    /// The types bound to a tuple parameter (concat's `values`).
    public func types(_ name: String) throws(MILTypeError) -> [MILTensorType] {
        guard let args = op.arguments(name) else { throw MILTypeError("parameter '\(name)' is missing") }
        var out: [MILTensorType] = []
        for a in args {
            switch a {
            case .variable(let v):
                guard let t = types[v] else { throw MILTypeError("parameter '\(name)' reads '\(v)', which is not defined") }
                out.append(t)
            case .value(let c): out.append(c.type)
            }
        }
        return out
    }

    /// The type of a single-argument parameter.
    public func type(_ name: String) throws(MILTypeError) -> MILTensorType {
        let all = try types(name)
        guard all.count == 1 else { throw MILTypeError("parameter '\(name)' takes one argument, got \(all.count)") }
        return all[0]
    }

    /// The type of an optional parameter, nil when absent.
    public func optionalType(_ name: String) throws(MILTypeError) -> MILTensorType? { has(name) ? try type(name) : nil }

    /// The constant value of a parameter, nil when it is absent or not known before run time.
    public func constant(_ name: String) -> MILConst? {
        guard let args = op.arguments(name), args.count == 1 else { return nil }
        switch args[0] {
        case .variable(let v): return constants[v]
        case .value(let c): return c
        }
    }

    /// A parameter that must be constant.
    public func required(_ name: String) throws(MILTypeError) -> MILConst {
        guard has(name) else { throw MILTypeError("parameter '\(name)' is missing") }
        guard let c = constant(name) else { throw MILTypeError("parameter '\(name)' must be constant") }
        return c
    }

    /// The integers of a constant int32 parameter; `fallback` when absent.
    public func ints(_ name: String, default fallback: [Int]? = nil) throws(MILTypeError) -> [Int] {
        guard has(name) else {
            if let fallback { return fallback }
            throw MILTypeError("parameter '\(name)' is missing")
        }
        let c = try required(name)
        guard c.type.dtype == .int32, let values = c.intValues else { throw MILTypeError("parameter '\(name)' must be int32, got \(c.type)") }
        return values
    }

    /// A constant int32 scalar parameter; `fallback` when absent.
    public func int(_ name: String, default fallback: Int? = nil) throws(MILTypeError) -> Int {
        let values = try ints(name, default: fallback.map { [$0] })
        guard values.count == 1 else { throw MILTypeError("parameter '\(name)' must be a scalar") }
        return values[0]
    }

    /// A constant bool scalar parameter; `fallback` when absent.
    public func bool(_ name: String, default fallback: Bool) throws(MILTypeError) -> Bool {
        guard has(name) else { return fallback }
        let c = try required(name)
        guard c.type.dtype == .bool, case .bools(let b) = c.data, b.count == 1 else { throw MILTypeError("parameter '\(name)' must be a bool scalar") }
        return b[0]
    }

    /// The bools of a constant bool tensor parameter; `fallback` when absent.
    public func bools(_ name: String, default fallback: [Bool]) throws(MILTypeError) -> [Bool] {
        guard has(name) else { return fallback }
        let c = try required(name)
        guard c.type.dtype == .bool, case .bools(let b) = c.data else { throw MILTypeError("parameter '\(name)' must be bool") }
        return b
    }

    /// A constant string parameter; `fallback` when absent.
    public func string(_ name: String, default fallback: String? = nil) throws(MILTypeError) -> String {
        guard has(name) else {
            if let fallback { return fallback }
            throw MILTypeError("parameter '\(name)' is missing")
        }
        let c = try required(name)
        guard case .strings(let s) = c.data, s.count == 1 else { throw MILTypeError("parameter '\(name)' must be a string") }
        return s[0]
    }

    /// A constant float scalar parameter (its type must be a float type).
    public func requireFloatScalar(_ name: String) throws(MILTypeError) {
        let t = try type(name)
        guard t.dtype.isFloat, t.rank == 0 else { throw MILTypeError("parameter '\(name)' must be a float scalar, got \(t)") }
    }
}

/// One MIL op as coremltools defines it (converters/mil/mil/ops/defs/iOS15…iOS18): the first target that has it,
/// the element types each tensor parameter takes, and its output type inference. The facts are coremltools'; the
/// code is mlpkg's. mlpkg declares every output type while lowering; the verifier compares the declaration with
/// this inference, so a package Core ML would read differently is never written.
public struct MILOpDefinition: Sendable {
    /// The MIL op type.
    public let type: String
    /// The lowest target with this op.
    public let since: DeploymentTarget
    /// Where coremltools defines it (relative to converters/mil/mil/ops/defs/).
    public let file: String
    /// Allowed element types per tensor parameter (checked for every parameter listed).
    public let domains: [String: [MILDataType]]
    /// Element types a parameter also takes from iOS17 (coremltools' iOS17 versions add int8, uint8, int16, uint16).
    public let widened: [String: [MILDataType]]
    /// Output types from the inputs.
    public let infer: @Sendable (MILOpContext) throws(MILTypeError) -> [MILTensorType]

    /// A definition; `domains` (and from iOS17 `widened`) are checked before `infer` runs.
    public init(_ type: String, since: DeploymentTarget = .iOS15, file: String, domains: [String: [MILDataType]] = [:],
                widened: [String: [MILDataType]] = [:],
                infer: @escaping @Sendable (MILOpContext) throws(MILTypeError) -> [MILTensorType]) {
        self.type = type
        self.since = since
        self.file = file
        self.domains = domains
        self.widened = widened
        self.infer = infer
    }

    /// The domain checks, then the inference.
    public func outputTypes(_ context: MILOpContext) throws(MILTypeError) -> [MILTensorType] {
        guard context.target >= since else {
            throw MILTypeError("\(type) needs \(DeploymentTarget.iOS(since.specificationVersion)) (the program targets \(context.target))")
        }
        for (param, base) in domains.sorted(by: { $0.key < $1.key }) where context.has(param) {
            let allowed = base + (context.target >= .iOS17 ? widened[param] ?? [] : [])
            for t in try context.types(param) where !allowed.contains(t.dtype) {
                let message = "parameter '\(param)' is \(t.dtype); \(type) takes \(allowed.map(\.description).joined(separator: ", "))"
                // iOS17 widened many ops to the small integer types; where mlpkg's definition does not say, it cannot tell.
                if context.target >= .iOS17, Shapes.smallIntegers.contains(t.dtype) {
                    throw .beyond(message + " in mlpkg's definition (iOS17 versions of some ops take \(t.dtype))")
                }
                throw MILTypeError(message)
            }
        }
        return try infer(context)
    }
}

/// Every MIL op definition mlpkg emits, by op type (Definitions/*.swift).
public enum MILOpRegistry {
    /// The definitions, by MIL op type; a duplicate type is a programming error caught by the registry's test.
    public static let definitions: [String: MILOpDefinition] = {
        var table: [String: MILOpDefinition] = [:]
        for d in MILElementwiseDefinitions.all + MILTensorDefinitions.all + MILNeuralDefinitions.all + MILConstexprDefinitions.all
            + MILRecurrentDefinitions.all + MILQuantizationDefinitions.all + MILControlFlowDefinitions.all {
            table[d.type] = d
        }
        return table
    }()

    /// Number of definitions before duplicates were merged (the registry's test checks it equals `definitions.count`).
    public static var declaredCount: Int {
        MILElementwiseDefinitions.all.count + MILTensorDefinitions.all.count + MILNeuralDefinitions.all.count
            + MILConstexprDefinitions.all.count + MILRecurrentDefinitions.all.count + MILQuantizationDefinitions.all.count
            + MILControlFlowDefinitions.all.count
    }
}

/// Shape helpers shared by definitions.
enum Shapes {
    static let floats: [MILDataType] = [.fp16, .fp32]
    static let numeric: [MILDataType] = [.fp16, .fp32, .int32]
    static let any: [MILDataType] = [.fp16, .fp32, .int32, .bool]
    /// The integer types coremltools' iOS17 op versions add to many ops.
    static let smallIntegers: [MILDataType] = [.int8, .uint8, .int16, .uint16]

    /// The product of `dims`, nil when it overflows (shapes read from other tools' packages are not trusted).
    static func product(_ dims: [Int]) -> Int? {
        var p = 1
        for d in dims {
            let (r, overflow) = p.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            p = r
        }
        return p
    }

    /// The most elements a checked type may have (2^53: element counts times bit widths stay in range).
    static let maxElements = 1 << 53

    /// numpy broadcasting.
    static func broadcast(_ a: [Int], _ b: [Int]) throws(MILTypeError) -> [Int] {
        let rank = max(a.count, b.count)
        let x = [Int](repeating: 1, count: rank - a.count) + a
        let y = [Int](repeating: 1, count: rank - b.count) + b
        var out: [Int] = []
        for (p, q) in zip(x, y) {
            // An unknown dim against a known one > 1 must be that one at run time; against 1 or another unknown
            // it stays unknown (coremltools' broadcast_shapes keeps the symbol).
            let u = MILTensorType.unknownDim
            if p == u || q == u {
                out.append(p == u && q == u ? u : (p == u ? (q == 1 ? u : q) : (p == 1 ? u : p)))
                continue
            }
            guard p == q || p == 1 || q == 1 else { throw MILTypeError("shapes \(a) and \(b) do not broadcast") }
            out.append(p == 1 ? q : p)
        }
        return out
    }

    /// Whether two dims may be equal at run time (equal, or one of them unknown).
    static func mayEqual(_ a: Int, _ b: Int) -> Bool { a == b || a == MILTensorType.unknownDim || b == MILTensorType.unknownDim }

    /// An axis in [-rank, rank) made non-negative.
    static func axis(_ a: Int, rank: Int) throws(MILTypeError) -> Int {
        guard a >= -rank, a < rank else { throw MILTypeError("axis \(a) is out of range for rank \(rank)") }
        return a < 0 ? a + rank : a
    }

    /// The spatial output size of a window (coremltools' `spatial_dimensions_out_shape`).
    static func windowed(input: [Int], kernel: [Int], strides: [Int], dilations: [Int], padType: String, pad: [Int],
                         ceilMode: Bool) throws(MILTypeError) -> [Int] {
        let n = kernel.count
        guard input.count == n, strides.count == n, dilations.count == n else {
            throw MILTypeError("kernel \(kernel), strides \(strides) and dilations \(dilations) do not fit \(input.count) spatial dims")
        }
        var out: [Int] = []
        for r in 0..<n {
            guard strides[r] > 0, dilations[r] > 0, kernel[r] > 0 else { throw MILTypeError("kernel, strides and dilations must be positive") }
            let k = (kernel[r] - 1) * dilations[r] + 1
            var total: Int
            switch padType {
            case "valid": total = 0
            case "custom":
                guard pad.count == 2 * n else { throw MILTypeError("pad \(pad) does not fit \(n) spatial dims") }
                total = pad[2 * r] + pad[2 * r + 1]
            case "same", "same_lower":
                total = max(0, ((input[r] + strides[r] - 1) / strides[r] - 1) * strides[r] + k - input[r])
            default: throw MILTypeError("pad_type '\(padType)'")
            }
            var size: Int
            if ceilMode {
                size = (input[r] + total - k + strides[r] - 1) / strides[r] + 1
                if (size - 1) * strides[r] * 2 >= input[r] * 2 + total, total > 0 { size -= 1 }
            } else {
                let span = input[r] + total - k
                size = span < 0 ? 0 : span / strides[r] + 1
            }
            guard size > 0 else { throw MILTypeError("spatial dim \(r) has output size \(size)") }
            out.append(size)
        }
        return out
    }
}

/// Definitions as small builders.
extension MILOpDefinition {
    /// Output type = the type of parameter `x` (unary ops and activations).
    /// `floatScalars` share x's element type before iOS17; from iOS17 they may be either float type, except
    /// clip's bounds (coremltools' iOS17 activation and unary ops give them their own type domain U).
    static func sameAs(_ type: String, _ param: String = "x", file: String, domain: [MILDataType] = Shapes.floats,
                       since: DeploymentTarget = .iOS15, floatScalars: [String] = []) -> MILOpDefinition {
        MILOpDefinition(type, since: since, file: file, domains: [param: domain]) { c throws(MILTypeError) in
            let x = try c.type(param)
            let ownType = c.target >= .iOS17 && type != "clip"
            for s in floatScalars where c.has(s) {
                let t = try c.type(s)
                guard t.dtype == x.dtype || (ownType && t.dtype.isFloat) else {
                    throw MILTypeError("parameter '\(s)' is \(t.dtype), x is \(x.dtype)")
                }
            }
            return [x]
        }
    }
}
