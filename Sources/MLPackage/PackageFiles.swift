import Foundation
import GraphIR
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A package directory opened once, with its files: manifest.json, weights.bin and report.json are opened relative
/// to that one directory descriptor right after it, before anything is read. From then on the reader holds one
/// version of the package whatever `convert` does to the path: a replace exchanges the whole directory and only then
/// removes the old one's files, and an open file keeps its contents after its name is gone (issue 16: manifest of one
/// version, weights of another; issue 28: a file removed between the directory's open and the file's).
///
/// When a file is missing and the path no longer names the directory that was opened, a replace happened between
/// the two opens: everything is opened again from the path (at most `attempts` times; each retry needs another
/// complete replace to land inside a window of a few system calls). Files must be regular files inside the package:
/// a symbolic link is refused.
public final class PackageFiles {
    /// The package directory as given.
    public let path: String
    private let fd: Int32
    /// The package's own files, opened with the directory: a descriptor, or the `errno` of the failed open.
    private let opened: [String: Result<Int32, OpenFailure>]
    /// report.json larger than this is refused unread (a sparse 1 GiB file cost 1.6 GB of memory before).
    public static let maxReportBytes = 64 << 20
    /// How many times the package is opened from its path before a file missing after a replace counts.
    static let attempts = 16
    /// The files opened with the directory.
    static let names = [Manifest.manifestFileName, Manifest.weightsFileName, Manifest.reportFileName]
    /// How many times the directory was opened (1 unless a replace raced the opening).
    public let openings: Int

    struct OpenFailure: Error { var code: Int32 }

    /// Opens the package directory and its files; throws when the directory is missing, not a directory or cannot
    /// be opened. A file that cannot be opened is reported when it is read.
    public init(path: String) throws(PackageError) {
        self.path = path
        var attempt = 1
        while true {
            let directory = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard directory >= 0 else {
                let code = errno
                if code == ENOENT { throw PackageError(path: path, "no such package") }
                if code == ENOTDIR { throw PackageError(path: path, "not a package directory") }
                throw PackageError(path: path, "cannot be opened: \(String(cString: strerror(code)))")
            }
            Self.afterOpeningDirectory.call(path, attempt)
            var files: [String: Result<Int32, OpenFailure>] = [:]
            for name in Self.names {
                let file = openat(directory, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW)
                files[name] = file >= 0 ? .success(file) : .failure(OpenFailure(code: errno))
            }
            let missing = files.values.contains { if case .failure(let f) = $0 { return f.code == ENOENT } else { return false } }
            if missing, attempt < Self.attempts, Self.replaced(directory, path: path) {
                for case .success(let file) in files.values { close(file) }
                close(directory)
                attempt += 1
                continue
            }
            fd = directory
            opened = files
            openings = attempt
            return
        }
    }

    /// Tests only: runs between the directory's open and its files' (with the path and the attempt), where a
    /// concurrent replace is the race this type handles.
    static let afterOpeningDirectory = TestHook()

    final class TestHook: @unchecked Sendable {
        private let lock = NSLock()
        private var body: (@Sendable (String, Int) -> Void)?
        func set(_ newBody: (@Sendable (String, Int) -> Void)?) { lock.withLock { body = newBody } }
        func call(_ path: String, _ attempt: Int) { lock.withLock { body }?(path, attempt) }
    }

    /// Whether `path` now names another directory than the one open as `directory` (or nothing).
    private static func replaced(_ directory: Int32, path: String) -> Bool {
        var open = stat(), named = stat()
        guard fstat(directory, &open) == 0 else { return false }
        guard stat(path, &named) == 0 else { return true }
        return open.st_dev != named.st_dev || open.st_ino != named.st_ino
    }

    deinit {
        for case .success(let file) in opened.values { close(file) }
        close(fd)
    }

    /// The mapped bytes of a file of the package.
    public func map(_ name: String) throws(PackageError) -> MappedFile {
        do {
            return try mapped(name)
        } catch {
            throw PackageError(path: path, "\(name) \(error.reason)")
        }
    }

    private func mapped(_ name: String) throws(MappedFile.Failure) -> MappedFile {
        switch opened[name] {
        case .success(let file): return try MappedFile(descriptor: file)
        case .failure(let failure): throw .open(errno: failure.code)
        case nil: return try MappedFile(directory: fd, name: name, followLinks: false)
        }
    }

    /// report.json, or nil when it is missing; an oversized or unreadable one is an error.
    public func report() throws(PackageError) -> Data? {
        let file: MappedFile
        do {
            file = try mapped(Manifest.reportFileName)
        } catch {
            if case .open(let code) = error, code == ENOENT { return nil }
            throw PackageError(path: path, "\(Manifest.reportFileName) \(error.reason)")
        }
        guard file.bytes.count <= Self.maxReportBytes else {
            throw PackageError(path: path, "\(Manifest.reportFileName) is \(file.bytes.count) bytes, over the \(Self.maxReportBytes)-byte limit")
        }
        return Data(file.bytes)
    }
}
