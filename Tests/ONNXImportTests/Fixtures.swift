import Foundation

/// Paths of the committed fixtures, found from this source file's location.
enum Fixtures {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static func path(_ name: String) -> String { root + "/fixtures/" + name }

    static var validModels: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/fixtures")) ?? []
        return names.filter { $0.hasSuffix(".onnx") }.sorted()
    }

    /// (file, culprit) pairs from fixtures/malformed/EXPECTED.tsv.
    static var malformed: [(file: String, culprit: String)] {
        let text = (try? String(contentsOfFile: root + "/fixtures/malformed/EXPECTED.tsv", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: "\t", maxSplits: 1).map(String.init)
            return parts.count == 2 ? (parts[0], parts[1]) : nil
        }
    }
}
