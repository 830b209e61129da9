import GraphIR
import Ops

/// One graph transformation. The pipeline verifies the graph after every pass, so the pass that broke it is named.
public protocol GraphPass: Sendable {
    /// The pass's name, as `PipelineError` reports it.
    var name: String { get }
    /// Rewrites the model; returns whether anything changed.
    func run(_ model: inout Model, context: PassContext) throws -> Bool
}

/// Settings and bookkeeping shared by the passes of one pipeline run.
public final class PassContext {
    /// Limits on the values inference evaluates and folding computes.
    public var limits: InferenceLimits
    /// Largest folded tensor written as an initializer, in bytes.
    public var materializeBytes: Int
    /// Ranges of flexible symbols (`--input-shape NAME=1,1..512`), declared to shape inference so every dim
    /// computed from them has an interval (`ShapeInferenceResult.interval`).
    public var symbolRanges: [String: DimRange] = [:]
    /// The last shape inference result (set by `ShapeInference`).
    public internal(set) var inference: ShapeInferenceResult?
    /// Nodes constant folding replaced with initializers, over every round.
    public internal(set) var foldedNodes = 0
    /// BatchNormalization nodes folded into the Conv/ConvTranspose/Gemm/MatMul before them.
    public internal(set) var foldedBatchNorms = 0
    /// Nodes dead-node elimination removed.
    public internal(set) var removedNodes = 0
    /// Initializers removed: unread ones that folding created, and parameters only a folded BatchNormalization read.
    public internal(set) var removedInitializers = 0
    /// Rounds of the fixed-point stages (folding and dead-node elimination), and whether a cap stopped one.
    public internal(set) var rounds = 0
    /// Whether a fixed-point stage stopped at its cap while its passes were still changing the model.
    public internal(set) var reachedCap = false
    /// Pipelines run with this context (a conversion that prepares its model once shows 1).
    public internal(set) var pipelineRuns = 0
    /// Initializers constant folding created.
    var foldedInitializers = Set<String>()
    /// What the model may still spend on folding, across every round of the run.
    let budget = InferenceBudget(elements: 0, foldedBytes: FoldingPolicy.totalBytes)

    /// Defaults: values of up to 2^16 elements are evaluated; folded results of up to 64 KiB are written.
    public init(limits: InferenceLimits = InferenceLimits(), materializeBytes: Int = 64 << 10) {
        self.limits = limits
        self.materializeBytes = materializeBytes
    }
}

/// A pass left the graph malformed: a bug in mlpkg, reported with the pass's name.
public struct PipelineError: Error, CustomStringConvertible {
    /// The name of the pass after which verification failed.
    public var pass: String
    /// The verifier's message about what is malformed.
    public var underlying: String
    /// The message, marked as an internal error and naming the pass.
    public var description: String { "internal error: pass \(pass) left an invalid graph: \(underlying)" }
}

/// Passes as named, ordered lists. A stage runs once, or repeats its passes until none changes anything (at most
/// `cap` rounds).
public struct Pipeline: Sendable {
    /// One step of a pipeline: a pass run once, or passes repeated until none changes anything or `cap`
    /// rounds have run.
    public enum Stage: Sendable {
        /// Runs the pass once.
        case once(any GraphPass)
        /// Runs the passes in turn until a round changes nothing, or `cap` rounds have run.
        case untilStable([any GraphPass], cap: Int)
    }

    /// The pipeline's name (`infer`, `fold-and-infer`), by which `named(_:)` finds it.
    public let name: String
    /// The stages, run in order.
    public let stages: [Stage]

    /// A pipeline of `stages` called `name`.
    public init(name: String, stages: [Stage]) {
        self.name = name
        self.stages = stages
    }

    /// Shape inference only: annotates value_info.
    public static let infer = Pipeline(name: "infer", stages: [.once(ShapeInference())])
    /// Constant folding and dead-node elimination to a fixed point (at most 8 rounds), shape inference, then
    /// BatchNormalization folding (which reads the inferred ranks and infers again when it changed the graph).
    public static let foldAndInfer = Pipeline(name: "fold-and-infer", stages: [
        .untilStable([ConstantFolding(), DeadNodeElimination()], cap: 8),
        .once(ShapeInference()),
        .once(BatchNormFolding()),
    ])

    /// Every predefined pipeline.
    public static let all = [infer, foldAndInfer]

    /// The predefined pipeline called `name`, or nil when there is none.
    public static func named(_ name: String) -> Pipeline? { all.first { $0.name == name } }

    /// Runs every stage on `model` (which must already be a verified graph), verifying after each pass.
    public func run(_ model: Model, context: PassContext) throws -> Model {
        context.pipelineRuns += 1
        var model = model
        for stage in stages {
            switch stage {
            case .once(let pass):
                _ = try apply(pass, to: &model, context: context)
            case .untilStable(let passes, let cap):
                var round = 0
                while true {
                    var changed = false
                    for pass in passes { changed = try apply(pass, to: &model, context: context) || changed }
                    round += 1
                    context.rounds += 1
                    if !changed { break }
                    if round >= cap {
                        context.reachedCap = true
                        break
                    }
                }
            }
        }
        return model
    }

    private func apply(_ pass: any GraphPass, to model: inout Model, context: PassContext) throws -> Bool {
        let changed = try pass.run(&model, context: context)
        do {
            model.graph = try GraphVerifier.verified(model.graph)
        } catch {
            throw PipelineError(pass: pass.name, underlying: "\(error)")
        }
        return changed
    }
}
