import GraphIR

/// Arithmetic on `Dim`s for one inference run. A `Dim.symbol` is either a name the model or the user gave (an atom)
/// or the rendering of an expression this run built (`seq*2`); the table remembers which, so arithmetic on a
/// rendered dim continues from its expression. Fresh symbols (`unk__0`, `unk__1`, … in the order the run meets
/// them, so reruns agree) stand for sizes nobody can know before run time (NonZero's count) or that this pass
/// cannot express (a product that overflows, a broadcast of two different symbols).
///
/// Named symbols are assumed ≥ 1 (a dynamic batch or sequence is never empty); fresh symbols ≥ 0 unless said
/// otherwise. The bounds only decide `min`/`max` simplifications, such as `x[1:]` on a `seq` axis being `seq-1`.
public final class DimAlgebra {
    private var expressions: [String: DimExpr] = [:]
    private var lowerBounds: [String: Int] = [:]
    private var freshCount = 0
    private var freshNames = Set<String>()
    /// The prefix of generated symbols.
    public static let freshPrefix = "unk__"

    /// An empty table for a new inference run; its fresh symbols start at `unk__0`.
    public init() {}

    /// The expression of a dim: a constant, a known rendering, or a named atom; nil for `.unknown`.
    public func expression(_ dim: Dim) -> DimExpr? {
        switch dim {
        case .value(let v): return DimExpr(v)
        case .symbol(let s): return expressions[s] ?? DimExpr(symbol: s)
        case .unknown: return nil
        }
    }

    /// Renderings longer than this become one fresh symbol per expression (deep stacks of strided layers).
    static let maxRendering = 96
    private var abbreviations: [DimExpr: String] = [:]

    /// The dim of an expression: `.value` when constant, else a symbol whose text renders it.
    public func dim(_ expr: DimExpr) -> Dim {
        if let v = expr.constantValue { return .value(v) }
        if let name = expr.symbolName { return .symbol(name) }
        if let short = abbreviations[expr] { return .symbol(short) }
        let text = expr.description
        if text.count > Self.maxRendering {
            guard case .symbol(let name) = fresh(lowerBound: expr.lowerBound(bounds) ?? 0) else { return .unknown }
            abbreviations[expr] = name
            return .symbol(name)
        }
        expressions[text] = expr
        return .symbol(text)
    }

    /// A new symbol no other dim shares.
    public func fresh(lowerBound: Int = 0) -> Dim {
        var name: String
        repeat {
            name = "\(Self.freshPrefix)\(freshCount)"
            freshCount += 1
        } while expressions[name] != nil || lowerBounds[name] != nil
        lowerBounds[name] = lowerBound
        freshNames.insert(name)
        return .symbol(name)
    }

    /// Whether a symbol is one this run generated (a placeholder a declared dim may replace).
    public func isFresh(_ name: String) -> Bool { freshNames.contains(name) }

    /// Declares a named symbol's lower bound (inputs' symbols are ≥ 1 unless declared otherwise).
    public func declare(symbol: String, lowerBound: Int) {
        lowerBounds[symbol] = lowerBound
    }

    /// Declares a flexible symbol's range (`--input-shape NAME=1,1..512`): both bounds, so the interval of every
    /// dim computed from it is known.
    public func declare(symbol: String, lowerBound: Int, upperBound: Int) {
        lowerBounds[symbol] = lowerBound
        upperBounds[symbol] = upperBound
    }

    private var upperBounds: [String: Int] = [:]

    /// The smallest and largest value of a dim (each nil when unknown): a number is itself; a symbol or an
    /// expression of symbols takes their declared ranges (a symbol without one is ≥ its lower bound, unbounded).
    public func interval(_ dim: Dim) -> (lower: Int?, upper: Int?) {
        guard let e = expression(dim) else { return (nil, nil) }
        return e.interval { [lowerBounds, upperBounds] in (lowerBounds[$0] ?? 1, upperBounds[$0]) }
    }

    /// The lower bound declared for symbol `name`; 1 when none was declared.
    public func lowerBound(ofSymbol name: String) -> Int {
        lowerBounds[name] ?? 1
    }

    private var bounds: (String) -> Int { { [lowerBounds] in lowerBounds[$0] ?? 1 } }

    /// A lower bound of a dim's value, nil when none can be shown.
    public func lowerBound(_ dim: Dim) -> Int? {
        expression(dim)?.lowerBound(bounds)
    }

    // MARK: arithmetic; every result is exact, or a fresh symbol when it cannot be expressed

    private func combine(_ a: Dim, _ b: Dim, _ op: (DimExpr, DimExpr) -> DimExpr?) -> Dim {
        guard let x = expression(a), let y = expression(b), let r = op(x, y) else { return fresh() }
        return dim(r)
    }

    /// a + b, or a fresh symbol when a dim is unknown or the sum cannot be expressed.
    public func add(_ a: Dim, _ b: Dim) -> Dim { combine(a, b, +) }
    /// a − b, or a fresh symbol when a dim is unknown or the difference cannot be expressed.
    public func subtract(_ a: Dim, _ b: Dim) -> Dim { combine(a, b, -) }
    /// a · b, or a fresh symbol when a dim is unknown or the product cannot be expressed.
    public func multiply(_ a: Dim, _ b: Dim) -> Dim { combine(a, b, *) }
    /// a + b for a constant b.
    public func add(_ a: Dim, _ b: Int) -> Dim { add(a, .value(b)) }
    /// a · b for a constant b.
    public func multiply(_ a: Dim, _ b: Int) -> Dim { multiply(a, .value(b)) }

    /// ⌊a / b⌋: exact polynomial division when b divides a, floor division by a positive constant, else fresh.
    public func floorDiv(_ a: Dim, _ b: Dim) -> Dim {
        guard let x = expression(a), let y = expression(b) else { return fresh() }
        if let q = x.exactQuotient(y) { return dim(q) }
        if let d = y.constantValue, d > 0, let q = x.floorDiv(d) { return dim(q) }
        return fresh()
    }

    /// ⌊a / b⌋ for a constant b.
    public func floorDiv(_ a: Dim, _ b: Int) -> Dim { floorDiv(a, .value(b)) }

    /// ⌈a / b⌉ for a positive constant b.
    public func ceilDiv(_ a: Dim, _ b: Int) -> Dim {
        guard b > 0, let x = expression(a), let q = x.ceilDiv(b) else { return fresh() }
        return dim(q)
    }

    /// a / b when b divides a exactly; nil when that cannot be shown.
    public func exactQuotient(_ a: Dim, _ b: Dim) -> Dim? {
        guard let x = expression(a), let y = expression(b), let q = x.exactQuotient(y) else { return nil }
        return dim(q)
    }

    /// min(a, b): the smaller one when the symbols' lower bounds show it, else a `min(…)` dim; fresh when a
    /// dim is unknown.
    public func minimum(_ a: Dim, _ b: Dim) -> Dim {
        guard let x = expression(a), let y = expression(b), let r = DimExpr.minimum(x, y, bounds: bounds) else { return fresh() }
        return dim(r)
    }

    /// max(a, b): the larger one when the symbols' lower bounds show it, else a `max(…)` dim; fresh when a
    /// dim is unknown.
    public func maximum(_ a: Dim, _ b: Dim) -> Dim {
        guard let x = expression(a), let y = expression(b), let r = DimExpr.maximum(x, y, bounds: bounds) else { return fresh() }
        return dim(r)
    }

    /// The product of dims (1 for none).
    public func product(_ dims: [Dim]) -> Dim {
        dims.reduce(Dim.value(1)) { multiply($0, $1) }
    }

    /// Whether two dims are provably equal.
    public func equal(_ a: Dim, _ b: Dim) -> Bool {
        guard let x = expression(a), let y = expression(b) else { return false }
        return x == y
    }

    /// Whether a dim is provably ≥ n.
    public func isAtLeast(_ a: Dim, _ n: Int) -> Bool {
        guard let lb = lowerBound(a) else { return false }
        return lb >= n
    }

    /// The value of a dim once its symbols are known (pinned shapes, tests).
    public func evaluate(_ dim: Dim, symbols: [String: Int]) -> Int? {
        expression(dim)?.evaluate(symbols)
    }

    /// Two dims that must be equal (an elementwise operand, a concatenation's other axes): the more specific one.
    public func unify(_ a: Dim, _ b: Dim) -> Dim {
        switch (a, b) {
        case (.value, _): return a
        case (_, .value): return b
        case (.unknown, _): return b
        default: return a
        }
    }

    /// Multidirectional (numpy) broadcasting of two dims; nil when they cannot broadcast.
    public func broadcast(_ a: Dim, _ b: Dim) -> Dim? {
        switch (a, b) {
        case (.value(1), _): return b
        case (_, .value(1)): return a
        case (.value(let x), .value(let y)): return x == y ? a : nil
        case (.value, _): return a  // b is 1 or a
        case (_, .value): return b
        default:
            if equal(a, b) { return a }
            return fresh(lowerBound: 1)
        }
    }
}
