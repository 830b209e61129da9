import GraphIR
import Quantization

/// Constants that reach a node through Identity, Dropout, Reshape (and Flatten, Squeeze, Unsqueeze), Transpose or a
/// float Cast are constants too: exporters share a weight through an Identity (timm), or reshape and transpose a
/// weight in the graph. Shape inference does not fold them when they are large (folded results are capped at
/// 64 KiB), so the exporter forwards them here: the same bytes under a new name or shape, transposed bytes, or
/// float32 ↔ float16 values. A forwarded node is folded: it computes nothing at run time.
enum ConstantForwarding {
    /// Largest tensor transposed or cast at export time, in bytes.
    static let maxBytes = 1 << 30

    /// The node's output as a constant, or nil when the node does not forward a constant.
    static func forward(_ node: Node, table: ValueTable, outputType: () -> ValueType?) -> Tensor? {
        if node.opType == "ConstantOfShape", node.domain.isEmpty || node.domain == "ai.onnx" { return filled(node, table: table) }
        guard node.domain.isEmpty || node.domain == "ai.onnx", let input = node.inputs.first, !input.isEmpty,
              let output = node.outputs.first, !output.isEmpty,
              let source = table.constant(input)?.tensor, case .bytes(let view) = source.data else { return nil }
        switch node.opType {
        case "Identity":
            guard node.inputs.count == 1 else { return nil }
            return renamed(source, output)
        case "Dropout":
            guard node.outputs.count == 1 || node.outputs.dropFirst().allSatisfy(\.isEmpty), node.inputs.count == 1 else { return nil }
            return renamed(source, output)
        case "Reshape", "Flatten", "Squeeze", "Unsqueeze":
            // Same bytes in row-major order: valid for raw and float16 storage, not for per-axis quantization.
            guard source.encoding.isRaw || source.encoding.name == "float16", let dims = staticDims(outputType()),
                  dims.reduce(1, *) == source.elementCount else { return nil }
            var t = renamed(source, output)
            t.dims = dims
            return t
        case "Transpose":
            guard source.encoding.isRaw || source.encoding.name == "float16", view.count <= maxBytes,
                  let width = source.encoding.isRaw ? source.dataType.bitWidth.map({ $0 / 8 }) : 2, width > 0,
                  view.count == source.elementCount * width else { return nil }
            let rank = source.dims.count
            let perm: [Int]
            if case .ints(let p)? = node.attribute("perm")?.value { perm = p.map { Int(clamping: $0) } } else { perm = Array((0..<rank).reversed()) }
            guard perm.sorted() == Array(0..<rank) else { return nil }
            var t = renamed(source, output)
            t.dims = perm.map { source.dims[$0] }
            t.data = .bytes(transpose(view, dims: source.dims, perm: perm, width: width))
            return t
        case "Cast":
            guard case .int(let to)? = node.attribute("to")?.value, source.encoding.isRaw, view.count <= maxBytes else { return nil }
            switch (source.dataType, to) {
            case (.float, 1), (.float16, 10): return renamed(source, output)
            case (.float, 10):
                let out = OwnedBuffer(uninitializedCount: source.elementCount * 2)
                _ = Float16Codec.encode(view, into: out)
                var t = renamed(source, output)
                t.dataType = .float16
                t.data = .bytes(out.view)
                return t
            case (.float16, 1):
                let out = OwnedBuffer(uninitializedCount: source.elementCount * 4)
                Float16Codec.decode(view, into: out)
                var t = renamed(source, output)
                t.dataType = .float
                t.data = .bytes(out.view)
                return t
            default: return nil
            }
        default:
            return nil
        }
    }

    /// ConstantOfShape with a constant shape: the value repeated (old model-zoo files build every weight this way,
    /// too large for inference to fold).
    static func filled(_ node: Node, table: ValueTable) -> Tensor? {
        guard let output = node.outputs.first, !output.isEmpty, let shapeName = node.inputs.first,
              let dims = table.constant(shapeName)?.ints, dims.allSatisfy({ $0 >= 0 }),
              let count = Tensor.elementCount(of: dims) else { return nil }
        var value = Tensor(name: output, dataType: .float, dims: [1], data: .bytes(LittleEndian.bytes(of: [Float(0)])))
        if case .tensor(let t)? = node.attribute("value")?.value { value = t }
        guard value.elementCount == 1, value.encoding.isRaw, case .bytes(let one) = value.data,
              let bits = value.dataType.bitWidth, bits % 8 == 0, bits > 0, one.count == bits / 8, count <= maxBytes / one.count else { return nil }
        let width = one.count
        let out = OwnedBuffer(uninitializedCount: count * width)
        let dst = out.mutableBytes.baseAddress!
        for i in 0..<count { (dst + i * width).copyMemory(from: one.bytes.baseAddress!, byteCount: width) }
        return Tensor(name: output, dataType: value.dataType, dims: dims, data: .bytes(out.view))
    }

    static func renamed(_ t: Tensor, _ name: String) -> Tensor {
        var copy = t
        copy.name = name
        return copy
    }

    static func staticDims(_ type: ValueType?) -> [Int]? {
        guard case .tensor(let t)? = type, let shape = t.shape else { return nil }
        var dims: [Int] = []
        for d in shape {
            guard case .value(let v) = d else { return nil }
            dims.append(v)
        }
        return dims
    }

    /// Row-major bytes of elements `width` bytes wide, permuted: out dim i is input dim perm[i].
    static func transpose(_ view: ByteView, dims: [Int], perm: [Int], width: Int) -> ByteView {
        let rank = dims.count
        let count = dims.reduce(1, *)
        let out = OwnedBuffer(uninitializedCount: count * width)
        guard count > 0 else { return out.view }
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * dims[i + 1] }
        let outDims = perm.map { dims[$0] }
        let strides = perm.map { inStrides[$0] }  // input stride of each output dim
        var index = [Int](repeating: 0, count: rank)
        let src = view.bytes.baseAddress!, dst = out.mutableBytes.baseAddress!
        var offset = 0
        for k in 0..<count {
            (dst + k * width).copyMemory(from: src + offset * width, byteCount: width)
            var d = rank - 1
            while d >= 0 {
                index[d] += 1
                offset += strides[d]
                if index[d] < outDims[d] { break }
                offset -= strides[d] * outDims[d]
                index[d] = 0
                d -= 1
            }
        }
        return out.view
    }
}
