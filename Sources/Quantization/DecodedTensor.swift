import GraphIR

extension Tensor {
    /// The tensor with its elements in the data type's plain layout: a linear or palette encoding dequantized and
    /// float32 stored as halves widened, both to little-endian float32 bytes. Raw tensors, external data, and bytes
    /// that do not decode (a half blob whose size is not 2 bytes per element) come back unchanged.
    public var decodedToRaw: Tensor {
        var result = self
        switch encoding {
        case .raw:
            return self
        case .linear, .palette:
            guard let floats = LinearCodec.dequantize(self) ?? PaletteCodec.dequantize(self) else { return self }
            result.data = .bytes(floats)
        case .float16:
            guard case .bytes(let halves) = data, halves.count == elementCount * 2 else { return self }
            let wide = OwnedBuffer(uninitializedCount: elementCount * 4)
            Float16Codec.decode(halves, into: wide)
            result.data = .bytes(wide.view)
        }
        result.encoding = .raw
        return result
    }
}
