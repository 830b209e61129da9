import CSystem
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Names and clean-up of temporary outputs (`.NAME.partial-NS-PID`, beside the target).
///
/// The suffix carries the writer's PID namespace (the inode of /proc/self/ns/pid) as well as its PID: a sweep
/// removes a temporary only when it was written in this namespace by a process that no longer exists. A writer in
/// another namespace (a container sharing the folder) has PIDs this process cannot see, so its temporaries are left
/// alone (issue 16: they were deleted while live). Temporaries are registered with the C layer, which removes them on
/// SIGINT, SIGTERM, SIGHUP and SIGBUS.
enum Temporaries {
    static let namespace: UInt64 = {
        var info = stat()
        return stat("/proc/self/ns/pid", &info) == 0 ? UInt64(info.st_ino) : 0
    }()

    static func suffix() -> String { "\(namespace)-\(getpid())" }

    /// Removes temporaries under `prefix` (`DIR/.NAME.partial-`) left by dead writers of this namespace.
    static func removeStale(prefix: String) {
        let url = URL(fileURLWithPath: prefix)
        let folder = url.deletingLastPathComponent().path
        let stem = url.lastPathComponent
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names where name.hasPrefix(stem) {
            let rest = name.dropFirst(stem.count)
            let parts = rest.split(separator: "-")
            let pid: Int32
            if parts.count == 2, let ns = UInt64(parts[0]), let p = Int32(parts[1]), p > 0 {
                guard ns == namespace else { continue }  // another PID namespace: not ours to judge
                pid = p
            } else if parts.count == 1, let p = Int32(parts[0]), p > 0 {
                pid = p  // written by an mlpkg before namespaces were recorded
            } else {
                continue
            }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: folder + "/" + name)
            }
        }
    }

    /// Claims this process's temporary beside `target`, `DIR/.NAME[.PURPOSE].partial-NS-PID`: sweeps the ones dead
    /// writers left under that stem, removes a leftover at the path itself (a previous process with the same PID),
    /// and registers the path with the signal handlers. The caller creates it, and unregisters `slot` when done.
    static func claim(beside target: String, purpose: String? = nil) -> (path: String, slot: Int32) {
        let url = URL(fileURLWithPath: target)
        let prefix = url.deletingLastPathComponent().path + "/." + url.lastPathComponent
            + (purpose.map { "." + $0 } ?? "") + ".partial-"
        removeStale(prefix: prefix)
        let path = prefix + suffix()
        try? FileManager.default.removeItem(atPath: path)
        return (path, register(path))
    }

    static func register(_ path: String) -> Int32 { mlpkg_register_temporary(path) }
    static func unregister(_ slot: Int32) { mlpkg_unregister_temporary(slot) }
}
