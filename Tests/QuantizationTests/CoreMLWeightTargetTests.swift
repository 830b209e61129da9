import GraphIR
import Testing
@testable import Quantization

private func matrix(_ name: String, rows: Int, cols: Int) -> Tensor {
    // Deterministic, non-constant values (a fixed linear congruence; no randomness).
    var state: UInt32 = 12345
    let values: [Float] = (0..<rows * cols).map { _ in
        state = state &* 1_103_515_245 &+ 12345
        return Float(Int(state >> 16) % 2001 - 1000) / 1000
    }
    return Tensor(name: name, dataType: .float, dims: [rows, cols], data: .bytes(LittleEndian.bytes(of: values)))
}

/// y = x · W with W [K, N]: blocks run along K (axis 0).
private func matmulModel(k: Int, n: Int) -> Model {
    let info = { (name: String) in ValueInfo(name: name, type: .tensor(TensorType(elementType: .float, shape: nil))) }
    let graph = Graph(name: "g", inputs: [info("x")], outputs: [info("y")], initializers: [matrix("w", rows: k, cols: n)],
                      nodes: [Node(opType: "MatMul", inputs: ["x", "w"], outputs: ["y"])])
    return Model(irVersion: 10, opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph)
}

private func settings(_ f: WeightFormat, _ g: Granularity? = nil, block: Int? = nil) -> TensorSettings {
    TensorSettings(format: f, granularity: g ?? f.defaultGranularity, blockSize: block ?? (f.isPalette ? 16 : 32),
                   symmetric: f.defaultSymmetric, scaleType: f.defaultScaleType, minElements: 0)
}

@Suite struct CoreMLWeightTargetTests {
    @Test("the largest block from 8 up to the one asked that divides the axis; none for primes")
    func dividingBlocks() {
        // MobileNet v3's channel counts against the default block of 32.
        #expect(CoreMLWeightTarget.dividingBlock(dim: 40, requested: 32) == 20)
        #expect(CoreMLWeightTarget.dividingBlock(dim: 88, requested: 32) == 22)
        #expect(CoreMLWeightTarget.dividingBlock(dim: 240, requested: 32) == 30)
        #expect(CoreMLWeightTarget.dividingBlock(dim: 24, requested: 32) == 24)
        #expect(CoreMLWeightTarget.dividingBlock(dim: 64, requested: 32) == 32)
        #expect(CoreMLWeightTarget.dividingBlock(dim: 37, requested: 32) == nil)
        #expect(CoreMLWeightTarget.dividingBlock(dim: 14, requested: 32) == 14)
        #expect(CoreMLWeightTarget.dividingBlock(dim: 2 * 53, requested: 32) == nil)  // divisors 2 and 53 only
        for dim in 1...300 {
            guard let b = CoreMLWeightTarget.dividingBlock(dim: dim, requested: 32) else {
                #expect(!(8...32).contains { dim % $0 == 0 })
                continue
            }
            #expect(dim % b == 0 && b >= 8 && b <= 32)
            #expect(!stride(from: b + 1, through: 32, by: 1).contains { dim % $0 == 0 })
        }
    }

    @Test("each target settles a format it writes, and says why it changed")
    func settlement() {
        let iOS18 = CoreMLWeightTarget.newest, iOS17 = CoreMLWeightTarget(specificationVersion: 8)
        let iOS15 = CoreMLWeightTarget(specificationVersion: 6)
        var (s, note) = iOS18.settle(settings(.int4), dims: [40, 64], reduction: 0)
        #expect(s.blockSize == 20 && s.granularity == .perBlock && note?.contains("32 does not divide dim 0 (40)") == true)
        (s, note) = iOS18.settle(settings(.int4), dims: [37, 64], reduction: 0)
        #expect(s.granularity == .perChannel && note?.hasPrefix("per-channel") == true)
        (s, note) = iOS18.settle(settings(.int4), dims: [64, 64], reduction: 0)
        #expect(s == settings(.int4) && note == nil)
        (s, note) = iOS17.settle(settings(.int4), dims: [64, 64], reduction: 0)
        #expect(s.format == .int8 && s.granularity == .perChannel && !s.symmetric && note?.contains("iOS18") == true)
        (s, note) = iOS17.settle(settings(.int8), dims: [64, 64], reduction: 0)
        #expect(s == settings(.int8) && note == nil)
        (s, note) = iOS17.settle(settings(.lut3), dims: [64, 64], reduction: 0)
        #expect(s.format == .lut4 && note != nil)
        (s, note) = iOS17.settle(settings(.lut4, .perChannel), dims: [64, 64], reduction: 0)
        #expect(s.format == .lut4 && s.granularity == .perTensor && note != nil)
        (s, note) = iOS15.settle(settings(.lut4), dims: [64, 64], reduction: 0)
        #expect(s.format == .fp16 && note != nil)
        (s, _) = iOS15.settle(settings(.fp16), dims: [64, 64], reduction: 0)
        #expect(s.format == .fp16)
    }

    @Test("every settled encoding is one the target writes (the exporter's check), for every format and target")
    func settledEncodingsAreWritable() {
        for version in 6...9 {
            let target = CoreMLWeightTarget(specificationVersion: version)
            for format in WeightFormat.allCases where format != .auto && format != .fp32 {
                for (k, granularity) in [(40, Granularity?.none), (88, .perChannel), (240, .perTensor)] {
                    var options = WeightConverter.Options(format: format, granularity: format == .fp16 ? nil : granularity,
                                                          blockSize: format.isPalette ? 4 : nil, coreML: target)
                    options.minElements = 0
                    let (converted, report) = WeightConverter(options: options).convert(matmulModel(k: k, n: 24))
                    let w = converted.graph.initializers[0]
                    #expect(target.problem(w.encoding, dims: w.dims) == nil, "\(format) \(String(describing: granularity)) at \(target): \(w.encoding.name)")
                    if let v = CoreMLWeightTarget.minimumSpecificationVersion(w.encoding, dims: w.dims) { #expect(v <= version) }
                    #expect(report.converted.count == 1)
                }
            }
        }
    }

    @Test("a default block moves to one that divides; a block the user gave is kept in a package not for Core ML")
    func defaultAndGivenBlocks() {
        let m = matmulModel(k: 40, n: 64)
        let (byDefault, report) = WeightConverter(options: .init(format: .int4)).convert(m)
        guard case .linear(let q) = byDefault.graph.initializers[0].encoding else { Issue.record("not linear"); return }
        #expect(q.blockSize == 20 && q.axis == 0)
        #expect(report.converted[0].blockSize == 20 && report.converted[0].note?.hasPrefix("blocks of 20") == true)
        let (given, givenReport) = WeightConverter(options: .init(format: .int4, blockSize: 32)).convert(m)
        guard case .linear(let g) = given.graph.initializers[0].encoding else { Issue.record("not linear"); return }
        #expect(g.blockSize == 32 && givenReport.converted[0].note == nil)
        #expect(CoreMLWeightTarget.newest.problem(given.graph.initializers[0].encoding, dims: [40, 64])?.contains("do not divide") == true)
        #expect(CoreMLWeightTarget.minimumSpecificationVersion(given.graph.initializers[0].encoding, dims: [40, 64]) == nil)
        let (forCoreML, _) = WeightConverter(options: .init(format: .int4, blockSize: 32, coreML: .newest)).convert(m)
        guard case .linear(let c) = forCoreML.graph.initializers[0].encoding else { Issue.record("not linear"); return }
        #expect(c.blockSize == 20)
    }

    @Test("lowest targets: int8 per channel and one table of 1/2/4/6/8 bits from iOS16; blocks, int4, grouped and 3-bit tables from iOS18")
    func minimumTargets() {
        let m = matmulModel(k: 64, n: 64)
        func version(_ options: WeightConverter.Options) -> Int? {
            let w = WeightConverter(options: options).convert(m).0.graph.initializers[0]
            return CoreMLWeightTarget.minimumSpecificationVersion(w.encoding, dims: w.dims)
        }
        #expect(version(.init(format: .int8)) == 7)
        #expect(version(.init(format: .int8, granularity: .perBlock)) == 9)
        #expect(version(.init(format: .int4)) == 9)
        #expect(version(.init(format: .lut4)) == 7)
        #expect(version(.init(format: .lut8)) == 7)
        #expect(version(.init(format: .lut3)) == 9)
        #expect(version(.init(format: .lut4, granularity: .perChannel, blockSize: 16)) == 9)
        #expect(version(.init(format: .fp16)) == 6)
    }

    @Test("auto offers only what the target writes, and per-block candidates take --block-size")
    func autoCandidates() {
        let base = settings(.auto)
        let all = AutoSelection.candidates(compact: true, base: base, blockSize: 16)
        #expect(all.filter { $0.granularity == .perBlock }.allSatisfy { $0.blockSize == 16 })
        let iOS16 = CoreMLWeightTarget(specificationVersion: 7)
        #expect(Set(all.filter(iOS16.offers).map(\.format)) == [.fp32, .fp16, .int8, .lut8, .lut6, .lut4, .lut2])
        #expect(Set(all.filter(CoreMLWeightTarget(specificationVersion: 6).offers).map(\.format)) == [.fp32, .fp16])
        #expect(all.filter(CoreMLWeightTarget.newest.offers).count == all.count)
    }
}
