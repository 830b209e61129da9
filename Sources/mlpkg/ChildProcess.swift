import CSystem
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// mlpkg run again as a child process, its output collected: a batch converts each model in one, so that a model
/// that crashes the converter (a trap, an abort, memory exhausted) fails alone.
struct ChildProcess {
    /// How the child ended: its exit status, or the signal that killed it.
    enum Ending: Equatable {
        case exited(Int32)
        case signaled(Int32)
    }

    var ending: Ending
    /// Everything the child wrote on stdout.
    var stdout: [UInt8]
    /// Everything the child wrote on stderr.
    var stderr: [UInt8]

    /// This program's own executable (`/proc/self/exe` on Linux), so a child runs the very same mlpkg.
    static let executable: String = {
        #if os(Linux)
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink("/proc/self/exe", &buffer, 4096)
        if n > 0 { return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        #endif
        return Bundle.main.executablePath ?? CommandLine.arguments[0]
    }()

    /// Runs mlpkg with `arguments` (without the program name) and `environment` added to this process's, and waits
    /// for it; throws a message when it cannot be started.
    static func run(_ arguments: [String], environment: [String: String]) throws(CommandFailure) -> ChildProcess {
        var variables = ProcessInfo.processInfo.environment
        for (k, v) in environment { variables[k] = v }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        guard let out = makePipe() else { throw CommandFailure("cannot create a pipe: \(String(cString: strerror(errno)))") }
        guard let err = makePipe() else {
            close(out[0]); close(out[1])
            throw CommandFailure("cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        var slot: Int32 = -1
        let pid = mlpkg_spawn_child(executable, argv, envp, out[1], err[1], &slot)
        close(out[1])
        close(err[1])
        defer {
            close(out[0])
            close(err[0])
        }
        guard pid > 0 else { throw CommandFailure("cannot start \(executable): \(String(cString: strerror(errno)))") }
        defer { mlpkg_child_finished(slot) }
        let (stdout, stderr) = drain(out[0], err[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED / WTERMSIG, which Swift does not import.
        let signal = status & 0x7F
        let ending: Ending = signal == 0 ? .exited((status >> 8) & 0xFF) : .signaled(signal)
        return ChildProcess(ending: ending, stdout: stdout, stderr: stderr)
    }

    /// A pipe whose ends close on exec: a child started meanwhile by another thread must not hold them open.
    private static func makePipe() -> [Int32]? {
        var fds: [Int32] = [0, 0]
        return mlpkg_pipe_cloexec(&fds) == 0 ? fds : nil
    }

    /// Reads both pipes to their end (alternately, so a child filling one is never blocked on the other).
    private static func drain(_ a: Int32, _ b: Int32) -> ([UInt8], [UInt8]) {
        var outputs: [[UInt8]] = [[], []]
        var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while fds.contains(where: { $0.fd >= 0 }) {
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for k in fds.indices where fds[k].fd >= 0 && fds[k].revents != 0 {
                let n = read(fds[k].fd, &buffer, buffer.count)
                if n > 0 {
                    outputs[k] += buffer[0..<n]
                } else if n == 0 || errno != EINTR {
                    fds[k].fd = -1  // end of file (or an error): poll ignores negative descriptors
                }
            }
        }
        return (outputs[0], outputs[1])
    }
}
