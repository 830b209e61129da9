import GraphIR

/// What an app sees of an exported model: the element type of its float features, their names and descriptions,
/// and the model's author, license, description and version (Xcode's model page; `MLModelDescription` at run
/// time). Everything here is the user's choice; nothing is taken from the ONNX producer.
public struct CoreMLInterfaceOptions: Sendable {
    /// The element type of float inputs and outputs: fp32 (the default on every target, whatever the compute
    /// precision and the weights) or fp16 (iOS16 and later). Casts at the interface convert to and from the
    /// compute precision.
    public var ioDtype: MILDataType = .fp32
    /// Interface names to change (ONNX or Core ML name → new name), applied to inputs and outputs.
    public var renames: [(String, String)] = []
    /// Descriptions of inputs (by ONNX, Core ML or new name), shown in Xcode.
    public var inputDescriptions: [(String, String)] = []
    /// Descriptions of outputs, as for inputs.
    public var outputDescriptions: [(String, String)] = []
    /// `Metadata.author`; empty when nil (the ONNX producer goes to user-defined metadata instead).
    public var author: String?
    /// `Metadata.license`; empty when nil.
    public var license: String?
    /// `Metadata.shortDescription`; the ONNX doc string when nil.
    public var shortDescription: String?
    /// `Metadata.versionString`; the ONNX model_version (when not 0) when nil.
    public var version: String?
    /// Inputs an app feeds as images, with their preprocessing (`--image-input`).
    public var imageInputs: [CoreMLImageInput] = []
    /// Outputs an app receives as images (`--image-output`).
    public var imageOutputs: [String] = []
    /// Makes the model a classifier (`--class-labels`).
    public var classLabels: CoreMLClassLabels?

    /// fp32 features, names as the model gives them, no descriptions, no author or license.
    public init() {}
}

/// An interface option that does not fit the model or the target: a usage error (exit 2), found once the model
/// is read (an unknown name lists the valid ones).
public struct CoreMLInterfaceError: Error, CustomStringConvertible, Sendable {
    /// What is wrong and what to give instead.
    public var message: String
    /// An error with `message`.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// The interface names of one export: each ONNX input and output with the MIL identifier it gets, and the
/// descriptions to show. Built before lowering, so `--rename` and descriptions are checked against the model.
struct InterfacePlan {
    /// Per runtime input (in order): ONNX name → the requested name, nil to take the sanitised ONNX name.
    var inputNames: [String: String] = [:]
    /// Per output, as for inputs.
    var outputNames: [String: String] = [:]
    /// ONNX input name → description.
    var inputDescriptions: [String: String] = [:]
    /// ONNX output name → description.
    var outputDescriptions: [String: String] = [:]

    /// Resolves the options' names against the graph's interface: a name is an input's or output's ONNX name or
    /// its Core ML name (sanitised); a new name must be a MIL identifier, and no two features may end with the
    /// same name.
    static func resolve(_ graph: Graph, _ options: CoreMLInterfaceOptions) throws(CoreMLInterfaceError) -> InterfacePlan {
        var plan = InterfacePlan()
        let inputs = graph.runtimeInputs.map(\.name)
        let outputs = graph.outputs.map(\.name)
        func lookup(_ name: String, in names: [String]) -> String? {
            names.first { $0 == name } ?? names.first { MILBuilder.identifier($0) == name }
        }
        func valid(_ names: [String], _ what: String) -> String {
            let shown = names.map { n in MILBuilder.identifier(n) == n ? "'\(n)'" : "'\(n)' (Core ML: '\(MILBuilder.identifier(n))')" }
            return names.isEmpty ? "the model has no \(what)s" : "the model's \(what)s are " + shown.joined(separator: ", ")
        }
        var renamedOnce: Set<String> = []
        for (old, new) in options.renames {
            guard MILBuilder.isIdentifier(new) else {
                throw CoreMLInterfaceError("--rename \(old)=\(new): '\(new)' is not a MIL identifier (letters, digits and _, not starting with a digit)")
            }
            let input = lookup(old, in: inputs)
            let output = lookup(old, in: outputs)
            guard input != nil || output != nil else {
                throw CoreMLInterfaceError("--rename \(old)=\(new): no input or output '\(old)'; \(valid(inputs, "input")); \(valid(outputs, "output"))")
            }
            guard renamedOnce.insert(input ?? output!).inserted else {
                throw CoreMLInterfaceError("--rename \(old)=…: '\(input ?? output!)' is renamed twice")
            }
            if let input { plan.inputNames[input] = new }
            if let output { plan.outputNames[output] = new }
        }
        // Every feature's final name, to find a new name that another feature already has.
        var owners: [String: [String]] = [:]
        for n in inputs { owners[plan.inputNames[n] ?? MILBuilder.identifier(n), default: []].append("input '\(n)'") }
        for n in outputs { owners[plan.outputNames[n] ?? MILBuilder.identifier(n), default: []].append("output '\(n)'") }
        for (old, new) in options.renames where (owners[new]?.count ?? 0) > 1 {
            throw CoreMLInterfaceError("--rename \(old)=\(new): '\(new)' would name \(owners[new]!.joined(separator: " and ")); names must be unique")
        }
        func describe(_ entries: [(String, String)], _ names: [String], finals: [String: String], _ what: String)
            throws(CoreMLInterfaceError) -> [String: String] {
            var out: [String: String] = [:]
            for (name, text) in entries {
                guard let n = lookup(name, in: names) ?? names.first(where: { finals[$0] == name }) else {
                    throw CoreMLInterfaceError("--\(what)-description \(name)=…: no \(what) '\(name)'; \(valid(names, what))")
                }
                guard out[n] == nil else { throw CoreMLInterfaceError("--\(what)-description: \(what) '\(n)' is described twice") }
                out[n] = text
            }
            return out
        }
        plan.inputDescriptions = try describe(options.inputDescriptions, inputs, finals: plan.inputNames, "input")
        plan.outputDescriptions = try describe(options.outputDescriptions, outputs, finals: plan.outputNames, "output")
        return plan
    }
}
