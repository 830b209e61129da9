import GraphIR
import Testing
@testable import CoreMLPackage
@testable import MIL

@Suite("weight.bin reader")
struct BlobStorageReaderTests {
    /// A weight.bin as mlpkg's writer lays it out.
    static func storage(_ blobs: [(MILDataType, [UInt8], Int)]) -> (bytes: [UInt8], offsets: [Int]) {
        let storage = BlobStorage()
        let offsets = blobs.map { storage.add($0.0, ByteView(copying: $0.1), elements: $0.2) }
        var bytes = [UInt8](repeating: 0, count: 64)
        bytes[0] = UInt8(blobs.count)
        bytes[4] = 2
        for (i, blob) in blobs.enumerated() {
            bytes += [UInt8](repeating: 0, count: offsets[i] - bytes.count)
            var meta = [UInt8](repeating: 0, count: 64)
            func put<T: FixedWidthInteger>(_ v: T, _ at: Int) { withUnsafeBytes(of: v.littleEndian) { for (k, b) in $0.enumerated() { meta[at + k] = b } } }
            put(UInt32(0xDEAD_BEEF), 0)
            put(blob.0.blobType!, 4)
            put(UInt64(blob.1.count), 8)
            put(UInt64(offsets[i] + 64), 16)
            bytes += meta + blob.1
        }
        return (bytes, offsets)
    }

    @Test("a sound file: every record found, values read by offset with their type and size")
    func sound() {
        let (bytes, offsets) = Self.storage([(.fp16, [UInt8](repeating: 1, count: 20), 10), (.uint4, [0x21, 0x43, 0x05], 5)])
        let reader = BlobStorageReader(ByteView(copying: bytes))
        #expect(reader.faults.isEmpty)
        #expect(reader.records.map(\.offset) == offsets)
        #expect(reader.problem(reading: MILTensorType(.fp16, [2, 5]), at: offsets[0]) == nil)
        #expect(reader.problem(reading: MILTensorType(.uint4, [5]), at: offsets[1]) == nil)
        #expect(reader.problem(reading: MILTensorType(.fp32, [5]), at: offsets[0])?.contains("holds fp16") == true)
        #expect(reader.problem(reading: MILTensorType(.fp16, [3]), at: offsets[0])?.contains("holds 20 bytes") == true)
        #expect(reader.problem(reading: MILTensorType(.fp16, [10]), at: 65)?.contains("no blob's metadata record") == true)
        #expect(reader.blob(at: offsets[1])?.array == [0x21, 0x43, 0x05])
    }

    @Test("a broken sentinel, a size past the end, a wrong count and a short file are faults")
    func broken() {
        let (bytes, offsets) = Self.storage([(.fp16, [UInt8](repeating: 1, count: 20), 10), (.int8, [1, 2, 3], 3)])
        var sentinel = bytes
        sentinel[offsets[1]] ^= 0xFF
        #expect(BlobStorageReader(ByteView(copying: sentinel)).faults.first?.contains("blob 1: no metadata record at offset \(offsets[1])") == true)
        var size = bytes
        size[offsets[0] + 8] = 0xFF
        #expect(BlobStorageReader(ByteView(copying: size)).faults.first?.contains("run past the end") == true)
        var count = bytes
        count[0] = 3
        #expect(BlobStorageReader(ByteView(copying: count)).faults.first?.contains("says 3 blobs") == true)
        count[0] = 1
        #expect(BlobStorageReader(ByteView(copying: count)).faults.first?.contains("another record follows") == true)
        #expect(BlobStorageReader(ByteView(copying: Array(bytes.prefix(40)))).faults.first?.contains("less than its 64-byte header") == true)
        var version = bytes
        version[4] = 3
        #expect(BlobStorageReader(ByteView(copying: version)).faults.first?.contains("version 3") == true)
    }
}
