/// Elementwise ops: iOS15/elementwise_binary.py, elementwise_unary.py, activation.py, control_flow.py (select),
/// iOS17/elementwise_unary.py (cast). Binary ops broadcast like numpy; x and y share one element type (mlpkg never
/// relies on coremltools' promotion of mixed types).
enum MILElementwiseDefinitions {
    static func binary(_ type: String, domain: [MILDataType] = Shapes.numeric, result: MILDataType? = nil) -> MILOpDefinition {
        let file = domain == [.bool] || result == .bool ? "iOS15/elementwise_binary.py" : "iOS15/elementwise_binary.py"
        return MILOpDefinition(type, file: file, domains: ["x": domain, "y": domain]) { c throws(MILTypeError) in
            let x = try c.type("x"), y = try c.type("y")
            guard x.dtype == y.dtype else { throw MILTypeError("x is \(x.dtype) and y is \(y.dtype)") }
            return [MILTensorType(result ?? x.dtype, try Shapes.broadcast(x.shape, y.shape))]
        }
    }

    static let unaryFile = "iOS15/elementwise_unary.py"
    static let activationFile = "iOS15/activation.py"

    static let all: [MILOpDefinition] = {
        var list: [MILOpDefinition] = []
        for op in ["add", "sub", "mul", "real_div", "pow", "maximum", "minimum", "floor_div", "mod"] { list.append(binary(op)) }
        for op in ["equal", "not_equal", "greater", "greater_equal", "less", "less_equal"] { list.append(binary(op, result: .bool)) }
        for op in ["logical_and", "logical_or", "logical_xor"] { list.append(binary(op, domain: [.bool])) }
        for op in ["acos", "asin", "atan", "atanh", "ceil", "cos", "cosh", "erf", "exp", "floor", "round", "sin", "sinh",
                   "sqrt", "tan", "tanh"] {
            list.append(.sameAs(op, file: unaryFile))
        }
        for op in ["abs", "exp2", "sign", "square"] { list.append(.sameAs(op, file: unaryFile, domain: Shapes.numeric)) }
        for op in ["log", "inverse", "rsqrt"] { list.append(.sameAs(op, file: unaryFile, floatScalars: ["epsilon"])) }
        list.append(.sameAs("logical_not", file: unaryFile, domain: [.bool]))
        list.append(.sameAs("clip", file: unaryFile, floatScalars: ["alpha", "beta"]))
        list.append(.sameAs("threshold", file: unaryFile, domain: Shapes.numeric))
        for op in ["relu", "relu6", "sigmoid", "softsign", "silu", "softplus"] { list.append(.sameAs(op, file: activationFile)) }
        for op in ["leaky_relu", "elu", "thresholded_relu"] {
            list.append(.sameAs(op, file: activationFile, floatScalars: ["alpha"]))
        }
        list.append(.sameAs("sigmoid_hard", file: activationFile, floatScalars: ["alpha", "beta"]))
        list.append(.sameAs("scaled_tanh", file: activationFile, floatScalars: ["alpha", "beta"]))
        list.append(MILOpDefinition("gelu", file: activationFile, domains: ["x": Shapes.floats]) { c throws(MILTypeError) in
            let mode = try c.string("mode", default: "EXACT")
            guard ["EXACT", "TANH_APPROXIMATION", "SIGMOID_APPROXIMATION"].contains(mode) else { throw MILTypeError("gelu mode '\(mode)'") }
            return [try c.type("x")]
        })
        list.append(MILOpDefinition("prelu", file: activationFile, domains: ["x": Shapes.floats, "alpha": Shapes.floats]) { c throws(MILTypeError) in
            let x = try c.type("x"), a = try c.type("alpha")
            guard x.rank >= 3, a.rank == 1, a.shape[0] == x.shape[1] else { throw MILTypeError("prelu takes rank ≥ 3 x and alpha [C]") }
            return [x]
        })
        list.append(MILOpDefinition("identity", file: "iOS15/tensor_operation.py", domains: ["x": Shapes.any]) { c throws(MILTypeError) in
            [try c.type("x")]
        })
        // iOS17's cast adds int8, uint8, int16 and uint16, as x and as dtype.
        list.append(MILOpDefinition("cast", file: unaryFile, domains: ["x": Shapes.any], widened: ["x": Shapes.smallIntegers]) { c throws(MILTypeError) in
            let x = try c.type("x")
            let name = try c.string("dtype")
            var names: [String: MILDataType] = ["fp16": .fp16, "fp32": .fp32, "int32": .int32, "bool": .bool]
            if c.target >= .iOS17 { for t in Shapes.smallIntegers { names[t.description] = t } }
            guard let dtype = names[name] else {
                throw MILTypeError("cast to '\(name)'" + (c.target < .iOS17 && Shapes.smallIntegers.contains { $0.description == name } ? " needs iOS17" : ""))
            }
            return [x.with(dtype: dtype)]
        })
        list.append(MILOpDefinition("select", file: "iOS15/control_flow.py", domains: ["cond": [.bool], "a": Shapes.any, "b": Shapes.any]) { c throws(MILTypeError) in
            // The definition infers from a and b alone: cond does not take part in the output shape.
            let a = try c.type("a"), b = try c.type("b")
            _ = try c.type("cond")
            guard a.dtype == b.dtype else { throw MILTypeError("a is \(a.dtype) and b is \(b.dtype)") }
            return [MILTensorType(a.dtype, try Shapes.broadcast(a.shape, b.shape))]
        })
        return list
    }()
}
