import Foundation
import MIL

/// Why calibration inputs cannot be used: the file, the tensor, and what is wrong.
public struct CalibrationError: Error, Sendable, CustomStringConvertible {
    /// One line naming the file and the tensor.
    public var message: String
    /// An error with `message`.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// One input a calibration run feeds: its name, whether it takes floats, integers or booleans, and its dims (nil
/// where the model leaves a dim free: the calibration array's dim pins it).
public struct CalibrationInput: Sendable {
    /// What an input's elements are, as far as an array can be checked against it.
    public enum Kind: String, Sendable {
        case float, integer, bool
    }
    /// The input's name.
    public var name: String
    /// Its element kind.
    public var kind: Kind
    /// Its dims; nil for a free dim.
    public var dims: [Int?]

    /// An input named `name`.
    public init(name: String, kind: Kind, dims: [Int?]) {
        self.name = name
        self.kind = kind
        self.dims = dims
    }

    /// The inputs of a MIL program (every dim static, or unknown where a range is declared).
    public static func of(_ program: MILProgram) -> [CalibrationInput] {
        program.inputs.map { v in
            CalibrationInput(name: v.name, kind: v.type.dtype.isFloat ? .float : (v.type.dtype == .bool ? .bool : .integer),
                             dims: v.type.shape.map { $0 == MILTensorType.unknownDim ? nil : $0 })
        }
    }
}

/// Real inputs (`--calibration DATA.npz`): one array per model input, keyed by the input's name (np.savez). An array
/// of the input's rank is one sample; an array with one more leading axis holds that many samples (every input the
/// same number, or one sample shared by all). Float inputs take float arrays (float16/32/64), integer inputs integer
/// arrays, bool inputs bool arrays.
public struct CalibrationData: Sendable {
    /// The file read.
    public let file: String
    /// Its arrays, by entry name.
    public let arrays: [String: EvalTensor]

    /// Reads `path` (a stored .npz, as np.savez writes it).
    public static func read(path: String) throws(CalibrationError) -> CalibrationData {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CalibrationError("\(path): cannot be read (--calibration: missing, or not a file)")
        }
        let entries: [(name: String, value: EvalTensor)]
        do {
            entries = try NumPyArchive.arrays(npz: Array(data), name: path)
        } catch {
            throw CalibrationError(error.message)
        }
        var arrays: [String: EvalTensor] = [:]
        for e in entries { arrays[e.name] = e.value }
        return CalibrationData(file: path, arrays: arrays)
    }

    /// An archive already in memory (tests).
    public init(file: String, arrays: [String: EvalTensor]) {
        self.file = file
        self.arrays = arrays
    }

    /// The samples for `inputs`, and each input's dims as the samples pin them. Throws naming the file and the
    /// input when an input has no array, or an array has the wrong kind of elements or the wrong shape.
    public func samples(for inputs: [CalibrationInput], model: String) throws(CalibrationError) -> (samples: [[String: EvalTensor]], shapes: [String: [Int]]) {
        var perInput: [String: [EvalTensor]] = [:]
        var shapes: [String: [Int]] = [:]
        var count = 1
        for input in inputs {
            guard let array = arrays[input.name] else {
                let have = arrays.keys.sorted().map { "'\($0)'" }.joined(separator: ", ")
                throw CalibrationError("\(file): no array for input '\(input.name)' of \(model) (the archive holds \(have.isEmpty ? "nothing" : have))")
            }
            let kind: CalibrationInput.Kind = array.isFloat ? .float : (array.dtype == .bool ? .bool : .integer)
            guard kind == input.kind else {
                throw CalibrationError("\(file): '\(input.name)' holds \(array.dtype) values; input '\(input.name)' of \(model) takes \(input.kind) values")
            }
            let expected = "[" + input.dims.map { $0.map(String.init) ?? "?" }.joined(separator: ", ") + "]"
            func fits(_ dims: ArraySlice<Int>) -> Bool {
                dims.count == input.dims.count && zip(dims, input.dims).allSatisfy { $1 == nil ? $0 > 0 : $0 == $1 }
            }
            var samples: [EvalTensor]
            if fits(array.shape[...]) {
                samples = [array]
            } else if array.rank == input.dims.count + 1, array.shape[0] > 0, fits(array.shape.dropFirst()) {
                let n = array.shape[0], shape = Array(array.shape.dropFirst()), size = shape.reduce(1, *)
                samples = (0..<n).map { k in
                    if array.isFloat {
                        return array.withFloats { p in EvalTensor(floats: Array(p[(k * size)..<((k + 1) * size)]), shape: shape, dtype: array.dtype) }
                    }
                    let v = array.ints
                    return EvalTensor(ints: Array(v[(k * size)..<((k + 1) * size)]), shape: shape, dtype: array.dtype)
                }
            } else {
                throw CalibrationError("\(file): '\(input.name)' has shape \(array.shape); input '\(input.name)' of \(model) takes \(expected) "
                                       + "(or N samples of it: [N, …])")
            }
            if samples.count > 1 {
                guard count == 1 || count == samples.count else {
                    throw CalibrationError("\(file): '\(input.name)' holds \(samples.count) samples, another input \(count); give every input the same number")
                }
                count = samples.count
            }
            perInput[input.name] = samples
            shapes[input.name] = samples[0].shape
        }
        let samples = (0..<count).map { k in
            Dictionary(uniqueKeysWithValues: inputs.map { ($0.name, perInput[$0.name]!.count == 1 ? perInput[$0.name]![0] : perInput[$0.name]![k]) })
        }
        return (samples, shapes)
    }
}
