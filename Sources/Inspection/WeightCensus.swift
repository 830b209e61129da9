import GraphIR

/// One weight tensor of a model and where it sits.
public struct WeightRecord: Sendable {
    /// Where the weight is held: a dense initializer, a sparse initializer, or a Constant node's value.
    public enum Kind: Sendable { case initializer, sparseInitializer, constantNode }
    /// The tensor's name (may be empty for a Constant node's value).
    public var name: String
    /// The element type the graph sees (the values' type for a sparse tensor).
    public var dataType: DataType
    /// The tensor's dims (the dense shape for a sparse tensor).
    public var dims: [Int]
    /// Stored elements (the values of a sparse tensor).
    public var elementCount: Int
    /// Stored bytes (values plus indices for a sparse tensor).
    public var byteCount: Int
    /// Where the bytes are: embedded in the model, in an external data file, or already written to weights.bin.
    public var location: TensorLocation
    /// How the bytes encode the values: raw, float16, linear or lut.
    public var encoding: WeightEncoding
    /// Which kind of holder the weight came from.
    public var kind: Kind
}

extension Model {
    /// Every weight held in the model: dense and sparse initializers and Constant node values, in the main graph and
    /// in all subgraphs (function bodies are templates and are not counted).
    public var weightRecords: [WeightRecord] {
        var records: [WeightRecord] = []
        func dense(_ t: Tensor, _ kind: WeightRecord.Kind) -> WeightRecord {
            WeightRecord(name: t.name, dataType: t.dataType, dims: t.dims, elementCount: t.elementCount,
                         byteCount: t.byteCount, location: t.location, encoding: t.encoding, kind: kind)
        }
        func sparse(_ s: SparseTensor, _ kind: WeightRecord.Kind) -> WeightRecord {
            WeightRecord(name: s.name, dataType: s.values.dataType, dims: s.dims, elementCount: s.values.elementCount,
                         byteCount: s.values.byteCount + s.indices.byteCount, location: s.values.location,
                         encoding: s.values.encoding, kind: kind)
        }
        graph.forEachGraph { g, _ in
            records += g.initializers.map { dense($0, .initializer) }
            records += g.sparseInitializers.map { sparse($0, .sparseInitializer) }
            for node in g.nodes where node.isConstant {
                if let t = node.constantTensor { records.append(dense(t, .constantNode)) }
                if let s = node.constantSparseTensor { records.append(sparse(s, .constantNode)) }
            }
        }
        return records
    }
}
