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

#endif
