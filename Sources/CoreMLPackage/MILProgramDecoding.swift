import GraphIR
import MIL

/// Rebuilds one block of a decoded ML Program as a `MILProgram`, so the MIL definitions and `MILVerifier` check a
/// package any tool wrote as they check mlpkg's own. What `MILProgram` cannot hold is kept out and named:
/// variables of types it does not represent (lists, tuples, dynamic dims, fp64, bf16…) become opaque, ops that
/// hold blocks (control flow) and ops reading such variables are "not checked". Values are read as Core ML reads
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
            let where_ = "op \(op.type) '\(name)'"
            let outputs = op.outputs.map { o in o.type.tensorType.map { MILVar(name: o.name, type: $0) } }
            if let i = outputs.firstIndex(where: { $0 == nil }) {
                for o in op.outputs { d.opaque.insert(o.name) }
                d.skipped.append((name, op.type, "its output '\(op.outputs[i].name)' is \(op.outputs[i].type), which mlpkg does not represent"))
                nested(op, name: name, into: &d)
                continue
            }
            var operation = MILOperation(type: op.type, name: name, inputs: [], outputs: outputs.map { $0! })
            var reason: String?
            for (param, bindings) in op.inputs {
                var arguments: [MILArgument] = []
                for b in bindings {
                    switch b {
                    case .name(let n): arguments.append(.variable(n))
                    case .value(let v):
                        switch const(v, where: "\(where_), parameter '\(param)'", faults: &d.faults) {
                        case .value(let c): arguments.append(.value(c))
                        case .unreadable(let why): reason = reason ?? why
                        }
                    }
                }
                operation.inputs.append((param, arguments))
            }
            for (key, v) in op.attributes where key != "name" {
                switch const(v, where: "\(where_), attribute '\(key)'", faults: &d.faults) {
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
            if !op.blocks.isEmpty {
                reason = "it holds \(op.blocks.count) nested block(s) (control flow), which are not checked"
                nested(op, name: name, into: &d)
            }
            if let reason { d.unchecked[d.program.operations.count] = reason }
            d.program.operations.append(operation)
        }
        d.program.outputs = block.outputs
        return d
    }

    /// The ops inside an op's blocks: counted and listed as not checked; their values' blobs are still read.
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
