import CKernels
import GraphIR

/// Re-encodes a model's float32 weights in a `WeightFormat`, in place in the graph, and reports the error each
/// tensor took. Weights are initializers and Constant-node tensors in the main graph and every subgraph.
/// Tensors are converted in parallel; the graph the model computes is unchanged (an encoded tensor keeps its dtype).
public struct WeightConverter: Sendable {
    public struct Options: Sendable, Equatable {
        public var format: WeightFormat
        /// Float tensors with fewer elements stay as they are.
        public var minElements: Int
        /// Linear formats only.
        public var granularity: Granularity
        public var blockSize: Int
        public var symmetric: Bool
        /// float or float16.
        public var scaleType: DataType

        public init(format: WeightFormat, minElements: Int? = nil, granularity: Granularity? = nil,
                    blockSize: Int? = nil, symmetric: Bool = true, scaleType: DataType? = nil) {
            self.format = format
            self.minElements = minElements ?? format.defaultMinElements
            self.granularity = granularity ?? format.defaultGranularity
            self.blockSize = blockSize ?? 32
            self.symmetric = symmetric
            self.scaleType = scaleType ?? format.defaultScaleType
        }
    }

    /// Inputs whose float values drive shapes, indices or quantization parameters: rounding them could change what
    /// the graph computes beyond weight precision, so they keep full precision. (op type, input index or nil = all)
    static let fullPrecisionInputs: [String: Set<Int>?] = [
        "Resize": [1, 2], "Upsample": [1], "Range": nil, "QuantizeLinear": [1, 2], "DequantizeLinear": [1, 2],
        "QLinearConv": nil, "QLinearMatMul": nil, "ConvInteger": nil, "MatMulInteger": nil, "DynamicQuantizeLinear": nil,
        "RandomNormal": nil, "RandomUniform": nil, "Multinomial": nil,
    ]

    public let options: Options

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
        public var jobs: [Job]
        public var kept: [ConversionReport.Kept]
        /// All weight bytes of the model before conversion.
        public var bytesBefore: Int
    }

    /// Finds the weights `convert` would convert; `run` each job (in any order, on any thread), `apply` the results,
    /// then build the `report`. A caller can so write each result out as soon as it is ready.
    public func plan(_ model: Model) -> Plan {
        var graph = model.graph
        var jobs: [Job] = []
        var kept: [ConversionReport.Kept] = []
        collect(&graph, path: [], jobs: &jobs, kept: &kept)
        return Plan(jobs: jobs, kept: kept, bytesBefore: model.weightBytes)
    }

    /// Converts one weight.
    public func run(_ job: Job) -> Result {
        options.format.isLinear ? quantize(job.tensor, axes: job.axes!) : encode(job.tensor)
    }

    /// Puts a converted tensor where the job found the original.
    public func apply(_ tensor: Tensor, for job: Job, in model: inout Model) {
        apply(tensor, at: job.place, in: &model.graph)
    }

    public func report(_ plan: Plan, converted: [ConversionReport.Converted], kept: [ConversionReport.Kept]) -> ConversionReport {
        let after = plan.bytesBefore - converted.reduce(0) { $0 + $1.bytesBefore - $1.bytesAfter }
        let snrElements = converted.filter { $0.snrDB != nil }
        let weight = snrElements.reduce(0) { $0 + $1.shape.reduce(1, *) }
        let meanSNR = weight == 0 ? nil : snrElements.reduce(0.0) { $0 + $1.snrDB! * Double($1.shape.reduce(1, *)) } / Double(weight)
        return ConversionReport(
            weights: options.format.rawValue, converted: converted, kept: kept,
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
    }

    public struct Job: Sendable {
        public var tensor: Tensor
        var place: Place
        /// Channel and reduction axes, for linear formats.
        var axes: WeightUses.Axes?
    }

    public enum Result: Sendable {
        case converted(Tensor, ConversionReport.Converted)
        case kept(ConversionReport.Kept)
    }

    private func collect(_ graph: inout Graph, path: [(node: Int, attribute: Int, graph: Int)], jobs: inout [Job],
                         kept: inout [ConversionReport.Kept]) {
        let protected = protectedNames(in: graph)
        let uses = WeightUses(graph: graph)
        for (i, tensor) in graph.initializers.enumerated() {
            consider(tensor, Place(path: path, slot: .initializer(i)), protected[tensor.name], uses, &jobs, &kept)
        }
        for (n, node) in graph.nodes.enumerated() {
            for (a, attribute) in node.attributes.enumerated() {
                if node.isConstant, attribute.name == "value", case .tensor(var tensor) = attribute.value {
                    tensor.name = node.outputs.first ?? tensor.name
                    consider(tensor, Place(path: path, slot: .constant(node: n, attribute: a)), protected[tensor.name],
                             uses, &jobs, &kept)
                }
                for (g, var sub) in attribute.value.subgraphs.enumerated() {
                    collect(&sub, path: path + [(n, a, g)], jobs: &jobs, kept: &kept)
                }
            }
        }
    }

    private func consider(_ tensor: Tensor, _ place: Place, _ protectedBy: String?, _ uses: WeightUses,
                          _ jobs: inout [Job], _ kept: inout [ConversionReport.Kept]) {
        guard options.format != .fp32, tensor.encoding.isRaw else { return }
        func keep(_ reason: String) {
            kept.append(.init(name: tensor.name, dtype: tensor.dataType.name, shape: tensor.dims, bytes: tensor.byteCount,
                              reason: reason))
        }
        guard tensor.dataType == .float else {
            if options.format.isLinear, uses.role(of: tensor.name, rank: tensor.dims.count).layout != nil {
                keep("not float32 (\(tensor.dataType.name))")
            }
            return
        }
        if let protectedBy { return keep("kept full precision: feeds \(protectedBy)") }
        var layout: WeightUses.Axes?
        if options.format.weightInputsOnly {
            let role = uses.role(of: tensor.name, rank: tensor.dims.count)
            guard let axes = role.layout else { return keep(role.reason) }
            layout = axes
        }
        if tensor.elementCount < options.minElements {
            return keep("too small: \(tensor.elementCount) elements < --min-elements \(options.minElements)")
        }
        jobs.append(Job(tensor: tensor, place: place, axes: layout))
    }

    /// Names read by inputs listed in `fullPrecisionInputs`, with a description of the reader.
    private func protectedNames(in graph: Graph) -> [String: String] {
        var names: [String: String] = [:]
        for node in graph.nodes where node.domain.isEmpty {
            guard let entry = Self.fullPrecisionInputs[node.opType] else { continue }
            for (i, input) in node.inputs.enumerated() where !input.isEmpty && (entry == nil || entry!.contains(i)) {
                names[input] = names[input] ?? "\(node.opType) input \(i)"
            }
        }
        return names
    }

    // MARK: - Encoding one tensor

    private func encode(_ tensor: Tensor) -> Result {
        guard case .bytes(let view) = tensor.data, let encoding = options.format.floatEncoding else {
            return .kept(.init(name: tensor.name, dtype: tensor.dataType.name, shape: tensor.dims, bytes: tensor.byteCount,
                               reason: "not stored as bytes"))
        }
        let count = tensor.elementCount
        let output = OwnedBuffer(uninitializedCount: count * 2)
        let stats = Float16Codec.encode(view, into: output)
        if stats.nonFinite > 0 {
            return .kept(.init(name: tensor.name, dtype: tensor.dataType.name, shape: tensor.dims, bytes: tensor.byteCount,
                               reason: "contains \(stats.nonFinite) inf/NaN value\(stats.nonFinite == 1 ? "" : "s"); kept as float32"))
        }
        var encoded = tensor
        encoded.data = .bytes(output.view)
        encoded.encoding = encoding
        encoded.location = .embedded
        let snr: Double? = stats.errorEnergy > 0 && stats.signalEnergy > 0
            ? 10 * (stats.signalEnergy / stats.errorEnergy).log10 : nil
        return .converted(encoded, .init(name: tensor.name, dtype: tensor.dataType.name, shape: tensor.dims,
                                         encoding: encoding.name, bytesBefore: tensor.byteCount, bytesAfter: count * 2,
                                         clamped: stats.clamped, maxAbsError: stats.maxAbsError, snrDB: snr))
    }

    private func quantize(_ tensor: Tensor, axes: WeightUses.Axes) -> Result {
        func keep(_ reason: String) -> Result {
            .kept(.init(name: tensor.name, dtype: tensor.dataType.name, shape: tensor.dims, bytes: tensor.byteCount,
                        reason: reason))
        }
        guard case .bytes(let view) = tensor.data else { return keep("not stored as bytes") }
        let count = tensor.elementCount
        var granularity = options.granularity
        // A reduction axis shorter than one block (a first Conv layer's 3 input channels) would give blocks of a few
        // elements, each with its own scale: per-channel scales are then smaller and as accurate.
        if granularity == .perBlock && tensor.dims[axes.reduction] < options.blockSize { granularity = .perChannel }
        let axis: Int? = granularity == .perChannel ? axes.channel : granularity == .perBlock ? axes.reduction : nil
        let layout = GroupLayout(dims: tensor.dims, granularity: granularity, axis: axis, blockSize: options.blockSize)
        let quantizer = LinearQuantizer(format: options.format, symmetric: options.symmetric, scaleType: options.scaleType)
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
        entry.symmetric = options.symmetric
        entry.scaleType = q.scale.dataType.name
        if options.format.searchesClipping { entry.rtnSNRDB = snr(outcome.roundToNearestErrorEnergy) }
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
