import GraphIR
import Testing
@testable import CoreMLPackage

@Suite("model.mlmodel decoder")
struct ModelDecoderTests {
    /// A Model whose main block holds `depth` ops each holding a block (control flow nested `depth` deep).
    static func nested(depth: Int) -> [UInt8] {
        let p = ProtoBuilder()
        p.int32(1, 7)
        p.message(502) { program in
            program.int64(1, 1)
            program.message(2) { entry in
                entry.string(1, "main")
                entry.message(2) { function in
                    function.string(2, "CoreML6")
                    function.message(3) { spec in
                        spec.string(1, "CoreML6")
                        func block(_ b: ProtoBuilder, _ level: Int) {
                            b.message(3) { op in
                                op.string(1, "cond")
                                if level < depth { op.message(4) { block($0, level + 1) } }
                            }
                        }
                        spec.message(2) { block($0, 0) }
                    }
                }
            }
        }
        return p.data
    }

    @Test("blocks nested within the limit decode; deeper ones are refused before protobuf-c recurses")
    func nesting() throws {
        let spec = try CoreMLModelDecoder.decode(Self.nested(depth: 20))
        #expect(spec.modelType == "mlProgram")
        #expect(spec.program?.functions.first?.blocks.first?.block.operations.first?.blocks.count == 1)
        #expect(throws: CoreMLModelDecoder.Failure.self) { try CoreMLModelDecoder.decode(Self.nested(depth: 150)) }
    }

    @Test("truncated and corrupt bytes are failures, not crashes")
    func corrupt() {
        let bytes = Self.nested(depth: 3)
        for cut in [1, 5, bytes.count / 2, bytes.count - 1] {
            #expect(throws: CoreMLModelDecoder.Failure.self) { try CoreMLModelDecoder.decode(Array(bytes.prefix(cut))) }
        }
        #expect(throws: CoreMLModelDecoder.Failure.self) { try CoreMLModelDecoder.decode([0xFF, 0xFF, 0xFF]) }
    }
}
