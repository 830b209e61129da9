/// A fault in a package or in writing one. `description` is one line naming the package and what is at fault.
public struct PackageError: Error, CustomStringConvertible, Equatable {
    /// The path at fault as given: a package, an output, or the source model.
    public var path: String
    /// What is wrong, without the path.
    public var message: String
    /// The tensor at fault, when there is one.
    public var tensor: String?

    /// A fault of `path`; `tensor` names the tensor at fault, if any.
    public init(path: String, _ message: String, tensor: String? = nil) {
        self.path = path
        self.message = message
        self.tensor = tensor
    }

    /// "PATH: MESSAGE", one line.
    public var description: String { "\(path): \(message)" }
}

import SafeOutput

extension PackageError {
    init(_ error: OutputError) {
        self.init(path: error.path, error.message)
    }
}
