import GraphIR
import Profiles

/// The cost model (docs/AUDIT.md): a node's FLOPs and the bytes it reads and writes, from shapes; its time on a unit
/// is the roofline max(FLOPs / peak FLOP/s, bytes / bandwidth) with the chip's numbers from the unit's profile. A
/// switch between units costs the transfer latency plus writing and reading the tensors handed over. Everything here
/// is an estimate: peaks, not measurements.
public struct CostModel: Sendable {
    /// One unit's numbers for the chosen chip.
    public struct UnitNumbers: Sendable, Equatable {
        /// Peak throughput, in GFLOP/s.
        public var gflops: Double
        /// Memory bandwidth, in GB/s.
        public var bandwidthGBps: Double
        /// Bytes a float32 tensor element occupies on the unit (2 on float16 units).
        public var floatBytes: Double
    }

    /// The chip the numbers are for.
    public var chip: String
    /// Each allowed unit's numbers.
    public var units: [ComputeUnit: UnitNumbers]
    /// Fixed cost of one switch between units, in seconds.
    public var transferLatency: Double
    /// The longest run, in nodes, that transition smoothing considers moving.
    public var maxRunNodes: Int

    /// A cost model from explicit numbers.
    public init(chip: String, units: [ComputeUnit: UnitNumbers], transferLatency: Double, maxRunNodes: Int) {
        self.chip = chip
        self.units = units
        self.transferLatency = transferLatency
        self.maxRunNodes = maxRunNodes
    }

    /// The chip's numbers from each unit profile.
    public init(chip: String, profiles: [ComputeUnit: Profile]) throws(ProfileError) {
        var units: [ComputeUnit: UnitNumbers] = [:]
        for (unit, profile) in profiles {
            guard let cost = profile.chips[chip] else {
                let known = profile.chipNames.joined(separator: ", ")
                throw ProfileError(origin: profile.file ?? profile.name,
                                   "no cost numbers for chip '\(chip)' (known: \(known.isEmpty ? "none" : known))")
            }
            units[unit] = UnitNumbers(gflops: cost.gflops, bandwidthGBps: cost.bandwidthGBps,
                                      floatBytes: profile.precision?.compute == "float32" ? 4 : 2)
        }
        let transfer = profiles.values.compactMap(\.transfer).first
        self.init(chip: chip, units: units, transferLatency: (transfer?.latencyMicroseconds ?? 100) / 1e6,
                  maxRunNodes: transfer?.maxRunNodes ?? 4)
    }

    /// Seconds a node takes on a unit, or nil when neither its FLOPs nor its bytes are known.
    func seconds(_ work: Work, on unit: ComputeUnit) -> Double? {
        guard let n = units[unit] else { return nil }
        let compute = work.flops.map { $0 / (n.gflops * 1e9) }
        let memory = work.bytes(floatBytes: n.floatBytes).map { $0 / (n.bandwidthGBps * 1e9) }
        switch (compute, memory) {
        case let (c?, m?): return max(c, m)
        case let (c?, nil): return c
        case let (nil, m?): return m
        default: return nil
        }
    }

    /// Seconds to hand a tensor from one unit to another: written by one, read by the other.
    func transferSeconds(_ tensor: TensorSize?, from: ComputeUnit, to: ComputeUnit) -> Double {
        guard let tensor, let a = units[from], let b = units[to] else { return 0 }
        let bytes = tensor.bytes(floatBytes: max(a.floatBytes, b.floatBytes))
        return 2 * bytes / (min(a.bandwidthGBps, b.bandwidthGBps) * 1e9)
    }
}

/// A tensor's size: float elements (whose bytes depend on the unit's precision) and other bytes.
struct TensorSize: Equatable {
    var floatElements: Double
    var otherBytes: Double

    init?(_ type: ValueType?) {
        guard case .tensor(let t)? = type, let count = t.elementCount, let dtype = t.elementType else { return nil }
        if dtype == .float || dtype == .float16 {
            floatElements = Double(count)
            otherBytes = 0
        } else {
            floatElements = 0
            otherBytes = Double(dtype.storageBytes(elements: count) ?? count)
        }
    }

    func bytes(floatBytes: Double) -> Double { floatElements * floatBytes + otherBytes }
}

/// A node's work: FLOPs and the tensors it reads and writes (nil when unknown).
struct Work: Equatable {
    var flops: Double?
    var tensors: [TensorSize]?

    func bytes(floatBytes: Double) -> Double? { tensors.map { $0.reduce(0) { $0 + $1.bytes(floatBytes: floatBytes) } } }

    /// Ops that move or relabel data and compute nothing.
    static let dataMovement: Set<String> = [
        "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Concat", "Split", "Slice", "Gather",
        "GatherElements", "GatherND", "Cast", "Shape", "Constant", "Expand", "Tile", "Pad", "DepthToSpace",
        "SpaceToDepth", "ScatterND", "ScatterElements", "ConstantOfShape", "Dropout",
    ]

    /// FLOPs per output element of element-wise and normalisation ops (1 for those not listed).
    static let flopsPerElement: [String: Double] = [
        "Softmax": 5, "LayerNormalization": 8, "BatchNormalization": 2, "InstanceNormalization": 8,
        "GroupNormalization": 8, "Erf": 8, "Gelu": 8, "Sigmoid": 4, "Tanh": 4, "Exp": 4, "Log": 4, "Pow": 4,
        "Softplus": 4, "Elu": 2, "HardSigmoid": 2, "Clip": 2,
    ]

    init(flops: Double?, tensors: [TensorSize]?) {
        self.flops = flops
        self.tensors = tensors
    }

    /// Estimates a node's work from the types `facts` know.
    init(_ f: NodeFacts) {
        let values = f.inputs.filter(\.isPresent) + f.outputs.filter(\.isPresent)
        let sizes = values.map { TensorSize($0.type) }
        tensors = sizes.contains(nil) ? nil : sizes.compactMap { $0 }
        flops = Self.flops(f)
    }

    private static func elements(_ v: NodeFacts.Value?) -> Double? {
        v?.tensor?.elementCount.map(Double.init)
    }

    private static func constantCount(_ f: NodeFacts, _ index: Int) -> (count: Double, first: Int)? {
        guard index < f.inputs.count, let dims = f.inputs[index].tensor?.staticDims, let first = dims.first,
              let count = Tensor.elementCount(of: dims) else { return nil }
        return (Double(count), first)
    }

    static func flops(_ f: NodeFacts) -> Double? {
        let op = f.node.opType
        if dataMovement.contains(op) { return 0 }
        let out = elements(f.outputs.first)
        switch op {
        case "Conv":
            // Each output element is a dot product over (C_in / group) × kernel: W.count / C_out multiply-adds.
            guard let out, let w = constantCount(f, 1), w.first > 0 else { return nil }
            return 2 * out * w.count / Double(w.first)
        case "ConvTranspose":
            guard let input = elements(f.inputs.first), let w = constantCount(f, 1), w.first > 0 else { return nil }
            return 2 * input * w.count / Double(w.first)
        case "MatMul", "Gemm":
            guard let out else { return nil }
            let transA = f.ints("transA")?.first == 1
            if let a = f.inputs.first?.tensor?.staticDims, a.count >= 1 {
                let k = (op == "Gemm" && transA) ? a[0] : a[a.count - 1]
                return 2 * out * Double(k)
            }
            if let b = f.inputs.count > 1 ? f.inputs[1].tensor?.staticDims : nil, b.count >= 2 {
                let transB = f.ints("transB")?.first == 1
                let k = (op == "Gemm" && transB) ? b[b.count - 1] : b[b.count - 2]
                return 2 * out * Double(k)
            }
            return nil
        case "LSTM", "GRU", "RNN":
            // Per step and batch row: the gates' matrix products with W (input) and R (recurrence).
            guard let x = f.inputs.first?.tensor?.staticDims, x.count == 3,
                  let w = constantCount(f, 1), let r = constantCount(f, 2) else { return nil }
            return 2 * Double(x[0]) * Double(x[1]) * (w.count + r.count)
        case "AveragePool", "MaxPool":
            guard let out else { return nil }
            return out * Double((f.ints("kernel_shape") ?? [1]).reduce(1, *))
        case "GlobalAveragePool", "GlobalMaxPool", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
             "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp", "ArgMax", "ArgMin":
            return elements(f.inputs.first)
        default:
            // Element-wise: one result per output element (the largest non-constant input when the output shape is
            // unknown; constants such as a bias are usually broadcast, so they say nothing about the size).
            let count = out ?? f.inputs.filter { $0.isPresent && !$0.constant }.compactMap { elements($0) }.max()
            return count.map { $0 * (flopsPerElement[op] ?? 1) }
        }
    }
}
