/// Where a tensor's bytes live: inside the model file, in an external data file beside it, or already written into
/// the weights file of a package being built.
public enum TensorLocation: Sendable, Hashable {
    /// Held with the model: read from the model file itself, or created in memory.
    case embedded
    /// `location` as written in the model (relative to the model's folder), byte offset and length in that file.
    case external(location: String, offset: Int, length: Int)
    /// Streamed into the package's weights file at `offset` as soon as it was converted; the tensor's data was
    /// released then, and the package writer records this blob instead of writing it again.
    case stored(offset: Int, length: Int, sha256: String)

    /// True when the bytes are in an external data file beside the model.
    public var isExternal: Bool {
        if case .external = self { return true }
        return false
    }
}

/// How a tensor's bytes encode its values. The graph always sees `dataType`; an encoding other than `.raw` is a
/// compressed storage form that readers decode (or export as a Cast / DequantizeLinear node).
public indirect enum WeightEncoding: Sendable {
    /// Stored exactly as ONNX `raw_data` of `dataType` (strings: one byte string per element).
    case raw
    /// float32 values stored as IEEE 754 half precision.
    case float16
    /// float32 values stored as integers: w ≈ scale · (q − zeroPoint).
    case linear(LinearQuantization)
    /// float32 values stored as N-bit indices into a lookup table: w ≈ lut[group][q].
    case palette(PaletteQuantization)

    /// `raw`, `float16`, `linear` or `lut`: the encoding's name in conversion reports.
    public var name: String {
        switch self {
        case .raw: return "raw"
        case .float16: return "float16"
        case .linear: return "linear"
        case .palette: return "lut"
        }
    }

    /// True when the bytes are stored as plain `raw_data` of the tensor's type.
    public var isRaw: Bool {
        if case .raw = self { return true }
        return false
    }

    /// The element type of the stored bytes, for a tensor of logical type `dataType`.
    public func storageType(for dataType: DataType) -> DataType {
        switch self {
        case .raw: return dataType
        case .float16: return .float16
        case .linear(let q): return q.storage
        case .palette: return .uint8
        }
    }
}

/// Linear (affine) quantization parameters, in the layout of ONNX `DequantizeLinear`:
/// - per tensor: `axis` nil, `scale` a scalar;
/// - per channel: `axis` the channel axis, `scale` 1-D of that dim;
/// - per block: `axis` the blocked axis, `blockSize` B, `scale` the weight's shape with that axis' dim ⌈d/B⌉.
/// `zeroPoint` has the scale's shape and the storage type; nil means zero (symmetric).
public struct LinearQuantization: Sendable {
    /// int8, uint8, int4 or uint4.
    public var storage: DataType
    /// The channel or blocked axis; nil for per-tensor quantization.
    public var axis: Int?
    /// Elements per block along `axis` for per-block quantization; nil otherwise.
    public var blockSize: Int?
    /// The float scales, shaped by the granularity (see the type's description).
    public var scale: Tensor
    /// Zero points in the storage type, shaped like `scale`; nil means zero (symmetric).
    public var zeroPoint: Tensor?
    /// 2, 3, 5, 6 or 7: the integers are packed at this width (an LSB-first bit stream, two's complement for signed
    /// storage) instead of the storage type's layout; nil: the storage type's own layout.
    public var bits: Int?

    /// Creates linear quantization parameters; `bits` nil keeps the storage type's own layout.
    public init(storage: DataType, axis: Int?, blockSize: Int?, scale: Tensor, zeroPoint: Tensor?, bits: Int? = nil) {
        self.bits = bits
        self.storage = storage
        self.axis = axis
        self.blockSize = blockSize
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    /// `per-tensor`, `per-channel` or `per-block`, from which of `axis` and `blockSize` are set.
    public var granularity: String {
        blockSize != nil ? "per-block" : axis != nil ? "per-channel" : "per-tensor"
    }
}

/// Palettization parameters: every element is a `bits`-bit index (packed little-endian from the least significant
/// bit of the first byte) into a lookup table. `lut` is float16 (or float) of shape [2^bits] (one table), or
/// [groups, 2^bits] when `groupSize` consecutive slices along axis 0 share each table (the last group may be shorter).
public struct PaletteQuantization: Sendable {
    /// Bits per index; the table has 2^bits entries.
    public var bits: Int
    /// Slices along axis 0 that share one table; nil when a single table serves the whole tensor.
    public var groupSize: Int?
    /// The lookup table(s): [2^bits], or [groups, 2^bits] with `groupSize`.
    public var lut: Tensor

    /// Creates palettization parameters.
    public init(bits: Int, groupSize: Int?, lut: Tensor) {
        self.bits = bits
        self.groupSize = groupSize
        self.lut = lut
    }

    /// Bytes the packed indices of `elements` values take.
    public func indexBytes(elements: Int) -> Int? {
        let (bitCount, overflow) = elements.multipliedReportingOverflow(by: bits)
        return overflow ? nil : bitCount / 8 + (bitCount % 8 == 0 ? 0 : 1)
    }
}

/// A constant tensor: an initializer, a Constant node's value or a tensor attribute.
/// `dims` are validated (non-negative, element count fits in `Int`) and `data` holds exactly the bytes they need in
/// `encoding` (for `.raw`, ONNX's raw little-endian layout of `dataType`).
public struct Tensor: Sendable {
    /// The name of the value the tensor defines (`TensorProto.name`).
    public var name: String
    /// The logical element type the graph sees, whatever `encoding` stores.
    public var dataType: DataType
    /// The shape (`TensorProto.dims`); empty for a scalar.
    public var dims: [Int]
    /// The stored bytes, laid out as `encoding` says.
    public var data: TensorData
    /// How `data` encodes the values: `.raw` as in ONNX, or a compressed form.
    public var encoding: WeightEncoding
    /// Where the bytes live: in the model file, in an external data file, or already in a package's weights.
    public var location: TensorLocation
    /// Free-form documentation (`TensorProto.doc_string`); empty when absent.
    public var docString: String
    /// Key/value annotations (`TensorProto.metadata_props`), in file order.
    public var metadata: [MetadataEntry]

    /// Creates a tensor; the caller makes sure `data` holds exactly the bytes `dims` need in `encoding`.
    public init(name: String, dataType: DataType, dims: [Int], data: TensorData, encoding: WeightEncoding = .raw,
                location: TensorLocation = .embedded, docString: String = "", metadata: [MetadataEntry] = []) {
        self.name = name
        self.dataType = dataType
        self.dims = dims
        self.data = data
        self.encoding = encoding
        self.location = location
        self.docString = docString
        self.metadata = metadata
    }

    /// Product of the dims (1 for a scalar). Valid tensors never overflow: importers check it.
    public var elementCount: Int { dims.reduce(1, *) }

    /// Size of the elements in storage: packed bytes, or the summed UTF-8 lengths of a string tensor.
    public var byteCount: Int { data.byteCount }

    /// The tensor's type: `dataType` with every dim known.
    public var type: TensorType { TensorType(elementType: dataType, shape: dims.map { .value($0) }) }

    /// Element count of `dims`, or nil when a dim is negative or the product overflows `Int`.
    public static func elementCount(of dims: [Int]) -> Int? {
        var count = 1
        for d in dims {
            guard d >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            count = product
        }
        return count
    }
}

/// An ONNX sparse tensor: `values` [NNZ] at `indices` ([NNZ] linear or [NNZ, rank] coordinates) of a dense `dims` shape.
public struct SparseTensor: Sendable {
    /// The non-zero values, a 1-D tensor of NNZ elements (`SparseTensorProto.values`).
    public var values: Tensor
    /// Positions of the values: [NNZ] linear indices or [NNZ, rank] coordinates (`SparseTensorProto.indices`).
    public var indices: Tensor
    /// The shape of the dense tensor (`SparseTensorProto.dims`).
    public var dims: [Int]

    /// Creates a sparse tensor from its values, indices and dense shape.
    public init(values: Tensor, indices: Tensor, dims: [Int]) {
        self.values = values
        self.indices = indices
        self.dims = dims
    }

    /// The name of the value it defines: the name of `values`, as in ONNX.
    public var name: String { values.name }

    /// What is wrong with the sparse tensor, in one phrase; nil when it is sound. Every reader checks this before
    /// using one (ONNX import, package reader and verifier): `dims` non-negative with an element count N that fits in
    /// `Int`; `values` 1-D with NNZ elements; `indices` int64 of shape [NNZ] (linear positions, each in [0, N)) or
    /// [NNZ, rank] (coordinates, each in [0, dims[j])), strictly ascending (row-major order for coordinates), as the
    /// ONNX checker requires. Index values are read, so a malformed tensor can never send a reader past its bytes.
    public var fault: String? {
        guard let count = Tensor.elementCount(of: dims) else { return "dims \(dims) have a negative dim or overflow" }
        guard values.dims.count == 1 else { return "values must be 1-D, got dims \(values.dims)" }
        let nnz = values.elementCount
        guard indices.dataType == .int64, indices.encoding.isRaw else {
            return "indices must be int64, got \(indices.dataType.name)"
        }
        let rank = dims.count
        let linear = indices.dims == [nnz]
        guard linear || indices.dims == [nnz, rank] else {
            return "indices of shape \(indices.dims) do not fit \(nnz) value(s): they need [\(nnz)] (linear) or [\(nnz), \(rank)] (coordinates)"
        }
        let width = linear ? 1 : rank
        guard case .bytes(let view) = indices.data, view.count == nnz * width * 8 else {
            return "indices hold \(indices.byteCount) bytes, not the \(nnz * width * 8) their shape needs"
        }
        let bytes = view.bytes
        var previous = -1
        for k in 0..<nnz {
            var position = 0
            for j in 0..<width {
                let i = Int(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: (k * width + j) * 8, as: Int64.self)))
                let bound = linear ? count : dims[j]
                guard i >= 0, i < bound else {
                    let at = linear ? "\(k)" : "[\(k), \(j)]"
                    return "index \(i) at position \(at) is outside [0, \(bound)) of dims \(dims)"
                }
                position = linear ? i : position * dims[j] + i  // < count: no overflow
            }
            guard position > previous else {
                return "indices are not in strictly ascending order at position \(k) (ONNX requires sorted, distinct indices)"
            }
            previous = position
        }
        return nil
    }
}
