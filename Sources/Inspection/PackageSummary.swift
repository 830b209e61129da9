import MLPackage

/// What `inspect` adds for a package: format, source, options and how the weights are stored.
public struct PackageSummary: Codable, Sendable, Equatable {
    public struct EncodingTotal: Codable, Sendable, Equatable {
        public var encoding: String
        public var tensors: Int
        public var bytes: Int
    }

    public var formatVersion: String
    public var weightsBytes: Int
    public var source: Provenance.Source
    public var producer: Provenance.Producer
    public var options: [String: String]
    public var encodings: [EncodingTotal]

    public init(_ manifest: Manifest) {
        var totals: [String: EncodingTotal] = [:]
        for t in manifest.tensors {
            var entry = totals[t.encoding.kind] ?? EncodingTotal(encoding: t.encoding.kind, tensors: 0, bytes: 0)
            entry.tensors += 1
            entry.bytes += t.length
            totals[t.encoding.kind] = entry
        }
        formatVersion = manifest.formatVersion
        weightsBytes = manifest.weights.bytes
        source = manifest.provenance.source
        producer = manifest.provenance.producer
        options = manifest.provenance.options
        encodings = totals.keys.sorted().map { totals[$0]! }
    }
}
