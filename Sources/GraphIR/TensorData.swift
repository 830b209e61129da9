import Foundation
/// A read-only view of bytes whose memory is kept alive by `owner`: a parsed protobuf message, a memory-mapped
/// external-data file, or a buffer mlpkg allocated. Copying the view never copies the bytes.
public struct ByteView: @unchecked Sendable {
    /// The viewed bytes; valid as long as the view exists.
    public let bytes: UnsafeRawBufferPointer
    /// Keeps `bytes` valid; never read.
    private let owner: AnyObject?

    /// A view of `bytes`, kept valid by `owner` (nil when something else keeps them valid).
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

    /// A view of no bytes.
    public static let empty = ByteView(copying: [])

    /// The number of bytes viewed.
    public var count: Int { bytes.count }

    /// A view of `range` (byte offsets in this view) sharing this view's owner.
    public func slice(_ range: Range<Int>) -> ByteView {
        ByteView(bytes: UnsafeRawBufferPointer(rebasing: bytes[range]), owner: owner)
    }

    /// A copy of the bytes in an array.
    public var array: [UInt8] { Array(bytes) }

    /// For a view of a memory-mapped file: lets the kernel drop its pages from this process (see
    /// `MappedFile.release`). Views of owned memory are left alone.
    public func releaseMappedPages() {
        (owner as? MappedFile)?.release(bytes)
    }
}

/// Heap memory allocated by mlpkg (16-byte aligned), freed when the last view of it goes away.
public final class OwnedBuffer: @unchecked Sendable {
    /// The usable memory: exactly the count asked for.
    public let mutableBytes: UnsafeMutableRawBufferPointer

    /// The memory allocated, which may be larger than `mutableBytes` (a reused buffer).
    private let allocation: UnsafeMutableRawBufferPointer

    /// Zero-filled memory.
    public convenience init(count: Int) {
        self.init(uninitializedCount: count)
        mutableBytes.initializeMemory(as: UInt8.self, repeating: 0)
    }

    /// Memory the caller fills completely before anyone reads it (skips zeroing large outputs).
    public init(uninitializedCount count: Int) {
        allocation = BufferPool.shared.take(max(count, 0))
        mutableBytes = UnsafeMutableRawBufferPointer(rebasing: allocation[0..<max(count, 0)])
    }

    deinit { BufferPool.shared.give(allocation) }

    /// A read-only view of the buffer that keeps it alive.
    public var view: ByteView { ByteView(bytes: UnsafeRawBufferPointer(mutableBytes), owner: self) }
}

/// The elements of a tensor: packed little-endian bytes in ONNX `raw_data` layout (sub-byte types packed LSB-first),
/// or, for string tensors, one byte string per element.
public enum TensorData: Sendable {
    /// Packed bytes of every type but strings.
    case bytes(ByteView)
    /// One byte string per element of a string tensor.
    case strings([[UInt8]])

    /// Bytes stored: the packed size, or the summed lengths of the strings.
    public var byteCount: Int {
        switch self {
        case .bytes(let view): return view.count
        case .strings(let strings): return strings.reduce(0) { $0 + $1.count }
        }
    }
}

/// Large buffers kept for reuse. A conversion allocates one output buffer per tensor, often of the same size; a fresh
/// allocation of that size is new pages from the kernel, each faulted in and zeroed (for a 4 GiB model, half a
/// million faults), while a reused one is already resident. The pool keeps a few buffers of at least 1 MiB, at most
/// `capacity` bytes in all, and hands one out only for a request it fits without wasting more than a quarter.
final class BufferPool: @unchecked Sendable {
    static let shared = BufferPool()
    static let minimumBytes = 1 << 20
    private let capacity = 256 << 20
    private let lock = NSLock()
    private var free: [UnsafeMutableRawBufferPointer] = []
    private var held = 0

    func take(_ count: Int) -> UnsafeMutableRawBufferPointer {
        if count >= Self.minimumBytes {
            lock.lock()
            let found = free.indices.filter { free[$0].count >= count && free[$0].count - count <= count / 4 }
                .min { free[$0].count < free[$1].count }
            if let found {
                let buffer = free.remove(at: found)
                held -= buffer.count
                lock.unlock()
                return buffer
            }
            lock.unlock()
        }
        return .allocate(byteCount: count, alignment: 16)
    }

    func give(_ whole: UnsafeMutableRawBufferPointer) {
        if whole.count >= Self.minimumBytes {
            lock.lock()
            if held + whole.count <= capacity {
                free.append(whole)
                held += whole.count
                lock.unlock()
                return
            }
            lock.unlock()
        }
        whole.deallocate()
    }
}
