import CSystem
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure to write output. `description` is one line naming the path.
public struct OutputError: Error, CustomStringConvertible, Equatable {
    /// The output at fault, as the user named it.
    public var path: String
    /// What went wrong, without the path.
    public var message: String

    /// A failure writing `path`.
    public init(path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    /// "PATH: MESSAGE", one line.
    public var description: String { "\(path): \(message)" }
}

/// Writes a directory atomically: files go into a hidden temporary sibling, which is renamed over the target only
/// when complete (exchanged with an existing target, then the old one removed). On any failure the temporary is
/// removed and the target is untouched; a process killed mid-write leaves only the hidden temporary, which the next
/// write to the same target removes.
public struct AtomicDirectory {
    /// The directory the output replaces or creates once committed.
    public let target: String
    /// The hidden sibling directory being written (`.NAME.partial-NS-PID`).
    public let temporary: String
    /// The temporary's slot in the table the signal handlers clean up.
    private let slot: Int32

    /// Checks the target can be written and creates the temporary directory.
    /// `replaceable` says whether an existing directory at the target may be replaced.
    public init(target: String, replaceable: (String) -> Bool) throws(OutputError) {
        self.target = target
        var info = stat()
        if lstat(target, &info) == 0 {
            if (info.st_mode & S_IFMT) == S_IFLNK {
                throw OutputError(path: target, "is a symbolic link; refusing to write through it")
            }
            guard (info.st_mode & S_IFMT) == S_IFDIR, replaceable(target) else {
                throw OutputError(path: target, "exists and is not an mlpkg package; refusing to replace it")
            }
        }
        let parent = URL(fileURLWithPath: target).deletingLastPathComponent().path
        var parentInfo = stat()
        guard stat(parent, &parentInfo) == 0, (parentInfo.st_mode & S_IFMT) == S_IFDIR else {
            throw OutputError(path: target, "the folder \(parent) does not exist")
        }
        (temporary, slot) = Temporaries.claim(beside: target)
        guard mkdir(temporary, 0o755) == 0 else {
            Temporaries.unregister(slot)
            throw OutputError(path: target, "cannot create a temporary folder beside it: \(String(cString: strerror(errno)))")
        }
    }

    /// The path of `file` inside the temporary directory.
    public func path(_ file: String) -> String { temporary + "/" + file }

    /// Creates `name` in the temporary directory; its errors name it as `TARGET/name`.
    public func file(_ name: String) throws(OutputError) -> OutputFile {
        try OutputFile(path: path(name), reportedAs: target + "/" + name)
    }

    /// Moves the finished temporary into place.
    public func commit() throws(OutputError) {
        defer { Temporaries.unregister(slot) }
        if mlpkg_rename_noreplace(temporary, target) != 0 {
            let code = errno
            if code == EEXIST || code == ENOTEMPTY {
                try replaceExisting()
            } else if code == ENOSYS || code == EINVAL {
                try replaceExisting()
            } else {
                abandon()
                throw OutputError(path: target, "cannot move the package into place: \(String(cString: strerror(code)))")
            }
        }
    }

    private func replaceExisting() throws(OutputError) {
        if mlpkg_rename_exchange(temporary, target) == 0 {
            // The old package now sits at the temporary path.
            try? FileManager.default.removeItem(atPath: temporary)
            return
        }
        var info = stat()
        if lstat(target, &info) != 0 {
            // No target after all (or no exchange support and no target): a plain rename.
            if rename(temporary, target) == 0 { return }
        } else {
            // No atomic exchange on this file system: move the old one aside, then the new one in.
            let aside = temporary + ".old"
            if rename(target, aside) == 0 {
                if rename(temporary, target) == 0 {
                    try? FileManager.default.removeItem(atPath: aside)
                    return
                }
                _ = rename(aside, target)
            }
        }
        let reason = String(cString: strerror(errno))
        abandon()
        throw OutputError(path: target, "cannot move the package into place: \(reason)")
    }

    /// Removes the temporary directory and everything in it.
    public func abandon() {
        try? FileManager.default.removeItem(atPath: temporary)
        Temporaries.unregister(slot)
    }
}

/// A file written sequentially through a buffer; every failure (a full disk included) is thrown.
public final class OutputFile {
    /// The file being written (for an atomic output, its temporary).
    public let path: String
    /// The path errors name: the file's place in the output the user asked for, not the temporary being written.
    public let reportedPath: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private static let bufferSize = 1 << 20
    /// Bytes written so far, buffered ones included.
    public private(set) var written = 0

    /// Creates the file, which must not exist yet; `reported` is the path errors name (default: `path`).
    public init(path: String, reportedAs reported: String? = nil) throws(OutputError) {
        self.path = path
        reportedPath = reported ?? path
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw OutputError(path: reportedPath, "cannot create: \(String(cString: strerror(errno)))") }
        buffer.reserveCapacity(Self.bufferSize)
    }

    deinit { close(fd) }

    /// Appends `bytes` (written directly when they are at least the 1 MiB buffer's size); throws on any write failure.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(OutputError) {
        if bytes.count >= Self.bufferSize {
            try flush()
            try writeAll(bytes)
        } else {
            if buffer.count + bytes.count > Self.bufferSize { try flush() }
            buffer.append(contentsOf: bytes)
        }
        written += bytes.count
    }

    /// Appends `bytes`.
    public func write(_ bytes: [UInt8]) throws(OutputError) {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(OutputError) in try write(raw) } }
        try result.get()
    }

    /// Appends `count` zero bytes (nothing when `count` is 0 or less).
    public func writeZeros(_ count: Int) throws(OutputError) {
        guard count > 0 else { return }
        try write([UInt8](repeating: 0, count: count))
    }

    /// Writes out what is buffered.
    public func flush() throws(OutputError) {
        guard !buffer.isEmpty else { return }
        let pending = buffer
        buffer.removeAll(keepingCapacity: true)
        let result = pending.withUnsafeBytes { raw in Result { () throws(OutputError) in try writeAll(raw) } }
        try result.get()
    }

    /// Writes out what is buffered. There is no fsync: like cp and compilers, mlpkg leaves durability against power
    /// loss to the file system (an fsync of a 1 GB package costs seconds); the rename into place already makes the
    /// output all-or-nothing for every other failure, a killed process included.
    public func finish() throws(OutputError) {
        try flush()
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws(OutputError) {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw OutputError(path: reportedPath, "write failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }
}
