import Foundation
import GraphIR

/// Unary ops whose output has the input's type and shape: math, activations, normalizations over fixed axes,
/// Identity, Clip, CumSum, Trilu… Folds the cheap, exactly rounded ones (Identity, Neg, Abs, Floor, Ceil, Round,
/// Sqrt, Reciprocal, Relu, Sign, Not).
public enum UnaryOp: Operator {
    /// The shape-preserving unary ops, with the opsets their ONNX definitions changed at.
    public static let schemas: [OpSchema] = [
        OpSchema("Abs", [1, 6, 13]), OpSchema("Acos", [7, 22]), OpSchema("Acosh", [9, 22]), OpSchema("Asin", [7, 22]),
        OpSchema("Asinh", [9, 22]), OpSchema("Atan", [7, 22]), OpSchema("Atanh", [9, 22]), OpSchema("Ceil", [1, 6, 13]),
        OpSchema("Cos", [7, 22]), OpSchema("Cosh", [9, 22]), OpSchema("Erf", [9, 13]), OpSchema("Exp", [1, 6, 13]),
        OpSchema("Floor", [1, 6, 13]), OpSchema("Log", [1, 6, 13]), OpSchema("Neg", [1, 6, 13]),
        OpSchema("Reciprocal", [1, 6, 13]), OpSchema("Round", [11, 22]), OpSchema("Sigmoid", [1, 6, 13]),
        OpSchema("Sign", [9, 13]), OpSchema("Sin", [7, 22]), OpSchema("Sinh", [9, 22]), OpSchema("Softplus", [1, 22]),
        OpSchema("Softsign", [1, 22]), OpSchema("Sqrt", [1, 6, 13]), OpSchema("Tan", [7, 22]), OpSchema("Tanh", [1, 6, 13]),
        OpSchema("Relu", [1, 6, 13, 14]), OpSchema("LeakyRelu", [1, 6, 16]), OpSchema("Elu", [1, 6, 22]),
        OpSchema("Selu", [1, 6, 22]), OpSchema("Celu", [12]), OpSchema("ThresholdedRelu", [10, 22]),
        OpSchema("HardSigmoid", [1, 6, 22]), OpSchema("HardSwish", [14, 22]), OpSchema("Gelu", [20]),
        OpSchema("Mish", [18, 22]), OpSchema("Swish", [24]), OpSchema("Identity", [1, 13, 14, 16, 19, 21]),
        OpSchema("BitwiseNot", [18]), OpSchema("Not", [1]), OpSchema("Softmax", [1, 11, 13]),
        OpSchema("LogSoftmax", [1, 11, 13]), OpSchema("Hardmax", [1, 11, 13]), OpSchema("Shrink", [9]),
        OpSchema("LRN", [1, 13]), OpSchema("MeanVarianceNormalization", [9, 13]), OpSchema("LpNormalization", [1, 22]),
        OpSchema("Trilu", [14]), OpSchema("CumSum", [11, 14]), OpSchema("CumProd", [26]),
        OpSchema("ReverseSequence", [10]), OpSchema("Clip", [1, 6, 11, 12, 13]),
        OpSchema("InstanceNormalization", [1, 6, 22]), OpSchema("GroupNormalization", [18, 21]),
        OpSchema("RMSNormalization", [23]),
    ]

    /// Ops whose axis-like attributes must be within the rank (checked so a malformed node is reported).
    static let axisAttribute: [String: String] = ["Softmax": "axis", "LogSoftmax": "axis", "Hardmax": "axis"]

    /// Input 0's type unchanged; throws when Softmax, LogSoftmax or Hardmax has an axis outside the rank.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), let type = ctx.type(0) else { throw ctx.fail("input 0 is missing") }
        if let name = axisAttribute[ctx.opType], let rank = ctx.rank(0), let axis = try ctx.int(name) {
            _ = try ctx.axis(axis, rank: max(rank, 1))
        }
        return [type]
    }

    /// Folds Identity, Neg, Abs, Floor, Ceil, Round, Sqrt, Reciprocal, Relu, Sign and Not on a known input.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard let x = ctx.value(0) else { return nil }
        if ctx.opType == "Identity" { return [x] }
        let limit = ctx.limits.evaluationElements
        let t = x.dataType
        let result: TensorValue?
        switch ctx.opType {
        case "Neg":
            result = Evaluation.elementwise([x], resultType: t, limit: limit, ints: { IntMath.sub(0, $0[0]) },
                                            floats: { -$0[0] }, dims: { ctx.algebra.subtract(.value(0), $0[0]) })
        case "Abs":
            result = Evaluation.elementwise([x], resultType: t, limit: limit,
                                            ints: { $0[0] == .min ? nil : Swift.abs($0[0]) }, floats: { Swift.abs($0[0]) })
        case "Floor": result = Evaluation.elementwise([x], resultType: t, limit: limit, floats: { $0[0].rounded(.down) })
        case "Ceil": result = Evaluation.elementwise([x], resultType: t, limit: limit, floats: { $0[0].rounded(.up) })
        case "Round": result = Evaluation.elementwise([x], resultType: t, limit: limit, floats: { $0[0].rounded(.toNearestOrEven) })
        case "Sqrt": result = Evaluation.elementwise([x], resultType: t, limit: limit, floats: { $0[0].squareRoot() })
        case "Reciprocal": result = Evaluation.elementwise([x], resultType: t, limit: limit, floats: { 1 / $0[0] })
        case "Relu":
            result = Evaluation.elementwise([x], resultType: t, limit: limit, ints: { Swift.max($0[0], 0) },
                                            floats: { $0[0] < 0 ? 0 : $0[0] })
        case "Sign":
            result = Evaluation.elementwise([x], resultType: t, limit: limit, ints: { $0[0].signum() },
                                            floats: { $0[0].isNaN ? nil : ($0[0] > 0 ? 1 : $0[0] < 0 ? -1 : 0) })
        case "Not": result = Evaluation.elementwise([x], resultType: .bool, limit: limit, bools: { !$0[0] })
        default: result = nil
        }
        return [result]
    }
}

/// Unary ops with a bool output of the input's shape: IsNaN, IsInf.
public enum UnaryPredicateOp: Operator {
    /// `IsNaN` and `IsInf`, with the opsets their ONNX definitions changed at.
    public static let schemas: [OpSchema] = [OpSchema("IsNaN", [9, 13, 20]), OpSchema("IsInf", [10, 20])]

    /// A bool tensor of input 0's shape.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0) else { throw ctx.fail("input 0 is missing") }
        return [tensorType(.bool, ctx.shape(0))]
    }
}

/// Dropout: the data (same type and shape) and an optional bool mask of the same shape. At inference (no
/// training_mode input, or false) it is the identity, which folding uses.
public enum DropoutOp: Operator {
    /// `Dropout`, with the opsets its ONNX definition changed at.
    public static let schemas = [OpSchema("Dropout", [1, 6, 7, 10, 12, 13, 22])]

    /// The data's type, then the mask: bool of the data's shape from opset 10, the data's type before.
    public static func infer(_ ctx: OpContext) throws -> [ValueType] {
        guard ctx.has(0), let type = ctx.type(0) else { throw ctx.fail("input 0 is missing") }
        // Before opset 10 the mask had the input's type; from 10 on it is bool.
        let mask = ctx.since < 10 ? type : tensorType(.bool, ctx.shape(0))
        return [type] + Array(repeating: mask, count: max(ctx.node.outputs.count - 1, 0))
    }

    /// The input itself when the node is in inference mode and its mask output is not used; nil otherwise.
    public static func evaluate(_ ctx: OpContext, types: [ValueType]) throws -> [TensorValue?]? {
        guard let x = ctx.value(0), ctx.node.outputs.count == 1 || ctx.node.outputs.dropFirst().allSatisfy(\.isEmpty) else { return nil }
        if ctx.since >= 12, ctx.has(2) {
            guard let training = ctx.value(2), case .bools(let b) = training.elements, b == [false] else { return nil }
        }
        if ctx.since < 7, try ctx.int("is_test", default: 0) == 0 { return nil }
        return [x]
    }
}
