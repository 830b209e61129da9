@testable import Quantization
import Testing

@Suite struct AutoSelectionTests {
    static func settings(_ f: WeightFormat) -> TensorSettings {
        TensorSettings(format: f, granularity: .perTensor, blockSize: 32, symmetric: true, scaleType: .float, minElements: 0)
    }

    /// Random candidate sets: (bytes, nsr) with larger formats usually, not always, more accurate.
    static func randomOptions(_ rng: inout SplitMix, tensors: Int) -> [[AutoSelection.Candidate]] {
        (0..<tensors).map { _ in
            let size = 1000 + Int(rng.next() % 100_000)
            return WeightFormat.allCases.filter { $0 != .auto }.enumerated().map { k, f in
                let bytes = f == .fp32 ? size * 4 : max(1, size * max(f.bits, 1) / 8 + Int(rng.next() % 500))
                let nsr = f == .fp32 ? 0 : pow(2.0, -2.0 * Double(max(f.bits, 1))) * (0.5 + Double(rng.next() % 1000) / 1000)
                return AutoSelection.Candidate(settings: settings(f), bytes: bytes, nsr: nsr * Double(1 + k % 3))
            }
        }
    }

    @Test("a size budget is never exceeded, and more budget never costs accuracy")
    func budgetRespected() throws {
        var rng = SplitMix(seed: 17)
        for _ in 0..<200 {
            let options = Self.randomOptions(&rng, tensors: 1 + Int(rng.next() % 12))
            let weights = options.map { _ in Double(1 + rng.next() % 50) }
            let smallest = options.reduce(0) { $0 + $1.map(\.bytes).min()! }
            let largest = options.reduce(0) { $0 + $1.map(\.bytes).max()! }
            var lastCost = Double.infinity
            for fraction in [0.0, 0.1, 0.3, 0.6, 1.0] {
                let budget = smallest + Int(Double(largest - smallest) * fraction)
                let (choice, budgetBytes) = try #require(AutoSelection.choose(options, weights: weights, budget: .maxBytes(budget),
                                                                              fixedBytes: 0, bytesBefore: largest))
                #expect(budgetBytes == budget)
                let spent = zip(options, choice).reduce(0) { $0 + $1.0[$1.1].bytes }
                #expect(spent <= budget)
                let cost = zip(zip(options, choice), weights).reduce(0.0) { $0 + $1.0.0[$1.0.1].nsr * $1.1 }
                #expect(cost <= lastCost * (1 + 1e-12))
                lastCost = cost
            }
            #expect(AutoSelection.choose(options, weights: weights, budget: .maxBytes(smallest - 1), fixedBytes: 0,
                                         bytesBefore: largest) == nil)
        }
    }

    @Test("one format for every tensor is never better than the choice at its size (element-weighted costs)")
    func beatsUniform() throws {
        var rng = SplitMix(seed: 23)
        for _ in 0..<100 {
            let options = Self.randomOptions(&rng, tensors: 2 + Int(rng.next() % 10))
            let weights = options.map { Double($0[0].bytes) }  // element-weighted, as the converter does
            for k in options[0].indices {
                let uniformBytes = options.reduce(0) { $0 + $1[k].bytes }
                let uniformCost = zip(options, weights).reduce(0.0) { $0 + $1.0[k].nsr * $1.1 }
                let (choice, _) = try #require(AutoSelection.choose(options, weights: weights, budget: .maxBytes(uniformBytes),
                                                                    fixedBytes: 0, bytesBefore: uniformBytes))
                let cost = zip(zip(options, choice), weights).reduce(0.0) { $0 + $1.0.0[$1.0.1].nsr * $1.1 }
                // Greedy on convex hulls can fall short of the optimum by less than one step; it must not lose to
                // a uniform choice by more than the largest single hull step's cost.
                let slack = zip(options, weights).map { o, w in (o.map(\.nsr).max()! - o.map(\.nsr).min()!) * w }.max()!
                #expect(cost <= uniformCost + slack)
            }
        }
    }

    @Test("--min-snr takes the smallest candidate at or above the floor, else the most accurate")
    func snrFloor() throws {
        let options = [[
            AutoSelection.Candidate(settings: Self.settings(.lut2), bytes: 10, nsr: 0.1),      // 10 dB
            AutoSelection.Candidate(settings: Self.settings(.int4), bytes: 20, nsr: 0.01),     // 20 dB
            AutoSelection.Candidate(settings: Self.settings(.lut4), bytes: 18, nsr: 0.0099),   // 20.04 dB
            AutoSelection.Candidate(settings: Self.settings(.fp32), bytes: 100, nsr: 0),
        ]]
        #expect(try #require(AutoSelection.choose(options, weights: [1], budget: .minSNR(20), fixedBytes: 0, bytesBefore: 100)).choice == [2])
        #expect(try #require(AutoSelection.choose(options, weights: [1], budget: .minSNR(300), fixedBytes: 0, bytesBefore: 100)).choice == [3])
        #expect(try #require(AutoSelection.choose(options, weights: [1], budget: .minSNR(5), fixedBytes: 0, bytesBefore: 100)).choice == [0])
    }

    @Test("--max-size parses bytes, binary and decimal units, fractions and percentages; refuses the rest")
    func parsing() throws {
        #expect(try AutoBudget.maxSize("15000000") == .maxBytes(15_000_000))
        #expect(try AutoBudget.maxSize("15MB") == .maxBytes(15_000_000))
        #expect(try AutoBudget.maxSize("14MiB") == .maxBytes(14 << 20))
        #expect(try AutoBudget.maxSize("0.25") == .maxRatio(0.25))
        #expect(try AutoBudget.maxSize("25%") == .maxRatio(0.25))
        #expect(try AutoBudget.maxSize("512B") == .maxBytes(512))
        for bad in ["", "lots", "-5MB", "0", "150%", "inf", "nan"] {
            #expect(throws: TensorRuleError.self) { try AutoBudget.maxSize(bad) }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
