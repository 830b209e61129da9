#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// C = A·B (+ C when `accumulate`) for row-major float32 matrices, through BLAS: Accelerate on macOS, OpenBLAS on
/// Linux (`make deps` installs libopenblas-dev). `transposeA`/`transposeB` read A as [K, M] / B as [N, K].
enum MatrixProduct {
    static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
                         b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
                         c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            if !accumulate { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        #if canImport(Accelerate)
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), accumulate ? 1 : 0, c, Int32(ldc))
        #else
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), 1, a, blasint(lda), b, blasint(ldb), accumulate ? 1 : 0, c, blasint(ldc))
        #endif
    }
}
