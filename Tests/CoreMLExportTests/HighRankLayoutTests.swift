@testable import CoreMLExport
import Testing

/// The axis merging behind the rank-6 layout rewrite, checked against a direct transpose of index arrays.
@Suite struct HighRankLayoutTests {
    /// Row-major transpose of the values 0..<count: the order in which a transpose reads its input.
    func transposed(_ dims: [Int], _ perm: [Int]) -> [Int] {
        let count = dims.reduce(1, *)
        var strides = [Int](repeating: 1, count: dims.count)
        for i in stride(from: dims.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * dims[i + 1] }
        let outDims = perm.map { dims[$0] }
        var out: [Int] = []
        var index = [Int](repeating: 0, count: dims.count)
        for _ in 0..<count {
            out.append(zip(perm, index).reduce(0) { $0 + strides[$1.0] * $1.1 })
            var d = dims.count - 1
            while d >= 0 { index[d] += 1; if index[d] < outDims[d] { break }; index[d] = 0; d -= 1 }
        }
        return out
    }

    @Test("merged axes give the same element order", arguments: [
        ([1, 2, 4, 3, 4, 5], [0, 1, 3, 2, 4, 5]),   // Swin window partition
        ([2, 3, 2, 4, 2, 3], [0, 2, 4, 1, 3, 5]),   // nothing adjacent but the ends: still rank 6
        ([2, 3, 2, 4, 1, 3], [5, 4, 0, 1, 2, 3]),   // a size-1 axis and one long run
        ([1, 1, 1, 1, 1, 1, 7], [6, 5, 4, 3, 2, 1, 0]),
    ])
    func mergedOrder(dims: [Int], perm: [Int]) {
        let merged = HighRankLayout.merge(dims: dims, perm: perm)
        let allSeparate = perm.filter { dims[$0] != 1 }.count > 5 &&
            zip(perm.filter { dims[$0] != 1 }, perm.filter { dims[$0] != 1 }.dropFirst()).allSatisfy { $1 != $0 + 1 }
        if allSeparate {
            #expect(merged == nil)
            return
        }
        guard let merged else { Issue.record("\(dims) by \(perm) did not merge"); return }
        #expect(merged.dims.count <= 5)
        #expect(merged.dims.reduce(1, *) == dims.reduce(1, *))
        #expect(transposed(merged.dims, merged.perm) == transposed(dims, perm))
    }

    @Test func swinMergesToRankFour() {
        let merged = HighRankLayout.merge(dims: [1, 2, 4, 3, 4, 5], perm: [0, 1, 3, 2, 4, 5])
        #expect(merged?.dims == [2, 4, 3, 20])
        #expect(merged?.perm == [0, 2, 1, 3])
    }
}
