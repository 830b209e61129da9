import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Data-parallel helpers over all cores.
public enum Parallel {
    /// Work runs on the calling thread alone when the address space is limited (`ulimit -v`): each worker thread
    /// reserves an 8 MiB stack, and when that allocation fails libdispatch retries it once a second, forever, so a
    /// conversion near the limit never ended (issue 16). `MLPKG_SERIAL=1` asks for the same. Results are identical.
    public static let serial: Bool = {
        if getenv("MLPKG_SERIAL") != nil { return true }
        var limit = rlimit()
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_AS.rawValue)
        #else
        let resource = RLIMIT_AS
        #endif
        #if canImport(Glibc)
        let unlimited = rlim_t.max  // RLIM_INFINITY, which Swift does not import on Linux
        #else
        let unlimited = RLIM_INFINITY
        #endif
        return getrlimit(resource, &limit) == 0 && limit.rlim_cur != unlimited
    }()

    /// `items.map(transform)`, with the calls spread over all cores. Results keep the items' order.
    public static func map<T: Sendable, R: Sendable>(_ items: [T], _ transform: @Sendable (T) -> R) -> [R] {
        if serial { return items.map(transform) }
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

extension Parallel {
    /// Runs `produce` over `items` on one thread per core and hands each result to `consume` on the calling thread,
    /// in the items' order, as soon as it and every earlier one are done: consuming (writing) overlaps producing.
    /// An item starts only while the cost of the items started but not yet consumed stays within `budget` (an item
    /// is always admitted when nothing else is pending), so memory stays bounded however many items there are.
    /// If `consume` throws, no further item starts; those running finish, their results are dropped, and the error
    /// is rethrown once every worker has stopped.
    public static func pipeline<T: Sendable, R: Sendable, E: Error>(
        _ items: [T], cost: (T) -> Int, budget: Int, workers: Int = ProcessInfo.processInfo.activeProcessorCount,
        produce: @escaping @Sendable (T) -> R, consume: (Int, R) throws(E) -> Void
    ) throws(E) {
        guard !items.isEmpty else { return }
        if serial {
            for i in items.indices { try consume(i, produce(items[i])) }
            return
        }
        let state = PipelineState<R>(costs: items.map(cost), budget: budget)
        let threads = min(max(workers, 1), items.count)
        state.running = threads
        for _ in 0..<threads {
            let thread = Thread {
                while let i = state.admit() { state.finish(i, produce(items[i])) }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        for i in items.indices {
            let result = state.take(i)
            do {
                try consume(i, result)
            } catch {
                state.stopAndJoin()
                throw error
            }
            state.consumed(i)
        }
        state.stopAndJoin()
    }

    /// The shared bookkeeping of `pipeline`, guarded by one condition variable.
    private final class PipelineState<R>: @unchecked Sendable {
        private let condition = NSCondition()
        private let costs: [Int]
        private let budget: Int
        private var results: [R?]
        private var next = 0
        private var pendingCost = 0
        private var stopped = false
        var running = 0

        init(costs: [Int], budget: Int) {
            self.costs = costs
            self.budget = budget
            results = Array(repeating: nil, count: costs.count)
        }

        /// The next item for a worker, once the budget allows it; nil when there is none or the pipeline stopped.
        func admit() -> Int? {
            condition.lock()
            defer { condition.unlock() }
            while !stopped && next < costs.count && pendingCost > 0 && pendingCost + costs[next] > budget {
                condition.wait()
            }
            guard !stopped && next < costs.count else {
                running -= 1
                condition.broadcast()
                return nil
            }
            let i = next
            next += 1
            pendingCost += costs[i]
            return i
        }

        func finish(_ i: Int, _ result: R) {
            condition.lock()
            results[i] = result
            condition.broadcast()
            condition.unlock()
        }

        /// Waits for item i's result and hands it over.
        func take(_ i: Int) -> R {
            condition.lock()
            defer { condition.unlock() }
            while results[i] == nil { condition.wait() }
            let result = results[i]!
            results[i] = nil
            return result
        }

        func consumed(_ i: Int) {
            condition.lock()
            pendingCost -= costs[i]
            condition.broadcast()
            condition.unlock()
        }

        func stopAndJoin() {
            condition.lock()
            stopped = true
            condition.broadcast()
            while running > 0 { condition.wait() }
            for i in results.indices { results[i] = nil }
            condition.unlock()
        }
    }
}
