import Dispatch

/// Data-parallel helpers over all cores.
public enum Parallel {
    /// `items.map(transform)`, with the calls spread over all cores. Results keep the items' order.
    public static func map<T: Sendable, R: Sendable>(_ items: [T], _ transform: @Sendable (T) -> R) -> [R] {
        let slots = Slots<R>(count: items.count)
        DispatchQueue.concurrentPerform(iterations: items.count) { i in
            slots.set(i, transform(items[i]))
        }
        return slots.values
    }

    /// Result slots written concurrently, each index by exactly one worker.
    private final class Slots<R>: @unchecked Sendable {
        private let buffer: UnsafeMutableBufferPointer<R?>
        init(count: Int) {
            buffer = .allocate(capacity: count)
            buffer.initialize(repeating: nil)
        }
        deinit {
            buffer.deinitialize()
            buffer.deallocate()
        }
        func set(_ i: Int, _ value: R) { buffer[i] = value }
        var values: [R] { buffer.map { $0! } }
    }
}
