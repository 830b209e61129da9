import GraphIR

extension ModelSummary {
    /// How many of the largest weight tensors the summary lists.
    public static let largestTensorLimit = 10

    /// Summarises `model`, naming it `file`; `package` and `shapes` are left nil for the caller to add.
    public init(model: Model, file: String) {
        let graph = model.graph
        var opCounts: [String: [String: Int]] = [:]
        var total = 0
        var subgraphs = -1  // the main graph is not a subgraph
        var initializers = 0
        graph.forEachGraph { g, _ in
            subgraphs += 1
            total += g.nodes.count
            initializers += g.initializers.count
            for node in g.nodes { opCounts[node.domain, default: [:]][node.opType, default: 0] += 1 }
        }

        let weights = model.weightRecords
        var byDtype: [String: DtypeTotal] = [:]
        for w in weights {
            let name = w.dataType.name
            var entry = byDtype[name] ?? DtypeTotal(dtype: name, tensors: 0, count: 0, bytes: 0)
            entry.tensors += 1
            entry.count += w.elementCount
            entry.bytes += w.byteCount
            byDtype[name] = entry
        }
        var external: [String: ExternalFile] = [:]
        for w in weights {
            guard case .external(let location, _, let length) = w.location else { continue }
            var entry = external[location] ?? ExternalFile(location: location, tensors: 0, bytes: 0)
            entry.tensors += 1
            entry.bytes += length
            external[location] = entry
        }
        let largest = weights.sorted { a, b in a.byteCount != b.byteCount ? a.byteCount > b.byteCount : a.name < b.name }
            .prefix(Self.largestTensorLimit)
            .map { TensorEntry(name: $0.name, dtype: $0.dataType.name, shape: $0.dims, bytes: $0.byteCount,
                               external: $0.location.isExternal, encoding: $0.encoding.name) }

        self.init(
            file: file,
            irVersion: model.irVersion,
            producer: Producer(name: model.producerName, version: model.producerVersion),
            domain: model.domain,
            modelVersion: model.modelVersion,
            opsetImports: model.opsetImports.sorted { $0.domain < $1.domain }.map { Opset(domain: $0.domain, version: $0.version) },
            inputs: graph.runtimeInputs.map { Value(name: $0.name, type: $0.type) },
            outputs: graph.outputs.map { Value(name: $0.name, type: $0.type) },
            nodes: NodeCounts(total: total, mainGraph: graph.nodes.count),
            opCounts: opCounts.keys.sorted().flatMap { domain in
                opCounts[domain]!.keys.sorted().map { OpCount(domain: domain, opType: $0, count: opCounts[domain]![$0]!) }
            },
            subgraphCount: subgraphs,
            initializerCount: initializers,
            parameters: Parameters(count: weights.reduce(0) { $0 + $1.elementCount },
                                   bytes: weights.reduce(0) { $0 + $1.byteCount },
                                   byDtype: byDtype.keys.sorted().map { byDtype[$0]! }),
            largestTensors: Array(largest),
            externalDataFiles: external.keys.sorted().map { external[$0]! },
            functions: model.functions.map { FunctionEntry(domain: $0.domain, name: $0.name, nodes: $0.nodes.count) },
            metadata: Dictionary(model.metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }),
            package: nil,
            shapes: nil
        )
    }
}
