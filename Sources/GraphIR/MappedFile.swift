#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory; unmapped when the last tensor viewing it goes away.
public final class MappedFile: @unchecked Sendable {
    /// The file's contents; empty (no base address) for an empty file.
    public let bytes: UnsafeRawBufferPointer
    private let mapping: UnsafeMutableRawPointer?

    /// Why a file could not be mapped; `reason` words it for messages.
    public enum Failure: Error, Sendable {
        /// The file could not be opened or examined (`errno` from `openat` or `fstat`).
        case open(errno: Int32)
        /// The path names a device, FIFO, directory or other non-regular file.
        case notRegular
        /// `mmap` failed (`errno` from it).
        case map(errno: Int32)
    }

    /// Maps the regular file at `path`. Refuses devices, FIFOs and directories.
    public convenience init(path: String) throws(Failure) {
        try self.init(directory: AT_FDCWD, name: path, followLinks: true)
    }

    /// Maps the regular file `name` inside the open directory `directory` (a package opened once, so all its files
    /// come from the same version of it). `followLinks: false` refuses a symbolic link (it could point out of the
    /// package).
    public convenience init(directory: Int32, name: String, followLinks: Bool) throws(Failure) {
        let fd = openat(directory, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (followLinks ? 0 : O_NOFOLLOW))
        guard fd >= 0 else { throw .open(errno: errno) }
        defer { close(fd) }
        try self.init(descriptor: fd)
    }

    /// Maps the regular file open as `fd` (which stays open: the caller closes it). A file opened earlier keeps the
    /// contents it had then even if its name was removed since (how a package reader pins one version of a package).
    public init(descriptor fd: Int32) throws(Failure) {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .open(errno: errno) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .notRegular }
        let size = Int(info.st_size)
        if size == 0 {
            mapping = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let address, address != MAP_FAILED else { throw .map(errno: errno) }
        mapping = address
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let mapping { munmap(mapping, bytes.count) }
    }

    /// A view of `range` that keeps this mapping alive.
    public func view(_ range: Range<Int>) -> ByteView {
        ByteView(bytes: UnsafeRawBufferPointer(rebasing: bytes[range]), owner: self)
    }

    /// A view of the whole file that keeps this mapping alive.
    public var view: ByteView { ByteView(bytes: bytes, owner: self) }

    /// Drops the pages holding `range` from this process's memory once their bytes have been used. The mapping stays
    /// valid: a later read loads them from the file again (the page cache usually still has them). This is what keeps
    /// a multi-GB conversion's resident memory to the tensors in flight.
    public func release(_ range: UnsafeRawBufferPointer) {
        guard let pages = pageRange(range) else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: pages.start), pages.count, Int32(MADV_DONTNEED))
    }

    /// `range` widened to whole pages, clipped to the mapping.
    private func pageRange(_ range: UnsafeRawBufferPointer) -> (start: UnsafeRawPointer, count: Int)? {
        guard let base = bytes.baseAddress, let start = range.baseAddress, range.count > 0 else { return nil }
        let page = Self.pageSize
        let lower = max(start - base, 0) / page * page
        let upper = min((start - base) + range.count, bytes.count)
        guard upper > lower else { return nil }
        return (base + lower, upper - lower)
    }

    private static let pageSize = max(Int(sysconf(Int32(_SC_PAGESIZE))), 4096)

    /// The C library's message for the error number `code` (`strerror`).
    public static func describe(errno code: Int32) -> String {
        String(cString: strerror(code))
    }
}

extension MappedFile.Failure {
    /// How errors finish the sentence "FILE ...".
    public var reason: String {
        switch self {
        case .notRegular: return "is not a regular file"
        case .open(let code) where code == ELOOP: return "is a symbolic link; a package's files must be inside it"
        case .open(let code): return "cannot be opened: \(MappedFile.describe(errno: code))"
        case .map(let code): return "cannot be mapped: \(MappedFile.describe(errno: code))"
        }
    }
}
