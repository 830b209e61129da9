import GraphIR
import MIL

/// What `mlpkg verify X.mlpackage` found.
public struct CoreMLVerification: Sendable, Encodable {
    /// An op whose types were not checked, and why.
    public struct Skipped: Sendable, Encodable {
        /// The function (and opset, for several blocks).
        public var function: String
        /// The op's name.
        public var op: String
        /// The op's MIL type.
        public var type: String
        /// Why it was not checked.
        public var reason: String
    }

    /// One problem, a line starting with the package path.
    public struct Fault: Sendable, Encodable {
        /// The fault, starting with the package path.
        public var message: String
    }

    /// The package checked, as given.
    public var package: String
    /// True when no fault was found.
    public var ok = false
    /// Always `mlpackage` (an mlpkg package's result has `formatVersion` instead).
    public var format = "mlpackage"
    /// `Model.specificationVersion`, when the model decodes.
    public var specificationVersion: Int?
    /// `mlProgram`, or the other model type the package holds (not checked beyond its container).
    public var modelType: String?
    /// Functions of the ML Program.
    public var functions = 0
    /// Every op of every function, nested ones included.
    public var operations = 0
    /// Ops (consts included) whose declared output types were compared with mlpkg's MIL definitions.
    public var checked = 0
    /// Ops mlpkg has no definition for or cannot represent: not checked, never a fault.
    public var notChecked: [Skipped] = []
    /// Blobs in the weight files.
    public var blobs = 0
    /// Bytes of the weight files.
    public var weightBytes = 0
    /// Every fault, in the order checked.
    public var faults: [Fault] = []
}

/// Checks a `.mlpackage` written by any tool: the container (Manifest.json and the paths it names), that
/// model.mlmodel decodes against proto/coreml.proto, weight.bin's header and every blob's metadata record
/// (sentinel, offsets and sizes within the file), that every blob a value reads exists with the value's type and
/// size, that the interface matches the main function, and every op's types by mlpkg's MIL definitions
/// (`MILVerifier.check`; ops it has no definition for are "not checked", not faults).
public enum CoreMLPackageVerifier {
    /// Verifies the package at `path`.
    public static func verify(path: String) -> CoreMLVerification {
        let contents = CoreMLPackageReader.read(path: path)
        var result = CoreMLVerification(package: path)
        var faults = contents.faults
        for (name, reader) in contents.blobFiles {
            let file = String(name.dropFirst("@model_path/".count))
            faults += reader.faults.map { "\(path): \(file): \($0)" }
            result.blobs += reader.records.count
            result.weightBytes += reader.size
        }
        check(contents, path: path, into: &result, faults: &faults)
        result.faults = faults.map { CoreMLVerification.Fault(message: $0) }
        result.ok = faults.isEmpty
        return result
    }

    private static func check(_ contents: CoreMLPackageContents, path: String, into result: inout CoreMLVerification,
                              faults: inout [String]) {
        guard let spec = contents.spec else { return }
        result.specificationVersion = spec.specificationVersion
        result.modelType = spec.modelType
        guard let program = spec.program else { return }
        result.functions = program.functions.count
        if program.version != 1 { faults.append("\(path): the ML Program's version is \(program.version), not 1") }
        guard !program.functions.isEmpty else {
            faults.append("\(path): the ML Program has no function")
            return
        }
        faults += interfaceFaults(spec, program, path: path)

        let decoder = MILProgramDecoder(contents: contents)
        for function in program.functions {
            guard !function.blocks.isEmpty else {
                faults.append("\(path): function \(function.name) has no block")
                continue
            }
            if !function.blocks.contains(where: { $0.opset == function.opset }) {
                faults.append("\(path): function \(function.name)'s opset \(function.opset) has no block (blocks: \(function.blocks.map(\.opset).joined(separator: ", ")))")
            }
            for (opset, block) in function.blocks {
                let label = function.blocks.count > 1 ? "\(function.name) (\(opset))" : function.name
                guard let target = target(opset: opset) else {
                    let d = decoder.decode(function, block: block, target: .iOS18)
                    result.operations += d.operations
                    faults += d.faults.map { "\(path): \(label): \($0)" }
                    result.notChecked += block.operations.map {
                        .init(function: label, op: $0.name ?? $0.outputs.first?.name ?? "?", type: $0.type,
                              reason: "opset \(opset) is not one mlpkg's MIL definitions cover (CoreML5…CoreML8)")
                    }
                    continue
                }
                if target.specificationVersion > spec.specificationVersion {
                    faults.append("\(path): \(label): opset \(opset) needs specification version \(target.specificationVersion) "
                                  + "(\(target)); the model declares \(spec.specificationVersion)")
                }
                let d = decoder.decode(function, block: block, target: target)
                result.operations += d.operations
                faults += d.faults.map { "\(path): \(label): \($0)" }
                result.notChecked += d.skipped.map { .init(function: label, op: $0.op, type: $0.type, reason: $0.reason) }
                let report = MILVerifier.check(d.program, opaque: d.opaque, unchecked: d.unchecked)
                result.checked += report.checked
                result.notChecked += report.notChecked.map { .init(function: label, op: $0.op, type: $0.type, reason: $0.reason) }
                faults += report.errors.map { "\(path): \(label): \($0.description)" }
            }
        }
    }

    /// The deployment target of a MIL opset name (`CoreML5` = iOS15 … `CoreML8` = iOS18), nil for others.
    public static func target(opset: String) -> DeploymentTarget? {
        guard opset.hasPrefix("CoreML"), let n = Int(opset.dropFirst(6)), (5...8).contains(n) else { return nil }
        return DeploymentTarget.iOS(n + 1)
    }

    /// The description's features against the program: every input is an input of the main function (the
    /// default function of a multifunction model) with the same element type and, for a fixed shape, the same
    /// dims; every output is one of its block outputs.
    static func interfaceFaults(_ spec: CoreMLModelSpec, _ program: MILSpecProgram, path: String) -> [String] {
        var faults: [String] = []
        var checks: [(String, [CoreMLFeature], [CoreMLFeature])] = []
        if spec.functions.isEmpty {
            checks.append(("main", spec.inputs, spec.outputs))
        } else {
            for f in spec.functions { checks.append((f.name, f.inputs, f.outputs)) }
            if !spec.defaultFunctionName.isEmpty, !spec.functions.contains(where: { $0.name == spec.defaultFunctionName }) {
                faults.append("\(path): the default function '\(spec.defaultFunctionName)' is not among the described functions")
            }
        }
        for (name, inputs, outputs) in checks {
            guard let function = program.functions.first(where: { $0.name == name }) else {
                faults.append("\(path): the ML Program has no function '\(name)' (functions: \(program.functions.map(\.name).joined(separator: ", ")))")
                continue
            }
            for feature in inputs {
                guard let input = function.inputs.first(where: { $0.name == feature.name }) else {
                    faults.append("\(path): input '\(feature.name)' is not an input of function \(name)")
                    continue
                }
                guard case .multiArray(let dtype, let shape, let flexibility) = feature.type, case .tensor(let dt, let dims) = input.type else { continue }
                let want: [String: Int] = ["fp32": 11, "fp16": 10, "fp64": 12, "int32": 23, "int8": 21]
                if let w = want[dtype], w != dt {
                    faults.append("\(path): input '\(feature.name)' is \(dtype) in the model description and \(input.type) in function \(name)")
                } else if flexibility == nil, dims.allSatisfy({ $0 != nil }), dims.map({ $0! }) != shape {
                    faults.append("\(path): input '\(feature.name)' has shape \(shape) in the model description and \(input.type) in function \(name)")
                }
            }
            let blockOutputs = Set(function.blocks.first(where: { $0.opset == function.opset })?.block.outputs ?? [])
            for feature in outputs where !blockOutputs.contains(feature.name) {
                faults.append("\(path): output '\(feature.name)' is not an output of function \(name)")
            }
        }
        return faults
    }
}
