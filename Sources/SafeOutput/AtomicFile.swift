import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A regular file written atomically: into a hidden temporary sibling (`.NAME.partial-PID`), renamed over the target
/// when complete. The target may be a missing path or an existing regular file; never a directory or a symlink.
public final class AtomicFile {
    public let target: String
    public let file: OutputFile
    private let slot: Int32

    public init(target: String) throws(OutputError) {
        self.target = target
        var info = stat()
        if lstat(target, &info) == 0 {
            if (info.st_mode & S_IFMT) == S_IFLNK {
                throw OutputError(path: target, "is a symbolic link; refusing to write through it")
            }
            guard (info.st_mode & S_IFMT) == S_IFREG else {
                throw OutputError(path: target, "exists and is not a regular file; refusing to replace it")
            }
        }
        let url = URL(fileURLWithPath: target)
        let parent = url.deletingLastPathComponent().path
        var parentInfo = stat()
        guard stat(parent, &parentInfo) == 0, (parentInfo.st_mode & S_IFMT) == S_IFDIR else {
            throw OutputError(path: target, "the folder \(parent) does not exist")
        }
        let prefix = parent + "/." + url.lastPathComponent + ".partial-"
        Temporaries.removeStale(prefix: prefix)
        let temporary = prefix + Temporaries.suffix()
        unlink(temporary)
        slot = Temporaries.register(temporary)
        do {
            file = try OutputFile(path: temporary, reportedAs: target)
        } catch {
            Temporaries.unregister(slot)
            throw error
        }
    }

    /// Syncs the temporary and renames it over the target.
    public func commit() throws(OutputError) {
        defer { Temporaries.unregister(slot) }
        try file.finish()
        guard rename(file.path, target) == 0 else {
            let reason = String(cString: strerror(errno))
            abandon()
            throw OutputError(path: target, "cannot move the file into place: \(reason)")
        }
    }

    /// Syncs the temporary and renames it to `name` in the target's folder instead of the target (for a name that
    /// depends on the content written).
    public func commit(as name: String) throws(OutputError) {
        defer { Temporaries.unregister(slot) }
        try file.finish()
        let destination = URL(fileURLWithPath: target).deletingLastPathComponent().path + "/" + name
        guard rename(file.path, destination) == 0 else {
            let reason = String(cString: strerror(errno))
            abandon()
            throw OutputError(path: destination, "cannot move the file into place: \(reason)")
        }
    }

    public func abandon() {
        unlink(file.path)
        Temporaries.unregister(slot)
    }
}

/// Refusing to write an output inside the input being read (`export -o PKG/weights.bin` overwrote the package it
/// was exporting).
public enum OutputPlacement {
    /// Throws when `output` (or the folder it would be created in) lies inside the directory `input`, or is `input`.
    public static func refuseInside(output: String, input: String) throws(OutputError) {
        guard let inputReal = realpath(input, nil).map({ p -> String in defer { free(p) }; return String(cString: p) }) else { return }
        let url = URL(fileURLWithPath: output)
        let parent = url.deletingLastPathComponent().path
        guard let parentReal = realpath(parent, nil).map({ p -> String in defer { free(p) }; return String(cString: p) }) else { return }
        let resolved = parentReal + "/" + url.lastPathComponent
        if resolved == inputReal || resolved.hasPrefix(inputReal + "/") {
            throw OutputError(path: output, "is inside the input \(input); refusing to write into what is being read")
        }
    }
}
