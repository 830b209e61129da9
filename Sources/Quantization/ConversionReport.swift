import GraphIR

/// What a weight conversion did, tensor by tensor: written to report.json and summarised on the terminal.
public struct ConversionReport: Codable, Sendable, Equatable {
    public struct Converted: Codable, Sendable, Equatable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        public var encoding: String
        public var bytesBefore: Int
        public var bytesAfter: Int
        /// Values beyond the format's range, clamped to its largest finite value.
        public var clamped: Int
        public var maxAbsError: Float
        /// 10·log10(Σw² / Σ(w−ŵ)²); nil when the conversion is exact (infinite SNR) or the tensor is all zeros.
        public var snrDB: Double?
        /// Linear formats: storage type, granularity, axis and block size of the scales, symmetric or not.
        public var storage: String?
        public var granularity: String?
        public var axis: Int?
        public var blockSize: Int?
        public var symmetric: Bool?
        /// Element type of the scales: the format's default, or float when float16 could not hold them.
        public var scaleType: String?
        /// Formats with a clipping search: the SNR plain round-to-nearest gets on the same tensor.
        public var rtnSNRDB: Double?
        /// The rule that chose the format (command line, config default/opTypes/names, --include).
        public var rule: String?
    }

    public struct Kept: Codable, Sendable, Equatable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        public var bytes: Int
        public var reason: String
        /// The rule in effect for the tensor when it was left alone.
        public var rule: String?

        public init(name: String, dtype: String, shape: [Int], bytes: Int, reason: String, rule: String? = nil) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
            self.reason = reason
            self.rule = rule
        }
    }

    public struct Totals: Codable, Sendable, Equatable {
        /// All weight bytes, before and after conversion.
        public var bytesBefore: Int
        public var bytesAfter: Int
        public var ratio: Double
        public var convertedTensors: Int
        public var keptTensors: Int
        public var clampedValues: Int
        /// Mean of the converted tensors' SNR weighted by element count (exact tensors excluded); nil if none.
        public var weightedMeanSNRDB: Double?
    }

    public var weights: String
    /// `--weights auto`: the budget and what the choice predicted.
    public var auto: AutoReport?
    public var converted: [Converted]
    public var kept: [Kept]
    public var totals: Totals
}
