import Foundation
import Testing
@testable import Profiles

@Suite struct ProfileTests {
    @Test("built-in profiles load; every rule and support entry names a source and a confidence")
    func builtInProfiles() throws {
        for name in ProfileLibrary.builtInNames {
            let profile = try ProfileLibrary.builtIn(name)
            #expect(profile.name == name)
            for rule in profile.rules {
                #expect(rule.source.hasPrefix("https://"), "\(rule.id) cites no URL")
                #expect(!rule.reason.isEmpty)
            }
            for entry in profile.support { #expect(entry.source.hasPrefix("https://"), "\(entry.id) cites no URL") }
        }
        let units = try ProfileLibrary.builtInUnitProfiles()
        #expect(Set(units.keys) == Set(ComputeUnit.allCases))
        for (unit, profile) in units {
            #expect(profile.unit == unit)
            #expect(profile.chain == ["core-ml", unit.rawValue])
            #expect(profile.chips["M1"] != nil && profile.chips["M4 Pro"] != nil)
            #expect(profile.precision != nil)
            #expect(profile.rules.contains { $0.id == "coreml-max-rank" }, "inherits the base rules")
        }
        #expect(units[.neuralEngine]?.precision?.compute == "float16")
        #expect(units[.cpu]?.precision?.compute == "float32")
    }

    @Test("the embedded profiles are the repository's JSON files, byte for byte")
    func embeddedMatchFiles() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/Profiles/Resources")
        for name in ProfileLibrary.builtInNames {
            let file = try Data(contentsOf: folder.appendingPathComponent(name + ".json"))
            #expect(Array(file) == ProfileLibrary.builtInData(named: name), "\(name).json")
        }
    }

    @Test("rule scope: ops in a domain, a whole domain, or every op")
    func ruleScope() throws {
        let profile = try ProfileLibrary.builtIn("core-ml")
        #expect(profile.rules(opType: "Conv", domain: "").contains { $0.id == "coreml-conv-const-bias" })
        #expect(profile.rules(opType: "Conv", domain: "ai.onnx").contains { $0.id == "coreml-conv-const-bias" })
        #expect(!profile.rules(opType: "Conv", domain: "com.example").contains { $0.id == "coreml-conv-const-bias" })
        #expect(profile.rules(opType: "Anything", domain: "com.microsoft").contains { $0.id == "coreml-microsoft-domain" })
        #expect(profile.rules(opType: "Anything", domain: "com.example").contains { $0.id == "coreml-max-rank" })
        #expect(profile.supportEntry(opType: "Conv", domain: "ai.onnx") != nil)
        #expect(profile.supportEntry(opType: "FancyOp", domain: "com.example") == nil)
    }

    private func load(_ text: String) throws -> Profile {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("profile-\(UUID().uuidString).json")
        try Data(text.utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        return try ProfileLibrary.load(file: url.path)
    }

    private func expectProblem(_ text: String, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try load(text)
            Issue.record("accepted a bad profile; expected \(fragment)", sourceLocation: sourceLocation)
        } catch let error as ProfileError {
            #expect(error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    static let head = #""format": "mlpkg-profile", "formatVersion": 1, "name": "mine", "extends": "neural-engine""#
    static let ruleTail = #""reason": "r", "source": "https://example.org", "confidence": "observed""#

    @Test("a user's profile extends a built-in one, adds rules and disables others")
    func userProfile() throws {
        let p = try load(#"{\#(Self.head), "disable": ["ane-no-scatter"], "rules": [{"id": "my-rule", "kind": "never", "ops": ["Relu"], \#(Self.ruleTail)}]}"#)
        #expect(p.unit == .neuralEngine)
        #expect(p.chain == ["core-ml", "neural-engine", "mine"])
        #expect(!p.rules.contains { $0.id == "ane-no-scatter" })
        #expect(p.rules.last?.id == "my-rule" && p.rules.last?.profile == "mine")
        #expect(p.chips["M1"] != nil)
    }

    @Test("bad profile files are refused with the first problem named")
    func validationErrors() {
        expectProblem("not json", "not valid JSON")
        expectProblem(#"{"format": "other"}"#, "'format' must be")
        expectProblem(#"{"format": "mlpkg-profile", "formatVersion": 9, "name": "x"}"#, "newer than this mlpkg reads")
        expectProblem(#"{"format": "mlpkg-profile", "formatVersion": 1}"#, "missing key 'name'")
        expectProblem(#"{\#(Self.head), "rules": [{"id": "a", "kind": "maxRank", \#(Self.ruleTail)}]}"#, "rules[0] 'a': kind 'maxRank' needs 'max'")
        expectProblem(#"{\#(Self.head), "rules": [{"id": "a", "kind": "maxRank", "maxx": 5, \#(Self.ruleTail)}]}"#, "rules[0] 'a': unknown key 'maxx'")
        expectProblem(#"{\#(Self.head), "rules": [{"id": "a", "kind": "bogus", \#(Self.ruleTail)}]}"#, "rules[0].kind")
        expectProblem(#"{\#(Self.head), "rules": [{"id": "a", "kind": "never", "reason": "r", "source": "s", "confidence": "sure"}]}"#, "confidence")
        expectProblem(#"{\#(Self.head), "rules": [{"id": "a", "kind": "never", "reason": "r", "source": "", "confidence": "observed"}]}"#, "empty source")
        expectProblem(#"{\#(Self.head), "rules": [{"id": "a", "kind": "dtypes", "inputs": [0], "allowed": ["fp32"], \#(Self.ruleTail)}]}"#, "unknown dtype 'fp32'")
        expectProblem(#"{\#(Self.head), "rules": [{"id": "a", "kind": "never", \#(Self.ruleTail)}, {"id": "a", "kind": "never", \#(Self.ruleTail)}]}"#, "duplicate id 'a'")
        expectProblem(#"{\#(Self.head), "rules": [{"id": "ane-no-gather", "kind": "never", \#(Self.ruleTail)}]}"#, "already declared")
        expectProblem(#"{"format": "mlpkg-profile", "formatVersion": 1, "name": "x", "extends": "tpu"}"#, "not a built-in profile")
        expectProblem(#"{\#(Self.head), "disable": ["no-such-rule"]}"#, "'disable' names 'no-such-rule'")
        expectProblem(#"{\#(Self.head), "cost": {"chips": {"X1": {"gflops": 0, "bandwidthGBps": 1, "source": "s", "confidence": "community"}}}}"#, "must be positive")
    }

    @Test func missingFileIsNamed() {
        #expect(throws: ProfileError.self) { try ProfileLibrary.load(file: "/nonexistent/profile.json") }
    }
}
