// Element-wise and attention kernels: expf, RMSNorm, RoPE (NEOX), SiLU*up,
// add, the f16 KV cache and causal grouped-query attention; and the module's
// start-up (kernels_init: the f16 table every kernel reads).
#include "kernels.h"

float fp16_table[65536];

EXPORT void kernels_init(void) {
    for (int i = 0; i < 65536; i++) fp16_table[i] = fp16_to_fp32((uint16_t)i);
}

#define UNROLL_ATTN _Pragma("clang loop unroll(full)")

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

#define EXP_LN2_HI 0x1.62e4p-1f            // 0.693145751953125
#define EXP_LN2_LO 0x1.7f7d1cf79abcap-20f  // ln2 - EXP_LN2_HI
#define EXP_LOG2E 0x1.715476p+0f
#define EXP_MAX 0x1.62e42ep+6f             // largest x with finite expf(x)
#define EXP_MIN (-0x1.9fe368p+6f)          // below: rounds to 0

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

v128_t expf_accurate_f32x4(v128_t x) {
    v128_t k = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(EXP_LOG2E)));
    v128_t r = wasm_f32x4_sub(wasm_f32x4_sub(x, wasm_f32x4_mul(k, wasm_f32x4_splat(EXP_LN2_HI))),
                              wasm_f32x4_mul(k, wasm_f32x4_splat(EXP_LN2_LO)));
    v128_t p = wasm_f32x4_splat(1.0f / 5040.0f);
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 720.0f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 120.0f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 24.0f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 6.0f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(0.5f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
    // Clamp k so the exponent arithmetic stays in range for out-of-range lanes
    // (their results are replaced below).
    v128_t ki = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_pmin(wasm_f32x4_pmax(k, wasm_f32x4_splat(-150.0f)), wasm_f32x4_splat(128.0f)));
    v128_t k1 = wasm_i32x4_shr(ki, 1), k2 = wasm_i32x4_sub(ki, k1);
    v128_t bias = wasm_i32x4_splat(127);
    v128_t y = wasm_f32x4_mul(wasm_f32x4_mul(p, wasm_i32x4_shl(wasm_i32x4_add(k1, bias), 23)),
                              wasm_i32x4_shl(wasm_i32x4_add(k2, bias), 23));
    y = wasm_v128_bitselect(wasm_f32x4_splat(__builtin_inff()), y, wasm_f32x4_gt(x, wasm_f32x4_splat(EXP_MAX)));
    y = wasm_v128_bitselect(wasm_f32x4_splat(0.0f), y, wasm_f32x4_lt(x, wasm_f32x4_splat(EXP_MIN)));
    return wasm_v128_bitselect(x, y, wasm_f32x4_ne(x, x));  // NaN stays NaN
}

EXPORT float kernel_expf(float x) { return expf_accurate(x); }

// dst[i] = exp(src[i]) with the SIMD version (tests compare it with the scalar one).
EXPORT void expf_vec(float *dst, const float *src, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, expf_accurate_f32x4(wasm_v128_load(src + i)));
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
    const v128_t one = wasm_f32x4_splat(1.0f);
    for (; i + 4 <= n; i += 4) {
        v128_t g = wasm_v128_load(gate + i);
        v128_t silu = wasm_f32x4_div(g, wasm_f32x4_add(one, expf_accurate_f32x4(wasm_f32x4_neg(g))));
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

// ---------------------------------------------------------------------------
// KV cache, one layer: cache_k and cache_v are f16 [position][kv_dim] with
// kv_dim = n_kv_heads * head_dim (so [position][kv_head][head_dim]).
// Stores rows k, v ([n_tokens][kv_dim] f32) at positions start_pos ...

// fp32_to_fp16 on 4 lanes, bit for bit (lanes as int32 holding the half).
static v128_t fp32_to_fp16_i32x4(v128_t x) {
    v128_t sign = wasm_v128_and(wasm_u32x4_shr(x, 16), wasm_i32x4_splat(0x8000));
    v128_t ax = wasm_v128_and(x, wasm_i32x4_splat(0x7fffffff));
    // normal halves: round the 13 dropped bits, ties to even, and rebias the exponent
    v128_t lsb = wasm_v128_and(wasm_u32x4_shr(ax, 13), wasm_i32x4_splat(1));
    v128_t rounded = wasm_i32x4_add(ax, wasm_i32x4_add(wasm_i32x4_splat(0xfff), lsb));
    v128_t h = wasm_u32x4_shr(wasm_i32x4_sub(rounded, wasm_i32x4_splat((127 - 15) << 23)), 13);
    // below 2^-14: a multiple of 2^-24, rint(|x| * 2^24), ties to even
    v128_t sub = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(ax, wasm_f32x4_splat(0x1p24f))));
    h = wasm_v128_bitselect(sub, h, wasm_i32x4_lt(ax, wasm_i32x4_splat(0x38800000)));
    // >= 65520 rounds to inf; inf stays inf; NaN becomes the quiet NaN 0x7e00
    h = wasm_v128_bitselect(wasm_i32x4_splat(0x7c00), h, wasm_i32x4_ge(ax, wasm_i32x4_splat(0x477ff000)));
    h = wasm_v128_bitselect(wasm_i32x4_splat(0x7e00), h, wasm_i32x4_gt(ax, wasm_i32x4_splat(0x7f800000)));
    return wasm_v128_or(h, sign);
}

static void fp32_to_fp16_row(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v128_t lo = fp32_to_fp16_i32x4(wasm_v128_load(src + i));
        v128_t hi = fp32_to_fp16_i32x4(wasm_v128_load(src + i + 4));
        wasm_v128_store(dst + i, wasm_u16x8_narrow_i32x4(lo, hi));
    }
    for (; i < n; i++) dst[i] = fp32_to_fp16(src[i]);
}

EXPORT void kv_store(uint16_t *cache_k, uint16_t *cache_v, const float *k, const float *v,
                     int n_tokens, int start_pos, int kv_dim) {
    size_t n = (size_t)n_tokens * kv_dim;
    fp32_to_fp16_row(cache_k + (size_t)start_pos * kv_dim, k, n);
    fp32_to_fp16_row(cache_v + (size_t)start_pos * kv_dim, v, n);
}

// ---------------------------------------------------------------------------
// Causal grouped-query attention over the f16 cache.
//
// q, out: [n_tokens][n_heads][head_dim] f32. Token t (absolute position
// start_pos + t) attends to cache positions 0 .. start_pos + t. Query head h
// reads KV head h / (n_heads / n_kv_heads). One work item = one token and one
// KV head; its query heads go in batches of up to 4, so every K/V row is
// converted from f16 once per batch and the 4 heads' scores share one vector:
// scores are stored position-major, [position][4], and the softmax runs on all
// 4 heads at once.
//
// Rounding follows llama.cpp's CPU attention, so that our activations and its
// agree closely enough to quantize to the same integers in the next matmul: it
// multiplies an f16 cache, so it converts q to f16 before q.k and the softmax
// probabilities to f16 before p.v (accumulating in f32). We round q in place
// and the normalized probabilities before the V pass.
//
// scratch: per thread, 4 * n_ctx floats of scores and 4 * head_dim floats of
// output accumulators, n_ctx = start_pos + n_tokens (see attention_scratch_bytes).

#define HEADS_PER_BATCH 4
#define V_POSITION_BLOCK 64  // positions per pass over the V rows (their 8-dim slices stay in L1)

typedef struct {
    float *out;
    const float *q;
    const uint16_t *cache_k, *cache_v;
    int n_tokens, start_pos, n_heads, n_kv_heads, head_dim, group;
    float scale;
    float *scratch;
    size_t scratch_floats_per_thread;
} attention_args;

// [sum(a), sum(b), sum(c), sum(d)]
INLINE v128_t transpose_sum4(v128_t a, v128_t b, v128_t c, v128_t d) {
    v128_t ab = wasm_f32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
    v128_t cd = wasm_f32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
    return wasm_f32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

// G (1..4) query heads q[0..G) (each head_dim floats, contiguous) against K/V rows of one KV head.
INLINE void attention_heads(float *out, const float *q, const uint16_t *k, const uint16_t *v, size_t kv_stride,
                            int n_pos, int hd, float scale, float *scores, float *acc, const int G) {
    // scores[p][j] = scale * q_j . k_p (lanes j >= G are 0)
    for (int p = 0; p < n_pos; p++) {
        const uint16_t *kp = k + (size_t)p * kv_stride;
        v128_t lo[HEADS_PER_BATCH], hi[HEADS_PER_BATCH];
        UNROLL_ATTN for (int j = 0; j < HEADS_PER_BATCH; j++) lo[j] = hi[j] = wasm_f32x4_splat(0.0f);
        for (int d = 0; d < hd; d += 8) {
            v128_t k_lo, k_hi;
            fp16x8_to_f32x4x2(kp + d, &k_lo, &k_hi);
            UNROLL_ATTN for (int j = 0; j < G; j++) {
                lo[j] = wasm_f32x4_add(lo[j], wasm_f32x4_mul(k_lo, wasm_v128_load(q + (size_t)j * hd + d)));
                hi[j] = wasm_f32x4_add(hi[j], wasm_f32x4_mul(k_hi, wasm_v128_load(q + (size_t)j * hd + d + 4)));
            }
        }
        v128_t s = transpose_sum4(wasm_f32x4_add(lo[0], hi[0]), wasm_f32x4_add(lo[1], hi[1]),
                                  wasm_f32x4_add(lo[2], hi[2]), wasm_f32x4_add(lo[3], hi[3]));
        wasm_v128_store(scores + 4 * (size_t)p, wasm_f32x4_mul(s, wasm_f32x4_splat(scale)));
    }

    // softmax over p, 4 heads per vector: exp(s - max), kept unnormalized
    v128_t mx = wasm_v128_load(scores);
    for (int p = 1; p < n_pos; p++) mx = wasm_f32x4_max(mx, wasm_v128_load(scores + 4 * (size_t)p));
    v128_t sum = wasm_f32x4_splat(0.0f);
    for (int p = 0; p < n_pos; p++) {
        v128_t e = expf_accurate_f32x4(wasm_f32x4_sub(wasm_v128_load(scores + 4 * (size_t)p), mx));
        wasm_v128_store(scores + 4 * (size_t)p, e);
        sum = wasm_f32x4_add(sum, e);
    }
    // normalize, then round to f16 as llama.cpp does before multiplying by V
    v128_t inv_sum = wasm_f32x4_div(wasm_f32x4_splat(1.0f), sum);
    for (int p = 0; p < n_pos; p++) {
        float *sp = scores + 4 * (size_t)p;
        wasm_v128_store(sp, round_to_f16_f32x4(wasm_f32x4_mul(wasm_v128_load(sp), inv_sum)));
    }

    // acc[j] = sum_p scores[p][j] * v_p, 8 dims x G heads in registers per pass
    for (int i = 0; i < G * hd; i++) acc[i] = 0.0f;
    for (int p0 = 0; p0 < n_pos; p0 += V_POSITION_BLOCK) {
        int p1 = p0 + V_POSITION_BLOCK < n_pos ? p0 + V_POSITION_BLOCK : n_pos;
        for (int d = 0; d < hd; d += 8) {
            v128_t a_lo[HEADS_PER_BATCH], a_hi[HEADS_PER_BATCH];
            UNROLL_ATTN for (int j = 0; j < G; j++) {
                a_lo[j] = wasm_v128_load(acc + (size_t)j * hd + d);
                a_hi[j] = wasm_v128_load(acc + (size_t)j * hd + d + 4);
            }
            for (int p = p0; p < p1; p++) {
                v128_t v_lo, v_hi;
                fp16x8_to_f32x4x2(v + (size_t)p * kv_stride + d, &v_lo, &v_hi);
                UNROLL_ATTN for (int j = 0; j < G; j++) {
                    v128_t w = wasm_v128_load32_splat(scores + 4 * (size_t)p + j);
                    a_lo[j] = wasm_f32x4_add(a_lo[j], wasm_f32x4_mul(v_lo, w));
                    a_hi[j] = wasm_f32x4_add(a_hi[j], wasm_f32x4_mul(v_hi, w));
                }
            }
            UNROLL_ATTN for (int j = 0; j < G; j++) {
                wasm_v128_store(acc + (size_t)j * hd + d, a_lo[j]);
                wasm_v128_store(acc + (size_t)j * hd + d + 4, a_hi[j]);
            }
        }
    }
    for (int i = 0; i < G * hd; i++) out[i] = acc[i];
}

static void attention_item(const void *vargs, int item, int thread_index) {
    const attention_args *a = (const attention_args *)vargs;
    int t = item / a->n_kv_heads, kvh = item % a->n_kv_heads;
    int n_pos = a->start_pos + t + 1;
    int hd = a->head_dim;
    size_t kv_stride = (size_t)a->n_kv_heads * hd;
    float *scores = a->scratch + (size_t)thread_index * a->scratch_floats_per_thread;
    float *acc = scores + 4 * (size_t)(a->start_pos + a->n_tokens);
    const uint16_t *k = a->cache_k + (size_t)kvh * hd, *v = a->cache_v + (size_t)kvh * hd;
    for (int j0 = 0; j0 < a->group; j0 += HEADS_PER_BATCH) {
        size_t head = (size_t)t * a->n_heads + (size_t)kvh * a->group + j0;
        const float *q = a->q + head * hd;
        float *out = a->out + head * hd;
        switch (a->group - j0 < HEADS_PER_BATCH ? a->group - j0 : HEADS_PER_BATCH) {
        case 1: attention_heads(out, q, k, v, kv_stride, n_pos, hd, a->scale, scores, acc, 1); break;
        case 2: attention_heads(out, q, k, v, kv_stride, n_pos, hd, a->scale, scores, acc, 2); break;
        case 3: attention_heads(out, q, k, v, kv_stride, n_pos, hd, a->scale, scores, acc, 3); break;
        default: attention_heads(out, q, k, v, kv_stride, n_pos, hd, a->scale, scores, acc, 4); break;
        }
    }
}

INLINE size_t attention_floats_per_thread(int n_tokens, int start_pos, int head_dim) {
    size_t floats = 4 * (size_t)(start_pos + n_tokens) + (size_t)HEADS_PER_BATCH * head_dim;
    return (floats + 15) & ~(size_t)15;  // keep every thread's slice 64-byte aligned
}

EXPORT int attention_scratch_bytes(int n_tokens, int start_pos, int n_heads, int n_kv_heads, int head_dim) {
    if (n_kv_heads <= 0 || n_heads % n_kv_heads || n_tokens <= 0 || start_pos < 0 || head_dim <= 0) return KERNEL_BAD_ARGS;
    size_t bytes = attention_floats_per_thread(n_tokens, start_pos, head_dim) * 4 * (size_t)pool_thread_count();
    return bytes > 0x7fffffff ? KERNEL_BAD_ARGS : (int)bytes;
}

EXPORT int attention(float *out, const float *q, const uint16_t *cache_k, const uint16_t *cache_v,
                     int n_tokens, int start_pos, int n_heads, int n_kv_heads, int head_dim, float scale,
                     float *scratch) {
    if (n_tokens <= 0 || start_pos < 0 || n_kv_heads <= 0 || n_heads % n_kv_heads || head_dim <= 0 ||
        head_dim % 8)
        return KERNEL_BAD_ARGS;
    attention_args a;
    a.out = out;
    a.q = q;
    a.cache_k = cache_k;
    a.cache_v = cache_v;
    a.n_tokens = n_tokens;
    a.start_pos = start_pos;
    a.n_heads = n_heads;
    a.n_kv_heads = n_kv_heads;
    a.head_dim = head_dim;
    a.group = n_heads / n_kv_heads;
    a.scale = scale;
    a.scratch = scratch;
    a.scratch_floats_per_thread = attention_floats_per_thread(n_tokens, start_pos, head_dim);
    // q to f16 precision, in place (see the header comment)
    float *qw = (float *)q;
    size_t nq = (size_t)n_tokens * n_heads * head_dim;
    for (size_t i = 0; i < nq; i += 4) wasm_v128_store(qw + i, round_to_f16_f32x4(wasm_v128_load(qw + i)));
    pool_run(attention_item, &a, n_tokens * n_kv_heads);
    return KERNEL_OK;
}
