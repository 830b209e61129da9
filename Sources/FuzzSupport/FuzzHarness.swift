import CSystem
import Foundation

/// What the fuzz targets share: handing over to libFuzzer in a fuzz build, replaying files otherwise.
public enum FuzzHarness {
    public typealias Body = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

    #if FUZZING
    /// Runs libFuzzer's driver with the process arguments (fuzz builds only: the symbol comes from libFuzzer).
    public static func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>,
                                 _ body: Body) -> CInt {
        var count = argc
        var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
        return LLVMFuzzerRunDriver(&count, &arguments, body)
    }
    #endif

    /// Feeds each file named in `paths` to `body` once; exits 2 if one cannot be read.
    public static func replay(_ paths: [String], through what: String, _ body: Body) {
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("cannot read \(path)\n".utf8))
                exit(2)
            }
            _ = data.withUnsafeBytes { body($0.bindMemory(to: UInt8.self).baseAddress, $0.count) }
        }
        print("replayed \(paths.count) input(s) through \(what) without a crash")
    }
}
