import Testing
@testable import GraphIR

@Suite struct ConstantNodeTests {
    private func constant(_ attribute: Attribute) -> Node {
        Node(opType: "Constant", inputs: [], outputs: ["c"], attributes: [attribute])
    }

    @Test func valueFloatsBecomeAFloatVector() throws {
        let t = try #require(constant(Attribute(name: "value_floats", value: .floats([1.5, -2]))).constantTensor)
        #expect(t.name == "c" && t.dataType == .float && t.dims == [2])
        guard case .bytes(let view) = t.data else { Issue.record("expected bytes"); return }
        #expect(view.array == [0, 0, 0xC0, 0x3F, 0, 0, 0, 0xC0])
    }

    @Test func valueIntIsAnInt64Scalar() throws {
        let t = try #require(constant(Attribute(name: "value_int", value: .int(-1))).constantTensor)
        #expect(t.dataType == .int64 && t.dims == [] && t.byteCount == 8)
    }

    @Test func valueStringsAreAStringVector() throws {
        let t = try #require(constant(Attribute(name: "value_strings", value: .strings([[104, 105], []]))).constantTensor)
        #expect(t.dataType == .string && t.dims == [2] && t.byteCount == 2)
    }

    @Test func nonConstantNodesHaveNoValue() {
        let node = Node(opType: "Relu", inputs: ["x"], outputs: ["y"], attributes: [Attribute(name: "value_int", value: .int(1))])
        #expect(node.constantTensor == nil)
    }
}
