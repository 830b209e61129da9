// Blocked linear quantization with a per-group clipping search.
//
// The work is cut into tiles of 8 groups side by side (8 adjacent columns of one block of rows), which is one AVX
// register or two NEON/SSE ones: every pass of the search over a tile runs in registers, and the tile's rows are first
// copied into a small contiguous buffer so that the dozen passes read L1 (rows of a wide tensor sit a power-of-two
// stride apart and would otherwise evict each other). An AVX2 tile function is chosen at run time where the CPU has
// it; the portable one does the same IEEE operations in the same order on each lane, so both produce identical bytes
// (floating-point contraction is off in this file: no fused multiply-add changes a rounding).
#include "ckernels.h"
#include "f16_scalar.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#pragma STDC FP_CONTRACT OFF

/// A scale as float16 will hold it: rounded to nearest even, never flushed to zero (a non-zero scale that would
/// underflow becomes the smallest half of its sign) and never infinite (clamped to ±65504).
static inline float mlpkg_half_scale(float s) {
    if (s == 0) return 0;
    float h = float_from_half(half_from_float(s > 65504.0f ? 65504.0f : (s < -65504.0f ? -65504.0f : s)));
    if (h == 0) h = s > 0 ? 5.9604644775390625e-8f : -5.9604644775390625e-8f;
    return h;
}

float mlpkg_round_scale_to_half(float s) { return mlpkg_half_scale(s); }

/// Tiles are copied out of the tensor a slab at a time: PACK_FLOATS floats, up to PACK_WIDTH columns of a block's rows
/// (wide slabs read each row's run sequentially, which the hardware prefetcher follows).
enum { LANES = 8, PACK_WIDTH = 1024, PACK_FLOATS = 1 << 17, PREFETCH_AHEAD = 1024 };

typedef struct {
    int symmetric, half_scales;
    float qmin, qmax;
    const float *multipliers;
    size_t multiplier_count;
} qparams;

/// One tile's results, per lane.
typedef struct {
    float scale[LANES], zero[LANES];
    float rtn_error[LANES], error[LANES], signal[LANES], max_error[LANES];
    size_t non_finite;
} tile_result;

/// Quantizes `lanes` adjacent groups: row r's values start at x + r·stride bytes; its integers go to q + r·qstride,
/// one per byte, or with `nibbles` (even `lanes`), two per byte, the first in the low nibble.
typedef void (*tile_fn)(const unsigned char *x, size_t rows, size_t stride, size_t lanes, const qparams *p, int8_t *q,
                        size_t qstride, int nibbles, tile_result *out);

// MARK: - Portable tile

// The comparisons are written as AVX's max/min define them (second operand when unordered or equal), so a NaN input
// clamps to a bound exactly as the vector code does and never reaches an integer conversion.
static inline float max_of(float a, float b) { return a > b ? a : b; }
static inline float min_of(float a, float b) { return a < b ? a : b; }
static inline float load_float(const unsigned char *p) { float v; memcpy(&v, p, 4); return v; }
static inline float inverse_of(float s) { return s != 0 ? 1.0f / s : 0.0f; }

/// clamp(rint(v·iv) + z) − z; symmetric groups (z = 0) skip the zero-point arithmetic, as the vector code does.
static inline float centred_level(float v, float iv, float z, const qparams *p) {
    float t = rintf(v * iv);
    if (!p->symmetric) t += z;
    t = min_of(max_of(t, p->qmin), p->qmax);
    return p->symmetric ? t : t - z;
}

/// Σ (w − s·(q − z))² per lane for scale `sc` (inverse `iv`), q = clamp(rint(w·iv) + z).
static inline void portable_error(const unsigned char *x, size_t rows, size_t stride, size_t lanes, const qparams *p,
                                  const float *sc, const float *iv, const float *zero, float *err) {
    for (size_t l = 0; l < lanes; l++) err[l] = 0;
    for (size_t r = 0; r < rows; r++) {
        const unsigned char *row = x + r * stride;
        for (size_t l = 0; l < lanes; l++) {
            float v = load_float(row + 4 * l);
            float d = v - sc[l] * centred_level(v, iv[l], zero[l], p);
            err[l] += d * d;
        }
    }
}

/// The final pass: stores each weight's level for scales `gs` and measures the error.
__attribute__((always_inline)) static inline void portable_final(const unsigned char *x, size_t rows, size_t stride,
                                                                  const size_t lanes, const qparams *p, const float *gs,
                                                                  const float *zero, int8_t *q, size_t qstride,
                                                                  int nibbles, float *err, float *mx) {
    float iv[LANES];
    for (size_t l = 0; l < lanes; l++) { iv[l] = inverse_of(gs[l]); err[l] = 0; mx[l] = 0; }
    for (size_t r = 0; r < rows; r++) {
        const unsigned char *row = x + r * stride;
        int8_t *qrow = q + r * qstride;
        for (size_t l = 0; l < lanes; l++) {
            float v = load_float(row + 4 * l);
            float t = centred_level(v, iv[l], zero[l], p);
            int8_t level = (int8_t)(int32_t)(p->symmetric ? t : t + zero[l]);
            if (!nibbles) {
                qrow[l] = level;
            } else if (l & 1) {
                qrow[l >> 1] = (int8_t)(uint8_t)(((uint8_t)qrow[l >> 1] & 0x0F) | (((uint8_t)level & 0x0F) << 4));
            } else {
                qrow[l >> 1] = (int8_t)(uint8_t)((uint8_t)level & 0x0F);
            }
            float d = fabsf(v - gs[l] * t);
            mx[l] = max_of(d, mx[l]);
            err[l] += d * d;
        }
    }
}

__attribute__((always_inline)) static inline void portable_tile_body(const unsigned char *x, size_t rows, size_t stride, const size_t lanes,
                                      const qparams *p, int8_t *q, size_t qstride, int nibbles, tile_result *out) {
    float lo[LANES], hi[LANES], base[LANES], ext[LANES], zero[LANES], best[LANES], gs[LANES];
    float sc[LANES], iv[LANES], err[LANES], num[LANES], fallback[LANES];
    int refitted = 0;
    float sig[LANES], mx[LANES];
    size_t bad = 0;
    for (size_t l = 0; l < lanes; l++) lo[l] = hi[l] = sig[l] = 0;
    for (size_t r = 0; r < rows; r++) {
        const unsigned char *row = x + r * stride;
        for (size_t l = 0; l < lanes; l++) {
            float v = load_float(row + 4 * l);
            bad += (f32_bits(v) & 0x7F800000u) == 0x7F800000u;
            lo[l] = min_of(v, lo[l]);
            hi[l] = max_of(v, hi[l]);
            sig[l] += v * v;
        }
    }
    for (size_t l = 0; l < lanes; l++) {
        if (p->symmetric) {
            float nlo = -lo[l];
            base[l] = max_of(nlo, hi[l]) / p->qmax;
            ext[l] = nlo > hi[l] ? lo[l] : hi[l];
            zero[l] = 0;
        } else {
            float span = hi[l] - lo[l];
            base[l] = span / (p->qmax - p->qmin);
            ext[l] = 0;
            zero[l] = span > 0 ? min_of(max_of(rintf(p->qmin - lo[l] / base[l]), p->qmin), p->qmax) : 0;
        }
        best[l] = INFINITY;
        gs[l] = base[l];
    }
    if (p->multiplier_count > 1) {
        for (size_t k = 0; k < p->multiplier_count; k++) {
            const float m = p->multipliers[k];
            for (size_t l = 0; l < lanes; l++) {
                // m < 0: a signed scale that maps the largest-magnitude weight to qmin (−8), whatever its sign.
                sc[l] = m > 0 ? base[l] * m : ext[l] / p->qmin * -m;
                if (p->half_scales) sc[l] = mlpkg_half_scale(sc[l]);  // judged as stored
                iv[l] = inverse_of(sc[l]);
            }
            portable_error(x, rows, stride, lanes, p, sc, iv, zero, err);
            for (size_t l = 0; l < lanes; l++) {
                if (k == 0) out->rtn_error[l] = err[l];
                if (err[l] < best[l]) { best[l] = err[l]; gs[l] = sc[l]; }
            }
        }
        // Refit: the least-squares scale for the chosen integers, Σ w·t / Σ t² (t = q − z). For those integers it
        // cannot do worse than the scale they came from, and rounding each weight to the nearest level of the new
        // scale only lowers the error further; only a float16 rounding of it can make it worse. So the final pass
        // runs with the refit, and only the lanes where it came out worse than the best candidate run again with
        // that candidate (whose error the pass then reproduces exactly): never worse than round-to-nearest.
        for (size_t l = 0; l < lanes; l++) { iv[l] = inverse_of(gs[l]); num[l] = 0; err[l] = 0; }
        for (size_t r = 0; r < rows; r++) {
            const unsigned char *row = x + r * stride;
            for (size_t l = 0; l < lanes; l++) {
                float v = load_float(row + 4 * l);
                float t = centred_level(v, iv[l], zero[l], p);
                num[l] += v * t;
                err[l] += t * t;
            }
        }
        for (size_t l = 0; l < lanes; l++) {
            float refit = err[l] > 0 ? num[l] / err[l] : 0.0f;
            float s = refit != 0 ? refit : gs[l];
            if (p->half_scales) s = mlpkg_half_scale(s);
            fallback[l] = gs[l];
            gs[l] = s;
        }
        refitted = 1;
    }
    if (p->half_scales) {
        for (size_t l = 0; l < lanes; l++) gs[l] = mlpkg_half_scale(gs[l]);
    }
    portable_final(x, rows, stride, lanes, p, gs, zero, q, qstride, nibbles, err, mx);
    if (refitted) {
        int again = 0;
        for (size_t l = 0; l < lanes; l++) {
            if (!(err[l] <= best[l])) { gs[l] = fallback[l]; again = 1; }
        }
        if (again) portable_final(x, rows, stride, lanes, p, gs, zero, q, qstride, nibbles, err, mx);
    }
    for (size_t l = 0; l < lanes; l++) {
        out->scale[l] = gs[l];
        out->zero[l] = zero[l];
        out->error[l] = err[l];
        out->signal[l] = sig[l];
        out->max_error[l] = mx[l];
        if (p->multiplier_count <= 1) out->rtn_error[l] = err[l];
    }
    out->non_finite = bad;
}

static void portable_tile(const unsigned char *x, size_t rows, size_t stride, size_t lanes, const qparams *p, int8_t *q,
                          size_t qstride, int nibbles, tile_result *out) {
    if (lanes == LANES) {
        portable_tile_body(x, rows, stride, LANES, p, q, qstride, nibbles, out);  // fixed width: the lane loops vectorize
    } else {
        portable_tile_body(x, rows, stride, lanes, p, q, qstride, nibbles, out);
    }
}

// MARK: - Streaming groups (no search)

/// Groups whose blocks are tall (per-channel scales over thousands of rows) and need no search take two passes over
/// the rows in memory order, up to 8192 columns of a row at a time (the groups' state, 256 KiB, stays in L2), instead
/// of tiles that would read short pieces of rows a page or more apart: 2.3× faster on a [4096, 8192] int8 tensor.
enum { STREAM_WIDTH = 8192, STREAM_ROWS = 64 };

/// Per-group state and results of a streamed slab of up to STREAM_WIDTH groups.
typedef struct {
    float lo[STREAM_WIDTH], hi[STREAM_WIDTH], sig[STREAM_WIDTH], scale[STREAM_WIDTH], zero[STREAM_WIDTH];
    float iv[STREAM_WIDTH], error[STREAM_WIDTH], max_error[STREAM_WIDTH];
    size_t non_finite;
} stream_state;

/// Round-to-nearest of `width` adjacent groups, rows at x + r·stride, integers (one byte each) at q + r·qstride: the
/// same operations, lane by lane, as a tile without candidates.
typedef void (*stream_fn)(const unsigned char *x, size_t rows, size_t stride, size_t width, const qparams *p,
                          int8_t *q, size_t qstride, stream_state *st);

/// The scale, zero point and inverse of each group from its range (as the tiles compute them).
static void stream_scales(size_t width, const qparams *p, stream_state *st) {
    for (size_t c = 0; c < width; c++) {
        float base;
        if (p->symmetric) {
            float nlo = -st->lo[c];
            base = max_of(nlo, st->hi[c]) / p->qmax;
            st->zero[c] = 0;
        } else {
            float span = st->hi[c] - st->lo[c];
            base = span / (p->qmax - p->qmin);
            st->zero[c] = span > 0 ? min_of(max_of(rintf(p->qmin - st->lo[c] / base), p->qmin), p->qmax) : 0;
        }
        st->scale[c] = p->half_scales ? mlpkg_half_scale(base) : base;
        st->iv[c] = inverse_of(st->scale[c]);
    }
}

static void portable_stream(const unsigned char *x, size_t rows, size_t stride, size_t width, const qparams *p,
                            int8_t *q, size_t qstride, stream_state *st) {
    size_t bad = 0;
    for (size_t c = 0; c < width; c++) st->lo[c] = st->hi[c] = st->sig[c] = 0;
    for (size_t r = 0; r < rows; r++) {
        const unsigned char *row = x + r * stride;
        for (size_t c = 0; c < width; c++) {
            float v = load_float(row + 4 * c);
            bad += (f32_bits(v) & 0x7F800000u) == 0x7F800000u;
            st->lo[c] = min_of(v, st->lo[c]);
            st->hi[c] = max_of(v, st->hi[c]);
            st->sig[c] += v * v;
        }
    }
    stream_scales(width, p, st);
    for (size_t c = 0; c < width; c++) st->error[c] = st->max_error[c] = 0;
    for (size_t r = 0; r < rows; r++) {
        const unsigned char *row = x + r * stride;
        int8_t *qrow = q + r * qstride;
        for (size_t c = 0; c < width; c++) {
            float v = load_float(row + 4 * c);
            float t = centred_level(v, st->iv[c], st->zero[c], p);
            qrow[c] = (int8_t)(int32_t)(p->symmetric ? t : t + st->zero[c]);
            float d = fabsf(v - st->scale[c] * t);
            st->max_error[c] = max_of(d, st->max_error[c]);
            st->error[c] += d * d;
        }
    }
    st->non_finite = bad;
}

// MARK: - AVX2 tile

#if defined(__x86_64__)
#define AVX2_TARGET __attribute__((target("avx2,f16c"), always_inline)) static inline

AVX2_TARGET __m256 avx_clamp_round(__m256 v, __m256 iv, __m256 zero, __m256 qmin, __m256 qmax, int sym) {
    __m256 t = _mm256_round_ps(_mm256_mul_ps(v, iv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (!sym) t = _mm256_add_ps(t, zero);
    return _mm256_min_ps(_mm256_max_ps(t, qmin), qmax);
}

AVX2_TARGET __m256 avx_inverse(__m256 s) {
    __m256 nonzero = _mm256_cmp_ps(s, _mm256_setzero_ps(), _CMP_NEQ_UQ);
    return _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), s), nonzero);
}

/// Squared errors of `n` (1 to 3) candidate scales in one pass over the rows: each row is loaded once, and the
/// candidates' accumulations are independent chains the core overlaps.
AVX2_TARGET void avx_errors(const unsigned char *x, size_t rows, size_t stride, const __m256 *sc, const int n,
                            __m256 zero, __m256 qmin, __m256 qmax, int sym, __m256 *err) {
    __m256 iv[3], acc[3];
    for (int j = 0; j < n; j++) { iv[j] = avx_inverse(sc[j]); acc[j] = _mm256_setzero_ps(); }
    for (size_t r = 0; r < rows; r++) {
        const __m256 v = _mm256_loadu_ps((const float *)(const void *)(x + r * stride));
        for (int j = 0; j < n; j++) {
            __m256 t = avx_clamp_round(v, iv[j], zero, qmin, qmax, sym);
            if (!sym) t = _mm256_sub_ps(t, zero);
            const __m256 d = _mm256_sub_ps(v, _mm256_mul_ps(sc[j], t));
            acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(d, d));
        }
    }
    for (int j = 0; j < n; j++) err[j] = acc[j];
}

/// The scale as float16 holds it, lane by lane (mlpkg_half_scale).
AVX2_TARGET __m256 avx_half_scale(__m256 s) {
    __m256 c = _mm256_min_ps(_mm256_max_ps(s, _mm256_set1_ps(-65504.0f)), _mm256_set1_ps(65504.0f));
    __m256 h = _mm256_cvtph_ps(_mm256_cvtps_ph(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256 sign = _mm256_and_ps(s, _mm256_set1_ps(-0.0f));
    __m256 tiny = _mm256_or_ps(sign, _mm256_set1_ps(5.9604644775390625e-8f));
    h = _mm256_blendv_ps(h, tiny, _mm256_cmp_ps(h, _mm256_setzero_ps(), _CMP_EQ_OQ));
    return _mm256_blendv_ps(h, _mm256_setzero_ps(), _mm256_cmp_ps(s, _mm256_setzero_ps(), _CMP_EQ_OQ));
}

/// The final pass: stores each weight's level for scales `gs` and measures the error (the portable tile's).
AVX2_TARGET void avx_final(const unsigned char *x, size_t rows, size_t stride, __m256 gs, __m256 zero, __m256 qmin,
                           __m256 qmax, int8_t *q, size_t qstride, int nibbles, int unsigned_levels, int sym,
                           __m256 *error, __m256 *max_error) {
    const __m256 iv = avx_inverse(gs), abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 err = _mm256_setzero_ps(), mx = _mm256_setzero_ps();
    for (size_t r = 0; r < rows; r++) {
        __m256 v = _mm256_loadu_ps((const float *)(const void *)(x + r * stride));
        __m256 t = avx_clamp_round(v, iv, zero, qmin, qmax, sym);
        __m256i n32 = _mm256_cvtps_epi32(t);
        __m128i n16 = _mm_packs_epi32(_mm256_castsi256_si128(n32), _mm256_extracti128_si256(n32, 1));
        // Unsigned storage (qmin ≥ 0) saturates as unsigned: 200 stays the byte 200, as the portable cast gives.
        const __m128i n8 = unsigned_levels ? _mm_packus_epi16(n16, n16) : _mm_packs_epi16(n16, n16);
        if (nibbles) {  // byte pairs (a, b) → (a & 15) | (b & 15) << 4
            const __m128i low = _mm_and_si128(n8, _mm_set1_epi8(0x0F));
            const __m128i pairs = _mm_or_si128(low, _mm_srli_epi16(low, 4));
            const __m128i bytes = _mm_packus_epi16(_mm_and_si128(pairs, _mm_set1_epi16(0xFF)), _mm_setzero_si128());
            const int32_t word = _mm_cvtsi128_si32(bytes);
            memcpy(q + r * qstride, &word, 4);
        } else {
            _mm_storel_epi64((__m128i *)(void *)(q + r * qstride), n8);
        }
        if (!sym) t = _mm256_sub_ps(t, zero);
        __m256 d = _mm256_and_ps(_mm256_sub_ps(v, _mm256_mul_ps(gs, t)), abs_mask);
        mx = _mm256_max_ps(d, mx);
        err = _mm256_add_ps(err, _mm256_mul_ps(d, d));
    }
    *error = err;
    *max_error = mx;
}

AVX2_TARGET void avx_tile_body(const unsigned char *x, size_t rows, size_t stride, const qparams *p, int8_t *q,
                               size_t qstride, int nibbles, tile_result *out, int sym) {
    const __m256 qmin = _mm256_set1_ps(p->qmin), qmax = _mm256_set1_ps(p->qmax), zeros = _mm256_setzero_ps();
    const int unsigned_levels = p->qmin >= 0;
    const __m256i exponent = _mm256_set1_epi32(0x7F800000);
    __m256 lo = zeros, hi = zeros, sig = zeros;
    __m256i bad = _mm256_setzero_si256();
    for (size_t r = 0; r < rows; r++) {
        __m256 v = _mm256_loadu_ps((const float *)(const void *)(x + r * stride));
        __m256i e = _mm256_and_si256(_mm256_castps_si256(v), exponent);
        bad = _mm256_sub_epi32(bad, _mm256_cmpeq_epi32(e, exponent));
        lo = _mm256_min_ps(v, lo);
        hi = _mm256_max_ps(v, hi);
        sig = _mm256_add_ps(sig, _mm256_mul_ps(v, v));
    }
    __m256 base, ext, zero;
    if (sym) {
        const __m256 nlo = _mm256_xor_ps(lo, _mm256_set1_ps(-0.0f));
        base = _mm256_div_ps(_mm256_max_ps(nlo, hi), qmax);
        ext = _mm256_blendv_ps(hi, lo, _mm256_cmp_ps(nlo, hi, _CMP_GT_OQ));
        zero = zeros;
    } else {
        __m256 span = _mm256_sub_ps(hi, lo);
        base = _mm256_div_ps(span, _mm256_sub_ps(qmax, qmin));
        ext = zeros;
        __m256 z = _mm256_round_ps(_mm256_sub_ps(qmin, _mm256_div_ps(lo, base)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        z = _mm256_min_ps(_mm256_max_ps(z, qmin), qmax);
        zero = _mm256_and_ps(z, _mm256_cmp_ps(span, zeros, _CMP_GT_OQ));
    }
    __m256 best = _mm256_set1_ps(INFINITY), gs = base, fallback = base;
    int refitted = 0;
    const size_t count = p->multiplier_count;
    if (count > 1) {
        const __m256 ext_over_qmin = _mm256_div_ps(ext, qmin);
        for (size_t k = 0; k < count; k += 3) {
            __m256 sc[3], err[3];
            const size_t n = count - k < 3 ? count - k : 3;
            for (size_t j = 0; j < n; j++) {
                const float m = p->multipliers[k + j];
                sc[j] = m > 0 ? _mm256_mul_ps(base, _mm256_set1_ps(m)) : _mm256_mul_ps(ext_over_qmin, _mm256_set1_ps(-m));
                if (p->half_scales) sc[j] = avx_half_scale(sc[j]);  // judged as stored
            }
            if (n == 3) {
                avx_errors(x, rows, stride, sc, 3, zero, qmin, qmax, sym, err);
            } else if (n == 2) {
                avx_errors(x, rows, stride, sc, 2, zero, qmin, qmax, sym, err);
            } else {
                avx_errors(x, rows, stride, sc, 1, zero, qmin, qmax, sym, err);
            }
            if (k == 0) _mm256_storeu_ps(out->rtn_error, err[0]);
            for (size_t j = 0; j < n; j++) {
                __m256 better = _mm256_cmp_ps(err[j], best, _CMP_LT_OQ);
                best = _mm256_blendv_ps(best, err[j], better);
                gs = _mm256_blendv_ps(gs, sc[j], better);
            }
        }
        // Refit: the least-squares scale for the chosen integers, confirmed by the final pass (see the portable tile).
        const __m256 iv = avx_inverse(gs);
        __m256 num = zeros, den = zeros;
        for (size_t r = 0; r < rows; r++) {
            __m256 v = _mm256_loadu_ps((const float *)(const void *)(x + r * stride));
            __m256 t = avx_clamp_round(v, iv, zero, qmin, qmax, sym);
            if (!sym) t = _mm256_sub_ps(t, zero);
            num = _mm256_add_ps(num, _mm256_mul_ps(v, t));
            den = _mm256_add_ps(den, _mm256_mul_ps(t, t));
        }
        __m256 refit = _mm256_and_ps(_mm256_div_ps(num, den), _mm256_cmp_ps(den, zeros, _CMP_GT_OQ));
        __m256 sc = _mm256_blendv_ps(refit, gs, _mm256_cmp_ps(refit, zeros, _CMP_EQ_OQ));
        if (p->half_scales) sc = avx_half_scale(sc);
        fallback = gs;
        gs = sc;
        refitted = 1;
    }
    if (p->half_scales) gs = avx_half_scale(gs);
    __m256 err, mx;
    avx_final(x, rows, stride, gs, zero, qmin, qmax, q, qstride, nibbles, unsigned_levels, sym, &err, &mx);
    if (refitted) {
        const __m256 worse = _mm256_cmp_ps(err, best, _CMP_NLE_UQ);  // !(err <= best), as the portable tile
        if (_mm256_movemask_ps(worse) != 0) {
            gs = _mm256_blendv_ps(gs, fallback, worse);
            avx_final(x, rows, stride, gs, zero, qmin, qmax, q, qstride, nibbles, unsigned_levels, sym, &err, &mx);
        }
    }
    _mm256_storeu_ps(out->scale, gs);
    _mm256_storeu_ps(out->zero, zero);
    _mm256_storeu_ps(out->error, err);
    _mm256_storeu_ps(out->signal, sig);
    _mm256_storeu_ps(out->max_error, mx);
    if (count <= 1) _mm256_storeu_ps(out->rtn_error, err);
    uint32_t lanes_bad[LANES];
    _mm256_storeu_si256((__m256i *)(void *)lanes_bad, bad);
    out->non_finite = 0;
    for (size_t l = 0; l < LANES; l++) out->non_finite += lanes_bad[l];
}

__attribute__((target("avx2,f16c"))) static void avx2_tile(const unsigned char *x, size_t rows, size_t stride,
                                                          size_t lanes, const qparams *p, int8_t *q, size_t qstride,
                                                          int nibbles, tile_result *out) {
    if (lanes != LANES) {
        portable_tile(x, rows, stride, lanes, p, q, qstride, nibbles, out);
    } else if (p->symmetric) {
        avx_tile_body(x, rows, stride, p, q, qstride, nibbles, out, 1);
    } else {
        avx_tile_body(x, rows, stride, p, q, qstride, nibbles, out, 0);
    }
}

AVX2_TARGET void avx_stream_body(const unsigned char *x, size_t rows, size_t stride, size_t width, const qparams *p,
                                 int8_t *q, size_t qstride, stream_state *st, int sym) {
    const __m256 qmin = _mm256_set1_ps(p->qmin), qmax = _mm256_set1_ps(p->qmax), zeros = _mm256_setzero_ps();
    const __m256i exponent = _mm256_set1_epi32(0x7F800000);
    const int unsigned_levels = p->qmin >= 0;
    __m256i bad = _mm256_setzero_si256();
    for (size_t c = 0; c < width; c++) st->lo[c] = st->hi[c] = st->sig[c] = 0;
    for (size_t r = 0; r < rows; r++) {
        const unsigned char *row = x + r * stride;
        for (size_t c = 0; c < width; c += LANES) {
            __m256 v = _mm256_loadu_ps((const float *)(const void *)(row + 4 * c));
            __m256i e = _mm256_and_si256(_mm256_castps_si256(v), exponent);
            bad = _mm256_sub_epi32(bad, _mm256_cmpeq_epi32(e, exponent));
            _mm256_storeu_ps(st->lo + c, _mm256_min_ps(v, _mm256_loadu_ps(st->lo + c)));
            _mm256_storeu_ps(st->hi + c, _mm256_max_ps(v, _mm256_loadu_ps(st->hi + c)));
            _mm256_storeu_ps(st->sig + c, _mm256_add_ps(_mm256_loadu_ps(st->sig + c), _mm256_mul_ps(v, v)));
        }
    }
    stream_scales(width, p, st);
    for (size_t c = 0; c < width; c++) st->error[c] = st->max_error[c] = 0;
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    for (size_t r = 0; r < rows; r++) {
        const unsigned char *row = x + r * stride;
        int8_t *qrow = q + r * qstride;
        for (size_t c = 0; c < width; c += LANES) {
            const __m256 v = _mm256_loadu_ps((const float *)(const void *)(row + 4 * c));
            const __m256 zero = _mm256_loadu_ps(st->zero + c);
            __m256 t = avx_clamp_round(v, _mm256_loadu_ps(st->iv + c), zero, qmin, qmax, sym);
            __m256i n32 = _mm256_cvtps_epi32(t);
            __m128i n16 = _mm_packs_epi32(_mm256_castsi256_si128(n32), _mm256_extracti128_si256(n32, 1));
            _mm_storel_epi64((__m128i *)(void *)(qrow + c),
                             unsigned_levels ? _mm_packus_epi16(n16, n16) : _mm_packs_epi16(n16, n16));
            if (!sym) t = _mm256_sub_ps(t, zero);
            __m256 d = _mm256_and_ps(_mm256_sub_ps(v, _mm256_mul_ps(_mm256_loadu_ps(st->scale + c), t)), abs_mask);
            _mm256_storeu_ps(st->max_error + c, _mm256_max_ps(d, _mm256_loadu_ps(st->max_error + c)));
            _mm256_storeu_ps(st->error + c, _mm256_add_ps(_mm256_loadu_ps(st->error + c), _mm256_mul_ps(d, d)));
        }
    }
    (void)zeros;
    uint32_t lanes_bad[LANES];
    _mm256_storeu_si256((__m256i *)(void *)lanes_bad, bad);
    st->non_finite = 0;
    for (size_t l = 0; l < LANES; l++) st->non_finite += lanes_bad[l];
}

/// Whole 8-group chunks in AVX2; a last partial chunk takes the portable code.
__attribute__((target("avx2,f16c"))) static void avx2_stream(const unsigned char *x, size_t rows, size_t stride,
                                                            size_t width, const qparams *p, int8_t *q, size_t qstride,
                                                            stream_state *st) {
    if (width % LANES != 0) {
        portable_stream(x, rows, stride, width, p, q, qstride, st);
    } else if (p->symmetric) {
        avx_stream_body(x, rows, stride, width, p, q, qstride, st, 1);
    } else {
        avx_stream_body(x, rows, stride, width, p, q, qstride, st, 0);
    }
}
#endif

// MARK: - Driver

/// Where the integers go: one int8 per element (`q`), or two per byte (`nibbles`, element 2i in the low nibble).
typedef struct {
    int8_t *q;
    uint8_t *nibbles;
} qoutput;

/// Stores `n` integers as elements e0 ..< e0 + n of `out`.
static void store_levels(const qoutput *out, size_t e0, const int8_t *values, size_t n) {
    if (out->q) {
        memcpy(out->q + e0, values, n);
        return;
    }
    size_t i = 0;
    if (e0 & 1) {  // a first element in a high nibble: keep the byte's low nibble
        uint8_t *b = out->nibbles + (e0 >> 1);
        *b = (uint8_t)((*b & 0x0F) | (((uint8_t)values[0] & 0x0F) << 4));
        i = 1;
    }
    for (; i + 1 < n; i += 2) {
        out->nibbles[(e0 + i) >> 1] = (uint8_t)(((uint8_t)values[i] & 0x0F) | (((uint8_t)values[i + 1] & 0x0F) << 4));
    }
    if (i < n) {  // a last element in a low nibble: keep the byte's high nibble
        uint8_t *b = out->nibbles + ((e0 + i) >> 1);
        *b = (uint8_t)((*b & 0xF0) | ((uint8_t)values[i] & 0x0F));
    }
}

/// Quantizes the [outer, depth, inner] view at `w` (any alignment), adding to `stats`. `pack` holds PACK_FLOATS
/// floats or is NULL; `levels` holds rows · min(inner, LANES) bytes for the largest block.
/// The functions that do the work, chosen once per call (AVX2 or portable), and their scratch memory.
typedef struct {
    tile_fn tile;
    stream_fn stream;
    float *pack;          ///< PACK_FLOATS floats, or NULL: tiles read in place
    int8_t *levels;       ///< rows · min(inner, LANES) bytes for the largest block
    stream_state *state;  ///< NULL: tall blocks take tiles too
} kernels;

/// Streams the tall block of rows d0 ..< d0 + rows (no search), adding each group's results in column order.
static void stream_block(const kernels *k, const unsigned char *w, size_t o, size_t depth, size_t inner, size_t d0,
                         size_t rows, size_t group0, const qparams *p, const qoutput *out, float *scales, float *zeros,
                         double sums[3], mlpkg_quant_stats *stats) {
    stream_state *st = k->state;
    for (size_t c0 = 0; c0 < inner; c0 += STREAM_WIDTH) {
        const size_t width = inner - c0 < STREAM_WIDTH ? inner - c0 : STREAM_WIDTH;
        const size_t full = width / LANES * LANES;
        const unsigned char *src = w + ((o * depth + d0) * inner + c0) * 4;
        int8_t *qdst = out->q + (o * depth + d0) * inner + c0;
        for (int part = 0; part < 2; part++) {
            const size_t from = part ? full : 0, n = part ? width - full : full;
            if (n == 0) continue;
            (part ? portable_stream : k->stream)(src + from * 4, rows, inner * 4, n, p, qdst + from, inner, st);
            for (size_t c = 0; c < n; c++) {
                const size_t g = group0 + c0 + from + c;
                scales[g] = st->scale[c];
                zeros[g] = st->zero[c];
                sums[0] += st->sig[c];
                sums[1] += st->error[c];
                sums[2] += st->error[c];
                if (st->max_error[c] > stats->max_abs_error) stats->max_abs_error = st->max_error[c];
            }
            stats->non_finite += st->non_finite;
        }
    }
}

static void quantize_view(const kernels *k, const unsigned char *w, size_t outer, size_t depth, size_t inner,
                          size_t block, const qparams *p, const qoutput *out, float *scales, float *zeros,
                          mlpkg_quant_stats *stats) {
    const size_t blocks = (depth + block - 1) / block;
    const tile_fn tile = k->tile;
    float *pack = k->pack;
    int8_t *levels = k->levels;
    tile_result res;
    for (size_t o = 0; o < outer; o++) {
        for (size_t kb = 0; kb < blocks; kb++) {
            const size_t d0 = kb * block, rows = (d0 + block < depth ? d0 + block : depth) - d0;
            double signal = 0, error = 0, rtn = 0;
            if (p->multiplier_count <= 1 && rows > STREAM_ROWS && out->q != NULL && k->state != NULL) {
                double sums[3] = {0, 0, 0};
                stream_block(k, w, o, depth, inner, d0, rows, (o * blocks + kb) * inner, p, out, scales, zeros, sums,
                             stats);
                stats->signal_energy += sums[0];
                stats->error_energy += sums[1];
                stats->rtn_error_energy += sums[2];
                continue;
            }
            size_t slab = rows > 0 ? PACK_FLOATS / rows / LANES * LANES : LANES;
            slab = slab > PACK_WIDTH ? PACK_WIDTH : (slab < LANES ? LANES : slab);
            for (size_t c0 = 0; c0 < inner; c0 += slab) {
                const size_t width = inner - c0 < slab ? inner - c0 : slab;
                const size_t full = width / LANES;
                const unsigned char *src = w + ((o * depth + d0) * inner + c0) * 4;
                const int packed = pack != NULL && rows * LANES <= PACK_FLOATS && full > 0;
                if (packed) {
                    for (size_t r = 0; r < rows; r++) {
                        const unsigned char *row = src + r * inner * 4;
                        for (size_t t = 0; t < full; t++) {
                            // Rows a page or more apart defeat the hardware prefetcher: fetch a few lines ahead.
                            if (t % 2 == 0) __builtin_prefetch(row + t * LANES * 4 + PREFETCH_AHEAD);
                            memcpy(pack + (t * rows + r) * LANES, row + t * LANES * 4, 4 * LANES);
                        }
                    }
                }
                for (size_t t = 0; t * LANES < width; t++) {
                    const size_t lanes = width - t * LANES < LANES ? width - t * LANES : LANES;
                    const size_t e0 = (o * depth + d0) * inner + c0 + t * LANES;
                    // Integers go straight to the output, unless nibbles would straddle bytes (odd offsets).
                    int8_t *direct = out->q ? out->q + e0 : (e0 % 2 == 0 && inner % 2 == 0 && lanes % 2 == 0)
                        ? (int8_t *)(out->nibbles + e0 / 2) : NULL;
                    int8_t *dst = direct ? direct : levels;
                    const size_t qstride = direct ? (out->q ? inner : inner / 2) : lanes;
                    const int nibbles = direct != NULL && out->q == NULL;
                    if (lanes == LANES && packed) {
                        tile((const unsigned char *)(pack + t * rows * LANES), rows, 4 * LANES, LANES, p, dst, qstride,
                             nibbles, &res);
                    } else {
                        tile(src + t * LANES * 4, rows, inner * 4, lanes, p, dst, qstride, nibbles, &res);
                    }
                    if (!direct) {
                        for (size_t r = 0; r < rows; r++) store_levels(out, e0 + r * inner, levels + r * lanes, lanes);
                    }
                    const size_t g = (o * blocks + kb) * inner + c0 + t * LANES;
                    for (size_t l = 0; l < lanes; l++) {
                        scales[g + l] = res.scale[l];
                        zeros[g + l] = res.zero[l];
                        signal += res.signal[l];
                        error += res.error[l];
                        rtn += res.rtn_error[l];
                        if (res.max_error[l] > stats->max_abs_error) stats->max_abs_error = res.max_error[l];
                    }
                    stats->non_finite += res.non_finite;
                }
            }
            stats->signal_energy += signal;
            stats->error_energy += error;
            stats->rtn_error_energy += rtn;
        }
    }
}

/* Groups that are contiguous runs (inner == 1: blocks along the last axis, or one channel per leading index) would
   give tiles of one lane. Rows of such a tensor are transposed a chunk at a time, so the groups of `rows`
   consecutive rows sit side by side as the inner dimension, quantized, and the results transposed back. */
static int quantize_contiguous_groups(const kernels *k, const unsigned char *w, size_t outer, size_t depth,
                                      size_t block, const qparams *p, const qoutput *out, float *scales, float *zeros,
                                      mlpkg_quant_stats *stats) {
    const size_t blocks = (depth + block - 1) / block;
    size_t rows = depth > 0 ? ((size_t)1 << 18) / depth : 64; /* about 1 MiB of floats per chunk */
    rows = rows < 8 ? 8 : (rows > 64 ? 64 : rows);
    if (rows > outer) rows = outer;
    const size_t block_rows = block < depth ? block : depth;
    float *t = malloc(depth * rows * sizeof(float));
    int8_t *tq = malloc(depth * rows), *row_levels = malloc(depth), *levels = malloc(block_rows * LANES + 1);
    float *ts = malloc(blocks * rows * sizeof(float)), *tz = malloc(blocks * rows * sizeof(float));
    int ok = t && tq && ts && tz && row_levels && levels;
    if (ok) {
        const qoutput chunk = {tq, NULL};
        for (size_t o0 = 0; o0 < outer; o0 += rows) {
            const size_t n = outer - o0 < rows ? outer - o0 : rows;
            for (size_t r = 0; r < n; r++) {
                const unsigned char *src = w + (o0 + r) * depth * 4;
                for (size_t d = 0; d < depth; d++) memcpy(t + d * n + r, src + d * 4, 4);
            }
            kernels chunk_kernels = *k;
            chunk_kernels.levels = levels;
            quantize_view(&chunk_kernels, (const unsigned char *)t, 1, depth, n, block, p, &chunk, ts, tz, stats);
            for (size_t r = 0; r < n; r++) {
                for (size_t d = 0; d < depth; d++) row_levels[d] = tq[d * n + r];
                store_levels(out, (o0 + r) * depth, row_levels, depth);
                for (size_t kb = 0; kb < blocks; kb++) {
                    scales[(o0 + r) * blocks + kb] = ts[kb * n + r];
                    zeros[(o0 + r) * blocks + kb] = tz[kb * n + r];
                }
            }
        }
    }
    free(t);
    free(tq);
    free(row_levels);
    free(levels);
    free(ts);
    free(tz);
    return ok;
}

static _Atomic int force_portable = 0;

void mlpkg_quantize_force_portable(int portable) { force_portable = portable != 0; }

int mlpkg_quantize_simd_available(void) {
#if defined(__x86_64__)
    static int avx2 = -1;
    if (avx2 < 0) {
        __builtin_cpu_init();
        avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
    }
    return avx2;
#else
    return 0;
#endif
}

int mlpkg_quantize_blocked(const void *w, size_t outer, size_t depth, size_t inner, size_t block, int symmetric,
                           int qmin, int qmax, const float *multipliers, size_t multiplier_count, int half_scales,
                           int8_t *q, uint8_t *nibbles, float *scales, float *zeros, mlpkg_quant_stats *stats) {
    memset(stats, 0, sizeof *stats);
    kernels k = {portable_tile, portable_stream, NULL, NULL, NULL};
#if defined(__x86_64__)
    if (!force_portable && mlpkg_quantize_simd_available()) {
        k.tile = avx2_tile;
        k.stream = avx2_stream;
    }
#endif
    const qparams p = {symmetric, half_scales, (float)qmin, (float)qmax, multipliers, multiplier_count};
    const qoutput out = {nibbles ? NULL : q, nibbles};
    const unsigned char *bytes = w;
    const size_t count = outer * depth * inner;
    if (nibbles && count % 2 == 1) nibbles[count / 2] = 0;  // the unused high nibble of an odd count stays 0
    k.pack = malloc(sizeof(float) * PACK_FLOATS);
    k.state = malloc(sizeof(stream_state));
    int ok = 1;
    if (!(inner == 1 && outer > 1 &&
          quantize_contiguous_groups(&k, bytes, outer, depth, block, &p, &out, scales, zeros, stats))) {
        const size_t block_rows = block < depth ? block : depth;
        k.levels = malloc((block_rows > 0 ? block_rows : 1) * (inner > 0 && inner < LANES ? inner : LANES));
        if (k.levels) quantize_view(&k, bytes, outer, depth, inner, block, &p, &out, scales, zeros, stats);
        ok = k.levels != NULL;
        free(k.levels);
    }
    free(k.pack);
    free(k.state);
    return ok;
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
