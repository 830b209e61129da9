import CoreMLProto
import CProtobufC

/// Decodes an encoded Core ML model with the C code protoc-c generated from proto/coreml.proto (an independent
/// reader of the same schema) and checks what the exporter meant to write: the specification version, the
/// interface, the main function's opset and every operation's type and outputs (nested blocks' too). A mismatch is a bug in mlpkg; the
/// export fails instead of writing a model Core ML might read differently.
enum ModelSelfCheck {
    struct Expected {
        var specificationVersion: Int
        var inputs: [String]
        var outputs: [String]
        var opset: String
        var operations: [(type: String, outputs: [String])]
        /// The function names in order (`main` alone for a single-function model).
        var functions: [String] = ["main"]
    }

    static func verify(_ bytes: [UInt8], _ expected: Expected) -> String? {
        let decoded = bytes.withUnsafeBufferPointer { coreml__model__unpack(nil, $0.count, $0.baseAddress) }
        guard let model = decoded else { return "model.mlmodel does not decode against proto/coreml.proto" }
        defer { coreml__model__free_unpacked(model, nil) }
        let m = model.pointee
        guard Int(m.specificationversion) == expected.specificationVersion else { return "specification version" }
        guard let description = m.description?.pointee else { return "no model description" }
        let inputs = (0..<description.n_input).map { String(cString: description.input[$0]!.pointee.name) }
        let outputs = (0..<description.n_output).map { String(cString: description.output[$0]!.pointee.name) }
        guard inputs == expected.inputs, outputs == expected.outputs else { return "interface names" }
        guard let program = m.mlprogram?.pointee, program.version == 1, program.n_functions == expected.functions.count else {
            return "no main function"
        }
        var index = 0
        for f in 0..<program.n_functions {
            guard let entry = program.functions[f]?.pointee, String(cString: entry.key) == expected.functions[f],
                  let function = entry.value?.pointee else { return "function \(expected.functions[f]) is missing" }
            guard String(cString: function.opset) == expected.opset, function.n_block_specializations == 1,
                  let block = function.block_specializations[0]?.pointee.value?.pointee else { return "opset or block" }
            // Ops in order, each followed by the ops of its nested blocks (as the serializer lists them).
            func visit(_ block: Coreml__Block) -> String? {
                for i in 0..<block.n_operations {
                    guard index < expected.operations.count else { return "more operations decoded than written" }
                    let op = block.operations[i]!.pointee
                    let names = (0..<op.n_outputs).map { String(cString: op.outputs[$0]!.pointee.name) }
                    guard String(cString: op.type) == expected.operations[index].type, names == expected.operations[index].outputs else {
                        return "operation \(index) (\(expected.operations[index].type)) decodes differently"
                    }
                    index += 1
                    for b in 0..<op.n_blocks {
                        if let problem = visit(op.blocks[b]!.pointee) { return problem }
                    }
                }
                return nil
            }
            if let problem = visit(block) { return problem }
        }
        guard index == expected.operations.count else { return "\(index) operations decoded, \(expected.operations.count) written" }
        return nil
    }
}
