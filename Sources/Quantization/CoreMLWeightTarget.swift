import GraphIR

/// The weight encodings a Core ML deployment target can write, for conversions whose output goes to Core ML
/// (`convert -o X.mlpackage`, `convert --for coreml`) and for the exporter's and the audit's checks, so that all
/// three read one table. Facts from coremltools 9.0's MIL op definitions:
/// - `constexpr_affine_dequantize` (iOS16, ops/defs/iOS16/constexpr_ops.py): quantized data int8 or uint8 only, a
///   scale and zero point that are scalars or vectors along one axis — no blocks, no 4-bit storage;
/// - `constexpr_blockwise_shift_scale` (iOS18, ops/defs/iOS18/compression.py): data int4, uint4, int8 or uint8, a
///   scale of the data's rank whose every dim divides the data's ("block_size[i] = data.shape[i] /
///   scale.shape[i]" must be an integer) — any axis may be blocked, and only whole blocks exist;
/// - `constexpr_lut_to_dense` iOS16 form (ops/defs/iOS16/constexpr_ops.py): one table of 2, 4, 16, 64 or 256
///   entries (1, 2, 4, 6 or 8 bits) for the whole tensor, indices packed LSB first into a uint8 vector;
/// - `constexpr_lut_to_dense` iOS18 form (ops/defs/iOS18/compression.py): uint1/2/3/4/6/8 indices, tables
///   grouped along any axis when the group divides it;
/// - iOS15 has no `constexpr_*` op at all: weights are plain consts (fp16 or fp32).
public struct CoreMLWeightTarget: Sendable, Equatable, CustomStringConvertible {
    /// Core ML's specification version: 6 (iOS15) … 9 (iOS18).
    public var specificationVersion: Int

    /// The target for a specification version (6 … 9; later versions write what iOS18 writes).
    public init(specificationVersion: Int) {
        self.specificationVersion = specificationVersion
    }

    /// iOS18 (specification 9), what a Core ML output is written for when no `--deployment-target` is given: the
    /// exporter then picks the lowest target the stored encodings need, so every encoding iOS18 writes is open.
    public static let newest = CoreMLWeightTarget(specificationVersion: 9)

    /// `iOS16` for specification 7.
    public var description: String { "iOS\(specificationVersion + 9)" }

    /// Smallest block the conversion moves to when the asked block does not divide the blocked axis: below 8
    /// elements per scale the fp16 scale (and zero point) cost ≥ 2.5 bits per int4 weight, and per-channel scales
    /// are the smaller choice.
    public static let minimumBlock = 8

    /// The largest block in `minimumBlock…requested` that divides `dim`; nil when none does.
    public static func dividingBlock(dim: Int, requested: Int) -> Int? {
        guard requested >= minimumBlock else { return dim % requested == 0 ? requested : nil }
        for b in stride(from: min(requested, dim), through: minimumBlock, by: -1) where dim % b == 0 { return b }
        return nil
    }

    /// Bits per index a single table takes at this target.
    public func tableBits(grouped: Bool) -> Set<Int> {
        if specificationVersion >= 9 { return [1, 2, 3, 4, 6, 8] }
        return specificationVersion >= 7 && !grouped ? [1, 2, 4, 6, 8] : []
    }

    /// The lowest specification version that writes `encoding` for a tensor of `dims` (nil: none writes it).
    public static func minimumSpecificationVersion(_ encoding: WeightEncoding, dims: [Int]) -> Int? {
        switch encoding {
        case .raw, .float16: return 6
        case .linear(let q):
            if problem(q, dims: dims) != nil { return nil }
            return q.blockSize != nil || q.storage == .int4 || q.storage == .uint4 ? 9 : 7
        case .palette(let p):
            if ![1, 2, 3, 4, 6, 8].contains(p.bits) { return nil }
            if let g = p.groupSize, dims.first.map({ $0 % g != 0 }) ?? true { return nil }
            return p.groupSize == nil && [1, 2, 4, 6, 8].contains(p.bits) ? 7 : 9
        }
    }

    /// Why no target writes a linear encoding (blocks that do not divide their axis, a storage type Core ML has
    /// no constexpr for), or nil.
    static func problem(_ q: LinearQuantization, dims: [Int]) -> String? {
        guard [.int8, .uint8, .int4, .uint4].contains(q.storage) else { return "storage \(q.storage.name) has no Core ML form" }
        if let b = q.blockSize, let a = q.axis, a < dims.count, dims[a] % b != 0 {
            return "blocks of \(b) do not divide dim \(a) (\(dims[a])); Core ML's constexpr_blockwise_shift_scale needs whole blocks"
        }
        return nil
    }

    /// Why this target cannot write `encoding` for a tensor of `dims`, or nil when it can. The sentence names the
    /// target that would, when one does.
    public func problem(_ encoding: WeightEncoding, dims: [Int]) -> String? {
        switch encoding {
        case .raw, .float16: return nil
        case .linear(let q):
            if let p = Self.problem(q, dims: dims) { return p }
            let needed = Self.minimumSpecificationVersion(encoding, dims: dims) ?? 9
            guard specificationVersion >= needed else {
                return "\(q.storage.name) \(q.granularity) needs iOS\(needed + 9) (\(needed == 9 ? "constexpr_blockwise_shift_scale" : "constexpr_affine_dequantize"))"
            }
            return nil
        case .palette(let p):
            guard let needed = Self.minimumSpecificationVersion(encoding, dims: dims) else {
                if let g = p.groupSize, let rows = dims.first, rows % g != 0 {
                    return "tables of \(g) slices do not divide dim 0 (\(rows)); Core ML needs whole groups"
                }
                return "\(p.bits)-bit indices; Core ML takes 1, 2, 3, 4, 6 or 8"
            }
            guard specificationVersion >= needed else {
                let what = p.groupSize != nil ? "grouped tables" : "\(p.bits)-bit tables"
                return "\(what) need iOS\(needed + 9) (constexpr_lut_to_dense, iOS18 form)"
            }
            return nil
        }
    }

    /// The settings a tensor of `dims` (blocks along `reduction`) is converted with so that this target can write
    /// it, and a note saying what changed and why (nil when nothing did).
    func settle(_ settings: TensorSettings, dims: [Int], reduction: Int?) -> (TensorSettings, String?) {
        var s = settings
        let f = settings.format
        if f.isCompact, specificationVersion < 7 {
            s.format = .fp16
            return (s, "fp16: \(description) has no compressed weights (constexpr ops start at iOS16)")
        }
        if f.isLinear {
            if specificationVersion < 9, f.bits < 8 || s.granularity == .perBlock {
                s.format = .int8
                if s.granularity == .perBlock { s.granularity = .perChannel }
                return (s, "int8 \(s.granularity.rawValue): \(description) writes 8-bit per-tensor or per-channel scales only "
                        + "(constexpr_affine_dequantize; 4-bit and blocks need iOS18)")
            }
            if s.granularity == .perBlock, let r = reduction, r < dims.count, dims[r] >= s.blockSize, dims[r] % s.blockSize != 0 {
                if let b = Self.dividingBlock(dim: dims[r], requested: s.blockSize) {
                    s.blockSize = b
                    return (s, "blocks of \(b): \(settings.blockSize) does not divide dim \(r) (\(dims[r])); Core ML needs whole blocks")
                }
                s.granularity = .perChannel
                return (s, "per-channel: no block of \(Self.minimumBlock)…\(settings.blockSize) divides dim \(r) (\(dims[r])); Core ML needs whole blocks")
            }
            return (s, nil)
        }
        if f.isPalette {
            let grouped = s.granularity != .perTensor
            if grouped, specificationVersion < 9 {
                s.granularity = .perTensor
                var note = "one table: \(description) writes per-tensor tables only (constexpr_lut_to_dense, iOS16 form)"
                if !tableBits(grouped: false).contains(f.bits) {
                    s.format = .lut4
                    note += "; lut4: 3-bit indices need iOS18"
                }
                return (s, note)
            }
            if !tableBits(grouped: false).contains(f.bits) {
                s.format = .lut4
                return (s, "lut4: \(description) writes 1, 2, 4, 6 or 8-bit tables (constexpr_lut_to_dense, iOS16 form); 3-bit indices need iOS18")
            }
        }
        return (s, nil)
    }

    /// Whether `--weights auto` may offer `candidate` at this target (before `settle` adjusts its blocks).
    func offers(_ candidate: TensorSettings) -> Bool {
        let f = candidate.format
        if !f.isCompact { return true }
        if specificationVersion < 7 { return false }
        if f.isLinear { return specificationVersion >= 9 || (f.bits == 8 && candidate.granularity != .perBlock) }
        return tableBits(grouped: candidate.granularity != .perTensor).contains(f.bits)
    }
}
