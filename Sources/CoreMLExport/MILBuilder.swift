import GraphIR

/// A value as a MIL protobuf `Value` holds it: inline, or a blob in weight.bin.
enum MILValue {
    case immediate(MILConst)
    case blob(MILTensorType, offset: Int)

    var type: MILTensorType {
        switch self {
        case .immediate(let c): return c.type
        case .blob(let t, _): return t
        }
    }
}

/// One argument binding of an op input: a named variable, or a value written in place.
enum MILBinding {
    case name(String)
    case value(MILValue)
}

/// One MIL operation as it will be written.
struct MILOperation {
    var type: String
    var inputs: [(String, [MILBinding])]
    var outputs: [MILVar]
    var attributes: [(String, MILValue)]
}

/// An op parameter when emitting: a variable, a list of variables, or a constant (emitted as its own `const` op,
/// as coremltools writes them).
public enum MILArg {
    case v(MILVar)
    case list([MILVar])
    case c(MILConst)
}

/// Builds the main function of an ML Program: unique MIL identifiers, const ops (large ones in weight.bin), ops
/// with their declared output types.
public final class MILBuilder {
    /// The deployment target the program is written for.
    public let target: DeploymentTarget
    let blobs: BlobStorage
    private(set) var operations: [MILOperation] = []
    private var used: Set<String> = []
    /// Consts ≥ this many elements go to weight.bin (coremltools' threshold).
    static let blobThreshold = 10

    init(target: DeploymentTarget, blobs: BlobStorage) {
        self.target = target
        self.blobs = blobs
    }

    /// A MIL identifier from `base` ([A-Za-z_][A-Za-z0-9_]*; other characters become `_`), unique in the program.
    public func name(_ base: String) -> String {
        var scalars = base.unicodeScalars.map { s -> Character in
            (s.isASCII && (s.properties.isAlphabetic || ("0"..."9").contains(Character(s)))) || s == "_" ? Character(s) : "_"
        }
        if scalars.isEmpty || ("0"..."9").contains(scalars[0]) { scalars.insert("_", at: 0) }
        let stem = String(scalars)
        var candidate = stem
        var k = 1
        while used.contains(candidate) {
            candidate = "\(stem)_\(k)"
            k += 1
        }
        used.insert(candidate)
        return candidate
    }

    /// Interface names (function inputs and outputs) reserved up front; an op output may claim one once.
    private var interface: Set<String> = []

    /// Reserves the MIL identifier of a model input or output, so no internal op takes it.
    func reserveInterface(_ base: String) -> String {
        let n = name(base)
        interface.insert(n)
        return n
    }

    /// How a constant is stored: weight.bin when large and of a type blob storage takes at this target.
    func value(_ c: MILConst) -> MILValue {
        guard c.type.count >= Self.blobThreshold, let _ = c.type.dtype.blobType else { return .immediate(Self.immediateForm(c)) }
        switch c.type.dtype {
        case .fp16, .fp32, .int8, .uint8: break
        case .int4, .uint4, .uint1, .uint2, .uint3, .uint6, .int16, .uint16, .int32:
            guard target >= .iOS18 else { return .immediate(Self.immediateForm(c)) }
        default: return .immediate(Self.immediateForm(c))
        }
        let bytes: ByteView
        switch c.data {
        case .bytes(let view): bytes = view
        case .floats(let values): bytes = LittleEndian.bytes(of: values)
        case .ints(let values): bytes = LittleEndian.bytes(of: values)
        case .bools, .strings: return .immediate(c)
        }
        return .blob(c.type, offset: blobs.add(c.type.dtype, bytes, elements: c.type.count))
    }

    /// Inline values in the field MIL reads for their type: fp32 in `floats`, int32 in `ints`, bool in `bools`;
    /// fp16, 8-bit and sub-byte types stay packed in `bytes` (coremltools' milproto serializer does the same).
    static func immediateForm(_ c: MILConst) -> MILConst {
        guard case .bytes(let view) = c.data else { return c }
        let n = c.type.count
        switch c.type.dtype {
        case .fp32:
            return MILConst(c.type, .floats((0..<n).map { view.bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }))
        case .int32:
            return MILConst(c.type, .ints((0..<n).map { view.bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self) }))
        case .bool:
            return MILConst(c.type, .bools((0..<n).map { view.bytes[$0] != 0 }))
        default:
            return c
        }
    }

    /// Emits `const` and returns its variable.
    @discardableResult
    public func const(_ c: MILConst, name base: String) -> MILVar {
        let out = MILVar(name: name(base), type: c.type)
        operations.append(MILOperation(type: "const", inputs: [], outputs: [out],
                                       attributes: [("name", .immediate(.scalar(out.name))), ("val", value(c))]))
        return out
    }

    /// Emits an op; constant parameters become const ops named after the op and the parameter.
    public func op(_ type: String, name base: String, _ params: [(String, MILArg)], outputs: [MILTensorType],
                   outputNames: [String]? = nil, interface: Bool = false) -> [MILVar] {
        let opName = name(base)
        var inputs: [(String, [MILBinding])] = []
        for (param, arg) in params {
            switch arg {
            case .v(let v): inputs.append((param, [.name(v.name)]))
            case .list(let vs): inputs.append((param, vs.map { .name($0.name) }))
            case .c(let c): inputs.append((param, [.name(const(c, name: opName + "_" + param).name)]))
            }
        }
        let outs: [MILVar] = outputs.enumerated().map { i, t in
            let n = outputNames.map { $0[i] } ?? (outputs.count == 1 ? opName : "\(opName)_\(i)")
            if interface, n != opName, self.interface.remove(n) != nil { return MILVar(name: n, type: t) }
            return MILVar(name: n == opName ? n : name(n), type: t)
        }
        operations.append(MILOperation(type: type, inputs: inputs, outputs: outs,
                                       attributes: [("name", .immediate(.scalar(opName)))]))
        return outs
    }

    /// An op with one output.
    public func op1(_ type: String, name: String, _ params: [(String, MILArg)], output: MILTensorType,
                    outputName: String? = nil, interface: Bool = false) -> MILVar {
        op(type, name: name, params, outputs: [output], outputNames: outputName.map { [$0] }, interface: interface)[0]
    }

    /// A `constexpr_*` op: before iOS18 its parameters are attributes of the op, from iOS18 on they are inputs bound
    /// to values in place (as Core ML's own serializer writes them).
    public func constexpr(_ type: String, name base: String, _ params: [(String, MILConst)],
                          output: MILTensorType) -> MILVar {
        let opName = name(base)
        let out = MILVar(name: opName, type: output)
        var attributes: [(String, MILValue)] = [("name", .immediate(.scalar(opName)))]
        var inputs: [(String, [MILBinding])] = []
        for (param, c) in params {
            if target >= .iOS18 {
                inputs.append((param, [.value(value(c))]))
            } else {
                attributes.append((param, value(c)))
            }
        }
        operations.append(MILOperation(type: type, inputs: inputs, outputs: [out], attributes: attributes))
        return out
    }

    /// The number of ops emitted so far (to attribute ops to the ONNX node that emitted them).
    var count: Int { operations.count }

    /// Renames the output of the last op that produced `variable` (a graph output takes its interface name).
    func rename(_ variable: MILVar, to newName: String) -> MILVar? {
        for i in operations.indices.reversed() {
            if let k = operations[i].outputs.firstIndex(of: variable) {
                operations[i].outputs[k].name = newName
                return operations[i].outputs[k]
            }
        }
        return nil
    }
}
