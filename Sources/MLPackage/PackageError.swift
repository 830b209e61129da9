/// A fault in a package or in writing one. `description` is one line naming the package and what is at fault.
public struct PackageError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var message: String
    /// The tensor at fault, when there is one.
    public var tensor: String?

    public init(path: String, _ message: String, tensor: String? = nil) {
        self.path = path
        self.message = message
        self.tensor = tensor
    }

    public var description: String { "\(path): \(message)" }
}

import SafeOutput

extension PackageError {
    init(_ error: OutputError) {
        self.init(path: error.path, error.message)
    }
}
