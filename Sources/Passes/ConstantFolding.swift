import GraphIR
import Ops

/// Constant folding: evaluates, on the CPU, every default-domain node whose outputs inference can compute — all
/// inputs constant, or Shape/Size of a tensor whose shape is static — and replaces it with initializers of the same
/// names. Only ops with an evaluation hook fold (the shape-chain ops: Shape, Size, Gather, Concat, Slice, Squeeze,
/// Unsqueeze, Reshape, Flatten, Transpose, Expand, Tile, Split, Cast, Range, ConstantOfShape, Where, the
/// arithmetic and comparison ops, ReduceSum/Prod/Max/Min, Identity, If with a constant condition…); never random
/// ops, never a node producing a graph output, never a result of more than `materializeBytes` (64 KiB; those
/// stay computed at run time, though their values still drive inference). Dead producers are left to
/// `DeadNodeElimination`.
public struct ConstantFolding: GraphPass {
    /// The pass's name, as `PipelineError` reports it.
    public let name = "fold-constants"

    /// The pass; its limits come from the `PassContext`.
    public init() {}

    /// Replaces every node inference can compute with initializers; returns whether any node was folded.
    public func run(_ model: inout Model, context: PassContext) throws -> Bool {
        let engine = InferenceEngine(model: model, limits: context.limits,
                                     folding: FoldingPolicy(materializeBytes: context.materializeBytes, budget: context.budget))
        let (folded, findings) = engine.run()
        guard findings.folded > 0 else { return false }
        // Every new initializer was a node output: note them so dead ones can go.
        var before = Set<String>()
        model.graph.forEachGraph { g, _ in before.formUnion(g.initializers.map(\.name)) }
        folded.graph.forEachGraph { g, _ in
            for t in g.initializers where !before.contains(t.name) { context.foldedInitializers.insert(t.name) }
        }
        model = folded
        context.foldedNodes += findings.folded
        return true
    }
}
