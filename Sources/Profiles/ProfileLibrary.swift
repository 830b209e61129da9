import Foundation

/// A profile file that cannot be used: what is wrong and where ("rules[3] 'ane-x': kind 'maxRank' needs 'max'").
public struct ProfileError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file, or the built-in profile's name.
    public var origin: String
    /// What is wrong, e.g. "rules[3] 'ane-x': kind 'maxRank' needs 'max'".
    public var message: String

    /// An error about `origin`.
    public init(origin: String, _ message: String) {
        self.origin = origin
        self.message = message
    }

    /// `ORIGIN: message`, on one line.
    public var description: String { "\(origin): \(message)" }
}

/// The built-in profiles (JSON data files embedded in the binary) and loading of users' profile files.
public enum ProfileLibrary {
    /// Built-in profile names: the three compute units, then the base they extend.
    public static let builtInNames = ["neural-engine", "gpu", "cpu", "core-ml"]

    /// The bytes of a built-in profile file (Sources/Profiles/Resources/NAME.json).
    public static func builtInData(named name: String) -> [UInt8]? {
        switch name {
        case "core-ml": return PackageResources.core_ml_json
        case "neural-engine": return PackageResources.neural_engine_json
        case "gpu": return PackageResources.gpu_json
        case "cpu": return PackageResources.cpu_json
        default: return nil
        }
    }

    /// A built-in profile, resolved.
    public static func builtIn(_ name: String) throws(ProfileError) -> Profile {
        guard let data = builtInData(named: name) else {
            throw ProfileError(origin: name, "no such built-in profile (built-in: \(builtInNames.joined(separator: ", ")))")
        }
        return try resolve(try decode(Data(data), origin: name), origin: name, file: nil)
    }

    /// The built-in profile of each compute unit.
    public static func builtInUnitProfiles() throws(ProfileError) -> [ComputeUnit: Profile] {
        var profiles: [ComputeUnit: Profile] = [:]
        for unit in ComputeUnit.allCases { profiles[unit] = try builtIn(unit.rawValue) }
        return profiles
    }

    /// A user's profile file, checked and resolved (it may extend a built-in profile).
    public static func load(file path: String) throws(ProfileError) -> Profile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ProfileError(origin: path, "cannot be read: \((error as NSError).localizedDescription)")
        }
        guard data.count <= 16 << 20 else { throw ProfileError(origin: path, "is over 16 MiB; not a profile") }
        return try resolve(try decode(data, origin: path), origin: path, file: path)
    }

    /// Parses and checks one document (not its `extends`).
    public static func decode(_ data: Data, origin: String) throws(ProfileError) -> ProfileDocument {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw ProfileError(origin: origin, "is not valid JSON (\((error as NSError).localizedDescription))")
        }
        guard let top = object as? [String: Any] else { throw ProfileError(origin: origin, "is not a JSON object") }
        guard top["format"] as? String == ProfileDocument.formatName else {
            throw ProfileError(origin: origin, "'format' must be \"\(ProfileDocument.formatName)\"")
        }
        if let version = top["formatVersion"] as? Int, version > ProfileDocument.version {
            throw ProfileError(origin: origin, "formatVersion \(version) is newer than this mlpkg reads (\(ProfileDocument.version)); upgrade mlpkg")
        }
        if let rules = top["rules"] as? [Any] {
            for (index, item) in rules.enumerated() {
                guard let rule = item as? [String: Any] else { continue }
                let unknown = Set(rule.keys).subtracting(Rule.knownKeys).sorted()
                if let key = unknown.first {
                    let id = (rule["id"] as? String).map { " '\($0)'" } ?? ""
                    throw ProfileError(origin: origin, "rules[\(index)]\(id): unknown key '\(key)'")
                }
            }
        }
        let document: ProfileDocument
        do {
            document = try JSONDecoder().decode(ProfileDocument.self, from: data)
        } catch {
            throw ProfileError(origin: origin, "does not match the profile schema: \(describe(error))")
        }
        try check(document, origin: origin)
        return document
    }

    static func check(_ d: ProfileDocument, origin: String) throws(ProfileError) {
        func fail(_ message: String) -> ProfileError { ProfileError(origin: origin, message) }
        guard d.formatVersion == ProfileDocument.version else { throw fail("formatVersion must be \(ProfileDocument.version)") }
        guard !d.name.isEmpty, d.name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
            throw fail("'name' must be a non-empty word (letters, digits, '-', '_', '.')")
        }
        var ids = Set<String>()
        for (index, rule) in (d.rules ?? []).enumerated() {
            if let problem = rule.problem() { throw fail("rules[\(index)] '\(rule.id)': \(problem)") }
            guard ids.insert(rule.id).inserted else { throw fail("rules[\(index)]: duplicate id '\(rule.id)'") }
        }
        for (index, entry) in (d.support ?? []).enumerated() {
            if entry.ops.isEmpty { throw fail("support[\(index)] '\(entry.id)': 'ops' is empty") }
            if entry.source.isEmpty { throw fail("support[\(index)] '\(entry.id)': 'source' is empty") }
        }
        if let precision = d.precision, !["float16", "float32"].contains(precision.compute) {
            throw fail("precision.compute must be float16 or float32")
        }
        for (chip, cost) in d.cost?.chips ?? [:] where !(cost.gflops > 0 && cost.bandwidthGBps > 0) {
            throw fail("cost.chips['\(chip)']: gflops and bandwidthGBps must be positive")
        }
        if let transfer = d.transfer {
            if !(transfer.latencyMicroseconds >= 0) { throw fail("transfer.latencyMicroseconds must be 0 or more") }
            if let n = transfer.maxRunNodes, n < 0 { throw fail("transfer.maxRunNodes must be 0 or more") }
        }
    }

    /// Resolves `extends` (built-in profiles only; chains are short, so depth is capped at 8).
    static func resolve(_ document: ProfileDocument, origin: String, file: String?) throws(ProfileError) -> Profile {
        var chain: [ProfileDocument] = [document]
        var current = document
        while let parent = current.extends {
            guard chain.count < 8 else { throw ProfileError(origin: origin, "'extends' chain is longer than 8") }
            guard !chain.contains(where: { $0.name == parent }) else {
                throw ProfileError(origin: origin, "'extends' forms a cycle through '\(parent)'")
            }
            guard let data = builtInData(named: parent) else {
                throw ProfileError(origin: origin, "'extends' names '\(parent)', which is not a built-in profile (\(builtInNames.joined(separator: ", ")))")
            }
            current = try decode(Data(data), origin: parent)
            chain.insert(current, at: 0)
        }
        var support: [SupportEntry] = []
        var rules: [Rule] = []
        var unit: ComputeUnit?
        var precision: Precision?
        var transfer: TransferCost?
        var chips: [String: ChipCost] = [:]
        for d in chain {
            let disabled = Set(d.disable ?? [])
            for id in disabled.sorted() where !rules.contains(where: { $0.id == id }) {
                throw ProfileError(origin: origin, "'disable' names '\(id)', which no profile it extends declares")
            }
            rules.removeAll { disabled.contains($0.id) }
            for var rule in d.rules ?? [] {
                guard !rules.contains(where: { $0.id == rule.id }) else {
                    throw ProfileError(origin: origin, "rule id '\(rule.id)' is already declared by a profile it extends")
                }
                rule.profile = d.name
                rules.append(rule)
            }
            for var entry in d.support ?? [] {
                entry.profile = d.name
                entry.unitLevel = d.unit != nil || d.name != chain[0].name
                support.append(entry)
            }
            unit = d.unit ?? unit
            precision = d.precision ?? precision
            transfer = d.transfer ?? transfer
            for (chip, cost) in d.cost?.chips ?? [:] { chips[chip] = cost }
        }
        return Profile(name: document.name, description: document.description ?? "", unit: unit,
                       chain: chain.map(\.name), file: file, precision: precision, support: support, rules: rules,
                       transfer: transfer, chips: chips)
    }

    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let text = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return text.isEmpty ? "top level" : String(text.drop { $0 == "." })
        }
        switch error {
        case .keyNotFound(let key, let c): return "missing key '\(key.stringValue)' at \(path(c))"
        case .typeMismatch(_, let c): return "wrong type at \(path(c)) (\(c.debugDescription))"
        case .valueNotFound(_, let c): return "missing value at \(path(c))"
        case .dataCorrupted(let c): return "\(c.debugDescription) at \(path(c))"
        @unknown default: return "\(error)"
        }
    }
}
