// float32 <-> float16 conversion kernels with run-time dispatch: F16C + AVX where the CPU has them, portable C
// elsewhere. Both paths round to nearest even and produce identical bits (tested against Swift's reference).
#include "ckernels.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MLPKG_X86 1
#endif

static const float kMaxHalf = 65504.0f;

#include "f16_scalar.h"

/// Scalar conversion of src[begin, end) with statistics.
static void convert_scalar(const float *src, uint16_t *dst, size_t begin, size_t end, mlpkg_f16_stats *s) {
    for (size_t i = begin; i < end; i++) {
        float w;
        memcpy(&w, src + i, 4);
        if (!isfinite(w)) {
            s->non_finite++;
            dst[i] = half_from_float(w);
            continue;
        }
        float v = w;
        if (fabsf(v) > kMaxHalf) {
            s->clamped++;
            v = v < 0 ? -kMaxHalf : kMaxHalf;
        }
        uint16_t h = half_from_float(v);
        dst[i] = h;
        float err = fabsf(w - float_from_half(h));
        if (err > s->max_abs_error) s->max_abs_error = err;
        s->signal_energy += (double)w * (double)w;
        s->error_energy += (double)err * (double)err;
    }
}

void mlpkg_f32_to_f16_portable(const float *src, uint16_t *dst, size_t n, mlpkg_f16_stats *stats) {
    memset(stats, 0, sizeof *stats);
    convert_scalar(src, dst, 0, n, stats);
}

#ifdef MLPKG_X86
__attribute__((target("avx,f16c")))
static void convert_f16c(const float *src, uint16_t *dst, size_t n, mlpkg_f16_stats *s) {
    const __m256 max_half = _mm256_set1_ps(kMaxHalf);
    const __m256 min_half = _mm256_set1_ps(-kMaxHalf);
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 inf = _mm256_set1_ps(INFINITY);
    size_t i = 0;
    const size_t vector_end = n - n % 8;
    // Blocks of 1024 elements accumulate energies in float lanes, then fold into doubles: bounded rounding error.
    while (i < vector_end) {
        size_t block_end = i + 1024 <= vector_end ? i + 1024 : vector_end;
        __m256 signal = _mm256_setzero_ps(), error = _mm256_setzero_ps(), max_err = _mm256_setzero_ps();
        for (; i < block_end; i += 8) {
            __m256 w = _mm256_loadu_ps(src + i);
            __m256 magnitude = _mm256_and_ps(w, abs_mask);
            int non_finite = _mm256_movemask_ps(_mm256_cmp_ps(magnitude, inf, _CMP_NLT_UQ));  // inf or NaN
            if (non_finite) {
                // Rare: handle these eight on the scalar path, which counts and skips them.
                mlpkg_f16_stats part = {0};
                convert_scalar(src, dst, i, i + 8, &part);
                s->non_finite += part.non_finite;
                s->clamped += part.clamped;
                if (part.max_abs_error > s->max_abs_error) s->max_abs_error = part.max_abs_error;
                s->signal_energy += part.signal_energy;
                s->error_energy += part.error_energy;
                continue;
            }
            s->clamped += (size_t)__builtin_popcount(_mm256_movemask_ps(_mm256_cmp_ps(magnitude, max_half, _CMP_GT_OQ)));
            __m256 v = _mm256_min_ps(_mm256_max_ps(w, min_half), max_half);
            __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
            _mm_storeu_si128((__m128i *)(dst + i), h);
            __m256 back = _mm256_cvtph_ps(h);
            __m256 err = _mm256_and_ps(_mm256_sub_ps(w, back), abs_mask);
            max_err = _mm256_max_ps(max_err, err);
            signal = _mm256_add_ps(signal, _mm256_mul_ps(w, w));
            error = _mm256_add_ps(error, _mm256_mul_ps(err, err));
        }
        float lanes[8], errs[8], maxes[8];
        _mm256_storeu_ps(lanes, signal);
        _mm256_storeu_ps(errs, error);
        _mm256_storeu_ps(maxes, max_err);
        for (int k = 0; k < 8; k++) {
            s->signal_energy += lanes[k];
            s->error_energy += errs[k];
            if (maxes[k] > s->max_abs_error) s->max_abs_error = maxes[k];
        }
    }
    convert_scalar(src, dst, vector_end, n, s);
}

__attribute__((target("avx,f16c")))
static void widen_f16c(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) dst[i] = float_from_half(src[i]);
}
#endif

int mlpkg_f16c_available(void) {
#ifdef MLPKG_X86
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
    }
    return cached;
#else
    return 0;
#endif
}

void mlpkg_f32_to_f16(const float *src, uint16_t *dst, size_t n, mlpkg_f16_stats *stats) {
    memset(stats, 0, sizeof *stats);
#ifdef MLPKG_X86
    if (mlpkg_f16c_available()) {
        convert_f16c(src, dst, n, stats);
        return;
    }
#endif
    convert_scalar(src, dst, 0, n, stats);
}

void mlpkg_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
#ifdef MLPKG_X86
    if (mlpkg_f16c_available()) {
        widen_f16c(src, dst, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = float_from_half(src[i]);
}
