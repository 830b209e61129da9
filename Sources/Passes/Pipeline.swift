import GraphIR
import Ops

/// One graph transformation. The pipeline verifies the graph after every pass, so the pass that broke it is named.
public protocol GraphPass: Sendable {
    var name: String { get }
    /// Rewrites the model; returns whether anything changed.
    func run(_ model: inout Model, context: PassContext) throws -> Bool
}

/// Settings and bookkeeping shared by the passes of one pipeline run.
public final class PassContext {
    public var limits: InferenceLimits
    /// Largest folded tensor written as an initializer, in bytes.
    public var materializeBytes: Int
    /// The last shape inference result (set by `ShapeInference`).
    public internal(set) var inference: ShapeInferenceResult?
    public internal(set) var foldedNodes = 0
    /// BatchNormalization nodes folded into the Conv/ConvTranspose/Gemm/MatMul before them.
    public internal(set) var foldedBatchNorms = 0
    public internal(set) var removedNodes = 0
    public internal(set) var removedInitializers = 0
    /// Rounds of the fixed-point stages (folding and dead-node elimination), and whether a cap stopped one.
    public internal(set) var rounds = 0
    public internal(set) var reachedCap = false
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
    public var pass: String
    public var underlying: String
    public var description: String { "internal error: pass \(pass) left an invalid graph: \(underlying)" }
}

/// Passes as named, ordered lists. A stage runs once, or repeats its passes until none changes anything (at most
/// `cap` rounds).
public struct Pipeline: Sendable {
    public enum Stage: Sendable {
        case once(any GraphPass)
        case untilStable([any GraphPass], cap: Int)
    }

    public let name: String
    public let stages: [Stage]

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

    public static let all = [infer, foldAndInfer]

    public static func named(_ name: String) -> Pipeline? { all.first { $0.name == name } }

    /// Runs every stage on `model` (which must already be a verified graph), verifying after each pass.
    public func run(_ model: Model, context: PassContext) throws -> Model {
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
