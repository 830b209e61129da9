import Testing
@testable import MIL

@Suite struct MILVerifierTests {
    @Test func placeholder() { #expect(MILOpRegistry.definitions.count == MILOpRegistry.declaredCount) }
}
