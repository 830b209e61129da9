/// Recurrent layers: iOS15/recurrent.py (lstm, gru, rnn, T = fp32) and iOS17/recurrent.py (the same ops with
/// T = fp16 or fp32). iOS18/recurrent.py adds gru's `reset_after` and `input_bias`, which mlpkg does not write
/// (coremltools marks their test against PyTorch as an expected failure, rdar://128479517).
///
/// Shapes: x [s, b, I]; weight_ih [G·H, I] and weight_hh [G·H, H] with G gates (lstm 4, gru 3, rnn 1); states
/// [b, D·H] (D = 2 for a bidirectional lstm, else 1); outputs [s or 1, b, D·H] (every step with
/// `output_sequence`, else the last), then [b, D·H] (and lstm's cell state [b, D·H]).
enum MILRecurrentDefinitions {
    static let file = "iOS15/recurrent.py"

    /// lstm's `_ALLOWED_ACTIVATIONS`.
    static let lstmActivations: Set<String> = ["tanh", "scaled_tanh", "sigmoid", "hard_sigmoid", "relu", "linear"]
    /// rnn's documented activations.
    static let rnnActivations: Set<String> = ["relu", "tanh", "sigmoid", "sigmoid_hard", "scaled_tanh", "linear"]
    /// gru documents none; these are the two its tests (iOS14/test_recurrent.py) run.
    static let gruActivations: Set<String> = ["sigmoid", "tanh"]

    /// T: fp32 before iOS17, fp16 or fp32 from iOS17 (iOS17/recurrent.py); every tensor parameter shares x's type.
    static func elementType(_ c: MILOpContext, _ op: String, _ params: [String]) throws(MILTypeError) -> MILTensorType {
        let x = try c.type("x")
        guard x.dtype == .fp32 || (x.dtype == .fp16 && c.target >= .iOS17) else {
            throw MILTypeError("\(op) takes fp32\(c.target >= .iOS17 ? " or fp16" : " before iOS17 (fp16 from iOS17)"), x is \(x.dtype)")
        }
        guard x.rank == 3 else { throw MILTypeError("\(op) takes x of rank 3 [s, b, I], got \(x.shape)") }
        for p in params where c.has(p) {
            let t = try c.type(p)
            guard t.dtype == x.dtype else { throw MILTypeError("\(p) is \(t.dtype), x is \(x.dtype)") }
        }
        return x
    }

    /// weight_ih [G·H, I] and weight_hh [G·H, H] (named with `suffix`, "_back" for lstm's backward weights); returns H.
    static func hidden(_ c: MILOpContext, gates: Int, input: Int, suffix: String = "") throws(MILTypeError) -> Int {
        let ih = try c.type("weight_ih" + suffix), hh = try c.type("weight_hh" + suffix)
        guard ih.rank == 2, hh.rank == 2 else { throw MILTypeError("weight_ih\(suffix) \(ih.shape) and weight_hh\(suffix) \(hh.shape) must be rank 2") }
        let h = hh.shape[1]
        guard h > 0, hh.shape[0] == gates * h, ih.shape == [gates * h, input] else {
            throw MILTypeError("weight_ih\(suffix) \(ih.shape) and weight_hh\(suffix) \(hh.shape) do not fit \(gates) gates of a hidden size from weight_hh and input size \(input)")
        }
        return h
    }

    /// A const vector parameter of `count` elements, when given.
    static func vector(_ c: MILOpContext, _ name: String, _ count: Int) throws(MILTypeError) {
        guard let t = try c.optionalType(name) else { return }
        guard t.shape == [count] else { throw MILTypeError("\(name) \(t.shape) must be [\(count)]") }
    }

    /// A state parameter [b, width].
    static func state(_ c: MILOpContext, _ name: String, batch: Int, width: Int) throws(MILTypeError) {
        let t = try c.type(name)
        guard t.shape == [batch, width] else { throw MILTypeError("\(name) \(t.shape) must be [\(batch), \(width)]") }
    }

    static func activation(_ c: MILOpContext, _ name: String, default value: String, allowed: Set<String>, op: String) throws(MILTypeError) {
        let a = try c.string(name, default: value)
        guard allowed.contains(a.lowercased()) else { throw MILTypeError("\(op) \(name) '\(a)' is not one of \(allowed.sorted())") }
    }

    static let all: [MILOpDefinition] = [
        MILOpDefinition("lstm", file: file, domains: [
            "x": Shapes.floats, "initial_h": Shapes.floats, "initial_c": Shapes.floats, "weight_ih": Shapes.floats,
            "weight_hh": Shapes.floats, "bias": Shapes.floats, "peephole": Shapes.floats, "weight_ih_back": Shapes.floats,
            "weight_hh_back": Shapes.floats, "bias_back": Shapes.floats, "peephole_back": Shapes.floats, "clip": Shapes.floats,
        ]) { c throws(MILTypeError) in
            let x = try elementType(c, "lstm", ["initial_h", "initial_c", "weight_ih", "weight_hh", "bias", "peephole", "weight_ih_back",
                                                "weight_hh_back", "bias_back", "peephole_back", "clip"])
            let (s, b, i) = (x.shape[0], x.shape[1], x.shape[2])
            let direction = try c.string("direction", default: "forward")
            guard ["forward", "reverse", "bidirectional"].contains(direction) else { throw MILTypeError("lstm direction '\(direction)'") }
            let h = try hidden(c, gates: 4, input: i)
            try vector(c, "bias", 4 * h)
            try vector(c, "peephole", 3 * h)
            let directions = direction == "bidirectional" ? 2 : 1
            if directions == 2 {
                guard c.has("weight_ih_back"), c.has("weight_hh_back") else {
                    throw MILTypeError("a bidirectional lstm needs weight_ih_back and weight_hh_back")
                }
                guard try hidden(c, gates: 4, input: i, suffix: "_back") == h else { throw MILTypeError("the backward weights have another hidden size") }
                try vector(c, "bias_back", 4 * h)
                try vector(c, "peephole_back", 3 * h)
            }
            try state(c, "initial_h", batch: b, width: directions * h)
            try state(c, "initial_c", batch: b, width: directions * h)
            for (name, value) in [("recurrent_activation", "sigmoid"), ("cell_activation", "tanh"), ("activation", "tanh")] {
                try activation(c, name, default: value, allowed: lstmActivations, op: "lstm")
            }
            if c.has("clip") { try c.requireFloatScalar("clip") }
            let steps = try c.bool("output_sequence", default: false) ? s : 1
            return [x.with(shape: [steps, b, directions * h]), x.with(shape: [b, directions * h]), x.with(shape: [b, directions * h])]
        },
        MILOpDefinition("gru", file: file, domains: [
            "x": Shapes.floats, "initial_h": Shapes.floats, "weight_ih": Shapes.floats, "weight_hh": Shapes.floats, "bias": Shapes.floats,
        ]) { c throws(MILTypeError) in
            let x = try elementType(c, "gru", ["initial_h", "weight_ih", "weight_hh", "bias"])
            let (s, b, i) = (x.shape[0], x.shape[1], x.shape[2])
            let direction = try c.string("direction", default: "forward")
            guard ["forward", "reverse"].contains(direction) else { throw MILTypeError("gru direction '\(direction)' (forward or reverse)") }
            let h = try hidden(c, gates: 3, input: i)
            try vector(c, "bias", 3 * h)
            try state(c, "initial_h", batch: b, width: h)
            try activation(c, "recurrent_activation", default: "sigmoid", allowed: gruActivations, op: "gru")
            try activation(c, "activation", default: "tanh", allowed: gruActivations, op: "gru")
            let steps = try c.bool("output_sequence", default: false) ? s : 1
            return [x.with(shape: [steps, b, h]), x.with(shape: [b, h])]
        },
        MILOpDefinition("rnn", file: file, domains: [
            "x": Shapes.floats, "initial_h": Shapes.floats, "weight_ih": Shapes.floats, "weight_hh": Shapes.floats, "bias": Shapes.floats,
        ]) { c throws(MILTypeError) in
            let x = try elementType(c, "rnn", ["initial_h", "weight_ih", "weight_hh", "bias"])
            let (s, b, i) = (x.shape[0], x.shape[1], x.shape[2])
            let direction = try c.string("direction", default: "forward")
            guard ["forward", "reverse"].contains(direction) else { throw MILTypeError("rnn direction '\(direction)' (forward or reverse)") }
            let h = try hidden(c, gates: 1, input: i)
            try vector(c, "bias", h)
            try state(c, "initial_h", batch: b, width: h)
            try activation(c, "activation", default: "tanh", allowed: rnnActivations, op: "rnn")
            let steps = try c.bool("output_sequence", default: false) ? s : 1
            return [x.with(shape: [steps, b, h]), x.with(shape: [b, h])]
        },
    ]
}
