// Scalar float32 <-> float16 conversion shared by the kernels (round to nearest even; reference semantics).
#ifndef MLPKG_F16_SCALAR_H
#define MLPKG_F16_SCALAR_H
#include <stdint.h>
#include <string.h>

static inline uint32_t f32_bits(float v) { uint32_t b; memcpy(&b, &v, 4); return b; }
static inline float bits_f32(uint32_t b) { float v; memcpy(&v, &b, 4); return v; }

static inline uint16_t half_from_float(float value) {
    uint32_t bits = f32_bits(value);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000);
    int exponent = (int)((bits >> 23) & 0xFF);
    uint32_t mantissa = bits & 0x7FFFFF;
    if (exponent == 0xFF) return sign | 0x7C00 | (mantissa ? (0x0200 | (uint16_t)(mantissa >> 13)) : 0);
    int half_exponent = exponent - 127 + 15;
    if (half_exponent >= 0x1F) return sign | 0x7C00;
    if (half_exponent <= 0) {
        if (half_exponent < -10) return sign;
        mantissa |= 0x800000;
        uint32_t shift = (uint32_t)(14 - half_exponent);
        uint32_t half_mantissa = mantissa >> shift;
        uint32_t remainder = mantissa & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        if (remainder > halfway || (remainder == halfway && (half_mantissa & 1))) half_mantissa++;
        return sign | (uint16_t)half_mantissa;
    }
    uint32_t result = ((uint32_t)half_exponent << 10) | (mantissa >> 13);
    uint32_t remainder = mantissa & 0x1FFF;
    if (remainder > 0x1000 || (remainder == 0x1000 && (result & 1))) result++;
    return sign | (uint16_t)result;
}

static inline float float_from_half(uint16_t half) {
    uint32_t sign = (uint32_t)(half & 0x8000) << 16;
    uint32_t exponent = (half >> 10) & 0x1F;
    uint32_t mantissa = half & 0x3FF;
    if (exponent == 0) {
        if (mantissa == 0) return bits_f32(sign);
        float magnitude = (float)mantissa * 5.9604644775390625e-8f;  // 2^-24
        return sign ? -magnitude : magnitude;
    }
    if (exponent == 0x1F) return bits_f32(sign | 0x7F800000 | (mantissa << 13));
    return bits_f32(sign | ((exponent + 112) << 23) | (mantissa << 13));
}


#endif
