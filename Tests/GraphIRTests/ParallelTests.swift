import Foundation
import Testing
@testable import GraphIR

/// The streaming pipeline conversion runs on, and the buffer pool behind `OwnedBuffer`.
@Suite struct ParallelTests {
    /// Counts shared between the pipeline's workers and the test.
    final class Ledger: @unchecked Sendable {
        private let lock = NSLock()
        private var pending = 0
        private(set) var worstPending = 0
        private(set) var started: [Int] = []
        /// Pending cost just after each item started, by item.
        private(set) var pendingAtStart: [Int: Int] = [:]

        func start(_ i: Int, cost: Int) {
            lock.lock()
            pending += cost
            worstPending = max(worstPending, pending)
            pendingAtStart[i] = pending
            started.append(i)
            lock.unlock()
        }

        func consumed(cost: Int) {
            lock.lock()
            pending -= cost
            lock.unlock()
        }
    }

    struct Stop: Error { var at: Int }

    @Test("results arrive in order, each once, and pending cost stays within the budget")
    func orderAndBudget() {
        // Uneven costs and uneven work, so workers finish out of order; one item alone exceeds the budget.
        let costs = [5, 30, 5, 5, 120, 5, 10, 40, 5, 5, 60, 5]
        let ledger = Ledger()
        var seen: [Int] = []
        Parallel.pipeline(Array(costs.indices), cost: { costs[$0] }, budget: 64, workers: 3, produce: { i in
            ledger.start(i, cost: costs[i])
            usleep(UInt32((i * 7919) % 5) * 1000)
            return i * i
        }, consume: { (i: Int, square: Int) in
            #expect(square == i * i)
            seen.append(i)
            ledger.consumed(cost: costs[i])
        })
        #expect(seen == Array(costs.indices))
        #expect(ledger.started.sorted() == Array(costs.indices))
        // Pending cost is measured when each item starts, so it can only be an overestimate of the pipeline's own.
        for (i, pending) in ledger.pendingAtStart {
            if costs[i] > 64 {
                #expect(pending == costs[i], "the oversized item \(i) starts alone")
            } else {
                #expect(pending <= 64, "item \(i) started with \(pending) pending")
            }
        }
    }

    @Test("a budget of one item's cost runs the items one after another")
    func serialWhenTight() {
        let ledger = Ledger()
        Parallel.pipeline(Array(0..<20), cost: { _ in 10 }, budget: 10, workers: 4, produce: { i in
            ledger.start(i, cost: 10)
            return i
        }, consume: { (_: Int, _: Int) in ledger.consumed(cost: 10) })
        #expect(ledger.worstPending == 10)
        #expect(ledger.started == Array(0..<20))
    }

    @Test("an error from consume stops new work, joins the workers and is rethrown")
    func errorStops() {
        let ledger = Ledger()
        #expect(throws: Stop.self) {
            try Parallel.pipeline(Array(0..<1000), cost: { _ in 1 }, budget: 4, workers: 2, produce: { i in
                ledger.start(i, cost: 1)
                return i
            }, consume: { (i: Int, _: Int) throws(Stop) in
                if i == 10 { throw Stop(at: i) }
                ledger.consumed(cost: 1)
            })
        }
        // Within the budget of 4, nothing past item 10 + 4 can have started.
        #expect(ledger.started.count <= 15)
    }

    @Test("freed large buffers are reused for requests they fit, and zero-filled ones are zero")
    func poolReuse() {
        let size = 3 << 20
        var first: OwnedBuffer? = OwnedBuffer(uninitializedCount: size)
        first!.mutableBytes.initializeMemory(as: UInt8.self, repeating: 0xEE)
        first = nil  // into the pool, dirty
        let again = OwnedBuffer(count: size - 4096)
        #expect(again.mutableBytes.count == size - 4096)
        #expect(again.mutableBytes.allSatisfy { $0 == 0 })
        // A request far smaller than a pooled buffer gets its own memory (no buffer wasted on it).
        var big: OwnedBuffer? = OwnedBuffer(uninitializedCount: 16 << 20)
        let bigAddress = big!.mutableBytes.baseAddress
        big = nil
        let small = OwnedBuffer(uninitializedCount: 2 << 20)
        #expect(small.mutableBytes.baseAddress != bigAddress)
    }
}
