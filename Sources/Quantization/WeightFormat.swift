import GraphIR

/// The weight formats `mlpkg convert --weights` offers: one row per format. A format says which element type it
/// stores and how a float32 weight becomes stored bytes and back; the converter and the tests loop over `allCases`.
public enum WeightFormat: String, CaseIterable, Sendable, Codable {
    /// Weights stay as they are.
    case fp32
    /// float32 weights stored as IEEE half precision (round to nearest even; beyond ±65504 clamped and counted).
    case fp16

    /// The encoding given to a converted float32 tensor; nil when the format leaves weights alone.
    public var encoding: WeightEncoding? {
        switch self {
        case .fp32: return nil
        case .fp16: return .float16
        }
    }

    /// Bits per stored element.
    public var bits: Int {
        switch self {
        case .fp32: return 32
        case .fp16: return 16
        }
    }

    /// Smallest float32 tensor (in elements) converted unless `--min-elements` says otherwise. fp16 converts every
    /// weight, as Core ML's fp16 compute precision does: the accelerators compute in fp16 anyway.
    public var defaultMinElements: Int {
        switch self {
        case .fp32, .fp16: return 1
        }
    }

    /// Worst relative error of one element after a round trip (for values within range): half an ulp.
    public var relativeErrorBound: Float {
        switch self {
        case .fp32: return 0
        case .fp16: return 1.0 / 2048
        }
    }
}
