#ifndef MLPKG_CKERNELS_H
#define MLPKG_CKERNELS_H
#include <stddef.h>
#include <stdint.h>

/// Error statistics of a float32 → float16 pass.
typedef struct {
    size_t clamped;        ///< values beyond ±65504, clamped to it
    size_t non_finite;     ///< inf or NaN inputs (their outputs are meaningless: callers keep such tensors as they are)
    float max_abs_error;   ///< max |w − ŵ| over finite values
    double signal_energy;  ///< Σ w²
    double error_energy;   ///< Σ (w − ŵ)²
} mlpkg_f16_stats;

/// float32 → IEEE half, round to nearest even, magnitudes beyond 65504 clamped. Uses F16C/AVX when the CPU has them
/// (checked at run time), a portable path otherwise. `src` needs no particular alignment.
void mlpkg_f32_to_f16(const float *src, uint16_t *dst, size_t n, mlpkg_f16_stats *stats);

/// The same with the portable path forced (for tests and CPUs without F16C).
void mlpkg_f32_to_f16_portable(const float *src, uint16_t *dst, size_t n, mlpkg_f16_stats *stats);

/// IEEE half → float32 (exact).
void mlpkg_f16_to_f32(const uint16_t *src, float *dst, size_t n);

/// 1 when the fast path (F16C + AVX) is in use on this CPU.
int mlpkg_f16c_available(void);


/// How many of `values` are inf or NaN (`values` need not be aligned).
size_t mlpkg_count_nonfinite(const float *values, size_t n);

/// Packs 4-bit values two per byte, element 2i in the low nibble; `out` holds ⌈n/2⌉ bytes.
void mlpkg_pack_nibbles(const int8_t *values, uint8_t *out, size_t n);

#endif

/// Linear quantization of a float32 tensor viewed as [outer, depth, inner], with one scale (and zero point) per
/// group (o, d / block, i) — ONNX DequantizeLinear's blocked layout; per-tensor and per-channel scales are the
/// cases block == depth with outer or inner 1. For each group it tries `scale = base · multipliers[k]` (base:
/// max|w| / qmax when symmetric, (max' − min') / (qmax − qmin) otherwise, ranges widened to include 0) and keeps the
/// one with the least squared error, then refits it by least squares; k = 0 is plain round-to-nearest. A negative
/// multiplier m (symmetric only) means the signed scale extreme / qmin · |m|, which maps the largest-magnitude weight
/// to qmin whatever its sign (so scales may be negative).
typedef struct {
    double signal_energy;       ///< Σ w²
    double error_energy;        ///< Σ (w − ŵ)² with the chosen scales
    double rtn_error_energy;    ///< the same with multiplier 0 (round to nearest)
    float max_abs_error;
    size_t non_finite;          ///< inf/NaN inputs; when non-zero, every other output is meaningless
} mlpkg_quant_stats;

/// `w` holds outer · depth · inner little-endian float32 values at any alignment. The integers (in [qmin, qmax]) go
/// one int8 per element to `q`, or, when `nibbles` is not NULL, two per byte to `nibbles` (element 2i in the low
/// nibble, ⌈n/2⌉ bytes). `scales` and `zeros` get one float per group, in row-major [outer, ceil(depth / block),
/// inner] order (zeros are whole numbers; all 0 when symmetric). Zero-range groups get scale 0 (callers store 1).
/// With `half_scales`, every candidate scale is rounded to what float16 holds before it is judged, so the search
/// sees the stored result and the statistics describe it. The AVX2 and portable paths give identical bytes. Returns 0 when out of
/// memory (nothing useful was written).
int mlpkg_quantize_blocked(const void *w, size_t outer, size_t depth, size_t inner, size_t block, int symmetric,
                           int qmin, int qmax, const float *multipliers, size_t multiplier_count, int half_scales,
                           int8_t *q, uint8_t *nibbles, float *scales, float *zeros, mlpkg_quant_stats *stats);

/// 1 when mlpkg_quantize_blocked uses its AVX2 path on this CPU.
int mlpkg_quantize_simd_available(void);

/// Forces the portable path (non-zero) or restores detection (0), for every thread; for tests comparing the two.
void mlpkg_quantize_force_portable(int portable);

/// A scale as float16 holds it (nearest even; non-zero never becomes zero; clamped to ±65504).
float mlpkg_round_scale_to_half(float s);
