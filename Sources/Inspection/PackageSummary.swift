import MLPackage

/// What `inspect` adds for a package: format, source, options and how the weights are stored.
public struct PackageSummary: Codable, Sendable, Equatable {
    /// The tensors of one encoding in weights.bin, summed.
    public struct EncodingTotal: Codable, Sendable, Equatable {
        /// The encoding's `kind`: raw, float16, linear or lut.
        public var encoding: String
        /// Tensor table entries with this encoding (scale, zero-point and table tensors are raw entries).
        public var tensors: Int
        /// Sum of their blob lengths in weights.bin, padding excluded.
        public var bytes: Int
    }

    /// The manifest's `formatVersion`, such as "1.0".
    public var formatVersion: String
    /// Size of weights.bin in bytes, as the manifest records it.
    public var weightsBytes: Int
    /// The source model the package was converted from: file name, size and SHA-256.
    public var source: Provenance.Source
    /// The program that wrote the package, and its version.
    public var producer: Provenance.Producer
    /// The conversion options recorded in the manifest's provenance, by name.
    public var options: [String: String]
    /// Blob totals per encoding, sorted by encoding name.
    public var encodings: [EncodingTotal]

    /// Summarises a package from its manifest alone (weights.bin is not read).
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
