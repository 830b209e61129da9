/// The Core ML release a model is written for. Each iOS release has macOS, watchOS and tvOS equivalents with the
/// same specification version and MIL opset (coremltools' `AvailableTarget`: iOS15 = 6 … iOS18 = 9).
public struct DeploymentTarget: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Core ML's `Model.specificationVersion`: 6 (iOS15) … 9 (iOS18).
    public let specificationVersion: Int
    /// The spelling the user chose (`iOS16`, `macOS13`…), kept for messages and metadata.
    public let name: String

    /// iOS 15 (macOS 12): specification version 6, the lowest target mlpkg writes.
    public static let iOS15 = DeploymentTarget(specificationVersion: 6, name: "iOS15")
    /// iOS 16 (macOS 13): specification version 7.
    public static let iOS16 = DeploymentTarget(specificationVersion: 7, name: "iOS16")
    /// iOS 17 (macOS 14): specification version 8.
    public static let iOS17 = DeploymentTarget(specificationVersion: 8, name: "iOS17")
    /// iOS 18 (macOS 15): specification version 9.
    public static let iOS18 = DeploymentTarget(specificationVersion: 9, name: "iOS18")

    /// Every accepted spelling, lowest first within each platform.
    public static let names: [(String, Int)] = [
        ("iOS15", 6), ("iOS16", 7), ("iOS17", 8), ("iOS18", 9),
        ("macOS12", 6), ("macOS13", 7), ("macOS14", 8), ("macOS15", 9),
        ("watchOS8", 6), ("watchOS9", 7), ("watchOS10", 8), ("watchOS11", 9),
        ("tvOS15", 6), ("tvOS16", 7), ("tvOS17", 8), ("tvOS18", 9),
    ]

    /// The target a spelling in `names` stands for, ignoring case; nil for any other text.
    public init?(parsing text: String) {
        guard let match = Self.names.first(where: { $0.0.lowercased() == text.lowercased() }) else { return nil }
        self.init(specificationVersion: match.1, name: match.0)
    }

    init(specificationVersion: Int, name: String) {
        self.specificationVersion = specificationVersion
        self.name = name
    }

    /// The iOS spelling of the same version (for messages that name the target an encoding needs).
    public static func iOS(_ specificationVersion: Int) -> DeploymentTarget {
        DeploymentTarget(specificationVersion: specificationVersion, name: "iOS\(specificationVersion + 9)")
    }

    /// The MIL opset name of the main function (`CoreML5` for iOS15 … `CoreML8` for iOS18).
    public var opset: String { "CoreML\(specificationVersion - 1)" }

    /// The spelling the target was given in.
    public var description: String { name }

    /// Orders targets by specification version.
    public static func < (a: DeploymentTarget, b: DeploymentTarget) -> Bool { a.specificationVersion < b.specificationVersion }
    /// Targets are equal when their specification versions are, whatever the spelling.
    public static func == (a: DeploymentTarget, b: DeploymentTarget) -> Bool { a.specificationVersion == b.specificationVersion }
    /// Hashes the specification version alone, as `==` compares it.
    public func hash(into hasher: inout Hasher) { hasher.combine(specificationVersion) }
}
