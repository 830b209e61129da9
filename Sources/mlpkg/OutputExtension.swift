import ArgumentParser

/// What a command writes at `-o`, and the usage error for an output name whose extension says something else
/// (`-o Model.mlmodel`: mlpkg never writes `.mlmodel` files). Checked before anything is read, so a typo costs
/// nothing and nothing is written.
enum OutputExtension: String {
    /// A `.mlpkg` package folder (`convert`).
    case package = ".mlpkg"
    /// A Core ML ML Program package folder (`convert`, `export --format coreml`).
    case mlpackage = ".mlpackage"
    /// An ONNX model file (`export`).
    case onnx = ".onnx"

    /// The lower-cased extension of `path` (a trailing `/` ignored), with its dot; empty when there is none.
    static func fileExtension(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1, p.hasSuffix("/") { p = p.dropLast() }
        let name = p.split(separator: "/", omittingEmptySubsequences: false).last ?? p
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "" }
        return name[dot...].lowercased()
    }

    /// `path` with its extension replaced by `kind`'s (for the suggestion in a usage error).
    static func renamed(_ path: String, to kind: OutputExtension) -> String {
        var p = Substring(path)
        while p.count > 1, p.hasSuffix("/") { p = p.dropLast() }
        let ext = fileExtension(String(p))
        return String(p.dropLast(ext.count)) + kind.rawValue
    }

    /// `convert -o`: a `.mlpkg` package (any name but the ones below) or a `.mlpackage`; `.mlmodel` and `.onnx`
    /// are refused, naming what convert writes instead.
    static func checkConvert(_ output: String) throws {
        switch fileExtension(output) {
        case ".mlmodel":
            throw ValidationError("-o \(output): mlpkg does not write .mlmodel files; Core ML models are written as ML Program packages: "
                                  + "-o \(renamed(output, to: .mlpackage))")
        case ".onnx":
            throw ValidationError("-o \(output): convert writes a .mlpkg package or a Core ML .mlpackage, not ONNX: "
                                  + "-o \(renamed(output, to: .package)), then `mlpkg export \(renamed(output, to: .package)) -o \(output)`")
        default:
            return
        }
    }

    /// `export -o`: an ONNX file (any name but the ones below), or with `--format coreml` a `.mlpackage`.
    static func checkExport(_ output: String, coreML: Bool) throws {
        let ext = fileExtension(output)
        if ext == ".mlmodel" {
            throw ValidationError("-o \(output): mlpkg does not write .mlmodel files; Core ML models are written as ML Program packages: "
                                  + "--format coreml -o \(renamed(output, to: .mlpackage))")
        }
        if coreML, ext == ".onnx" || ext == ".mlpkg" {
            throw ValidationError("-o \(output): --format coreml writes a .mlpackage: -o \(renamed(output, to: .mlpackage))")
        }
        if !coreML, ext == ".mlpackage" {
            throw ValidationError("-o \(output): export writes an ONNX model unless --format coreml is given: add --format coreml, "
                                  + "or -o \(renamed(output, to: .onnx))")
        }
        if !coreML, ext == ".mlpkg" {
            throw ValidationError("-o \(output): export writes an ONNX model (.onnx), or a .mlpackage with --format coreml; "
                                  + "a .mlpkg is what convert writes: -o \(renamed(output, to: .onnx))")
        }
    }
}
