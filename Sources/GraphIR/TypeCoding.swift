// JSON forms of types, shared by `inspect --json` and the package manifest:
//   tensor:  {"kind": "tensor", "dtype": "float", "shape": ["batch", 3, null]}   (shape null = unknown rank)
//   others:  {"kind": "sparse_tensor", ...}, {"kind": "sequence", "element": T}, {"kind": "optional", "element": T},
//            {"kind": "map", "key": "int64", "value": T}, {"kind": "opaque", "domain": d, "name": n}, {"kind": "unknown"}

extension DataType: Codable {
    /// Decodes a type from its `name` string; throws `DecodingError.dataCorrupted` for an unknown name.
    public init(from decoder: Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let type = DataType(name: name) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown dtype '\(name)'"))
        }
        self = type
    }

    /// Encodes the type as its `name` string.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(name)
    }
}

/// A dim is an integer, a symbol's name, or null when unknown.
extension Dim: Codable {
    /// Decodes null as `.unknown`, an integer as `.value`, and a string as `.symbol`.
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .unknown
        } else if let v = try? c.decode(Int.self) {
            self = .value(v)
        } else {
            self = .symbol(try c.decode(String.self))
        }
    }

    /// Encodes `.value` as an integer, `.symbol` as its name and `.unknown` as null.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .value(let v): try c.encode(v)
        case .symbol(let s): try c.encode(s)
        case .unknown: try c.encodeNil()
        }
    }
}

extension ValueType: Codable {
    private enum Keys: String, CodingKey { case kind, dtype, shape, element, key, value, domain, name }

    /// Encodes the type as an object with a `kind` key, in the forms listed at the top of this file.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        switch self {
        case .tensor(let t), .sparseTensor(let t):
            try c.encode(isSparse ? "sparse_tensor" : "tensor", forKey: .kind)
            try c.encode(t.elementType, forKey: .dtype)
            try c.encode(t.shape, forKey: .shape)
        case .sequence(let e):
            try c.encode("sequence", forKey: .kind)
            try c.encode(e, forKey: .element)
        case .optional(let e):
            try c.encode("optional", forKey: .kind)
            try c.encode(e, forKey: .element)
        case .map(let key, let value):
            try c.encode("map", forKey: .kind)
            try c.encode(key, forKey: .key)
            try c.encode(value, forKey: .value)
        case .opaque(let domain, let name):
            try c.encode("opaque", forKey: .kind)
            try c.encode(domain, forKey: .domain)
            try c.encode(name, forKey: .name)
        case .unknown:
            try c.encode("unknown", forKey: .kind)
        }
    }

    /// Decodes the forms listed at the top of this file; throws for an unknown `kind`.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        switch try c.decode(String.self, forKey: .kind) {
        case "tensor":
            self = .tensor(TensorType(elementType: try c.decodeIfPresent(DataType.self, forKey: .dtype),
                                      shape: try c.decodeIfPresent([Dim].self, forKey: .shape)))
        case "sparse_tensor":
            self = .sparseTensor(TensorType(elementType: try c.decodeIfPresent(DataType.self, forKey: .dtype),
                                            shape: try c.decodeIfPresent([Dim].self, forKey: .shape)))
        case "sequence": self = .sequence(try c.decode(ValueType.self, forKey: .element))
        case "optional": self = .optional(try c.decode(ValueType.self, forKey: .element))
        case "map":
            self = .map(key: try c.decodeIfPresent(DataType.self, forKey: .key), value: try c.decode(ValueType.self, forKey: .value))
        case "opaque":
            self = .opaque(domain: try c.decode(String.self, forKey: .domain), name: try c.decode(String.self, forKey: .name))
        case "unknown":
            self = .unknown
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown type kind '\(other)'")
        }
    }

    private var isSparse: Bool {
        if case .sparseTensor = self { return true }
        return false
    }
}

