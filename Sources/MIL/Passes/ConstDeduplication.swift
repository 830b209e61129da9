import GraphIR
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Merges `const` ops holding the same type and elements: later copies are removed and their uses read the first.
/// Big values are compared by a sampled key first and in full only when the keys match.
public enum ConstDeduplication: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "const_deduplication"

    struct Key: Hashable {
        var type: MILTensorType
        var sample: Int
    }

    static func key(_ c: MILConst) -> Key {
        var h = Hasher()
        switch c.data {
        case .floats(let v): h.combine(0); for x in v.prefix(64) { h.combine(x.bitPattern) }; h.combine(v.count)
        case .ints(let v): h.combine(1); h.combine(v.prefix(64).map { $0 }); h.combine(v.count)
        case .bools(let v): h.combine(2); h.combine(v.prefix(64).map { $0 }); h.combine(v.count)
        case .strings(let v): h.combine(3); h.combine(v)
        case .bytes(let view): h.combine(4); h.combine(BlobStorage.sample(view))
        }
        return Key(type: c.type, sample: h.finalize())
    }

    static func equal(_ a: MILConst, _ b: MILConst) -> Bool {
        guard a.type == b.type else { return false }
        switch (a.data, b.data) {
        case (.floats(let x), .floats(let y)): return x.map(\.bitPattern) == y.map(\.bitPattern)
        case (.ints(let x), .ints(let y)): return x == y
        case (.bools(let x), .bools(let y)): return x == y
        case (.strings(let x), .strings(let y)): return x == y
        case (.bytes(let x), .bytes(let y)):
            return x.count == y.count && (x.count == 0 || memcmp(x.bytes.baseAddress!, y.bytes.baseAddress!, x.count) == 0)
        default: return false
        }
    }

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        var seen: [Key: [(name: String, value: MILConst)]] = [:]
        var removed: Set<Int> = []
        var replacements: [String: String] = [:]
        let outputs = Set(program.outputs)
        for (i, op) in program.operations.enumerated() where op.type == "const" {
            guard let value = op.value, let out = op.outputs.first, !outputs.contains(out.name) else { continue }
            let k = key(value)
            if let first = seen[k]?.first(where: { equal($0.value, value) }) {
                replacements[out.name] = first.name
                removed.insert(i)
            } else {
                seen[k, default: []].append((out.name, value))
            }
        }
        guard !removed.isEmpty else { return }
        program.remove(removed)
        // Readers inside nested blocks (a loop body reading a weight) are renamed too.
        for i in program.operations.indices { program.operations[i].renameUses { replacements[$0] } }
    }
}
