import GraphIR
import Ops
import Passes
import Quantization
import SafeOutput

/// What happened to one ONNX node of the main graph.
public struct CoreMLNodeOutcome: Sendable, Equatable {
    /// Whether the node was lowered, folded to constants, or refused.
    public enum Verdict: Sendable, Equatable {
        /// Lowered to MIL ops.
        case lowered
        /// Every output is known before run time: written as constants where used, no op.
        case folded
        /// No valid lowering at this target.
        case refused(LoweringRefusal)
    }

    /// The node's position in the main graph after inlining and folding; -1 for a graph input or output.
    public var index: Int
    /// The node's name, or its first output when it has none (the value's name for a graph input or output).
    public var name: String
    /// The ONNX op type; `input` or `output` for a graph input or output.
    public var opType: String
    /// What the exporter did with the node.
    public var verdict: Verdict
    /// The node's first output, or for a node an inlined call expanded into, the call's first output.
    public var outputName: String = ""
    /// The main-graph node of the model as given (its index) the node stems from (`Node.origin`): how the audit
    /// finds the verdicts on a node it shows, whatever passes renamed, fused or expanded. Nil for interface entries.
    public var origin: Int?
    /// The rule that decided the verdict: the lowering's (`mil-…`) or a limit or refusal for all (`coreml-…`).
    public var rule: String = ""
}

/// A node that cannot be exported, for the error message.
public struct CoreMLExportError: Error, CustomStringConvertible, Sendable {
    /// The `.mlpackage` path the export was writing.
    public var path: String
    /// What went wrong ("cannot be lowered" when nodes were refused).
    public var message: String
    /// The refused nodes and graph inputs or outputs; empty for other errors.
    public var refusals: [CoreMLNodeOutcome]
    /// A bug in mlpkg (the program failed verification or does not read back), not a problem with the model.
    public var isInternal: Bool = false

    /// One line: the path and up to 20 refused nodes with their reasons, or the message.
    public var description: String {
        guard !refusals.isEmpty else { return "\(path): \(message)" }
        let listed = refusals.prefix(20).map { n -> String in
            guard case .refused(let r) = n.verdict else { return "" }
            if n.index < 0 { return n.name.isEmpty ? "the graph: \(r.reason)" : "graph \(n.opType) '\(n.name)': \(r.reason)" }
            return "node \(n.index) '\(n.name)' (\(n.opType)): \(r.reason)"
        }
        let more = refusals.count > 20 ? "; and \(refusals.count - 20) more" : ""
        return "\(path): \(refusals.count) node(s) have no Core ML lowering: " + listed.joined(separator: "; ") + more
    }
}

/// ONNX graph (from a package, or straight from an import) → Core ML ML Program `.mlpackage` (docs/COREML.md).
public enum CoreMLExporter {
    /// How to lower the model and what to record in the package.
    public struct Options: Sendable {
        /// nil: the lowest target every stored encoding needs.
        public var target: DeploymentTarget?
        /// fp16 (the Neural Engine's precision) or fp32.
        public var compute: MILDataType
        /// Recorded in metadata as the recommended MLComputeUnits.
        public var computeUnits: String
        /// Store every weight as floats instead of constexpr-compressed.
        public var dequantize: Bool
        /// Pins for dynamic input dims, applied before lowering (mlpkg's MIL programs have static shapes).
        public var inputShapes: InputShapes
        /// Extra user-defined metadata (provenance), written in this order after mlpkg's own keys.
        public var metadata: [(String, String)]
        /// Run the MIL pass pipeline (`MILPipeline.standard`); false writes the program as lowered (`--no-optimize`).
        public var optimize: Bool = true
        /// What an app sees: the float features' element type, names, descriptions, author, license, version.
        public var interface = CoreMLInterfaceOptions()
        /// One function per enumerated shape in a multifunction model (`--functions`, iOS18), instead of one
        /// function with flexible dims.
        public var functions = false
        /// A last rewrite of the optimized program before it is written — W8A8's quantize/dequantize pairs, whose
        /// ranges come from a calibration run of that very program — returning metadata entries to record. The
        /// program is verified after it. Not with `functions`.
        public var finalRewrite: (@Sendable (MILProgram) throws -> [(String, String)])?

        /// Defaults: the lowest target the weights need, fp16 compute, all compute units, weights kept compressed.
        public init(target: DeploymentTarget? = nil, compute: MILDataType = .fp16, computeUnits: String = "all",
                    dequantize: Bool = false, inputShapes: InputShapes = InputShapes(), metadata: [(String, String)] = []) {
            self.target = target
            self.compute = compute
            self.computeUnits = computeUnits
            self.dequantize = dequantize
            self.inputShapes = inputShapes
            self.metadata = metadata
        }
    }

    /// What an export wrote.
    public struct Result: Sendable {
        /// The deployment target the program was written for.
        public var target: DeploymentTarget
        /// Size of the encoded model specification (model.mlmodel), in bytes.
        public var modelBytes: Int
        /// Size of weight.bin, in bytes (header included).
        public var weightBytes: Int
        /// Number of MIL ops written, by op type.
        public var operations: [String: Int]
        /// The outcome of every main-graph node.
        public var outcomes: [CoreMLNodeOutcome]
        /// Where values were narrowed or a behaviour differs from ONNX in a corner (int64 → int32…).
        public var notes: [String]
        /// ONNX interface names that had to change to become MIL identifiers (old → new).
        public var renamed: [(String, String)]
    }

    /// The target a lowering is for: the one asked for, else the lowest the stored encodings need, raised to
    /// iOS16 for fp16 features (`--io-dtype fp16`).
    public static func target(for model: Model, options: Options) -> DeploymentTarget {
        if let target = options.target { return target }
        var needed = minimumTarget(model, dequantize: false)
        if options.functions { needed = max(needed, .iOS18) }  // multifunction models are Core ML 8 (iOS18)
        let fp16Features = options.interface.ioDtype == .fp16 || options.interface.imageInputs.contains { $0.colorSpace == .grayscaleFloat16 }
        return fp16Features ? max(needed, .iOS16) : needed
    }

    /// Refuses options the target cannot honour: fp16 features before iOS16 (Core ML's multi-arrays take fp16 from
    /// iOS16). A usage error, like the interface names.
    public static func checkInterface(_ model: Model, options: Options) throws(CoreMLInterfaceError) {
        let target = target(for: model, options: options)
        if options.interface.ioDtype == .fp16 && target < .iOS16 {
            throw CoreMLInterfaceError("--io-dtype fp16 needs --deployment-target iOS16 or later (Core ML takes fp16 inputs and outputs from iOS16); "
                                       + "the target is \(target)")
        }
        if options.interface.imageInputs.contains(where: { $0.colorSpace == .grayscaleFloat16 }) && target < .iOS16 {
            throw CoreMLInterfaceError("--image-input …=gray-fp16 needs --deployment-target iOS16 or later (Core ML's GRAYSCALE_FLOAT16 images); the target is \(target)")
        }
        guard options.interface.ioDtype == .fp16 || options.interface.ioDtype == .fp32 else {
            throw CoreMLInterfaceError("--io-dtype is fp32 or fp16, not \(options.interface.ioDtype)")
        }
        _ = try InterfacePlan.resolve(model.graph, options.interface)
        if options.functions {
            guard !options.inputShapes.enumerations.isEmpty else {
                throw CoreMLInterfaceError("--functions writes one function per enumerated shape; give them with --input-shape NAME=1,128|1,256")
            }
            guard target >= .iOS18 else {
                throw CoreMLInterfaceError("--functions needs --deployment-target iOS18 or later (multifunction models are Core ML 8); the target is \(target)")
            }
        }
        try FlexibleShapes.checkEnumerations(model, options.inputShapes, target: target)
    }

    /// Checks the image inputs and outputs and the classifier against the prepared model's names and static types
    /// (a usage error, like the interface names): a name that is no input or output, an image that is not
    /// [1, C, H, W], labels that do not match the probability vector's length.
    public static func checkFeatures(_ prepared: PreparedModel, options: Options) throws(CoreMLInterfaceError) {
        _ = try featurePlan(prepared, options: options)
    }

    static func featurePlan(_ prepared: PreparedModel, options: Options) throws(CoreMLInterfaceError) -> FeatureKindPlan {
        let table = ValueTable(types: prepared.inference.types, compute: options.compute,
                               target: target(for: prepared.model, options: options))
        return try FeatureKindPlan.resolve(prepared.model.graph, options.interface) { try? table.type(of: $0) }
    }

    /// The lowest deployment target the model's stored encodings need (iOS15 when none is compressed).
    public static func minimumTarget(_ model: Model, dequantize: Bool) -> DeploymentTarget {
        guard !dequantize else { return .iOS15 }
        var target = DeploymentTarget.iOS15
        for t in model.graph.initializers where !t.encoding.isRaw {
            target = max(target, CompressedWeights.minimumTarget(t.encoding, dims: t.dims))
        }
        // A QDQ model's constant DequantizeLinear becomes the same constexpr ops.
        let stored = Dictionary(model.graph.initializers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for n in model.graph.nodes where n.opType == "DequantizeLinear" && n.domain.isEmpty {
            guard let data = n.inputs.first.flatMap({ stored[$0] }) else { continue }
            let blocked: Bool
            if case .int(let b)? = n.attribute("block_size")?.value { blocked = b > 0 } else { blocked = false }
            target = max(target, blocked || data.dataType == .int4 || data.dataType == .uint4 ? .iOS18 : .iOS16)
        }
        return target
    }

    /// The model as the lowerings read it: functions inlined, pins applied, constants folded, shapes inferred —
    /// done once per conversion and shared by the exporter and the audit. Weights may be re-encoded afterwards
    /// (`model` is replaceable): encodings change neither names, shapes nor element types.
    public struct PreparedModel: @unchecked Sendable {
        /// The prepared graph (its weights may be compressed after preparation).
        public var model: Model
        /// Shape inference on the prepared graph.
        public let inference: ShapeInferenceResult
        /// For inlined nodes' outputs, the call's output they stand for.
        let origin: [String: String]
        /// The range of every flexible symbol (`--input-shape NAME=1,1..512`); empty when every dim is static.
        public var ranges: [String: DimRange] = [:]
        /// Enumerated shapes as choices of the flexible symbols' sizes, paired by index (empty for ranges).
        public var choices: [[String: Int]] = []
    }

    /// Inlines functions, applies `options.inputShapes`, folds and infers (`Pipeline.foldAndInfer`, run once with
    /// `context`), dequantizing first with `options.dequantize`.
    /// Every main-graph node is numbered first (`Node.origin`: its index in `model`), and the numbers travel with
    /// the nodes through inlining, folding and rewrites.
    public static func prepare(_ model: Model, options: Options, context: PassContext = PassContext()) throws -> PreparedModel {
        var model = options.dequantize ? Self.dequantized(model) : model
        for i in model.graph.nodes.indices { model.graph.nodes[i].origin = i }
        let (inlined, origin) = FunctionInlining.inline(model)
        let (pinned, ranges) = try options.inputShapes.applyWithRanges(to: inlined)
        let choices = try options.inputShapes.symbolChoices(in: pinned)
        context.symbolRanges = ranges
        var folded = try Pipeline.foldAndInfer.run(pinned, context: context)
        guard var inference = context.inference else { throw CoreMLExportError(path: "", message: "shape inference did not run", refusals: []) }
        // An If decided by constants (after pinning) becomes its branch; the expanded graph is folded once more.
        if let expanded = IfFolding.fold(folded, inference: inference) {
            folded = try Pipeline.foldAndInfer.run(expanded, context: context)
            guard let again = context.inference else { throw CoreMLExportError(path: "", message: "shape inference did not run", refusals: []) }
            inference = again
        }
        // Layout chains through rank > 5 (window partitions) rewritten at rank ≤ 5, then folded and inferred again.
        if let lowered = HighRankLayout.rewrite(folded, inference: inference) {
            folded = try Pipeline.foldAndInfer.run(lowered, context: context)
            guard let again = context.inference else { throw CoreMLExportError(path: "", message: "shape inference did not run", refusals: []) }
            inference = again
        }
        return PreparedModel(model: folded, inference: inference, origin: origin, ranges: ranges, choices: choices)
    }

    /// Lowers the model without writing anything: every node's outcome, and the program when all nodes lowered.
    /// The audit's Core ML verdicts come from here, so the audit and the exporter cannot disagree.
    /// `planOnly`: check every node's preconditions and emit nothing (the audit's use), even when inputs are dynamic.
    public static func lower(_ model: Model, options: Options, planOnly: Bool = false) throws -> (outcomes: [CoreMLNodeOutcome], program: LoweredProgram?) {
        lower(try prepare(model, options: options), options: options, planOnly: planOnly)
    }

    /// Lowers a prepared model (see `lower(_:options:planOnly:)`); the pipeline does not run again.
    public static func lower(_ prepared: PreparedModel, options: Options, planOnly: Bool = false) -> (outcomes: [CoreMLNodeOutcome], program: LoweredProgram?) {
        let model = prepared.model
        let target = target(for: model, options: options)
        let io: MILDataType = options.interface.ioDtype == .fp16 && target >= .iOS16 ? .fp16 : .fp32
        // Checked by `export` first (a usage error); the audit's planning takes the names as they are.
        let plan = (try? InterfacePlan.resolve(model.graph, options.interface)) ?? InterfacePlan()
        let kinds = (try? featurePlan(prepared, options: options)) ?? FeatureKindPlan()
        let inference = prepared.inference
        let origin = prepared.origin
        let graph = model.graph
        let opset = Int(model.opsetVersion(domain: "") ?? model.opsetVersion(domain: "ai.onnx") ?? 1)
        let table = ValueTable(types: inference.types, compute: options.compute, target: target)
        table.ranges = prepared.ranges
        table.inference = inference
        table.choices = prepared.choices
        for t in graph.initializers { table.addConstant(t.name, ConstantValue(tensor: t)) }
        for s in graph.sparseInitializers {
            if let dense = densify(s) { table.addConstant(s.name, ConstantValue(tensor: dense)) }
        }
        for n in graph.nodes {
            for i in n.inputs where !i.isEmpty { table.use(i) }
            for a in n.attributes { for g in a.value.subgraphs { for r in g.outerScopeReferences { table.use(r) } } }
        }
        for o in graph.outputs { table.use(o.name) }

        let builder = MILBuilder(target: target)
        var inputs: [FeatureDescription] = []
        var outputs: [FeatureDescription] = []
        var renamed: [(String, String)] = []
        var outcomes: [CoreMLNodeOutcome] = []
        var failed = false

        // Interface names first, so no internal op can take them; names the user chose before the others, so they
        // are kept exactly (`InterfacePlan` made sure no other feature has them).
        var inputNames: [String: String] = [:]
        var outputNames: [String: String] = [:]
        for v in graph.runtimeInputs { if let n = plan.inputNames[v.name] { inputNames[v.name] = builder.reserveInterface(n) } }
        for v in graph.outputs { if let n = plan.outputNames[v.name] { outputNames[v.name] = builder.reserveInterface(n) } }
        for v in graph.runtimeInputs where inputNames[v.name] == nil { inputNames[v.name] = builder.reserveInterface(v.name) }
        for v in graph.outputs where outputNames[v.name] == nil { outputNames[v.name] = builder.reserveInterface(v.name) }
        // The classifier's features (coremltools' default names) and its op's name, after the model's own names.
        let classifier = kinds.classifier.map { c in
            let label = builder.reserveInterface("classLabel")
            return MILClassifier(probabilities: outputNames[c.output]!, labels: c.labels, opName: builder.name("classify"),
                                 labelName: label, probabilitiesName: builder.reserveInterface(label + "_probs"))
        }
        for v in graph.runtimeInputs where inputNames[v.name] != v.name { renamed.append((v.name, inputNames[v.name]!)) }
        for v in graph.outputs where outputNames[v.name] != v.name && !renamed.contains(where: { $0 == (v.name, outputNames[v.name]!) }) {
            renamed.append((v.name, outputNames[v.name]!))
        }
        for input in graph.runtimeInputs {
            let name = inputNames[input.name]!
            if let refusal = bindInput(input.name, interfaceName: name, table: table, builder: builder, io: io,
                                       description: plan.inputDescriptions[input.name] ?? "", image: kinds.imageInputs[input.name],
                                       into: &inputs) {
                outcomes.append(CoreMLNodeOutcome(index: -1, name: input.name, opType: "input", verdict: .refused(refusal)))
                failed = true
            }
        }

        // A program without outputs fails the MIL verifier (Core ML needs at least one): refuse it here, as the
        // model's fault (the Core ML fuzz target found a model declaring none).
        if graph.outputs.isEmpty {
            outcomes.append(CoreMLNodeOutcome(index: -1, name: "", opType: "output",
                                              verdict: .refused(LoweringRefusal("the model declares no outputs; a Core ML model needs at least one"))))
            failed = true
        }
        // Unpinned inputs make every node downstream dynamic: report the inputs alone, with the fix.
        if failed && !planOnly { return (outcomes, nil) }
        for (index, node) in graph.nodes.enumerated() {
            builder.source = node.name.isEmpty ? node.outputs.first ?? "" : node.name
            let verdict = lowerNode(node, inference: inference, table: table, builder: builder, opset: opset, target: target,
                                    ranges: prepared.ranges,
                                    compute: options.compute, emit: !failed && !planOnly,
                                    inferenceFailure: failure(of: node, index: index, inference),
                                    functions: Set(model.functions.map { $0.domain + ":" + $0.name }),
                                    path: "main", label: node.name.isEmpty ? "#\(index)" : node.name)
            if case .refused = verdict { failed = true }
            outcomes.append(CoreMLNodeOutcome(index: index, name: node.name.isEmpty ? node.outputs.first ?? "" : node.name,
                                              opType: node.opType, verdict: verdict,
                                              outputName: node.outputs.first.map { origin[$0] ?? $0 } ?? "",
                                              origin: node.origin, rule: Self.rule(of: verdict, node)))
        }
        builder.source = nil
        guard !failed, !planOnly else { return (outcomes, nil) }

        var blockOutputs: [String] = []
        for output in graph.outputs {
            let name = outputNames[output.name]!
            // Images and the classifier's probabilities are fp32 whatever --io-dtype says (Core ML's image buffers
            // and coremltools' classify, which takes fp32 only).
            let image = kinds.imageOutputs[output.name]
            let special = image != nil || kinds.classifier?.output == output.name
            switch bindOutput(output.name, interfaceName: name, table: table, builder: builder, io: special ? .fp32 : io,
                              description: plan.outputDescriptions[output.name] ?? "") {
            case .success(var feature):
                if let image { feature.kind = .image(image) }
                blockOutputs.append(feature.name)
                outputs.append(feature)
            case .failure(let refusal):
                outcomes.append(CoreMLNodeOutcome(index: -1, name: output.name, opType: "output", verdict: .refused(refusal)))
                return (outcomes, nil)
            }
        }
        builder.program.inputs = inputs.map { MILVar(name: $0.name, type: $0.type) }
        builder.program.outputs = blockOutputs
        if let classifier, let probabilities = outputs.first(where: { $0.name == classifier.probabilities }) {
            // The description lists the classifier's features first, in the block's order; the vector itself is no output.
            let int64 = classifier.labels.isInt64
            outputs = [FeatureDescription(name: classifier.labelName, type: MILTensorType(int64 ? .int32 : .string, []), kind: .label(int64: int64)),
                       FeatureDescription(name: classifier.probabilitiesName, type: probabilities.type,
                                          shortDescription: probabilities.shortDescription, kind: .probabilities(int64Keys: int64))]
                + outputs.filter { $0.name != classifier.probabilities }
        }
        let program = LoweredProgram(target: target, inputs: inputs, outputs: outputs, program: builder.program,
                                     notes: table.notes, renamed: renamed, model: model, classifier: classifier)
        return (outcomes, program)
    }

    private static func bindInput(_ onnxName: String, interfaceName name: String, table: ValueTable, builder: MILBuilder,
                                  io: MILDataType, description: String, image: CoreMLImageInput?,
                                  into inputs: inout [FeatureDescription]) -> LoweringRefusal? {
        do throws(LoweringRefusal) {
            let t = try table.type(of: onnxName)
            guard !t.shape.contains(0), !t.shape.contains(where: { $0 > Int(Int32.max) }) else {
                throw LoweringRefusal("input '\(onnxName)' has shape \(t.shape); Core ML inputs have dims from 1 to 2^31 - 1", rule: CoreMLLimits.dims.id)
            }
            // A scalar input is [1] at the interface (Core ML features have rank ≥ 1) and reshaped inside.
            let scalar = t.rank == 0
            // An image is fp32 in the program (fp16 for GRAYSCALE_FLOAT16) whatever --io-dtype says: Core ML fills
            // the tensor from the pixel buffer.
            let featureIO: MILDataType = image.map { $0.colorSpace == .grayscaleFloat16 ? .fp16 : .fp32 } ?? io
            var (interface, needsCast) = interfaceType(t, io: featureIO)
            if scalar { interface = interface.with(shape: [1]) }
            var feature = FeatureDescription(name: name, type: interface, shortDescription: description,
                                             kind: image.map { .image($0.colorSpace) } ?? .multiArray)
            if !t.isStatic {
                // Every flexible dim must be a ranged symbol: its range is the feature's SizeRange.
                guard case .tensor(let declared)? = table.inferredType(onnxName), let dims = declared.shape else {
                    throw LoweringRefusal("input '\(onnxName)' has no known shape", rule: FlexibleShapes.rule.id)
                }
                var defaults: [Int] = []
                var bounds: [ClosedRange<Int>] = []
                for (axis, d) in dims.enumerated() {
                    switch d {
                    case .value(let v):
                        defaults.append(v)
                        bounds.append(v...v)
                    case .symbol(let s) where table.ranges[s] != nil:
                        let r = table.ranges[s]!
                        defaults.append(r.defaultValue)
                        bounds.append(r.lower...r.upper)
                    default:
                        throw LoweringRefusal("input '\(onnxName)' dim \(axis) ('\(d)') is dynamic; give it a size or a range with --input-shape \(onnxName)=…",
                                              rule: FlexibleShapes.rule.id)
                    }
                }
                feature.shapeRange = (defaults, bounds)
                if !table.choices.isEmpty {
                    // Enumerated: this input's shape in each choice (an input sharing an enumerated symbol follows it).
                    feature.enumeratedShapes = try table.choices.map { choice throws(LoweringRefusal) in
                        try dims.enumerated().map { axis, d throws(LoweringRefusal) in
                            if case .value(let v) = d { return v }
                            if case .symbol(let s) = d, let v = choice[s] { return v }
                            throw LoweringRefusal("input '\(onnxName)' dim \(axis) ('\(d)') is not among the enumerated dims", rule: FlexibleShapes.rule.id)
                        }
                    }
                    feature.shapeRange = nil
                }
            }
            inputs.append(feature)
            var variable = MILVar(name: name, type: interface)
            if let image { variable = FeatureKindPlan.preprocess(variable, image, builder: builder) }
            if scalar {
                variable = builder.op1("squeeze", name: onnxName + "_scalar", [("x", .v(variable)), ("axes", .c(.ints([0])))],
                                       output: interface.with(shape: []))
            }
            if needsCast {
                variable = builder.op1("cast", name: onnxName + "_cast",
                                       [("x", .v(variable)), ("dtype", .c(.scalar(t.dtype.description)))], output: t)
            }
            table.bind(onnxName, variable)
            return nil
        } catch {
            return error
        }
    }

    private static func bindOutput(_ onnxName: String, interfaceName name: String, table: ValueTable, builder: MILBuilder,
                                   io: MILDataType, description: String) -> Swift.Result<FeatureDescription, LoweringRefusal> {
        do throws(LoweringRefusal) {
            var v = try table.variable(onnxName, builder: builder)
            var (interface, needsCast) = interfaceType(v.type, io: io)
            if v.type.rank == 0 {
                // A scalar output is [1] at the interface (Core ML features have rank ≥ 1).
                interface = interface.with(shape: [1])
                if needsCast {
                    v = builder.op1("cast", name: name + "_cast", [("x", .v(v)), ("dtype", .c(.scalar(interface.dtype.description)))],
                                    output: v.type.with(dtype: interface.dtype))
                }
                let result = builder.op1("reshape", name: name + "_vector", [("x", .v(v)), ("shape", .c(.ints([1])))],
                                         output: interface, outputName: name, interface: true)
                return .success(FeatureDescription(name: result.name, type: interface, shortDescription: description))
            }
            let result = needsCast
                ? builder.op1("cast", name: name + "_cast", [("x", .v(v)), ("dtype", .c(.scalar(interface.dtype.description)))],
                              output: interface, outputName: name, interface: true)
                : builder.op1("identity", name: name + "_out", [("x", .v(v))], output: interface, outputName: name, interface: true)
            return .success(FeatureDescription(name: result.name, type: interface, shortDescription: description))
        } catch {
            return .failure(error)
        }
    }

    /// Why shape inference failed on a node of the graph at `path` (`main`, or a subgraph's `main/NODE.ATTRIBUTE`),
    /// nil when it did not.
    static func failure(of node: Node, index: Int, _ inference: ShapeInferenceResult, path: String = "main") -> String? {
        let label = node.name.isEmpty ? "#\(index)" : node.name
        guard inference.failedNodes.contains(path + "/" + label) else { return nil }
        return inference.unresolved.first { $0.graph == path && $0.node == label }?.reason ?? "no reason recorded"
    }

    /// The rule id a node's verdict cites.
    static func rule(of verdict: CoreMLNodeOutcome.Verdict, _ node: Node) -> String {
        switch verdict {
        case .folded: return CoreMLLimits.folded.id
        case .lowered: return LoweringRegistry.byOpType[node.opType]?.rule.id ?? CoreMLLimits.noLowering.id
        case .refused(let r): return r.rule ?? LoweringRegistry.byOpType[node.opType]?.rule.id ?? CoreMLLimits.noLowering.id
        }
    }

    /// One node: folded (all outputs known), lowered (emitted when `emit`), or refused with the reason.
    private static func lowerNode(_ node: Node, inference: ShapeInferenceResult, table: ValueTable, builder: MILBuilder,
                                  opset: Int, target: DeploymentTarget, ranges: [String: DimRange], compute: MILDataType, emit: Bool,
                                  inferenceFailure: String?, functions: Set<String>, path: String, label: String) -> CoreMLNodeOutcome.Verdict {
        if node.isConstant, let t = node.constantTensor, let out = node.outputs.first {
            var tensor = t
            tensor.name = out
            table.addConstant(out, ConstantValue(tensor: tensor))
            return .folded
        }
        if node.isConstant, let sparse = node.constantSparseTensor, let out = node.outputs.first {
            guard let dense = densify(sparse) else {
                return .refused(LoweringRefusal("sparse constant with indices Core ML cannot densify", rule: CoreMLLimits.constant.id))
            }
            table.addConstant(out, ConstantValue(tensor: dense))
            return .folded
        }
        if let forwarded = ConstantForwarding.forward(node, table: table, outputType: { inference.types[node.outputs[0]] }) {
            table.addConstant(forwarded.name, ConstantValue(tensor: forwarded))
            return .folded
        }
        if node.domain.isEmpty || node.domain == "ai.onnx",
           let computed = ConstantArithmetic.evaluate(node, table: table, opset: opset,
                                                      outputDims: ConstantForwarding.staticDims(inference.types[node.outputs.first ?? ""])) {
            table.addConstant(computed.name, ConstantValue(tensor: computed))
            return .folded
        }
        let present = node.outputs.filter { !$0.isEmpty }
        if !present.isEmpty, present.allSatisfy({ inference.knownValues[$0]?.isConcrete == true }) {
            for o in present { table.addConstant(o, ConstantValue(known: inference.knownValues[o])) }
            return .folded
        }
        var view = NodeView(node: node, opset: opset, target: target, compute: compute, values: table)
        if ControlFlowLowering.opTypes.contains(node.opType) {
            // If branches and Loop bodies: each node lowered like a main-graph node, into the block being filled.
            view.nested = NestedLowering { graph, attribute, emitting in
                let inner = path + "/" + label + "." + attribute
                for n in graph.nodes { for i in n.inputs where !i.isEmpty { table.use(i) } }
                for o in graph.outputs { table.use(o.name) }
                for (k, n) in graph.nodes.enumerated() {
                    let innerLabel = n.name.isEmpty ? "#\(k)" : n.name
                    let verdict = lowerNode(n, inference: inference, table: table, builder: builder, opset: opset, target: target,
                                            ranges: ranges, compute: compute, emit: emitting,
                                            inferenceFailure: failure(of: n, index: k, inference, path: inner), functions: functions,
                                            path: inner, label: innerLabel)
                    if case .refused(let r) = verdict {
                        var refusal = r
                        refusal.reason = "\(attribute) node '\(n.name.isEmpty ? n.outputs.first ?? "" : n.name)' (\(n.opType)): \(r.reason)"
                        return refusal
                    }
                }
                return nil
            }
        }
        do throws(LoweringRefusal) {
            guard node.domain.isEmpty || node.domain == "ai.onnx" else {
                if functions.contains(node.domain + ":" + node.opType) {
                    throw LoweringRefusal("model-local function \(node.domain):\(node.opType) is not inlined for Core ML", rule: CoreMLLimits.customDomain.id)
                }
                throw LoweringRefusal("custom domain '\(node.domain)' has no Core ML lowering", rule: CoreMLLimits.customDomain.id)
            }
            guard view.nested != nil || !node.attributes.contains(where: { !$0.value.subgraphs.isEmpty }) else {
                throw LoweringRefusal("\(node.opType) (an op holding subgraphs) is not lowered; If, Loop and Scan are", rule: CoreMLLimits.controlFlow.id)
            }
            guard let lowering = LoweringRegistry.byOpType[node.opType] else {
                throw LoweringRefusal("no Core ML lowering for \(node.opType)", rule: CoreMLLimits.noLowering.id)
            }
            try CoreMLLimits.checkRanks(view)
            if let refusal = FlexibleShapes.refusal(node, inference: inference, ranges: ranges) { throw refusal }
            if let inferenceFailure {
                throw LoweringRefusal("shape inference rejects this node (\(inferenceFailure)); mlpkg does not lower a node from its declared output types alone",
                                      rule: CoreMLLimits.inference.id)
            }
            try lowering.rule.check(view)
            // A compressed weight the target cannot write fails the node that reads it, in the audit's plan too.
            for input in node.inputs where !input.isEmpty {
                if let t = table.constant(input)?.tensor, !t.encoding.isRaw { try CompressedWeights.check(input, t, target: target) }
            }
            let emission: Emission
            do throws(LoweringRefusal) {
                emission = try lowering.plan(view)
            } catch {
                var refusal = error
                if refusal.rule == nil { refusal.rule = lowering.rule.id }
                throw refusal
            }
            if emit {
                let results = try emission(Emitter(view: view, builder: builder))
                for (name, v) in zip(node.outputs, results) where !name.isEmpty {
                    if let v { table.bind(name, v) }
                }
            }
            return .lowered
        } catch {
            return .refused(error)
        }
    }

    /// The interface type of a value: floats in `io` (fp32 unless fp16 was asked for, whatever the compute
    /// precision), int32 as it is, other types (bool) as int32; true when a cast is needed at the boundary.
    static func interfaceType(_ t: MILTensorType, io: MILDataType) -> (MILTensorType, Bool) {
        switch t.dtype {
        case .fp32, .fp16: return t.dtype == io ? (t, false) : (t.with(dtype: io), true)
        case .int32: return (t, false)
        default: return (t.with(dtype: t.dtype.isFloat ? io : .int32), true)
        }
    }

    /// Writes `Model.mlpackage` at `path`, atomically.
    public static func export(_ model: Model, to path: String, options: Options) throws -> Result {
        try export(try prepare(model, options: options), to: path, options: options)
    }

    /// Writes a prepared model as `Model.mlpackage` at `path`, atomically; the pipeline does not run again.
    /// Interface options that do not fit the model throw `CoreMLInterfaceError` before anything is lowered.
    public static func export(_ prepared: PreparedModel, to path: String, options: Options) throws -> Result {
        let model = prepared.model
        try checkInterface(model, options: options)
        try checkFeatures(prepared, options: options)
        if options.functions { return try exportFunctions(prepared, to: path, options: options) }
        let (outcomes, lowered) = lower(prepared, options: options)
        guard let lowered else {
            throw CoreMLExportError(path: path, message: "cannot be lowered", refusals: outcomes.filter {
                if case .refused = $0.verdict { return true }
                return false
            })
        }
        var metadata: [(String, String)] = [
            ("com.mlpkg.computePrecision", options.compute.description),
            ("com.mlpkg.computeUnits", options.computeUnits),
            ("com.mlpkg.deploymentTarget", lowered.target.name),
        ]
        if !options.inputShapes.isEmpty { metadata.append(("com.mlpkg.inputShapes", options.inputShapes.recorded)) }
        if !lowered.renamed.isEmpty {
            metadata.append(("com.mlpkg.renamed", lowered.renamed.map { "\($0.0)=\($0.1)" }.joined(separator: ";")))
        }
        // The ONNX exporter that wrote the source (PyTorch, tf2onnx…) is provenance, not the model's author.
        let producer = [model.producerName, model.producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
        if !producer.isEmpty { metadata.append(("com.mlpkg.source.producer", producer)) }
        metadata += options.metadata
        for entry in model.metadata { metadata.append(("onnx." + entry.key, entry.value)) }
        let program = lowered.program
        do throws(MILPipelineError) {
            try (options.optimize ? MILPipeline.standard : MILPipeline.none).run(program)
        } catch {
            throw CoreMLExportError(path: path, message: "internal error: the MIL program is invalid, nothing was written (\(error))",
                                    refusals: [], isInternal: true)
        }
        if let rewrite = options.finalRewrite {
            metadata += try rewrite(program)
            do throws(MILVerificationError) {
                try MILVerifier.verify(program)
            } catch {
                throw CoreMLExportError(path: path, message: "internal error: the MIL program is invalid after its last rewrite, nothing was written (\(error))",
                                        refusals: [], isInternal: true)
            }
        }
        let info = options.interface
        var description = MILModelDescription(inputs: lowered.inputs, outputs: lowered.outputs, metadata: metadata,
                                              shortDescription: info.shortDescription ?? model.docString,
                                              author: info.author ?? "", license: info.license ?? "",
                                              versionString: info.version ?? (model.modelVersion != 0 ? String(model.modelVersion) : ""))
        description.classifier = lowered.classifier
        let serialized = MILSerializer.serialize(program, description: description)
        let expected = ModelSelfCheck.Expected(
            specificationVersion: lowered.target.specificationVersion, inputs: lowered.inputs.map(\.name),
            outputs: lowered.outputs.map(\.name), opset: lowered.target.opset, operations: serialized.operations)
        if let problem = ModelSelfCheck.verify(serialized.model, expected) {
            throw CoreMLExportError(path: path, message: "internal error: the encoded model does not read back (\(problem))", refusals: [],
                                    isInternal: true)
        }
        try CoreMLPackageWriter.write(path: path, model: serialized.model, weights: serialized.blobs)
        return Result(target: lowered.target, modelBytes: serialized.model.count, weightBytes: serialized.blobs.size,
                      operations: program.histogram, outcomes: outcomes, notes: lowered.notes, renamed: lowered.renamed)
    }

    /// One function per enumerated shape (`--functions`): each lowered with every enumerated input pinned to its
    /// k-th shape (inputs sharing a symbol follow), optimized on its own, then written into one multifunction model
    /// whose functions share weight.bin (identical blobs stored once). The first shape's function is the default.
    static func exportFunctions(_ prepared: PreparedModel, to path: String, options: Options) throws -> Result {
        let shapes = options.inputShapes
        let enumerated = shapes.order.filter { shapes.enumerations[$0] != nil }
        let count = shapes.enumerations[enumerated[0]]!.count
        let target = target(for: prepared.model, options: options)
        var functions: [MILFunction] = []
        var firstOutcomes: [CoreMLNodeOutcome] = []
        var histogram: [String: Int] = [:]
        var notes: [String] = []
        var renamed: [(String, String)] = []
        var names: Set<String> = []
        for k in 0..<count {
            var pins = InputShapes()
            for name in shapes.order {
                if let list = shapes.enumerations[name] {
                    try pins.add(name, list[k].map { Dim.value($0) })
                } else {
                    try pins.add(name, shapes.pins[name]!)
                }
            }
            var single = options
            single.inputShapes = pins
            single.functions = false
            single.target = target
            let (outcomes, lowered) = lower(try prepare(prepared.model, options: single), options: single)
            guard let lowered else {
                throw CoreMLExportError(path: path, message: "cannot be lowered", refusals: outcomes.filter {
                    if case .refused = $0.verdict { return true }
                    return false
                })
            }
            do throws(MILPipelineError) {
                try (options.optimize ? MILPipeline.standard : MILPipeline.none).run(lowered.program)
            } catch {
                throw CoreMLExportError(path: path, message: "internal error: the MIL program is invalid, nothing was written (\(error))",
                                        refusals: [], isInternal: true)
            }
            // Named after the first enumerated input's shape: `input_ids_1x128`.
            var name = MILBuilder.identifier(enumerated[0] + "_" + shapes.enumerations[enumerated[0]]![k].map(String.init).joined(separator: "x"))
            while !names.insert(name).inserted { name += "_" }
            functions.append(MILFunction(name: name, program: lowered.program, inputs: lowered.inputs, outputs: lowered.outputs))
            if k == 0 {
                firstOutcomes = outcomes
                renamed = lowered.renamed
            }
            for (op, n) in lowered.program.histogram { histogram[op, default: 0] += n }
            for note in lowered.notes where !notes.contains(note) { notes.append(note) }
        }
        let model = prepared.model
        var metadata: [(String, String)] = [
            ("com.mlpkg.computePrecision", options.compute.description),
            ("com.mlpkg.computeUnits", options.computeUnits),
            ("com.mlpkg.deploymentTarget", target.name),
            ("com.mlpkg.inputShapes", shapes.recorded),
            ("com.mlpkg.functions", functions.map(\.name).joined(separator: ";")),
        ]
        if !renamed.isEmpty { metadata.append(("com.mlpkg.renamed", renamed.map { "\($0.0)=\($0.1)" }.joined(separator: ";"))) }
        let producer = [model.producerName, model.producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
        if !producer.isEmpty { metadata.append(("com.mlpkg.source.producer", producer)) }
        metadata += options.metadata
        for entry in model.metadata { metadata.append(("onnx." + entry.key, entry.value)) }
        let info = options.interface
        let description = MILModelDescription(inputs: [], outputs: [], metadata: metadata,
                                              shortDescription: info.shortDescription ?? model.docString,
                                              author: info.author ?? "", license: info.license ?? "",
                                              versionString: info.version ?? (model.modelVersion != 0 ? String(model.modelVersion) : ""))
        let serialized = MILSerializer.serialize(functions: functions, description: description, defaultFunction: functions[0].name)
        var expected = ModelSelfCheck.Expected(specificationVersion: target.specificationVersion, inputs: [], outputs: [],
                                               opset: target.opset, operations: serialized.operations)
        expected.functions = functions.map(\.name)
        if let problem = ModelSelfCheck.verify(serialized.model, expected) {
            throw CoreMLExportError(path: path, message: "internal error: the encoded model does not read back (\(problem))", refusals: [],
                                    isInternal: true)
        }
        try CoreMLPackageWriter.write(path: path, model: serialized.model, weights: serialized.blobs)
        return Result(target: target, modelBytes: serialized.model.count, weightBytes: serialized.blobs.size,
                      operations: histogram, outcomes: firstOutcomes, notes: notes, renamed: renamed)
    }

    /// A sparse constant as a dense float/int tensor (linear or coordinate indices), zeros elsewhere.
    static func densify(_ s: SparseTensor) -> Tensor? {
        guard let count = Tensor.elementCount(of: s.dims), count <= 1 << 24, let width = s.values.dataType.bitWidth, width % 8 == 0,
              case .bytes(let values) = s.values.data, case .bytes(let indexBytes) = s.indices.data,
              s.indices.dataType == .int64 else { return nil }
        let bytesPer = width / 8
        let n = s.values.elementCount
        let rank = s.dims.count
        let out = OwnedBuffer(count: count * bytesPer)
        for k in 0..<n {
            var linear = 0
            if s.indices.dims.count == 1 {
                linear = Int(indexBytes.bytes.loadUnaligned(fromByteOffset: k * 8, as: Int64.self))
            } else {
                for d in 0..<rank {
                    let i = Int(indexBytes.bytes.loadUnaligned(fromByteOffset: (k * rank + d) * 8, as: Int64.self))
                    guard i >= 0, i < s.dims[d] else { return nil }
                    linear = linear * s.dims[d] + i
                }
            }
            guard linear >= 0, linear < count else { return nil }
            out.mutableBytes.baseAddress!.advanced(by: linear * bytesPer)
                .copyMemory(from: values.bytes.baseAddress!.advanced(by: k * bytesPer), byteCount: bytesPer)
        }
        return Tensor(name: s.name, dataType: s.values.dataType, dims: s.dims, data: .bytes(out.view))
    }

    /// Every compressed tensor decoded to floats (`--dequantize`).
    static func dequantized(_ model: Model) -> Model {
        var model = model
        model.graph.initializers = model.graph.initializers.map(\.decodedToRaw)
        return model
    }
}

/// A fully lowered program, ready to encode.
public struct LoweredProgram {
    /// The deployment target the program is lowered for.
    public let target: DeploymentTarget
    let inputs: [FeatureDescription]
    let outputs: [FeatureDescription]
    /// The MIL program as the lowerings wrote it (passes rewrite it in place).
    public let program: MILProgram
    let notes: [String]
    let renamed: [(String, String)]
    let model: Model
    /// The classify op the serializer appends (a classifier), nil otherwise.
    let classifier: MILClassifier?
}
