import GraphIR
import Passes
import Ops
import Quantization

/// A value known before run time: an initializer, a Constant node's tensor (either possibly compressed), or a
/// small value shape inference computed.
struct ConstantValue {
    var tensor: Tensor?
    var known: TensorValue?

    private var decoded: TensorValue? {
        if let known { return known }
        guard let tensor else { return nil }
        return TensorValue.decode(tensor, limit: 1 << 20)
    }

    var ints: [Int]? {
        if let v = decoded, case .ints(let values) = v.elements { return values.map { Int(clamping: $0) } }
        // uint64 beyond Int64.max (TensorValue refuses those): clamped, as every integer is narrowed to int32 anyway.
        if let tensor, tensor.dataType == .uint64, tensor.encoding.isRaw, case .bytes(let view) = tensor.data,
           view.count == tensor.elementCount * 8 {
            return (0..<tensor.elementCount).map {
                Int(clamping: UInt64(littleEndian: view.bytes.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)))
            }
        }
        return nil
    }

    var floats: [Float]? { floats(limit: 1 << 20) }

    /// The float elements when there are at most `limit` (weights a lowering rearranges at export time may exceed
    /// the 1 Mi elements `floats` decodes).
    func floats(limit: Int) -> [Float]? {
        if let tensor, tensor.dataType == .float, tensor.encoding.isRaw, case .bytes(let view) = tensor.data,
           tensor.elementCount <= limit, view.count == tensor.elementCount * 4 {
            return (0..<tensor.elementCount).map { view.bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        }
        if let known, case .floats(let values) = known.elements { return values.map { Float($0) } }
        if let tensor, let v = TensorValue.decode(tensor, limit: limit), case .floats(let values) = v.elements { return values.map { Float($0) } }
        // Half, linear or palette storage: decoded to float32 once (Tensor.decodedToRaw), then read.
        guard let tensor, tensor.elementCount <= limit, !tensor.encoding.isRaw else { return nil }
        let decoded = tensor.decodedToRaw
        guard decoded.encoding.isRaw, case .bytes(let bytes) = decoded.data, bytes.count == tensor.elementCount * 4 else { return nil }
        return (0..<tensor.elementCount).map { bytes.bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
    }

    var bools: [Bool]? {
        guard let v = decoded, case .bools(let values) = v.elements else { return nil }
        return values
    }

    var dims: [Int]? { tensor?.dims ?? known?.dims }
}

/// The MIL element type an ONNX element type becomes: floats in the compute precision (float16 stays fp16), every
/// integer type int32 (Core ML computes integers in int32), bool stays bool.
func milType(_ t: DataType, compute: MILDataType) -> MILDataType? {
    switch t {
    case .float, .double: return compute
    case .float16: return .fp16
    case .int64, .int32, .int16, .int8, .uint8, .uint16, .uint32, .uint64: return .int32
    case .bool: return .bool
    default: return nil
    }
}

/// Everything the lowerings know about the model's values: static types, constants, and the MIL variables
/// emitted so far.
final class ValueTable {
    let compute: MILDataType
    let target: DeploymentTarget
    private var types: [String: ValueType]
    private var constants: [String: ConstantValue] = [:]
    private(set) var variables: [String: MILVar] = [:]
    private var uses: [String: Int] = [:]
    /// Ranged symbols (`--input-shape NAME=1,1..512`): when any, symbolic dims are unknown dims in MIL types (the
    /// exporter refuses the nodes whose lowering needs static dims, `FlexibleShapes`).
    var ranges: [String: DimRange] = [:]
    /// Shape inference's result, for the intervals of flexible dims.
    var inference: ShapeInferenceResult?
    /// The sizes a dim takes (its interval from the ranges; unknown without them).
    func interval(_ dim: Dim) -> DimInterval { inference?.interval(dim) ?? DimInterval(lower: nil, upper: nil) }
    /// Enumerated shapes as symbol sizes, paired by index (`--input-shape NAME=1,128|1,256`).
    var choices: [[String: Int]] = []
    /// Where a value was narrowed to fit Core ML (int64 constants beyond int32, float64 to float32).
    private(set) var notes: [String] = []
    private var noted: Set<String> = []

    init(types: [String: ValueType], compute: MILDataType, target: DeploymentTarget) {
        self.types = types
        self.compute = compute
        self.target = target
    }

    func addConstant(_ name: String, _ value: ConstantValue) { constants[name] = value }

    /// The constants and variables as they are, to restore after a subgraph (its values stay inside its block).
    struct Scope {
        fileprivate var constants: [String: ConstantValue]
        fileprivate var variables: [String: MILVar]
    }

    /// The current scope (see `Scope`).
    func scope() -> Scope { Scope(constants: constants, variables: variables) }

    /// Forgets what was added since `scope` was taken (constants materialized meanwhile are materialized again
    /// when read later; const deduplication merges them).
    func restore(_ scope: Scope) {
        constants = scope.constants
        variables = scope.variables
    }
    func constant(_ name: String) -> ConstantValue? { constants[name] }
    func bind(_ name: String, _ v: MILVar) { variables[name] = v }
    func use(_ name: String) { uses[name, default: 0] += 1 }
    func isUsed(_ name: String) -> Bool { (uses[name] ?? 0) > 0 }
    func setType(_ name: String, _ t: ValueType) { types[name] = t }
    /// The inferred type of a value (symbols included).
    func inferredType(_ name: String) -> ValueType? { types[name] }

    func note(_ key: String, _ text: String) {
        if noted.insert(key).inserted { notes.append(text) }
    }

    /// The static MIL type of a value.
    func type(of name: String) throws(LoweringRefusal) -> MILTensorType {
        if let v = variables[name] { return v.type }
        if let c = constants[name], let tensor = c.tensor {
            guard let dtype = milType(tensor.dataType, compute: compute) else {
                throw LoweringRefusal("'\(name)' is \(tensor.dataType.name), which Core ML has no type for")
            }
            return MILTensorType(dtype, tensor.dims)
        }
        guard case .tensor(let t)? = types[name] else { throw LoweringRefusal("the type of '\(name)' is not known", unknown: true) }
        guard let element = t.elementType else { throw LoweringRefusal("the element type of '\(name)' is not known", unknown: true) }
        guard let dtype = milType(element, compute: compute) else {
            throw LoweringRefusal("'\(name)' is \(element.name), which Core ML has no type for")
        }
        guard let shape = t.shape else { throw LoweringRefusal("the rank of '\(name)' is not known", unknown: true) }
        var dims: [Int] = []
        for d in shape {
            guard case .value(let v) = d else {
                if !ranges.isEmpty {
                    dims.append(MILTensorType.unknownDim)
                    continue
                }
                throw LoweringRefusal("'\(name)' has dynamic dims \(t.shapeDescription); pin dynamic inputs with --input-shape (a dim that depends on the data, as NonZero's output size, cannot be pinned: Core ML programs here have static shapes)", unknown: true)
            }
            dims.append(v)
        }
        return MILTensorType(dtype, dims)
    }

    /// The MIL variable of a value; a constant is emitted on first use.
    func variable(_ name: String, builder: MILBuilder) throws(LoweringRefusal) -> MILVar {
        if let v = variables[name] { return v }
        guard let c = constants[name] else { throw LoweringRefusal("'\(name)' has no value yet", unknown: true) }
        // At the top level even inside a loop body or a branch: the variable is cached for every later reader.
        let v = try builder.topLevel { () throws(LoweringRefusal) in try materialize(name, c, builder: builder) }
        variables[name] = v
        return v
    }

    private func materialize(_ name: String, _ c: ConstantValue, builder: MILBuilder) throws(LoweringRefusal) -> MILVar {
        let type = try self.type(of: name)
        if let tensor = c.tensor, case .bytes(let view) = tensor.data {
            switch tensor.encoding {
            case .raw where tensor.dataType == .float:
                if compute == .fp32 { return builder.const(MILConst(type, .bytes(view)), name: name) }
                let out = OwnedBuffer(uninitializedCount: tensor.elementCount * 2)
                let stats = Float16Codec.encode(view, into: out)
                if stats.clamped > 0 {
                    note("fp16:" + name, "'\(name)': \(stats.clamped) values beyond float16's range were clamped to ±65504 (fp16 compute)")
                }
                return builder.const(MILConst(type, .bytes(out.view)), name: name)
            case .raw where tensor.dataType == .float16:
                return builder.const(MILConst(type, .bytes(view)), name: name)
            case .float16:
                let stored = builder.const(MILConst(type.with(dtype: .fp16), .bytes(view)), name: name + "_fp16")
                if compute == .fp16 { return stored }
                return builder.op1("cast", name: name, [("x", .v(stored)), ("dtype", .c(.scalar("fp32")))], output: type)
            case .linear(let q):
                return try CompressedWeights.emit(name: name, tensor: tensor, values: view, q, type: type, builder: builder)
            case .palette(let p):
                return try CompressedWeights.emit(name: name, tensor: tensor, values: view, p, type: type, builder: builder)
            default:
                break
            }
        }
        switch type.dtype {
        case .int32:
            guard let ints = c.ints else { throw LoweringRefusal("constant '\(name)' cannot be read as integers") }
            if ints.contains(where: { $0 < Int(Int32.min) || $0 > Int(Int32.max) }) {
                note("narrow:" + name, "'\(name)': int64 values beyond int32 were clamped (Core ML computes integers in int32)")
            }
            return builder.const(MILConst(type, .ints(ints.map { Int32(clamping: $0) })), name: name)
        case .bool:
            guard let bools = c.bools else { throw LoweringRefusal("constant '\(name)' cannot be read as booleans") }
            return builder.const(MILConst(type, .bools(bools)), name: name)
        case .fp16, .fp32:
            guard let floats = c.floats else { throw LoweringRefusal("constant '\(name)' cannot be read as floats") }
            return builder.const(.floats(floats, type.dtype, shape: type.shape), name: name)
        default:
            throw LoweringRefusal("constant '\(name)' of type \(type.dtype) cannot be written")
        }
    }
}
