import GraphIR
import MIL

/// Rebuilds one block of a decoded ML Program as a `MILProgram`, so the MIL definitions and `MILVerifier` check a
/// package any tool wrote as they check mlpkg's own. What `MILProgram` cannot hold is kept out and named:
/// variables of types it does not represent (lists, tuples, dynamic dims, fp64, bf16…) become opaque, and ops
/// reading such variables are "not checked". Control-flow ops (`while_loop`, `cond`) keep their nested blocks when
/// every type and value in them is representable; otherwise the op is "not checked" and its inner ops are listed. Values are read as Core ML reads
/// them: in place, or from weight.bin through `BlobStorageReader` (a blob that does not fit its value is a fault).
struct MILProgramDecoder {
    /// The result for one block.
    struct Decoded {
        var program: MILProgram
        /// Variables whose types mlpkg does not represent.
        var opaque: Set<String> = []
        /// Op index in `program` → why it is not checked.
        var unchecked: [Int: String] = [:]
        /// Ops left out of `program` (outputs not representable, or inside nested blocks), with the reason.
        var skipped: [(op: String, type: String, reason: String)] = []
        /// Data faults: values whose storage does not fit their type, blobs that cannot be read.
        var faults: [String] = []
        /// Every op, nested ones included.
        var operations = 0
    }

    let contents: CoreMLPackageContents

    func decode(_ function: MILSpecFunction, block: MILSpecBlock, target: DeploymentTarget) -> Decoded {
        var d = Decoded(program: MILProgram(target: target))
        for input in function.inputs {
            if let t = input.type.tensorType {
                d.program.inputs.append(MILVar(name: input.name, type: t))
            } else {
                d.opaque.insert(input.name)
            }
        }
        for op in block.operations {
            d.operations += 1
            let name = op.name ?? op.outputs.first?.name ?? "#\(d.operations - 1)"
            let outputs = op.outputs.map { o in o.type.tensorType.map { MILVar(name: o.name, type: $0) } }
            if let i = outputs.firstIndex(where: { $0 == nil }) {
                for o in op.outputs { d.opaque.insert(o.name) }
                d.skipped.append((name, op.type, "its output '\(op.outputs[i].name)' is \(op.outputs[i].type), which mlpkg does not represent"))
                nested(op, name: name, into: &d)
                continue
            }
            var faults: [String] = []
            let (operation, reason) = convert(op, name: name, outputs: outputs.map { $0! }, faults: &faults)
            d.faults += faults
            if let reason {
                d.unchecked[d.program.operations.count] = reason
                if !op.blocks.isEmpty { nested(op, name: name, into: &d) }
            } else {
                d.operations += operation.blocks.reduce(0) { $0 + $1.operationCount }
            }
            d.program.operations.append(operation)
        }
        d.program.outputs = block.outputs
        return d
    }

    /// One op as a `MILOperation`, its nested blocks included; the reason it cannot be checked or run when a value
    /// or a type in it (or in its blocks) is one mlpkg does not represent (the op then keeps no blocks).
    private func convert(_ op: MILSpecOperation, name: String, outputs: [MILVar], faults: inout [String]) -> (MILOperation, String?) {
        let where_ = "op \(op.type) '\(name)'"
        var operation = MILOperation(type: op.type, name: name, inputs: [], outputs: outputs)
        var reason: String?
        for (param, bindings) in op.inputs {
            var arguments: [MILArgument] = []
            for b in bindings {
                switch b {
                case .name(let n): arguments.append(.variable(n))
                case .value(let v):
                    switch const(v, where: "\(where_), parameter '\(param)'", faults: &faults) {
                    case .value(let c): arguments.append(.value(c))
                    case .unreadable(let why): reason = reason ?? why
                    }
                }
            }
            operation.inputs.append((param, arguments))
        }
        for (key, v) in op.attributes where key != "name" {
            switch const(v, where: "\(where_), attribute '\(key)'", faults: &faults) {
            case .value(let c):
                if op.type == "const" && key == "val" {
                    operation.value = c
                } else {
                    // constexpr parameters before iOS18 are attributes; the definitions read parameters.
                    operation.inputs.append((key, [.value(c)]))
                }
            case .unreadable(let why): reason = reason ?? why
            }
        }
        // Nested blocks (while_loop, cond): rebuilt when every value and type in them is representable.
        for (k, b) in op.blocks.enumerated() where reason == nil {
            var block = MILBlock(outputs: b.outputs)
            for input in b.inputs {
                guard let t = input.type.tensorType else {
                    reason = "block \(k) input '\(input.name)' is \(input.type), which mlpkg does not represent"
                    break
                }
                block.inputs.append(MILVar(name: input.name, type: t))
            }
            for inner in b.operations where reason == nil {
                let innerName = inner.name ?? inner.outputs.first?.name ?? "?"
                let outs = inner.outputs.map { o in o.type.tensorType.map { MILVar(name: o.name, type: $0) } }
                if let i = outs.firstIndex(where: { $0 == nil }) {
                    reason = "op \(inner.type) '\(innerName)' in block \(k) has output '\(inner.outputs[i].name)' of type \(inner.outputs[i].type), which mlpkg does not represent"
                    break
                }
                let (converted, why) = convert(inner, name: innerName, outputs: outs.map { $0! }, faults: &faults)
                if let why { reason = "op \(inner.type) '\(innerName)' in block \(k): \(why)" }
                block.operations.append(converted)
            }
            operation.blocks.append(block)
        }
        if reason != nil { operation.blocks = [] }
        return (operation, reason)
    }

    /// The ops inside an op's blocks that are not rebuilt: counted and listed as not checked; their values' blobs
    /// are still read.
    private func nested(_ op: MILSpecOperation, name: String, into d: inout Decoded) {
        for b in op.blocks {
            for inner in b.operations {
                d.operations += 1
                let innerName = inner.name ?? inner.outputs.first?.name ?? "?"
                d.skipped.append((innerName, inner.type, "inside a block of \(op.type) '\(name)'"))
                for v in inner.values where v.type.tensorType != nil {
                    _ = const(v, where: "op \(inner.type) '\(innerName)'", faults: &d.faults)
                }
                nested(inner, name: innerName, into: &d)
            }
        }
    }

    /// A value read as a `MILConst`, or why it cannot be.
    enum ConstRead {
        case value(MILConst)
        case unreadable(String)
    }

    /// A value as a `MILConst`; `.unreadable` says why it cannot be (a fault is recorded when the package is wrong,
    /// not when mlpkg merely cannot represent the value).
    func const(_ v: MILSpecValue, where place: String, faults: inout [String]) -> ConstRead {
        guard let type = v.type.tensorType else {
            return .unreadable("\(place) is \(v.type), which mlpkg does not represent")
        }
        func fault(_ message: String) -> ConstRead {
            faults.append("\(place): \(message)")
            return .unreadable("\(place) cannot be read")
        }
        switch v.storage {
        case .none:
            return fault("a value of type \(type) without data")
        case .blob(let file, let offset):
            guard let reader = contents.blobFile(file) else { return fault("reads '\(file)', which cannot be read") }
            if let problem = reader.problem(reading: type, at: offset) { return fault(problem) }
            return .value(MILConst(type, .bytes(reader.blob(at: offset)!)))
        case .immediate(let data):
            let count = type.count
            let dtype = type.dtype
            let integer: Set<MILDataType> = [.int8, .uint8, .int16, .uint16, .int32]
            let packed = (count * dtype.bitWidth + 7) / 8
            switch data {
            case .bytes(let b):
                guard dtype != .string, dtype != .bool else { return fault("\(type) stored as bytes") }
                guard b.count == packed else { return fault("holds \(b.count) bytes; \(type) takes \(packed)") }
                return .value(MILConst(type, .bytes(ByteView(copying: b))))
            case .empty:
                return fault("a value of type \(type) with no elements stored")
            default:
                guard data.count == count else { return fault("holds \(data.count) \(data.form); \(type) has \(count) elements") }
            }
            switch (data, dtype) {
            case (.floats(let f), .fp32): return .value(MILConst(type, .floats(f)))
            case (.ints(let i), _) where integer.contains(dtype): return .value(MILConst(type, .ints(i)))
            case (.bools(let b), .bool): return .value(MILConst(type, .bools(b)))
            case (.strings(let s), .string): return .value(MILConst(type, .strings(s)))
            case (.longInts(let l), .int64):
                var bytes: [UInt8] = []
                bytes.reserveCapacity(l.count * 8)
                for x in l { withUnsafeBytes(of: x.littleEndian) { bytes.append(contentsOf: $0) } }
                return .value(MILConst(type, .bytes(ByteView(copying: bytes))))
            default:
                return fault("\(type) stored as \(data.form)")
            }
        }
    }
}
