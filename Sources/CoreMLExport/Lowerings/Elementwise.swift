/// Two-input elementwise ops. MIL broadcasts like numpy, as ONNX does (from opset 7).
enum BinaryLowering: OpLowering {
    static let table: [String: String] = [
        "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "real_div", "Pow": "pow", "Equal": "equal", "Greater": "greater",
        "Less": "less", "GreaterOrEqual": "greater_equal", "LessOrEqual": "less_equal", "And": "logical_and",
        "Or": "logical_or", "Xor": "logical_xor", "Mod": "mod", "PRelu": "prelu",
    ]
    static var opTypes: [String] { Array(table.keys) }

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        guard v.opset >= 7 || ["Equal", "Greater", "Less", "And", "Or", "Xor"].contains(v.opType) == false || v.opset >= 7 else {
            throw LoweringRefusal("opset \(v.opset) broadcasting (axis/broadcast attributes) is not lowered")
        }
        guard v.node.attribute("broadcast") == nil else { throw LoweringRefusal("legacy 'broadcast' attribute is not lowered") }
        let a = try v.type(0), b = try v.type(1)
        let out = try v.outputType()
        guard a.dtype == b.dtype else { throw LoweringRefusal("inputs are \(a.dtype) and \(b.dtype)") }
        // The output type may be a declared one (a subgraph's output whose inference failed): the inputs must still
        // broadcast to it.
        let joined = try broadcastType(a, b)
        guard !joined.isStatic || !out.isStatic || joined.shape == out.shape else {
            throw LoweringRefusal("inputs \(a.shape) and \(b.shape) broadcast to \(joined.shape), the output is declared \(out.shape)")
        }
        let logical = ["And", "Or", "Xor"].contains(v.opType)
        if logical { guard a.dtype == .bool else { throw LoweringRefusal("\(v.opType) takes booleans") } }
        else { guard a.dtype != .bool else { throw LoweringRefusal("\(v.opType) on booleans has no MIL op") } }
        switch v.opType {
        case "Div" where a.dtype == .int32:
            throw LoweringRefusal("integer Div truncates toward zero in ONNX; MIL's floor_div rounds down (differs for negative values)")
        case "Mod":
            guard v.int("fmod", default: 0) == 0 else { throw LoweringRefusal("Mod with fmod=1 (C fmod) has no MIL op") }
        case "Pow":
            guard a.dtype.isFloat else { throw LoweringRefusal("integer Pow is not lowered") }
        case "PRelu":
            guard a.dtype.isFloat else { throw LoweringRefusal("PRelu takes floats") }
        default: break
        }
        let op = table[v.opType]!
        if v.opType == "PRelu" {
            // prelu(x) = relu(x) + slope · min(x, 0): exact, and any slope shape ONNX broadcasts.
            return { e throws(LoweringRefusal) in
                let x = try e.input(0), slope = try e.input(1)
                let positive = e.op("relu", [("x", .v(x))], output: a, suffix: "_pos")
                let negative = e.op("minimum", [("x", .v(x)), ("y", .c(.float(0, a.dtype)))], output: a, suffix: "_neg")
                let scaled = e.op("mul", [("x", .v(negative)), ("y", .v(slope))], output: out, suffix: "_scaled")
                return [e.op("add", [("x", .v(positive)), ("y", .v(scaled))], output: out)]
            }
        }
        return { e throws(LoweringRefusal) in
            [e.op(op, [("x", .v(try e.input(0))), ("y", .v(try e.input(1)))], output: out)]
        }
    }
}

/// Sum, Mean, Max, Min over any number of inputs: a chain of binary ops (Mean divides by the count).
enum VariadicLowering: OpLowering {
    static let opTypes = ["Sum", "Mean", "Max", "Min"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let count = v.node.inputs.count
        guard count >= 1 else { throw LoweringRefusal("has no inputs") }
        let out = try v.outputType()
        for i in 0..<count {
            let t = try v.type(i)
            guard t.dtype == out.dtype, t.dtype != .bool else { throw LoweringRefusal("input \(i) is \(t.dtype)") }
        }
        if v.opType == "Mean" { guard out.dtype.isFloat else { throw LoweringRefusal("Mean takes floats") } }
        let op = ["Sum": "add", "Mean": "add", "Max": "maximum", "Min": "minimum"][v.opType]!
        return { e throws(LoweringRefusal) in
            var acc = try e.input(0)
            if count == 1 { return [e.op("identity", [("x", .v(acc))], output: out)] }
            for i in 1..<count {
                let last = i == count - 1 && v.opType != "Mean"
                let t = last ? out : try broadcastType(acc.type, try v.type(i))
                acc = e.op(op, [("x", .v(acc)), ("y", .v(try e.input(i)))], output: t, suffix: last ? "" : "_\(i)")
            }
            if v.opType == "Mean" {
                acc = e.op("real_div", [("x", .v(acc)), ("y", .c(.float(Float(count), out.dtype)))], output: out)
            }
            return [acc]
        }
    }
}

/// numpy broadcasting of two static shapes.
func broadcastType(_ a: MILTensorType, _ b: MILTensorType) throws(LoweringRefusal) -> MILTensorType {
    let rank = max(a.rank, b.rank)
    let x = [Int](repeating: 1, count: rank - a.rank) + a.shape
    let y = [Int](repeating: 1, count: rank - b.rank) + b.shape
    var shape: [Int] = []
    let u = MILTensorType.unknownDim
    for (p, q) in zip(x, y) {
        // A flexible dim against a known one > 1 must be that one at run time (ONNX inference proved the output).
        if p == u || q == u {
            shape.append(p == u && q == u ? u : (p == u ? (q == 1 ? u : q) : (p == 1 ? u : p)))
            continue
        }
        guard p == q || p == 1 || q == 1 else { throw LoweringRefusal("shapes \(a.shape) and \(b.shape) do not broadcast") }
        shape.append(p == 1 ? q : p)
    }
    return MILTensorType(a.dtype, shape)
}

/// One-input math ops with a MIL op of the same meaning.
enum UnaryLowering: OpLowering {
    static let table: [String: String] = [
        "Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Abs": "abs",
        "Reciprocal": "inverse", "Floor": "floor", "Ceil": "ceil", "Sin": "sin", "Cos": "cos", "Erf": "erf",
        "Sign": "sign", "Not": "logical_not", "Softplus": "softplus", "Neg": "mul", "Tan": "tan", "Asin": "asin",
        "Acos": "acos", "Atan": "atan", "Sinh": "sinh", "Cosh": "cosh",
    ]
    static var opTypes: [String] { Array(table.keys) }

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), out = try v.outputType()
        if v.opType == "Not" {
            guard x.dtype == .bool else { throw LoweringRefusal("Not takes booleans") }
        } else if ["Abs", "Neg", "Sign"].contains(v.opType) {
            guard x.dtype != .bool else { throw LoweringRefusal("\(v.opType) on booleans") }
        } else {
            guard x.dtype.isFloat else { throw LoweringRefusal("input is \(x.dtype); MIL's \(table[v.opType]!) takes floats") }
        }
        let op = table[v.opType]!
        return { e throws(LoweringRefusal) in
            let input = try e.input(0)
            switch v.opType {
            case "Neg":
                let minusOne: MILConst = x.dtype == .int32 ? MILConst(MILTensorType(.int32, []), .ints([-1])) : .float(-1, x.dtype)
                return [e.op("mul", [("x", .v(input)), ("y", .c(minusOne))], output: out)]
            case "Log", "Reciprocal":
                // MIL adds epsilon (default 1e-45) inside log/inverse; 0 keeps ONNX's exact result.
                return [e.op(op, [("x", .v(input)), ("epsilon", .c(.float(0, x.dtype)))], output: out)]
            default:
                return [e.op(op, [("x", .v(input))], output: out)]
            }
        }
    }
}

/// Activations with attributes.
enum ActivationLowering: OpLowering {
    static let opTypes = ["LeakyRelu", "Elu", "HardSigmoid", "Gelu", "Selu", "ThresholdedRelu", "HardSwish", "Mish"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.requireFloat(0), out = try v.outputType()
        let f = x.dtype
        switch v.opType {
        case "LeakyRelu":
            let alpha = v.float("alpha", default: 0.01)
            return { e throws(LoweringRefusal) in [e.op("leaky_relu", [("x", .v(try e.input(0))), ("alpha", .c(.float(alpha, f)))], output: out)] }
        case "Elu":
            let alpha = v.float("alpha", default: 1)
            return { e throws(LoweringRefusal) in [e.op("elu", [("x", .v(try e.input(0))), ("alpha", .c(.float(alpha, f)))], output: out)] }
        case "HardSigmoid":
            let alpha = v.float("alpha", default: 0.2), beta = v.float("beta", default: 0.5)
            return { e throws(LoweringRefusal) in
                [e.op("sigmoid_hard", [("x", .v(try e.input(0))), ("alpha", .c(.float(alpha, f))), ("beta", .c(.float(beta, f)))], output: out)]
            }
        case "HardSwish":
            return { e throws(LoweringRefusal) in
                let input = try e.input(0)
                let gate = e.op("sigmoid_hard", [("x", .v(input)), ("alpha", .c(.float(1 / 6, f))), ("beta", .c(.float(0.5, f)))], output: out, suffix: "_gate")
                return [e.op("mul", [("x", .v(input)), ("y", .v(gate))], output: out)]
            }
        case "Gelu":
            let approximate = v.string("approximate", default: "none")
            guard approximate == "none" || approximate == "tanh" else { throw LoweringRefusal("Gelu approximate='\(approximate)'") }
            let mode = approximate == "tanh" ? "TANH_APPROXIMATION" : "EXACT"
            return { e throws(LoweringRefusal) in [e.op("gelu", [("x", .v(try e.input(0))), ("mode", .c(.scalar(mode)))], output: out)] }
        case "Selu":
            let alpha = v.float("alpha", default: 1.67326319217681884765625), gamma = v.float("gamma", default: 1.05070102214813232421875)
            return { e throws(LoweringRefusal) in
                let inner = e.op("elu", [("x", .v(try e.input(0))), ("alpha", .c(.float(alpha, f)))], output: out, suffix: "_elu")
                return [e.op("mul", [("x", .v(inner)), ("y", .c(.float(gamma, f)))], output: out)]
            }
        case "ThresholdedRelu":
            let alpha = v.float("alpha", default: 1)
            return { e throws(LoweringRefusal) in [e.op("thresholded_relu", [("x", .v(try e.input(0))), ("alpha", .c(.float(alpha, f)))], output: out)] }
        default:  // Mish: x · tanh(softplus(x))
            return { e throws(LoweringRefusal) in
                let input = try e.input(0)
                let sp = e.op("softplus", [("x", .v(input))], output: out, suffix: "_softplus")
                let t = e.op("tanh", [("x", .v(sp))], output: out, suffix: "_tanh")
                return [e.op("mul", [("x", .v(input)), ("y", .v(t))], output: out)]
            }
        }
    }
}

/// Clip: bounds from attributes (before 11) or constant inputs; a missing bound is open.
enum ClipLowering: OpLowering {
    static let opTypes = ["Clip"]

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let x = try v.type(0), out = try v.outputType()
        guard x.dtype.isFloat || x.dtype == .int32 else { throw LoweringRefusal("Clip on \(x.dtype)") }
        if x.dtype == .int32 {
            // MIL's clip takes floats: integer bounds become maximum and minimum with int32 constants.
            let low = v.has(1) ? try v.ints(1).first : nil, high = v.has(2) ? try v.ints(2).first : nil
            return { e throws(LoweringRefusal) in
                var value = try e.input(0)
                if let low {
                    value = e.op("maximum", [("x", .v(value)), ("y", .c(MILConst(MILTensorType(.int32, []), .ints([Int32(clamping: low)]))))],
                                 output: out, suffix: high == nil ? "" : "_low")
                }
                if let high {
                    value = e.op("minimum", [("x", .v(value)), ("y", .c(MILConst(MILTensorType(.int32, []), .ints([Int32(clamping: high)]))))], output: out)
                }
                if low == nil && high == nil { value = e.op("identity", [("x", .v(value))], output: out) }
                return [value]
            }
        }
        var low: Float? = nil, high: Float? = nil
        if v.opset < 11 {
            low = v.float("min", default: -Float.greatestFiniteMagnitude)
            high = v.float("max", default: Float.greatestFiniteMagnitude)
        } else {
            if v.has(1) { guard let m = try v.floats(1).first else { throw LoweringRefusal("min is empty") }; low = m }
            if v.has(2) { guard let m = try v.floats(2).first else { throw LoweringRefusal("max is empty") }; high = m }
        }
        let f = x.dtype
        return { e throws(LoweringRefusal) in
            var value = try e.input(0)
            switch (low, high) {
            case (let l?, let h?):
                if l == 0, h == 6 { return [e.op("relu6", [("x", .v(value))], output: out)] }
                return [e.op("clip", [("x", .v(value)), ("alpha", .c(.float(l, f))), ("beta", .c(.float(h, f)))], output: out)]
            case (let l?, nil):
                return [e.op("maximum", [("x", .v(value)), ("y", .c(.float(l, f)))], output: out)]
            case (nil, let h?):
                return [e.op("minimum", [("x", .v(value)), ("y", .c(.float(h, f)))], output: out)]
            default:
                value = e.op("identity", [("x", .v(value))], output: out)
                return [value]
            }
        }
    }
}
