import Foundation
import MIL

/// `--activations int8`: the ranges of a program's activation inputs (ActivationQuantization's sites) from a run on
/// calibration inputs, and which layers stay in float, chosen by measurement:
/// 1. the program runs on every sample; each site's |x| goes into a histogram (32 bins per octave) and its scale is
///    the clip c/127 that minimises the expected squared error Σ n·(|x| − c)² above c plus n·(c/127)²/12 below it,
///    over clips from the largest value down to 1/64 of it (rare outliers are clipped when that costs less);
/// 2. each site is quantized alone and the output cosine against the program without activation quantization is
///    measured; the sites whose quantization costs the most are the sensitive ones;
/// 3. all sites quantized: while the cosine is below `minimumCosine`, the k most sensitive sites stay in float,
///    with k the smallest that reaches it (found by bisection, then checked).
/// Cosines are each output's over all samples (the lowest output counts), as `mlpkg compare` computes them.
public enum ActivationCalibration {
    /// The output cosine W8A8 keeps against the same program with float activations.
    public static let defaultMinimumCosine = 0.999

    /// A site kept in float, and what quantizing it alone did.
    public struct Kept: Sendable, Encodable {
        /// The layer input (op, parameter, ONNX node).
        public var site: String
        /// The output cosine with only this site quantized.
        public var cosineAlone: Double
    }

    /// What calibration found.
    public struct Result: Sendable {
        /// The sites quantized, with their scales.
        public var ranges: [ActivationQuantization.Range]
        /// The sites kept in float, most sensitive first.
        public var kept: [Kept]
        /// Every site's cosine when quantized alone, in program order.
        public var alone: [(site: ActivationQuantization.Site, cosine: Double)]
        /// The output cosine with every site quantized (before any was kept).
        public var cosineAllQuantized: Double
        /// The output cosine of the result, against the program with float activations.
        public var cosine: Double
        /// Samples run.
        public var samples: Int
        /// Program runs calibration took.
        public var runs: Int
    }

    /// Calibrates `program` on `samples` (inputs by name, of the program's shapes).
    public static func calibrate(_ program: MILProgram, samples: [[String: EvalTensor]],
                                 minimumCosine: Double = defaultMinimumCosine) throws(EvaluationError) -> Result {
        let sites = ActivationQuantization.sites(in: program)
        let evaluator = try Evaluator(program)
        let types = program.types()
        var histograms: [String: AbsHistogram] = [:]
        let watched = Set(sites.map(\.variable))
        var baseline: [[(name: String, value: EvalTensor)]] = []
        for sample in samples {
            for v in program.inputs where watched.contains(v.name) {
                if let t = sample[v.name] { histograms[v.name, default: AbsHistogram()].add(t) }
            }
            baseline.append(try evaluator.run(sample) { op, outs in
                for (v, t) in zip(op.outputs, outs) where watched.contains(v.name) { histograms[v.name, default: AbsHistogram()].add(t) }
                return true
            })
        }
        var runs = samples.count
        var ranges: [ActivationQuantization.Range] = []
        for site in sites {
            var scale = histograms[site.variable]?.bestScale() ?? 1
            // The program stores the scale in the activation's type: calibrate with the value it will hold.
            if types[site.variable]?.dtype == .fp16 { var s = [scale]; Rounding.toHalf(&s); scale = s[0] }
            if !(scale.isFinite && scale > 0) { scale = 1 }
            ranges.append(.init(site: site, scale: scale))
        }
        func cosine(_ chosen: [ActivationQuantization.Range]) throws(EvaluationError) -> Double {
            var table: [String: [String: Float]] = [:]
            for r in chosen { table[r.site.op, default: [:]][r.site.parameter] = r.scale }
            var accumulators = program.outputs.map { OutputAgreement.Accumulator(name: $0) }
            for (k, sample) in samples.enumerated() {
                let got = try evaluator.run(sample, fakeQuantizing: table)
                for (i, out) in got.enumerated() { try accumulators[i].add(reference: baseline[k][i].value, target: out.value) }
            }
            runs += samples.count
            return accumulators.map(\.result.cosine).min() ?? 1
        }
        var alone: [(site: ActivationQuantization.Site, cosine: Double)] = []
        for r in ranges { alone.append((r.site, try cosine([r]))) }
        let all = ranges.isEmpty ? 1 : try cosine(ranges)
        // Most harmful first; ties in program order (deterministic).
        let order = ranges.indices.sorted { alone[$0].cosine < alone[$1].cosine || (alone[$0].cosine == alone[$1].cosine && $0 < $1) }
        func keeping(_ k: Int) -> [ActivationQuantization.Range] {
            let kept = Set(order.prefix(k))
            return ranges.indices.filter { !kept.contains($0) }.map { ranges[$0] }
        }
        var k = 0
        var reached = all
        if all < minimumCosine {
            // Bisection for the smallest k that reaches the floor (the cosine grows with k, up to noise), then a check.
            var low = 0, high = ranges.count
            var measured: [Int: Double] = [0: all, ranges.count: 1]
            while high - low > 1 {
                let mid = (low + high) / 2
                let c = try cosine(keeping(mid))
                measured[mid] = c
                if c >= minimumCosine { high = mid } else { low = mid }
            }
            k = high
            if let known = measured[k] { reached = known } else { reached = try cosine(keeping(k)) }
        }
        let kept = order.prefix(k).map { Kept(site: ranges[$0].site.description, cosineAlone: alone[$0].cosine) }
        return Result(ranges: keeping(k), kept: kept, alone: alone, cosineAllQuantized: all, cosine: reached,
                      samples: samples.count, runs: runs)
    }
}

/// A histogram of |x| in 32 bins per octave from 2^−40 to 2^40 (zeros counted apart), with the largest value.
struct AbsHistogram {
    static let binsPerOctave = 32
    static let lowestOctave = -40
    static let octaves = 80
    var counts = [Double](repeating: 0, count: AbsHistogram.binsPerOctave * AbsHistogram.octaves)
    var zeros = 0.0
    var largest: Float = 0

    mutating func add(_ t: EvalTensor) {
        t.withFloats { p in
            for x in p {
                let a = abs(x)
                guard a.isFinite else { continue }
                if a == 0 { zeros += 1; continue }
                largest = max(largest, a)
                let position = (log2(Double(a)) - Double(Self.lowestOctave)) * Double(Self.binsPerOctave)
                counts[min(max(Int(position), 0), counts.count - 1)] += 1
            }
        }
    }

    /// The centre of bin `b`.
    static func value(_ b: Int) -> Double { exp2((Double(b) + 0.5) / Double(binsPerOctave) + Double(lowestOctave)) }

    /// The int8 scale (clip / 127) of least expected squared error.
    func bestScale() -> Float {
        guard largest > 0 else { return 1 }
        var best = Double(largest), bestError = Double.infinity
        var clip = Double(largest)
        let floor = clip / 64
        while clip >= floor {
            let step = clip / 127
            var error = 0.0
            for (b, n) in counts.enumerated() where n > 0 {
                let v = Self.value(b)
                error += v > clip ? n * (v - clip) * (v - clip) : n * step * step / 12
            }
            error += zeros * step * step / 12
            if error < bestError { bestError = error; best = clip }
            clip *= 0.97
        }
        return Float(best / 127)
    }
}
