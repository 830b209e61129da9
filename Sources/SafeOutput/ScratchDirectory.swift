import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A hidden folder beside an output for intermediate files the output is built from
/// (`.NAME.PURPOSE.partial-NS-PID`): removed by `remove()` (or when released), by the C layer on SIGINT, SIGTERM,
/// SIGHUP and SIGBUS, and by the next writer of the same output when its process died some other way. Beside the
/// output, not in the temporary folder, so it is on the output's file system (often not RAM, as /tmp can be).
public final class ScratchDirectory {
    /// The folder's path.
    public let path: String
    private var slot: Int32

    /// Creates the scratch folder for `target`; `purpose` tells it apart from the output's own temporary.
    public init(beside target: String, purpose: String) throws(OutputError) {
        (path, slot) = Temporaries.claim(beside: target, purpose: purpose)
        guard mkdir(path, 0o755) == 0 else {
            Temporaries.unregister(slot)
            slot = -1
            throw OutputError(path: target, "cannot create a scratch folder beside it: \(String(cString: strerror(errno)))")
        }
    }

    /// Removes the folder and everything in it (once; later calls do nothing).
    public func remove() {
        guard slot >= 0 else { return }
        try? FileManager.default.removeItem(atPath: path)
        Temporaries.unregister(slot)
        slot = -1
    }

    deinit { remove() }
}
