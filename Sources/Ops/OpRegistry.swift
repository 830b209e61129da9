import GraphIR

/// Every op the passes know, keyed by (domain, op type), each with the opset versions its definition changed at.
public struct OpRegistry: Sendable {
    /// One registered op type: its schema and the operator that infers it.
    public struct Entry: Sendable {
        /// The op type's schema.
        public var schema: OpSchema
        /// The operator that infers (and may fold) nodes of this op type.
        public var implementation: any Operator.Type
    }

    /// The outcome of looking up a node's op.
    public enum Lookup {
        /// The op and the schema version in effect for the model's opset.
        case found(any Operator.Type, since: Int)
        /// The op exists, but only from a later opset than the model imports.
        case tooNew(firstVersion: Int)
        /// No op of that domain and type is registered.
        case unknown
    }

    private var entries: [String: Entry] = [:]

    /// A registry of every schema of `operators`; a later operator's schema replaces an earlier one for the same op.
    public init(_ operators: [any Operator.Type]) {
        for op in operators {
            for schema in op.schemas { entries[Self.key(schema.domain, schema.opType)] = Entry(schema: schema, implementation: op) }
        }
    }

    /// The ops of the default ONNX domain this project infers (docs/SHAPES.md lists them).
    public static let standard = OpRegistry([
        UnaryOp.self, UnaryPredicateOp.self, DropoutOp.self, BinaryOp.self, VariadicOp.self, WhereOp.self,
        ReshapeOp.self, FlattenOp.self, SqueezeOp.self, UnsqueezeOp.self, TransposeOp.self, ConcatOp.self, SplitOp.self,
        SliceOp.self, GatherOp.self, GatherElementsOp.self, GatherNDOp.self, ScatterOp.self, ExpandOp.self, TileOp.self,
        PadOp.self, ShapeOp.self, SizeOp.self, CastOp.self, ConstantOp.self, ConstantOfShapeOp.self, RangeOp.self,
        EyeLikeOp.self, RandomOp.self, WindowOp.self, MatMulOp.self, GemmOp.self, EinsumOp.self, ConvOp.self,
        ConvTransposeOp.self, PoolOp.self, GlobalPoolOp.self, RoiPoolOp.self, MaxUnpoolOp.self, SpaceDepthOp.self,
        ReduceOp.self, ArgReduceOp.self, TopKOp.self, LayerNormalizationOp.self, BatchNormalizationOp.self,
        RecurrentOp.self, ResizeOp.self, QuantizeOp.self, DataDependentOp.self, OneHotOp.self, IfOp.self, LoopOp.self,
        ScanOp.self, SequenceOp.self, OptionalOp.self, GeometryOp.self,
    ])

    private static func key(_ domain: String, _ opType: String) -> String {
        (domain == "ai.onnx" ? "" : domain) + "\u{0}" + opType
    }

    /// The op for `opType` in `domain` ("ai.onnx" counts as "") and the schema version in effect at `opset`.
    public func lookup(domain: String, opType: String, opset: Int) -> Lookup {
        guard let entry = entries[Self.key(domain, opType)] else { return .unknown }
        guard let since = entry.schema.versions.last(where: { $0 <= opset }) else {
            return .tooNew(firstVersion: entry.schema.versions.first ?? 1)
        }
        return .found(entry.implementation, since: since)
    }

    /// Every covered op with its versions, sorted by op type.
    public var schemas: [OpSchema] {
        entries.values.map(\.schema).sorted { ($0.domain, $0.opType) < ($1.domain, $1.opType) }
    }
}
