import Foundation
import GraphIR
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A package directory opened once: manifest.json, weights.bin and report.json are opened relative to that one
/// directory descriptor, so a reader sees the files of a single version of the package even while `convert`
/// replaces it (the replaced directory stays readable through the descriptor, or its files are gone and the read
/// fails cleanly), never the manifest of one version with the weights of another (issue 16). Files must be regular
/// files inside the package: a symbolic link is refused.
public final class PackageFiles {
    /// The package directory as given.
    public let path: String
    private let fd: Int32
    /// report.json larger than this is refused unread (a sparse 1 GiB file cost 1.6 GB of memory before).
    public static let maxReportBytes = 64 << 20

    /// Opens the package directory; throws when it is missing, not a directory or cannot be opened.
    public init(path: String) throws(PackageError) {
        self.path = path
        let opened = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard opened >= 0 else {
            let code = errno
            if code == ENOENT { throw PackageError(path: path, "no such package") }
            if code == ENOTDIR { throw PackageError(path: path, "not a package directory") }
            throw PackageError(path: path, "cannot be opened: \(String(cString: strerror(code)))")
        }
        fd = opened
    }

    deinit { close(fd) }

    /// The mapped bytes of a file of the package.
    public func map(_ name: String) throws(PackageError) -> MappedFile {
        do {
            return try MappedFile(directory: fd, name: name, followLinks: false)
        } catch {
            throw PackageError(path: path, "\(name) \(error.reason)")
        }
    }

    /// report.json, or nil when it is missing; an oversized or unreadable one is an error.
    public func report() throws(PackageError) -> Data? {
        let file: MappedFile
        do {
            file = try MappedFile(directory: fd, name: Manifest.reportFileName, followLinks: false)
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
