/// A symbolic dimension: an integer polynomial over atoms — named symbols, floor divisions by a positive integer,
/// minima and maxima — kept in one canonical form, so two expressions that simplify to the same thing compare equal
/// and render to the same text (`seq*2`, `(H+1)/2`, `batch*seq+1`, `min(seq,512)`).
///
/// Rendering: `/` is floor division (dims are never negative); a floor division that is one factor of several is
/// parenthesised; coefficients follow the atoms (`seq*2`); terms come in canonical order, positive ones first, then
/// the constant. Every operation returns nil when an integer overflows or the expression grows past `maxTerms`,
/// and the caller falls back to a fresh symbol: an honest "unknown", never a wrong value.
public struct DimExpr: Hashable, Sendable, CustomStringConvertible {
    /// An indivisible factor of a term: a named symbol, a floor division, a minimum or a maximum.
    public indirect enum Atom: Hashable, Sendable {
        /// A named symbol.
        case symbol(String)
        /// ⌊expr / divisor⌋, divisor ≥ 2, expr not divisible as a whole.
        case floorDiv(DimExpr, Int)
        /// The smaller of two expressions, kept when neither is provably smaller.
        case min(DimExpr, DimExpr)
        /// The larger of two expressions, kept when neither is provably larger.
        case max(DimExpr, DimExpr)
    }

    /// A product of atoms (a multiset, sorted by rendering) times a non-zero coefficient.
    struct Term: Hashable, Sendable {
        var atoms: [Atom]
        var coefficient: Int
    }

    /// Sorted by the atoms' rendering; no two terms with the same atoms; no zero coefficient.
    private(set) var terms: [Term]
    /// The constant term.
    public private(set) var constant: Int

    /// Expressions bigger than this are not worth tracking: they become fresh symbols.
    static let maxTerms = 8

    /// The constant expression `constant`.
    public init(_ constant: Int) {
        terms = []
        self.constant = constant
    }

    /// The expression made of the named symbol alone.
    public init(symbol: String) {
        terms = [Term(atoms: [.symbol(symbol)], coefficient: 1)]
        constant = 0
    }

    init(atom: Atom) {
        terms = [Term(atoms: [atom], coefficient: 1)]
        constant = 0
    }

    private init(terms: [Term], constant: Int) {
        self.terms = terms
        self.constant = constant
    }

    /// The integer value, when the expression has no symbolic part.
    public var constantValue: Int? { terms.isEmpty ? constant : nil }

    /// The symbol's name, when the expression is exactly one named symbol.
    public var symbolName: String? {
        guard constant == 0, terms.count == 1, terms[0].coefficient == 1, terms[0].atoms.count == 1,
              case .symbol(let name) = terms[0].atoms[0] else { return nil }
        return name
    }

    // MARK: arithmetic

    /// Builds the canonical form from unsorted terms (merging equal atom products, dropping zeros).
    private static func normalized(_ raw: [Term], constant: Int) -> DimExpr? {
        var merged: [[Atom]: Int] = [:]
        var order: [[Atom]] = []
        for term in raw {
            let atoms = term.atoms.sorted { Self.key($0) < Self.key($1) }
            if let existing = merged[atoms] {
                let (sum, overflow) = existing.addingReportingOverflow(term.coefficient)
                if overflow { return nil }
                merged[atoms] = sum
            } else {
                merged[atoms] = term.coefficient
                order.append(atoms)
            }
        }
        var terms = order.compactMap { atoms -> Term? in
            let c = merged[atoms]!
            return c == 0 ? nil : Term(atoms: atoms, coefficient: c)
        }
        guard terms.count <= maxTerms else { return nil }
        terms.sort { Self.key($0.atoms) < Self.key($1.atoms) }
        return DimExpr(terms: terms, constant: constant)
    }

    /// The sum in canonical form; nil when an integer overflows or it grows past `maxTerms` terms.
    public static func + (a: DimExpr, b: DimExpr) -> DimExpr? {
        let (c, overflow) = a.constant.addingReportingOverflow(b.constant)
        if overflow { return nil }
        return normalized(a.terms + b.terms, constant: c)
    }

    /// The negation; nil when the constant or a coefficient is `Int.min`.
    public static prefix func - (a: DimExpr) -> DimExpr? {
        guard a.constant != Int.min, !a.terms.contains(where: { $0.coefficient == Int.min }) else { return nil }
        return DimExpr(terms: a.terms.map { Term(atoms: $0.atoms, coefficient: -$0.coefficient) }, constant: -a.constant)
    }

    /// The difference in canonical form; nil when an integer overflows or it grows past `maxTerms` terms.
    public static func - (a: DimExpr, b: DimExpr) -> DimExpr? {
        guard let negated = -b else { return nil }
        return a + negated
    }

    /// The expanded product in canonical form; nil when an integer overflows or it grows past `maxTerms` terms.
    public static func * (a: DimExpr, b: DimExpr) -> DimExpr? {
        var raw: [Term] = []
        func product(_ x: Int, _ y: Int) -> Int? {
            let (p, overflow) = x.multipliedReportingOverflow(by: y)
            return overflow ? nil : p
        }
        for s in a.terms {
            for t in b.terms {
                guard let c = product(s.coefficient, t.coefficient) else { return nil }
                raw.append(Term(atoms: s.atoms + t.atoms, coefficient: c))
            }
            if b.constant != 0 {
                guard let c = product(s.coefficient, b.constant) else { return nil }
                raw.append(Term(atoms: s.atoms, coefficient: c))
            }
        }
        if a.constant != 0 {
            for t in b.terms {
                guard let c = product(a.constant, t.coefficient) else { return nil }
                raw.append(Term(atoms: t.atoms, coefficient: c))
            }
        }
        guard raw.count <= 4 * maxTerms, let c = product(a.constant, b.constant) else { return nil }
        return normalized(raw, constant: c)
    }

    /// ⌊self / divisor⌋ for a positive divisor. Whole multiples of the divisor come out of the division:
    /// ⌊(d·A + B) / d⌋ = A + ⌊B / d⌋; what remains is reduced by the common factor and kept as one atom.
    public func floorDiv(_ divisor: Int) -> DimExpr? {
        guard divisor > 0 else { return nil }
        if divisor == 1 { return self }
        // ⌊(⌊x/a⌋ + c) / b⌋ = ⌊(x + c·a) / (a·b)⌋.
        if terms.count == 1, terms[0].coefficient == 1, terms[0].atoms.count == 1, case .floorDiv(let x, let a) = terms[0].atoms[0] {
            let (ca, o1) = constant.multipliedReportingOverflow(by: a)
            let (ab, o2) = a.multipliedReportingOverflow(by: divisor)
            if !o1, !o2, let shifted = x + DimExpr(ca), let nested = shifted.floorDiv(ab) { return nested }
        }
        func split(_ c: Int) -> (quotient: Int, remainder: Int) {
            var q = c / divisor, r = c % divisor  // divisor > 1: no overflow
            if r < 0 { q -= 1; r += divisor }
            return (q, r)
        }
        var whole: [Term] = []
        var rest: [Term] = []
        for term in terms {
            let (q, r) = split(term.coefficient)
            if q != 0 { whole.append(Term(atoms: term.atoms, coefficient: q)) }
            if r != 0 { rest.append(Term(atoms: term.atoms, coefficient: r)) }
        }
        let (cq, cr) = split(constant)
        guard let wholePart = DimExpr.normalized(whole, constant: cq) else { return nil }
        if rest.isEmpty { return wholePart }  // the remainder cr < divisor contributes nothing
        // Reduce by the common factor of the remainder's coefficients, its constant and the divisor.
        var g = divisor
        for term in rest { g = gcd(g, term.coefficient) }
        g = gcd(g, cr)
        let reduced = DimExpr(terms: rest.map { Term(atoms: $0.atoms, coefficient: $0.coefficient / g) }, constant: cr / g)
        let d = divisor / g
        if d == 1 { return wholePart + reduced }
        return wholePart + DimExpr(atom: .floorDiv(reduced, d))
    }

    /// ⌈self / divisor⌉ for a positive divisor.
    public func ceilDiv(_ divisor: Int) -> DimExpr? {
        guard divisor > 0, let shifted = self + DimExpr(divisor - 1) else { return nil }
        return shifted.floorDiv(divisor)
    }

    /// self / divisor when it divides exactly (as polynomials); nil otherwise.
    public func exactQuotient(_ divisor: DimExpr) -> DimExpr? {
        if let d = divisor.constantValue {
            guard let c = divide(constant, d), c.remainder == 0 else { return nil }
            var quotient: [Term] = []
            for term in terms {
                guard let t = divide(term.coefficient, d), t.remainder == 0 else { return nil }
                quotient.append(Term(atoms: term.atoms, coefficient: t.quotient))
            }
            return DimExpr.normalized(quotient, constant: c.quotient)
        }
        // A monomial divisor c·m divides every term that contains m with a coefficient divisible by c.
        if divisor.constant == 0, divisor.terms.count == 1, constant == 0 {
            let m = divisor.terms[0]
            var quotient: [Term] = []
            var quotientConstant = 0
            var divides = true
            for term in terms {
                guard let t = divide(term.coefficient, m.coefficient), t.remainder == 0,
                      let rest = Self.removing(m.atoms, from: term.atoms) else {
                    divides = false
                    break
                }
                if rest.isEmpty {
                    let (sum, overflow) = quotientConstant.addingReportingOverflow(t.quotient)
                    if overflow { divides = false; break }
                    quotientConstant = sum
                } else {
                    quotient.append(Term(atoms: rest, coefficient: t.quotient))
                }
            }
            if divides, let q = DimExpr.normalized(quotient, constant: quotientConstant) { return q }
        }
        // General polynomial divisor: try the quotient the leading terms suggest, and check it.
        guard let lead = divisor.terms.first else { return nil }
        for term in terms {
            guard let t = divide(term.coefficient, lead.coefficient), t.remainder == 0,
                  let rest = Self.removing(lead.atoms, from: term.atoms) else { continue }
            let candidate = rest.isEmpty ? DimExpr(t.quotient)
                : DimExpr(terms: [Term(atoms: rest, coefficient: t.quotient)], constant: 0)
            if let product = candidate * divisor, product == self { return candidate }
        }
        return nil
    }

    /// `atoms` minus the multiset `removed`, or nil when `removed` is not contained.
    private static func removing(_ removed: [Atom], from atoms: [Atom]) -> [Atom]? {
        var rest = atoms
        for atom in removed {
            guard let i = rest.firstIndex(of: atom) else { return nil }
            rest.remove(at: i)
        }
        return rest
    }

    /// The smaller of two expressions, simplified when one is provably not larger (given symbol lower bounds).
    public static func minimum(_ a: DimExpr, _ b: DimExpr, bounds: (String) -> Int) -> DimExpr? {
        if a == b { return a }
        if let x = a.constantValue, let y = b.constantValue { return DimExpr(Swift.min(x, y)) }
        if let d = b - a, let lb = d.lowerBound(bounds), lb >= 0 { return a }
        if let d = a - b, let lb = d.lowerBound(bounds), lb >= 0 { return b }
        let (x, y) = key(a) <= key(b) ? (a, b) : (b, a)
        return DimExpr(atom: .min(x, y))
    }

    /// The larger of two expressions, simplified when one is provably not smaller.
    public static func maximum(_ a: DimExpr, _ b: DimExpr, bounds: (String) -> Int) -> DimExpr? {
        if a == b { return a }
        if let x = a.constantValue, let y = b.constantValue { return DimExpr(Swift.max(x, y)) }
        if let d = b - a, let lb = d.lowerBound(bounds), lb >= 0 { return b }
        if let d = a - b, let lb = d.lowerBound(bounds), lb >= 0 { return a }
        let (x, y) = key(a) <= key(b) ? (a, b) : (b, a)
        return DimExpr(atom: .max(x, y))
    }

    /// A lower bound of the value, given each symbol's lower bound; nil when none can be shown (a negative term).
    public func lowerBound(_ bounds: (String) -> Int) -> Int? {
        var total = constant
        for term in terms {
            guard term.coefficient > 0 else { return nil }
            var product = term.coefficient
            for atom in term.atoms {
                guard let lb = Self.lowerBound(atom, bounds), lb >= 0 else { return nil }
                let (p, overflow) = product.multipliedReportingOverflow(by: lb)
                if overflow { return nil }
                product = p
            }
            let (s, overflow) = total.addingReportingOverflow(product)
            if overflow { return nil }
            total = s
        }
        return total
    }

    private static func lowerBound(_ atom: Atom, _ bounds: (String) -> Int) -> Int? {
        switch atom {
        case .symbol(let name): return bounds(name)
        case .floorDiv(let e, let d):
            guard let lb = e.lowerBound(bounds) else { return nil }
            return lb >= 0 ? lb / d : nil
        case .min(let a, let b):
            guard let x = a.lowerBound(bounds), let y = b.lowerBound(bounds) else { return nil }
            return Swift.min(x, y)
        case .max(let a, let b):
            let x = a.lowerBound(bounds), y = b.lowerBound(bounds)
            switch (x, y) {
            case let (x?, y?): return Swift.max(x, y)
            case let (x?, nil): return x
            case let (nil, y?): return y
            default: return nil
            }
        }
    }

    /// The smallest and largest value, given each symbol's interval (`upper` nil: unbounded); each nil when no
    /// bound can be shown. Interval arithmetic over the terms (every atom is a size, so ≥ 0): a negative
    /// coefficient swaps the bounds it takes, so `sequence-1` on 1…512 is 0…511 and `512-sequence` 0…511.
    public func interval(_ symbol: (String) -> (lower: Int, upper: Int?)) -> (lower: Int?, upper: Int?) {
        var low: Int? = constant, high: Int? = constant
        func add(_ a: Int?, _ b: Int?) -> Int? {
            guard let a, let b else { return nil }
            let (r, o) = a.addingReportingOverflow(b)
            return o ? nil : r
        }
        func mul(_ a: Int?, _ b: Int?) -> Int? {
            guard let a, let b else { return nil }
            let (r, o) = a.multipliedReportingOverflow(by: b)
            return o ? nil : r
        }
        for term in terms {
            var pl: Int? = 1, pu: Int? = 1
            for atom in term.atoms {
                let (al, au) = Self.interval(atom, symbol)
                guard let al, al >= 0 else { return (nil, nil) }
                pl = mul(pl, al)
                pu = mul(pu, au)
            }
            let c = term.coefficient
            if c >= 0 {
                low = add(low, mul(c, pl))
                high = add(high, mul(c, pu))
            } else {
                low = add(low, mul(c, pu))
                high = add(high, mul(c, pl))
            }
        }
        return (low, high)
    }

    private static func interval(_ atom: Atom, _ symbol: (String) -> (lower: Int, upper: Int?)) -> (Int?, Int?) {
        switch atom {
        case .symbol(let name): return symbol(name)
        case .floorDiv(let e, let d):
            let (l, u) = e.interval(symbol)
            guard let l, l >= 0, d > 0 else { return (nil, nil) }
            return (l / d, u.map { $0 / d })
        case .min(let a, let b):
            let (al, au) = a.interval(symbol), (bl, bu) = b.interval(symbol)
            let upper: Int? = au.flatMap { x in bu.map { Swift.min(x, $0) } } ?? au ?? bu
            return (al.flatMap { x in bl.map { Swift.min(x, $0) } }, upper)
        case .max(let a, let b):
            let (al, au) = a.interval(symbol), (bl, bu) = b.interval(symbol)
            let lower: Int? = al.flatMap { x in bl.map { Swift.max(x, $0) } } ?? al ?? bl
            return (lower, au.flatMap { x in bu.map { Swift.max(x, $0) } })
        }
    }

    /// The value for the given symbol values; nil when a symbol has none or arithmetic overflows.
    public func evaluate(_ values: [String: Int]) -> Int? {
        var total = constant
        for term in terms {
            var product = term.coefficient
            for atom in term.atoms {
                let v: Int?
                switch atom {
                case .symbol(let name): v = values[name]
                case .floorDiv(let e, let d):
                    guard let x = e.evaluate(values) else { return nil }
                    guard x != Int.min else { return nil }
                    v = x >= 0 ? x / d : -((-x + d - 1) / d)
                case .min(let a, let b):
                    guard let x = a.evaluate(values), let y = b.evaluate(values) else { return nil }
                    v = Swift.min(x, y)
                case .max(let a, let b):
                    guard let x = a.evaluate(values), let y = b.evaluate(values) else { return nil }
                    v = Swift.max(x, y)
                }
                guard let v else { return nil }
                let (p, overflow) = product.multipliedReportingOverflow(by: v)
                if overflow { return nil }
                product = p
            }
            let (s, overflow) = total.addingReportingOverflow(product)
            if overflow { return nil }
            total = s
        }
        return total
    }

    /// Every symbol name the expression mentions.
    public var symbols: Set<String> {
        var out = Set<String>()
        for term in terms {
            for atom in term.atoms {
                switch atom {
                case .symbol(let s): out.insert(s)
                case .floorDiv(let e, _): out.formUnion(e.symbols)
                case .min(let a, let b), .max(let a, let b): out.formUnion(a.symbols); out.formUnion(b.symbols)
                }
            }
        }
        return out
    }

    // MARK: rendering

    /// The canonical rendering (`seq*2`, `(H+1)/2`, `batch*seq+1`); `DimAlgebra` uses it as the dim's symbol.
    public var description: String {
        if terms.isEmpty { return String(constant) }
        var out = ""
        let ordered = terms.filter { $0.coefficient > 0 } + terms.filter { $0.coefficient < 0 }
        for (i, term) in ordered.enumerated() {
            let magnitude = term.coefficient.magnitude
            let factors = term.atoms.count + (magnitude == 1 ? 0 : 1)
            let body = term.atoms.map { Self.render($0, parenthesized: factors > 1) }.joined(separator: "*")
                + (magnitude == 1 ? "" : "*\(magnitude)")
            if term.coefficient < 0 { out += "-" } else if i > 0 { out += "+" }
            out += body
        }
        if constant > 0 { out += "+\(constant)" } else if constant < 0 { out += "-\(constant.magnitude)" }
        return out
    }

    private static func render(_ atom: Atom, parenthesized: Bool) -> String {
        switch atom {
        case .symbol(let s): return s
        case .floorDiv(let e, let d):
            let inner = e.symbolName ?? "(\(e))"
            return parenthesized ? "(\(inner)/\(d))" : "\(inner)/\(d)"
        case .min(let a, let b): return "min(\(a),\(b))"
        case .max(let a, let b): return "max(\(a),\(b))"
        }
    }

    private static func key(_ atom: Atom) -> String { render(atom, parenthesized: true) }
    private static func key(_ atoms: [Atom]) -> String { atoms.map(key).joined(separator: "*") }
    private static func key(_ e: DimExpr) -> String { e.description }
}

/// The greatest common divisor of |a| and |b| (1 when it does not fit in Int, so nothing is reduced).
func gcd(_ a: Int, _ b: Int) -> Int {
    var (x, y) = (a.magnitude, b.magnitude)
    while y != 0 { (x, y) = (y, x % y) }
    return Int(exactly: x) ?? 1
}

/// a / b and a % b, nil when b is 0 or the quotient overflows (Int.min / -1).
func divide(_ a: Int, _ b: Int) -> (quotient: Int, remainder: Int)? {
    guard b != 0 else { return nil }
    let (q, overflow) = a.dividedReportingOverflow(by: b)
    if overflow { return nil }
    return (q, a - q * b)
}
