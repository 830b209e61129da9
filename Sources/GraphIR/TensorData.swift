/// A read-only view of bytes whose memory is kept alive by `owner`: a parsed protobuf message, a memory-mapped
/// external-data file, or a buffer mlpkg allocated. Copying the view never copies the bytes.
public struct ByteView: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer
    /// Keeps `bytes` valid; never read.
    private let owner: AnyObject?

    public init(bytes: UnsafeRawBufferPointer, owner: AnyObject?) {
        self.bytes = bytes
        self.owner = owner
    }

    /// Copies `array` into a buffer the view owns.
    public init(copying array: [UInt8]) {
        let buffer = OwnedBuffer(count: array.count)
        array.withUnsafeBytes { buffer.mutableBytes.copyMemory(from: $0) }
        self.init(bytes: UnsafeRawBufferPointer(buffer.mutableBytes), owner: buffer)
    }

    public static let empty = ByteView(copying: [])

    public var count: Int { bytes.count }

    public func slice(_ range: Range<Int>) -> ByteView {
        ByteView(bytes: UnsafeRawBufferPointer(rebasing: bytes[range]), owner: owner)
    }

    public var array: [UInt8] { Array(bytes) }

    /// For a view of a memory-mapped file: lets the kernel drop its pages from this process (see
    /// `MappedFile.release`). Views of owned memory are left alone.
    public func releaseMappedPages() {
        (owner as? MappedFile)?.release(bytes)
    }

    /// For a view of a memory-mapped file: maps its pages in one call ahead of reading them (see
    /// `MappedFile.populate`).
    public func populateMappedPages() {
        (owner as? MappedFile)?.populate(bytes)
    }
}

/// Heap memory allocated by mlpkg (16-byte aligned), freed when the last view of it goes away.
public final class OwnedBuffer: @unchecked Sendable {
    public let mutableBytes: UnsafeMutableRawBufferPointer

    /// Zero-filled memory.
    public init(count: Int) {
        mutableBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 0), alignment: 16)
        mutableBytes.initializeMemory(as: UInt8.self, repeating: 0)
    }

    /// Memory the caller fills completely before anyone reads it (skips zeroing large outputs).
    public init(uninitializedCount count: Int) {
        mutableBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 0), alignment: 16)
    }

    deinit { mutableBytes.deallocate() }

    public var view: ByteView { ByteView(bytes: UnsafeRawBufferPointer(mutableBytes), owner: self) }
}

/// The elements of a tensor: packed little-endian bytes in ONNX `raw_data` layout (sub-byte types packed LSB-first),
/// or, for string tensors, one byte string per element.
public enum TensorData: Sendable {
    case bytes(ByteView)
    case strings([[UInt8]])

    public var byteCount: Int {
        switch self {
        case .bytes(let view): return view.count
        case .strings(let strings): return strings.reduce(0) { $0 + $1.count }
        }
    }
}
