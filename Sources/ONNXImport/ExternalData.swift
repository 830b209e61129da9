#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GraphIR

/// Resolves ONNX external-data references against the model's folder and maps each data file once.
///
/// A location must be relative, must not climb out with `..`, and must resolve (symlinks followed) to a regular
/// file inside the model's folder: a model cannot make mlpkg read files elsewhere on the machine.
final class ExternalDataResolver {
    private let modelFolder: String
    private var resolvedFolder: String?
    private var files: [String: MappedFile] = [:]
    /// Every non-empty range handed out, per location, with the tensor that asked for it (see `checkOverlaps`).
    private var ranges: [String: [(range: Range<Int>, tensor: String)]] = [:]

    init(modelFolder: String) {
        self.modelFolder = modelFolder
    }

    /// The bytes `[offset, offset + length)` of `location`; `length` nil means to the end of the file.
    func bytes(location: String, offset: Int, length: Int?, tensor: String) throws(DecodeError) -> ByteView {
        let file = try mappedFile(location)
        let size = file.bytes.count
        guard offset <= size else {
            throw DecodeError("external data offset \(offset) is past the end of '\(location)' (\(size) bytes)")
        }
        let available = size - offset
        let count = length ?? available
        guard count <= available else {
            throw DecodeError("external data range \(offset)+\(count) is past the end of '\(location)' (\(size) bytes)")
        }
        if count > 0 { ranges[location, default: []].append((offset..<(offset + count), tensor)) }
        return ByteView(bytes: UnsafeRawBufferPointer(rebasing: file.bytes[offset..<(offset + count)]), owner: file)
    }

    private func mappedFile(_ location: String) throws(DecodeError) -> MappedFile {
        if let file = files[location] { return file }
        let path = try checkedPath(location)
        do {
            let file = try MappedFile(path: path)
            files[location] = file
            return file
        } catch {
            throw DecodeError("external data '\(location)' \(error.reason)")
        }
    }

    /// The real path of `location`, after checking it stays inside the model's folder.
    private func checkedPath(_ location: String) throws(DecodeError) -> String {
        guard !location.isEmpty else { throw DecodeError("external data location is empty") }
        guard !location.hasPrefix("/"), !location.hasPrefix("\\"), !(location.dropFirst().first == ":") else {
            throw DecodeError("external data location '\(location)' is absolute; it must be relative to the model's folder")
        }
        let components = location.split(whereSeparator: { $0 == "/" || $0 == "\\" })
        guard !components.contains("..") else {
            throw DecodeError("external data location '\(location)' leaves the model's folder ('..')")
        }
        guard !location.utf8.contains(0) else {
            throw DecodeError("external data location contains a NUL byte")
        }
        let folder = try realFolder()
        let joined = modelFolder + "/" + location
        guard let real = realpath(joined, nil) else {
            let code = errno
            if code == ENOENT {
                throw DecodeError("external data file '\(location)' not found next to the model")
            }
            throw DecodeError("cannot resolve external data '\(location)': \(MappedFile.describe(errno: code))")
        }
        defer { free(real) }
        let resolved = String(cString: real)
        let prefix = folder.hasSuffix("/") ? folder : folder + "/"
        guard resolved.hasPrefix(prefix) else {
            throw DecodeError("external data location '\(location)' resolves outside the model's folder (symlink to \(resolved))")
        }
        return resolved
    }

    private func realFolder() throws(DecodeError) -> String {
        if let resolvedFolder { return resolvedFolder }
        guard let real = realpath(modelFolder.isEmpty ? "." : modelFolder, nil) else {
            throw DecodeError("cannot resolve the model's folder: \(MappedFile.describe(errno: errno))")
        }
        defer { free(real) }
        let folder = String(cString: real)
        resolvedFolder = folder
        return folder
    }

    /// Refuses external ranges that partly overlap. Two tensors may share exactly the same bytes (tied weights are
    /// written that way), but a range that straddles another's has no legitimate use: it is how a hostile file makes
    /// one region of data count as many different weights.
    func checkOverlaps() throws(DecodeError) {
        for location in ranges.keys.sorted() {
            let sorted = ranges[location]!.sorted {
                ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound)
            }
            var reach = sorted[0]  // the range reaching furthest so far
            for entry in sorted.dropFirst() {
                if entry.range == reach.range { continue }
                if entry.range.lowerBound < reach.range.upperBound {
                    throw DecodeError("tensor '\(entry.tensor)': external data bytes \(Self.describe(entry.range)) of '\(location)' "
                        + "overlap those of tensor '\(reach.tensor)' (\(Self.describe(reach.range))); ranges must be identical or disjoint")
                }
                if entry.range.upperBound > reach.range.upperBound { reach = entry }
            }
        }
    }

    private static func describe(_ range: Range<Int>) -> String { "\(range.lowerBound)..<\(range.upperBound)" }

    /// Data files mapped so far, by location as written in the model.
    var locations: [String] { files.keys.sorted() }
}
