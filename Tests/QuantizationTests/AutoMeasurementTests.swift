import GraphIR
import Testing
@testable import Quantization

private func matrix(_ name: String, rows: Int, cols: Int, seed: UInt64) -> Tensor {
    var rng = SplitMix(seed: seed)
    let values = (0..<(rows * cols)).map { _ in Float(Double(rng.next() % 20_001) / 10_000 - 1) * 0.05 }
    return Tensor(name: name, dataType: .float, dims: [rows, cols], data: .bytes(LittleEndian.bytes(of: values)))
}

private func mlp(_ tensors: [Tensor]) -> Model {
    let info = { (name: String) in ValueInfo(name: name, type: .tensor(TensorType(elementType: .float, shape: [.value(1), .value(tensors[0].dims[0])]))) }
    var nodes: [Node] = []
    var x = "x"
    for t in tensors {
        nodes.append(Node(opType: "MatMul", inputs: [x, t.name], outputs: [t.name + ".y"]))
        x = t.name + ".y"
    }
    let graph = Graph(name: "g", inputs: [info("x")], outputs: [info(x)], initializers: tensors, nodes: nodes)
    return Model(irVersion: 10, opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph)
}

@Suite struct AutoMeasurementTests {
    @Test("encodedBytes equals what quantize stores, for every linear format, symmetry, scale type and granularity")
    func encodedBytesMatchQuantize() throws {
        let t = matrix("w", rows: 96, cols: 40, seed: 3)
        guard case .bytes(let view) = t.data else { return }
        for format in WeightFormat.allCases where format.isLinear {
            for symmetric in [true, false] {
                for scale in [DataType.float, .float16] {
                    for (g, axis, block) in [(Granularity.perTensor, nil, nil), (.perChannel, 1, nil), (.perBlock, 0, 32), (.perBlock, 0, 7)] as [(Granularity, Int?, Int?)] {
                        let layout = GroupLayout(dims: t.dims, granularity: g, axis: axis, blockSize: block)
                        let q = LinearQuantizer(format: format, symmetric: symmetric, scaleType: scale)
                        let out = try q.quantize(UnsafeRawBufferPointer(view.bytes), layout: layout, name: "w")
                        let stored = out.values.view.count + out.encoding.scale.byteCount + (out.encoding.zeroPoint?.byteCount ?? 0)
                        #expect(q.encodedBytes(count: t.elementCount, layout: layout) == stored, "\(format) \(symmetric) \(scale) \(g) \(block ?? 0)")
                    }
                }
            }
        }
    }

    @Test("sampled measurement predicts the bytes written exactly, and the error of a sample of whole channels")
    func sampledCandidatesPredictBytes() {
        let big = matrix("big", rows: 512, cols: 1024, seed: 9)  // 2^19 elements: measured on a sample
        let model = mlp([big, matrix("small", rows: 1024, cols: 512, seed: 10)])
        for budget in [0.14, 0.3, 0.6] {
            let converter = try! WeightConverter(options: .init(format: .auto, autoBudget: .maxRatio(budget))).resolvingAuto(model)
            let (_, report) = converter.convert(model)
            #expect(converter.options.autoReport?.predictedBytes == report.totals.bytesAfter, "budget \(budget)")
        }
        let job = WeightConverter(options: .init(format: .auto, autoBudget: .maxRatio(0.3))).plan(model).jobs.first { $0.tensor.name == "big" }!
        let sample = WeightConverter.channelSample(job, count: 1 << 16)!
        #expect(sample.dims[0] == 512 && sample.dims[1] < 1024 && sample.elementCount >= 1 << 15)
    }

    @Test("measured output errors become the choice's weights; tensors not measured are scaled alike")
    func calibrateWeights() {
        let model = mlp([matrix("a", rows: 64, cols: 64, seed: 1), matrix("b", rows: 64, cols: 64, seed: 2)])
        let converter = WeightConverter(options: .init(format: .auto, autoBudget: .maxRatio(0.3)))
        var m = converter.measuringAuto(model)!
        let k = m.tensors.firstIndex { $0.name == "a" }!
        let probe = m.probe(k, converter: converter)!
        #expect(probe.format == "int4" && probe.nsr > 0)
        var errors: [Double?] = Array(repeating: nil, count: m.tensorCount), nsrs = errors
        errors[k] = probe.nsr * 1000  // a tensor 1000× as sensitive as its elements say
        nsrs[k] = probe.nsr
        m.calibrate(outputErrors: errors, probeNSR: nsrs)
        #expect(m.calibratedTensors == 1)
        #expect(m.calibratedWeights![k] == 1000)
        // The only measured tensor sets the scale: every other tensor keeps its data-free ratio to it (equal sizes).
        let other = m.tensors.firstIndex { $0.name == "b" }!
        #expect(abs(m.calibratedWeights![other] - 1000) < 1e-6)
    }
}
