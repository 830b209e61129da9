// Fuzz target for the package reader and verifier (make fuzz). The input is a manifest.json, read against the
// weights.bin of a seed package (fuzz/package-weights.bin); or, when it holds a NUL byte (which JSON text never
// does), the manifest up to the first NUL and that package's own weights.bin after it (the seeds of the format 1.2
// encodings carry theirs). Decoded, verified and loaded, all in memory. Without -DFUZZING the binary replays the
// files named on its command line (fuzz/regressions/package).
import FuzzSupport
import Foundation
import GraphIR
import MLPackage

/// weights.bin for inputs without their own: the blobs of the seed package (fuzz/package-weights.bin).
private let sharedWeights: ByteView = {
    let path = ProcessInfo.processInfo.environment["MLPKG_FUZZ_WEIGHTS"] ?? "fuzz/package-weights.bin"
    return ByteView(copying: Array(FileManager.default.contents(atPath: path) ?? Data(repeating: 0, count: 4096)))
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPackage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let split = input.firstIndex(of: 0)
    let manifestBytes = Data(buffer: UnsafeBufferPointer(rebasing: input[..<(split ?? size)]))
    let weights = split.map { ByteView(copying: Array(input[($0 + 1)...])) } ?? sharedWeights
    // In memory, as the files would be read: header check, decoding, full verification, then loading.
    guard let manifest = try? PackageReader.decodeManifest(manifestBytes, path: "fuzz.mlpkg") else {
        return 0
    }
    _ = PackageVerifier.verify(path: "fuzz.mlpkg", manifest: manifest, weights: weights, report: Data("{}".utf8))
    _ = try? PackageReader.load(path: "fuzz.mlpkg", manifest: manifest, weights: weights, checksums: true)
    return 0
}

#if FUZZING
/// SwiftPM links an executable's entry point under this name; in a fuzz build it hands over to libFuzzer.
@_cdecl("mlpkg_fuzz_package_main")
public func fuzzerEntry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    FuzzHarness.runFuzzer(argc, argv) { data, size in fuzzPackage(data!, size) }
}
#else
@main
struct Replay {
    static func main() {
        FuzzHarness.replay(Array(CommandLine.arguments.dropFirst()), through: "the package reader") { data, size in fuzzPackage(data!, size) }
    }
}
#endif
