/// Instance normalization written out — the mean/sub/square/mean/add ε/sqrt/div chain of `fuse_layer_norm` over
/// the spatial axes of a rank-3 or rank-4 input ([2] or [2, 3]), then optionally · gamma and + beta per channel
/// ([C, 1, 1], [1, C, 1, 1] or one value; when layer_norm would take more of the affine, it is left to it) —
/// → instance_norm(x, gamma, beta, epsilon) (iOS15/normalization.py:
/// gamma and beta are [C]). coremltools' `fuse_layernorm_or_instancenorm` (passes/defs/optimize_normalization.py)
/// recognises the same reduction over the spatial axes of a rank-4 input. Runs before `fuse_layer_norm`, which
/// would otherwise take the chain as a layer_norm over the spatial axes and leave the per-channel affine as two
/// ops. One walk, each reduce_mean an anchor.
public enum FuseInstanceNorm: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_instance_norm"

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let r = MILRewriter(program)
        for m in 0..<r.count where !r.isRemoved(m) {
            let mean = r.op(m)
            guard mean.type == "reduce_mean", let match = FuseLayerNorm.match(r, at: m, mean), (3...4).contains(match.type.rank),
                  match.axes == Array(2..<match.type.rank) else { continue }
            let xt = match.type
            func affine(_ name: String) -> MILConst? {
                FuseConvBiasScale.channelValues(r, name, xt, axis: 1).map { .floats($0, xt.dtype, shape: [xt.shape[1]]) }
            }
            // A [.., H, W]-shaped gamma (a LayerNorm over the last dims of a rank-3 input, say) is layer_norm's.
            guard FuseLayerNorm.affineCount(r, match, affine: affine)
                    >= FuseLayerNorm.affineCount(r, match, affine: { FuseLayerNorm.affine(r, match, $0) }) else { continue }
            FuseLayerNorm.replace(r, match, type: "instance_norm", affine: affine, axes: false)
        }
        r.finish()
    }
}
