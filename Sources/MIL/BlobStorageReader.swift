import GraphIR

/// Reads and checks a weight.bin (MIL blob storage, version 2; the layout `BlobStorage` writes and coremltools'
/// `StorageFormat.hpp` describes): the 64-byte header, then each blob's 64-byte metadata record (sentinel
/// 0xDEADBEEF, data type, size, data offset) followed by its data. The records are walked in file order as every
/// writer lays them out (each next record at the first 64-byte boundary after the previous data), so every blob is
/// checked, referenced or not; a const's `BlobFileValue` then names a record by its offset (`blob(at:)`).
public struct BlobStorageReader: Sendable {
    /// One blob's metadata record, as found.
    public struct Record: Sendable {
        /// Offset of the metadata record (what a const refers to).
        public var offset: Int
        /// MILBlob's `BlobDataType` number.
        public var dataType: UInt32
        /// Bytes of data.
        public var size: Int
        /// Offset of the data.
        public var dataOffset: Int

        /// The MIL element type of `dataType`, nil for a number mlpkg does not know.
        public var milType: MILDataType? { BlobStorageReader.milType(dataType) }
        /// The type's name (`fp16`, `uint4`…; `bf16` and `type N` for types mlpkg has no MIL type for).
        public var typeName: String { dataType == 5 ? "bf16" : milType?.description ?? "type \(dataType)" }
    }

    /// The file size in bytes.
    public let size: Int
    /// The header's blob count (nil when the file has no complete header).
    public let declaredCount: Int?
    /// The header's version (2 for the format mlpkg and Core ML read).
    public let version: Int?
    /// The records found, in file order.
    public let records: [Record]
    /// What is wrong with the file: header, records, offsets and sizes, in file order.
    public let faults: [String]
    private let data: ByteView
    private let byOffset: [Int: Int]

    /// Walks `data` (a whole weight.bin).
    public init(_ data: ByteView) {
        self.data = data
        size = data.count
        var faults: [String] = []
        var records: [Record] = []
        let alignment = BlobStorage.alignment
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: data.bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: data.bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        guard size >= alignment else {
            declaredCount = nil
            version = nil
            self.records = []
            self.faults = ["weight.bin has \(size) bytes, less than its 64-byte header"]
            byOffset = [:]
            return
        }
        let count = Int(u32(0))
        declaredCount = count
        version = Int(u32(4))
        if version != 2 { faults.append("weight.bin's header says version \(version!); Core ML reads version 2") }
        var offset = alignment
        for i in 0..<count {
            guard offset + alignment <= size else {
                faults.append("weight.bin's header says \(count) blobs; the file ends after \(i) (\(size) bytes)")
                break
            }
            let sentinel = u32(offset)
            guard sentinel == BlobStorage.sentinel else {
                faults.append("blob \(i): no metadata record at offset \(offset) (sentinel 0x\(String(sentinel, radix: 16, uppercase: true)), not 0xDEADBEEF)")
                break
            }
            let type = u32(offset + 4)
            let length = u64(offset + 8)
            let start = u64(offset + 16)
            let record = Record(offset: offset, dataType: type, size: Int(clamping: length), dataOffset: Int(clamping: start))
            if type == 0 { faults.append("blob \(i) at offset \(offset): data type 0 (none)") }
            guard start >= UInt64(offset + alignment), start % UInt64(alignment) == 0 else {
                faults.append("blob \(i) at offset \(offset): its data offset \(start) is not the 64-byte aligned position after its record")
                break
            }
            guard length <= UInt64(size), start <= UInt64(size) - length else {
                faults.append("blob \(i) at offset \(offset): \(length) bytes of data at offset \(start) run past the end of weight.bin (\(size) bytes)")
                break
            }
            records.append(record)
            offset = (record.dataOffset + record.size + alignment - 1) / alignment * alignment
        }
        if records.count == count, offset < size {
            // Bytes past the last blob: another record the count leaves out, or trailing garbage.
            let sentinel = offset + 4 <= size ? u32(offset) : 0
            faults.append(sentinel == BlobStorage.sentinel
                          ? "weight.bin's header says \(count) blobs; another record follows at offset \(offset)"
                          : "weight.bin has \(size - offset) bytes after its last blob (offset \(offset))")
        }
        self.records = records
        self.faults = faults
        byOffset = Dictionary(records.enumerated().map { ($1.offset, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// The record at `offset`, nil when none starts there.
    public func record(at offset: Int) -> Record? { byOffset[offset].map { records[$0] } }

    /// The data of the record at `offset` (a view of the file), nil when none starts there.
    public func blob(at offset: Int) -> ByteView? {
        guard let r = record(at: offset) else { return nil }
        return data.slice(r.dataOffset..<(r.dataOffset + r.size))
    }

    /// Why a const of `type` cannot read the blob at `offset`, nil when it can: a record must start there, with the
    /// blob type of `type`'s element type and as many bytes as its elements take.
    public func problem(reading type: MILTensorType, at offset: Int) -> String? {
        guard let r = record(at: offset) else {
            return "offset \(offset) is no blob's metadata record in weight.bin (\(records.count) blobs)"
        }
        if let want = type.dtype.blobType, want != r.dataType {
            return "the blob at offset \(offset) holds \(r.typeName); the value is \(type)"
        }
        let bytes = (type.count * type.dtype.bitWidth + 7) / 8
        if r.size != bytes {
            return "the blob at offset \(offset) holds \(r.size) bytes; \(type) takes \(bytes)"
        }
        return nil
    }

    /// The MIL type of a blob data type number (`MILDataType.blobType`'s inverse).
    static func milType(_ dataType: UInt32) -> MILDataType? {
        let all: [MILDataType] = [.fp16, .fp32, .uint8, .int8, .int16, .uint16, .int4, .uint1, .uint2, .uint4, .uint3, .uint6, .int32]
        return all.first { $0.blobType == dataType }
    }
}
