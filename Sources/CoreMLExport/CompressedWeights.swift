import GraphIR
import Quantization

/// Linear-quantized weights kept compressed in the ML Program:
/// - int8/uint8 per tensor or per channel → `constexpr_affine_dequantize` (iOS16+): (q − zero point) · scale along
///   `axis`; a symmetric tensor gets a zero point of zeros, as the op requires one;
/// - int4/uint4, or any per-block encoding → `constexpr_blockwise_shift_scale` (iOS18+): scale · (q − offset),
///   with scale and offset shaped like the data with each dim divided by its block (from iOS18 every linear
///   encoding takes this op, the one Core ML documents for new models).
/// The stored integers and zero points are written as they are in the package (bit for bit); scales and tables
/// take the compute precision (fp16 ones widened exactly for fp32 compute, fp32 ones rounded to fp16 for fp16
/// compute), so the constexpr produces the compute type and no run-time cast follows a weight.
/// - palettized tensors (`lut`) → `constexpr_lut_to_dense`: from iOS18 indices as uint1/2/3/4/6/8 shaped like the
///   weight (the package's LSB-first packing is MILBlob's), the table as [G, 1, …, 2^N, 1] (G tables along axis 0);
///   on iOS16/17 the iOS16 form for one table of 1, 2, 4, 6 or 8 bits (packed uint8 indices, [2^N] table, shape).
/// Which target writes which encoding is `CoreMLWeightTarget`'s table (Quantization), shared with conversion.
enum CompressedWeights {
    /// The lowest target that holds an encoding (CoreMLWeightTarget's table, shared with conversion and the audit);
    /// iOS18 when none does (the check then says why).
    static func minimumTarget(_ encoding: WeightEncoding, dims: [Int]) -> DeploymentTarget {
        DeploymentTarget.iOS(CoreMLWeightTarget.minimumSpecificationVersion(encoding, dims: dims) ?? 9)
    }

    /// Refuses an encoding the target cannot write, with the rule `coreml-encoding` and the way out.
    static func check(_ name: String, _ tensor: Tensor, target: DeploymentTarget) throws(LoweringRefusal) {
        let weights = CoreMLWeightTarget(specificationVersion: target.specificationVersion)
        guard let problem = weights.problem(tensor.encoding, dims: tensor.dims) else { return }
        let needed = CoreMLWeightTarget.minimumSpecificationVersion(tensor.encoding, dims: tensor.dims)
        let fix = needed.map { "use --deployment-target \(DeploymentTarget.iOS($0)), " } ?? ""
        throw LoweringRefusal("'\(name)' is stored as \(describe(tensor.encoding)), which \(target) cannot write (\(problem)); "
                              + "\(fix)re-convert with --for coreml (or to NAME.mlpackage directly), or export with --dequantize",
                              needs: needed.map(DeploymentTarget.iOS), rule: CoreMLLimits.encoding.id)
    }

    static func describe(_ e: WeightEncoding) -> String {
        switch e {
        case .linear(let q): return "\(q.storage.name) \(q.granularity)" + (q.blockSize.map { " \($0)" } ?? "")
        case .palette(let p): return "a \(p.bits)-bit table" + (p.groupSize.map { " per \($0) slices" } ?? "")
        default: return e.name
        }
    }

    static func milStorage(_ t: DataType) -> MILDataType? {
        switch t {
        case .int8: return .int8
        case .uint8: return .uint8
        case .int4: return .int4
        case .uint4: return .uint4
        default: return nil
        }
    }

    static func check(_ name: String, _ tensor: Tensor, _ q: LinearQuantization, target: DeploymentTarget) throws(LoweringRefusal) {
        var t = tensor
        t.encoding = .linear(q)
        try check(name, t, target: target)
        guard q.scale.dataType == .float || q.scale.dataType == .float16 else {
            throw LoweringRefusal("'\(name)' has \(q.scale.dataType.name) scales; Core ML takes fp16 or fp32", rule: CoreMLLimits.encoding.id)
        }
    }

    static func emit(name: String, tensor: Tensor, values: ByteView, _ q: LinearQuantization, type: MILTensorType,
                     builder: MILBuilder) throws(LoweringRefusal) -> MILVar {
        try check(name, tensor, q, target: builder.target)
        let storage = milStorage(q.storage)!
        guard case .bytes(let storedScales) = q.scale.data else { throw LoweringRefusal("'\(name)': scales are not stored as bytes") }
        var scaleType: MILDataType = q.scale.dataType == .float16 ? .fp16 : .fp32
        var scaleBytes = storedScales
        if scaleType == .fp16, type.dtype == .fp32 {
            // fp32 compute: widen fp16 scales (exact), so the weights are rebuilt in fp32 as the package decodes them,
            // not rounded to fp16 by the constexpr's output type.
            let wide = OwnedBuffer(uninitializedCount: q.scale.elementCount * 4)
            Float16Codec.decode(scaleBytes, into: wide)
            scaleBytes = wide.view
            scaleType = .fp32
        } else if scaleType == .fp32, type.dtype == .fp16 {
            // fp16 compute: the constexpr produces fp16 directly (scales rounded to fp16 once here), so no run-time
            // cast follows each weight.
            let narrow = OwnedBuffer(uninitializedCount: q.scale.elementCount * 2)
            _ = Float16Codec.encode(scaleBytes, into: narrow)
            scaleBytes = narrow.view
            scaleType = .fp16
        }
        let rank = tensor.dims.count
        // 2, 3, 5, 6 and 7-bit packings become the storage type's layout (int4/uint4 or int8/uint8).
        let stored = q.bits == nil ? values : (LinearCodec.storageLayout(tensor) ?? values)
        let data = MILConst(MILTensorType(storage, tensor.dims), .bytes(stored))
        let result: MILVar
        if builder.target < .iOS18 {
            // constexpr_affine_dequantize: scale and zero point are scalars or vectors along `axis`.
            let axis = q.axis ?? 0
            let groups = q.axis.map { tensor.dims[$0] }
            let shape = groups.map { [$0] } ?? []
            let zero: MILConst
            if let zp = q.zeroPoint, case .bytes(let zb) = zp.data {
                zero = MILConst(MILTensorType(storage, shape), .bytes(zb))
            } else {
                zero = MILConst(MILTensorType(storage, shape), .bytes(ByteView(copying: [UInt8](repeating: 0, count: groups ?? 1))))
            }
            result = builder.constexpr("constexpr_affine_dequantize", name: name + "_dequantized", [
                ("quantized_data", data), ("zero_point", zero), ("scale", MILConst(MILTensorType(scaleType, shape), .bytes(scaleBytes))),
                ("axis", .scalar(Int32(axis))),
            ], output: MILTensorType(scaleType, tensor.dims))
        } else {
            var scaleShape = [Int](repeating: 1, count: rank)
            if let a = q.axis {
                scaleShape[a] = q.blockSize.map { tensor.dims[a] / $0 } ?? tensor.dims[a]
                if q.blockSize != nil {
                    for i in 0..<rank where i != a { scaleShape[i] = tensor.dims[i] }
                }
            }
            var params: [(String, MILConst)] = [("data", data), ("scale", MILConst(MILTensorType(scaleType, scaleShape), .bytes(scaleBytes)))]
            if let zp = q.zeroPoint, case .bytes(let zb) = zp.data {
                params.append(("offset", MILConst(MILTensorType(storage, scaleShape), .bytes(zb))))
            }
            result = builder.constexpr("constexpr_blockwise_shift_scale", name: name + "_dequantized", params,
                                       output: MILTensorType(scaleType, tensor.dims))
        }
        if result.type.dtype == type.dtype { return result }
        return builder.op1("cast", name: name, [("x", .v(result)), ("dtype", .c(.scalar(type.dtype.description)))], output: type)
    }

    /// MIL's index type for a table of 2^bits entries (constexpr_lut_to_dense, iOS18).
    static func indexType(bits: Int) -> MILDataType? {
        [1: .uint1, 2: .uint2, 3: .uint3, 4: .uint4, 6: .uint6, 8: .uint8][bits]
    }

    static func check(_ name: String, _ tensor: Tensor, _ p: PaletteQuantization, target: DeploymentTarget) throws(LoweringRefusal) {
        var t = tensor
        t.encoding = .palette(p)
        try check(name, t, target: target)
        guard p.lut.dataType == .float || p.lut.dataType == .float16 else {
            throw LoweringRefusal("'\(name)' has a \(p.lut.dataType.name) table; Core ML takes fp16 or fp32", rule: CoreMLLimits.encoding.id)
        }
    }

    static func emit(name: String, tensor: Tensor, values: ByteView, _ p: PaletteQuantization, type: MILTensorType,
                     builder: MILBuilder) throws(LoweringRefusal) -> MILVar {
        try check(name, tensor, p, target: builder.target)
        guard case .bytes(let stored) = p.lut.data, !tensor.dims.isEmpty else {
            throw LoweringRefusal("'\(name)': the table is not stored as bytes, or the tensor is a scalar")
        }
        var lutType: MILDataType = p.lut.dataType == .float16 ? .fp16 : .fp32
        var lutBytes = stored
        if lutType == .fp16, type.dtype == .fp32 {
            // fp32 compute: widen the table (exact) so the weights are what the package decodes.
            let wide = OwnedBuffer(uninitializedCount: p.lut.elementCount * 4)
            Float16Codec.decode(lutBytes, into: wide)
            lutBytes = wide.view
            lutType = .fp32
        } else if lutType == .fp32, type.dtype == .fp16 {
            // fp16 compute: the table in fp16, so the constexpr produces the compute type (no run-time cast).
            let narrow = OwnedBuffer(uninitializedCount: p.lut.elementCount * 2)
            _ = Float16Codec.encode(lutBytes, into: narrow)
            lutBytes = narrow.view
            lutType = .fp16
        }
        if builder.target < .iOS18 {
            // iOS16 form (iOS16/constexpr_ops.py): one table [2^N], the indices as the package's LSB-first bit
            // stream in a uint8 vector of ceil(N · count / 8) bytes, and the shape as uint32.
            let result = builder.constexpr("constexpr_lut_to_dense", name: name + "_dequantized", [
                ("indices", MILConst(MILTensorType(.uint8, [values.count]), .bytes(values))),
                ("lut", MILConst(MILTensorType(lutType, [1 << p.bits]), .bytes(lutBytes))),
                ("shape", MILConst(MILTensorType(.uint32, [tensor.dims.count]), .bytes(LittleEndian.bytes(of: tensor.dims.map { UInt32($0) })))),
            ], output: MILTensorType(lutType, tensor.dims))
            if result.type.dtype == type.dtype { return result }
            return builder.op1("cast", name: name, [("x", .v(result)), ("dtype", .c(.scalar(type.dtype.description)))], output: type)
        }
        var lutShape = [Int](repeating: 1, count: tensor.dims.count + 2)
        lutShape[0] = p.groupSize.map { tensor.dims[0] / $0 } ?? 1
        lutShape[tensor.dims.count] = 1 << p.bits
        let indices = MILConst(MILTensorType(indexType(bits: p.bits)!, tensor.dims), .bytes(values))
        let result = builder.constexpr("constexpr_lut_to_dense", name: name + "_dequantized", [
            ("indices", indices), ("lut", MILConst(MILTensorType(lutType, lutShape), .bytes(lutBytes))),
        ], output: MILTensorType(lutType, tensor.dims))
        if result.type.dtype == type.dtype { return result }
        return builder.op1("cast", name: name, [("x", .v(result)), ("dtype", .c(.scalar(type.dtype.description)))], output: type)
    }
}
