/// One rewrite of a MIL program: a small type registered by name in `MILPipeline`. A pass keeps the interface
/// (inputs, outputs and their types) and the values the program computes; the pipeline verifies after each one.
public protocol MILPass: Sendable {
    /// The name pipelines list and errors cite.
    static var name: String { get }
    /// Rewrites `program` in place.
    static func run(_ program: MILProgram)
}

/// A named, ordered list of passes. The program is verified after every pass, so a pass that breaks it is named.
public struct MILPipeline: Sendable {
    /// The pipeline's name (`--no-optimize` selects `none`).
    public let name: String
    /// The passes, in order.
    public let passes: [any MILPass.Type]

    /// Every registered pass, by name.
    public static let registry: [any MILPass.Type] = [
        NoOpElimination.self, DeadCodeElimination.self, ConstDeduplication.self, FuseLinear.self, FuseSilu.self,
        FuseGelu.self, MergeLayoutChains.self, FuseLayerNorm.self, FuseTransposeMatmul.self, FuseGeluTanh.self,
        FuseGeluSigmoid.self, FuseInstanceNorm.self, FuseConvBiasScale.self, MergeMatmulOperandScales.self, FuseMatmulScale.self, FuseScaledDotProductAttention.self, FusePadConv.self,
        FuseConcatInterleave.self, FuseSlicesToSplit.self, FoldConstantLayout.self, FuseSplitStack.self,
        TransposeUnitAxesToReshape.self, CollapsePermutationChains.self, RemoveSoftmaxNaNGuard.self, MergeNestedConcats.self,
    ]

    /// What `export --format coreml` runs: clean-ups first, then fusions, then clean-ups of what the fusions left.
    /// Order matters where one fusion's output is another's input: the activation and norm fusions run on the
    /// elementwise ops the lowerings wrote; transposes fold into matmul flags before `fuse_linear`; `linear` exists
    /// before `fuse_conv_bias_scale` folds per-channel ops into it; the scales of q and k merge onto the scores, then
    /// attention becomes scaled_dot_product_attention (iOS18) before `fuse_matmul_scale` moves scalar scales into
    /// weights; pads fold into convs, channel shuffles into concats, and slices into splits. A transpose that reached
    /// its matmul only once a scale moved off it (timm's `q · scale @ kᵀ`) becomes a flag in a second
    /// `fuse_transpose_matmul`. Last, layout ops that
    /// only rearrange (a stack of a split's pieces, a transpose of unit axes) become reshapes and transposes after the
    /// fusions that read transposes have run, and the layout chains merge and cancel (twice: a transpose pair that
    /// cancels leaves two reshapes to merge).
    public static let standard = MILPipeline(name: "standard", passes: [
        NoOpElimination.self, DeadCodeElimination.self, ConstDeduplication.self, FoldConstantLayout.self, MergeLayoutChains.self,
        CollapsePermutationChains.self, RemoveSoftmaxNaNGuard.self, FuseGelu.self,
        FuseGeluTanh.self, FuseGeluSigmoid.self, FuseSilu.self, FuseInstanceNorm.self, FuseLayerNorm.self, FuseTransposeMatmul.self, FuseLinear.self,
        FuseConvBiasScale.self, MergeMatmulOperandScales.self, FuseScaledDotProductAttention.self, FuseMatmulScale.self, FusePadConv.self,
        FuseConcatInterleave.self, MergeNestedConcats.self, FuseSlicesToSplit.self, FuseTransposeMatmul.self, FuseSplitStack.self, TransposeUnitAxesToReshape.self, MergeLayoutChains.self,
        NoOpElimination.self, MergeLayoutChains.self, NoOpElimination.self, DeadCodeElimination.self, ConstDeduplication.self,
    ])
    /// Nothing: the program as the lowerings wrote it (`--no-optimize`).
    public static let none = MILPipeline(name: "none", passes: [])

    /// A pipeline of `passes`.
    public init(name: String, passes: [any MILPass.Type]) {
        self.name = name
        self.passes = passes
    }

    /// Verifies the program, then runs each pass and verifies again; a failure names the pass that broke it.
    public func run(_ program: MILProgram) throws(MILPipelineError) {
        do throws(MILVerificationError) {
            try MILVerifier.verify(program)
        } catch {
            throw MILPipelineError(pass: nil, error: error)
        }
        for pass in passes {
            pass.run(program)
            do throws(MILVerificationError) {
                try MILVerifier.verify(program)
            } catch {
                throw MILPipelineError(pass: pass.name, error: error)
            }
        }
    }
}

/// A program that failed verification: after lowering (`pass` nil) or after the named pass.
public struct MILPipelineError: Error, Sendable, CustomStringConvertible {
    /// The pass after which verification failed; nil when the lowered program itself is invalid.
    public var pass: String?
    /// What the verifier found.
    public var error: MILVerificationError

    /// One line.
    public var description: String {
        (pass.map { "after MIL pass \($0): " } ?? "") + error.description
    }
}
