import CKernels
import Foundation
import GraphIR

/// Re-encodes a model's float32 weights in a `WeightFormat`, in place in the graph, and reports the error each
/// tensor took. Weights are initializers and Constant-node tensors in the main graph and every subgraph.
/// Tensors are converted in parallel; the graph the model computes is unchanged (an encoded tensor keeps its dtype).
public struct WeightConverter: Sendable {
    /// What to convert weights to, as the command line gives it.
    public struct Options: Sendable, Equatable {
        /// The `--weights` format.
        public var format: WeightFormat
        /// Float tensors with fewer elements stay as they are.
        public var minElements: Int
        /// Linear formats only.
        public var granularity: Granularity
        /// Elements per block (linear formats, default 32) or slices of axis 0 per table (lut formats, default 16).
        public var blockSize: Int
        /// Symmetric levels without a zero point (default: int8 symmetric, narrower formats asymmetric).
        public var symmetric: Bool
        /// float or float16.
        public var scaleType: DataType
        /// Per-layer control: `--exclude`, `--include`, `--config`.
        public var rules: TensorRules
        /// fp16: clamp values beyond ±65504 instead of keeping such a tensor float32 (`--fp16-clamp`).
        public var fp16Clamp: Bool
        /// `--weights auto`: the budget, and once resolved (`resolvingAuto`) the format chosen per tensor place.
        public var autoBudget: AutoBudget?
        var autoChoices: [String: TensorSettings] = [:]
        /// What the automatic choice found (set by `resolvingAuto`).
        public internal(set) var autoReport: AutoReport?
        /// The Core ML target the output is for (`convert -o X.mlpackage`, `convert --for coreml`): every tensor
        /// takes a format that target writes (`CoreMLWeightTarget.settle`); nil for a package not meant for Core ML.
        public var coreML: CoreMLWeightTarget?
        /// Whether `--block-size` was given. A package not meant for Core ML keeps a given block exactly (a last,
        /// partial block where it does not divide the axis); the default block moves to one that divides, so
        /// default packages export to Core ML.
        public var blockSizeGiven: Bool

        /// Options for `format`; each setting left nil takes the format's default.
        public init(format: WeightFormat, minElements: Int? = nil, granularity: Granularity? = nil,
                    blockSize: Int? = nil, symmetric: Bool? = nil, scaleType: DataType? = nil,
                    rules: TensorRules = TensorRules(), fp16Clamp: Bool = false, autoBudget: AutoBudget? = nil,
                    coreML: CoreMLWeightTarget? = nil) {
            self.autoBudget = autoBudget
            self.coreML = coreML
            self.blockSizeGiven = blockSize != nil
            self.format = format
            self.minElements = minElements ?? format.defaultMinElements
            self.granularity = granularity ?? format.defaultGranularity
            self.blockSize = blockSize ?? (format.isPalette ? 16 : 32)
            self.symmetric = symmetric ?? format.defaultSymmetric
            self.scaleType = scaleType ?? format.defaultScaleType
            self.rules = rules
            self.fp16Clamp = fp16Clamp
        }

        /// The settings every tensor starts from (the command line's).
        public var base: TensorSettings {
            TensorSettings(format: format, granularity: granularity, blockSize: blockSize, symmetric: symmetric,
                           scaleType: scaleType, minElements: minElements)
        }

        /// Whose rules settle each tensor's format: the Core ML target; else, unless a block size was given,
        /// iOS18's (which only moves blocks to ones that divide their axis).
        var settlement: CoreMLWeightTarget? { coreML ?? (blockSizeGiven ? nil : .newest) }
    }

    /// Below this signal-to-noise ratio a float16 copy has lost more than rounding costs (values in float16's
    /// subnormal range or flushed to zero, ~70 dB being usual): the tensor stays float32.
    public static let fp16MinimumSNRDB = 40.0

    /// Inputs whose float values drive shapes, indices or quantization parameters: rounding them could change what
    /// the graph computes beyond weight precision, so they keep full precision. (op type, input index or nil = all)
    static let fullPrecisionInputs: [String: Set<Int>?] = [
        "Resize": [1, 2], "Upsample": [1], "Range": nil, "QuantizeLinear": [1, 2], "DequantizeLinear": [1, 2],
        "QLinearConv": nil, "QLinearMatMul": nil, "ConvInteger": nil, "MatMulInteger": nil, "DynamicQuantizeLinear": nil,
        "RandomNormal": nil, "RandomUniform": nil, "Multinomial": nil,
    ]

    /// The same for ONNX Runtime's com.microsoft domain: every input of its quantized ops (their float inputs are
    /// scales, zero points and biases of already-quantized weights) and of its shape-driving ones.
    static let contribFullPrecisionOps: Set<String> = [
        "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLSTM", "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
        "MatMulNBits", "MatMulBnb4", "GatherBlockQuantized", "QAttention", "QEmbedLayerNormalization", "QGemm",
        "QLinearAdd", "QLinearMul", "QLinearConv", "QLinearConcat", "QLinearSigmoid", "QLinearLeakyRelu",
        "QLinearSoftmax", "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearReduceMean", "QLinearWhere",
        "QOrderedAttention", "QOrderedGelu", "QOrderedLayerNormalization", "QOrderedLongformerAttention",
        "QOrderedMatMul", "QuantizeWithOrder", "DequantizeWithOrder", "QuantizeBFP", "DequantizeBFP", "Range",
    ]

    /// The settings every tensor is converted with (resolved by `resolvingAuto` for `--weights auto`).
    public private(set) var options: Options

    /// A converter with `options`.
    public init(options: Options) {
        self.options = options
    }

    /// Returns the converted model and the report.
    public func convert(_ model: Model) -> (Model, ConversionReport) {
        var model = model
        let plan = plan(model)
        let results = Parallel.map(plan.jobs) { [self] job in run(job) }
        var converted: [ConversionReport.Converted] = []
        var kept = plan.kept
        for (job, result) in zip(plan.jobs, results) {
            switch result {
            case .converted(let tensor, let entry):
                apply(tensor, for: job, in: &model)
                converted.append(entry)
            case .kept(let entry):
                kept.append(entry)
            }
        }
        return (model, report(plan, converted: converted, kept: kept))
    }

    /// The weights to convert, in a stable order, and those left alone with the reason.
    public struct Plan: Sendable {
        /// The weights to convert, each with its settings.
        public var jobs: [Job]
        /// The tensors left alone, with the reason.
        public var kept: [ConversionReport.Kept]
        /// All weight bytes of the model before conversion.
        public var bytesBefore: Int
    }

    /// Finds the weights `convert` would convert; `run` each job (in any order, on any thread), `apply` the results,
    /// then build the `report`. A caller can so write each result out as soon as it is ready.
    public func plan(_ model: Model) -> Plan {
        var conflicts: [TensorRuleError] = []
        return plan(model, conflicts: &conflicts)
    }

    /// Checks that the per-layer rules give every tensor of `model` one format; the first conflict is thrown
    /// (`plan` would credit the first rule by name).
    public func validate(_ model: Model) throws(TensorRuleError) {
        var conflicts: [TensorRuleError] = []
        _ = plan(model, conflicts: &conflicts)
        if let first = conflicts.first { throw first }
    }

    /// With `--weights auto` (or a rule that says auto): measures every candidate format on every such tensor, picks
    /// one per tensor under the budget (AutoSelection) and returns a converter that converts with those picks, and
    /// the choice's report. Other converters come back unchanged. A size budget below the smallest the weights can
    /// take is an error.
    public func resolvingAuto(_ model: Model) throws(TensorRuleError) -> WeightConverter {
        guard let measurement = measuringAuto(model) else { return self }
        return try resolvingAuto(measurement, overheadBytes: 0)
    }

    /// The candidates of `--weights auto` measured on every tensor that chooses (the costly part, done once);
    /// nil when no tensor chooses.
    public struct AutoMeasurement: Sendable {
        var plan: Plan
        var autoJobs: [Job]
        var measured: [[AutoSelection.Candidate]]
        var fixed: Int
        /// With calibration: each tensor's measured output sensitivity (`calibrate`), used instead of the
        /// data-free one.
        var calibratedWeights: [Double]?
        /// Tensors whose output sensitivity was measured.
        var calibratedTensors: Int?
        /// Tensors that choose.
        public var tensorCount: Int { autoJobs.count }

        /// The tensors that choose, in order.
        public var tensors: [Tensor] { autoJobs.map(\.tensor) }

        /// Whether tensor k chooses among compressed formats (a weight input of at least 2048 elements): the
        /// tensors calibration measures.
        public func isCompressible(_ k: Int) -> Bool { autoJobs[k].axes != nil }

        /// The candidate whose effect on the outputs calibration measures for tensor k: int4 per block when
        /// offered (the middle of the range: clearly measurable, still small enough to act linearly), else int8
        /// per channel, else the compressed candidate with the least error.
        func probeIndex(_ k: Int) -> Int? {
            let list = measured[k]
            if let i = list.firstIndex(where: { $0.settings.format == .int4 && $0.nsr > 0 }) { return i }
            if let i = list.firstIndex(where: { $0.settings.format == .int8 && $0.nsr > 0 }) { return i }
            return list.indices.filter { list[$0].settings.format.isCompact && list[$0].nsr > 0 }.min { list[$0].nsr < list[$1].nsr }
        }

        /// Tensor k encoded with its probe candidate and decoded back to float32 (little-endian bytes, the
        /// tensor's dims), with the probe's noise-to-signal ratio; nil when it has none.
        public func probe(_ k: Int, converter: WeightConverter) -> (values: ByteView, nsr: Double, format: String)? {
            guard let i = probeIndex(k) else { return nil }
            var job = autoJobs[k]
            job.settings = measured[k][i].settings
            guard case .converted(let encoded, let entry) = converter.run(job) else { return nil }
            let decoded: ByteView?
            switch encoded.encoding {
            case .linear: decoded = LinearCodec.dequantize(encoded)
            case .palette: decoded = PaletteCodec.dequantize(encoded)
            default: decoded = nil
            }
            guard let decoded, let snr = entry.snrDB else { return nil }
            return (decoded, pow(10, -snr / 10), job.settings.format.rawValue)
        }

        /// Takes measured output errors: `outputErrors[k]` is the outputs' noise-to-signal ratio with tensor k at its
        /// probe (nil where not measured). A tensor's cost for a candidate becomes its weight NSR times its measured
        /// sensitivity (output NSR per weight NSR), so the total cost predicts the outputs' NSR: small independent
        /// errors add. Tensors not measured keep their data-free weight, scaled by the median ratio of measured to
        /// data-free weights, so both kinds stay comparable.
        public mutating func calibrate(outputErrors: [Double?], probeNSR: [Double?]) {
            precondition(outputErrors.count == autoJobs.count && probeNSR.count == autoJobs.count)
            var measuredWeights: [Double?] = Array(repeating: nil, count: autoJobs.count)
            var ratios: [Double] = []
            for k in autoJobs.indices {
                guard let e = outputErrors[k], let n = probeNSR[k], n > 0, e.isFinite, e >= 0 else { continue }
                // An unmeasurably small effect still costs something: the floor keeps the hull's order by bytes.
                let w = max(e / n, 1e-12)
                measuredWeights[k] = w
                ratios.append(w / max(autoJobs[k].sensitivity, 1))
            }
            guard !ratios.isEmpty else { return }
            let median = ratios.sorted()[ratios.count / 2]
            calibratedWeights = autoJobs.indices.map { measuredWeights[$0] ?? autoJobs[$0].sensitivity * median }
            calibratedTensors = ratios.count
        }
    }

    /// Measures every candidate of every tensor that chooses (nil when none does).
    public func measuringAuto(_ model: Model) -> AutoMeasurement? {
        let plan = plan(model)
        let autoJobs = plan.jobs.filter { $0.settings.format == .auto }
        guard !autoJobs.isEmpty else { return nil }
        // Tensors outside the choice: their converted size (run once) or their size as they are.
        let others = plan.jobs.filter { $0.settings.format != .auto }
        let otherBytes = Parallel.map(others) { [self] job -> Int in
            if case .converted(_, let entry) = run(job) { return entry.bytesAfter }
            return job.tensor.byteCount
        }
        let fixed = plan.bytesBefore - plan.jobs.reduce(0) { $0 + $1.tensor.byteCount } + otherBytes.reduce(0, +)
        let measured = Parallel.map(autoJobs) { [self] job -> [AutoSelection.Candidate] in
            // Sampling is exact only where every value quantizes (inf/NaN keeps a tensor float32 in any format).
            let finite = job.axes != nil && Self.allFinite(job.tensor)
            return AutoSelection.candidates(compact: job.axes != nil, base: job.settings, blockSize: options.blockSize)
                .filter { options.coreML?.offers($0) ?? true }.compactMap { settings in
                if settings.format == .fp32 { return .init(settings: settings, bytes: job.tensor.byteCount, nsr: 0) }
                var trial = job
                trial.settings = settings
                let n = job.tensor.elementCount
                // A table's k-means over a big tensor costs most of the measuring; its bytes are known exactly
                // (indices and one 2^N float16 table), so its error is estimated on an evenly strided sample.
                if settings.format.isPalette, n > Self.autoSampleElements,
                   let sample = Self.strided(job.tensor, count: Self.autoPaletteSampleElements) {
                    trial.tensor = sample
                    guard case .converted(let fitted, let entry) = run(trial) else { return nil }
                    var nsr = entry.snrDB.map { pow(10, -$0 / 10) } ?? (entry.maxAbsError > 0 ? 1 : 0)
                    // The table fitted to the small sample, measured on a larger one: an unbiased estimate of the
                    // error of a table (a table fitted to the whole tensor is at most this far off).
                    if case .palette(let p) = fitted.encoding, let wide = Self.strided(job.tensor, count: Self.autoPaletteCheckElements),
                       let measured = Self.tableNSR(p, wide) {
                        nsr = measured
                    }
                    let bytes = (n * settings.format.bits + 7) / 8 + (1 << settings.format.bits) * 2
                    return .init(settings: settings, bytes: bytes, nsr: nsr)
                }
                // A linear format's bytes follow from the dims alone, and its error is the sum of its channels':
                // a big tensor's error is measured on every k-th slice along the channel axis (whole channels,
                // so blocks and per-channel scales are exactly those of the full tensor).
                if settings.format.isLinear, n > Self.autoSampleElements, finite,
                   let bytes = linearBytes(trial), let sample = Self.channelSample(job, count: Self.autoSampleElements) {
                    trial.tensor = sample
                    guard case .converted(_, let entry) = run(trial) else { return nil }
                    let nsr = entry.snrDB.map { pow(10, -$0 / 10) } ?? (entry.maxAbsError > 0 ? 1 : 0)
                    return .init(settings: settings, bytes: bytes, nsr: nsr)
                }
                guard case .converted(_, let entry) = run(trial) else { return nil }
                let nsr = entry.snrDB.map { pow(10, -$0 / 10) } ?? (entry.maxAbsError > 0 ? 1 : 0)
                return .init(settings: settings, bytes: entry.bytesAfter, nsr: nsr)
            }
        }
        return AutoMeasurement(plan: plan, autoJobs: autoJobs, measured: measured, fixed: fixed)
    }

    /// Chooses among measured candidates. `overheadBytes`: bytes of the written output that are not weights
    /// (JSON, model description, alignment), taken from a size budget first, so that `--max-size` bounds the whole
    /// output (the caller measures them on a trial write).
    public func resolvingAuto(_ m: AutoMeasurement, overheadBytes: Int) throws(TensorRuleError) -> WeightConverter {
        let (plan, autoJobs, measured, fixed) = (m.plan, m.autoJobs, m.measured, m.fixed)
        let budget = options.autoBudget ?? .maxRatio(0.5)
        guard let (choice, budgetBytes) = AutoSelection.choose(measured, weights: m.calibratedWeights ?? autoJobs.map(\.sensitivity), budget: budget,
                                                               fixedBytes: fixed + overheadBytes, bytesBefore: plan.bytesBefore) else {
            let smallest = fixed + measured.reduce(0) { $0 + ($1.map(\.bytes).min() ?? 0) }
            if overheadBytes > 0 {
                throw TensorRuleError("\(budget) is below the smallest output these weights can take (\(smallest) bytes of weights "
                                      + "and \(overheadBytes) bytes of model description, JSON and alignment)")
            }
            throw TensorRuleError("\(budget) is below the smallest these weights can take (\(smallest) bytes)")
        }
        var resolved = self
        var formats: [String: Int] = [:]
        var predicted = fixed
        var snrWeight = 0.0, snrSum = 0.0
        for (k, job) in autoJobs.enumerated() {
            let pick = measured[k][choice[k]]
            resolved.options.autoChoices[job.place.key] = pick.settings
            formats[pick.settings.format.rawValue, default: 0] += 1
            predicted += pick.bytes
            if pick.nsr > 0 && pick.settings.format != .fp32 {
                snrWeight += Double(job.tensor.elementCount)
                snrSum += Double(job.tensor.elementCount) * -10 * log10(pick.nsr)
            }
        }
        resolved.options.autoReport = AutoReport(
            budget: budget.description, budgetBytes: budgetBytes, overheadBytes: budgetBytes != nil && overheadBytes > 0 ? overheadBytes : nil,
            predictedBytes: predicted,
            predictedWeightedSNRDB: snrWeight > 0 ? snrSum / snrWeight : nil, tensors: autoJobs.filter { $0.axes != nil }.count,
            floatOnlyTensors: autoJobs.filter { $0.axes == nil }.count, formats: formats, calibratedTensors: m.calibratedTensors)
        return resolved
    }

    /// Above this many elements `--weights auto` estimates a linear format's error on a sample of about this size.
    static let autoSampleElements = 1 << 18
    /// Table formats of a tensor above `autoSampleElements` are fitted to a sample of about this size and measured
    /// on one of `autoPaletteCheckElements` (smaller tensors are measured whole).
    /// A table's cost grows with the distinct float16 values it is fitted to, not with the elements: 2^13 elements
    /// keep the lut8 dynamic programme at a few thousand distinct values (a 4 Mi-element matrix has tens of
    /// thousands). A table fitted to a sample fits the whole tensor a little worse than its own k-means would, so
    /// the estimate errs on the safe side.
    static let autoPaletteSampleElements = 1 << 13
    /// Elements a sample-fitted table is measured on.
    static let autoPaletteCheckElements = 1 << 16

    /// The noise-to-signal ratio of `values` (a raw float32 vector) each replaced by its nearest entry of a single
    /// float16 table.
    static func tableNSR(_ p: PaletteQuantization, _ values: Tensor) -> Double? {
        guard p.groupSize == nil, case .bytes(let table) = p.lut.data, case .bytes(let view) = values.data else { return nil }
        let entries = (0..<p.lut.elementCount).map { Float16Codec.float(fromHalf: table.bytes.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }.sorted()
        guard !entries.isEmpty else { return nil }
        var signal = 0.0, noise = 0.0
        for i in 0..<values.elementCount {
            let w = view.bytes.loadUnaligned(fromByteOffset: i * 4, as: Float.self)
            var low = 0, high = entries.count - 1
            while high - low > 1 {
                let mid = (low + high) / 2
                if entries[mid] <= w { low = mid } else { high = mid }
            }
            let d = min(abs(w - entries[low]), abs(w - entries[high]))
            signal += Double(w) * Double(w)
            noise += Double(d) * Double(d)
        }
        return signal > 0 ? noise / signal : nil
    }

    /// Whether a raw float32 tensor holds only finite values.
    static func allFinite(_ tensor: Tensor) -> Bool {
        guard tensor.dataType == .float, case .bytes(let view) = tensor.data, view.count >= tensor.elementCount * 4 else { return false }
        let words = UnsafeRawBufferPointer(rebasing: view.bytes[0..<(tensor.elementCount * 4)])
        var ok = true
        var i = 0
        while i < tensor.elementCount && ok {
            // Exponent bits all ones: inf or NaN.
            if words.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self) & 0x7F80_0000 == 0x7F80_0000 { ok = false }
            i += 1
        }
        return ok
    }

    /// The bytes a linear candidate stores for the whole tensor, as `run` would settle and quantize it; nil when
    /// the candidate is not linear or the tensor has no axes.
    func linearBytes(_ job: Job) -> Int? {
        guard let axes = job.axes else { return nil }
        var settings = job.settings
        if let target = options.settlement { settings = target.settle(settings, dims: job.tensor.dims, reduction: axes.reduction).0 }
        guard settings.format.isLinear else { return nil }
        let dims = job.tensor.dims
        var granularity = settings.granularity
        if granularity == .perBlock && dims[axes.reduction] < settings.blockSize { granularity = .perChannel }
        if granularity == .perChannel && dims.count < 2 { granularity = .perTensor }
        let axis: Int? = granularity == .perChannel ? axes.channel : granularity == .perBlock ? axes.reduction : nil
        let layout = GroupLayout(dims: dims, granularity: granularity, axis: axis, blockSize: settings.blockSize)
        let quantizer = LinearQuantizer(format: settings.format, symmetric: settings.symmetric, scaleType: settings.scaleType)
        return quantizer.encodedBytes(count: job.tensor.elementCount, layout: layout)
    }

    /// Every k-th slice of a raw float32 tensor along its channel axis (about `count` elements, at least 2 slices),
    /// as a tensor of the same rank; nil when the tensor is small or has no channel axis apart from its reduction
    /// axis.
    static func channelSample(_ job: Job, count: Int) -> Tensor? {
        let tensor = job.tensor
        guard let axes = job.axes, axes.channel != axes.reduction, tensor.dataType == .float, case .bytes(let view) = tensor.data,
              view.count >= tensor.elementCount * 4 else { return nil }
        let dims = tensor.dims
        let channels = dims[axes.channel]
        let perChannel = tensor.elementCount / max(channels, 1)
        let keep = max(2, min(channels, count / max(perChannel, 1)))
        guard keep < channels else { return nil }
        let step = (channels + keep - 1) / keep
        let picked = Array(stride(from: 0, to: channels, by: step))
        let outer = dims[..<axes.channel].reduce(1, *), inner = dims[(axes.channel + 1)...].reduce(1, *)
        let out = OwnedBuffer(uninitializedCount: outer * picked.count * inner * 4)
        var o = 0
        for a in 0..<outer {
            for c in picked {
                let from = ((a * channels) + c) * inner * 4
                out.mutableBytes.baseAddress!.advanced(by: o).copyMemory(from: view.bytes.baseAddress!.advanced(by: from), byteCount: inner * 4)
                o += inner * 4
            }
        }
        var sampled = dims
        sampled[axes.channel] = picked.count
        return Tensor(name: tensor.name, dataType: .float, dims: sampled, data: .bytes(out.view))
    }

    /// Every ⌈n / count⌉-th float32 element of a raw tensor, as a vector (deterministic).
    static func strided(_ tensor: Tensor, count: Int) -> Tensor? {
        guard tensor.dataType == .float, case .bytes(let view) = tensor.data, view.count == tensor.elementCount * 4 else { return nil }
        let n = tensor.elementCount
        let step = (n + count - 1) / count
        let m = (n + step - 1) / step
        let out = OwnedBuffer(uninitializedCount: m * 4)
        for k in 0..<m {
            out.mutableBytes.storeBytes(of: view.bytes.loadUnaligned(fromByteOffset: k * step * 4, as: UInt32.self),
                                        toByteOffset: k * 4, as: UInt32.self)
        }
        return Tensor(name: tensor.name, dataType: .float, dims: [m], data: .bytes(out.view))
    }

    private func plan(_ model: Model, conflicts: inout [TensorRuleError]) -> Plan {
        var graph = model.graph
        var jobs: [Job] = []
        var kept: [ConversionReport.Kept] = []
        collect(&graph, path: [], jobs: &jobs, kept: &kept, conflicts: &conflicts)
        return Plan(jobs: jobs, kept: kept, bytesBefore: model.weightBytes)
    }

    /// Converts one weight.
    public func run(_ job: Job) -> Result {
        if job.settings.format == .auto { return .kept(.init(name: job.tensor.name, dtype: job.tensor.dataType.name, shape: job.tensor.dims,
                                                              bytes: job.tensor.byteCount, reason: "auto: not resolved", rule: job.rule)) }
        var settings = job.settings
        var note: String?
        if let target = options.settlement {
            (settings, note) = target.settle(settings, dims: job.tensor.dims, reduction: job.axes?.reduction)
        }
        var result = settings.format.isLinear ? quantize(job.tensor, axes: job.axes!, settings: settings)
            : settings.format.isPalette ? palettize(job.tensor, settings: settings)
            : encode(job.tensor, format: settings.format)
        switch result {
        case .converted(let tensor, var entry):
            entry.rule = job.rule
            entry.note = note
            result = .converted(tensor, entry)
        case .kept(var entry):
            entry.rule = job.rule
            result = .kept(entry)
        }
        return result
    }

    /// Puts a converted tensor where the job found the original.
    public func apply(_ tensor: Tensor, for job: Job, in model: inout Model) {
        apply(tensor, at: job.place, in: &model.graph)
    }

    /// The report for a plan's results: the converted and kept tensors, and totals over every weight of the model.
    public func report(_ plan: Plan, converted: [ConversionReport.Converted], kept: [ConversionReport.Kept]) -> ConversionReport {
        let after = plan.bytesBefore - converted.reduce(0) { $0 + $1.bytesBefore - $1.bytesAfter }
        let snrElements = converted.filter { $0.snrDB != nil }
        let weight = snrElements.reduce(0) { $0 + $1.shape.reduce(1, *) }
        let meanSNR = weight == 0 ? nil : snrElements.reduce(0.0) { $0 + $1.snrDB! * Double($1.shape.reduce(1, *)) } / Double(weight)
        return ConversionReport(
            weights: options.format.rawValue, auto: options.autoReport, converted: converted, kept: kept,
            totals: .init(bytesBefore: plan.bytesBefore, bytesAfter: after,
                          ratio: after == 0 ? 1 : Double(plan.bytesBefore) / Double(after),
                          convertedTensors: converted.count, keptTensors: kept.count,
                          clampedValues: converted.reduce(0) { $0 + $1.clamped }, weightedMeanSNRDB: meanSNR))
    }

    // MARK: - Finding the weights

    /// Where a weight sits: a path of (node index, attribute index, subgraph index) steps from the main graph, then
    /// an initializer index or a Constant node's attribute.
    public struct Place: Sendable {
        var path: [(node: Int, attribute: Int, graph: Int)]
        var slot: Slot
        enum Slot: Sendable { case initializer(Int), constant(node: Int, attribute: Int) }

        /// A key unique within the model (names may repeat across subgraphs).
        var key: String {
            let steps = path.map { "\($0.node).\($0.attribute).\($0.graph)/" }.joined()
            switch slot {
            case .initializer(let i): return steps + "i\(i)"
            case .constant(let n, let a): return steps + "c\(n).\(a)"
            }
        }
    }

    /// One weight to convert: the tensor, where it sits, and the settings it gets.
    public struct Job: Sendable {
        /// The weight as found (a Constant node's tensor takes the node's output name).
        public var tensor: Tensor
        var place: Place
        /// Channel and reduction axes, for linear formats.
        var axes: WeightUses.Axes?
        /// The format and its parameters, and the rule that chose them.
        public var settings: TensorSettings
        /// The rule that chose the settings, as report.json names it (e.g. `config default`).
        public var rule: String
        /// How much this tensor's error counts in `--weights auto`: its elements; an embedding table's row width squared.
        var sensitivity: Double = 1
    }

    /// What `run` made of a job: the converted tensor with its report entry, or the entry of a tensor kept as it was.
    public enum Result: Sendable {
        case converted(Tensor, ConversionReport.Converted)
        case kept(ConversionReport.Kept)
    }

    private func collect(_ graph: inout Graph, path: [(node: Int, attribute: Int, graph: Int)], jobs: inout [Job],
                         kept: inout [ConversionReport.Kept], conflicts: inout [TensorRuleError]) {
        let protected = protectedNames(in: graph)
        let uses = WeightUses(graph: graph)
        var context = Context(protected: protected, uses: uses)
        for (i, tensor) in graph.initializers.enumerated() {
            consider(tensor, Place(path: path, slot: .initializer(i)), &context)
        }
        for (n, node) in graph.nodes.enumerated() {
            for (a, attribute) in node.attributes.enumerated() {
                if node.isConstant, attribute.name == "value", case .tensor(var tensor) = attribute.value {
                    tensor.name = node.outputs.first ?? tensor.name
                    consider(tensor, Place(path: path, slot: .constant(node: n, attribute: a)), &context)
                }
                for (g, var sub) in attribute.value.subgraphs.enumerated() {
                    collect(&sub, path: path + [(n, a, g)], jobs: &jobs, kept: &kept, conflicts: &conflicts)
                }
            }
        }
        jobs += context.jobs
        kept += context.kept
        conflicts += context.conflicts
    }

    /// One graph's collection state.
    private struct Context {
        var protected: [String: String]
        var uses: WeightUses
        var jobs: [Job] = []
        var kept: [ConversionReport.Kept] = []
        var conflicts: [TensorRuleError] = []
    }

    private func consider(_ tensor: Tensor, _ place: Place, _ context: inout Context) {
        guard tensor.encoding.isRaw else { return }
        // Plain fp32 leaves every tensor alone; only a config can still pick tensors then.
        guard options.format != .fp32 || options.rules.config != nil else { return }
        func keep(_ reason: String, _ rule: String) {
            context.kept.append(.init(name: tensor.name, dtype: tensor.dataType.name, shape: tensor.dims, bytes: tensor.byteCount,
                                      reason: reason, rule: rule))
        }
        let readers = context.uses.readers(of: tensor.name)
        let decision: TensorRules.Decision
        do {
            decision = try options.rules.decide(tensor: tensor.name, readers: readers, base: options.base)
        } catch {
            context.conflicts.append(error)
            return
        }
        guard var settings = decision.settings else {
            if tensor.dataType == .float { keep(decision.reason, decision.rule) }
            return
        }
        var rule = decision.rule
        if settings.format == .auto, let chosen = options.autoChoices[place.key] {
            rule = "auto (\(options.autoBudget.map(\.description) ?? "budget"))"
            settings = chosen
            if chosen.format == .fp32 {
                if tensor.dataType == .float { keep("auto: float32 serves the budget best", rule) }
                return
            }
        }
        let format = settings.format
        guard tensor.dataType == .float else {
            if format.isCompact, context.uses.role(of: tensor.name, rank: tensor.dims.count).layout != nil {
                keep("not float32 (\(tensor.dataType.name))", rule)
            }
            return
        }
        if let protectedBy = context.protected[tensor.name] {
            return keep("kept full precision: feeds \(protectedBy)", rule)
        }
        var layout: WeightUses.Axes?
        if format == .auto {
            // Every float tensor takes part; weight inputs of at least 2048 elements may take any format.
            layout = tensor.elementCount >= 2048 ? context.uses.role(of: tensor.name, rank: tensor.dims.count).layout : nil
        } else if format.weightInputsOnly {
            let role = context.uses.role(of: tensor.name, rank: tensor.dims.count)
            if let axes = role.layout {
                layout = axes
            } else if settings.force, !tensor.dims.isEmpty {
                // Forced: channels on the first axis, blocks along the last (a rank-1 tensor has one of each).
                layout = WeightUses.Axes(channel: 0, reduction: tensor.dims.count - 1)
            } else {
                return keep(role.reason, rule)
            }
        }
        if tensor.elementCount < settings.minElements && !settings.force {
            return keep("too small: \(tensor.elementCount) elements < --min-elements \(settings.minElements)", rule)
        }
        // Sensitivity for --weights auto: a weight's elements (each takes part in every inference); an embedding table
        // (Gather data) as a D×D matrix of its row width D, since a token reads one row of it (AutoSelection).
        let embedding = readers.contains { $0.opType == "Gather" } && tensor.dims.count == 2
        let width = Double(tensor.dims.last ?? 1)
        context.jobs.append(Job(tensor: tensor, place: place, axes: layout, settings: settings, rule: rule,
                                sensitivity: embedding ? min(width * width, Double(tensor.elementCount)) : Double(tensor.elementCount)))
    }

    /// Names read by inputs listed in `fullPrecisionInputs`, with a description of the reader.
    private func protectedNames(in graph: Graph) -> [String: String] {
        var names: [String: String] = [:]
        for node in graph.nodes {
            let entry: Set<Int>?
            if node.domain.isEmpty, let listed = Self.fullPrecisionInputs[node.opType] {
                entry = listed
            } else if node.domain == "com.microsoft", Self.contribFullPrecisionOps.contains(node.opType) {
                entry = nil
            } else {
                continue
            }
            for (i, input) in node.inputs.enumerated() where !input.isEmpty && (entry == nil || entry!.contains(i)) {
                names[input] = names[input] ?? "\(node.domain.isEmpty ? "" : node.domain + ".")\(node.opType) input \(i)"
            }
        }
        return names
    }

    // MARK: - Encoding one tensor

    private func encode(_ tensor: Tensor, format: WeightFormat) -> Result {
        func keep(_ reason: String) -> Result {
            .kept(.init(name: tensor.name, dtype: tensor.dataType.name, shape: tensor.dims, bytes: tensor.byteCount, reason: reason))
        }
        guard case .bytes(let view) = tensor.data, let encoding = format.floatEncoding else {
            return keep("not stored as bytes")
        }
        let count = tensor.elementCount
        let output = OwnedBuffer(uninitializedCount: count * 2)
        let stats = Float16Codec.encode(view, into: output)
        if stats.nonFinite > 0 {
            return keep("contains \(stats.nonFinite) inf/NaN value\(stats.nonFinite == 1 ? "" : "s"); kept as float32")
        }
        if stats.clamped > 0 && !options.fp16Clamp {
            // Clamping a BatchNormalization variance of 1e8 to 65504 destroys the model: never without being told.
            return keep("\(stats.clamped) value\(stats.clamped == 1 ? "" : "s") beyond float16's range (±65504); kept as "
                        + "float32 (--fp16-clamp clamps them)")
        }
        let snrDB: Double? = stats.errorEnergy > 0 && stats.signalEnergy > 0
            ? 10 * (stats.signalEnergy / stats.errorEnergy).log10 : nil
        // An error with no measurable energy means values so small their squares underflow: float16 flushes them.
        if stats.clamped == 0, stats.maxAbsError > 0, snrDB.map({ $0 < Self.fp16MinimumSNRDB }) ?? true {
            let kept = snrDB.map { "only \(String(format: "%.1f", $0)) dB SNR" } ?? "nothing of these values"
            return keep("float16 would keep \(kept) (values below its normal range; under \(Int(Self.fp16MinimumSNRDB)) dB SNR); "
                        + "kept as float32")
        }
        var encoded = tensor
        encoded.data = .bytes(output.view)
        encoded.encoding = encoding
        encoded.location = .embedded
        return .converted(encoded, .init(name: tensor.name, dtype: tensor.dataType.name, shape: tensor.dims,
                                         encoding: encoding.name, bytesBefore: tensor.byteCount, bytesAfter: count * 2,
                                         clamped: stats.clamped, maxAbsError: stats.maxAbsError, snrDB: snrDB))
    }

    private func quantize(_ tensor: Tensor, axes: WeightUses.Axes, settings: TensorSettings) -> Result {
        func keep(_ reason: String) -> Result {
            .kept(.init(name: tensor.name, dtype: tensor.dataType.name, shape: tensor.dims, bytes: tensor.byteCount,
                        reason: reason))
        }
        guard case .bytes(let view) = tensor.data else { return keep("not stored as bytes") }
        let count = tensor.elementCount
        var granularity = settings.granularity
        // A reduction axis shorter than one block (a first Conv layer's 3 input channels) would give blocks of a few
        // elements, each with its own scale: per-channel scales are then smaller and as accurate.
        if granularity == .perBlock && tensor.dims[axes.reduction] < settings.blockSize { granularity = .perChannel }
        // Per-channel scales on a vector (a forced rank-1 tensor) would be one scale per element.
        if granularity == .perChannel && tensor.dims.count < 2 { granularity = .perTensor }
        let axis: Int? = granularity == .perChannel ? axes.channel : granularity == .perBlock ? axes.reduction : nil
        let layout = GroupLayout(dims: tensor.dims, granularity: granularity, axis: axis, blockSize: settings.blockSize)
        let quantizer = LinearQuantizer(format: settings.format, symmetric: settings.symmetric, scaleType: settings.scaleType)
        let outcome: LinearQuantizer.Outcome
        do {
            outcome = try quantizer.quantize(UnsafeRawBufferPointer(rebasing: view.bytes[0..<count * 4]), layout: layout,
                                             name: tensor.name)
        } catch {
            return keep("contains \(error.count) inf/NaN value\(error.count == 1 ? "" : "s"); kept as float32")
        }
        var encoded = tensor
        encoded.data = .bytes(outcome.values.view)
        encoded.encoding = .linear(outcome.encoding)
        encoded.location = .embedded
        let q = outcome.encoding
        let after = outcome.values.view.count + q.scale.byteCount + (q.zeroPoint?.byteCount ?? 0)
        func snr(_ error: Double) -> Double? {
            error > 0 && outcome.signalEnergy > 0 ? 10 * (outcome.signalEnergy / error).log10 : nil
        }
        var entry = ConversionReport.Converted(
            name: tensor.name, dtype: tensor.dataType.name, shape: tensor.dims, encoding: "linear",
            bytesBefore: tensor.byteCount, bytesAfter: after, clamped: 0, maxAbsError: outcome.maxAbsError,
            snrDB: snr(outcome.errorEnergy))
        entry.storage = q.storage.name
        entry.granularity = granularity.rawValue
        entry.axis = q.axis
        entry.blockSize = q.blockSize
        entry.symmetric = settings.symmetric
        entry.scaleType = q.scale.dataType.name
        if settings.format.searchesClipping { entry.rtnSNRDB = snr(outcome.roundToNearestErrorEnergy) }
        return .converted(encoded, entry)
    }

    private func palettize(_ tensor: Tensor, settings: TensorSettings) -> Result {
        func keep(_ reason: String) -> Result {
            .kept(.init(name: tensor.name, dtype: tensor.dataType.name, shape: tensor.dims, bytes: tensor.byteCount, reason: reason))
        }
        guard case .bytes(let view) = tensor.data else { return keep("not stored as bytes") }
        let count = tensor.elementCount
        // Groups of slices along axis 0 share a table when they divide it (Core ML needs whole groups).
        var group: Int?
        if settings.granularity != .perTensor, let rows = tensor.dims.first, rows > settings.blockSize,
           rows % settings.blockSize == 0 {
            group = settings.blockSize
        }
        let palettizer = Palettizer(bits: settings.format.bits, groupSize: group)
        let outcome: Palettizer.Outcome
        do {
            outcome = try palettizer.palettize(UnsafeRawBufferPointer(rebasing: view.bytes[0..<count * 4]), dims: tensor.dims,
                                               name: tensor.name)
        } catch {
            switch error {
            case .nonFinite(let n): return keep("contains \(n) inf/NaN value\(n == 1 ? "" : "s"); kept as float32")
            case .beyondHalf(let n): return keep("\(n) value\(n == 1 ? "" : "s") beyond float16's range (±65504), which a float16 table cannot hold; kept as float32")
            }
        }
        var encoded = tensor
        encoded.data = .bytes(outcome.indices.view)
        encoded.encoding = .palette(outcome.encoding)
        encoded.location = .embedded
        let after = outcome.indices.view.count + outcome.encoding.lut.byteCount
        let snr: Double? = outcome.errorEnergy > 0 && outcome.signalEnergy > 0
            ? 10 * (outcome.signalEnergy / outcome.errorEnergy).log10 : nil
        var entry = ConversionReport.Converted(
            name: tensor.name, dtype: tensor.dataType.name, shape: tensor.dims, encoding: "lut",
            bytesBefore: tensor.byteCount, bytesAfter: after, clamped: 0, maxAbsError: outcome.maxAbsError, snrDB: snr)
        entry.storage = settings.format.rawValue
        entry.granularity = group == nil ? Granularity.perTensor.rawValue : Granularity.perChannel.rawValue
        entry.blockSize = group
        return .converted(encoded, entry)
    }

    private func apply(_ tensor: Tensor, at place: Place, in graph: inout Graph) {
        guard let step = place.path.first else {
            switch place.slot {
            case .initializer(let i):
                graph.initializers[i] = tensor
            case .constant(let n, let a):
                var stored = tensor
                if case .tensor(let original) = graph.nodes[n].attributes[a].value { stored.name = original.name }
                graph.nodes[n].attributes[a].value = .tensor(stored)
            }
            return
        }
        let rest = Place(path: Array(place.path.dropFirst()), slot: place.slot)
        switch graph.nodes[step.node].attributes[step.attribute].value {
        case .graph(var sub):
            apply(tensor, at: rest, in: &sub)
            graph.nodes[step.node].attributes[step.attribute].value = .graph(sub)
        case .graphs(var subs):
            apply(tensor, at: rest, in: &subs[step.graph])
            graph.nodes[step.node].attributes[step.attribute].value = .graphs(subs)
        default:
            break
        }
    }
}

private extension Model {
    /// Total bytes of the model's dense weights: initializers and Constant values in every graph.
    var weightBytes: Int {
        var total = 0
        graph.forEachGraph { g, _ in
            for t in g.initializers { total += t.byteCount }
            for node in g.nodes where node.isConstant { total += node.constantTensor?.byteCount ?? 0 }
        }
        return total
    }
}

private extension Double {
    var log10: Double { Foundation_log10(self) }
}

#if canImport(Glibc)
import Glibc
private func Foundation_log10(_ x: Double) -> Double { Glibc.log10(x) }
#elseif canImport(Darwin)
import Darwin
private func Foundation_log10(_ x: Double) -> Double { Darwin.log10(x) }
#endif
