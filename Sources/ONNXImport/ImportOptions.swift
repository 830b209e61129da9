import GraphIR

/// How the importer reads what ONNX leaves to the reader's choice.
public struct ImportOptions: Sendable, Equatable {
    /// What an initializer that is also listed as a main-graph input becomes.
    public enum InitializerInputs: String, Sendable, Equatable {
        /// A constant: the initializer stays, its input entry goes (the default; docs/IMPORT.md).
        case constant
        /// A graph input whose initializer is only a default value a caller may replace (`--keep-initializer-inputs`).
        case overridable
    }

    /// What initializers listed as main-graph inputs become; `.constant` by default.
    public var initializerInputs: InitializerInputs

    /// Defaults: initializers listed as inputs are constants.
    public init(initializerInputs: InitializerInputs = .constant) {
        self.initializerInputs = initializerInputs
    }
}

extension Model {
    /// The model with every main-graph input that an initializer (dense or sparse) backs dropped from the inputs:
    /// the initializer alone then defines the value, a constant to every pass and exporter. Before ONNX IR version 4
    /// every initializer had to be listed as an input too, so old files list all their weights; listing one was
    /// never a request to feed it at run time. Subgraph inputs are formal parameters and are left alone.
    public func initializerInputsAsConstants() -> Model {
        var model = self
        model.graph.inputs = graph.runtimeInputs
        return model
    }
}
