import Crypto
import GraphIR

/// SHA-256 digests as lower-case hex.
public enum Checksum {
    /// The SHA-256 of `bytes`, as 64 lower-case hex digits.
    public static func sha256(_ bytes: UnsafeRawBufferPointer) -> String {
        var hasher = SHA256()
        hasher.update(bufferPointer: bytes)
        return hex(hasher.finalize())
    }

    /// The SHA-256 of the bytes `view` covers, as 64 lower-case hex digits.
    public static func sha256(_ view: ByteView) -> String { sha256(view.bytes) }

    /// The SHA-256 of `bytes`, as 64 lower-case hex digits.
    public static func sha256(_ bytes: [UInt8]) -> String { bytes.withUnsafeBytes { sha256($0) } }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits: [Character] = Array("0123456789abcdef")
        var out = ""
        out.reserveCapacity(64)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return out
    }
}
