import GraphIR
import Ops
import Passes
import Testing

/// Every registered op, fed malformed attributes and inputs: inference and folding must answer (a type, or an
/// unresolved node with a reason), never trap.
@Suite struct HostileNodeTests {
    static let attributeNames = ["axis", "axes", "perm", "kernel_shape", "strides", "pads", "dilations", "group", "split",
                                 "starts", "ends", "shape", "k", "keepdims", "blocksize", "num_outputs", "hidden_size",
                                 "sample_size", "batch_dims", "start", "end", "transA", "transB", "num_scan_inputs",
                                 "scan_input_axes", "scan_output_axes", "output_shape", "output_padding", "pooled_shape",
                                 "output_height", "output_width", "noop_with_empty_axes", "layout", "allowzero", "to", "dtype",
                                 "output_dtype", "stash_type", "paddings", "ceil_mode", "new_axis", "depth"]

    /// Attribute sets: none, huge, negative, empty lists, wrong types.
    static func variants() -> [[Attribute]] {
        let huge: [Int64] = [Int64.max, Int64.min, -1, 0, 1 << 40]
        return [
            [],
            attributeNames.map { Attribute(name: $0, value: .int(Int64.max)) },
            attributeNames.map { Attribute(name: $0, value: .int(Int64.min)) },
            attributeNames.map { Attribute(name: $0, value: .int(-3)) },
            attributeNames.map { Attribute(name: $0, value: .ints(huge)) },
            attributeNames.map { Attribute(name: $0, value: .ints([])) },
            attributeNames.map { Attribute(name: $0, value: .ints([-1, -1, -1, -1, -1, -1, -1, -1])) },
            attributeNames.map { Attribute(name: $0, value: .string(Array("SAME_UPPER".utf8))) },
            attributeNames.map { Attribute(name: $0, value: .float(.nan)) } + [Attribute(name: "equation", value: .string(Array("...,->".utf8)))],
            [Attribute(name: "equation", value: .string(Array("ab,bc->ca...".utf8))), Attribute(name: "mode", value: .string([0xFF])),
             Attribute(name: "auto_pad", value: .string(Array("VALID".utf8))), Attribute(name: "direction", value: .string(Array("up".utf8)))],
        ]
    }

    static func model(op: String, attributes: [Attribute], inputs: Int, outputs: Int, opset: Int64) -> Model {
        let extremes: [Int64] = [Int64.max, Int64.min, -1, 0]
        var initializers = [
            Tensor(name: "c_ints", dataType: .int64, dims: [4], data: .bytes(LittleEndian.bytes(of: extremes))),
            Tensor(name: "c_scalar", dataType: .int64, dims: [], data: .bytes(LittleEndian.bytes(of: [Int64.max]))),
            Tensor(name: "c_floats", dataType: .float, dims: [2, 2], data: .bytes(LittleEndian.bytes(of: [Float.nan, .infinity, -0.0, 1e38]))),
            Tensor(name: "c_bool", dataType: .bool, dims: [], data: .bytes(ByteView(copying: [1]))),
        ]
        initializers.append(Tensor(name: "c_empty", dataType: .int64, dims: [0], data: .bytes(ByteView.empty)))
        let graphInputs = [
            ValueInfo(name: "x4", type: tensorType(.float, [.symbol("N"), .value(3), .unknown, .value(1)])),
            ValueInfo(name: "x0", type: tensorType(.float, [])),
            ValueInfo(name: "xr", type: tensorType(.float, nil)),
            ValueInfo(name: "xs", type: tensorType(.int64, [.value(Int(Int32.max))])),
        ]
        let pool = ["x4", "c_ints", "x0", "c_floats", "xr", "c_scalar", "xs", "c_bool", "c_empty"]
        let ins = (0..<inputs).map { pool[$0 % pool.count] }
        let outs = (0..<outputs).map { "y\($0)" }
        let node = Node(name: "hostile", opType: op, inputs: ins, outputs: outs, attributes: attributes)
        let graph = Graph(name: "hostile", inputs: graphInputs, outputs: outs.map { ValueInfo(name: $0, type: .unknown) },
                          initializers: initializers, nodes: [node])
        return Model(irVersion: 10, opsetImports: [OpsetImport(domain: "", version: opset)], graph: graph)
    }

    @Test("every op survives malformed attributes and inputs", arguments: OpRegistry.standard.schemas.map(\.opType))
    func survives(op: String) throws {
        let schema = try #require(OpRegistry.standard.schemas.first { $0.opType == op })
        for opset in Set([schema.versions.first!, schema.versions.last!]) {
            for attributes in Self.variants() {
                for (inputs, outputs) in [(2, 3), (4, 2), (9, 3)] {
                    let m = Self.model(op: op, attributes: attributes, inputs: inputs, outputs: outputs, opset: Int64(opset))
                    if inputs == 9 {
                        _ = try Pipeline.foldAndInfer.run(m, context: PassContext())
                    } else {
                        let result = try ShapeInference.run(m)
                        #expect(result.values.count >= 9)
                    }
                }
            }
        }
    }
}
