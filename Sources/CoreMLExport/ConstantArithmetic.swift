import Foundation
import GraphIR
import Quantization

/// Float arithmetic on constants too large for shape inference to fold (its results are capped at 64 KiB), done at
/// export time so a weight computed from other weights is a constant: weight normalization (`g · v / ‖v‖`, Wav2Vec2's
/// positional conv), scaled or shifted weights. Without it the ops run on every prediction, and coremltools' loader
/// re-evaluates reductions of constants with NumPy when it opens the package (its `reduce_l2_norm` value inference
/// fails under NumPy 2).
///
/// float32 constants, stored raw or as halves (`--weights fp16`, the default): elements are computed in double from
/// the stored values and rounded once to float32, as ONNX's float ops are specified (onnxruntime computing in float32
/// may differ by an ulp for Pow and the reductions: summation order). When an operand was stored as halves the result
/// is stored as halves too, so the package keeps the encoding the user chose (Wav2Vec2's normalized conv weight at
/// fp16 weights is one fp16 constant, not a `reduce_l2_norm` on constants coremltools' loader cannot re-evaluate).
enum ConstantArithmetic {
    static let unary: Set<String> = ["Sqrt", "Neg", "Abs", "Reciprocal"]
    static let binary: Set<String> = ["Add", "Sub", "Mul", "Div", "Pow"]
    static let reductions: Set<String> = ["ReduceL2", "ReduceSum", "ReduceSumSquare", "ReduceMean"]

    /// The node's output as a constant, or nil when the node is not float arithmetic on float32 constants.
    static func evaluate(_ node: Node, table: ValueTable, opset: Int, outputDims: [Int]?) -> Tensor? {
        guard unary.contains(node.opType) || binary.contains(node.opType) || reductions.contains(node.opType),
              let output = node.outputs.first, !output.isEmpty, let outDims = outputDims,
              let count = Tensor.elementCount(of: outDims), count <= ConstantForwarding.maxBytes / 4 else { return nil }
        if unary.contains(node.opType) {
            guard node.inputs.count == 1, let x = floats(node.inputs[0], table), x.dims == outDims else { return nil }
            let f: (Double) -> Double
            switch node.opType {
            case "Sqrt": f = { $0.squareRoot() }
            case "Neg": f = { -$0 }
            case "Abs": f = { Swift.abs($0) }
            default: f = { 1 / $0 }
            }
            return tensor(output, outDims, x.values.map { Float(f(Double($0))) }, half: x.half)
        }
        if binary.contains(node.opType) {
            guard node.inputs.count == 2, let a = floats(node.inputs[0], table), let b = floats(node.inputs[1], table),
                  let ai = broadcastIndex(a.dims, to: outDims), let bi = broadcastIndex(b.dims, to: outDims) else { return nil }
            let f: (Double, Double) -> Double
            switch node.opType {
            case "Add": f = { $0 + $1 }
            case "Sub": f = { $0 - $1 }
            case "Mul": f = { $0 * $1 }
            case "Div": f = { $0 / $1 }
            default: f = { Foundation.pow($0, $1) }
            }
            var out = [Float](repeating: 0, count: count)
            for k in 0..<count { out[k] = Float(f(Double(a.values[ai[k]]), Double(b.values[bi[k]]))) }
            return tensor(output, outDims, out, half: a.half || b.half)
        }
        if reductions.contains(node.opType) {
            guard let x = floats(node.inputs.first ?? "", table) else { return nil }
            let rank = x.dims.count
            var axes: [Int]
            // Axes: an attribute, or the second input from opset 18 (ReduceSum from 13).
            let axesFromInput = node.opType == "ReduceSum" ? opset >= 13 : opset >= 18
            if axesFromInput {
                if node.inputs.count > 1, !node.inputs[1].isEmpty {
                    guard let given = table.constant(node.inputs[1])?.ints else { return nil }
                    axes = given.map { Int($0) }
                } else { axes = [] }
            } else if case .ints(let given)? = node.attribute("axes")?.value {
                axes = given.map { Int(clamping: $0) }
            } else { axes = [] }
            if axes.isEmpty {
                if case .int(1)? = node.attribute("noop_with_empty_axes")?.value { return nil }
                axes = Array(0..<rank)
            }
            axes = axes.map { $0 < 0 ? $0 + rank : $0 }
            guard axes.allSatisfy({ (0..<rank).contains($0) }) else { return nil }
            let reduced = Set(axes)
            let keptDims = (0..<rank).map { reduced.contains($0) ? 1 : x.dims[$0] }
            guard keptDims.reduce(1, *) == count else { return nil }
            // Each input element's output slot: its index with the reduced axes set to 0.
            var outStrides = [Int](repeating: 0, count: rank)
            var s = 1
            for d in stride(from: rank - 1, through: 0, by: -1) { outStrides[d] = reduced.contains(d) ? 0 : s; s *= keptDims[d] }
            var sums = [Double](repeating: 0, count: count)
            var index = [Int](repeating: 0, count: rank)
            var slot = 0
            let square = node.opType == "ReduceL2" || node.opType == "ReduceSumSquare"
            for v in x.values {
                let d = Double(v)
                sums[slot] += square ? d * d : d
                var axis = rank - 1
                while axis >= 0 {
                    index[axis] += 1
                    slot += outStrides[axis]
                    if index[axis] < x.dims[axis] { break }
                    slot -= outStrides[axis] * x.dims[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
            let n = Double(x.values.count / max(count, 1))
            let out: [Float]
            switch node.opType {
            case "ReduceL2": out = sums.map { Float($0.squareRoot()) }
            case "ReduceMean": out = sums.map { Float($0 / n) }
            default: out = sums.map { Float($0) }
            }
            return tensor(output, outDims, out, half: x.half)
        }
        return nil
    }

    /// A float32 constant's values and dims, and whether it is stored as halves (raw or float16 storage only).
    static func floats(_ name: String, _ table: ValueTable) -> (values: [Float], dims: [Int], half: Bool)? {
        guard !name.isEmpty, let t = table.constant(name)?.tensor, t.dataType == .float, case .bytes = t.data else { return nil }
        // Only raw and half storage: a linear or palette weight stays compressed rather than folded to float32.
        let half: Bool
        switch t.encoding {
        case .raw: half = false
        case .float16: half = true
        default: return nil
        }
        guard case .bytes(let wide) = t.decodedToRaw.data, wide.count == t.elementCount * 4 else { return nil }
        var values = [Float](repeating: 0, count: t.elementCount)
        values.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(wide.bytes)) }
        return (values.map { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) }, t.dims, half)
    }

    /// For each output element (row-major over `outDims`), the index of the input element numpy broadcasting reads.
    static func broadcastIndex(_ dims: [Int], to outDims: [Int]) -> [Int]? {
        guard dims.count <= outDims.count else { return nil }
        let aligned = [Int](repeating: 1, count: outDims.count - dims.count) + dims
        var strides = [Int](repeating: 0, count: outDims.count)
        var s = 1
        for d in stride(from: outDims.count - 1, through: 0, by: -1) {
            guard aligned[d] == outDims[d] || aligned[d] == 1 else { return nil }
            strides[d] = aligned[d] == 1 ? 0 : s
            s *= aligned[d]
        }
        let count = outDims.reduce(1, *)
        var out = [Int](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: outDims.count)
        var offset = 0
        for k in 0..<count {
            out[k] = offset
            var d = outDims.count - 1
            while d >= 0 {
                index[d] += 1
                offset += strides[d]
                if index[d] < outDims[d] { break }
                offset -= strides[d] * outDims[d]
                index[d] = 0
                d -= 1
            }
        }
        return out
    }

    /// The result as a float32 tensor: stored as halves when `half` (an operand was), else raw.
    static func tensor(_ name: String, _ dims: [Int], _ values: [Float], half: Bool) -> Tensor {
        if half, values.allSatisfy({ $0.isFinite && Swift.abs($0) <= Float16Codec.maxFinite }) {
            return Tensor(name: name, dataType: .float, dims: dims, data: .bytes(Float16Codec.encode(values)), encoding: .float16)
        }
        return tensor(name, dims, values)
    }

    static func tensor(_ name: String, _ dims: [Int], _ values: [Float]) -> Tensor {
        let out = OwnedBuffer(uninitializedCount: values.count * 4)
        let dst = out.mutableBytes.baseAddress!
        for (i, v) in values.enumerated() { (dst + i * 4).storeBytes(of: v.bitPattern.littleEndian, as: UInt32.self) }
        return Tensor(name: name, dataType: .float, dims: dims, data: .bytes(out.view))
    }
}
