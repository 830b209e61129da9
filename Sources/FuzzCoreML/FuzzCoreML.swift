// Fuzz target for the Core ML exporter (make fuzz): ONNX bytes are imported, prepared (inlining, pins, folding,
// shape inference), their weights re-encoded, lowered to an ML Program, run through the MIL pass pipeline (the
// program is verified after every pass), serialized, read back by the self-check and written as an .mlpackage in
// a scratch folder. A refusal or a thrown error is fine; a crash is not, and neither is an internal error (a lowering
// that emitted a program the MIL verifier rejects, or bytes that do not read back): those trap here so libFuzzer
// records the input. Without -DFUZZING the binary replays the files named on its command line (fuzz/regressions/coreml).
import CoreMLExport
import Foundation
import FuzzSupport
import GraphIR
import MIL
import ONNXImport
import Passes
import Quantization

/// Where packages are written: a per-process folder on a tmpfs when there is one (writing is part of the target).
private let scratch: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let path = base + "/mlpkg-fuzz-coreml-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    atexit { _ = rmdir(scratchPath()) }  // the package in it is removed after each input
    return path
}()

private func scratchPath() -> String { scratch }

/// The weight formats an input is exported with, picked by its size (so every seed and mutation lands on one).
private let formats: [WeightFormat] = [.fp16, .fp32, .int8, .int4, .lut4, .int3, .lut2]

/// Each input's dynamic dims (symbolic or unknown) pinned to 2, so models with dynamic inputs reach the lowering.
private func pins(_ model: Model) -> InputShapes {
    var shapes = InputShapes()
    for input in model.graph.inputs {
        guard case .tensor(let type) = input.type, let shape = type.shape,
              shape.contains(where: { if case .value = $0 { return false } else { return true } }) else { continue }
        try? shapes.add(input.name, shape.map { if case .value(let v) = $0, v > 0 { return $0 } else { return .value(2) } })
    }
    return shapes
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCoreML(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    // External data is looked up in a folder that does not exist: every reference fails cleanly.
    guard let model = try? ONNXImporter.load(bytes: bytes, file: "fuzz.onnx", folder: "/nonexistent-mlpkg-fuzz") else {
        return 0
    }
    var options = CoreMLExporter.Options(target: size % 3 == 0 ? .iOS18 : nil, compute: size % 2 == 0 ? .fp16 : .fp32)
    options.inputShapes = pins(model)
    guard var prepared = try? CoreMLExporter.prepare(model, options: options) else { return 0 }
    let converter = WeightConverter(options: .init(format: formats[size % formats.count], minElements: 1))
    if (try? converter.validate(prepared.model)) != nil {
        prepared.model = converter.convert(prepared.model).0
    }
    let output = scratch + "/M.mlpackage"
    defer { try? FileManager.default.removeItem(atPath: output) }
    do {
        _ = try CoreMLExporter.export(prepared, to: output, options: options)
    } catch let error as CoreMLExportError where error.isInternal {
        fatalError("internal error on an accepted model: \(error)")
    } catch {
        return 0
    }
    return 0
}

#if FUZZING
/// SwiftPM links an executable's entry point under this name; in a fuzz build it hands over to libFuzzer.
@_cdecl("mlpkg_fuzz_coreml_main")
public func fuzzerEntry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    FuzzHarness.runFuzzer(argc, argv) { data, size in fuzzCoreML(data!, size) }
}
#else
@main
struct Replay {
    static func main() {
        FuzzHarness.replay(Array(CommandLine.arguments.dropFirst()), through: "the Core ML exporter") { data, size in fuzzCoreML(data!, size) }
    }
}
#endif
