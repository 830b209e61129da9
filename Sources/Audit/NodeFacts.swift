import GraphIR

/// What rules may read about one node: the type and constness of each input and output, attributes, and the values of
/// constant inputs.
struct NodeFacts {
    struct Value {
        /// "" for an omitted optional input.
        var name: String
        var type: ValueType?
        var constant: Bool

        var isPresent: Bool { !name.isEmpty }

        /// The tensor type, when the value is a tensor of known type.
        var tensor: TensorType? {
            if case .tensor(let t) = type { return t }
            return nil
        }
    }

    var node: Node
    var inputs: [Value]
    var outputs: [Value]
    /// The constant tensor of that name (initializer or Constant output), if the model holds its bytes.
    var constantTensor: (String) -> Tensor?

    init(node: Node, types: [String: ValueType], constants: Set<String>, constantTensor: @escaping (String) -> Tensor?) {
        self.node = node
        inputs = node.inputs.map { Value(name: $0, type: types[$0], constant: constants.contains($0)) }
        outputs = node.outputs.map { Value(name: $0, type: types[$0], constant: constants.contains($0)) }
        self.constantTensor = constantTensor
    }

    /// How findings name a value: "input 1 'W'".
    static func label(_ role: String, _ index: Int, _ value: Value) -> String { "\(role) \(index) '\(value.name)'" }

    /// Present inputs then outputs, with their labels.
    var labelledValues: [(label: String, value: Value)] {
        inputs.enumerated().filter { $0.element.isPresent }.map { (Self.label("input", $0.offset, $0.element), $0.element) }
            + outputs.enumerated().filter { $0.element.isPresent }.map { (Self.label("output", $0.offset, $0.element), $0.element) }
    }

    /// Integer values of an attribute (INT or INTS); nil when absent or of another type.
    func ints(_ name: String) -> [Int]? {
        switch node.attribute(name)?.value {
        case .int(let v)?: return [Int(clamping: v)]
        case .ints(let vs)?: return vs.map { Int(clamping: $0) }
        default: return nil
        }
    }

    /// An attribute's value as text, for `when` conditions.
    func attributeText(_ name: String) -> String? {
        switch node.attribute(name)?.value {
        case .string(let bytes)?: return String(decoding: bytes, as: UTF8.self)
        case .int(let v)?: return String(v)
        case .float(let v)?: return String(v)
        default: return nil
        }
    }

    /// The numbers a constant input holds (float, float16, int32 and int64 tensors stored raw), or nil.
    func constantNumbers(input index: Int) -> [Double]? {
        guard index < inputs.count, inputs[index].isPresent, let t = constantTensor(inputs[index].name),
              t.encoding.isRaw, case .bytes(let view) = t.data else { return nil }
        let bytes = view.bytes
        func load<T: FixedWidthInteger>(_: T.Type, _ i: Int) -> T {
            var v: T = 0
            for k in 0..<MemoryLayout<T>.size { v |= T(truncatingIfNeeded: bytes[i * MemoryLayout<T>.size + k]) << (8 * k) }
            return v
        }
        let n = t.elementCount
        switch t.dataType {
        case .float: return (0..<n).map { Double(Float(bitPattern: load(UInt32.self, $0))) }
        case .int64: return (0..<n).map { Double(Int64(bitPattern: load(UInt64.self, $0))) }
        case .int32: return (0..<n).map { Double(Int32(bitPattern: load(UInt32.self, $0))) }
        #if !(os(macOS) && arch(x86_64))
        case .float16: return (0..<n).map { Double(Float16(bitPattern: load(UInt16.self, $0))) }
        #endif
        default: return nil
        }
    }
}

extension TensorType {
    /// Every dim, when all are known values.
    var staticDims: [Int]? {
        guard let shape else { return nil }
        var dims: [Int] = []
        for d in shape {
            guard case .value(let v) = d else { return nil }
            dims.append(v)
        }
        return dims
    }

    var elementCount: Int? {
        guard let dims = staticDims else { return nil }
        return Tensor.elementCount(of: dims)
    }
}
