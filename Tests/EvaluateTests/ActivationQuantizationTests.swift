import GraphIR
@testable import MIL
import Testing
@testable import Evaluate

/// x [rows, 8] · W [4, 8]ᵀ through a `linear`; `ignoredInput`: an input column W does not read.
private func linearProgram(target: DeploymentTarget = .iOS17, rows: Int = 16, ignoredInput: Int? = nil) -> MILProgram {
    let x = MILVar(name: "x", type: MILTensorType(.fp32, [rows, 8]))
    var ops: [MILOperation] = []
    let w = MILConst.floats((0..<32).map { $0 % 8 == ignoredInput ? 0 : Float(($0 * 7) % 11) / 11 - 0.5 }, .fp32, shape: [4, 8])
    ops.append(MILOperation(type: "const", name: "w", inputs: [], outputs: [MILVar(name: "w", type: w.type)], value: w))
    ops.append(MILOperation(type: "linear", name: "fc", inputs: [("x", [.variable("x")]), ("weight", [.variable("w")])],
                            outputs: [MILVar(name: "y", type: MILTensorType(.fp32, [rows, 4]))], source: "Gemm_0"))
    return MILProgram(target: target, inputs: [x], operations: ops, outputs: ["y"])
}

private func samples(_ n: Int, rows: Int = 16, outlier: Float? = nil) -> [[String: EvalTensor]] {
    var g = RandomInputs.Generator(seed: 5)
    return (0..<n).map { _ in
        var v = (0..<(rows * 8)).map { _ in Float(Double(g.next() >> 40) / Double(1 << 24)) * 2 - 1 }
        if let outlier { v[3] = outlier }
        return ["x": EvalTensor(floats: v, shape: [rows, 8])]
    }
}

@Suite("Activation quantization")
struct ActivationQuantizationTests {
    @Test("quantize rounds half to even and clips to int8; dequantize inverts it; uint8 with a zero point, per axis")
    func kernels() throws {
        let q = try Kernels.quantization["quantize"]!(OpArgumentsBuilder.make("quantize", [
            "input": EvalTensor(floats: [0.5, 1.5, 2.5, -0.5, 1000, -1000], shape: [6]), "scale": EvalTensor(floats: [1], shape: []),
            "output_dtype": EvalTensor(.string, [], .string("int8")),
        ]))[0]
        #expect(q.dtype == .int8 && q.ints == [0, 2, 2, 0, 127, -128])
        let d = try Kernels.quantization["dequantize"]!(OpArgumentsBuilder.make("dequantize", [
            "input": q, "scale": EvalTensor(floats: [0.5], shape: []),
        ]))[0]
        #expect(d.floats == [0, 1, 1, 0, 63.5, -64])
        let u = try Kernels.quantization["quantize"]!(OpArgumentsBuilder.make("quantize", [
            "input": EvalTensor(floats: [0, 1, 2, 3], shape: [2, 2]), "scale": EvalTensor(floats: [1, 0.5], shape: [2]),
            "zero_point": EvalTensor(ints: [10, 128], shape: [2], dtype: .uint8), "axis": EvalTensor(ints: [1], shape: []),
            "output_dtype": EvalTensor(.string, [], .string("uint8")),
        ]))[0]
        #expect(u.dtype == .uint8 && u.ints == [10, 130, 12, 134])
    }

    @Test("the MIL definitions: iOS17 and later, zero point of the output type, an axis exactly with vector scales")
    func definitions() throws {
        func infer(_ type: String, _ inputs: [(String, MILArgument)], _ types: [String: MILTensorType], target: DeploymentTarget = .iOS17) throws -> [MILTensorType] {
            let op = MILOperation(type: type, name: "o", inputs: inputs.map { ($0.0, [$0.1]) }, outputs: [])
            return try MILOpRegistry.definitions[type]!.outputTypes(MILOpContext(op: op, target: target, types: types, constants: [:]))
        }
        let x = MILTensorType(.fp16, [2, 3])
        let zero = MILConst(MILTensorType(.int8, []), .bytes(ByteView(copying: [0])))
        let q: [(String, MILArgument)] = [("input", .variable("x")), ("scale", .value(.float(0.1, .fp16))), ("zero_point", .value(zero)),
                                          ("output_dtype", .value(.scalar("int8")))]
        #expect(try infer("quantize", q, ["x": x]) == [MILTensorType(.int8, [2, 3])])
        #expect(throws: MILTypeError.self) { try infer("quantize", q, ["x": x], target: .iOS16) }
        #expect(throws: MILTypeError.self) {
            try infer("quantize", [("input", .variable("x")), ("scale", .value(.float(0.1, .fp16))), ("zero_point", .value(zero)),
                                   ("output_dtype", .value(.scalar("uint8")))], ["x": x])
        }
        #expect(throws: MILTypeError.self) {  // a scalar scale takes no axis
            try infer("quantize", q + [("axis", .value(.scalar(Int32(1))))], ["x": x])
        }
        #expect(throws: MILTypeError.self) {  // scale and input are both SrcT
            try infer("quantize", [("input", .variable("x")), ("scale", .value(.float(0.1, .fp32))), ("output_dtype", .value(.scalar("int8")))], ["x": x])
        }
        let qi = MILTensorType(.int8, [2, 3])
        #expect(try infer("dequantize", [("input", .variable("q")), ("scale", .value(.floats([1, 2, 3], .fp32, shape: [3]))),
                                         ("axis", .value(.scalar(Int32(1))))], ["q": qi]) == [MILTensorType(.fp32, [2, 3])])
        #expect(throws: MILTypeError.self) {  // a vector of the wrong length
            try infer("dequantize", [("input", .variable("q")), ("scale", .value(.floats([1, 2], .fp32, shape: [2]))),
                                     ("axis", .value(.scalar(Int32(1))))], ["q": qi])
        }
    }

    @Test("inserted pairs verify, and the program computes what the evaluator's fake quantization computes")
    func insertMatchesFakeQuantization() throws {
        let program = linearProgram()
        let sites = ActivationQuantization.sites(in: program)
        #expect(sites.map(\.description) == ["linear 'fc'.x (ONNX node 'Gemm_0')"])
        let plain = try Evaluator(program)
        let input = samples(1)[0]
        let fake = try plain.run(input, fakeQuantizing: ["fc": ["x": 0.01]])[0].value.floats
        try ActivationQuantization.insert([.init(site: sites[0], scale: 0.01)], into: program)
        try MILVerifier.verify(program)
        #expect(program.histogram["quantize"] == 1 && program.histogram["dequantize"] == 1)
        let real = try Evaluator(program).run(input)[0].value.floats
        #expect(real == fake)
        #expect(throws: ActivationQuantization.Failure.self) {
            let old = linearProgram(target: .iOS16)
            try ActivationQuantization.insert([.init(site: ActivationQuantization.sites(in: old)[0], scale: 0.01)], into: old)
        }
    }

    @Test("calibration clips a rare outlier, and keeps a layer in float when quantizing it costs the floor")
    func calibration() throws {
        var h = AbsHistogram()
        var values = (0..<10_000).map { Float($0 % 200) / 200 - 0.5 }
        values[0] = 40
        h.add(EvalTensor(floats: values, shape: [values.count]))
        #expect(h.bestScale() < 40 / 127 && h.bestScale() > 0.4 / 127)
        // Small values beside a huge one in an input the layer ignores: the clip cannot drop below 1/64 of it, so
        // every value that matters rounds to 0 and the site stays float.
        let result = try ActivationCalibration.calibrate(linearProgram(ignoredInput: 3), samples: samples(2, outlier: 3000), minimumCosine: 0.999)
        #expect(result.kept.count == 1 && result.ranges.isEmpty && result.cosine == 1)
        let easy = try ActivationCalibration.calibrate(linearProgram(), samples: samples(2), minimumCosine: 0.999)
        #expect(easy.kept.isEmpty && easy.ranges.count == 1 && easy.cosine >= 0.999)
    }

    @Test("calibration data: N samples on a leading axis; a missing input, a wrong kind and a wrong shape name the file and the input")
    func calibrationData() throws {
        let inputs = [CalibrationInput(name: "x", kind: .float, dims: [nil, 8])]
        let data = CalibrationData(file: "d.npz", arrays: ["x": EvalTensor(floats: Array(repeating: 1, count: 48), shape: [3, 2, 8])])
        let (s, shapes) = try data.samples(for: inputs, model: "m.onnx")
        #expect(s.count == 3 && shapes["x"] == [2, 8])
        func message(_ d: CalibrationData) -> String {
            do { _ = try d.samples(for: inputs, model: "m.onnx"); return "" } catch { return error.message }
        }
        #expect(message(CalibrationData(file: "d.npz", arrays: [:])).hasPrefix("d.npz: no array for input 'x'"))
        #expect(message(CalibrationData(file: "d.npz", arrays: ["x": EvalTensor(ints: [1, 2], shape: [1, 2])])).contains("'x' holds int32 values"))
        #expect(message(CalibrationData(file: "d.npz", arrays: ["x": EvalTensor(floats: [1], shape: [1, 1])])).contains("'x' has shape [1, 1]"))
    }
}

/// Arguments for one kernel call outside a program.
enum OpArgumentsBuilder {
    static func make(_ type: String, _ values: [String: EvalTensor]) -> OpArguments {
        var a = OpArguments(op: MILOperation(type: type, name: "o", inputs: [], outputs: []))
        for (k, v) in values { a.values[k] = [v] }
        return a
    }
}
