/// What the verifier found wrong with a program: the op (its index, name, type and source node) and the problem.
public struct MILVerificationError: Error, Sendable, CustomStringConvertible {
    /// The op's index in the program; nil for a problem with the interface.
    public var index: Int?
    /// The op's name.
    public var op: String
    /// The op's MIL type.
    public var type: String
    /// The ONNX node the op came from, when known.
    public var source: String?
    /// What is wrong.
    public var problem: String

    /// One line: the op, where it came from, and the problem.
    public var description: String {
        let from = source.map { " (from ONNX node '\($0)')" } ?? ""
        return index == nil ? problem : "MIL op \(type) '\(op)'\(from): \(problem)"
    }
}

/// Checks a program against the MIL definitions: SSA form (every variable defined once, before use), every op known
/// at the target, every declared output type equal to the definition's inference, ranks ≤ 5, constants holding as
/// many elements as their types say, and block outputs defined. Run after lowering and after every pass, so a pass
/// that breaks the program is caught at once, and a package Core ML would read differently is never written.
public enum MILVerifier {
    /// Core ML tensors have rank 5 at most (coremltools' Program checks every output).
    public static let maxRank = 5

    /// Throws the first problem found.
    public static func verify(_ program: MILProgram) throws(MILVerificationError) {
        var types: [String: MILTensorType] = [:]
        var constants: [String: MILConst] = [:]
        func interfaceError(_ problem: String) -> MILVerificationError {
            MILVerificationError(index: nil, op: "", type: "", source: nil, problem: problem)
        }
        for v in program.inputs {
            guard types[v.name] == nil else { throw interfaceError("input '\(v.name)' is defined twice") }
            guard v.type.rank <= maxRank else { throw interfaceError("input '\(v.name)' has rank \(v.type.rank) (Core ML takes at most \(maxRank))") }
            types[v.name] = v.type
        }
        for (index, op) in program.operations.enumerated() {
            func fail(_ problem: String) -> MILVerificationError {
                MILVerificationError(index: index, op: op.name, type: op.type, source: op.source, problem: problem)
            }
            for v in op.usedVariables where types[v] == nil {
                throw fail("reads '\(v)' before it is defined")
            }
            let inferred: [MILTensorType]
            if op.type == "const" {
                guard let value = op.value, op.outputs.count == 1 else { throw fail("a const op needs one value and one output") }
                guard value.storedElementsMatch else { throw fail("holds a different number of elements than \(value.type) says") }
                inferred = [value.type]
            } else {
                guard let definition = MILOpRegistry.definitions[op.type] else { throw fail("has no MIL definition in mlpkg") }
                let context = MILOpContext(op: op, target: program.target, types: types, constants: constants)
                do throws(MILTypeError) {
                    inferred = try definition.outputTypes(context)
                } catch {
                    throw fail(error.message)
                }
            }
            guard inferred.count == op.outputs.count else {
                throw fail("declares \(op.outputs.count) outputs; the definition gives \(inferred.count)")
            }
            for (declared, want) in zip(op.outputs, inferred) {
                guard declared.type == want else {
                    throw fail("declares '\(declared.name)' as \(declared.type); the MIL definition infers \(want)")
                }
                guard declared.type.rank <= maxRank else { throw fail("'\(declared.name)' has rank \(declared.type.rank) (Core ML takes at most \(maxRank))") }
                guard declared.type.shape.allSatisfy({ $0 > 0 }) else { throw fail("'\(declared.name)' has an empty dim \(declared.type.shape)") }
                guard types[declared.name] == nil else { throw fail("defines '\(declared.name)', which is already defined") }
                types[declared.name] = declared.type
            }
            if op.type == "const", let value = op.value { constants[op.outputs[0].name] = value }
        }
        guard !program.outputs.isEmpty else { throw interfaceError("the program has no outputs") }
        var seen: Set<String> = []
        for o in program.outputs {
            guard types[o] != nil else { throw interfaceError("block output '\(o)' is not defined") }
            guard seen.insert(o).inserted else { throw interfaceError("block output '\(o)' is listed twice") }
        }
    }
}
