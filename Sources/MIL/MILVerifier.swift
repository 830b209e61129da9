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
        var w = Walk(target: program.target, tolerant: tolerant, opaque: opaque, unchecked: unchecked)
        var types: [String: MILTensorType] = [:]
        for v in program.inputs {
            guard w.names.insert(v.name).inserted else { w.report.errors.append(Walk.interfaceError("input '\(v.name)' is defined twice")); continue }
            if v.type.rank > maxRank { w.report.errors.append(Walk.interfaceError("input '\(v.name)' has rank \(v.type.rank) (Core ML takes at most \(maxRank))")) }
            types[v.name] = v.type
        }
        guard w.operations(program.operations, types: &types, enclosing: nil) else { return w.report }
        guard !program.outputs.isEmpty else {
            w.report.errors.append(Walk.interfaceError("the program has no outputs"))
            return w.report
        }
        var seen: Set<String> = []
        for o in program.outputs {
            if types[o] == nil && !(tolerant && opaque.contains(o)) {
                w.report.errors.append(Walk.interfaceError("block output '\(o)' is not defined"))
                if !tolerant { return w.report }
            }
            if !seen.insert(o).inserted {
                w.report.errors.append(Walk.interfaceError("block output '\(o)' is listed twice"))
                if !tolerant { return w.report }
            }
        }
        return w.report
    }

    /// One walk over a program and its nested blocks. `types` is the scope: what the ops being checked can read
    /// (a block gets a copy of its op's scope plus its inputs, so nothing defined inside it is visible after the
    /// op); `names` is every name defined anywhere so far (names are unique across nesting).
    private struct Walk {
        let target: DeploymentTarget
        let tolerant: Bool
        let opaque: Set<String>
        let unchecked: [Int: String]
        var report = MILCheckReport()
        /// Every variable defined so far, at any depth.
        var names: Set<String> = []
        var constants: [String: MILConst] = [:]

        init(target: DeploymentTarget, tolerant: Bool, opaque: Set<String>, unchecked: [Int: String]) {
            self.target = target
            self.tolerant = tolerant
            self.opaque = opaque
            self.unchecked = unchecked
        }

        static func interfaceError(_ problem: String) -> MILVerificationError {
            MILVerificationError(index: nil, op: "", type: "", source: nil, problem: problem)
        }

        /// Checks `ops` in order; false when the walk must stop (the first error when not tolerant). `enclosing` is
        /// the top-level op's index and the path to the block, for ops inside blocks.
        mutating func operations(_ ops: [MILOperation], types: inout [String: MILTensorType],
                                 enclosing: (index: Int, path: String)?) -> Bool {
            for (position, op) in ops.enumerated() {
                let index = enclosing?.index ?? position
                let place = enclosing.map { " (in \($0.path))" } ?? ""
                func fail(_ problem: String) -> MILVerificationError {
                    MILVerificationError(index: index, op: op.name, type: op.type, source: op.source, problem: problem + place)
                }
                // Not checked: the declared outputs are trusted (still defined once).
                func skip(_ reason: String, _ types: inout [String: MILTensorType]) {
                    report.notChecked.append(MILCheckReport.Skipped(index: index, op: op.name, type: op.type, reason: reason))
                    for o in op.outputs where types[o.name] == nil {
                        types[o.name] = o.type
                        names.insert(o.name)
                    }
                    if op.type == "const", let value = op.value, let out = op.outputs.first { constants[out.name] = value }
                }
                if tolerant, let v = op.usedVariables.first(where: { opaque.contains($0) && types[$0] == nil }) {
                    skip("reads '\(v)', whose type mlpkg does not represent", &types)
                    continue
                }
                if let v = op.usedVariables.first(where: { types[$0] == nil }) {
                    let problem = names.contains(v) ? "reads '\(v)', which is not visible here (defined inside a block, or after this op)"
                        : "reads '\(v)' before it is defined"
                    report.errors.append(fail(problem))
                    if !tolerant { return false }
                    skip("", &types)
                    report.notChecked.removeLast()
                    continue
                }
                if tolerant, enclosing == nil, let reason = unchecked[index] {
                    skip(reason, &types)
                    continue
                }
                // Nested blocks first: the op's types depend on what its blocks return.
                var blockTypes: [MILBlockTypes] = []
                for (k, block) in op.blocks.enumerated() {
                    var inner = types
                    let path = "block \(k) of \(op.type) '\(op.name)'" + (enclosing.map { " in \($0.path)" } ?? "")
                    var blockFault = false
                    for v in block.inputs {
                        if !names.insert(v.name).inserted {
                            report.errors.append(fail("block \(k) input '\(v.name)' is already defined"))
                            blockFault = true
                        } else if v.type.rank > MILVerifier.maxRank {
                            report.errors.append(fail("block \(k) input '\(v.name)' has rank \(v.type.rank) (Core ML takes at most \(MILVerifier.maxRank))"))
                            blockFault = true
                        }
                        inner[v.name] = v.type
                    }
                    if blockFault && !tolerant { return false }
                    guard operations(block.operations, types: &inner, enclosing: (index, path)) else { return false }
                    var outputs: [MILTensorType] = []
                    for o in block.outputs {
                        if let t = inner[o] {
                            outputs.append(t)
                        } else {
                            report.errors.append(fail("block \(k) output '\(o)' is not visible in the block"))
                            if !tolerant { return false }
                        }
                    }
                    blockTypes.append(MILBlockTypes(inputs: block.inputs.map(\.type), outputs: outputs,
                                                    complete: outputs.count == block.outputs.count))
                }
                var inferred: [MILTensorType]
                if op.type == "const" {
                    guard let value = op.value, op.outputs.count == 1 else {
                        report.errors.append(fail("a const op needs one value and one output"))
                        if !tolerant { return false }
                        continue
                    }
                    guard value.storedElementsMatch else {
                        report.errors.append(fail("holds a different number of elements than \(value.type) says"))
                        if !tolerant { return false }
                        continue
                    }
                    inferred = [value.type]
                } else {
                    guard let definition = MILOpRegistry.definitions[op.type] else {
                        if tolerant {
                            skip("mlpkg has no MIL definition of \(op.type)", &types)
                            continue
                        }
                        report.errors.append(fail("has no MIL definition in mlpkg"))
                        return false
                    }
                    if !op.blocks.isEmpty, blockTypes.contains(where: { !$0.complete }) {
                        skip("", &types)
                        report.notChecked.removeLast()
                        continue
                    }
                    let context = MILOpContext(op: op, target: target, types: types, constants: constants, blocks: blockTypes)
                    do throws(MILTypeError) {
                        inferred = try definition.outputTypes(context)
                    } catch {
                        if tolerant && error.beyondDefinition {
                            skip(error.message, &types)
                            continue
                        }
                        report.errors.append(fail(error.message))
                        if !tolerant { return false }
                        skip("", &types)
                        report.notChecked.removeLast()
                        continue
                    }
                }
                if let huge = inferred.first(where: { t in
                    t.shape.contains { $0 < 0 && $0 != MILTensorType.unknownDim }
                        || (Shapes.product(t.shape.filter { $0 != MILTensorType.unknownDim }) ?? .max) > Shapes.maxElements
                }) {
                    report.errors.append(fail("the MIL definition infers \(huge), beyond any tensor Core ML holds"))
                    if !tolerant { return false }
                    skip("", &types)
                    report.notChecked.removeLast()
                    continue
                }
                guard inferred.count == op.outputs.count else {
                    report.errors.append(fail("declares \(op.outputs.count) outputs; the definition gives \(inferred.count)"))
                    if !tolerant { return false }
                    skip("", &types)
                    report.notChecked.removeLast()
                    continue
                }
                report.checked += 1
                for (i, (declared, want)) in zip(op.outputs, inferred).enumerated() {
                    var problem: String?
                    if !MILVerifier.refines(declared.type, want) {
                        problem = "declares '\(declared.name)' as \(declared.type); the MIL definition infers \(want)"
                    } else if declared.type.rank > MILVerifier.maxRank {
                        problem = "'\(declared.name)' has rank \(declared.type.rank) (Core ML takes at most \(MILVerifier.maxRank))"
                    } else if !declared.type.shape.allSatisfy({ $0 > 0 || $0 == MILTensorType.unknownDim }) {
                        problem = "'\(declared.name)' has an empty dim \(declared.type.shape)"
                    } else if types[declared.name] != nil || names.contains(declared.name) {
                        problem = "defines '\(declared.name)', which is already defined"
                    }
                    if let problem {
                        report.errors.append(fail(problem))
                        if !tolerant { return false }
                    }
                    names.insert(declared.name)
                    if types[declared.name] == nil { types[declared.name] = tolerant ? inferred[i] : declared.type }
                }
                if op.type == "const", let value = op.value { constants[op.outputs[0].name] = value }
            }
            return true
        }
    }
}

/// What the verifier found for one nested block of an op: its input types and the types of the values it returns
/// (`complete` is false when some output could not be typed).
public struct MILBlockTypes: Sendable {
    /// The block inputs' declared types.
    public var inputs: [MILTensorType]
    /// The block outputs' types.
    public var outputs: [MILTensorType]
    /// Whether every output was typed.
    public var complete: Bool
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
