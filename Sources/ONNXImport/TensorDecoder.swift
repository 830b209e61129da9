import CProtobufC
import GraphIR
import ONNXProto

/// Turns `TensorProto`s into `Tensor`s: checks dims and data type, picks the one field that holds the elements
/// (raw_data, a typed field, or external data) and checks its size against the dims. raw_data and external data are
/// referenced in place; typed fields are repacked into ONNX's raw little-endian layout.
struct TensorDecoder {
    let owner: UnpackedModel
    let external: ExternalDataResolver

    /// `label` names the tensor in errors when its own name is empty (e.g. a Constant node's output).
    func decode(_ proto: UnsafeMutablePointer<Onnx__TensorProto>, label: String) throws(DecodeError) -> Tensor {
        let t = proto.pointee
        let name = cString(t.name)
        let shown = name.isEmpty ? label : "tensor '\(name)'"
        do {
            return try decodeChecked(t, name: name)
        } catch {
            throw DecodeError("\(shown): \(error.message)")
        }
    }

    private func decodeChecked(_ t: Onnx__TensorProto, name: String) throws(DecodeError) -> Tensor {
        guard t.has_data_type != 0, t.data_type != 0 else { throw DecodeError("data type is undefined") }
        guard let dataType = DataType(rawValue: t.data_type) else {
            throw DecodeError("unknown data type \(t.data_type)")
        }
        let dims = try Self.checkedDims(cArray(t.dims, t.n_dims))
        let elements = Tensor.elementCount(of: dims)!
        if t.segment != nil { throw DecodeError("segmented tensors are not supported") }

        let docString = cString(t.doc_string)
        let metadata = cEntries(t.metadata_props, t.n_metadata_props).map { MetadataEntry(key: $0.key, value: $0.value) }
        let isExternal = t.has_data_location != 0 && t.data_location == 1
        if t.has_data_location != 0 && t.data_location != 0 && t.data_location != 1 {
            throw DecodeError("unknown data_location \(t.data_location)")
        }
        if isExternal {
            guard dataType != .string else { throw DecodeError("string tensors cannot use external data") }
            let (data, location) = try externalData(t, name: name, expected: dataType.storageBytes(elements: elements))
            return Tensor(name: name, dataType: dataType, dims: dims, data: .bytes(data), location: location,
                          docString: docString, metadata: metadata)
        }
        let data = try embeddedData(t, dataType: dataType, elements: elements, dims: dims)
        return Tensor(name: name, dataType: dataType, dims: dims, data: data, docString: docString, metadata: metadata)
    }

    static func checkedDims(_ raw: UnsafeBufferPointer<Int64>) throws(DecodeError) -> [Int] {
        var dims = [Int]()
        dims.reserveCapacity(raw.count)
        for d in raw {
            guard d >= 0 else { throw DecodeError("negative dim \(d) in dims \(Array(raw))") }
            guard let value = Int(exactly: d) else { throw DecodeError("dim \(d) is too large") }
            dims.append(value)
        }
        guard Tensor.elementCount(of: dims) != nil else {
            throw DecodeError("dims \(dims) overflow: their product does not fit in 64 bits")
        }
        return dims
    }

    private func externalData(_ t: Onnx__TensorProto, name: String, expected: Int?) throws(DecodeError) -> (ByteView, TensorLocation) {
        var location: String?
        var offset = 0
        var length: Int?
        for entry in cEntries(t.external_data, t.n_external_data) {
            switch entry.key {
            case "location": location = entry.value
            case "offset": offset = try Self.nonNegative(entry.value, key: "offset")
            case "length": length = try Self.nonNegative(entry.value, key: "length")
            default: break  // "checksum" and future keys are advisory
            }
        }
        guard let location else { throw DecodeError("external data has no 'location'") }
        guard let expected else { throw DecodeError("size overflows") }
        if let length, length != expected {
            throw DecodeError("external data length \(length) bytes, but dims need \(expected)")
        }
        let view = try external.bytes(location: location, offset: offset, length: length ?? expected, tensor: name)
        return (view, .external(location: location, offset: offset, length: view.count))
    }

    private static func nonNegative(_ text: String, key: String) throws(DecodeError) -> Int {
        guard let value = Int(text.trimmingSpaces), value >= 0 else {
            throw DecodeError("external data \(key) '\(text)' is not a non-negative integer")
        }
        return value
    }

    private func embeddedData(_ t: Onnx__TensorProto, dataType: DataType, elements: Int,
                              dims: [Int]) throws(DecodeError) -> TensorData {
        var fields: [String] = []
        if t.has_raw_data != 0 && t.raw_data.len > 0 { fields.append("raw_data") }
        if t.n_float_data > 0 { fields.append("float_data") }
        if t.n_int32_data > 0 { fields.append("int32_data") }
        if t.n_string_data > 0 { fields.append("string_data") }
        if t.n_int64_data > 0 { fields.append("int64_data") }
        if t.n_double_data > 0 { fields.append("double_data") }
        if t.n_uint64_data > 0 { fields.append("uint64_data") }
        guard fields.count <= 1 else {
            throw DecodeError("data is stored in several fields (\(fields.joined(separator: ", ")))")
        }
        if dataType == .string {
            guard fields.first ?? "string_data" == "string_data" else {
                throw DecodeError("string tensor stores its data in \(fields[0]) instead of string_data")
            }
            let strings = cArray(t.string_data, t.n_string_data).map(cBytes)
            guard strings.count == elements else {
                throw DecodeError("string_data holds \(strings.count) strings, but dims \(dims) need \(elements)")
            }
            return .strings(strings)
        }
        guard let expected = dataType.storageBytes(elements: elements) else {
            throw DecodeError("dims \(dims) of \(dataType.name) need more bytes than fit in 64 bits")
        }
        let field = fields.first ?? "raw_data"
        func mismatch(_ have: Int, _ unit: String, need: Int) -> DecodeError {
            DecodeError("\(field) holds \(have) \(unit), but dims \(dims) of \(dataType.name) need \(need)")
        }
        switch field {
        case "raw_data":
            let view = t.has_raw_data != 0 ? owner.rawData(t.raw_data) : .empty
            guard view.count == expected else { throw mismatch(view.count, "bytes", need: expected) }
            return .bytes(view)
        case "float_data":
            let values = cArray(t.float_data, t.n_float_data)
            let need = dataType == .complex64 ? elements * 2 : elements
            guard dataType == .float || dataType == .complex64 else { throw wrongField(field, dataType) }
            guard values.count == need else { throw mismatch(values.count, "values", need: need) }
            return .bytes(Self.pack(values, width: 4) { UInt64($0.bitPattern) })
        case "int64_data":
            guard dataType == .int64 else { throw wrongField(field, dataType) }
            let values = cArray(t.int64_data, t.n_int64_data)
            guard values.count == elements else { throw mismatch(values.count, "values", need: elements) }
            return .bytes(Self.pack(values, width: 8) { UInt64(bitPattern: $0) })
        case "double_data":
            let values = cArray(t.double_data, t.n_double_data)
            let need = dataType == .complex128 ? elements * 2 : elements
            guard dataType == .double || dataType == .complex128 else { throw wrongField(field, dataType) }
            guard values.count == need else { throw mismatch(values.count, "values", need: need) }
            return .bytes(Self.pack(values, width: 8) { $0.bitPattern })
        case "uint64_data":
            guard dataType == .uint64 || dataType == .uint32 else { throw wrongField(field, dataType) }
            let values = cArray(t.uint64_data, t.n_uint64_data)
            guard values.count == elements else { throw mismatch(values.count, "values", need: elements) }
            return .bytes(Self.pack(values, width: dataType == .uint32 ? 4 : 8) { $0 })
        default:
            return .bytes(try int32Data(cArray(t.int32_data, t.n_int32_data), dataType: dataType, elements: elements,
                                        expected: expected, mismatch: mismatch))
        }
    }

    /// int32_data carries every type of 16 bits or fewer: one element per entry, except 4-bit types (two per entry,
    /// one packed byte), 2-bit types (four per entry, one packed byte) and 6-bit floats (one per entry, repacked
    /// four to three bytes).
    private func int32Data(_ values: UnsafeBufferPointer<Int32>, dataType: DataType, elements: Int, expected: Int,
                           mismatch: (Int, String, Int) -> DecodeError) throws(DecodeError) -> ByteView {
        switch dataType {
        case .int32:
            guard values.count == elements else { throw mismatch(values.count, "values", elements) }
            return Self.pack(values, width: 4) { UInt64(UInt32(bitPattern: $0)) }
        case .int16, .uint16, .float16, .bfloat16:
            guard values.count == elements else { throw mismatch(values.count, "values", elements) }
            return Self.pack(values, width: 2) { UInt64(UInt32(bitPattern: $0)) }
        case .bool:
            guard values.count == elements else { throw mismatch(values.count, "values", elements) }
            return Self.pack(values, width: 1) { $0 != 0 ? 1 : 0 }
        case .int8, .uint8, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float8e8m0:
            guard values.count == elements else { throw mismatch(values.count, "values", elements) }
            return Self.pack(values, width: 1) { UInt64(UInt32(bitPattern: $0)) }
        case .int4, .uint4, .float4e2m1, .int2, .uint2:
            // Already packed: one byte per entry.
            guard values.count == expected else { throw mismatch(values.count, "packed bytes", expected) }
            return Self.pack(values, width: 1) { UInt64(UInt32(bitPattern: $0)) }
        case .float6e2m3, .float6e3m2:
            guard values.count == elements else { throw mismatch(values.count, "values", elements) }
            let buffer = OwnedBuffer(count: expected)
            for (i, v) in values.enumerated() {
                let bit = i * 6
                let six = UInt16(UInt32(bitPattern: v) & 0x3F) << UInt16(bit % 8)
                buffer.mutableBytes[bit / 8] |= UInt8(truncatingIfNeeded: six)
                if six > 0xFF { buffer.mutableBytes[bit / 8 + 1] |= UInt8(truncatingIfNeeded: six >> 8) }
            }
            return buffer.view
        default:
            throw wrongField("int32_data", dataType)
        }
    }

    private func wrongField(_ field: String, _ dataType: DataType) -> DecodeError {
        DecodeError("\(field) cannot hold \(dataType.name) elements")
    }

    /// Writes the low `width` bytes of each value's bit pattern, little-endian, into a new buffer.
    private static func pack<S: Collection>(_ values: S, width: Int, bits: (S.Element) -> UInt64) -> ByteView {
        let buffer = OwnedBuffer(count: values.count * width)
        var offset = 0
        for value in values {
            var pattern = bits(value)
            for _ in 0..<width {
                buffer.mutableBytes[offset] = UInt8(truncatingIfNeeded: pattern)
                pattern >>= 8
                offset += 1
            }
        }
        return buffer.view
    }
}

extension String {
    var trimmingSpaces: Substring {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
