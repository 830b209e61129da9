import MIL

/// The first op of a run whose output holds inf or NaN (`mlpkg verify --run`): in fp16 compute, a value beyond
/// ±65504 becomes inf when the op's output is rounded to fp16, and inf − inf or 0 · inf then gives NaN.
public struct NonFiniteOutput: Sendable, Encodable {
    /// The op's MIL type.
    public var op: String
    /// The op's name.
    public var name: String
    /// The output variable holding inf or NaN.
    public var output: String
    /// The output's declared type (e.g. `fp16[1, 128, 768]`).
    public var type: String
    /// How many of its values are ±inf.
    public var infinities: Int
    /// How many are NaN.
    public var nans: Int
    /// The largest finite magnitude among its inputs' float values (what overflowed, when it is near 65504).
    public var largestInput: Double?

    /// Runs `evaluator` on `inputs`, stopping at the first op with a non-finite output; nil when every value stays
    /// finite.
    public static func first(_ evaluator: Evaluator, inputs: [String: EvalTensor]) throws(EvaluationError) -> NonFiniteOutput? {
        var found: NonFiniteOutput?
        _ = try evaluator.run(inputs) { op, outputs in
            for (v, t) in zip(op.outputs, outputs) where t.isFloat {
                var inf = 0, nan = 0
                t.withFloats { p in for x in p where !x.isFinite { if x.isNaN { nan += 1 } else { inf += 1 } } }
                if inf + nan > 0 {
                    found = NonFiniteOutput(op: op.type, name: op.name, output: v.name, type: v.type.description, infinities: inf, nans: nan)
                    return false
                }
            }
            return true
        }
        return found
    }
}
