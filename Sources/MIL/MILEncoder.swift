import GraphIR

/// One feature of the model's interface (a function input or output) as Core ML describes it.
public struct FeatureDescription: Sendable {
    /// The feature's name (a MIL identifier).
    public var name: String
    /// Its type.
    public var type: MILTensorType
    /// Shown in Xcode.
    public var shortDescription: String
    /// The sizes an input's unknown dims take (FeatureTypes.proto `ArrayFeatureType.shapeRange`): one
    /// `lower...upper` per dim (a static dim is `n...n`), and the default shape written as `shape`. nil for static
    /// features; an output with unknown dims is written without a shape, as coremltools writes it.
    public var shapeRange: (defaultShape: [Int], bounds: [ClosedRange<Int>])?
    /// The shapes an input takes (`ArrayFeatureType.enumeratedShapes`); the first is written as `shape`, the default.
    public var enumeratedShapes: [[Int]]?

    /// A feature `name` of `type`.
    public init(name: String, type: MILTensorType, shortDescription: String = "") {
        self.name = name
        self.type = type
        self.shortDescription = shortDescription
    }
}

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

/// One argument binding of an op input as written: a named variable, or a value in place.
enum MILBinding {
    case name(String)
    case value(MILValue)
}

/// One MIL operation as it is written.
struct EncodedOperation {
    var type: String
    var inputs: [(String, [MILBinding])]
    var outputs: [MILVar]
    var attributes: [(String, MILValue)]
}

/// One function as it is written.
struct EncodedFunction {
    var name: String
    var inputs: [FeatureDescription]
    var outputs: [FeatureDescription]
    var operations: [EncodedOperation]
    var blockOutputs: [String]
}

/// Writes Core ML's `Model` message holding an ML Program. Field numbers are Core ML's (proto/coreml.proto cites
/// them); maps are written as repeated entries in a fixed order, so the bytes are deterministic.
struct MILEncoder {
    var specificationVersion: Int
    var opset: String
    var functions: [EncodedFunction]
    /// Set for a multifunction model: the description lists `functions` and names the default (Model.proto
    /// ModelDescription functions = 20, defaultFunctionName = 21; no top-level input or output, as
    /// coremltools' `save_multifunction` writes it).
    var defaultFunction: String?
    var metadata: [(String, String)]
    var shortDescription: String
    var author: String
    var license: String
    var versionString: String
    static let weightFile = "@model_path/weights/weight.bin"

    func encode() -> [UInt8] {
        let p = ProtoBuilder()
        p.int32(1, Int32(specificationVersion))
        p.message(2) { d in
            if let defaultFunction {
                for function in functions {
                    d.message(20) { f in
                        f.string(1, function.name)
                        for input in function.inputs { f.message(2) { feature(input, into: $0) } }
                        for output in function.outputs { f.message(3) { feature(output, into: $0) } }
                    }
                }
                d.string(21, defaultFunction)
            } else {
                for f in functions[0].inputs { d.message(1) { feature(f, into: $0) } }
                for f in functions[0].outputs { d.message(10) { feature(f, into: $0) } }
            }
            d.message(100) { m in
                m.string(1, shortDescription)
                m.string(2, versionString)
                m.string(3, author)
                m.string(4, license)
                for (k, v) in metadata {
                    m.message(100) { e in
                        e.string(1, k)
                        e.string(2, v)
                    }
                }
            }
        }
        p.message(502) { program in
            program.int64(1, 1)
            for encoded in functions {
                program.message(2) { entry in
                    entry.string(1, encoded.name)
                    entry.message(2) { function in
                        for f in encoded.inputs {
                            function.message(1) { named(f.name, f.type, into: $0) }
                        }
                        function.string(2, opset)
                        function.message(3) { spec in
                            spec.string(1, opset)
                            spec.message(2) { block in
                                block.repeatedStrings(2, encoded.blockOutputs)
                                for op in encoded.operations { block.message(3) { operation(op, into: $0) } }
                            }
                        }
                    }
                }
            }
        }
        return p.data
    }

    private func feature(_ f: FeatureDescription, into p: ProtoBuilder) {
        p.string(1, f.name)
        p.string(2, f.shortDescription)
        p.message(3) { type in
            type.message(5) { array in
                // FeatureTypes.proto ArrayFeatureType: shape = 1, dataType = 2, shapeRange = 31 (SizeRange:
                // lowerBound = 1, upperBound = 2).
                if let shapes = f.enumeratedShapes {
                    array.packedVarints(1, shapes[0].map(Int64.init))
                } else if let range = f.shapeRange {
                    array.packedVarints(1, range.defaultShape.map(Int64.init))
                } else if f.type.isStatic {
                    array.packedVarints(1, f.type.shape.map(Int64.init))
                }
                array.int64(2, Int64(Self.arrayDataType(f.type.dtype)))
                // enumeratedShapes = 21: EnumeratedShapes { repeated Shape shapes = 1 }, Shape { repeated int64 shape = 1 }.
                if let shapes = f.enumeratedShapes {
                    array.message(21) { list in
                        for shape in shapes { list.message(1) { $0.packedVarints(1, shape.map(Int64.init)) } }
                    }
                } else if let range = f.shapeRange {
                    array.message(31) { ranges in
                        for b in range.bounds {
                            ranges.message(1) { size in
                                size.uint64(1, UInt64(b.lowerBound))
                                size.int64(2, Int64(b.upperBound))
                            }
                        }
                    }
                }
            }
        }
    }

    /// Core ML's `ArrayFeatureType.ArrayDataType` for an interface dtype.
    static func arrayDataType(_ t: MILDataType) -> Int {
        switch t {
        case .fp16: return 65552
        case .int32: return 131104
        case .int8: return 131080
        default: return 65568  // FLOAT32
        }
    }

    private func named(_ name: String, _ type: MILTensorType, into p: ProtoBuilder) {
        p.string(1, name)
        p.message(2) { valueType($0, type) }
    }

    private func valueType(_ p: ProtoBuilder, _ t: MILTensorType) {
        p.message(1) { tensor in
            tensor.int64(1, Int64(t.dtype.rawValue))
            if t.rank > 0 { tensor.int64(2, Int64(t.rank)) }
            // MIL.proto Dimension: constant = 1 (size = 1), unknown = 2 (variadic = 1, false: an empty message).
            for d in t.shape {
                if d == MILTensorType.unknownDim {
                    tensor.message(3) { dim in dim.message(2) { _ in } }
                } else {
                    tensor.message(3) { dim in dim.message(1) { $0.uint64(1, UInt64(d)) } }
                }
            }
        }
    }

    private func operation(_ op: EncodedOperation, into p: ProtoBuilder) {
        p.string(1, op.type)
        for (name, bindings) in op.inputs {
            p.message(2) { entry in
                entry.string(1, name)
                entry.message(2) { argument in
                    for b in bindings {
                        argument.message(1) { binding in
                            switch b {
                            case .name(let n): binding.string(1, n)
                            case .value(let v): binding.message(2) { value(v, into: $0) }
                            }
                        }
                    }
                }
            }
        }
        for out in op.outputs { p.message(3) { named(out.name, out.type, into: $0) } }
        for (name, v) in op.attributes {
            p.message(5) { entry in
                entry.string(1, name)
                entry.message(2) { value(v, into: $0) }
            }
        }
    }

    private func value(_ v: MILValue, into p: ProtoBuilder) {
        p.message(2) { valueType($0, v.type) }
        switch v {
        case .blob(_, let offset):
            p.message(5) { file in
                file.string(1, Self.weightFile)
                file.uint64(2, UInt64(offset))
            }
        case .immediate(let c):
            p.message(3) { immediate in
                immediate.message(1) { tensor in
                    switch c.data {
                    case .floats(let values): tensor.message(1) { $0.packedFloats(1, values) }
                    case .ints(let values): tensor.message(2) { $0.packedVarints(1, values.map(Int64.init)) }
                    case .bools(let values): tensor.message(3) { $0.packedVarints(1, values.map { $0 ? 1 : 0 }) }
                    case .strings(let values): tensor.message(4) { $0.repeatedStrings(1, values) }
                    case .bytes(let view): tensor.message(7) { $0.bytes(1, view.array) }
                    }
                }
            }
        }
    }
}
