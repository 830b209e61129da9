import Foundation
import GraphIR

/// What `--weights auto` works to: a size (`--max-size`) or an error floor (`--min-snr`).
public enum AutoBudget: Sendable, Equatable, CustomStringConvertible {
    /// Total weight bytes after conversion (report.json `totals.bytesAfter`) at most this.
    case maxBytes(Int)
    /// The same, as a fraction of the model's weight bytes before conversion.
    case maxRatio(Double)
    /// Every tensor at least this SNR (dB), each in its smallest format that reaches it.
    case minSNR(Double)

    /// The budget as the command line gives it: `--max-size BYTES`, `--max-size FRACTION` or `--min-snr DB`.
    public var description: String {
        switch self {
        case .maxBytes(let b): return "--max-size \(b)"
        case .maxRatio(let r): return "--max-size \(r)"
        case .minSNR(let d): return "--min-snr \(d)"
        }
    }

    /// Parses `--max-size`: bytes (`15000000`, `15MB`, `14.3MiB`, `2GB`), or a fraction of the weights
    /// (`0.25`, `25%`): a plain number below 1 is a fraction.
    public static func maxSize(_ text: String) throws(TensorRuleError) -> AutoBudget {
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("KB", 1e3), ("MB", 1e6),
                                         ("GB", 1e9), ("B", 1), ("%", 0.01)]
        var number = text.trimmingCharacters(in: .whitespaces)
        var factor = 1.0
        var percent = false
        for (suffix, f) in units where number.hasSuffix(suffix) {
            number = String(number.dropLast(suffix.count)).trimmingCharacters(in: .whitespaces)
            factor = f
            percent = suffix == "%"
            break
        }
        guard let value = Double(number), value.isFinite, value > 0 else {
            throw TensorRuleError("--max-size '\(text)': expected bytes (15MB, 14MiB, 15000000) or a fraction (0.25, 25%)")
        }
        if percent || (factor == 1 && value < 1 && !text.hasSuffix("B")) {
            let ratio = value * (percent ? 0.01 : 1)
            guard ratio > 0 && ratio <= 1 else { throw TensorRuleError("--max-size '\(text)': a fraction must be in (0, 1]") }
            return .maxRatio(ratio)
        }
        let bytes = value * factor
        guard bytes >= 1, bytes < 9e18 else { throw TensorRuleError("--max-size '\(text)': out of range") }
        return .maxBytes(Int(bytes))
    }
}

/// What the automatic choice found, for report.json's `conversion.auto`.
public struct AutoReport: Codable, Sendable, Equatable {
    /// The budget as given (`--max-size 15MB`, `--min-snr 25`).
    public var budget: String
    /// The byte budget the whole written output had to fit (absent with --min-snr).
    public var budgetBytes: Int?
    /// Bytes of the written output that are not weights (manifest and report JSON, or the Core ML model
    /// description, and alignment padding), measured on a trial write and taken from `budgetBytes` before the
    /// weights chose; absent with --min-snr.
    public var overheadBytes: Int?
    /// Predicted weight bytes after conversion, and the element-weighted mean SNR of the chosen formats, from the
    /// candidates measured before the choice; report.json's totals measure the same after the conversion.
    public var predictedBytes: Int
    /// Element-weighted mean SNR, in dB, of the chosen formats; nil when no chosen format has a measurable error.
    public var predictedWeightedSNRDB: Double?
    /// Tensors choosing among all formats, and among fp16/fp32 only (not a weight input, or small).
    public var tensors: Int
    /// Tensors choosing between fp16 and fp32 only.
    public var floatOnlyTensors: Int
    /// How many tensors took each format.
    public var formats: [String: Int]
    /// With `--calibration`: tensors whose effect on the outputs was measured (the others' weights were scaled
    /// from them); absent for the data-free choice.
    public var calibratedTensors: Int?
}

/// `--weights auto`: every float tensor gets the format that serves the budget best.
///
/// Candidates: fp32, fp16, int8 per-channel, int6/int5/int4/int3 per-block 32 (asymmetric, fp16 scales), lut8, lut6,
/// lut4, lut3, lut2 (one
/// table per tensor) — the integer and table formats for tensors that feed a weight input and have at least
/// 2048 elements, fp32/fp16 for the rest. Each candidate is run on each tensor (so its bytes and error are measured,
/// not guessed). The cost of a choice is its noise-to-signal ratio (Σ(w−ŵ)²/Σw²) times the tensor's sensitivity:
/// its element count, or for an embedding table (Gather data, [V, D]) D², as if it were a D×D matrix, since a token
/// reads one row of it (docs/QUANTIZATION.md has the measurements behind both). With a size budget the total cost is minimised greedily along each
/// tensor's lower convex hull of (bytes, cost), best cost saved per byte first, an upgrade taken only while it fits;
/// with an SNR floor each tensor takes its smallest candidate at or above the floor.
enum AutoSelection {
    struct Candidate: Sendable {
        var settings: TensorSettings
        var bytes: Int
        /// Noise-to-signal ratio (0 when exact).
        var nsr: Double
    }

    /// `blockSize`: elements per block of the per-block candidates (`--block-size`, default 32).
    static func candidates(compact: Bool, base: TensorSettings, blockSize: Int = 32) -> [TensorSettings] {
        func s(_ f: WeightFormat, _ g: Granularity, _ block: Int, _ scale: DataType) -> TensorSettings {
            TensorSettings(format: f, granularity: g, blockSize: block, symmetric: f.defaultSymmetric, scaleType: scale,
                           minElements: 0, force: base.force)
        }
        var list = [s(.fp32, .perTensor, 32, .float), s(.fp16, .perTensor, 32, .float)]
        if compact {
            let b = blockSize
            list += [s(.int8, .perChannel, 32, .float), s(.int6, .perBlock, b, .float16), s(.int5, .perBlock, b, .float16),
                     s(.int4, .perBlock, b, .float16), s(.int3, .perBlock, b, .float16)]
            list += [WeightFormat.lut8, .lut6, .lut4, .lut3, .lut2].map { s($0, .perTensor, 16, .float) }
        }
        return list
    }

    /// Picks one candidate per tensor. `fixedBytes`: bytes of tensors outside the choice; `weights`: sensitivity per
    /// tensor; `elements`: per tensor. Returns the index of the chosen candidate per tensor, or nil when even the
    /// smallest choices exceed the budget (with that smallest total).
    static func choose(_ options: [[Candidate]], weights: [Double], budget: AutoBudget, fixedBytes: Int,
                       bytesBefore: Int) -> (choice: [Int], budgetBytes: Int?)? {
        switch budget {
        case .minSNR(let floor):
            let limit = pow(10, -floor / 10)
            let choice = options.map { list -> Int in
                let meeting = list.indices.filter { list[$0].nsr <= limit }
                return meeting.min { list[$0].bytes < list[$1].bytes || (list[$0].bytes == list[$1].bytes && $0 < $1) }
                    ?? list.indices.min { list[$0].nsr < list[$1].nsr }!
            }
            return (choice, nil)
        case .maxBytes, .maxRatio:
            let budgetBytes: Int
            if case .maxBytes(let b) = budget { budgetBytes = b } else if case .maxRatio(let r) = budget {
                budgetBytes = Int((Double(bytesBefore) * r).rounded(.down))
            } else { budgetBytes = 0 }
            // Each tensor's lower convex hull of (bytes, cost), from its smallest candidate up.
            let hulls = options.enumerated().map { t, list in hull(list, weight: weights[t]) }
            var choice = hulls.map { $0[0] }
            var spent = fixedBytes + zip(options, choice).reduce(0) { $0 + $1.0[$1.1].bytes }
            guard spent <= budgetBytes else { return nil }
            var step = [Int](repeating: 0, count: options.count)
            // Upgrades by cost saved per byte, best first; ties by tensor order (deterministic).
            var queue: [(slope: Double, tensor: Int)] = []
            func push(_ t: Int) {
                let h = hulls[t]
                guard step[t] + 1 < h.count else { return }
                let from = options[t][h[step[t]]], to = options[t][h[step[t] + 1]]
                let saved = (from.nsr - to.nsr) * weights[t]
                queue.append((saved / Double(max(to.bytes - from.bytes, 1)), t))
            }
            for t in options.indices { push(t) }
            while !queue.isEmpty {
                let best = queue.indices.max { a, b in
                    queue[a].slope < queue[b].slope || (queue[a].slope == queue[b].slope && queue[a].tensor > queue[b].tensor)
                }!
                let t = queue.remove(at: best).tensor
                let next = hulls[t][step[t] + 1]
                let extra = options[t][next].bytes - options[t][choice[t]].bytes
                guard spent + extra <= budgetBytes else { continue }  // too big: this tensor stays where it is
                spent += extra
                choice[t] = next
                step[t] += 1
                push(t)
            }
            return (choice, budgetBytes)
        }
    }

    /// Indices of the candidates on the lower convex hull of (bytes, weight × nsr), by ascending bytes.
    static func hull(_ list: [Candidate], weight: Double) -> [Int] {
        let order = list.indices.sorted { list[$0].bytes < list[$1].bytes || (list[$0].bytes == list[$1].bytes && list[$0].nsr < list[$1].nsr) }
        var points: [Int] = []
        for i in order {
            let cost = list[i].nsr * weight
            // Only a candidate that lowers the cost is worth its bytes.
            if let last = points.last, list[last].nsr * weight <= cost { continue }
            while points.count >= 2 {
                let a = list[points[points.count - 2]], b = list[points[points.count - 1]]
                let (ax, ay) = (Double(a.bytes), a.nsr * weight), (bx, by) = (Double(b.bytes), b.nsr * weight)
                let (cx, cy) = (Double(list[i].bytes), cost)
                // b lies on or above the segment a–c: it is never the best use of its bytes.
                if (by - ay) * (cx - ax) >= (cy - ay) * (bx - ax) { points.removeLast() } else { break }
            }
            points.append(i)
        }
        return points
    }
}

