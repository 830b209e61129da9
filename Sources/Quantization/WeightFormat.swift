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
    /// Linear 4-bit: symmetric int4 q ∈ [−8, 7] with a clipping search, or asymmetric uint4; packed two per byte.
    case int4
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
        case .lut1: return 1
        case .lut2: return 2
        case .lut3: return 3
        case .lut4: return 4
        case .lut6: return 6
        case .lut8: return 8
        case .auto: return 0
        }
    }

    public var isLinear: Bool { self == .int8 || self == .int4 }

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
        switch self {
        case .int4: return .perBlock
        default: return isPalette ? .perTensor : .perChannel
        }
    }

    /// The integer type values are stored in.
    public func storage(symmetric: Bool) -> DataType? {
        switch self {
        case .int8: return symmetric ? .int8 : .uint8
        case .int4: return symmetric ? .int4 : .uint4
        default: return nil
        }
    }

    /// The stored integer range. Symmetric int8 leaves −128 unused so that ±max|w| map to ±127; symmetric int4 uses
    /// the full [−8, 7] (the clipping search chooses whether the −8 end is worth using: never worse than [−7, 7]).
    public func range(symmetric: Bool) -> ClosedRange<Int> {
        switch (self, symmetric) {
        case (.int8, true): return -127...127
        case (.int8, false): return 0...255
        case (.int4, true): return -8...7
        case (.int4, false): return 0...15
        default: return 0...0
        }
    }

    /// The type scales are stored in unless `--scale-type` says otherwise. int4's per-block scales are an eighth of
    /// its bytes, so it stores them as float16 (as ggml's Q4_0 and Core ML's fp16 models do); int8 keeps float32.
    public var defaultScaleType: DataType { self == .int4 ? .float16 : .float }

    /// Whether the format searches clipping scales per group (round-to-nearest otherwise).
    public var searchesClipping: Bool { self == .int4 }

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
