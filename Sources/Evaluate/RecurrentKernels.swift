import Foundation
import MIL

/// lstm, gru and rnn (iOS15/recurrent.py; the behaviour its docstrings leave open is the one coremltools' numpy
/// references in mil/ops/tests/iOS14/test_recurrent.py check against Core ML): gates in MIL's order, states
/// [b, H], outputs every step in processing order or the last.
extension Kernels {
    static func activation(_ name: String) throws(EvaluationError) -> @Sendable (Float) -> Float {
        switch name.lowercased() {
        case "sigmoid": return { sigmoid($0) }
        case "tanh", "scaled_tanh": return { tanhf($0) }
        case "relu": return { max($0, 0) }
        case "hard_sigmoid", "sigmoid_hard": return { min(max(0.2 * $0 + 0.5, 0), 1) }
        case "linear": return { $0 }
        default: throw EvaluationError("activation '\(name)'")
        }
    }

    /// rows [b, n] = x [b, k] · wᵀ (w [n, k], rows starting at `wOffset`) + bias
    static func affine(_ x: [Float], batch: Int, k: Int, _ w: [Float], wOffset: Int, n: Int, bias: ArraySlice<Float>?) -> [Float] {
        var out = [Float](repeating: 0, count: batch * n)
        if let bias { for b in 0..<batch { for j in 0..<n { out[b * n + j] = bias[bias.startIndex + j] } } }
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in out.withUnsafeMutableBufferPointer { op in
            MatrixProduct.multiply(m: batch, n: n, k: k, a: xp.baseAddress!, lda: k, b: wp.baseAddress! + wOffset * k, ldb: k,
                                   transposeB: true, c: op.baseAddress!, ldc: n, accumulate: bias != nil)
        } } }
        return out
    }

    struct LSTMWeights { var ih: [Float], hh: [Float], bias: [Float]?, peephole: [Float]? }

    /// One direction of an lstm: gates (input, forget, output, cell); peepholes read the previous cell state for i
    /// and f, the new one for o; `clip` bounds the cell state after each update.
    static func lstmLayer(_ x: [Float], steps: Int, batch: Int, input: Int, hidden h: Int, h0: [Float], c0: [Float], _ w: LSTMWeights,
                          reverse: Bool, rec: (Float) -> Float, cell: (Float) -> Float, act: (Float) -> Float, clip: Float?) -> ([[Float]], [Float], [Float]) {
        var hState = h0, cState = c0
        var outs: [[Float]] = []
        for s in 0..<steps {
            let t = reverse ? steps - 1 - s : s
            let xt = Array(x[(t * batch * input)..<((t + 1) * batch * input)])
            let gx = affine(xt, batch: batch, k: input, w.ih, wOffset: 0, n: 4 * h, bias: w.bias.map { $0[...] })
            let gh = affine(hState, batch: batch, k: h, w.hh, wOffset: 0, n: 4 * h, bias: nil)
            var newH = [Float](repeating: 0, count: batch * h), newC = newH
            for b in 0..<batch {
                for j in 0..<h {
                    func g(_ q: Int) -> Float { gx[b * 4 * h + q * h + j] + gh[b * 4 * h + q * h + j] }
                    let c = cState[b * h + j]
                    let pi = w.peephole?[j] ?? 0, pf = w.peephole?[h + j] ?? 0, po = w.peephole?[2 * h + j] ?? 0
                    let i = rec(g(0) + pi * c), f = rec(g(1) + pf * c)
                    var nc = f * c + i * cell(g(3))
                    if let clip { nc = min(max(nc, -clip), clip) }
                    let o = rec(g(2) + po * nc)
                    newC[b * h + j] = nc
                    newH[b * h + j] = o * act(nc)
                }
            }
            hState = newH
            cState = newC
            outs.append(newH)
        }
        return (outs, hState, cState)
    }

    static func sequence(_ outs: [[Float]], all: Bool, batch: Int, width: Int, dtype: MILDataType) -> EvalTensor {
        all ? EvalTensor(floats: outs.flatMap { $0 }, shape: [outs.count, batch, width], dtype: dtype)
            : EvalTensor(floats: outs.last ?? [], shape: [1, batch, width], dtype: dtype)
    }

    static let recurrent: [String: Kernel] = {
        var t: [String: Kernel] = [:]
        t["lstm"] = { a in
            let x = try a.tensor("x")
            let (steps, batch, input) = (x.shape[0], x.shape[1], x.shape[2])
            let direction = try a.string("direction", default: "forward")
            let rec = try activation(try a.string("recurrent_activation", default: "sigmoid"))
            let cell = try activation(try a.string("cell_activation", default: "tanh"))
            let act = try activation(try a.string("activation", default: "tanh"))
            let clip = a.has("clip") ? try a.float("clip") : nil
            let all = try a.bool("output_sequence", default: false)
            let h0 = try a.tensor("initial_h").floats, c0 = try a.tensor("initial_c").floats
            let xs = x.floats
            func weights(_ suffix: String) throws(EvaluationError) -> LSTMWeights {
                LSTMWeights(ih: try a.tensor("weight_ih" + suffix).floats, hh: try a.tensor("weight_hh" + suffix).floats,
                            bias: try a.optional("bias" + suffix)?.floats, peephole: try a.optional("peephole" + suffix)?.floats)
            }
            let h = try a.tensor("weight_hh").shape[1]
            if direction != "bidirectional" {
                let (outs, hn, cn) = lstmLayer(xs, steps: steps, batch: batch, input: input, hidden: h, h0: h0, c0: c0, try weights(""),
                                               reverse: direction == "reverse", rec: rec, cell: cell, act: act, clip: clip)
                return [sequence(outs, all: all, batch: batch, width: h, dtype: x.dtype),
                        EvalTensor(floats: hn, shape: [batch, h], dtype: x.dtype), EvalTensor(floats: cn, shape: [batch, h], dtype: x.dtype)]
            }
            func half(_ v: [Float], _ second: Bool) -> [Float] {
                var out: [Float] = []
                for b in 0..<batch {
                    let start: Int = b * 2 * h + (second ? h : 0)
                    out.append(contentsOf: v[start..<(start + h)])
                }
                return out
            }
            let (fwd, hf, cf) = lstmLayer(xs, steps: steps, batch: batch, input: input, hidden: h, h0: half(h0, false), c0: half(c0, false),
                                          try weights(""), reverse: false, rec: rec, cell: cell, act: act, clip: clip)
            let (bwd, hb, cb) = lstmLayer(xs, steps: steps, batch: batch, input: input, hidden: h, h0: half(h0, true), c0: half(c0, true),
                                          try weights("_back"), reverse: true, rec: rec, cell: cell, act: act, clip: clip)
            func join(_ p: [Float], _ q: [Float]) -> [Float] {
                var out: [Float] = []
                for b in 0..<batch {
                    out.append(contentsOf: p[(b * h)..<((b + 1) * h)])
                    out.append(contentsOf: q[(b * h)..<((b + 1) * h)])
                }
                return out
            }
            // The backward half is aligned with the input's time steps (row t: the state after reading x[t]).
            let y: EvalTensor = all
                ? EvalTensor(floats: (0..<steps).flatMap { join(fwd[$0], bwd[steps - 1 - $0]) }, shape: [steps, batch, 2 * h], dtype: x.dtype)
                : EvalTensor(floats: join(fwd.last!, bwd.last!), shape: [1, batch, 2 * h], dtype: x.dtype)
            return [y, EvalTensor(floats: join(hf, hb), shape: [batch, 2 * h], dtype: x.dtype),
                    EvalTensor(floats: join(cf, cb), shape: [batch, 2 * h], dtype: x.dtype)]
        }
        t["gru"] = { a in
            // Gates (reset, output, update): o = act(W_o x + R_o (r ∗ h) + b_o), h = (1 − z) ∗ o + z ∗ h.
            let x = try a.tensor("x")
            let (steps, batch, input) = (x.shape[0], x.shape[1], x.shape[2])
            let wih = try a.tensor("weight_ih").floats, whh = try a.tensor("weight_hh").floats
            let h = try a.tensor("weight_hh").shape[1]
            let bias = try a.optional("bias")?.floats ?? Array(repeating: 0, count: 3 * h)
            let rec = try activation(try a.string("recurrent_activation", default: "sigmoid"))
            let act = try activation(try a.string("activation", default: "tanh"))
            let reverse = try a.string("direction", default: "forward") == "reverse"
            var state = try a.tensor("initial_h").floats
            let xs = x.floats
            var outs: [[Float]] = []
            for s in 0..<steps {
                let t = reverse ? steps - 1 - s : s
                let xt = Array(xs[(t * batch * input)..<((t + 1) * batch * input)])
                let r = affine(xt, batch: batch, k: input, wih, wOffset: 0, n: h, bias: bias[0..<h])
                let rh = affine(state, batch: batch, k: h, whh, wOffset: 0, n: h, bias: nil)
                let z = affine(xt, batch: batch, k: input, wih, wOffset: 2 * h, n: h, bias: bias[(2 * h)..<(3 * h)])
                let zh = affine(state, batch: batch, k: h, whh, wOffset: 2 * h, n: h, bias: nil)
                var reset = [Float](repeating: 0, count: batch * h)
                for i in reset.indices { reset[i] = rec(r[i] + rh[i]) * state[i] }
                let o = affine(xt, batch: batch, k: input, wih, wOffset: h, n: h, bias: bias[h..<(2 * h)])
                let oh = affine(reset, batch: batch, k: h, whh, wOffset: h, n: h, bias: nil)
                var next = state
                for i in next.indices {
                    let zz = rec(z[i] + zh[i])
                    next[i] = (1 - zz) * act(o[i] + oh[i]) + zz * state[i]
                }
                state = next
                outs.append(next)
            }
            return [sequence(outs, all: try a.bool("output_sequence", default: false), batch: batch, width: h, dtype: x.dtype),
                    EvalTensor(floats: state, shape: [batch, h], dtype: x.dtype)]
        }
        t["rnn"] = { a in
            let x = try a.tensor("x")
            let (steps, batch, input) = (x.shape[0], x.shape[1], x.shape[2])
            let wih = try a.tensor("weight_ih").floats, whh = try a.tensor("weight_hh").floats
            let h = try a.tensor("weight_hh").shape[1]
            let bias = try a.optional("bias")?.floats
            let act = try activation(try a.string("activation", default: "tanh"))
            let reverse = try a.string("direction", default: "forward") == "reverse"
            var state = try a.tensor("initial_h").floats
            let xs = x.floats
            var outs: [[Float]] = []
            for s in 0..<steps {
                let t = reverse ? steps - 1 - s : s
                let xt = Array(xs[(t * batch * input)..<((t + 1) * batch * input)])
                let gx = affine(xt, batch: batch, k: input, wih, wOffset: 0, n: h, bias: bias?[...])
                let gh = affine(state, batch: batch, k: h, whh, wOffset: 0, n: h, bias: nil)
                for i in state.indices { state[i] = act(gx[i] + gh[i]) }
                outs.append(state)
            }
            return [sequence(outs, all: try a.bool("output_sequence", default: false), batch: batch, width: h, dtype: x.dtype),
                    EvalTensor(floats: state, shape: [batch, h], dtype: x.dtype)]
        }
        return t
    }()
}
