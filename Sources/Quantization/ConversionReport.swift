import GraphIR

/// What a weight conversion did, tensor by tensor: written to report.json and summarised on the terminal.
public struct ConversionReport: Codable, Sendable, Equatable {
    /// One tensor the conversion re-encoded.
    public struct Converted: Codable, Sendable, Equatable {
        /// The tensor's name (a Constant node's tensor takes the node's output name).
        public var name: String
        /// Its element type before conversion, as ONNX names it in lower case (`float`).
        public var dtype: String
        /// Its dims.
        public var shape: [Int]
        /// The encoding written: `float16`, `linear` or `lut`.
        public var encoding: String
        /// The tensor's bytes before conversion.
        public var bytesBefore: Int
        /// Bytes after conversion: the values plus scales and zero points, or the indices plus the tables.
        public var bytesAfter: Int
        /// Values beyond the format's range, clamped to its largest finite value.
        public var clamped: Int
        /// Largest absolute difference between an original value and its decoded one.
        public var maxAbsError: Float
        /// 10·log10(Σw² / Σ(w−ŵ)²); nil when the conversion is exact (infinite SNR) or the tensor is all zeros.
        public var snrDB: Double?
        /// Linear formats: storage type, granularity, axis and block size of the scales, symmetric or not.
        public var storage: String?
        /// `per-tensor`, `per-channel` or `per-block` (tables: `per-tensor` or `per-channel`); nil for float16.
        public var granularity: String?
        /// The channel or blocked axis of the scales; nil for per-tensor scales, tables and float16.
        public var axis: Int?
        /// Elements per block along `axis` (tables: slices of axis 0 per table); nil when not blocked.
        public var blockSize: Int?
        /// Whether the levels are symmetric (no zero point); nil for tables and float16.
        public var symmetric: Bool?
        /// Element type of the scales: the format's default, or float when float16 could not hold them.
        public var scaleType: String?
        /// Formats with a clipping search: the SNR plain round-to-nearest gets on the same tensor.
        public var rtnSNRDB: Double?
        /// The rule that chose the format (command line, config default/opTypes/names, --include).
        public var rule: String?
        /// What the target's rules changed from the settings asked for, and why (`blocks of 20: 32 does not divide
        /// dim 1 (40); Core ML needs whole blocks`); nil when the tensor took the settings as asked.
        public var note: String?
    }

    /// One tensor left as it was, with the reason.
    public struct Kept: Codable, Sendable, Equatable {
        /// The tensor's name.
        public var name: String
        /// Its element type, as ONNX names it in lower case (`float`, `int64`…).
        public var dtype: String
        /// Its dims.
        public var shape: [Int]
        /// Its bytes, unchanged.
        public var bytes: Int
        /// Why it was left alone, e.g. "too small: 512 elements < --min-elements 2048".
        public var reason: String
        /// The rule in effect for the tensor when it was left alone.
        public var rule: String?

        /// An entry for a tensor left as it was.
        public init(name: String, dtype: String, shape: [Int], bytes: Int, reason: String, rule: String? = nil) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
            self.reason = reason
            self.rule = rule
        }
    }

    /// Sums over every weight of the model.
    public struct Totals: Codable, Sendable, Equatable {
        /// All weight bytes, before and after conversion.
        public var bytesBefore: Int
        /// All weight bytes after conversion (kept and untouched tensors at their size).
        public var bytesAfter: Int
        /// `bytesBefore / bytesAfter` (1 when `bytesAfter` is 0).
        public var ratio: Double
        /// Number of tensors converted.
        public var convertedTensors: Int
        /// Number of tensors in `kept`.
        public var keptTensors: Int
        /// Values clamped to a format's range, over all converted tensors.
        public var clampedValues: Int
        /// Mean of the converted tensors' SNR weighted by element count (exact tensors excluded); nil if none.
        public var weightedMeanSNRDB: Double?
    }

    /// The `--weights` format asked for, e.g. `int4` or `auto`.
    public var weights: String
    /// `--weights auto`: the budget and what the choice predicted.
    public var auto: AutoReport?
    /// The tensors re-encoded, in the order they were found.
    public var converted: [Converted]
    /// The tensors left as they were, with the reasons.
    public var kept: [Kept]
    /// Bytes, counts and the mean SNR over all weights.
    public var totals: Totals
}
