import GraphIR
@testable import Ops
import Testing

@Suite struct DimExprTests {
    let h = DimExpr(symbol: "H")
    let seq = DimExpr(symbol: "seq")
    let batch = DimExpr(symbol: "batch")

    @Test func rendersCanonically() throws {
        #expect((seq * DimExpr(2))!.description == "seq*2")
        #expect((batch * seq)!.description == "batch*seq")
        #expect((seq * batch)! == (batch * seq)!)
        #expect((seq + DimExpr(1))!.description == "seq+1")
        #expect((DimExpr(1) - seq)!.description == "-seq+1")
        #expect((h + DimExpr(1))!.floorDiv(2)!.description == "(H+1)/2")
        // Nested divisions merge: ⌊(⌊(H+1)/2⌋ + 1) / 2⌋ = ⌊(H+3)/4⌋.
        #expect(((h + DimExpr(1))!.floorDiv(2)! + DimExpr(1))!.floorDiv(2)!.description == "(H+3)/4")
        #expect(h.floorDiv(2)!.description == "H/2")
        let twice = (h.floorDiv(2)! * DimExpr(3))!
        #expect(twice.description == "(H/2)*3")
    }

    @Test func convolutionArithmeticFolds() throws {
        // (H + 2·pad − k) / s + 1 with pad 1, k 3, s 1 is H; with s 2 it is (H+1)/2.
        let same = (((h + DimExpr(2 - 3))!.floorDiv(1)!) + DimExpr(1))!
        #expect(same == h)
        let strided = (((h + DimExpr(2 - 3))!.floorDiv(2)!) + DimExpr(1))!
        #expect(strided.description == "(H+1)/2")
        #expect(strided.evaluate(["H": 64]) == 32)
        #expect(strided.evaluate(["H": 7]) == 4)
        // Whole multiples leave the division: ⌊(2H + 3) / 2⌋ = H + 1.
        #expect(((h * DimExpr(2))! + DimExpr(3))!.floorDiv(2)! == (h + DimExpr(1))!)
        // A common factor reduces: ⌊(2H + 2) / 4⌋ = ⌊(H + 1) / 2⌋.
        #expect(((h * DimExpr(2))! + DimExpr(2))!.floorDiv(4)!.description == "(H+1)/2")
    }

    @Test func exactQuotients() throws {
        let total = ((batch * seq)! * DimExpr(64))!
        #expect(total.exactQuotient((batch * DimExpr(64))!) == seq)
        #expect(total.exactQuotient((batch * (seq * DimExpr(4))!)!) == DimExpr(16))
        #expect(total.exactQuotient(DimExpr(3)) == nil)
        #expect(((seq + DimExpr(1))! * DimExpr(2))!.exactQuotient((seq + DimExpr(1))!) == DimExpr(2))
        #expect(seq.exactQuotient(batch) == nil)
    }

    @Test func minimumAndMaximumUseLowerBounds() throws {
        let bounds: (String) -> Int = { _ in 1 }
        // x[1:] on seq: max(min(1, seq), 0) = 1, so the length is seq-1.
        let start = DimExpr.minimum(DimExpr(1), seq, bounds: bounds)!
        #expect(start == DimExpr(1))
        #expect(DimExpr.maximum((seq - start)!, DimExpr(0), bounds: bounds)!.description == "seq-1")
        // min(seq, 512) stays symbolic: seq could be larger.
        #expect(DimExpr.minimum(seq, DimExpr(512), bounds: bounds)!.description == "min(512,seq)")
    }

    @Test func overflowGivesNil() throws {
        let big = DimExpr(Int.max)
        #expect(big + DimExpr(1) == nil)
        #expect((h * big)! * DimExpr(2) == nil)
        #expect(DimExpr(Int.min).exactQuotient(DimExpr(-1)) == nil)
        #expect(-DimExpr(Int.min) == nil)
    }

    @Test func algebraRoundTripsRenderedSymbols() throws {
        let alg = DimAlgebra()
        let twice = alg.multiply(.symbol("seq"), 2)
        #expect(twice == .symbol("seq*2"))
        #expect(alg.floorDiv(twice, 2) == .symbol("seq"))
        #expect(alg.subtract(twice, .symbol("seq")) == .symbol("seq"))
        #expect(alg.add(.value(3), .value(4)) == .value(7))
        // Two different symbols broadcast to a fresh one; a symbol against 5 is 5.
        #expect(alg.broadcast(.symbol("a"), .symbol("b")) == .symbol("unk__0"))
        #expect(alg.broadcast(.symbol("a"), .value(5)) == .value(5))
        #expect(alg.broadcast(.value(3), .value(5)) == nil)
        #expect(alg.evaluate(.symbol("seq*2"), symbols: ["seq": 5]) == 10)
    }

    @Test func longExpressionsBecomeOneFreshSymbol() throws {
        let alg = DimAlgebra()
        var d = Dim.symbol("H")
        for _ in 0..<12 { d = alg.add(alg.floorDiv(alg.add(d, 1), 2), 0) }
        guard case .symbol(let name) = d else { Issue.record("not a symbol"); return }
        #expect(name.count <= DimAlgebra.maxRendering)
    }
}
