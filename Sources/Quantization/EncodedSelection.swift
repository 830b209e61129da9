import GraphIR

extension Tensor {
    /// Slice `index` of axis 0 of an [A, B, rest…] tensor stored linear or palettized, with the axis-1 rows `rows`
    /// taken in that order: a [rows.count, rest…] tensor in the same encoding. The stored integers or indices are
    /// copied bit for bit and the scales, zero points or table picked to match, so the result decodes to exactly
    /// the selected elements of what this tensor decodes to (a recurrent layer's weights, split per direction and put
    /// in MIL's gate order, stay compressed). Nil for a raw or half tensor, for bytes shorter than the encoding
    /// needs, and for groups that straddle the selection (blocks along axis 0 or 1).
    public func selecting(slice index: Int, rows: [Int]) -> Tensor? {
        guard dims.count >= 2, dims.allSatisfy({ $0 >= 0 }), index >= 0, index < dims[0],
              rows.allSatisfy({ $0 >= 0 && $0 < dims[1] }), case .bytes(let stored) = data else { return nil }
        let outDims = [rows.count] + dims[2...]
        var result = Tensor(name: name, dataType: dataType, dims: outDims, data: .bytes(stored))
        switch encoding {
        case .linear(var q):
            let width = q.bits ?? (q.storage == .int4 || q.storage == .uint4 ? 4 : 8)
            guard let values = Self.gather(stored, width: width, dims: dims, slice: index, rows: rows) else { return nil }
            result.data = .bytes(values)
            // Scales and zero points picked alike (each once); nil when either does not read.
            func pick(_ select: (Tensor) -> Tensor?) -> Bool {
                guard let scale = select(q.scale) else { return false }
                if let zeroPoint = q.zeroPoint {
                    guard let picked = select(zeroPoint) else { return false }
                    q.zeroPoint = picked
                }
                q.scale = scale
                return true
            }
            switch (q.axis, q.blockSize) {
            case (nil, _):
                break
            case (0?, nil):
                // One direction's channel: a single scale, per tensor.
                guard pick({ $0.picking([index], as: []) }) else { return nil }
                q.axis = nil
            case (1?, nil):
                guard pick({ $0.picking(rows, as: [rows.count]) }) else { return nil }
                q.axis = 0
            case (let axis?, nil):
                q.axis = axis - 1
            case (let axis?, _?) where axis >= 2:
                // Scales and zero points are shaped like the data with the blocked axis divided: select alike.
                guard pick({ $0.selectingPlain(slice: index, rows: rows) }) else { return nil }
                q.axis = axis - 1
            default:
                return nil
            }
            result.encoding = .linear(q)
        case .palette(var p):
            guard let values = Self.gather(stored, width: p.bits, dims: dims, slice: index, rows: rows) else { return nil }
            result.data = .bytes(values)
            if let group = p.groupSize {
                // Slice `index` reads table index / group: that table alone serves the result.
                guard group > 0, let table = p.lut.selectingPlain(slice: index / group, rows: nil) else { return nil }
                p.lut = table
                p.groupSize = nil
            }
            result.encoding = .palette(p)
        default:
            return nil
        }
        return result
    }

    /// A plain (raw) tensor's elements at flat `positions`, shaped `shape`; nil when the bytes are short.
    func picking(_ positions: [Int], as shape: [Int]) -> Tensor? {
        guard let width = Self.bitWidth(dataType), case .bytes(let bytes) = data,
              positions.allSatisfy({ $0 >= 0 && $0 < elementCount }), bytes.count * 8 >= elementCount * width else { return nil }
        let out = Self.copy(bytes, width: width, runs: positions.map { ($0, 1) })
        return Tensor(name: name, dataType: dataType, dims: shape, data: .bytes(out))
    }

    /// A plain tensor [A, B, rest…]: slice `index` of axis 0 with axis-1 `rows` (all of them when nil).
    func selectingPlain(slice index: Int, rows: [Int]?) -> Tensor? {
        guard dims.count >= 2, index >= 0, index < dims[0], let width = Self.bitWidth(dataType),
              case .bytes(let bytes) = data else { return nil }
        let rows = rows ?? Array(0..<dims[1])
        guard rows.allSatisfy({ $0 >= 0 && $0 < dims[1] }),
              let out = Self.gather(bytes, width: width, dims: dims, slice: index, rows: rows) else { return nil }
        return Tensor(name: name, dataType: dataType, dims: [rows.count] + dims[2...], data: .bytes(out))
    }

    /// Bits per element of a plain tensor's (or an integer storage's) bytes.
    static func bitWidth(_ type: DataType) -> Int? {
        switch type {
        case .int4, .uint4: return 4
        case .int8, .uint8: return 8
        case .float16: return 16
        case .float: return 32
        default: return nil
        }
    }

    /// From an LSB-first stream of `width`-bit elements shaped `dims`, slice `index` of axis 0 with axis-1 `rows`.
    static func gather(_ stream: ByteView, width: Int, dims: [Int], slice index: Int, rows: [Int]) -> ByteView? {
        let inner = dims.dropFirst(2).reduce(1, *)
        guard width > 0, stream.count * 8 >= dims.reduce(1, *) * width else { return nil }
        return copy(stream, width: width, runs: rows.map { ((index * dims[1] + $0) * inner, inner) })
    }

    /// The elements of `runs` (start, count), in order, as a new LSB-first stream of `width`-bit elements.
    static func copy(_ stream: ByteView, width: Int, runs: [(start: Int, count: Int)]) -> ByteView {
        let total = runs.reduce(0) { $0 + $1.count }
        let out = OwnedBuffer(count: (total * width + 7) / 8)
        var next = 0
        for run in runs where run.count > 0 {
            if width % 8 == 0 {
                let size = width / 8
                out.mutableBytes.baseAddress!.advanced(by: next * size)
                    .copyMemory(from: stream.bytes.baseAddress!.advanced(by: run.start * size), byteCount: run.count * size)
            } else {
                for k in 0..<run.count {
                    let value = Palettizer.element(stream.bytes, run.start + k, bits: width)
                    Palettizer.put(UInt8(value), at: next + k, bits: width, into: out.mutableBytes)
                }
            }
            next += run.count
        }
        return out.view
    }
}
