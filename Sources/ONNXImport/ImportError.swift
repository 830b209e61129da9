/// Why a model could not be read. `description` is one line: the file, the tensor or node at fault, and what is wrong.
public struct ImportError: Error, CustomStringConvertible, Equatable {
    /// The model file as the user named it.
    public var file: String
    /// What is wrong, naming the tensor or node at fault.
    public var message: String

    /// An error about `file`.
    public init(file: String, _ message: String) {
        self.file = file
        self.message = message
    }

    /// `FILE: message`, on one line.
    public var description: String { "\(file): \(message)" }
}

/// A fault found while decoding, before the file name is attached.
struct DecodeError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
