// Blocked linear quantization with a per-group clipping search. The inner dimension is contiguous, so the loops
// over it vectorize; an AVX2 build of the same code is chosen at run time where the CPU has it.
#include "ckernels.h"
#include "f16_scalar.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/// A scale as float16 will hold it: rounded to nearest even, never flushed to zero (a non-zero scale that would
/// underflow becomes the smallest half of its sign) and never infinite (clamped to ±65504).
static inline float mlpkg_half_scale(float s) {
    if (s == 0) return 0;
    float h = float_from_half(half_from_float(s > 65504.0f ? 65504.0f : (s < -65504.0f ? -65504.0f : s)));
    if (h == 0) h = s > 0 ? 5.9604644775390625e-8f : -5.9604644775390625e-8f;
    return h;
}

float mlpkg_round_scale_to_half(float s) { return mlpkg_half_scale(s); }

#define MLPKG_QUANTIZE_BODY                                                                                        \
    const size_t blocks = (depth + block - 1) / block;                                                            \
    float *lo = work, *hi = work + inner, *base = work + 2 * inner, *zero = work + 3 * inner;                      \
    float *err = work + 4 * inner, *best = work + 5 * inner, *sc = work + 6 * inner, *iv = work + 7 * inner;      \
    float *sig = work + 8 * inner, *er2 = work + 9 * inner, *mx = work + 10 * inner, *ext = work + 11 * inner;    \
    const float fqmin = (float)qmin, fqmax = (float)qmax;                                                          \
    for (size_t o = 0; o < outer; o++) {                                                                           \
        for (size_t kb = 0; kb < blocks; kb++) {                                                                   \
            const size_t d0 = kb * block, d1 = d0 + block < depth ? d0 + block : depth;                            \
            const float *rows = w + (o * depth + d0) * inner;                                                      \
            float *gscale = scales + (o * blocks + kb) * inner, *gzero = zeros + (o * blocks + kb) * inner;        \
            for (size_t i = 0; i < inner; i++) { lo[i] = 0; hi[i] = 0; }                                           \
            for (size_t d = d0; d < d1; d++) {                                                                     \
                const float *row = rows + (d - d0) * inner;                                                        \
                for (size_t i = 0; i < inner; i++) {                                                               \
                    float v = row[i];                                                                              \
                    lo[i] = v < lo[i] ? v : lo[i];                                                                 \
                    hi[i] = v > hi[i] ? v : hi[i];                                                                 \
                }                                                                                                  \
            }                                                                                                      \
            for (size_t i = 0; i < inner; i++) {                                                                   \
                if (symmetric) {                                                                                   \
                    float amax = -lo[i] > hi[i] ? -lo[i] : hi[i];                                                  \
                    base[i] = amax / fqmax;                                                                        \
                    ext[i] = -lo[i] > hi[i] ? lo[i] : hi[i];                                                       \
                    zero[i] = 0;                                                                                   \
                } else {                                                                                           \
                    ext[i] = 0;                                                                                    \
                    float span = hi[i] - lo[i];                                                                    \
                    base[i] = span / (fqmax - fqmin);                                                              \
                    float z = span > 0 ? rintf(fqmin - lo[i] / base[i]) : 0;                                       \
                    zero[i] = z < fqmin ? fqmin : (z > fqmax ? fqmax : z);                                         \
                }                                                                                                  \
                best[i] = INFINITY;                                                                                \
                gscale[i] = base[i];                                                                               \
                gzero[i] = zero[i];                                                                                \
            }                                                                                                      \
            if (multiplier_count > 1) {                                                                            \
                for (size_t k = 0; k < multiplier_count; k++) {                                                    \
                    const float m = multipliers[k];                                                                \
                    for (size_t i = 0; i < inner; i++) {                                                           \
                        err[i] = 0;                                                                                \
                        /* m < 0: a signed scale that maps the largest-magnitude weight to qmin (−8), either sign. */ \
                        sc[i] = m > 0 ? base[i] * m : ext[i] / fqmin * -m;                                         \
                        iv[i] = (sc[i] != 0 ? 1.0f : 0.0f) / (sc[i] != 0 ? sc[i] : 1.0f);                          \
                    }                                                                                              \
                    for (size_t d = d0; d < d1; d++) {                                                             \
                        const float *row = rows + (d - d0) * inner;                                                \
                        for (size_t i = 0; i < inner; i++) {                                                       \
                            float qv = rintf(row[i] * iv[i]) + zero[i];                                            \
                            qv = qv < fqmin ? fqmin : (qv > fqmax ? fqmax : qv);                                   \
                            float diff = row[i] - sc[i] * (qv - zero[i]);                                          \
                            err[i] += diff * diff;                                                                 \
                        }                                                                                          \
                    }                                                                                              \
                    double total = 0;                                                                              \
                    for (size_t i = 0; i < inner; i++) {                                                           \
                        total += err[i];                                                                           \
                        if (err[i] < best[i]) { best[i] = err[i]; gscale[i] = sc[i]; }                               \
                    }                                                                                              \
                    if (k == 0) stats->rtn_error_energy += total;                                                  \
                }                                                                                                  \
                /* Refit: the least-squares scale for the chosen integers, Σ w·(q−z) / Σ (q−z)², kept if better. */ \
                for (size_t i = 0; i < inner; i++) {                                                               \
                    iv[i] = (gscale[i] != 0 ? 1.0f : 0.0f) / (gscale[i] != 0 ? gscale[i] : 1.0f);                    \
                    sc[i] = 0;                                                                                     \
                    err[i] = 0;                                                                                    \
                }                                                                                                  \
                for (size_t d = d0; d < d1; d++) {                                                                 \
                    const float *row = rows + (d - d0) * inner;                                                    \
                    for (size_t i = 0; i < inner; i++) {                                                           \
                        float qv = rintf(row[i] * iv[i]) + zero[i];                                                \
                        qv = (qv < fqmin ? fqmin : (qv > fqmax ? fqmax : qv)) - zero[i];                           \
                        sc[i] += row[i] * qv;                                                                      \
                        err[i] += qv * qv;                                                                         \
                    }                                                                                              \
                }                                                                                                  \
                for (size_t i = 0; i < inner; i++) {                                                               \
                    float refit = err[i] > 0 ? sc[i] / err[i] : 0.0f;                                              \
                    sc[i] = refit != 0 ? refit : gscale[i];                                                        \
                    iv[i] = (sc[i] != 0 ? 1.0f : 0.0f) / (sc[i] != 0 ? sc[i] : 1.0f);                              \
                    err[i] = 0;                                                                                    \
                }                                                                                                  \
                for (size_t d = d0; d < d1; d++) {                                                                 \
                    const float *row = rows + (d - d0) * inner;                                                    \
                    for (size_t i = 0; i < inner; i++) {                                                           \
                        float qv = rintf(row[i] * iv[i]) + zero[i];                                                \
                        qv = qv < fqmin ? fqmin : (qv > fqmax ? fqmax : qv);                                       \
                        float diff = row[i] - sc[i] * (qv - zero[i]);                                              \
                        err[i] += diff * diff;                                                                     \
                    }                                                                                              \
                }                                                                                                  \
                for (size_t i = 0; i < inner; i++) {                                                               \
                    if (err[i] < best[i]) { best[i] = err[i]; gscale[i] = sc[i]; }                                 \
                }                                                                                                  \
            }                                                                                                      \
            if (half_scales) {                                                                                     \
                for (size_t i = 0; i < inner; i++) gscale[i] = mlpkg_half_scale(gscale[i]);                        \
            }                                                                                                      \
            for (size_t i = 0; i < inner; i++) {                                                                   \
                iv[i] = (gscale[i] != 0 ? 1.0f : 0.0f) / (gscale[i] != 0 ? gscale[i] : 1.0f);                        \
                sig[i] = 0;                                                                                        \
                er2[i] = 0;                                                                                        \
                mx[i] = 0;                                                                                         \
            }                                                                                                      \
            /* Element-wise accumulators (no reductions inside the loop), so it vectorizes without fast-math. */   \
            for (size_t d = d0; d < d1; d++) {                                                                     \
                const float *row = rows + (d - d0) * inner;                                                        \
                int8_t *qrow = q + (o * depth + d) * inner;                                                        \
                for (size_t i = 0; i < inner; i++) {                                                               \
                    float qv = rintf(row[i] * iv[i]) + gzero[i];                                                   \
                    qv = qv < fqmin ? fqmin : (qv > fqmax ? fqmax : qv);                                           \
                    err[i] = qv;                                                                                   \
                    float diff = row[i] - gscale[i] * (qv - gzero[i]);                                             \
                    diff = diff < 0 ? -diff : diff;                                                                \
                    mx[i] = diff > mx[i] ? diff : mx[i];                                                           \
                    sig[i] += row[i] * row[i];                                                                     \
                    er2[i] += diff * diff;                                                                         \
                }                                                                                                  \
                for (size_t i = 0; i < inner; i++) qrow[i] = (int8_t)(int32_t)err[i];                              \
            }                                                                                                      \
            double signal = 0, error = 0;                                                                          \
            for (size_t i = 0; i < inner; i++) {                                                                   \
                signal += sig[i];                                                                                  \
                error += er2[i];                                                                                   \
                if (mx[i] > stats->max_abs_error) stats->max_abs_error = mx[i];                                    \
            }                                                                                                      \
            stats->signal_energy += signal;                                                                        \
            stats->error_energy += error;                                                                          \
            if (multiplier_count <= 1) stats->rtn_error_energy += error;                                           \
        }                                                                                                          \
    }

#define MLPKG_QUANTIZE_PARAMS                                                                                      \
    const float *w, size_t outer, size_t depth, size_t inner, size_t block, int symmetric, int qmin, int qmax,     \
        const float *multipliers, size_t multiplier_count, int half_scales, int8_t *q, float *scales,              \
        float *zeros, float *work, mlpkg_quant_stats *stats

static void quantize_generic(MLPKG_QUANTIZE_PARAMS) { MLPKG_QUANTIZE_BODY }

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void quantize_avx2(MLPKG_QUANTIZE_PARAMS) { MLPKG_QUANTIZE_BODY }
#endif

typedef void (*mlpkg_quantize_kernel)(MLPKG_QUANTIZE_PARAMS);

/* Groups that are contiguous runs (inner == 1: blocks along the last axis, or one channel per leading index) would
   leave the kernel's loops one element wide. Rows of such a tensor are transposed a chunk at a time, so the groups of
   `rows` consecutive rows sit side by side as the inner dimension, quantized, and the results transposed back. */
static int quantize_contiguous_groups(mlpkg_quantize_kernel kernel, const float *w, size_t outer, size_t depth,
                                      size_t block, int symmetric, int qmin, int qmax, const float *multipliers,
                                      size_t multiplier_count, int half_scales, int8_t *q, float *scales,
                                      float *zeros, mlpkg_quant_stats *stats) {
    const size_t blocks = (depth + block - 1) / block;
    size_t rows = depth > 0 ? ((size_t)1 << 18) / depth : 64; /* about 1 MiB of floats per chunk */
    rows = rows < 8 ? 8 : (rows > 64 ? 64 : rows);
    if (rows > outer) rows = outer;
    float *t = malloc(depth * rows * sizeof(float));
    int8_t *tq = malloc(depth * rows);
    float *ts = malloc(blocks * rows * sizeof(float)), *tz = malloc(blocks * rows * sizeof(float));
    float *work = malloc(12 * rows * sizeof(float));
    int ok = t && tq && ts && tz && work;
    if (ok) {
        for (size_t o0 = 0; o0 < outer; o0 += rows) {
            const size_t n = outer - o0 < rows ? outer - o0 : rows;
            for (size_t r = 0; r < n; r++) {
                const float *src = w + (o0 + r) * depth;
                for (size_t d = 0; d < depth; d++) t[d * n + r] = src[d];
            }
            kernel(t, 1, depth, n, block, symmetric, qmin, qmax, multipliers, multiplier_count, half_scales, tq, ts, tz,
                   work, stats);
            for (size_t r = 0; r < n; r++) {
                int8_t *dst = q + (o0 + r) * depth;
                for (size_t d = 0; d < depth; d++) dst[d] = tq[d * n + r];
                for (size_t kb = 0; kb < blocks; kb++) {
                    scales[(o0 + r) * blocks + kb] = ts[kb * n + r];
                    zeros[(o0 + r) * blocks + kb] = tz[kb * n + r];
                }
            }
        }
    }
    free(t);
    free(tq);
    free(ts);
    free(tz);
    free(work);
    return ok;
}

void mlpkg_quantize_blocked(MLPKG_QUANTIZE_PARAMS) {
    memset(stats, 0, sizeof *stats);
    mlpkg_quantize_kernel kernel = quantize_generic;
#if defined(__x86_64__)
    static int avx2 = -1;
    if (avx2 < 0) {
        __builtin_cpu_init();
        avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    if (avx2) kernel = quantize_avx2;
#endif
    if (inner == 1 && outer > 1 &&
        quantize_contiguous_groups(kernel, w, outer, depth, block, symmetric, qmin, qmax, multipliers, multiplier_count,
                                   half_scales, q, scales, zeros, stats)) {
        return;
    }
    kernel(w, outer, depth, inner, block, symmetric, qmin, qmax, multipliers, multiplier_count, half_scales, q, scales,
           zeros, work, stats);
}

size_t mlpkg_count_nonfinite(const float *values, size_t n) {
    size_t count = 0;
    const uint32_t *bits = (const uint32_t *)values;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, bits + i, 4);
        count += (b & 0x7F800000u) == 0x7F800000u;
    }
    return count;
}

void mlpkg_pack_nibbles(const int8_t *values, uint8_t *out, size_t n) {
    size_t pairs = n / 2;
    for (size_t i = 0; i < pairs; i++) {
        out[i] = (uint8_t)(((uint8_t)values[2 * i] & 0x0F) | (((uint8_t)values[2 * i + 1] & 0x0F) << 4));
    }
    if (n & 1) out[pairs] = (uint8_t)values[n - 1] & 0x0F;
}
