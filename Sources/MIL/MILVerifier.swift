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
        let report = walk(program, tolerant: false, opaque: [], unchecked: [:])
        if let first = report.errors.first { throw first }
    }

    /// Checks a program read from a package another tool wrote: every problem is collected instead of the first
    /// thrown, and what mlpkg cannot check is reported as such, not as an error — ops without a definition in mlpkg,
    /// ops in `unchecked` (index → reason: ops holding blocks, say), and ops reading a variable of `opaque` (values
    /// whose type mlpkg cannot represent: lists, dynamic shapes…). Their declared outputs are taken as they are. After
    /// a type mismatch the inferred type is carried on, so one wrong declaration is one error.
    public static func check(_ program: MILProgram, opaque: Set<String> = [], unchecked: [Int: String] = [:]) -> MILCheckReport {
        walk(program, tolerant: true, opaque: opaque, unchecked: unchecked)
    }

    /// A declared type agrees with the inferred one when they are equal, or where the definition cannot know a dim
    /// (a reshape to a shape computed at run time) and the lowering declares what ONNX shape inference proved.
    static func refines(_ declared: MILTensorType, _ inferred: MILTensorType) -> Bool {
        guard declared != inferred else { return true }
        guard declared.dtype == inferred.dtype, declared.rank == inferred.rank else { return false }
        return zip(declared.shape, inferred.shape).allSatisfy { $0 == $1 || $1 == MILTensorType.unknownDim }
    }

    private static func walk(_ program: MILProgram, tolerant: Bool, opaque: Set<String>, unchecked: [Int: String]) -> MILCheckReport {
        var report = MILCheckReport()
        var types: [String: MILTensorType] = [:]
        var constants: [String: MILConst] = [:]
        func interfaceError(_ problem: String) -> MILVerificationError {
            MILVerificationError(index: nil, op: "", type: "", source: nil, problem: problem)
        }
        for v in program.inputs {
            guard types[v.name] == nil else { report.errors.append(interfaceError("input '\(v.name)' is defined twice")); continue }
            if v.type.rank > maxRank { report.errors.append(interfaceError("input '\(v.name)' has rank \(v.type.rank) (Core ML takes at most \(maxRank))")) }
            types[v.name] = v.type
        }
        for (index, op) in program.operations.enumerated() {
            func fail(_ problem: String) -> MILVerificationError {
                MILVerificationError(index: index, op: op.name, type: op.type, source: op.source, problem: problem)
            }
            // Not checked: the declared outputs are trusted (still defined once).
            func skip(_ reason: String) {
                report.notChecked.append(MILCheckReport.Skipped(index: index, op: op.name, type: op.type, reason: reason))
                for o in op.outputs where types[o.name] == nil { types[o.name] = o.type }
                if op.type == "const", let value = op.value, let out = op.outputs.first { constants[out.name] = value }
            }
            if tolerant, let v = op.usedVariables.first(where: { opaque.contains($0) && types[$0] == nil }) {
                skip("reads '\(v)', whose type mlpkg does not represent")
                continue
            }
            if let v = op.usedVariables.first(where: { types[$0] == nil }) {
                report.errors.append(fail("reads '\(v)' before it is defined"))
                if !tolerant { return report }
                skip("")
                report.notChecked.removeLast()
                continue
            }
            if tolerant, let reason = unchecked[index] {
                skip(reason)
                continue
            }
            var inferred: [MILTensorType]
            if op.type == "const" {
                guard let value = op.value, op.outputs.count == 1 else {
                    report.errors.append(fail("a const op needs one value and one output"))
                    if !tolerant { return report }
                    continue
                }
                guard value.storedElementsMatch else {
                    report.errors.append(fail("holds a different number of elements than \(value.type) says"))
                    if !tolerant { return report }
                    continue
                }
                inferred = [value.type]
            } else {
                guard let definition = MILOpRegistry.definitions[op.type] else {
                    if tolerant {
                        skip("mlpkg has no MIL definition of \(op.type)")
                        continue
                    }
                    report.errors.append(fail("has no MIL definition in mlpkg"))
                    return report
                }
                let context = MILOpContext(op: op, target: program.target, types: types, constants: constants)
                do throws(MILTypeError) {
                    inferred = try definition.outputTypes(context)
                } catch {
                    if tolerant && error.beyondDefinition {
                        skip(error.message)
                        continue
                    }
                    report.errors.append(fail(error.message))
                    if !tolerant { return report }
                    skip("")
                    report.notChecked.removeLast()
                    continue
                }
            }
            if let huge = inferred.first(where: { t in
                t.shape.contains { $0 < 0 && $0 != MILTensorType.unknownDim }
                    || (Shapes.product(t.shape.filter { $0 != MILTensorType.unknownDim }) ?? .max) > Shapes.maxElements
            }) {
                report.errors.append(fail("the MIL definition infers \(huge), beyond any tensor Core ML holds"))
                if !tolerant { return report }
                skip("")
                report.notChecked.removeLast()
                continue
            }
            guard inferred.count == op.outputs.count else {
                report.errors.append(fail("declares \(op.outputs.count) outputs; the definition gives \(inferred.count)"))
                if !tolerant { return report }
                skip("")
                report.notChecked.removeLast()
                continue
            }
            report.checked += 1
            for (i, (declared, want)) in zip(op.outputs, inferred).enumerated() {
                var problem: String?
                if !Self.refines(declared.type, want) {
                    problem = "declares '\(declared.name)' as \(declared.type); the MIL definition infers \(want)"
                } else if declared.type.rank > maxRank {
                    problem = "'\(declared.name)' has rank \(declared.type.rank) (Core ML takes at most \(maxRank))"
                } else if !declared.type.shape.allSatisfy({ $0 > 0 || $0 == MILTensorType.unknownDim }) {
                    problem = "'\(declared.name)' has an empty dim \(declared.type.shape)"
                } else if types[declared.name] != nil {
                    problem = "defines '\(declared.name)', which is already defined"
                }
                if let problem {
                    report.errors.append(fail(problem))
                    if !tolerant { return report }
                }
                if types[declared.name] == nil { types[declared.name] = tolerant ? inferred[i] : declared.type }
            }
            if op.type == "const", let value = op.value { constants[op.outputs[0].name] = value }
        }
        guard !program.outputs.isEmpty else {
            report.errors.append(interfaceError("the program has no outputs"))
            return report
        }
        var seen: Set<String> = []
        for o in program.outputs {
            if types[o] == nil && !(tolerant && opaque.contains(o)) {
                report.errors.append(interfaceError("block output '\(o)' is not defined"))
                if !tolerant { return report }
            }
            if !seen.insert(o).inserted {
                report.errors.append(interfaceError("block output '\(o)' is listed twice"))
                if !tolerant { return report }
            }
        }
        return report
    }
}

/// What `MILVerifier.check` found: how many ops were checked against their definitions, which were not and why,
/// and every problem.
public struct MILCheckReport: Sendable {
    /// An op mlpkg did not check.
    public struct Skipped: Sendable {
        /// The op's index in the program.
        public var index: Int
        /// The op's name.
        public var op: String
        /// Its MIL type.
        public var type: String
        /// Why it was not checked.
        public var reason: String
    }

    /// Ops (consts included) whose outputs were compared with their definition's inference.
    public var checked = 0
    /// Ops that were not checked, in program order.
    public var notChecked: [Skipped] = []
    /// Problems, in program order.
    public var errors: [MILVerificationError] = []
}
