import Foundation
import MIL

/// How closely a program's outputs follow a reference's, over every sample: cosine similarity, SNR in dB
/// (10·log10(Σref² / Σ(ref − out)²)), the largest |ref − out|, and for classifier-like outputs (rank ≥ 2, last dim
/// > 1) top-1 agreement (rows whose arg-max classes match) and top-5 agreement (rows whose reference top-1 class is
/// among the target's 5 highest).
public struct OutputAgreement: Sendable, Encodable {
    /// The output's name (the target's).
    public var name: String
    /// Cosine similarity of the target's values with the reference's, over every sample (NaN when a value is not finite).
    public var cosine: Double
    /// Signal-to-noise ratio in dB (+inf when the outputs are equal).
    public var snr: Double
    /// The largest |reference − target|.
    public var maxAbsError: Double
    /// Fraction of rows whose arg-max classes agree (classifier-like outputs only).
    public var top1: Double?
    /// Fraction of rows whose reference top-1 class is among the target's 5 highest (classifier-like outputs only).
    public var top5: Double?
    /// Rows compared for top-1/top-5.
    public var rows: Int?

    /// Accumulates the statistics over several samples.
    public struct Accumulator: Sendable {
        var name: String
        var dot = 0.0, refEnergy = 0.0, outEnergy = 0.0, errEnergy = 0.0, maxErr = 0.0
        var rows = 0, top1 = 0, top5 = 0
        var classifier = false
        var nonFinite = false

        /// An empty accumulator for output `name`.
        public init(name: String) { self.name = name }

        /// Adds one sample's reference and target values (same element count).
        public mutating func add(reference: EvalTensor, target: EvalTensor) throws(EvaluationError) {
            guard reference.count == target.count else {
                throw EvaluationError("output '\(name)' has \(target.count) elements, the reference \(reference.count)")
            }
            let r = reference.floats, t = target.floats
            for i in r.indices {
                let a = Double(r[i]), b = Double(t[i])
                if !a.isFinite || !b.isFinite { nonFinite = true; continue }
                dot += a * b
                refEnergy += a * a
                outEnergy += b * b
                errEnergy += (a - b) * (a - b)
                maxErr = max(maxErr, abs(a - b))
            }
            if let classes = reference.shape.last, reference.rank >= 2, classes > 1 {
                classifier = true
                for row in 0..<(r.count / classes) {
                    let base = row * classes
                    var best = 0
                    for c in 1..<classes where r[base + c] > r[base + best] { best = c }
                    let order = (0..<classes).sorted { t[base + $0] > t[base + $1] || (t[base + $0] == t[base + $1] && $0 < $1) }
                    rows += 1
                    if order[0] == best { top1 += 1 }
                    if order.prefix(5).contains(best) { top5 += 1 }
                }
            }
        }

        /// The statistics of every sample added.
        public var result: OutputAgreement {
            let cosine = refEnergy > 0 && outEnergy > 0 ? dot / (refEnergy.squareRoot() * outEnergy.squareRoot()) : (errEnergy == 0 ? 1 : 0)
            let snr = errEnergy == 0 ? Double.infinity : (refEnergy > 0 ? 10 * log10(refEnergy / errEnergy) : -Double.infinity)
            return OutputAgreement(name: name, cosine: nonFinite ? .nan : cosine, snr: nonFinite ? .nan : snr,
                                   maxAbsError: nonFinite ? .infinity : maxErr,
                                   top1: classifier ? Double(top1) / Double(max(rows, 1)) : nil,
                                   top5: classifier ? Double(top5) / Double(max(rows, 1)) : nil, rows: classifier ? rows : nil)
        }
    }

    enum CodingKeys: String, CodingKey { case name, cosine, snr, maxAbsError, top1, top5, rows }

    /// Encodes the statistics; JSON has no inf or NaN, so those are null.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        // JSON has no inf/NaN: null stands for them.
        func number(_ v: Double, _ k: CodingKeys) throws { if v.isFinite { try c.encode(v, forKey: k) } else { try c.encodeNil(forKey: k) } }
        try number(cosine, .cosine)
        try number(snr, .snr)
        try number(maxAbsError, .maxAbsError)
        try c.encodeIfPresent(top1, forKey: .top1)
        try c.encodeIfPresent(top5, forKey: .top5)
        try c.encodeIfPresent(rows, forKey: .rows)
    }
}

/// Random inputs of a program's declared shapes from a fixed seed (the same seed gives the same inputs on every
/// machine): floats standard normal; integers in [0, n) where n is the smallest table a `gather` indexes with the
/// input (directly or through a cast), else [0, 2) — safe for token ids, masks and segment ids; bools 0 or 1.
public enum RandomInputs {
    /// SplitMix64: small, fast and the same everywhere.
    public struct Generator: RandomNumberGenerator {
        var state: UInt64
        /// A generator whose sequence is fixed by `seed`.
        public init(seed: UInt64) { state = seed }
        /// The next 64 random bits.
        public mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
    }

    /// The exclusive upper bound of random integers for each integer input of `program`.
    public static func integerRanges(_ program: MILProgram) -> [String: Int] {
        let types = program.types()
        var aliases: [String: String] = [:]  // a cast's output → the input it casts
        var ranges: [String: Int] = [:]
        let inputs = Set(program.inputs.map(\.name))
        for op in program.operations {
            if op.type == "cast", let x = op.arguments("x")?.first?.variableName {
                let root = aliases[x] ?? x
                if inputs.contains(root) { aliases[op.outputs[0].name] = root }
            }
            if op.type == "gather", let ind = op.arguments("indices")?.first?.variableName,
               let root = inputs.contains(ind) ? ind : aliases[ind], let x = op.arguments("x")?.first?.variableName,
               let table = types[x] {
                var axis = 0
                if let a = op.arguments("axis")?.first, case .value(let c) = a, let v = c.intValues?.first { axis = v }
                if let a = op.arguments("axis")?.first?.variableName, let c = program.constants()[a], let v = c.intValues?.first { axis = v }
                if axis < 0 { axis += table.rank }
                if axis >= 0, axis < table.rank { ranges[root] = min(ranges[root] ?? .max, table.shape[axis]) }
            }
        }
        return ranges
    }

    /// `count` samples of every input of `program`, from `seed`.
    public static func samples(_ program: MILProgram, count: Int, seed: UInt64 = 0x6D6C_706B_67) -> [[String: EvalTensor]] {
        var g = Generator(seed: seed)
        let ranges = integerRanges(program)
        var out: [[String: EvalTensor]] = []
        for _ in 0..<count {
            var sample: [String: EvalTensor] = [:]
            for v in program.inputs {
                let n = v.type.count
                if v.type.dtype.isFloat {
                    var values = [Float](repeating: 0, count: n)
                    var i = 0
                    while i < n {
                        // Box–Muller: two normals from two uniforms.
                        let u1 = max(g.uniform(), 1e-300), u2 = g.uniform()
                        let r = (-2 * Foundation.log(u1)).squareRoot()
                        values[i] = Float(r * cos(2 * .pi * u2))
                        if i + 1 < n { values[i + 1] = Float(r * sin(2 * .pi * u2)) }
                        i += 2
                    }
                    sample[v.name] = EvalTensor(floats: values, shape: v.type.shape, dtype: v.type.dtype)
                } else {
                    let bound = v.type.dtype == .bool ? 2 : max(ranges[v.name] ?? 2, 1)
                    sample[v.name] = EvalTensor(ints: (0..<n).map { _ in Int32(g.next() % UInt64(bound)) }, shape: v.type.shape, dtype: v.type.dtype)
                }
            }
            out.append(sample)
        }
        return out
    }
}
