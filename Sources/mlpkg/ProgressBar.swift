import Foundation
import GraphIR
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A one-line progress bar on stderr — step, bar, items, bytes, rate and time left — drawn only when stderr is a
/// terminal, `--quiet` is off and the work has run longer than half a second (`MLPKG_PROGRESS_DELAY` seconds, for
/// tests), at most ten times a second. `finish` erases it, so what follows starts on a clean line.
final class ProgressBar: @unchecked Sendable {
    private let lock = NSLock()
    private let start = Date()
    private let delay: Double
    private var lastDraw = -Double.infinity
    private var shown = false
    private var step = ""
    private var stepStart = Date()

    /// A bar for this process, or nil when none should be drawn.
    static func make(quiet: Bool) -> ProgressBar? {
        guard !quiet, !ScriptingMode.quiet, isatty(2) == 1 else { return nil }
        let delay = getenv("MLPKG_PROGRESS_DELAY").flatMap { Double(String(cString: $0)) } ?? 0.5
        return ProgressBar(delay: delay)
    }

    private init(delay: Double) { self.delay = delay }

    var handler: ProgressHandler { { [self] p in update(p) } }

    func update(_ p: WorkProgress) {
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        if p.step != step {
            step = p.step
            stepStart = now
        }
        let t = now.timeIntervalSince(start)
        guard t >= delay, t - lastDraw >= 0.1 || p.items == p.totalItems else { return }
        lastDraw = t
        shown = true
        FileHandleOutput.standardError.write("\r" + Self.line(p, seconds: now.timeIntervalSince(stepStart)) + "\u{1B}[K")
    }

    /// "convert weights [=========>          ] 120/356 · 412.0/1024.0 MiB · 85.3 MiB/s · 7 s left"
    static func line(_ p: WorkProgress, seconds: Double, width: Int = 24) -> String {
        let fraction: Double
        if p.totalBytes > 0 {
            fraction = Double(p.bytes) / Double(p.totalBytes)
        } else {
            fraction = p.totalItems > 0 ? Double(p.items) / Double(p.totalItems) : 0
        }
        let filled = Int((min(max(fraction, 0), 1) * Double(width)).rounded(.down))
        var bar = String(repeating: "=", count: filled)
        if filled < width { bar += ">" + String(repeating: " ", count: width - filled - 1) }
        var text = "\(p.step) [\(bar)] \(p.items)/\(p.totalItems)"
        if p.totalBytes > 0 {
            let mib = { (b: Int) in String(format: "%.1f", Double(b) / 1_048_576) }
            text += " · \(mib(p.bytes))/\(mib(p.totalBytes)) MiB"
            if seconds > 0.05, p.bytes > 0 {
                let rate = Double(p.bytes) / seconds
                text += String(format: " · %.1f MiB/s", rate / 1_048_576)
                if p.bytes < p.totalBytes { text += " · \(Int((Double(p.totalBytes - p.bytes) / rate).rounded(.up))) s left" }
            }
        }
        return text
    }

    /// Erases the bar (if it was drawn).
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if shown { FileHandleOutput.standardError.write("\r\u{1B}[K") }
        shown = false
    }
}
