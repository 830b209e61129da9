import GraphIR

/// W8A8 (`--activations int8`): the float inputs of `conv`, `linear` and `matmul` pass through an iOS17 `quantize` →
/// `dequantize` pair (iOS17/quantization_ops.py) with a per-tensor int8 scale, symmetric (zero point 0), found by
/// calibration. Core ML reads such a pair in front of a layer with int8 weights as an int8 × int8 layer (the Neural
/// Engine's int8 path on A17 Pro and M4); elsewhere it computes the same values in float. Not a pipeline pass: the
/// sites and scales come from a calibration run, so the conversion calls `insert` after the MIL passes.
public enum ActivationQuantization {
    /// The op types whose activation inputs are quantized, with the parameters that may carry an activation.
    public static let layerInputs: [String: [String]] = ["conv": ["x"], "linear": ["x"], "matmul": ["x", "y"]]

    /// One activation input of a layer: the op, the parameter, and the variable it reads.
    public struct Site: Sendable, Hashable, CustomStringConvertible {
        /// The layer's op name.
        public var op: String
        /// Its MIL type (`conv`, `linear`, `matmul`).
        public var opType: String
        /// The parameter (`x`, or `y` of a matmul of two activations).
        public var parameter: String
        /// The variable the parameter reads.
        public var variable: String
        /// The ONNX node the layer came from.
        public var source: String?

        /// `op.parameter`, with the ONNX node when known.
        public var description: String { "\(opType) '\(op)'.\(parameter)" + (source.map { " (ONNX node '\($0)')" } ?? "") }
    }

    /// Every float activation input of a conv, linear or matmul in `program`, in program order. Inputs computed
    /// from constants alone (weights, constexpr outputs) are weights, not activations.
    public static func sites(in program: MILProgram) -> [Site] {
        var constant = Set<String>()
        let types = program.types()
        var sites: [Site] = []
        for op in program.operations {
            let vars = op.usedVariables
            if op.type == "const" || (op.type.hasPrefix("constexpr_")) || (!vars.isEmpty && vars.allSatisfy(constant.contains)) {
                for o in op.outputs { constant.insert(o.name) }
                continue
            }
            guard let params = layerInputs[op.type] else { continue }
            for p in params {
                guard let v = op.arguments(p)?.first?.variableName, !constant.contains(v),
                      let t = types[v], t.dtype.isFloat, t.rank >= 1 else { continue }
                sites.append(Site(op: op.name, opType: op.type, parameter: p, variable: v, source: op.source))
            }
        }
        return sites
    }

    /// A site and its scale: values are quantized to round(x / scale) clipped to [−128, 127].
    public struct Range: Sendable, Hashable {
        /// Where.
        public var site: Site
        /// The int8 step (positive, finite).
        public var scale: Float

        /// A range for `site`.
        public init(site: Site, scale: Float) {
            self.site = site
            self.scale = scale
        }
    }

    /// Why the pairs cannot be inserted.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// What is wrong.
        public var message: String
        /// The message.
        public var description: String { message }
    }

    /// Inserts a quantize → dequantize pair in front of each range's site (the layer then reads the dequantized
    /// values); the program must target iOS17 or later. The caller verifies the program afterwards.
    public static func insert(_ ranges: [Range], into program: MILProgram) throws(Failure) {
        guard !ranges.isEmpty else { return }
        guard program.target >= .iOS17 else {
            throw Failure(message: "int8 activations (quantize/dequantize) need iOS17 or later; the program targets \(program.target)")
        }
        let types = program.types()
        var names = Set(program.inputs.map(\.name))
        for op in program.operations {
            names.insert(op.name)
            for o in op.outputs { names.insert(o.name) }
        }
        func fresh(_ base: String) -> String {
            var candidate = base, k = 1
            while names.contains(candidate) {
                candidate = "\(base)_\(k)"
                k += 1
            }
            names.insert(candidate)
            return candidate
        }
        let bySite = Dictionary(ranges.map { ($0.site, $0) }, uniquingKeysWith: { a, _ in a })
        var rewritten: [MILOperation] = []
        rewritten.reserveCapacity(program.operations.count + 4 * ranges.count)
        for var op in program.operations {
            if layerInputs[op.type] != nil {
                for p in layerInputs[op.type]! {
                    guard let v = op.arguments(p)?.first?.variableName,
                          let range = bySite[Site(op: op.name, opType: op.type, parameter: p, variable: v, source: op.source)] else { continue }
                    guard let type = types[v], type.dtype.isFloat else {
                        throw Failure(message: "\(range.site): '\(v)' is not a float tensor")
                    }
                    guard range.scale.isFinite, range.scale > 0 else {
                        throw Failure(message: "\(range.site): scale \(range.scale) is not positive and finite")
                    }
                    let base = "\(op.name)_\(p)"
                    let scaleName = fresh(base + "_scale"), zeroName = fresh(base + "_zero_point")
                    let quantized = fresh(base + "_quantized"), dequantized = fresh(base + "_dequantized")
                    let scale = MILConst.float(range.scale, type.dtype)
                    let zero = MILConst(MILTensorType(.int8, []), .bytes(ByteView(copying: [0])))
                    rewritten.append(MILOperation(type: "const", name: scaleName, inputs: [], outputs: [MILVar(name: scaleName, type: scale.type)],
                                                  value: scale, source: op.source))
                    rewritten.append(MILOperation(type: "const", name: zeroName, inputs: [], outputs: [MILVar(name: zeroName, type: zero.type)],
                                                  value: zero, source: op.source))
                    let dtypeName = fresh(quantized + "_output_dtype")
                    let dtype = MILConst.scalar("int8")
                    rewritten.append(MILOperation(type: "const", name: dtypeName, inputs: [], outputs: [MILVar(name: dtypeName, type: dtype.type)],
                                                  value: dtype, source: op.source))
                    rewritten.append(MILOperation(type: "quantize", name: quantized, inputs: [
                        ("input", [.variable(v)]), ("scale", [.variable(scaleName)]), ("zero_point", [.variable(zeroName)]),
                        ("output_dtype", [.variable(dtypeName)]),
                    ], outputs: [MILVar(name: quantized, type: type.with(dtype: .int8))], source: op.source))
                    rewritten.append(MILOperation(type: "dequantize", name: dequantized, inputs: [
                        ("input", [.variable(quantized)]), ("scale", [.variable(scaleName)]), ("zero_point", [.variable(zeroName)]),
                    ], outputs: [MILVar(name: dequantized, type: type)], source: op.source))
                    if let k = op.inputs.firstIndex(where: { $0.name == p }) { op.inputs[k].arguments = [.variable(dequantized)] }
                }
            }
            rewritten.append(op)
        }
        program.operations = rewritten
    }
}
