import GraphIR

/// A problem with `--input-shape` pins: the user's request does not fit the model (a usage error, exit 2).
public enum InputShapeError: Error, Equatable, CustomStringConvertible {
    /// An argument that is not `NAME=D0,D1,...`.
    case syntax(String)
    /// A name that is not a runtime input of the main graph.
    case unknownInput(name: String, available: [String])
    /// An input pinned more than once.
    case duplicate(name: String)
    /// A pin with a different number of dims than the input's rank.
    case rankMismatch(name: String, modelRank: Int, pinnedRank: Int)
    /// A dim that is 0, negative or unknown.
    case nonPositive(name: String, axis: Int, value: String)
    /// A dim that differs from a size the model fixes.
    case conflict(name: String, axis: Int, modelDim: Int, pinned: String)
    /// An input that is not a tensor.
    case notATensor(name: String)
    /// A symbol the model shares between inputs, pinned to two different dims (`sequence` as 128 through
    /// `input_ids` and as 256 through `attention_mask`).
    case symbolConflict(name: String, axis: Int, symbol: String, pinned: String, earlier: String, earlierInput: String)
    /// A range `LO..HI[@DEFAULT]` that is empty, starts below 1 or has its default outside it.
    case badRange(name: String, axis: Int, text: String)
    /// Enumerated shapes (`1,128|1,256`) that are not lists of positive integers of one rank.
    case badEnumeration(name: String, text: String)
    /// Enumerated inputs pair by index, so they must list as many shapes (or ranges and enumerations are mixed).
    case enumerationMismatch(name: String, reason: String)

    /// The message for the command line, naming the `--input-shape` argument at fault.
    public var description: String {
        switch self {
        case .syntax(let text):
            return "--input-shape '\(text)': expected NAME=D0,D1,... (each dim a positive integer or a symbol name)"
        case .unknownInput(let name, let available):
            return "--input-shape \(name): the model has no input '\(name)' (inputs: \(available.joined(separator: ", ")))"
        case .duplicate(let name):
            return "--input-shape \(name): pinned more than once"
        case .rankMismatch(let name, let modelRank, let pinnedRank):
            return "--input-shape \(name): gives \(pinnedRank) dims, but input '\(name)' has rank \(modelRank)"
        case .nonPositive(let name, let axis, let value):
            return "--input-shape \(name): dim \(axis) is \(value); dims must be positive integers or symbol names"
        case .conflict(let name, let axis, let modelDim, let pinned):
            return "--input-shape \(name): dim \(axis) is \(pinned), but the model fixes it at \(modelDim)"
        case .notATensor(let name):
            return "--input-shape \(name): input '\(name)' is not a tensor"
        case .symbolConflict(let name, let axis, let symbol, let pinned, let earlier, let earlierInput):
            return "--input-shape \(name): dim \(axis) is \(pinned), but the model's symbol '\(symbol)' there is already pinned to \(earlier) through input '\(earlierInput)'"
        case .badEnumeration(let name, let text):
            return "--input-shape \(name): '\(text)' is not a list of shapes; enumerated shapes are D0,D1,…|D0,D1,…, positive integers of one rank"
        case .enumerationMismatch(let name, let reason):
            return "--input-shape \(name): \(reason)"
        case .badRange(let name, let axis, let text):
            return "--input-shape \(name): dim \(axis) is '\(text)'; a range is LO..HI or LO..HI@DEFAULT with 1 ≤ LO ≤ DEFAULT ≤ HI < 2^31"
        }
    }
}

/// The sizes a flexible dim takes (`--input-shape NAME=1,1..512@128`): Core ML's `SizeRange` and the default shape.
public struct DimRange: Sendable, Hashable, CustomStringConvertible {
    /// The smallest size (≥ 1).
    public var lower: Int
    /// The largest size.
    public var upper: Int
    /// The size of the default shape Core ML reports (`ArrayFeatureType.shape`); the lower bound unless given.
    public var defaultValue: Int

    /// A range; `defaultValue` must lie in it.
    public init(lower: Int, upper: Int, defaultValue: Int? = nil) {
        self.lower = lower
        self.upper = upper
        self.defaultValue = defaultValue ?? lower
    }

    /// `LO..HI@DEFAULT`.
    public var description: String { "\(lower)..\(upper)@\(defaultValue)" }
}

/// Dims pinned on the main graph's inputs (`--input-shape NAME=D0,D1,...`). A dim is a positive integer, a
/// symbol name (a letter or `_` first, then letters, digits, `_`, `.`, `-`) that renames or keeps it symbolic, or a
/// range `LO..HI[@DEFAULT]` that keeps it flexible (the model's symbol there, or `NAME_AXIS` when it has none).
public struct InputShapes: Sendable, Equatable {
    /// The pinned dims, by input name; a ranged dim is `.unknown` here and its range is in `ranges`.
    public private(set) var pins: [String: [Dim]] = [:]
    /// Ranged dims, by input name and axis.
    public private(set) var ranges: [String: [Int: DimRange]] = [:]
    /// Enumerated shapes (`NAME=1,128|1,256`), by input name: the dims that differ between them are flexible (with
    /// the span of the shapes as their range); the first shape is the default.
    public private(set) var enumerations: [String: [[Int]]] = [:]
    /// Names in the order given (for messages and provenance).
    public private(set) var order: [String] = []

    /// No pins.
    public init() {}

    /// Pins from a dictionary, added in name order; throws when a dim is 0, negative or unknown.
    public init(_ pins: [String: [Dim]]) throws(InputShapeError) {
        for name in pins.keys.sorted() { try add(name, pins[name]!) }
    }

    /// Pins parsed from `--input-shape` arguments in order; throws on bad syntax, a repeated name or a bad dim.
    public init(parsing arguments: [String]) throws(InputShapeError) {
        for argument in arguments { try add(parsing: argument) }
    }

    /// True when nothing is pinned.
    public var isEmpty: Bool { pins.isEmpty }

    /// Pins `dims` on input `name`; throws when `name` is already pinned or a dim is 0, negative or unknown.
    public mutating func add(_ name: String, _ dims: [Dim], ranges ranged: [Int: DimRange] = [:]) throws(InputShapeError) {
        guard pins[name] == nil else { throw .duplicate(name: name) }
        for (axis, d) in dims.enumerated() {
            switch d {
            case .value(let v) where v <= 0: throw .nonPositive(name: name, axis: axis, value: String(v))
            case .unknown where ranged[axis] == nil: throw .nonPositive(name: name, axis: axis, value: "?")
            default: break
            }
        }
        pins[name] = dims
        if !ranged.isEmpty { ranges[name] = ranged }
        order.append(name)
    }

    /// True when some dim is a range.
    public var hasRanges: Bool { !ranges.isEmpty }

    /// One input's dims as given (`1,1..512@128`).
    public func text(of name: String) -> String {
        guard let dims = pins[name] else { return "" }
        if let shapes = enumerations[name] { return shapes.map { $0.map(String.init).joined(separator: ",") }.joined(separator: "|") }
        return dims.enumerated().map { axis, d in ranges[name]?[axis]?.description ?? d.description }.joined(separator: ",")
    }

    /// Parses one `NAME=D0,D1,...` argument. The name is everything before the last `=`.
    public mutating func add(parsing argument: String) throws(InputShapeError) {
        guard let eq = argument.lastIndex(of: "="), eq != argument.startIndex else { throw .syntax(argument) }
        let name = String(argument[..<eq])
        let list = argument[argument.index(after: eq)...]
        if list.contains("|") {
            try add(name, enumerating: String(list))
            return
        }
        let parts = list.isEmpty ? [] : list.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces }
        var dims: [Dim] = []
        var ranged: [Int: DimRange] = [:]
        for (axis, part) in parts.enumerated() {
            if part.contains("..") {
                ranged[axis] = try Self.range(part, name: name, axis: axis)
                dims.append(.unknown)
            } else if let v = Int(part) {
                guard v > 0 else { throw .nonPositive(name: name, axis: axis, value: part) }
                dims.append(.value(v))
            } else if Self.isSymbol(part) {
                dims.append(.symbol(part))
            } else if part.first == "-" || part.first == "+" || part.allSatisfy(\.isNumber) {
                throw .nonPositive(name: name, axis: axis, value: part)
            } else {
                throw .syntax(argument)
            }
        }
        try add(name, dims, ranges: ranged)
    }

    /// `D0,D1,…|D0,D1,…`: dims equal in every shape are pinned; the others are flexible, ranged over the shapes.
    mutating func add(_ name: String, enumerating text: String) throws(InputShapeError) {
        var shapes: [[Int]] = []
        for alternative in text.split(separator: "|", omittingEmptySubsequences: false) {
            let dims = alternative.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingSpaces) }
            guard !dims.isEmpty, dims.allSatisfy({ ($0 ?? 0) >= 1 && $0! <= Int(Int32.max) }) else { throw .badEnumeration(name: name, text: text) }
            shapes.append(dims.map { $0! })
        }
        guard shapes.count >= 2, Set(shapes.map(\.count)).count == 1, Set(shapes).count == shapes.count else {
            throw .badEnumeration(name: name, text: text)
        }
        var dims: [Dim] = []
        var ranged: [Int: DimRange] = [:]
        for axis in shapes[0].indices {
            let values = shapes.map { $0[axis] }
            if Set(values).count == 1 {
                dims.append(.value(values[0]))
            } else {
                dims.append(.unknown)
                ranged[axis] = DimRange(lower: values.min()!, upper: values.max()!, defaultValue: values[0])
            }
        }
        try add(name, dims, ranges: ranged)
        enumerations[name] = shapes
    }

    /// `LO..HI` or `LO..HI@DEFAULT`.
    static func range(_ text: String, name: String, axis: Int) throws(InputShapeError) -> DimRange {
        let (body, def): (Substring, Substring?) = {
            guard let at = text.firstIndex(of: "@") else { return (Substring(text), nil) }
            return (text[..<at], text[text.index(after: at)...])
        }()
        let bounds = body.components(separatedBy: "..")
        guard bounds.count == 2, let lo = Int(bounds[0]), let hi = Int(bounds[1]), lo >= 1, lo <= hi, hi <= Int(Int32.max) else {
            throw .badRange(name: name, axis: axis, text: text)
        }
        var value = lo
        if let def {
            guard let d = Int(def), d >= lo, d <= hi else { throw .badRange(name: name, axis: axis, text: text) }
            value = d
        }
        return DimRange(lower: lo, upper: hi, defaultValue: value)
    }

    static func isSymbol(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first == "_" || (first.properties.isAlphabetic && first.isASCII) else { return false }
        return text.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_.-".unicodeScalars.contains($0)) }
    }

    /// `NAME=D0,D1;…` in the order given, as provenance records it.
    public var recorded: String {
        order.map { name in "\(name)=" + text(of: name) }.joined(separator: ";")
    }

    /// Checks the pins against the model's runtime inputs and returns the model with those inputs' types pinned.
    /// A symbol a pin fixes (or renames) is fixed wherever the model uses it: the other inputs that declare it
    /// (`attention_mask[batch, sequence]` when `input_ids` is pinned), outputs and value_info, subgraphs too.
    public func apply(to model: Model) throws(InputShapeError) -> Model { try applyWithRanges(to: model).model }

    /// The enumerated shapes as choices of the flexible symbols' sizes, paired by index across the enumerated inputs
    /// (choice k gives each symbol its size in every input's k-th shape); empty without enumerations. Call after
    /// `applyWithRanges` accepted the pins.
    public func symbolChoices(in model: Model) throws(InputShapeError) -> [[String: Int]] {
        guard !enumerations.isEmpty else { return [] }
        let names = order.filter { enumerations[$0] != nil }
        if let ranged = order.first(where: { ranges[$0] != nil && enumerations[$0] == nil }) {
            throw .enumerationMismatch(name: ranged, reason: "a range cannot be combined with enumerated shapes (\(names.joined(separator: ", ")))")
        }
        let count = enumerations[names[0]]!.count
        var choices = Array(repeating: [String: Int](), count: count)
        for name in names {
            let shapes = enumerations[name]!
            guard shapes.count == count else {
                throw .enumerationMismatch(name: name, reason: "enumerated inputs pair by index: '\(names[0])' lists \(count) shapes, '\(name)' \(shapes.count)")
            }
            guard case .tensor(let t)? = model.graph.inputs.first(where: { $0.name == name })?.type, let dims = t.shape else { continue }
            for (k, shape) in shapes.enumerated() {
                for (axis, d) in dims.enumerated() {
                    guard case .symbol(let s) = d, ranges[name]?[axis] != nil else { continue }
                    if let earlier = choices[k][s], earlier != shape[axis] {
                        throw .enumerationMismatch(name: name, reason: "shape \(k + 1) gives symbol '\(s)' \(shape[axis]), another input's shape \(k + 1) gives it \(earlier)")
                    }
                    choices[k][s] = shape[axis]
                }
            }
        }
        return choices
    }

    /// `apply`, and the range of every flexible symbol (a ranged dim keeps the model's symbol, or becomes
    /// `NAME_AXIS` when the model gives it none; every input that shares the symbol shares the range).
    public func applyWithRanges(to model: Model) throws(InputShapeError) -> (model: Model, ranges: [String: DimRange]) {
        guard !pins.isEmpty else { return (model, [:]) }
        var model = model
        var symbolRanges: [String: DimRange] = [:]
        var bindings: [String: Dim] = [:]
        var boundBy: [String: String] = [:]
        var boundAxis: [String: Int] = [:]
        let runtime = Set(model.graph.runtimeInputs.map(\.name))
        for name in order {
            guard runtime.contains(name), let index = model.graph.inputs.firstIndex(where: { $0.name == name }) else {
                throw .unknownInput(name: name, available: model.graph.runtimeInputs.map(\.name))
            }
            var dims = pins[name]!
            guard case .tensor(let t) = model.graph.inputs[index].type else { throw .notATensor(name: name) }
            if let shape = t.shape {
                guard shape.count == dims.count else { throw .rankMismatch(name: name, modelRank: shape.count, pinnedRank: dims.count) }
            }
            // A ranged dim keeps the model's symbol (so every input that shares it shares the range) or gets one.
            for (axis, range) in (ranges[name] ?? [:]).sorted(by: { $0.key < $1.key }) {
                let declared = t.shape?[axis] ?? .unknown
                let symbol: String
                switch declared {
                case .value(let m): throw .conflict(name: name, axis: axis, modelDim: m, pinned: range.description)
                case .symbol(let s): symbol = s
                case .unknown: symbol = "\(name)_\(axis)"
                }
                if let earlier = symbolRanges[symbol], earlier != range {
                    throw .symbolConflict(name: name, axis: axis, symbol: symbol, pinned: range.description, earlier: earlier.description,
                                          earlierInput: order.first { ranges[$0]?.values.contains(earlier) == true } ?? "")
                }
                symbolRanges[symbol] = range
                dims[axis] = .symbol(symbol)
            }
            if let shape = t.shape {
                for (axis, (declared, pinned)) in zip(shape, dims).enumerated() {
                    if case .value(let m) = declared, pinned != declared {
                        throw .conflict(name: name, axis: axis, modelDim: m, pinned: pinned.description)
                    }
                    guard case .symbol(let symbol) = declared else { continue }
                    if let earlier = bindings[symbol], earlier != pinned {
                        throw .symbolConflict(name: name, axis: axis, symbol: symbol, pinned: pinned.description,
                                              earlier: earlier.description, earlierInput: boundBy[symbol]!)
                    }
                    if pinned != declared, bindings[symbol] == nil {
                        bindings[symbol] = pinned
                        boundBy[symbol] = name
                        boundAxis[symbol] = axis
                    }
                }
            }
            model.graph.inputs[index].type = .tensor(TensorType(elementType: t.elementType, shape: dims))
        }
        // A symbol a pin fixes is fixed wherever the model declares it: the other inputs that share it (issue 26),
        // value_info and outputs of ops inference cannot compute (com.microsoft contrib ops, custom domains)
        // otherwise keep `batch` and `seq` symbolic and keep their readers off the Neural Engine (issue 15).
        if !bindings.isEmpty {
            let pinned = Set(order)
            for i in model.graph.inputs.indices where runtime.contains(model.graph.inputs[i].name) && !pinned.contains(model.graph.inputs[i].name) {
                model.graph.inputs[i].type = model.graph.inputs[i].type.binding(bindings)
            }
            model.graph = Self.binding(model.graph, bindings)
        }
        // A symbol pinned through one input and ranged through another is a contradiction.
        for (symbol, range) in symbolRanges.sorted(by: { $0.key < $1.key }) {
            if let bound = bindings[symbol] {
                throw .symbolConflict(name: boundBy[symbol]!, axis: boundAxis[symbol] ?? 0, symbol: symbol, pinned: bound.description, earlier: range.description,
                                      earlierInput: order.first { ranges[$0] != nil } ?? "")
            }
        }
        return (model, symbolRanges)
    }

    /// The graph (and its subgraphs) with declared symbolic dims replaced by the values `bindings` gives them; the
    /// main graph's inputs are the pins' business and stay as they are.
    private static func binding(_ graph: Graph, _ bindings: [String: Dim], isMain: Bool = true) -> Graph {
        var g = graph
        func bind(_ info: ValueInfo) -> ValueInfo {
            var info = info
            info.type = info.type.binding(bindings)
            return info
        }
        if !isMain { g.inputs = g.inputs.map(bind) }
        g.outputs = g.outputs.map(bind)
        g.valueInfo = g.valueInfo.map(bind)
        g.nodes = g.nodes.map { node in
            guard node.attributes.contains(where: { if case .graph = $0.value { return true }; if case .graphs = $0.value { return true }; return false }) else { return node }
            var node = node
            node.attributes = node.attributes.map { a in
                switch a.value {
                case .graph(let sub): return Attribute(name: a.name, value: .graph(binding(sub, bindings, isMain: false)))
                case .graphs(let subs): return Attribute(name: a.name, value: .graphs(subs.map { binding($0, bindings, isMain: false) }))
                default: return a
                }
            }
            return node
        }
        return g
    }
}

extension Substring {
    var trimmingSpaces: String {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}

extension ValueType {
    /// The type with symbolic dims replaced by the values `bindings` gives them.
    public func binding(_ bindings: [String: Int]) -> ValueType { binding(bindings.mapValues { Dim.value($0) }) }

    /// The type with symbolic dims replaced by the dims (numbers or other symbols) `bindings` gives them.
    public func binding(_ bindings: [String: Dim]) -> ValueType {
        switch self {
        case .tensor(let t): return .tensor(t.binding(bindings))
        case .sparseTensor(let t): return .sparseTensor(t.binding(bindings))
        case .sequence(let e): return .sequence(e.binding(bindings))
        case .optional(let e): return .optional(e.binding(bindings))
        case .map(let k, let v): return .map(key: k, value: v.binding(bindings))
        case .opaque, .unknown: return self
        }
    }
}

extension TensorType {
    /// The type with symbolic dims replaced by the values `bindings` gives them; an unknown rank stays unknown.
    public func binding(_ bindings: [String: Int]) -> TensorType { binding(bindings.mapValues { Dim.value($0) }) }

    /// The type with symbolic dims replaced by the dims `bindings` gives them.
    public func binding(_ bindings: [String: Dim]) -> TensorType {
        guard let shape else { return self }
        return TensorType(elementType: elementType, shape: shape.map { dim in
            if case .symbol(let s) = dim, let d = bindings[s] { return d }
            return dim
        })
    }
}
