import Foundation
import MIL

/// NumPy's `.npy` arrays and `.npz` archives (a zip of `.npy` entries), as `mlpkg run` and `compare` read and write
/// them. Format: numpy's NEP 1 (`numpy.lib.format`): magic `\x93NUMPY`, version, a little-endian header length, a
/// Python dict literal with `descr`, `fortran_order` and `shape`, then the raw elements. Entries of an archive must
/// be stored (np.savez); deflated ones (np.savez_compressed) are refused with that advice.
public enum NumPyArchive {
    /// Why a file cannot be read: the file (and entry) and what is wrong.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// What is wrong, naming the file (and entry).
        public var message: String
        /// A failure with `message`.
        public init(_ message: String) { self.message = message }
        /// The message.
        public var description: String { message }
    }

    /// The array in `.npy` bytes; `name` is used in messages. float64 becomes fp32, int64 int32 (values must fit).
    public static func array(npy bytes: [UInt8], name: String) throws(Failure) -> EvalTensor {
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw Failure("\(name): not a .npy file (no \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLength: Int, start: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            start = 10
        } else if major == 2 || major == 3 {
            guard bytes.count >= 12 else { throw Failure("\(name): truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            start = 12
        } else {
            throw Failure("\(name): .npy version \(major) is not one mlpkg reads (1, 2 or 3)")
        }
        guard bytes.count >= start + headerLength else { throw Failure("\(name): truncated .npy header") }
        let header = String(decoding: bytes[start..<(start + headerLength)], as: UTF8.self)
        guard let descr = field(header, "descr").map({ $0.trimmingCharacters(in: CharacterSet(charactersIn: "'\" ")) }) else {
            throw Failure("\(name): the .npy header has no descr")
        }
        if let fortran = field(header, "fortran_order"), fortran.trimmingCharacters(in: .whitespaces) == "True" {
            throw Failure("\(name): a Fortran-ordered array; save it C-ordered (np.ascontiguousarray)")
        }
        guard let shapeText = field(header, "shape") else { throw Failure("\(name): the .npy header has no shape") }
        var shape: [Int] = []
        for part in shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() ")).split(separator: ",") {
            let p = part.trimmingCharacters(in: .whitespaces)
            if p.isEmpty { continue }
            guard let d = Int(p.hasSuffix("L") ? String(p.dropLast()) : p), d >= 0 else { throw Failure("\(name): shape \(shapeText)") }
            shape.append(d)
        }
        let count = shape.reduce(1, *)
        let data = Array(bytes[(start + headerLength)...])
        let big = descr.hasPrefix(">")
        let code = descr.dropFirst(descr.first.map { "<>|=".contains($0) } == true ? 1 : 0)
        func need(_ size: Int) throws(Failure) {
            guard data.count >= count * size else { throw Failure("\(name): \(data.count) bytes of data for \(count) elements of \(descr)") }
            guard !big || size == 1 else { throw Failure("\(name): big-endian \(descr) arrays are not read; save little-endian") }
        }
        func load<T>(_ type: T.Type, _ i: Int) -> T { data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self) } }
        switch code {
        case "f4": try need(4); return EvalTensor(floats: (0..<count).map { load(Float.self, $0) }, shape: shape)
        case "f8": try need(8); return EvalTensor(floats: (0..<count).map { Float(load(Double.self, $0)) }, shape: shape)
        case "f2":
            try need(2)
            var v = [Float](repeating: 0, count: count)
            for i in 0..<count { v[i] = halfToFloat(load(UInt16.self, i)) }
            return EvalTensor(floats: v, shape: shape, dtype: .fp16)
        case "i4": try need(4); return EvalTensor(ints: (0..<count).map { load(Int32.self, $0) }, shape: shape)
        case "i8":
            try need(8)
            var v = [Int32](repeating: 0, count: count)
            for i in 0..<count {
                let x = load(Int64.self, i)
                guard let y = Int32(exactly: x) else { throw Failure("\(name): element \(i) (\(x)) does not fit int32") }
                v[i] = y
            }
            return EvalTensor(ints: v, shape: shape)
        case "i2": try need(2); return EvalTensor(ints: (0..<count).map { Int32(load(Int16.self, $0)) }, shape: shape, dtype: .int16)
        case "u2": try need(2); return EvalTensor(ints: (0..<count).map { Int32(load(UInt16.self, $0)) }, shape: shape, dtype: .uint16)
        case "i1": try need(1); return EvalTensor(ints: (0..<count).map { Int32(Int8(bitPattern: data[$0])) }, shape: shape, dtype: .int8)
        case "u1": try need(1); return EvalTensor(ints: (0..<count).map { Int32(data[$0]) }, shape: shape, dtype: .uint8)
        case "b1": try need(1); return EvalTensor(ints: (0..<count).map { data[$0] != 0 ? 1 : 0 }, shape: shape, dtype: .bool)
        default: throw Failure("\(name): element type \(descr) is not one mlpkg reads (float16/32/64, int8/16/32/64, uint8/16, bool)")
        }
    }

    static func halfToFloat(_ h: UInt16) -> Float {
        let sign: Float = h & 0x8000 != 0 ? -1 : 1
        let exp = Int((h >> 10) & 0x1F), mant = Float(h & 0x3FF)
        if exp == 0 { return sign * mant * powf(2, -24) }
        if exp == 31 { return mant == 0 ? sign * .infinity : .nan }
        return sign * (1 + mant / 1024) * powf(2, Float(exp - 15))
    }

    /// The text after `'key':` up to the next top-level comma (a tuple's commas are inside parentheses).
    static func field(_ header: String, _ key: String) -> String? {
        guard let r = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        var rest = header[r.upperBound...].drop { $0 == " " || $0 == ":" }
        var depth = 0
        var out = ""
        while let c = rest.first {
            if c == "(" { depth += 1 }
            if c == ")" { depth -= 1; if depth == 0 { out.append(c); break } }
            if (c == "," || c == "}") && depth == 0 { break }
            out.append(c)
            rest = rest.dropFirst()
        }
        return out
    }

    /// `.npy` bytes of `t` in its element type (fp16 as float16, fp32 as float32, int types as themselves, bool).
    public static func npy(_ t: EvalTensor) -> [UInt8] {
        let descr: String
        var body: [UInt8] = []
        switch t.dtype {
        case .fp16:
            descr = "<f2"
            for v in t.floats { withUnsafeBytes(of: Rounding.halfBits(v).littleEndian) { body.append(contentsOf: $0) } }
        case .fp32:
            descr = "<f4"
            t.withFloats { p in body = Array(UnsafeRawBufferPointer(p)) }
        case .bool: descr = "|b1"; body = t.ints.map { $0 != 0 ? 1 : 0 }
        case .int8: descr = "|i1"; body = t.ints.map { UInt8(bitPattern: Int8(truncatingIfNeeded: $0)) }
        case .uint8: descr = "|u1"; body = t.ints.map { UInt8(truncatingIfNeeded: $0) }
        case .int16, .uint16:
            descr = t.dtype == .int16 ? "<i2" : "<u2"
            for v in t.ints { withUnsafeBytes(of: UInt16(truncatingIfNeeded: v).littleEndian) { body.append(contentsOf: $0) } }
        default:
            descr = "<i4"
            for v in t.ints { withUnsafeBytes(of: v.littleEndian) { body.append(contentsOf: $0) } }
        }
        let shape = t.shape.isEmpty ? "()" : t.shape.count == 1 ? "(\(t.shape[0]),)" : "(" + t.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        // Magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64, ending in a newline.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let n = header.utf8.count
        out += [UInt8(n & 0xFF), UInt8(n >> 8)]
        out += Array(header.utf8)
        return out + body
    }

    // MARK: npz

    /// The arrays of an `.npz` archive, in archive order, by name (`x.npy` is named `x`).
    public static func arrays(npz bytes: [UInt8], name: String) throws(Failure) -> [(name: String, value: EvalTensor)] {
        func u16(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        func u64(_ o: Int) -> Int { u32(o) | u32(o + 4) << 32 }
        // The end of central directory record: the last PK\5\6 within the final 64 KiB + 22 bytes.
        var eocd = -1
        var i = bytes.count - 22
        while i >= max(0, bytes.count - 65_557) {
            if bytes[i] == 0x50, bytes[i + 1] == 0x4B, bytes[i + 2] == 5, bytes[i + 3] == 6 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw Failure("\(name): not a zip archive (.npz): no end of central directory") }
        var entries = u16(eocd + 10)
        var directory = u32(eocd + 16)
        if (entries == 0xFFFF || directory == 0xFFFF_FFFF), eocd >= 20,
           bytes[eocd - 20] == 0x50, bytes[eocd - 19] == 0x4B, bytes[eocd - 18] == 6, bytes[eocd - 17] == 7 {
            let record = u64(eocd - 12)
            guard record + 56 <= bytes.count else { throw Failure("\(name): a damaged zip64 directory") }
            entries = u64(record + 32)
            directory = u64(record + 48)
        }
        var out: [(String, EvalTensor)] = []
        var p = directory
        for _ in 0..<entries {
            guard p + 46 <= bytes.count, u32(p) == 0x0201_4B50 else { throw Failure("\(name): a damaged zip central directory") }
            let method = u16(p + 10)
            var compressed = u32(p + 20), size = u32(p + 24)
            let nameLength = u16(p + 28), extraLength = u16(p + 30), commentLength = u16(p + 32)
            var local = u32(p + 42)
            guard p + 46 + nameLength + extraLength <= bytes.count else { throw Failure("\(name): a damaged zip central directory") }
            let entry = String(decoding: bytes[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            // zip64 extra field (id 1): the 0xFFFFFFFF fields in order size, compressed size, local offset.
            var e = p + 46 + nameLength
            let end = e + extraLength
            while e + 4 <= end {
                let id = u16(e), length = u16(e + 2)
                if id == 1 {
                    var q = e + 4
                    if size == 0xFFFF_FFFF { size = u64(q); q += 8 }
                    if compressed == 0xFFFF_FFFF { compressed = u64(q); q += 8 }
                    if local == 0xFFFF_FFFF { local = u64(q) }
                }
                e += 4 + length
            }
            guard method == 0 else {
                throw Failure("\(name): entry \(entry) is compressed (method \(method)); mlpkg reads stored entries: write it with np.savez, not np.savez_compressed")
            }
            guard local + 30 <= bytes.count, u32(local) == 0x0403_4B50 else { throw Failure("\(name): entry \(entry) has no local header") }
            let dataStart = local + 30 + u16(local + 26) + u16(local + 28)
            guard dataStart + compressed <= bytes.count, compressed == size else { throw Failure("\(name): entry \(entry) is truncated") }
            let key = entry.hasSuffix(".npy") ? String(entry.dropLast(4)) : entry
            out.append((key, try array(npy: Array(bytes[dataStart..<(dataStart + size)]), name: "\(name): \(entry)")))
            p = end + commentLength
        }
        return out
    }

    /// An `.npz` archive (stored entries, fixed timestamps: the same arrays give the same bytes) of `arrays`.
    public static func npz(_ arrays: [(name: String, value: EvalTensor)]) -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        func le16(_ v: Int, _ a: inout [UInt8]) { a += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
        func le32(_ v: Int, _ a: inout [UInt8]) { le16(v & 0xFFFF, &a); le16((v >> 16) & 0xFFFF, &a) }
        for (key, t) in arrays {
            let data = npy(t)
            let name = Array((key + ".npy").utf8)
            let crc = crc32(data)
            let offset = out.count
            // Local header: version 2.0, no flags, stored, time 0 / date 1980-01-01.
            le32(0x0403_4B50, &out); le16(20, &out); le16(0, &out); le16(0, &out); le16(0, &out); le16(0x21, &out)
            le32(Int(crc), &out); le32(data.count, &out); le32(data.count, &out); le16(name.count, &out); le16(0, &out)
            out += name
            out += data
            le32(0x0201_4B50, &central); le16(20, &central); le16(20, &central); le16(0, &central); le16(0, &central)
            le16(0, &central); le16(0x21, &central); le32(Int(crc), &central); le32(data.count, &central); le32(data.count, &central)
            le16(name.count, &central); le16(0, &central); le16(0, &central); le16(0, &central); le16(0, &central)
            le32(0, &central); le32(offset, &central)
            central += name
        }
        let directory = out.count
        out += central
        le32(0x0605_4B50, &out); le16(0, &out); le16(0, &out); le16(arrays.count, &out); le16(arrays.count, &out)
        le32(central.count, &out); le32(directory, &out); le16(0, &out)
        return out
    }

    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// zip's CRC-32 (the IEEE 802.3 polynomial, reflected).
    static func crc32(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in data { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
