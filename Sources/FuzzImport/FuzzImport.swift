// Fuzz target for the ONNX importer (make fuzz). Built with -sanitize=fuzzer and -DFUZZING, libFuzzer drives
// LLVMFuzzerTestOneInput; in a normal build the same binary replays the files named on its command line, which is
// how `make test` re-runs every input that once crashed (fuzz/regressions/import).
import FuzzSupport
import Foundation
import GraphIR
import Inspection
import ONNXImport
import Passes

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImport(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    // External data is looked up in a folder that does not exist: every reference fails cleanly.
    if let model = try? ONNXImporter.load(bytes: bytes, file: "fuzz.onnx", folder: "/nonexistent-mlpkg-fuzz") {
        _ = ModelSummary(model: model, file: "fuzz.onnx")
        _ = model.weightRecords.reduce(0) { $0 + $1.byteCount }
        // Shape inference and folding must survive whatever the importer accepts.
        _ = try? Pipeline.foldAndInfer.run(model, context: PassContext())
    }
    return 0
}

#if FUZZING
/// SwiftPM links an executable's entry point under this name; in a fuzz build it hands over to libFuzzer.
@_cdecl("mlpkg_fuzz_import_main")
public func fuzzerEntry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    FuzzHarness.runFuzzer(argc, argv) { data, size in fuzzImport(data!, size) }
}
#else
@main
struct Replay {
    static func main() {
        FuzzHarness.replay(Array(CommandLine.arguments.dropFirst()), through: "the importer") { data, size in fuzzImport(data!, size) }
    }
}
#endif
