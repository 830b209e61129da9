import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A regular file written atomically: into a hidden temporary sibling (`.NAME.partial-PID`), renamed over the target
/// when complete. The target may be a missing path or an existing regular file; never a directory or a symlink.
public final class AtomicFile {
    /// The file the output replaces or creates once committed.
    public let target: String
    /// The temporary file being written; write the content here.
    public let file: OutputFile
    private let slot: Int32

    /// `replaceable` says whether an existing regular file at the target may be replaced (the one overwrite rule:
    /// only what the command itself writes, unless `--force`); `kind` names what it should be, for the message.
    public init(target: String, kind: String = "", replaceable: (String) -> Bool = { _ in true }) throws(OutputError) {
        self.target = target
        var info = stat()
        if lstat(target, &info) == 0 {
            if (info.st_mode & S_IFMT) == S_IFLNK {
                throw OutputError(path: target, "is a symbolic link; refusing to write through it")
            }
            guard (info.st_mode & S_IFMT) == S_IFREG else {
                throw OutputError(path: target, "exists and is not a regular file; refusing to replace it")
            }
            guard replaceable(target) else {
                throw OutputError(path: target, "exists and is not \(kind.isEmpty ? "what this command writes" : kind); refusing to replace it (--force replaces it)")
            }
        }
        let parent = URL(fileURLWithPath: target).deletingLastPathComponent().path
        var parentInfo = stat()
        guard stat(parent, &parentInfo) == 0, (parentInfo.st_mode & S_IFMT) == S_IFDIR else {
            throw OutputError(path: target, "the folder \(parent) does not exist")
        }
        let temporary: String
        (temporary, slot) = Temporaries.claim(beside: target)
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

    /// Deletes the temporary; the target is left untouched.
    public func abandon() {
        unlink(file.path)
        Temporaries.unregister(slot)
    }
}

/// Recognising what mlpkg writes, so `-o` replaces only that (docs/CLI.md#scripting).
public enum OutputKind {
    /// The first `count` bytes of a file (fewer if it is shorter).
    static func prefix(_ path: String, _ count: Int) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        return [UInt8]((try? handle.read(upToCount: count)) ?? Data())
    }

    /// An ONNX model: a protobuf ModelProto, which every exporter (and mlpkg) starts with ir_version (field 1,
    /// varint: tag 0x08) and a small version number.
    public static func isONNXModel(_ path: String) -> Bool {
        let head = prefix(path, 2)
        return head.count == 2 && head[0] == 0x08 && head[1] >= 1 && head[1] < 0x80
    }

    /// A report `mlpkg audit` wrote, in any of its formats.
    public static func isAuditReport(_ path: String) -> Bool {
        let head = String(decoding: prefix(path, 4096), as: UTF8.self)
        return head.contains("\"format\" : \"mlpkg-audit\"") || head.hasPrefix("## Compute-unit audit:")
            || (head.hasPrefix("<!DOCTYPE html>") && head.contains("<title>Audit: "))
            || head.range(of: #"^[^\n]*: audit for [a-z-]+ \(compute units "#, options: .regularExpression) != nil
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
