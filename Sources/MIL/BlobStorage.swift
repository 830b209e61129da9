import GraphIR
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SafeOutput

/// Core ML's weight.bin: MIL blob storage, version 2 (coremltools' mlmodel/src/MILBlob/Blob/StorageFormat.hpp).
///
/// A 64-byte header (uint32 blob count, uint32 version = 2, reserved zeros), then for each blob a 64-byte
/// metadata record at a 64-byte aligned offset (uint32 sentinel 0xDEADBEEF, uint32 data type, uint64 size in
/// bytes, uint64 offset of the data, uint64 padding bits of a sub-byte blob's last byte, reserved zeros) followed
/// by the data, also 64-byte aligned. A const refers to a blob by the offset of its metadata record.
/// Blobs are laid out as they are added; a blob identical to one already added (same type, element count and
/// bytes) is not added again: its offset is shared. The file is written at the end, streaming views of the
/// package's weights.
public final class BlobStorage {
    /// Bytes every metadata record and blob is aligned to, and the size of the file header.
    public static let alignment = 64
    static let sentinel: UInt32 = 0xDEAD_BEEF

    struct Blob {
        var type: MILDataType
        var data: ByteView
        var elements: Int
        var metadataOffset: Int
    }

    private(set) var blobs: [Blob] = []
    /// Blobs by a cheap key (type, size, sampled bytes); equal keys are compared in full.
    private var byKey: [ContentKey: [Int]] = [:]
    /// How many adds found an identical blob already stored.
    public private(set) var sharedCount = 0

    struct ContentKey: Hashable {
        var type: MILDataType
        var elements: Int
        var count: Int
        var sample: Int
    }

    /// A hash of up to 512 bytes from the start, middle and end: enough to tell weights apart without reading all.
    static func sample(_ data: ByteView) -> Int {
        var h = Hasher()
        let n = data.count
        for range in [0..<min(n, 192), max(0, n / 2 - 64)..<min(n, n / 2 + 64), max(0, n - 192)..<n] {
            h.combine(bytes: UnsafeRawBufferPointer(rebasing: data.bytes[range]))
        }
        return h.finalize()
    }
    /// The size of the file so far (header included).
    public private(set) var size = alignment

    /// An empty storage: the header alone.
    public init() {}

    private static func aligned(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    /// Adds a blob of `elements` values of `type` whose packed little-endian bytes are `data`; returns the offset a
    /// `BlobFileValue` names.
    public func add(_ type: MILDataType, _ data: ByteView, elements: Int) -> Int {
        let key = ContentKey(type: type, elements: elements, count: data.count, sample: Self.sample(data))
        for i in byKey[key] ?? [] where blobs[i].data.count == data.count
            && (data.count == 0 || memcmp(blobs[i].data.bytes.baseAddress!, data.bytes.baseAddress!, data.count) == 0) {
            sharedCount += 1
            return blobs[i].metadataOffset
        }
        byKey[key, default: []].append(blobs.count)
        let offset = Self.aligned(size)
        blobs.append(Blob(type: type, data: data, elements: elements, metadataOffset: offset))
        size = offset + Self.alignment + data.count
        return offset
    }

    /// Writes the file. Data are written straight from their views (mapped package pages released behind).
    public func write(to file: OutputFile) throws(OutputError) {
        var header = [UInt8](repeating: 0, count: Self.alignment)
        Self.put(UInt32(blobs.count), at: 0, in: &header)
        Self.put(UInt32(2), at: 4, in: &header)
        try file.write(header)
        for blob in blobs {
            try file.writeZeros(blob.metadataOffset - file.written)
            var meta = [UInt8](repeating: 0, count: Self.alignment)
            Self.put(Self.sentinel, at: 0, in: &meta)
            Self.put(blob.type.blobType ?? 0, at: 4, in: &meta)
            Self.put(UInt64(blob.data.count), at: 8, in: &meta)
            Self.put(UInt64(blob.metadataOffset + Self.alignment), at: 16, in: &meta)
            let padding = blob.data.count * 8 - blob.elements * blob.type.bitWidth
            Self.put(UInt64(max(0, padding)), at: 24, in: &meta)
            try file.write(meta)
            try file.write(blob.data.bytes)
            blob.data.releaseMappedPages()
        }
    }

    private static func put<T: FixedWidthInteger>(_ value: T, at offset: Int, in bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (i, b) in raw.enumerated() { bytes[offset + i] = b }
        }
    }
}
