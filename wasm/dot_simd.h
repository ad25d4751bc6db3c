// What both builds' dot-product kernels share (dot_simd128.c, dot_relaxed.c): the tile
// loops, the kernels whose instructions are the same in both (F32, F16), the Q4_K and Q6_K
// scale unpacking, and the Q6_K tile over the build's own q6_K_group. A build file defines
// TILE_T (tokens per tile), q6_K_act_block and Q6_K_SCALE_SPLAT before including this.
//
// Each rows_<type>() walks tokens in tiles of TILE_T: every weight block is unpacked once per
// tile and multiplied with TILE_T activation rows, which is where prefill speed comes from;
// decode (one token) runs the T = 1 tile.
#pragma once
#include "kernels.h"

#if !defined(TILE_T) || !defined(Q6_K_SCALE_SPLAT)
#error "define TILE_T, q6_K_act_block and Q6_K_SCALE_SPLAT before including dot_simd.h"
#endif

#define UNROLL _Pragma("clang loop unroll(full)")

// lane j of v in all four lanes
#define LANE_SPLAT(v, j) wasm_i32x4_shuffle((v), (v), (j), (j), (j), (j))

// Writes the T results of one tile.
#define STORE_TILE(out, out_stride, acc, T)                                    \
    UNROLL for (int t = 0; t < (T); t++) (out)[(size_t)t * (out_stride)] = hsum_f32x4((acc)[t])

// Runs TILE(out, stride, wrow, x, xs, cols, T) over rows x tokens in tiles of up to MAX_T tokens.
// A last, partial tile runs as tiles of 4, 2 and 1 (T a constant in each, so each is unrolled),
// not token by token: a few tokens (a speculative draft being verified) still share every weight
// block's unpacking. Every tile sums each token on its own, in the same order whatever T is, so a
// token's result does not depend on how many tokens were in the call.
#define ROWS_LOOP_T(TILE, MAX_T)                                                            \
    for (int t0 = 0; t0 < n_tok; t0 += (MAX_T)) {                                           \
        int nt = n_tok - t0 < (MAX_T) ? n_tok - t0 : (MAX_T);                               \
        const uint8_t *xt = x + (size_t)t0 * x_row_bytes;                                   \
        float *ot = out + (size_t)t0 * out_stride;                                          \
        for (int r = 0; r < n_rows; r++) {                                                  \
            const uint8_t *wr = w + (size_t)r * w_row_bytes;                                \
            if (nt == (MAX_T)) {                                                            \
                TILE(ot + r, out_stride, wr, xt, x_row_bytes, cols, (MAX_T));               \
                continue;                                                                   \
            }                                                                               \
            for (int t = 0; t < nt;) {                                                      \
                float *o = ot + (size_t)t * out_stride + r;                                 \
                const uint8_t *xr = xt + (size_t)t * x_row_bytes;                           \
                if ((MAX_T) > 4 && nt - t >= 4) { TILE(o, out_stride, wr, xr, x_row_bytes, cols, 4); t += 4; } \
                else if (nt - t >= 2) { TILE(o, out_stride, wr, xr, x_row_bytes, cols, 2); t += 2; }        \
                else { TILE(o, out_stride, wr, xr, x_row_bytes, cols, 1); t += 1; }                         \
            }                                                                               \
        }                                                                                   \
    }
#define ROWS_LOOP(TILE) ROWS_LOOP_T(TILE, TILE_T)

INLINE void tile_f32(float *out, int out_stride, const uint8_t *wrow, const uint8_t *x, size_t xs,
                     int cols, const int T) {
    const float *w = (const float *)wrow;
    v128_t acc[TILE_T];
    UNROLL for (int t = 0; t < T; t++) acc[t] = wasm_f32x4_splat(0.0f);
    int i = 0;
    for (; i + 4 <= cols; i += 4) {
        v128_t wv = wasm_v128_load(w + i);
        UNROLL for (int t = 0; t < T; t++)
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(wv, wasm_v128_load((const float *)(x + t * xs) + i)));
    }
    for (; i < cols; i++) {
        UNROLL for (int t = 0; t < T; t++)
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_make(w[i] * ((const float *)(x + t * xs))[i], 0, 0, 0));
    }
    STORE_TILE(out, out_stride, acc, T);
}

INLINE void tile_f16(float *out, int out_stride, const uint8_t *wrow, const uint8_t *x, size_t xs,
                     int cols, const int T) {
    const uint16_t *w = (const uint16_t *)wrow;
    v128_t acc[TILE_T];
    UNROLL for (int t = 0; t < T; t++) acc[t] = wasm_f32x4_splat(0.0f);
    int i = 0;
    for (; i + 8 <= cols; i += 8) {
        v128_t lo, hi;
        fp16x8_to_f32x4x2(w + i, &lo, &hi, fp16_consts_plain());
        UNROLL for (int t = 0; t < T; t++) {
            const float *a = (const float *)(x + t * xs) + i;
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_add(wasm_f32x4_mul(lo, wasm_v128_load(a)),
                                                           wasm_f32x4_mul(hi, wasm_v128_load(a + 4))));
        }
    }
    for (; i < cols; i++) {
        float wi = fp16_to_fp32(w[i]);
        UNROLL for (int t = 0; t < T; t++)
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_make(wi * ((const float *)(x + t * xs))[i], 0, 0, 0));
    }
    STORE_TILE(out, out_stride, acc, T);
}

// The 8 scales and 8 mins of a Q4_K block as vectors, unpacked 4 at a time in
// 32-bit words (bytes 0-3 hold sc0..3 and the top bits of sc4..7, bytes 4-7 the
// same for the mins, bytes 8-11 the low 4 bits of sc4..7 and m4..7):
//   sc_lo = [sc0..sc3], sc_hi = [sc4..sc7] as i32x4;
//   mins_lo/hi = [m0 m0 m1 m1 .. m7 m7] as i16x8, one per 16 activations, to
//   pair with the activation block's bsums[16] in i32x4.dot_i16x8.
INLINE void q4_K_scale_vectors(const uint8_t *s, v128_t *sc_lo, v128_t *sc_hi, v128_t *mins_lo, v128_t *mins_hi) {
    uint32_t u0, u1, u2;
    __builtin_memcpy(&u0, s, 4);
    __builtin_memcpy(&u1, s + 4, 4);
    __builtin_memcpy(&u2, s + 8, 4);
    uint32_t sc03 = u0 & 0x3f3f3f3fu, m03 = u1 & 0x3f3f3f3fu;
    uint32_t sc47 = (u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u);
    uint32_t m47 = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u);
    v128_t v = wasm_i32x4_make((int32_t)sc03, (int32_t)sc47, (int32_t)m03, (int32_t)m47);  // bytes sc0..7, m0..7
    v128_t sc16 = wasm_u16x8_extend_low_u8x16(v);
    *sc_lo = wasm_u32x4_extend_low_u16x8(sc16);
    *sc_hi = wasm_u32x4_extend_high_u16x8(sc16);
    v128_t mdup = wasm_i8x16_shuffle(v, v, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    *mins_lo = wasm_u16x8_extend_low_u8x16(mdup);
    *mins_hi = wasm_u16x8_extend_high_u8x16(mdup);
}

// acc + (d_w * d_x) * isum - (dmin_w * d_x) * msum: a Q4_K super-block's float step.
INLINE v128_t q4_K_accumulate(v128_t acc, v128_t isum, v128_t msum, float d, float dmin, float dx) {
    return wasm_f32x4_add(acc, wasm_f32x4_sub(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(isum), wasm_f32x4_splat(d * dx)),
                                              wasm_f32x4_mul(wasm_f32x4_convert_i32x4(msum), wasm_f32x4_splat(dmin * dx))));
}

// sum_j m_j * (bsums[2j] + bsums[2j+1]) in 4 lanes
INLINE v128_t q4_K_min_sums(v128_t mins_lo, v128_t mins_hi, const int16_t *bsums) {
    return wasm_i32x4_add(wasm_i32x4_dot_i16x8(mins_lo, wasm_v128_load(bsums)),
                          wasm_i32x4_dot_i16x8(mins_hi, wasm_v128_load(bsums + 8)));
}

// 32 * sum_k scales[k] * bsums[k] in 4 lanes: the "- 32" of every quant, per super-block.
INLINE v128_t q6_K_offset(v128_t sc16_lo, v128_t sc16_hi, const int16_t bsums[16]) {
    v128_t lo = wasm_i32x4_dot_i16x8(sc16_lo, wasm_v128_load(bsums));
    v128_t hi = wasm_i32x4_dot_i16x8(sc16_hi, wasm_v128_load(bsums + 8));
    return wasm_i32x4_shl(wasm_i32x4_add(lo, hi), 5);
}

// The 16 int8 scales as two i16x8 (for the offset).
INLINE void q6_K_scale_vectors(const int8_t *scales, v128_t *sc16_lo, v128_t *sc16_hi) {
    v128_t s = wasm_v128_load(scales);
    *sc16_lo = wasm_i16x8_extend_low_i8x16(s);
    *sc16_hi = wasm_i16x8_extend_high_i8x16(s);
}

// ---------------------------------------------------------------------------
// F32 and F16 weights: f32 activations, f32 products.

static void rows_f32(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
              const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_f32)
}

static void rows_f16(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
              const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_f16)
}

// ---------------------------------------------------------------------------
// Q6_K: the super-block loop both builds share; the 32-quant groups are the build's.

// One group of 32 quants (32g .. 32g+31 of half h) against T activation rows; s0, s1: the
// scales of its two sub-blocks of 16, splat (Q6_K_SCALE_SPLAT). Defined by each build.
INLINE void q6_K_group(v128_t *isum, const block_q6_K *w, int b, const uint8_t *x, size_t xs, int h,
                       const int g, v128_t s0, v128_t s1, const int T);

INLINE void tile_q6_K(float *out, int out_stride, const uint8_t *wrow, const uint8_t *x, size_t xs,
                      int cols, const int T) {
    const block_q6_K *w = (const block_q6_K *)wrow;
    v128_t acc[TILE_T];
    UNROLL for (int t = 0; t < T; t++) acc[t] = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < cols / QK_K; b++) {
        v128_t isum[TILE_T];
        UNROLL for (int t = 0; t < T; t++) isum[t] = wasm_i32x4_splat(0);
        v128_t sc16_lo, sc16_hi;
        q6_K_scale_vectors(w[b].scales, &sc16_lo, &sc16_hi);
        for (int h = 0; h < 2; h++) {
            // group g of half h uses scales 8h + 2g and 8h + 2g + 1
            const int8_t *sc = w[b].scales + 8 * h;
            q6_K_group(isum, w, b, x, xs, h, 0, Q6_K_SCALE_SPLAT(sc[0]), Q6_K_SCALE_SPLAT(sc[1]), T);
            q6_K_group(isum, w, b, x, xs, h, 1, Q6_K_SCALE_SPLAT(sc[2]), Q6_K_SCALE_SPLAT(sc[3]), T);
            q6_K_group(isum, w, b, x, xs, h, 2, Q6_K_SCALE_SPLAT(sc[4]), Q6_K_SCALE_SPLAT(sc[5]), T);
            q6_K_group(isum, w, b, x, xs, h, 3, Q6_K_SCALE_SPLAT(sc[6]), Q6_K_SCALE_SPLAT(sc[7]), T);
        }
        float d = fp16_lookup(w[b].d);
        UNROLL for (int t = 0; t < T; t++) {
            const q6_K_act_block *a = (const q6_K_act_block *)(x + t * xs) + b;
            v128_t total = wasm_i32x4_sub(isum[t], q6_K_offset(sc16_lo, sc16_hi, a->bsums));
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(total), wasm_f32x4_splat(d * a->d)));
        }
    }
    STORE_TILE(out, out_stride, acc, T);
}

static void rows_q6_K(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
               const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_q6_K)
}
