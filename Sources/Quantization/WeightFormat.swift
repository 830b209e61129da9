import GraphIR

/// How finely scales are shared (`--granularity`).
public enum Granularity: String, CaseIterable, Sendable, Codable {
    case perTensor = "per-tensor"
    case perChannel = "per-channel"
    case perBlock = "per-block"
}

/// The weight formats `mlpkg convert --weights` offers: one row per format. A row says what it stores, which
/// tensors it takes, its defaults and the error bound its round trip keeps; the converter and the tests loop over
/// `allCases`, so a new row is tested the moment it is added.
public enum WeightFormat: String, CaseIterable, Sendable, Codable {
    /// Weights stay as they are.
    case fp32
    /// float32 weights stored as IEEE half precision (round to nearest even; beyond ±65504 clamped and counted).
    case fp16
    /// Linear 8-bit: symmetric int8 q ∈ [−127, 127] (scale = max|w|/127), or asymmetric uint8.
    case int8
    /// Linear 4-bit: asymmetric uint4 with zero points (the default, measured best at its size), or symmetric int4
    /// q ∈ [−8, 7]; a clipping search either way; packed two per byte.
    case int4
    /// Linear 2, 3, 5, 6 and 7 bits: as int4 (per-block scales, clipping search), the integers packed at their width
    /// in the package (stored as int4/uint4 up to 4 bits, int8/uint8 above, when exported).
    case int2, int3, int5, int6, int7
    /// Palettized: N-bit indices into a table of 2^N float16 values (exact 1-D k-means), one table per tensor or per
    /// group of slices along axis 0.
    case lut1, lut2, lut3, lut4, lut6, lut8
    /// Not a storage format: each tensor gets the one that serves `--max-size` or `--min-snr` best (AutoSelection).
    case auto

    /// Bits per stored element.
    public var bits: Int {
        switch self {
        case .fp32: return 32
        case .fp16: return 16
        case .int8: return 8
        case .int4: return 4
        case .int2: return 2
        case .int3: return 3
        case .int5: return 5
        case .int6: return 6
        case .int7: return 7
        case .lut1: return 1
        case .lut2: return 2
        case .lut3: return 3
        case .lut4: return 4
        case .lut6: return 6
        case .lut8: return 8
        case .auto: return 0
        }
    }

    /// Whether the format is linear quantization (int2 … int8).
    public var isLinear: Bool { rawValue.hasPrefix("int") }

    /// Linear formats packed at a width ONNX has no type for (2, 3, 5, 6, 7 bits): the package stores them at that
    /// width; exports widen them to the `storage` type.
    public var packedBits: Int? { isLinear && bits != 4 && bits != 8 ? bits : nil }

    /// Symmetric (signed levels, no zero point) unless `--asymmetric`: int8 yes; below 8 bits no — asymmetric levels
    /// with a zero point gave the better output agreement at their size on every model measured (docs/QUANTIZATION.md).
    public var defaultSymmetric: Bool { !(isLinear && bits < 8) }

    /// Lookup-table formats (`Palettizer`).
    public var isPalette: Bool { rawValue.hasPrefix("lut") }

    /// Integer and table formats: they hold weights only (`weightInputsOnly`), with coremltools' size threshold.
    public var isCompact: Bool { isLinear || isPalette }

    /// Smallest float32 tensor (in elements) converted unless `--min-elements` says otherwise. fp16 converts every
    /// weight, as Core ML's fp16 compute precision does; integer formats follow coremltools' 2048-element threshold.
    public var defaultMinElements: Int { isCompact ? 2048 : 1 }

    /// Integer and table formats take only tensors that feed a weight input (Conv W, MatMul B…); fp16 takes every
    /// float weight.
    public var weightInputsOnly: Bool { isCompact }

    /// Tables: per tensor (per-channel groups `--block-size` slices of axis 0 per table).
    public var defaultGranularity: Granularity {
        if isLinear { return bits < 8 ? .perBlock : .perChannel }
        return isPalette ? .perTensor : .perChannel
    }

    /// The integer type values are stored in.
    public func storage(symmetric: Bool) -> DataType? {
        guard isLinear else { return nil }
        if bits <= 4 { return symmetric ? .int4 : .uint4 }
        return symmetric ? .int8 : .uint8
    }

    /// The stored integer range. Symmetric int8 leaves −128 unused so that ±max|w| map to ±127; symmetric int4 uses
    /// the full [−8, 7] (the clipping search chooses whether the −8 end is worth using: never worse than [−7, 7]).
    public func range(symmetric: Bool) -> ClosedRange<Int> {
        guard isLinear else { return 0...0 }
        if symmetric { return bits == 8 ? -127...127 : -(1 << (bits - 1))...((1 << (bits - 1)) - 1) }
        return 0...((1 << bits) - 1)
    }

    /// The type scales are stored in unless `--scale-type` says otherwise. int4's per-block scales are an eighth of
    /// its bytes, so it stores them as float16 (as ggml's Q4_0 and Core ML's fp16 models do); int8 keeps float32.
    public var defaultScaleType: DataType { isLinear && bits < 8 ? .float16 : .float }

    /// Whether the format searches clipping scales per group (round-to-nearest otherwise).
    public var searchesClipping: Bool { isLinear && bits < 8 }

    /// Worst relative error of one element after a round trip, for float formats (values within range).
    public var relativeErrorBound: Float {
        switch self {
        case .fp16: return 1.0 / 2048
        default: return 0
        }
    }

    /// Worst absolute error of one element, in units of its group's scale, for linear formats without clipping:
    /// round-to-nearest is off by at most half a step.
    public var scaleErrorBound: Float { isLinear ? 0.5 : 0 }

    /// The encoding a converted tensor gets, for float formats.
    public var floatEncoding: WeightEncoding? {
        self == .fp16 ? .float16 : nil
    }
}
