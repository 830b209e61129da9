import CoreMLExport
import GraphIR
import Passes
import Profiles

/// A Core ML export refused because the model's runtime inputs have dims that are not fixed (an ML Program here has
/// static shapes). It names the model the user gave and the `--input-shape` flags that fix it: the pins
/// `mlpkg audit MODEL` suggests.
public struct DynamicInputShapesError: Error, CustomStringConvertible, Sendable {
    /// The model the user gave (an ONNX file or a package), not the `.mlpackage` being written.
    public var file: String
    /// Each dynamic input's name and type as text (`float[batch, seq, 8]`).
    public var inputs: [(name: String, type: String)]
    /// The suggested pins, `NAME=D0,D1,...` each, as the audit's `pinSuggestion.suggested` gives them.
    public var pins: [String]

    /// An error about `file`, whose `inputs` the `pins` fix.
    public init(file: String, inputs: [(name: String, type: String)], pins: [String]) {
        self.file = file
        self.inputs = inputs
        self.pins = pins
    }

    /// The `--input-shape` flags, ready to paste.
    public var flags: String { pins.map { "--input-shape \($0)" }.joined(separator: " ") }

    /// One line: the file, the dynamic inputs, the flags.
    public var description: String {
        let listed = inputs.map { "'\($0.name)' \($0.type)" }.joined(separator: ", ")
        return "\(file): Core ML needs static input shapes, but \(inputs.count == 1 ? "input" : "inputs") \(listed) "
            + "\(inputs.count == 1 ? "has" : "have") dynamic dims; pin them: \(flags) "
            + "(placeholder sizes, as `mlpkg audit` suggests them: use the sizes you deploy with)"
    }
}

extension AuditAdvice {
    /// The pins `mlpkg audit` (built-in profiles, Neural Engine target, every unit, chip M1) suggests for `model`'s
    /// dynamic runtime inputs not in `pins`, as `NAME=D0,D1,...`; empty when every input is static or pinned.
    /// When the audit cannot run, the first placeholder sizes are given.
    public static func suggestedInputShapes(_ model: Model, pins: InputShapes) -> [String] {
        let fallback = suggestedPins(model, pinned: pins).map { "\($0.0)=" + $0.1.map(String.init).joined(separator: ",") }
        guard !fallback.isEmpty, let profiles = try? ProfileLibrary.builtInUnitProfiles() else { return fallback }
        let options = AuditOptions(profiles: profiles, inputShapes: pins.order.map { name in
            "\(name)=" + pins.pins[name]!.map(\.description).joined(separator: ",")
        }, coreMLLowering: true)
        guard let report = try? audit(model, pins: pins, modelName: "", options: options),
              let suggestion = report.summary.pinSuggestion else { return fallback }
        return suggestion.suggested
    }

    /// The error to show for a failed Core ML export of `model` (read from `file`, exported with `pins`): a
    /// `DynamicInputShapesError` with the audit's pins when runtime inputs have dynamic dims; the export's own
    /// error naming `file` when a refusal came from something not known before run time; otherwise `error`.
    public static func explaining(_ error: CoreMLExportError, model: Model, file: String, pins: InputShapes) -> any Error {
        let refusals = error.refusals.compactMap { outcome -> (CoreMLNodeOutcome, LoweringRefusal)? in
            if case .refused(let r) = outcome.verdict { return (outcome, r) }
            return nil
        }
        guard refusals.contains(where: { $0.1.unknown }) else { return error }
        let dynamic = suggestedPins(model, pinned: pins).map(\.0)
        if !dynamic.isEmpty {
            let types = Dictionary(model.graph.runtimeInputs.map { ($0.name, $0.type.description) }, uniquingKeysWith: { a, _ in a })
            return DynamicInputShapesError(file: file, inputs: dynamic.map { ($0, types[$0] ?? "?") },
                                           pins: suggestedInputShapes(model, pins: pins))
        }
        var named = error
        named.path = file
        return named
    }
}
