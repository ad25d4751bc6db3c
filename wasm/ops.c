// Element-wise kernels: expf, RMSNorm, RoPE (NEOX), SiLU*up, add; and the
// module's start-up (kernels_init: the f16 table every kernel reads). The KV
// cache and attention are in attention.c.
#include "kernels.h"

float fp16_table[65536];
volatile int32_t kernel_runtime_zero = 0;

EXPORT void kernels_init(void) {
    for (int i = 0; i < 65536; i++) fp16_table[i] = fp16_to_fp32((uint16_t)i);
}

// ---------------------------------------------------------------------------
// expf, accurate to about 1 ulp.
//
// exp(x) = 2^k * exp(r), k = round(x / ln2), r = x - k*ln2 in [-ln2/2, ln2/2].
// ln2 is split in a high part with 15 significant bits (k * LN2_HI is exact for
// |k| <= 256) and a low part. exp(r) is its Taylor series to degree 7
// (truncation < 6e-9 relative). 2^k is applied as two factors 2^(k>>1) and
// 2^(k - (k>>1)) so that k from -150 (subnormal results) to 128 stays
// representable. The scalar and the f32x4 versions run the same operations in
// the same order, so they return identical bits.

INLINE float exp_poly(float r) {
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    return p * r + 1.0f;
}

float expf_accurate(float x) {
    if (x != x) return x;
    if (x > EXP_MAX) return __builtin_inff();
    if (x < EXP_MIN) return 0.0f;
    float k = __builtin_rintf(x * EXP_LOG2E);
    float r = (x - k * EXP_LN2_HI) - k * EXP_LN2_LO;
    int32_t ki = (int32_t)k;
    int32_t k1 = ki >> 1, k2 = ki - k1;
    return exp_poly(r) * f32_from_bits((uint32_t)(k1 + 127) << 23) * f32_from_bits((uint32_t)(k2 + 127) << 23);
}

EXPORT float kernel_expf(float x) { return expf_accurate(x); }

// dst[i] = exp(src[i]) with the SIMD version (tests compare it with the scalar one).
EXPORT void expf_vec(float *dst, const float *src, int n) {
    int i = 0;
    const exp_consts k = exp_loop_consts();
    for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, expf_f32x4_with(wasm_v128_load(src + i), k));
    for (; i < n; i++) dst[i] = expf_accurate(src[i]);
}

// ---------------------------------------------------------------------------
// RMSNorm over rows of n: dst = src / sqrt(mean(src^2) + eps) * weight.
// Like llama.cpp: squares in float, summed in double, scale = 1 / sqrtf(mean + eps),
// then (x * scale) * weight. dst may equal src.

EXPORT void rmsnorm(float *dst, const float *src, const float *weight, int n, int n_rows, float eps) {
    for (int row = 0; row < n_rows; row++, src += n, dst += n) {
        v128_t s0 = wasm_f64x2_splat(0.0), s1 = wasm_f64x2_splat(0.0);
        int i = 0;
        for (; i + 4 <= n; i += 4) {
            v128_t x = wasm_v128_load(src + i);
            v128_t sq = wasm_f32x4_mul(x, x);
            s0 = wasm_f64x2_add(s0, wasm_f64x2_promote_low_f32x4(sq));
            s1 = wasm_f64x2_add(s1, wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(sq, sq, 2, 3, 0, 1)));
        }
        double sum = wasm_f64x2_extract_lane(s0, 0) + wasm_f64x2_extract_lane(s0, 1) +
                     wasm_f64x2_extract_lane(s1, 0) + wasm_f64x2_extract_lane(s1, 1);
        for (; i < n; i++) sum += (double)(src[i] * src[i]);
        float mean = (float)(sum / n);
        float scale = 1.0f / __builtin_sqrtf(mean + eps);
        v128_t vs = wasm_f32x4_splat(scale);
        i = 0;
        for (; i + 4 <= n; i += 4)
            wasm_v128_store(dst + i, wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(src + i), vs), wasm_v128_load(weight + i)));
        for (; i < n; i++) dst[i] = (src[i] * scale) * weight[i];
    }
}

// ---------------------------------------------------------------------------
// RoPE, NEOX style: in every head, pair (i, i + head_dim/2) is rotated by
// theta_i = pos * base^(-2i/head_dim).
//
// theta is formed as llama.cpp forms it (float, theta_0 = pos, theta_{i+1} =
// theta_i * theta_scale with theta_scale = powf(base, -2/head_dim) passed in),
// then cos/sin are evaluated in double and rounded: the float cos/sin of
// exactly that float theta, which is what glibc's cosf/sinf return.

// sin and cos of x (|x| < 2^20 or so) in double precision.
static void sincos_double(double x, double *s, double *c) {
    // x = k * pi/2 + r; pi/2 split in a 33-bit head (k * head exact for |k| < 2^20)
    // and a tail.
    const double pio2_hi = 1.57079632673412561417e+00;
    const double pio2_lo = 6.07710050650619224932e-11;
    const double two_over_pi = 6.36619772367581382433e-01;
    double k = __builtin_rint(x * two_over_pi);
    double r = (x - k * pio2_hi) - k * pio2_lo;
    double r2 = r * r;
    // Taylor series on |r| <= pi/4: errors below 1e-16
    double sn = r * (1.0 + r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 + r2 * (1.0 / 362880 +
                r2 * (-1.0 / 39916800 + r2 * (1.0 / 6227020800.0 + r2 * (-1.0 / 1307674368000.0))))))));
    double cs = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24 + r2 * (-1.0 / 720 + r2 * (1.0 / 40320 + r2 * (-1.0 / 3628800 +
                r2 * (1.0 / 479001600.0 + r2 * (-1.0 / 87178291200.0 + r2 * (1.0 / 20922789888000.0))))))));
    int quadrant = (int)((int64_t)k & 3);
    switch (quadrant) {
    case 0: *s = sn; *c = cs; break;
    case 1: *s = cs; *c = -sn; break;
    case 2: *s = -sn; *c = -cs; break;
    default: *s = -cs; *c = sn; break;
    }
}

EXPORT void rope_cos_sin(float *cos_out, float *sin_out, float theta) {
    double s, c;
    sincos_double((double)theta, &s, &c);
    *cos_out = (float)c;
    *sin_out = (float)s;
}

// x: [n_tokens][n_heads][head_dim], rotated in place. positions: int32[n_tokens].
// cos_sin_scratch: head_dim floats.
EXPORT int rope_neox(float *x, int n_tokens, int n_heads, int head_dim, const int32_t *positions,
                     float theta_scale, float *cos_sin_scratch) {
    if (head_dim <= 0 || (head_dim & 1)) return KERNEL_BAD_ARGS;
    int half = head_dim / 2;
    float *cos_t = cos_sin_scratch, *sin_t = cos_sin_scratch + half;
    for (int t = 0; t < n_tokens; t++) {
        float theta = (float)positions[t];
        for (int i = 0; i < half; i++) {
            rope_cos_sin(&cos_t[i], &sin_t[i], theta);
            theta *= theta_scale;
        }
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)t * n_heads + h) * head_dim;
            int i = 0;
            for (; i + 4 <= half; i += 4) {
                v128_t x0 = wasm_v128_load(v + i), x1 = wasm_v128_load(v + half + i);
                v128_t c = wasm_v128_load(cos_t + i), s = wasm_v128_load(sin_t + i);
                wasm_v128_store(v + i, wasm_f32x4_sub(wasm_f32x4_mul(x0, c), wasm_f32x4_mul(x1, s)));
                wasm_v128_store(v + half + i, wasm_f32x4_add(wasm_f32x4_mul(x0, s), wasm_f32x4_mul(x1, c)));
            }
            for (; i < half; i++) {
                float x0 = v[i], x1 = v[half + i];
                v[i] = x0 * cos_t[i] - x1 * sin_t[i];
                v[half + i] = x0 * sin_t[i] + x1 * cos_t[i];
            }
        }
    }
    return KERNEL_OK;
}

// ---------------------------------------------------------------------------
// gate = silu(gate) * up = gate / (1 + exp(-gate)) * up;  dst += src.

EXPORT void silu_mul(float *gate, const float *up, int n) {
    int i = 0;
    const exp_consts k = exp_loop_consts();
    for (; i + 4 <= n; i += 4) {
        v128_t g = wasm_v128_load(gate + i);
        v128_t silu = wasm_f32x4_div(g, wasm_f32x4_add(k.one, expf_f32x4_with(wasm_f32x4_neg(g), k)));
        wasm_v128_store(gate + i, wasm_f32x4_mul(silu, wasm_v128_load(up + i)));
    }
    for (; i < n; i++) gate[i] = gate[i] / (1.0f + expf_accurate(-gate[i])) * up[i];
}

EXPORT void add(float *dst, const float *src, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4)
        wasm_v128_store(dst + i, wasm_f32x4_add(wasm_v128_load(dst + i), wasm_v128_load(src + i)));
    for (; i < n; i++) dst[i] += src[i];
}
