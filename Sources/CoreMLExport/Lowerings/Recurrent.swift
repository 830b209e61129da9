import GraphIR
import Quantization

/// LSTM, GRU and RNN → MIL lstm, gru, rnn (iOS15/recurrent.py), one op per direction (a bidirectional LSTM whose
/// directions share their activations is one `bidirectional` lstm). ONNX's W, R, B (and LSTM's P) are split per
/// direction and reordered into MIL's gate order at export time; MIL's single bias is ONNX's Wb + Rb. Around the op:
/// transposes for layout 1, splits of the initial states per direction, `reverse` of a reverse layer's sequence
/// (MIL yields it in processing order), and stack / expand_dims into ONNX's Y [seq, dirs, batch, hidden],
/// Y_h and Y_c [dirs, batch, hidden]. Below iOS17 MIL's recurrent ops take fp32 only: fp16 values are cast around them.
///
/// GRU with linear_before_reset = 1 (PyTorch's GRU) is not MIL's gru, which applies the reset gate before the
/// recurrent product (coremltools' numpy reference in iOS14/test_recurrent.py; iOS18's `reset_after` fails its own
/// test, rdar://128479517), and MIL's gru is tested with batch 1 only (rdar://59644603: "incorrect output (always 0)
/// for second batch onwards"): those GRUs are written cell by cell — one MIL `while_loop` per direction whose body
/// computes one step (as coremltools' PyTorch frontend writes torch's GRU), or, for a sequence of one step, the cell
/// unrolled (fewer ops; the same ops per step, so the same values).
enum RecurrentLowering: OpLowering {
    static let opTypes = ["LSTM", "GRU", "RNN"]

    /// The longest sequence a GRU written cell by cell is unrolled over instead of looped. Unrolled, a direction
    /// is 4 ops + 11 per step (+ 2 splits and a concat from 2 steps); the loop is 23 ops whatever the length (6 at
    /// the top level, 1 in the condition, 16 in the body). One step unrolled is 15 ops, two are 29: only a
    /// one-step sequence is smaller unrolled. Both compute the same ops per step in the same order (exact alike).
    static let maxUnrolledSteps = 1

    static func plan(_ v: NodeView) throws(LoweringRefusal) -> Emission {
        let layer = try RecurrentLayer(v)
        return { e throws(LoweringRefusal) in try layer.emit(e) }
    }
}

/// What a recurrent node computes, with every precondition checked and its weights in MIL's layout.
struct RecurrentLayer {
    enum Kind {
        case lstm, gru, rnn

        var gates: Int { self == .lstm ? 4 : self == .gru ? 3 : 1 }
        var milOp: String { self == .lstm ? "lstm" : self == .gru ? "gru" : "rnn" }
        /// ONNX's gate blocks in MIL's order: LSTM (i, o, f, c) → (i, f, o, z); GRU (z, r, h) → (r, o, z).
        var order: [Int] { self == .lstm ? [0, 2, 1, 3] : self == .gru ? [1, 2, 0] : [0] }
        /// ONNX's activation functions per direction (LSTM f, g, h; GRU f, g; RNN f) and their defaults.
        var defaultActivations: [String] { self == .lstm ? ["Sigmoid", "Tanh", "Tanh"] : self == .gru ? ["Sigmoid", "Tanh"] : ["Tanh"] }
        /// The MIL parameters that take them, in the same order.
        var activationParams: [String] {
            self == .lstm ? ["recurrent_activation", "cell_activation", "activation"] : self == .gru ? ["recurrent_activation", "activation"] : ["activation"]
        }
        /// The MIL activations mlpkg writes for the op: the lstm set coremltools' numpy reference defines with default
        /// parameters (iOS14/test_recurrent.py); gru's tested pair; rnn's documented set without those whose
        /// parameters rnn leaves unsaid.
        var milActivations: [String] {
            self == .lstm ? ["sigmoid", "tanh", "relu", "hard_sigmoid", "linear"] : self == .gru ? ["sigmoid", "tanh"] : ["sigmoid", "tanh", "relu"]
        }
    }

    /// One direction's weights in MIL's gate order, flat and row-major.
    struct Weights {
        var ih: [Float]
        var hh: [Float]
        /// Wb + Rb, or nil without B.
        var bias: [Float]?
        /// LSTM peepholes (i, f, o), or nil without P.
        var peephole: [Float]?
        /// GRU unrolled: ONNX's Wb and Rb (z, r, h) kept apart; zeros without B.
        var wb: [Float] = []
        var rb: [Float] = []
    }

    let kind: Kind
    /// Per direction: whether it runs from the last step to the first.
    let reverse: [Bool]
    let layout: Int
    let seq: Int, batch: Int, input: Int, hidden: Int
    /// The element type of X, Y, Y_h, Y_c in the program.
    let dtype: MILDataType
    /// The element type the MIL op computes in (fp32 below iOS17).
    let computeType: MILDataType
    let weights: [Weights]
    /// MIL activation names per direction.
    let activations: [[String]]
    /// A GRU written cell by cell, in a loop or unrolled (linear_before_reset = 1, or a batch above 1).
    let unrolled: Bool
    /// ONNX GRU's linear_before_reset: the reset gate scales R_h·h + Rb_h, not h.
    let linearBeforeReset: Bool
    let hasInitialH: Bool, hasInitialC: Bool
    let used: [Bool]
    /// W and R as the package stores them when linear-quantized or palettized: each direction's rows are then
    /// written in that encoding (see `compressed`); nil for float weights.
    let storedW: Tensor?, storedR: Tensor?

    var directions: Int { reverse.count }

    init(_ v: NodeView) throws(LoweringRefusal) {
        kind = v.opType == "LSTM" ? .lstm : v.opType == "GRU" ? .gru : .rnn
        let x = try v.requireFloat(0)
        guard x.rank == 3 else { throw LoweringRefusal("X has rank \(x.rank); \(v.opType) takes [seq, batch, input]") }
        layout = v.opset >= 14 ? v.int("layout", default: 0) : 0
        guard layout == 0 || layout == 1 else { throw LoweringRefusal("layout \(layout)") }
        (seq, batch, input) = layout == 0 ? (x.shape[0], x.shape[1], x.shape[2]) : (x.shape[1], x.shape[0], x.shape[2])
        dtype = x.dtype

        let direction = v.string("direction", default: "forward")
        switch direction {
        case "forward": reverse = [false]
        case "reverse": reverse = [true]
        case "bidirectional": reverse = [false, true]
        default: throw LoweringRefusal("direction '\(direction)'")
        }
        let nd = reverse.count, gates = kind.gates

        try v.requireConstant(1, "W")
        try v.requireConstant(2, "R")
        let w = try v.type(1), r = try v.type(2)
        guard r.rank == 3, r.shape[0] == nd, r.shape[1] % gates == 0 else {
            throw LoweringRefusal("R \(r.shape) is not [\(nd), \(gates)·hidden, hidden]")
        }
        hidden = r.shape[2]
        guard r.shape[1] == gates * hidden, w.shape == [nd, gates * hidden, input] else {
            throw LoweringRefusal("W \(w.shape) and R \(r.shape) do not fit \(nd) direction(s), \(gates) gate(s) of hidden size \(hidden) and input size \(input)")
        }
        if let h = v.int("hidden_size"), h != hidden { throw LoweringRefusal("hidden_size \(h) contradicts R \(r.shape)") }

        // What MIL cannot express.
        if v.node.attribute("clip") != nil {
            throw LoweringRefusal("clip: ONNX bounds the gates' inputs; MIL lstm's clip bounds the cell state and gru and rnn have none")
        }
        if kind == .lstm, v.int("input_forget", default: 0) != 0 {
            throw LoweringRefusal("input_forget=1 (coupled input and forget gates) has no MIL lstm parameter")
        }
        if v.has(4) {
            guard v.isConstant(4) else { throw LoweringRefusal("sequence_lens '\(v.node.inputs[4])' must be constant; MIL runs every step of every sequence") }
            let lens = try v.ints(4), steps = seq
            guard lens.allSatisfy({ $0 == steps }) else {
                throw LoweringRefusal("sequence_lens \(lens) are not all the sequence length \(seq); MIL runs every step of every sequence")
            }
        }
        linearBeforeReset = kind == .gru && v.int("linear_before_reset", default: 0) != 0
        // linear_before_reset = 1 is not MIL gru's cell; a batch above 1 is untested there (rdar://59644603).
        unrolled = linearBeforeReset || (kind == .gru && batch > 1)
        // MIL's recurrent ops take fp16 from iOS17 (iOS17/recurrent.py); the cell's ops take it everywhere.
        computeType = x.dtype == .fp16 && v.target < .iOS17 && !unrolled ? .fp32 : x.dtype
        activations = try Self.activations(v, kind: kind, directions: nd)

        // Initial states [dirs, batch, hidden] (layout 0) or [batch, dirs, hidden] (layout 1).
        let stateShape = layout == 0 ? [nd, batch, hidden] : [batch, nd, hidden]
        for (i, name) in [(5, "initial_h"), (6, "initial_c")] where v.has(i) && (i == 5 || kind == .lstm) {
            let t = try v.type(i)
            guard t.shape == stateShape, t.dtype == dtype else { throw LoweringRefusal("\(name) \(t) is not \(dtype)\(stateShape)") }
        }
        hasInitialH = v.has(5)
        hasInitialC = kind == .lstm && v.has(6)

        let rows = gates * hidden
        storedW = Self.encoded(v, 1)
        storedR = Self.encoded(v, 2)
        let wValues = try Self.weights(v, 1, "W", count: nd * rows * input)
        let rValues = try Self.weights(v, 2, "R", count: nd * rows * hidden)
        var bValues: [Float]? = nil
        if v.has(3) {
            try v.requireConstant(3, "B")
            let b = try v.type(3)
            guard b.shape == [nd, 2 * rows] else { throw LoweringRefusal("B \(b.shape) is not [\(nd), \(2 * rows)]") }
            bValues = try Self.weights(v, 3, "B", count: nd * 2 * rows)
        }
        var pValues: [Float]? = nil
        if kind == .lstm, v.has(7) {
            try v.requireConstant(7, "P")
            let p = try v.type(7)
            guard p.shape == [nd, 3 * hidden] else { throw LoweringRefusal("P \(p.shape) is not [\(nd), \(3 * hidden)]") }
            pValues = try Self.weights(v, 7, "P", count: nd * 3 * hidden)
        }
        var all: [Weights] = []
        for d in 0..<nd {
            let wd = Array(wValues[(d * rows * input)..<((d + 1) * rows * input)])
            let rd = Array(rValues[(d * rows * hidden)..<((d + 1) * rows * hidden)])
            let order = kind.order
            var weights = Weights(ih: Self.reorder(wd, order, block: hidden * input), hh: Self.reorder(rd, order, block: hidden * hidden))
            if let bValues {
                let wb = Array(bValues[(d * 2 * rows)..<(d * 2 * rows + rows)])
                let rb = Array(bValues[(d * 2 * rows + rows)..<((d + 1) * 2 * rows)])
                weights.bias = Self.reorder(zip(wb, rb).map { $0 + $1 }, order, block: hidden)
                weights.wb = wb
                weights.rb = rb
            } else {
                weights.wb = Array(repeating: 0, count: rows)
                weights.rb = weights.wb
            }
            if let pValues {
                weights.peephole = Self.reorder(Array(pValues[(d * 3 * hidden)..<((d + 1) * 3 * hidden)]), [0, 2, 1], block: hidden)
            }
            all.append(weights)
        }
        weights = all

        let outputs = kind == .lstm ? 3 : 2
        used = (0..<outputs).map { v.outputUsed($0) }
        let yShape = layout == 0 ? [seq, nd, batch, hidden] : [batch, seq, nd, hidden]
        for i in 0..<outputs where used[i] {
            let t = try v.outputType(i)
            let expected = i == 0 ? yShape : stateShape
            guard t.shape == expected, t.dtype == dtype else { throw LoweringRefusal("output \(i) \(t) is not \(dtype)\(expected)") }
        }
    }

    /// A constant float input of `count` elements (weights of any size: they are rearranged at export time).
    static func weights(_ v: NodeView, _ i: Int, _ what: String, count: Int) throws(LoweringRefusal) -> [Float] {
        guard let c = v.values.constant(v.node.inputs[i]), let values = c.floats(limit: 1 << 26), values.count == count else {
            throw LoweringRefusal("\(what) '\(v.node.inputs[i])' must be a constant float tensor of \(count) elements (at most 2^26)")
        }
        return values
    }

    /// Input `i`'s stored tensor when it is linear-quantized or palettized.
    static func encoded(_ v: NodeView, _ i: Int) -> Tensor? {
        guard let t = v.values.constant(v.node.inputs[i])?.tensor else { return nil }
        switch t.encoding {
        case .linear, .palette: return t
        default: return nil
        }
    }

    /// `values` cut into blocks of `block` elements, taken in `order`.
    static func reorder(_ values: [Float], _ order: [Int], block: Int) -> [Float] {
        order.flatMap { values[($0 * block)..<(($0 + 1) * block)] }
    }

    /// ONNX `activations` (with `activation_alpha` / `activation_beta` consumed by the functions that take them, as
    /// ONNX Runtime reads them) → MIL activation names per direction; refuses what MIL's op cannot compute.
    static func activations(_ v: NodeView, kind: Kind, directions: Int) throws(LoweringRefusal) -> [[String]] {
        let perDirection = kind.defaultActivations.count
        var names: [String] = []
        if case .strings(let list)? = v.node.attribute("activations")?.value {
            names = list.map { String(decoding: $0, as: UTF8.self) }
        }
        if names.isEmpty { names = Array(repeating: kind.defaultActivations, count: directions).flatMap { $0 } }
        guard names.count == perDirection * directions else {
            throw LoweringRefusal("activations lists \(names.count) functions; \(v.opType) takes \(perDirection) per direction (\(perDirection * directions))")
        }
        var alphas: [Float] = [], betas: [Float] = []
        if case .floats(let a)? = v.node.attribute("activation_alpha")?.value { alphas = a }
        if case .floats(let b)? = v.node.attribute("activation_beta")?.value { betas = b }
        var mil: [String] = []
        for name in names {
            let lower = name.lowercased()
            let takesAlpha = ["affine", "leakyrelu", "thresholdedrelu", "scaledtanh", "hardsigmoid", "elu"].contains(lower)
            let takesBeta = ["affine", "scaledtanh", "hardsigmoid"].contains(lower)
            let alpha: Float? = takesAlpha && !alphas.isEmpty ? alphas.removeFirst() : nil
            let beta: Float? = takesBeta && !betas.isEmpty ? betas.removeFirst() : nil
            let mapped: String?
            switch lower {
            case "sigmoid": mapped = "sigmoid"
            case "tanh": mapped = "tanh"
            case "relu": mapped = "relu"
            case "hardsigmoid": mapped = (alpha ?? 0.2) == Float(0.2) && (beta ?? 0.5) == Float(0.5) ? "hard_sigmoid" : nil
            case "affine": mapped = alpha == 1 && beta == 0 ? "linear" : nil
            case "scaledtanh": mapped = alpha == 1 && beta == 1 ? "tanh" : nil
            default: mapped = nil
            }
            guard let mapped, kind.milActivations.contains(mapped) else {
                let given = [alpha.map { "alpha \($0)" }, beta.map { "beta \($0)" }].compactMap { $0 }.joined(separator: ", ")
                throw LoweringRefusal("activation \(name)\(given.isEmpty ? "" : " (\(given))") has no MIL \(kind.milOp) equivalent; it takes \(Self.supported(kind))")
            }
            mil.append(mapped)
        }
        return (0..<directions).map { Array(mil[($0 * perDirection)..<(($0 + 1) * perDirection)]) }
    }

    /// The ONNX activations a kind takes, for refusals.
    static func supported(_ kind: Kind) -> String {
        (kind.milActivations.map { a -> String in
            switch a {
            case "hard_sigmoid": return "HardSigmoid (alpha 0.2, beta 0.5)"
            case "linear": return "Affine (alpha 1, beta 0)"
            default: return a.prefix(1).uppercased() + a.dropFirst()
            }
        } + ["ScaledTanh (alpha 1, beta 1)"]).joined(separator: ", ")
    }

    // MARK: Emission

    /// One direction's results: Y [seq, batch, hidden] in time order (when Y is used), Y_h and Y_c [batch, hidden].
    typealias Result = (y: MILVar?, h: MILVar, c: MILVar?)

    func emit(_ e: Emitter) throws(LoweringRefusal) -> [MILVar?] {
        let nd = directions
        var x = try e.input(0)
        if layout == 1 {
            x = e.op("transpose", [("x", .v(x)), ("perm", .c(.ints([1, 0, 2])))], output: x.type.with(shape: [seq, batch, input]), suffix: "_x_seq")
        }
        x = cast(e, x, to: computeType, suffix: "_x")
        let h0 = try states(e, input: 5, given: hasInitialH, suffix: "_h0")
        let c0 = kind == .lstm ? try states(e, input: 6, given: hasInitialC, suffix: "_c0") : []

        var results: [Result] = []
        if unrolled {
            results = (0..<nd).map {
                seq <= RecurrentLowering.maxUnrolledSteps ? unroll(e, x: x, h0: h0[$0], direction: $0) : loop(e, x: x, h0: h0[$0], direction: $0)
            }
        } else if kind == .lstm, nd == 2, activations[0] == activations[1] {
            results = bidirectionalLSTM(e, x: x, h0: h0, c0: c0)
        } else {
            results = (0..<nd).map { layer(e, x: x, h0: h0[$0], c0: kind == .lstm ? c0[$0] : nil, direction: $0) }
        }

        var outputs: [MILVar?] = [nil, nil]
        let stateType = MILTensorType(computeType, layout == 0 ? [nd, batch, hidden] : [batch, nd, hidden])
        if used[0] {
            let ys = results.compactMap(\.y)
            var y = join(e, ys, axis: layout == 0 ? 1 : 2, type: MILTensorType(computeType, [seq] + (layout == 0 ? [nd, batch] : [batch, nd]) + [hidden]), suffix: "_y")
            if layout == 1 {
                y = e.op("transpose", [("x", .v(y)), ("perm", .c(.ints([1, 0, 2, 3])))], output: y.type.with(shape: [batch, seq, nd, hidden]), suffix: "_y_batch")
            }
            outputs[0] = cast(e, y, to: dtype, suffix: "_y")
        }
        if used[1] {
            outputs[1] = cast(e, join(e, results.map(\.h), axis: layout == 0 ? 0 : 1, type: stateType, suffix: "_yh"), to: dtype, suffix: "_yh")
        }
        if kind == .lstm {
            outputs.append(used[2] ? cast(e, join(e, results.compactMap(\.c), axis: layout == 0 ? 0 : 1, type: stateType, suffix: "_yc"), to: dtype, suffix: "_yc") : nil)
        }
        return outputs
    }

    /// `v` cast to `dtype` (nothing when it has it already).
    func cast(_ e: Emitter, _ v: MILVar, to dtype: MILDataType, suffix: String) -> MILVar {
        guard v.type.dtype != dtype else { return v }
        return e.op("cast", [("x", .v(v)), ("dtype", .c(.scalar(dtype.description)))], output: v.type.with(dtype: dtype), suffix: suffix + "_cast")
    }

    /// Per-direction values [batch, hidden] stacked along the direction axis (expand_dims for one direction).
    func join(_ e: Emitter, _ values: [MILVar], axis: Int, type: MILTensorType, suffix: String) -> MILVar {
        if values.count == 1 {
            return e.op("expand_dims", [("x", .v(values[0])), ("axes", .c(.ints([axis])))], output: type, suffix: suffix)
        }
        return e.op("stack", [("values", .list(values)), ("axis", .c(.scalar(Int32(axis))))], output: type, suffix: suffix)
    }

    /// The initial state of each direction as [batch, hidden] in the op's type: ONNX's input split along its
    /// direction axis, or zeros when it is not given.
    func states(_ e: Emitter, input i: Int, given: Bool, suffix: String) throws(LoweringRefusal) -> [MILVar] {
        let one = MILTensorType(computeType, [batch, hidden])
        guard given else {
            let zeros = e.builder.const(.float(0, computeType, shape: [batch, hidden]), name: e.name() + suffix)
            return Array(repeating: zeros, count: directions)
        }
        let s = cast(e, try e.input(i), to: computeType, suffix: suffix)
        guard directions == 2 else {
            return [e.op("reshape", [("x", .v(s)), ("shape", .c(.ints([batch, hidden])))], output: one, suffix: suffix)]
        }
        let axis = layout == 0 ? 0 : 1
        var part = s.type.shape
        part[axis] = 1
        let halves = e.builder.op("split", name: e.name() + suffix + "_split",
                                  [("x", .v(s)), ("split_sizes", .c(.ints([1, 1]))), ("axis", .c(.scalar(Int32(axis))))],
                                  outputs: [s.type.with(shape: part), s.type.with(shape: part)])
        return halves.enumerated().map { d, half in
            e.op("reshape", [("x", .v(half)), ("shape", .c(.ints([batch, hidden])))], output: one, suffix: suffix + "_\(d)")
        }
    }

    /// Direction `d`'s `rows` (ONNX's order within the direction) of the stored W or R, kept in the package's
    /// linear or palette encoding: a constexpr producing the compute type (the rows picked bit for bit, so it decodes
    /// to what the float path writes), at the top level. Nil when the weight is stored as floats or the target cannot
    /// write the encoding (the float constant is written then, as before iOS16).
    func compressed(_ e: Emitter, _ stored: Tensor?, direction d: Int, rows: [Int], columns: Int, name: String) -> MILVar? {
        guard let stored, let part = stored.selecting(slice: d, rows: rows), case .bytes(let view) = part.data else { return nil }
        let type = MILTensorType(computeType, [rows.count, columns])
        return try? e.builder.topLevel { () throws(LoweringRefusal) -> MILVar in
            switch part.encoding {
            case .linear(let q): return try CompressedWeights.emit(name: name, tensor: part, values: view, q, type: type, builder: e.builder)
            case .palette(let p): return try CompressedWeights.emit(name: name, tensor: part, values: view, p, type: type, builder: e.builder)
            default: throw LoweringRefusal("'\(name)' is not compressed")
            }
        }
    }

    func weightParams(_ e: Emitter, _ d: Int, suffix: String = "") -> [(String, MILArg)] {
        let w = weights[d], rows = kind.gates * hidden
        // MIL's gate order, as ONNX row indices within the direction.
        let order = kind.order.flatMap { ($0 * hidden)..<(($0 + 1) * hidden) }
        let tag = e.name() + (directions == 2 ? (d == 0 ? "_forward" : "_backward") : "")
        let ih = compressed(e, storedW, direction: d, rows: order, columns: input, name: tag + "_weight_ih")
        let hh = compressed(e, storedR, direction: d, rows: order, columns: hidden, name: tag + "_weight_hh")
        var params: [(String, MILArg)] = [
            ("weight_ih" + suffix, ih.map { .v($0) } ?? .c(.floats(w.ih, computeType, shape: [rows, input]))),
            ("weight_hh" + suffix, hh.map { .v($0) } ?? .c(.floats(w.hh, computeType, shape: [rows, hidden]))),
        ]
        if let b = w.bias { params.append(("bias" + suffix, .c(.floats(b, computeType, shape: [rows])))) }
        if let p = w.peephole { params.append(("peephole" + suffix, .c(.floats(p, computeType, shape: [3 * hidden])))) }
        return params
    }

    func activationParams(_ d: Int) -> [(String, MILArg)] {
        zip(kind.activationParams, activations[d]).map { ($0.0, .c(.scalar($0.1))) }
    }

    /// One unidirectional MIL op; a reverse layer's sequence is put back in time order.
    func layer(_ e: Emitter, x: MILVar, h0: MILVar, c0: MILVar?, direction d: Int) -> Result {
        let suffix = directions == 2 ? (d == 0 ? "_forward" : "_backward") : "_\(kind.milOp)"
        var params: [(String, MILArg)] = [("x", .v(x)), ("initial_h", .v(h0))]
        if let c0 { params.append(("initial_c", .v(c0))) }
        params += weightParams(e, d)
        params += [("direction", .c(.scalar(reverse[d] ? "reverse" : "forward"))), ("output_sequence", .c(.scalar(used[0])))]
        params += activationParams(d)
        let state = MILTensorType(computeType, [batch, hidden])
        let outs = e.builder.op(kind.milOp, name: e.name() + suffix, params,
                                outputs: [state.with(shape: [used[0] ? seq : 1, batch, hidden])] + Array(repeating: state, count: kind == .lstm ? 2 : 1))
        var y: MILVar? = used[0] ? outs[0] : nil
        if let sequence = y, reverse[d] {
            y = e.op("reverse", [("x", .v(sequence)), ("axes", .c(.ints([0])))], output: sequence.type, suffix: suffix + "_time_order")
        }
        return (y, outs[1], kind == .lstm ? outs[2] : nil)
    }

    /// Both directions in one MIL lstm (its backward half is already in time order), split back per direction.
    func bidirectionalLSTM(_ e: Emitter, x: MILVar, h0: [MILVar], c0: [MILVar]) -> [Result] {
        let both = MILTensorType(computeType, [batch, 2 * hidden])
        func pair(_ v: [MILVar], _ suffix: String) -> MILVar {
            // Both directions read one zeros constant when the state is not given.
            if v[0] == v[1] { return e.builder.const(.float(0, computeType, shape: [batch, 2 * hidden]), name: e.name() + suffix) }
            return e.op("concat", [("values", .list(v)), ("axis", .c(.scalar(Int32(1))))], output: both, suffix: suffix)
        }
        var params: [(String, MILArg)] = [("x", .v(x)), ("initial_h", .v(pair(h0, "_h0_both"))), ("initial_c", .v(pair(c0, "_c0_both")))]
        params += weightParams(e, 0) + weightParams(e, 1, suffix: "_back")
        params += [("direction", .c(.scalar("bidirectional"))), ("output_sequence", .c(.scalar(used[0])))]
        params += activationParams(0)
        let outs = e.builder.op("lstm", name: e.name() + "_lstm", params,
                                outputs: [both.with(shape: [used[0] ? seq : 1, batch, 2 * hidden]), both, both])
        func halves(_ v: MILVar, axis: Int, _ suffix: String) -> [MILVar] {
            var part = v.type.shape
            part[axis] = hidden
            return e.builder.op("split", name: e.name() + suffix, [("x", .v(v)), ("split_sizes", .c(.ints([hidden, hidden]))),
                                                                ("axis", .c(.scalar(Int32(axis))))],
                                outputs: [v.type.with(shape: part), v.type.with(shape: part)])
        }
        let y: [MILVar?] = used[0] ? halves(outs[0], axis: 2, "_y_split") : [nil, nil]
        let h = halves(outs[1], axis: 1, "_h_split"), c = halves(outs[2], axis: 1, "_c_split")
        return (0..<2).map { (y[$0], h[$0], c[$0]) }
    }

    /// A GRU's weights for the cell written op by op (`unroll`, `loop`), in ONNX's z, r order: the input
    /// projections of every step at once (x·W_zr + Wb_zr + Rb_zr, x·W_h + Wb_h; top level), and the recurrent
    /// weights as constants the cell reads.
    struct CellWeights {
        var xzr: MILVar, xh: MILVar
        var rZR: MILVar, rH: MILVar, rbH: MILVar
    }

    /// `merged`: one `linear` computes both projections (x·[W_zr; W_h] + [Wb_zr + Rb_zr; Wb_h], 3H wide; `xzr` and
    /// `xh` are then the same variable, which the loop's body splits per step): one top-level op fewer.
    func cellWeights(_ e: Emitter, x: MILVar, direction d: Int, tag: String, merged: Bool = false) -> CellWeights {
        let w = weights[d], H = hidden, f = computeType
        // The weights are in MIL's gate order (r, h, z): the z and r rows go together (ONNX's order), h apart.
        let rowsIH = { (gate: Int) -> ArraySlice<Float> in w.ih[(gate * H * input)..<((gate + 1) * H * input)] }
        let rowsHH = { (gate: Int) -> ArraySlice<Float> in w.hh[(gate * H * H)..<((gate + 1) * H * H)] }
        let wZR = Array(rowsIH(2) + rowsIH(0)), wH = Array(rowsIH(1))
        let rZR = Array(rowsHH(2) + rowsHH(0)), rH = Array(rowsHH(1))
        let bZR = (0..<(2 * H)).map { w.wb[$0] + w.rb[$0] }
        let wbH = Array(w.wb[(2 * H)...]), rbH = Array(w.rb[(2 * H)...])
        // ONNX's z, r rows are its first 2H, h the last H: stored (compressed) weights are picked by those rows.
        func projectionWeight(_ range: Range<Int>, _ floats: [Float], _ suffix: String) -> MILArg {
            compressed(e, storedW, direction: d, rows: Array(range), columns: input, name: e.name() + tag + suffix).map { .v($0) }
                ?? .c(.floats(floats, f, shape: [range.count, input]))
        }
        func recurrentWeight(_ range: Range<Int>, _ floats: [Float], _ suffix: String) -> MILVar {
            compressed(e, storedR, direction: d, rows: Array(range), columns: H, name: e.name() + tag + suffix)
                ?? e.builder.const(.floats(floats, f, shape: [range.count, H]), name: e.name() + tag + suffix)
        }
        let cell = { (xzr: MILVar, xh: MILVar) in
            CellWeights(xzr: xzr, xh: xh, rZR: recurrentWeight(0..<(2 * H), rZR, "_r_zr"), rH: recurrentWeight((2 * H)..<(3 * H), rH, "_r_h"),
                        rbH: e.builder.const(.floats(rbH, f, shape: [H]), name: e.name() + tag + "_rb_h"))
        }
        if merged {
            let xzrh = e.op("linear", [("x", .v(x)), ("weight", projectionWeight(0..<(3 * H), wZR + wH, "_w_zrh")),
                                       ("bias", .c(.floats(bZR + wbH, f, shape: [3 * H])))],
                            output: MILTensorType(f, [seq, batch, 3 * H]), suffix: tag + "_x_zrh")
            return cell(xzrh, xzrh)
        }
        let xzr = e.op("linear", [("x", .v(x)), ("weight", projectionWeight(0..<(2 * H), wZR, "_w_zr")),
                                  ("bias", .c(.floats(bZR, f, shape: [2 * H])))],
                       output: MILTensorType(f, [seq, batch, 2 * H]), suffix: tag + "_x_zr")
        let xh = e.op("linear", [("x", .v(x)), ("weight", projectionWeight((2 * H)..<(3 * H), wH, "_w_h")),
                                 ("bias", .c(.floats(wbH, f, shape: [H])))],
                      output: MILTensorType(f, [seq, batch, H]), suffix: tag + "_x_h")
        return cell(xzr, xh)
    }

    /// One GRU step on h [1, batch, H], given the step's input projections xzr [1, batch, 2H] and xh [1, batch, H]:
    /// z, r = f(xzr + h·R_zr), n = g(xh + r ⊙ (h·R_h + Rb_h)) with linear_before_reset, else g(xh + (r ⊙ h)·R_h +
    /// Rb_h), and h' = n + z ⊙ (h − n) — 11 ops.
    func cell(_ e: Emitter, xzr: MILVar, xh: MILVar, h: MILVar, weights c: CellWeights, direction d: Int, suffix s: String) -> MILVar {
        let H = hidden, f = computeType
        let step = MILTensorType(f, [1, batch, H]), step2 = MILTensorType(f, [1, batch, 2 * H])
        let (fAct, gAct) = (activations[d][0], activations[d][1])
        let hzr = e.op("linear", [("x", .v(h)), ("weight", .v(c.rZR))], output: step2, suffix: s + "_h_zr")
        let zr = e.op(fAct, [("x", .v(e.op("add", [("x", .v(xzr)), ("y", .v(hzr))], output: step2, suffix: s + "_zr_in")))],
                      output: step2, suffix: s + "_zr")
        let gates = e.builder.op("split", name: e.name() + s + "_z_r", [("x", .v(zr)), ("split_sizes", .c(.ints([H, H]))),
                                                                       ("axis", .c(.scalar(Int32(2))))], outputs: [step, step])
        let reset: MILVar
        if linearBeforeReset {
            let hh = e.op("linear", [("x", .v(h)), ("weight", .v(c.rH)), ("bias", .v(c.rbH))], output: step, suffix: s + "_h_h")
            reset = e.op("mul", [("x", .v(gates[1])), ("y", .v(hh))], output: step, suffix: s + "_reset")
        } else {
            let rh = e.op("mul", [("x", .v(gates[1])), ("y", .v(h))], output: step, suffix: s + "_reset_h")
            reset = e.op("linear", [("x", .v(rh)), ("weight", .v(c.rH)), ("bias", .v(c.rbH))], output: step, suffix: s + "_reset")
        }
        let n = e.op(gAct, [("x", .v(e.op("add", [("x", .v(xh)), ("y", .v(reset))], output: step, suffix: s + "_n_in")))],
                     output: step, suffix: s + "_n")
        let keep = e.op("mul", [("x", .v(gates[0])), ("y", .v(e.op("sub", [("x", .v(h)), ("y", .v(n))], output: step, suffix: s + "_h_minus_n")))],
                        output: step, suffix: s + "_keep")
        return e.op("add", [("x", .v(n)), ("y", .v(keep))], output: step, suffix: s + "_h")
    }

    /// A GRU unrolled over the sequence: the input projections split per step, then one cell per step (used for
    /// sequences of at most `RecurrentLowering.maxUnrolledSteps`, where it writes fewer ops than the loop).
    func unroll(_ e: Emitter, x: MILVar, h0: MILVar, direction d: Int) -> Result {
        let H = hidden, f = computeType
        let tag = "_" + (reverse[d] ? "backward" : "forward")
        let c = cellWeights(e, x: x, direction: d, tag: tag)
        let step = MILTensorType(f, [1, batch, H]), step2 = MILTensorType(f, [1, batch, 2 * H])
        func steps(_ v: MILVar, _ type: MILTensorType, _ suffix: String) -> [MILVar] {
            guard seq > 1 else { return [v] }
            return e.builder.op("split", name: e.name() + tag + suffix, [("x", .v(v)), ("split_sizes", .c(.ints(Array(repeating: 1, count: seq)))),
                                                                       ("axis", .c(.scalar(Int32(0))))],
                                outputs: Array(repeating: type, count: seq))
        }
        let xzrSteps = steps(c.xzr, step2, "_x_zr_steps"), xhSteps = steps(c.xh, step, "_x_h_steps")
        var h = e.op("reshape", [("x", .v(h0)), ("shape", .c(.ints([1, batch, H])))], output: step, suffix: tag + "_h0_step")
        var outs = [MILVar?](repeating: nil, count: seq)
        for t in reverse[d] ? Array((0..<seq).reversed()) : Array(0..<seq) {
            h = cell(e, xzr: xzrSteps[t], xh: xhSteps[t], h: h, weights: c, direction: d, suffix: tag + "_t\(t)")
            outs[t] = h
        }
        var y: MILVar? = nil
        if used[0] {
            let sequence = outs.compactMap { $0 }
            y = seq == 1 ? sequence[0] : e.op("concat", [("values", .list(sequence)), ("axis", .c(.scalar(Int32(0))))],
                                              output: MILTensorType(f, [seq, batch, H]), suffix: tag + "_y")
        }
        let last = e.op("reshape", [("x", .v(h)), ("shape", .c(.ints([batch, H])))], output: MILTensorType(f, [batch, H]), suffix: tag + "_h_last")
        return (y, last, nil)
    }

    /// A GRU as one MIL `while_loop` per direction (what coremltools' PyTorch frontend writes for torch's GRU,
    /// `_add_gru_layer` in frontend/torch/ops.py): the input projections of every step at once before the loop,
    /// then a loop over (t, h, Y) — t an int32 [1] step index (the condition block returns t < seq, or t ≥ 0 for
    /// the reverse direction: a bool [1], as coremltools' loop condition), h [1, batch, H], and Y [seq, batch, H]
    /// (zeros, a constant up to 1 MiB; only when Y is used). The body gathers step t's projections (`gather_nd`, one
    /// [1, batch, 3H] slice of the one merged projection, split into z/r and h), runs the same
    /// cell as the unrolled form (same ops in the same order: the same values), writes h' into Y at t
    /// (`scatter_nd`, mode update) and moves t by one. The weights are constants defined before the loop, which
    /// the body reads. The ops written no longer grow with the sequence.
    func loop(_ e: Emitter, x: MILVar, h0: MILVar, direction d: Int) -> Result {
        let H = hidden, f = computeType
        let tag = "_" + (reverse[d] ? "backward" : "forward")
        let c = cellWeights(e, x: x, direction: d, tag: tag, merged: true)
        let step = MILTensorType(f, [1, batch, H]), step2 = MILTensorType(f, [1, batch, 2 * H])
        let index = MILTensorType(.int32, [1])
        let h = e.op("reshape", [("x", .v(h0)), ("shape", .c(.ints([1, batch, H])))], output: step, suffix: tag + "_h0_step")
        let first = e.builder.const(.ints([reverse[d] ? seq - 1 : 0]), name: e.name() + tag + "_t0")
        let bound = e.builder.const(.ints([reverse[d] ? 0 : seq]), name: e.name() + tag + "_t_bound")
        let move = e.builder.const(.ints([1]), name: e.name() + tag + "_t_step")
        var vars = [first, h]
        if used[0] { vars.append(e.zeros(MILTensorType(f, [seq, batch, H]), suffix: tag + "_y0")) }
        let inputs = vars.enumerated().map { (name: e.name() + tag + ["_t", "_h", "_y"][$0.offset], type: $0.element.type) }
        let condition = e.builder.block(inputs: inputs) { v in
            [e.op(reverse[d] ? "greater_equal" : "less", [("x", .v(v[0])), ("y", .v(bound))], output: MILTensorType(.bool, [1]), suffix: tag + "_more")]
        }
        let body = e.builder.block(inputs: inputs) { v in
            let at = e.op("expand_dims", [("x", .v(v[0])), ("axes", .c(.ints([1])))], output: MILTensorType(.int32, [1, 1]), suffix: tag + "_at")
            let xzrh = e.op("gather_nd", [("x", .v(c.xzr)), ("indices", .v(at))], output: MILTensorType(f, [1, batch, 3 * H]),
                            suffix: tag + "_x_zrh_t")
            let parts = e.builder.op("split", name: e.name() + tag + "_x_t", [("x", .v(xzrh)), ("split_sizes", .c(.ints([2 * H, H]))),
                                                                              ("axis", .c(.scalar(Int32(2))))], outputs: [step2, step])
            let (xzr, xh) = (parts[0], parts[1])
            let next = cell(e, xzr: xzr, xh: xh, h: v[1], weights: c, direction: d, suffix: tag + "_step")
            var out = [e.op(reverse[d] ? "sub" : "add", [("x", .v(v[0])), ("y", .v(move))], output: index, suffix: tag + "_t_next"), next]
            if used[0] {
                out.append(e.op("scatter_nd", [("data", .v(v[2])), ("indices", .v(at)), ("updates", .v(next)), ("mode", .c(.scalar("update")))],
                                output: v[2].type, suffix: tag + "_y_t"))
            }
            return out
        }
        let results = e.builder.op("while_loop", name: e.name() + tag + "_loop", [("loop_vars", .list(vars))], outputs: vars.map(\.type),
                                   blocks: [condition, body])
        let last = e.op("reshape", [("x", .v(results[1])), ("shape", .c(.ints([batch, H])))], output: MILTensorType(f, [batch, H]), suffix: tag + "_h_last")
        return (used[0] ? results[2] : nil, last, nil)
    }
}
