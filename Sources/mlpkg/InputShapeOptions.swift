import ArgumentParser
import Passes

/// `--input-shape NAME=D0,D1,...` (repeatable), shared by the commands that infer shapes.
struct InputShapeOptions: ParsableArguments {
    @Option(name: .customLong("input-shape"),
            help: ArgumentHelp("Pin an input's dims (repeatable); a dim is a positive integer or a symbol name.",
                               valueName: "NAME=D0,D1,..."))
    var inputShapes: [String] = []

    func validate() throws {
        do {
            _ = try InputShapes(parsing: inputShapes)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The parsed pins (already validated).
    var pins: InputShapes { (try? InputShapes(parsing: inputShapes)) ?? InputShapes() }
}

/// A usage error found only once the model is read (an --input-shape that does not fit it): exit 2.
struct UsageFailure: Error {
    var message: String
}
