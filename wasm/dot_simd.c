// SIMD dot-product kernels: a few weight rows against a few activation rows.
//
// Each rows_<type>() walks tokens in tiles of TILE_T: every weight block is
// unpacked once per tile and multiplied with TILE_T activation rows, which is
// where prefill speed comes from; decode (one token) runs the T = 1 tile.
// The relaxed build's Q4_0 prefill goes further (groups_q4_0): tokens in groups of
// 4 interleaved so that the dot products' lanes are tokens.
//
// SIMD128 build: activations are int16, permuted (quants.h), and products use
// i32x4.dot_i16x8_s. A block of weight bytes read as uint16 lanes gives the
// even bytes with "& 0x000f"-style masks and the odd bytes with ">> 8": no
// shuffles and no widening of activations in the hot loop.
//
// Relaxed build: activations are int8 in natural order and products use
// i32x4.relaxed_dot_i8x16_i7x16_add_s. Its second operand must lie in 0..127
// for the result to be the same on every engine: we always pass the weight
// quants there (4-bit 0..15 or 6-bit 0..63), never the signed activations.
#include "kernels.h"

// Tokens per tile. A/B, 64 tokens: relaxed, 8 vs 4: Q4_K 1.29-1.36x, Q6_K 1.08-1.11x (12 and
// 16 no better); SIMD128, 8 vs 4: Q4_Kx 0.80x (its per-token int32 sums run out of registers).
#define TILE_T (KERNELS_RELAXED ? 8 : 4)
#define UNROLL _Pragma("clang loop unroll(full)")

// lane j of v in all four lanes
#define LANE_SPLAT(v, j) wasm_i32x4_shuffle((v), (v), (j), (j), (j), (j))

#if !KERNELS_RELAXED
// sum of 32 products of 4 int16 weight vectors with 32 permuted activations, in 4 lanes
INLINE v128_t dot4_i16(v128_t w0, v128_t w1, v128_t w2, v128_t w3, const int16_t *a) {
    v128_t s0 = wasm_i32x4_dot_i16x8(w0, wasm_v128_load(a + 0));
    v128_t s1 = wasm_i32x4_dot_i16x8(w1, wasm_v128_load(a + 8));
    v128_t s2 = wasm_i32x4_dot_i16x8(w2, wasm_v128_load(a + 16));
    v128_t s3 = wasm_i32x4_dot_i16x8(w3, wasm_v128_load(a + 24));
    return wasm_i32x4_add(wasm_i32x4_add(s0, s1), wasm_i32x4_add(s2, s3));
}
#endif

#if KERNELS_RELAXED
// sum of 16 products w[i] * a[i] (w in 0..127) added to acc, in 4 lanes
INLINE v128_t rdot(v128_t a_i8, v128_t w_u7, v128_t acc) {
    return wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a_i8, w_u7, acc);
}

// The same 16 products summed in pairs, in 8 int16 lanes: one instruction on x86
// (pmaddubsw) where rdot takes three. With 4-bit weights a pair is at most
// 2 * 128 * 15 = 3840 in magnitude, so up to 8 of these add up in int16 without
// overflow (30720 < 32768) before widen_i16 folds them to 4 int32 lanes.
INLINE v128_t rdot16(v128_t a_i8, v128_t w_u4) {
    return wasm_i16x8_relaxed_dot_i8x16_i7x16(a_i8, w_u4);
}

// int32 lane k = int16 lanes 2k + 2k+1
INLINE v128_t widen_i16(v128_t s) { return wasm_i32x4_extadd_pairwise_i16x8(s); }
#endif

// Writes the T results of one tile.
#define STORE_TILE(out, out_stride, acc, T)                                    \
    UNROLL for (int t = 0; t < (T); t++) (out)[(size_t)t * (out_stride)] = hsum_f32x4((acc)[t])

// Runs TILE(out, stride, wrow, x, xs, cols, T) over rows x tokens in tiles.
#define ROWS_LOOP(TILE)                                                                     \
    for (int t0 = 0; t0 < n_tok; t0 += TILE_T) {                                            \
        int nt = n_tok - t0 < TILE_T ? n_tok - t0 : TILE_T;                                 \
        const uint8_t *xt = x + (size_t)t0 * x_row_bytes;                                   \
        float *ot = out + (size_t)t0 * out_stride;                                          \
        for (int r = 0; r < n_rows; r++) {                                                  \
            const uint8_t *wr = w + (size_t)r * w_row_bytes;                                \
            if (nt == TILE_T) {                                                             \
                TILE(ot + r, out_stride, wr, xt, x_row_bytes, cols, TILE_T);                \
            } else {                                                                        \
                for (int t = 0; t < nt; t++)                                                \
                    TILE(ot + (size_t)t * out_stride + r, out_stride, wr,                   \
                         xt + (size_t)t * x_row_bytes, x_row_bytes, cols, 1);               \
            }                                                                               \
        }                                                                                   \
    }

// ---------------------------------------------------------------------------
// F32 and F16 weights: f32 activations, f32 products.

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
        fp16x8_to_f32x4x2(w + i, &lo, &hi);
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

void rows_f32(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
              const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_f32)
}

void rows_f16(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
              const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_f16)
}

// ---------------------------------------------------------------------------
// Q4_0

#if KERNELS_RELAXED
INLINE void tile_q4_0(float *out, int out_stride, const uint8_t *wrow, const uint8_t *x, size_t xs,
                      int cols, const int T) {
    const block_q4_0 *w = (const block_q4_0 *)wrow;
    const v128_t low4 = wasm_i8x16_splat(15);
    v128_t acc[TILE_T];
    UNROLL for (int t = 0; t < T; t++) acc[t] = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < cols / QK4_0; b++) {
        v128_t v = wasm_v128_load(w[b].qs);
        v128_t lo = wasm_v128_and(v, low4);                      // elements 0..15
        v128_t hi = wasm_v128_and(wasm_u16x8_shr(v, 4), low4);   // elements 16..31
        float dw = fp16_lookup(w[b].d);
        UNROLL for (int t = 0; t < T; t++) {
            const block_q8_32 *a = (const block_q8_32 *)(x + t * xs) + b;
            v128_t s = rdot(wasm_v128_load(a->qs), lo, wasm_i32x4_make(-8 * a->sum, 0, 0, 0));
            s = rdot(wasm_v128_load(a->qs + 16), hi, s);
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(s), wasm_f32x4_splat(dw * a->d)));
        }
    }
    STORE_TILE(out, out_stride, acc, T);
}
#else
INLINE void tile_q4_0(float *out, int out_stride, const uint8_t *wrow, const uint8_t *x, size_t xs,
                      int cols, const int T) {
    const block_q4_0 *w = (const block_q4_0 *)wrow;
    const v128_t low4 = wasm_i16x8_splat(15);
    v128_t acc[TILE_T];
    UNROLL for (int t = 0; t < T; t++) acc[t] = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < cols / QK4_0; b++) {
        v128_t v = wasm_v128_load(w[b].qs);
        v128_t e_lo = wasm_v128_and(v, low4);                    // elements 0 2 .. 14
        v128_t e_hi = wasm_v128_and(wasm_u16x8_shr(v, 4), low4); // 16 18 .. 30
        v128_t o_lo = wasm_v128_and(wasm_u16x8_shr(v, 8), low4); // 1 3 .. 15
        v128_t o_hi = wasm_u16x8_shr(v, 12);                     // 17 19 .. 31
        float dw = fp16_lookup(w[b].d);
        UNROLL for (int t = 0; t < T; t++) {
            const block_q8_32w *a = (const block_q8_32w *)(x + t * xs) + b;
            v128_t s = wasm_i32x4_add(dot4_i16(e_lo, e_hi, o_lo, o_hi, a->qs), wasm_v128_load(a->offset));
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(s), wasm_f32x4_splat(dw * a->d)));
        }
    }
    STORE_TILE(out, out_stride, acc, T);
}
#endif

void rows_q4_0(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
               const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_q4_0)
}

#if KERNELS_RELAXED
// Prefill: one weight row against groups of 4 tokens (block_q8_32x4, built by
// matmul.c from the Q8_32 rows). A weight
// vector repeating weights 4j .. 4j+3 in every lane meets activation vector qs[j],
// so lane k of the relaxed dots sums token k: 8 dots give 4 tokens' block sums with
// no horizontal adds, and the per-block float step (convert, scale, add) serves 4
// tokens at once. Rounding is the scalar reference's: per block (d_w * d_x) * isum,
// added in block order, so results equal matmul_ref's bit for bit.
#define GROUP_TILE 4   // groups per weight-row pass (A/B in Chromium: 3 and 4 up to 10% faster than 2; 1 slower)

// One Q4_0 block against a group of 4 tokens: w[j] repeats the block's quants
// 4j .. 4j+3 in every lane (w[0..3]: low nibbles, elements 0..15; w[4..7]: high
// nibbles, elements 16..31) and meets activation vector qs[j].
INLINE v128_t q4_0_dot_x4(const v128_t w[8], const block_q8_32x4 *a) {
    // int16 pair sums of all 8 products (see rdot16), in two chains so consecutive adds do not wait
    v128_t s0 = rdot16(wasm_v128_load(a->qs[0]), w[0]);
    v128_t s1 = rdot16(wasm_v128_load(a->qs[1]), w[1]);
    s0 = wasm_i16x8_add(s0, rdot16(wasm_v128_load(a->qs[2]), w[2]));
    s1 = wasm_i16x8_add(s1, rdot16(wasm_v128_load(a->qs[3]), w[3]));
    s0 = wasm_i16x8_add(s0, rdot16(wasm_v128_load(a->qs[4]), w[4]));
    s1 = wasm_i16x8_add(s1, rdot16(wasm_v128_load(a->qs[5]), w[5]));
    s0 = wasm_i16x8_add(s0, rdot16(wasm_v128_load(a->qs[6]), w[6]));
    s1 = wasm_i16x8_add(s1, rdot16(wasm_v128_load(a->qs[7]), w[7]));
    return wasm_i32x4_add(widen_i16(wasm_i16x8_add(s0, s1)), wasm_v128_load(a->offset));
}

// Block b of a weight row (its repeated quants w, scale dw) against G groups
// (group g's blocks at x + g * n_blocks), added to acc[g].
INLINE void q4_0_block_x4(v128_t *acc, const v128_t w[8], float dw, const block_q8_32x4 *x, int n_blocks, int b, const int G) {
    v128_t dwv = wasm_f32x4_splat(dw);
    UNROLL for (int g = 0; g < G; g++) {
        const block_q8_32x4 *a = x + (size_t)g * n_blocks + b;
        v128_t scale = wasm_f32x4_mul(dwv, wasm_v128_load(a->d));
        acc[g] = wasm_f32x4_add(acc[g], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(q4_0_dot_x4(w, a)), scale));
    }
}

INLINE void store_groups(float *out, int out_stride, const v128_t *acc, const int G) {
    UNROLL for (int g = 0; g < G; g++) {
        float *o = out + (size_t)(4 * g) * out_stride;
        o[0] = wasm_f32x4_extract_lane(acc[g], 0);
        o[(size_t)out_stride] = wasm_f32x4_extract_lane(acc[g], 1);
        o[(size_t)2 * out_stride] = wasm_f32x4_extract_lane(acc[g], 2);
        o[(size_t)3 * out_stride] = wasm_f32x4_extract_lane(acc[g], 3);
    }
}

// One Q4_0 weight row against G groups.
INLINE void tile_q4_0_x4(float *out, int out_stride, const block_q4_0 *w, const block_q8_32x4 *x, int n_blocks, const int G) {
    const v128_t low4 = wasm_i8x16_splat(15);
    v128_t acc[GROUP_TILE];
    UNROLL for (int g = 0; g < G; g++) acc[g] = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < n_blocks; b++) {
        v128_t v = wasm_v128_load(w[b].qs);
        v128_t lo = wasm_v128_and(v, low4), hi = wasm_v128_and(wasm_u16x8_shr(v, 4), low4);
        v128_t rep[8] = { LANE_SPLAT(lo, 0), LANE_SPLAT(lo, 1), LANE_SPLAT(lo, 2), LANE_SPLAT(lo, 3),
                          LANE_SPLAT(hi, 0), LANE_SPLAT(hi, 1), LANE_SPLAT(hi, 2), LANE_SPLAT(hi, 3) };
        q4_0_block_x4(acc, rep, fp16_lookup(w[b].d), x, n_blocks, b, G);
    }
    store_groups(out, out_stride, acc, G);
}

// One Q4_0x4 weight row against G groups. Block k of a 4-block group has its quants
// 4j .. 4j+3 in lane k of qs[j]: a byte swizzle repeating lane k gives the vectors
// tile_q4_0_x4 makes with lane shuffles. (Transposing each group back into 4 blocks,
// or unpacking whole rows first, measured 6-13% slower.)
INLINE void tile_q4_0x4_x4(float *out, int out_stride, const block_q4_0x4 *w, const block_q8_32x4 *x, int n_blocks, const int G) {
    const v128_t low4 = wasm_i8x16_splat(15);
    v128_t acc[GROUP_TILE];
    UNROLL for (int g = 0; g < G; g++) acc[g] = wasm_f32x4_splat(0.0f);
    for (int q = 0; q < n_blocks / 4; q++) {
        v128_t lo[4], hi[4];
        UNROLL for (int j = 0; j < 4; j++) {
            v128_t v = wasm_v128_load(w[q].qs[j]);
            lo[j] = wasm_v128_and(v, low4);
            hi[j] = wasm_v128_and(wasm_u16x8_shr(v, 4), low4);
        }
        _Pragma("clang loop unroll(disable)")  // unrolled: larger code, measured slower
        for (int k = 0; k < 4; k++) {
            v128_t lane = wasm_i32x4_splat(0x03020100 + 0x04040404 * k);  // bytes 4k .. 4k+3, four times
            v128_t rep[8];
            UNROLL for (int j = 0; j < 4; j++) {
                rep[j] = wasm_i8x16_relaxed_swizzle(lo[j], lane);
                rep[4 + j] = wasm_i8x16_relaxed_swizzle(hi[j], lane);
            }
            q4_0_block_x4(acc, rep, fp16_lookup(w[q].d[k]), x, n_blocks, 4 * q + k, G);
        }
    }
    store_groups(out, out_stride, acc, G);
}

// Runs TILE(out, stride, weight row, groups, n_blocks, G) over rows x groups, GROUP_TILE groups per pass.
#define GROUPS_LOOP(TILE, WEIGHT_BLOCK)                                                                     \
    int n_blocks = cols / QK4_0;                                                                            \
    for (int g0 = 0; g0 < n_groups; g0 += GROUP_TILE) {                                                     \
        const block_q8_32x4 *x = (const block_q8_32x4 *)xg + (size_t)g0 * n_blocks;                         \
        float *o = out + (size_t)(4 * g0) * out_stride;                                                     \
        int ng = n_groups - g0 < GROUP_TILE ? n_groups - g0 : GROUP_TILE;                                   \
        for (int r = 0; r < n_rows; r++) {                                                                  \
            const WEIGHT_BLOCK *wr = (const WEIGHT_BLOCK *)(w + (size_t)r * w_row_bytes);                   \
            if (ng == GROUP_TILE) TILE(o + r, out_stride, wr, x, n_blocks, GROUP_TILE);                     \
            else for (int g = 0; g < ng; g++)                                                               \
                TILE(o + (size_t)(4 * g) * out_stride + r, out_stride, wr, x + (size_t)g * n_blocks, n_blocks, 1); \
        }                                                                                                   \
    }

void groups_q4_0(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
                 const uint8_t *xg, int n_groups, int cols) {
    GROUPS_LOOP(tile_q4_0_x4, block_q4_0)
}

void groups_q4_0x4(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
                   const uint8_t *xg, int n_groups, int cols) {
    GROUPS_LOOP(tile_q4_0x4_x4, block_q4_0x4)
}

// Decode on Q4_0x4: one weight row against one token's block-interleaved row
// (block_q8_32x4, lane k = block k of each 4). Lane k of every dot is block k, so
// one vector holds 4 blocks' sums: no horizontal adds, and the float step
// (convert, scale, add) and the scales' f16 -> f32 run once per 4 blocks. Lane k
// of the accumulator sums blocks k, k+4, ...; the lanes are added at the end.
INLINE float dot_q4_0x4(const block_q4_0x4 *w, const block_q8_32x4 *a, int n_groups) {
    const v128_t low4 = wasm_i8x16_splat(15);
    v128_t acc = wasm_f32x4_splat(0.0f);
    for (int q = 0; q < n_groups; q++) {
        v128_t v0 = wasm_v128_load(w[q].qs[0]), v1 = wasm_v128_load(w[q].qs[1]);
        v128_t v2 = wasm_v128_load(w[q].qs[2]), v3 = wasm_v128_load(w[q].qs[3]);
        // two chains of dots (low and high nibbles), so consecutive dots do not wait on each other
        v128_t s_lo = rdot(wasm_v128_load(a[q].qs[0]), wasm_v128_and(v0, low4), wasm_v128_load(a[q].offset));
        v128_t s_hi = rdot(wasm_v128_load(a[q].qs[4]), wasm_v128_and(wasm_u16x8_shr(v0, 4), low4), wasm_i32x4_splat(0));
        s_lo = rdot(wasm_v128_load(a[q].qs[1]), wasm_v128_and(v1, low4), s_lo);
        s_hi = rdot(wasm_v128_load(a[q].qs[5]), wasm_v128_and(wasm_u16x8_shr(v1, 4), low4), s_hi);
        s_lo = rdot(wasm_v128_load(a[q].qs[2]), wasm_v128_and(v2, low4), s_lo);
        s_hi = rdot(wasm_v128_load(a[q].qs[6]), wasm_v128_and(wasm_u16x8_shr(v2, 4), low4), s_hi);
        s_lo = rdot(wasm_v128_load(a[q].qs[3]), wasm_v128_and(v3, low4), s_lo);
        s_hi = rdot(wasm_v128_load(a[q].qs[7]), wasm_v128_and(wasm_u16x8_shr(v3, 4), low4), s_hi);
        v128_t scale = wasm_f32x4_mul(fp16x4_to_f32x4(w[q].d), wasm_v128_load(a[q].d));
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_add(s_lo, s_hi)), scale));
    }
    return hsum_f32x4(acc);
}

typedef block_q8_32x4 q4_0x4_act_block;
#else
// Q4_0x4 in the SIMD128 build: weight vector qs[j] read as uint16 lanes gives, with
// tile_q4_0's masks, 4 int16 vectors whose int32 lane k after i32x4.dot_i16x8 is
// block k (activations: block_q8_32x4w), so one vector holds 4 blocks' sums and the
// float step and the scales' f16 -> f32 run once per 4 blocks. Decode 1.18-1.37x
// the GGUF-layout kernel (A/B in Node, 1 thread). Prefill runs it token by token
// (0.92-0.97x of tile_q4_0's 4-token tiles; Q4_0x4 tiles of 2 or 4 tokens measured
// 0.93-0.99x and 0.78-0.81x).
typedef block_q8_32x4w q4_0x4_act_block;
INLINE float dot_q4_0x4(const block_q4_0x4 *w, const block_q8_32x4w *a, int n_groups) {
    const v128_t low4 = wasm_i16x8_splat(15);
    v128_t acc = wasm_f32x4_splat(0.0f);
    for (int q = 0; q < n_groups; q++) {
        v128_t s0 = wasm_v128_load(a[q].offset), s1 = wasm_i32x4_splat(0);
        UNROLL for (int j = 0; j < 4; j++) {
            v128_t v = wasm_v128_load(w[q].qs[j]);
            s0 = wasm_i32x4_add(s0, wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_and(v, low4), wasm_v128_load(a[q].qs[j])),
                                                   wasm_i32x4_dot_i16x8(wasm_v128_and(wasm_u16x8_shr(v, 8), low4), wasm_v128_load(a[q].qs[8 + j]))));
            s1 = wasm_i32x4_add(s1, wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_and(wasm_u16x8_shr(v, 4), low4), wasm_v128_load(a[q].qs[4 + j])),
                                                   wasm_i32x4_dot_i16x8(wasm_u16x8_shr(v, 12), wasm_v128_load(a[q].qs[12 + j]))));
        }
        v128_t scale = wasm_f32x4_mul(fp16x4_to_f32x4(w[q].d), wasm_v128_load(a[q].d));
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_add(s0, s1)), scale));
    }
    return hsum_f32x4(acc);
}
#endif

// Decode on Q4_0x4 (both builds; the SIMD128 build's prefill too): every row against
// each token's block-interleaved row.
void rows_q4_0x4(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
                 const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    for (int t = 0; t < n_tok; t++) {
        const q4_0x4_act_block *a = (const q4_0x4_act_block *)(x + (size_t)t * x_row_bytes);
        for (int r = 0; r < n_rows; r++)
            out[(size_t)t * out_stride + r] = dot_q4_0x4((const block_q4_0x4 *)(w + (size_t)r * w_row_bytes), a, cols / 128);
    }
}

// ---------------------------------------------------------------------------
// Q8_0

#if KERNELS_RELAXED
// Both operands are signed 8-bit here, so the i7 dot does not apply: widen
// with extmul (pairs of products fit int16: 2 * 128 * 127 < 32768).
INLINE v128_t dot16_i8(v128_t w, v128_t a) {
    return wasm_i32x4_extadd_pairwise_i16x8(
        wasm_i16x8_add(wasm_i16x8_extmul_low_i8x16(w, a), wasm_i16x8_extmul_high_i8x16(w, a)));
}

INLINE void tile_q8_0(float *out, int out_stride, const uint8_t *wrow, const uint8_t *x, size_t xs,
                      int cols, const int T) {
    const block_q8_0 *w = (const block_q8_0 *)wrow;
    v128_t acc[TILE_T];
    UNROLL for (int t = 0; t < T; t++) acc[t] = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < cols / QK8_0; b++) {
        v128_t v0 = wasm_v128_load(w[b].qs), v1 = wasm_v128_load(w[b].qs + 16);
        float dw = fp16_lookup(w[b].d);
        UNROLL for (int t = 0; t < T; t++) {
            const block_q8_32 *a = (const block_q8_32 *)(x + t * xs) + b;
            v128_t s = wasm_i32x4_add(dot16_i8(v0, wasm_v128_load(a->qs)), dot16_i8(v1, wasm_v128_load(a->qs + 16)));
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(s), wasm_f32x4_splat(dw * a->d)));
        }
    }
    STORE_TILE(out, out_stride, acc, T);
}
#else
INLINE void tile_q8_0(float *out, int out_stride, const uint8_t *wrow, const uint8_t *x, size_t xs,
                      int cols, const int T) {
    const block_q8_0 *w = (const block_q8_0 *)wrow;
    v128_t acc[TILE_T];
    UNROLL for (int t = 0; t < T; t++) acc[t] = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < cols / QK8_0; b++) {
        v128_t v0 = wasm_v128_load(w[b].qs), v1 = wasm_v128_load(w[b].qs + 16);
        // sign-extend the even bytes (<< 8 then arithmetic >> 8) and the odd bytes (>> 8)
        v128_t e0 = wasm_i16x8_shr(wasm_i16x8_shl(v0, 8), 8);   // elements 0 2 .. 14
        v128_t e1 = wasm_i16x8_shr(wasm_i16x8_shl(v1, 8), 8);   // 16 18 .. 30
        v128_t o0 = wasm_i16x8_shr(v0, 8);                      // 1 3 .. 15
        v128_t o1 = wasm_i16x8_shr(v1, 8);                      // 17 19 .. 31
        float dw = fp16_lookup(w[b].d);
        UNROLL for (int t = 0; t < T; t++) {
            const block_q8_32w *a = (const block_q8_32w *)(x + t * xs) + b;
            v128_t s = dot4_i16(e0, e1, o0, o1, a->qs);
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(s), wasm_f32x4_splat(dw * a->d)));
        }
    }
    STORE_TILE(out, out_stride, acc, T);
}
#endif

void rows_q8_0(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
               const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_q8_0)
}

// ---------------------------------------------------------------------------
// Q4_K

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

// sum_j m_j * (bsums[2j] + bsums[2j+1]) in 4 lanes
INLINE v128_t q4_K_min_sums(v128_t mins_lo, v128_t mins_hi, const int16_t *bsums) {
    return wasm_i32x4_add(wasm_i32x4_dot_i16x8(mins_lo, wasm_v128_load(bsums)),
                          wasm_i32x4_dot_i16x8(mins_hi, wasm_v128_load(bsums + 8)));
}

#if KERNELS_RELAXED
// Chunk c (64 quants: sub-blocks 2c and 2c+1) against T activation rows;
// s_even, s_odd: the two sub-blocks' scales, splat (T = 1: as int32; else in all
// 8 int16 lanes). For T > 1 a sub-block's 32 products are summed in pairs in
// int16 (rdot16: at most 2 * 3840), then i32x4.dot_i16x8 scales and widens them
// in one step (at most 2 * 7680 * 63).
INLINE void q4_K_chunk(v128_t *isum, const block_q4_K *w, int b, const uint8_t *x, size_t xs, int c,
                       v128_t s_even, v128_t s_odd, const int T) {
    const v128_t low4 = wasm_i8x16_splat(15);
    v128_t v0 = wasm_v128_load(w[b].qs + 32 * c), v1 = wasm_v128_load(w[b].qs + 32 * c + 16);
    v128_t lo0 = wasm_v128_and(v0, low4), lo1 = wasm_v128_and(v1, low4);
    v128_t hi0 = wasm_v128_and(wasm_u16x8_shr(v0, 4), low4), hi1 = wasm_v128_and(wasm_u16x8_shr(v1, 4), low4);
    UNROLL for (int t = 0; t < T; t++) {
        const int8_t *a = ((const block_q8_256 *)(x + t * xs) + b)->qs + 64 * c;
        if (T == 1) {  // decode: the int32 dots measured 5% faster here (A/B in Chromium)
            v128_t zero = wasm_i32x4_splat(0);
            v128_t p_lo = rdot(wasm_v128_load(a + 16), lo1, rdot(wasm_v128_load(a), lo0, zero));
            v128_t p_hi = rdot(wasm_v128_load(a + 48), hi1, rdot(wasm_v128_load(a + 32), hi0, zero));
            isum[t] = wasm_i32x4_add(isum[t], wasm_i32x4_add(wasm_i32x4_mul(p_lo, s_even), wasm_i32x4_mul(p_hi, s_odd)));
        } else {       // prefill: 13% faster with the int16 pair sums
            v128_t p_lo = wasm_i16x8_add(rdot16(wasm_v128_load(a), lo0), rdot16(wasm_v128_load(a + 16), lo1));
            v128_t p_hi = wasm_i16x8_add(rdot16(wasm_v128_load(a + 32), hi0), rdot16(wasm_v128_load(a + 48), hi1));
            isum[t] = wasm_i32x4_add(isum[t], wasm_i32x4_add(wasm_i32x4_dot_i16x8(p_lo, s_even), wasm_i32x4_dot_i16x8(p_hi, s_odd)));
        }
    }
}

INLINE void tile_q4_K(float *out, int out_stride, const uint8_t *wrow, const uint8_t *x, size_t xs,
                      int cols, const int T) {
    const block_q4_K *w = (const block_q4_K *)wrow;
    v128_t acc[TILE_T];
    UNROLL for (int t = 0; t < T; t++) acc[t] = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < cols / QK_K; b++) {
        v128_t sc_lo, sc_hi, mins_lo, mins_hi;
        q4_K_scale_vectors(w[b].scales, &sc_lo, &sc_hi, &mins_lo, &mins_hi);
        v128_t isum[TILE_T];
        UNROLL for (int t = 0; t < T; t++) isum[t] = wasm_i32x4_splat(0);
        if (T > 1) {  // each scale in all 8 int16 lanes (see q4_K_chunk)
            sc_lo = wasm_v128_or(sc_lo, wasm_i32x4_shl(sc_lo, 16));
            sc_hi = wasm_v128_or(sc_hi, wasm_i32x4_shl(sc_hi, 16));
        }
        // splat scales in a small array so the chunk loop can stay a loop (a fully
        // unrolled super-block is slower in V8: register pressure)
        v128_t scale[8] = { LANE_SPLAT(sc_lo, 0), LANE_SPLAT(sc_lo, 1), LANE_SPLAT(sc_lo, 2), LANE_SPLAT(sc_lo, 3),
                            LANE_SPLAT(sc_hi, 0), LANE_SPLAT(sc_hi, 1), LANE_SPLAT(sc_hi, 2), LANE_SPLAT(sc_hi, 3) };
        for (int c = 0; c < 4; c++) q4_K_chunk(isum, w, b, x, xs, c, scale[2 * c], scale[2 * c + 1], T);
        float d = fp16_lookup(w[b].d), dmin = fp16_lookup(w[b].dmin);
        UNROLL for (int t = 0; t < T; t++) {
            const block_q8_256 *a = (const block_q8_256 *)(x + t * xs) + b;
            v128_t msum = q4_K_min_sums(mins_lo, mins_hi, a->bsums);
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_sub(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(isum[t]), wasm_f32x4_splat(d * a->d)),
                                                           wasm_f32x4_mul(wasm_f32x4_convert_i32x4(msum), wasm_f32x4_splat(dmin * a->d))));
        }
    }
    STORE_TILE(out, out_stride, acc, T);
}
#else
// Chunk c (64 quants: sub-blocks 2c and 2c+1) against T activation rows. The weights
// are multiplied by their sub-block scale in int16 (15 * 63 fits) once per chunk, so
// the per-token work is the dot products alone.
INLINE void q4_K_chunk(v128_t *isum, const block_q4_K *w, int b, const uint8_t *x, size_t xs, int c,
                       v128_t s_even, v128_t s_odd, const int T) {
    const v128_t low4 = wasm_i16x8_splat(15);
    const uint8_t *q = w[b].qs + 32 * c;
    v128_t v0 = wasm_v128_load(q), v1 = wasm_v128_load(q + 16);
    // sub-block 2c: low nibbles of the chunk's 32 bytes
    {
        v128_t w0 = wasm_i16x8_mul(wasm_v128_and(v0, low4), s_even), w1 = wasm_i16x8_mul(wasm_v128_and(v1, low4), s_even);
        v128_t w2 = wasm_i16x8_mul(wasm_v128_and(wasm_u16x8_shr(v0, 8), low4), s_even);
        v128_t w3 = wasm_i16x8_mul(wasm_v128_and(wasm_u16x8_shr(v1, 8), low4), s_even);
        UNROLL for (int t = 0; t < T; t++) {
            const int16_t *a = ((const block_q8_256w *)(x + t * xs) + b)->qs + 64 * c;
            isum[t] = wasm_i32x4_add(isum[t], dot4_i16(w0, w1, w2, w3, a));
        }
    }
    // sub-block 2c+1: high nibbles
    {
        v128_t w0 = wasm_i16x8_mul(wasm_v128_and(wasm_u16x8_shr(v0, 4), low4), s_odd);
        v128_t w1 = wasm_i16x8_mul(wasm_v128_and(wasm_u16x8_shr(v1, 4), low4), s_odd);
        v128_t w2 = wasm_i16x8_mul(wasm_u16x8_shr(v0, 12), s_odd), w3 = wasm_i16x8_mul(wasm_u16x8_shr(v1, 12), s_odd);
        UNROLL for (int t = 0; t < T; t++) {
            const int16_t *a = ((const block_q8_256w *)(x + t * xs) + b)->qs + 64 * c + 32;
            isum[t] = wasm_i32x4_add(isum[t], dot4_i16(w0, w1, w2, w3, a));
        }
    }
}

INLINE void tile_q4_K(float *out, int out_stride, const uint8_t *wrow, const uint8_t *x, size_t xs,
                      int cols, const int T) {
    const block_q4_K *w = (const block_q4_K *)wrow;
    v128_t acc[TILE_T];
    UNROLL for (int t = 0; t < T; t++) acc[t] = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < cols / QK_K; b++) {
        v128_t sc_lo, sc_hi, mins_lo, mins_hi;
        q4_K_scale_vectors(w[b].scales, &sc_lo, &sc_hi, &mins_lo, &mins_hi);
        v128_t isum[TILE_T];
        UNROLL for (int t = 0; t < T; t++) isum[t] = wasm_i32x4_splat(0);
        // the 8 scales splat as i16x8 (sc_lo/hi hold them in the low half of 32-bit lanes)
        v128_t sc16 = wasm_i16x8_narrow_i32x4(sc_lo, sc_hi);
        v128_t scale[8] = { wasm_i16x8_shuffle(sc16, sc16, 0, 0, 0, 0, 0, 0, 0, 0), wasm_i16x8_shuffle(sc16, sc16, 1, 1, 1, 1, 1, 1, 1, 1),
                            wasm_i16x8_shuffle(sc16, sc16, 2, 2, 2, 2, 2, 2, 2, 2), wasm_i16x8_shuffle(sc16, sc16, 3, 3, 3, 3, 3, 3, 3, 3),
                            wasm_i16x8_shuffle(sc16, sc16, 4, 4, 4, 4, 4, 4, 4, 4), wasm_i16x8_shuffle(sc16, sc16, 5, 5, 5, 5, 5, 5, 5, 5),
                            wasm_i16x8_shuffle(sc16, sc16, 6, 6, 6, 6, 6, 6, 6, 6), wasm_i16x8_shuffle(sc16, sc16, 7, 7, 7, 7, 7, 7, 7, 7) };
        for (int c = 0; c < 4; c++) q4_K_chunk(isum, w, b, x, xs, c, scale[2 * c], scale[2 * c + 1], T);
        float d = fp16_lookup(w[b].d), dmin = fp16_lookup(w[b].dmin);
        UNROLL for (int t = 0; t < T; t++) {
            const block_q8_256w *a = (const block_q8_256w *)(x + t * xs) + b;
            v128_t msum = q4_K_min_sums(mins_lo, mins_hi, a->bsums);
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_sub(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(isum[t]), wasm_f32x4_splat(d * a->d)),
                                                           wasm_f32x4_mul(wasm_f32x4_convert_i32x4(msum), wasm_f32x4_splat(dmin * a->d))));
        }
    }
    STORE_TILE(out, out_stride, acc, T);
}
#endif

void rows_q4_K(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
               const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_q4_K)
}

#if !KERNELS_RELAXED
// Q4_Kx (SIMD128 build only: the relaxed build's Q4_K kernel measured as fast
// on this layout as on GGUF's, so it keeps that). A weight vector qs[m] read as
// uint16 lanes gives, with the masks of tile_q4_0, the even and odd bytes' low
// and high nibbles; int32 lane k of each i32x4.dot_i16x8 then holds chunk k only
// (lanes 2k, 2k+1 are its bytes), against activations stored in that order
// (quantize_row_q8_256x). So the low nibbles' dots sum sub-blocks 0, 2, 4, 6 and
// the high ones' 1, 3, 5, 7, and two int32 multiplies apply the 8 scales in
// decode, where the GGUF layout's kernel multiplies every weight by its scale in
// int16.
INLINE void tile_q4_Kx(float *out, int out_stride, const uint8_t *wrow, const uint8_t *x, size_t xs,
                       int cols, const int T) {
    const block_q4_Kx *w = (const block_q4_Kx *)wrow;
    const v128_t low4 = wasm_i16x8_splat(15);
    v128_t acc[TILE_T];
    UNROLL for (int t = 0; t < T; t++) acc[t] = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < cols / QK_K; b++) {
        v128_t sc_lo, sc_hi, mins_lo, mins_hi;
        q4_K_scale_vectors(w[b].scales, &sc_lo, &sc_hi, &mins_lo, &mins_hi);
        v128_t sc_even = wasm_i32x4_shuffle(sc_lo, sc_hi, 0, 2, 4, 6), sc_odd = wasm_i32x4_shuffle(sc_lo, sc_hi, 1, 3, 5, 7);
        // Prefill (T > 1) multiplies the weights by their scales in int16 instead, once for
        // all T tokens (15 * 63 fits): 6-7% faster there, 25-30% slower in decode.
        v128_t sc16_even = wasm_v128_or(sc_even, wasm_i32x4_shl(sc_even, 16));
        v128_t sc16_odd = wasm_v128_or(sc_odd, wasm_i32x4_shl(sc_odd, 16));
        v128_t s_lo[TILE_T], s_hi[TILE_T];
        UNROLL for (int t = 0; t < T; t++) s_lo[t] = s_hi[t] = wasm_i32x4_splat(0);
        for (int m = 0; m < 8; m++) {
            v128_t v = wasm_v128_load(w[b].qs[m]);
            v128_t e_lo = wasm_v128_and(v, low4), o_lo = wasm_v128_and(wasm_u16x8_shr(v, 8), low4);
            v128_t e_hi = wasm_v128_and(wasm_u16x8_shr(v, 4), low4), o_hi = wasm_u16x8_shr(v, 12);
            if (T > 1) {
                e_lo = wasm_i16x8_mul(e_lo, sc16_even);
                o_lo = wasm_i16x8_mul(o_lo, sc16_even);
                e_hi = wasm_i16x8_mul(e_hi, sc16_odd);
                o_hi = wasm_i16x8_mul(o_hi, sc16_odd);
            }
            UNROLL for (int t = 0; t < T; t++) {
                const int16_t *a = ((const block_q8_256w *)(x + t * xs) + b)->qs + 32 * m;
                s_lo[t] = wasm_i32x4_add(s_lo[t], wasm_i32x4_add(wasm_i32x4_dot_i16x8(e_lo, wasm_v128_load(a)),
                                                                 wasm_i32x4_dot_i16x8(o_lo, wasm_v128_load(a + 8))));
                s_hi[t] = wasm_i32x4_add(s_hi[t], wasm_i32x4_add(wasm_i32x4_dot_i16x8(e_hi, wasm_v128_load(a + 16)),
                                                                 wasm_i32x4_dot_i16x8(o_hi, wasm_v128_load(a + 24))));
            }
        }
        float d = fp16_lookup(w[b].d), dmin = fp16_lookup(w[b].dmin);
        UNROLL for (int t = 0; t < T; t++) {
            const block_q8_256w *a = (const block_q8_256w *)(x + t * xs) + b;
            v128_t isum = T > 1 ? wasm_i32x4_add(s_lo[t], s_hi[t])
                                : wasm_i32x4_add(wasm_i32x4_mul(s_lo[t], sc_even), wasm_i32x4_mul(s_hi[t], sc_odd));
            v128_t msum = q4_K_min_sums(mins_lo, mins_hi, a->bsums);
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_sub(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(isum), wasm_f32x4_splat(d * a->d)),
                                                           wasm_f32x4_mul(wasm_f32x4_convert_i32x4(msum), wasm_f32x4_splat(dmin * a->d))));
        }
    }
    STORE_TILE(out, out_stride, acc, T);
}

void rows_q4_Kx(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
                const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_q4_Kx)
}
#endif

// ---------------------------------------------------------------------------
// Q6_K

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

// One group of 32 quants (32g .. 32g+31 of half h) against T activation rows;
// s0, s1: the scales of its two sub-blocks of 16, splat (Q6_K_SCALE_SPLAT).
#if KERNELS_RELAXED
INLINE void q6_K_group(v128_t *isum, const block_q6_K *w, int b, const uint8_t *x, size_t xs, int h,
                       const int g, v128_t s0, v128_t s1, const int T) {
    const v128_t low4 = wasm_i8x16_splat(15), bits45 = wasm_i8x16_splat(0x30);
    const uint8_t *ql = w[b].ql + 64 * h + 32 * (g & 1), *qh = w[b].qh + 32 * h;
    // nibble of ql (low for g < 2, else high) | qh bits 2g, 2g+1 moved to bits 4, 5
    v128_t l0 = wasm_v128_load(ql), l1 = wasm_v128_load(ql + 16);
    v128_t h0 = wasm_v128_load(qh), h1 = wasm_v128_load(qh + 16);
    if (g >= 2) { l0 = wasm_u16x8_shr(l0, 4); l1 = wasm_u16x8_shr(l1, 4); }
    v128_t hb0 = g == 0 ? wasm_i16x8_shl(h0, 4) : g == 1 ? wasm_i16x8_shl(h0, 2) : g == 2 ? h0 : wasm_u16x8_shr(h0, 2);
    v128_t hb1 = g == 0 ? wasm_i16x8_shl(h1, 4) : g == 1 ? wasm_i16x8_shl(h1, 2) : g == 2 ? h1 : wasm_u16x8_shr(h1, 2);
    v128_t q0 = wasm_v128_or(wasm_v128_and(l0, low4), wasm_v128_and(hb0, bits45));  // quants 0..15 of the group
    v128_t q1 = wasm_v128_or(wasm_v128_and(l1, low4), wasm_v128_and(hb1, bits45));  // 16..31
    UNROLL for (int t = 0; t < T; t++) {
        const int8_t *a = ((const block_q8_256 *)(x + t * xs) + b)->qs + 128 * h + 32 * g;
        if (T == 1) {  // decode: int32 dots (as in q4_K_chunk)
            v128_t zero = wasm_i32x4_splat(0);
            v128_t p0 = rdot(wasm_v128_load(a), q0, zero), p1 = rdot(wasm_v128_load(a + 16), q1, zero);
            isum[t] = wasm_i32x4_add(isum[t], wasm_i32x4_add(wasm_i32x4_mul(p0, s0), wasm_i32x4_mul(p1, s1)));
        } else {       // prefill: int16 pair sums (at most 2 * 128 * 63), scaled and widened by dot_i16x8
            v128_t p0 = rdot16(wasm_v128_load(a), q0), p1 = rdot16(wasm_v128_load(a + 16), q1);
            isum[t] = wasm_i32x4_add(isum[t], wasm_i32x4_add(wasm_i32x4_dot_i16x8(p0, s0), wasm_i32x4_dot_i16x8(p1, s1)));
        }
    }
}
#else
INLINE void q6_K_group(v128_t *isum, const block_q6_K *w, int b, const uint8_t *x, size_t xs, int h,
                       const int g, v128_t s0, v128_t s1, const int T) {
    const v128_t low4 = wasm_i16x8_splat(15), bits45 = wasm_i16x8_splat(0x30);
    const uint8_t *ql = w[b].ql + 64 * h + 32 * (g & 1), *qh = w[b].qh + 32 * h;
    // Lanes of 16 bytes: even bytes are "& 0x000f"-style, odd bytes ">> 8".
    v128_t l0 = wasm_v128_load(ql), l1 = wasm_v128_load(ql + 16);
    v128_t h0 = wasm_v128_load(qh), h1 = wasm_v128_load(qh + 16);
    v128_t e0, e1, o0, o1;  // low 4 bits: even 0..14, even 16..30, odd 1..15, odd 17..31
    if (g < 2) {
        e0 = wasm_v128_and(l0, low4);
        e1 = wasm_v128_and(l1, low4);
        o0 = wasm_v128_and(wasm_u16x8_shr(l0, 8), low4);
        o1 = wasm_v128_and(wasm_u16x8_shr(l1, 8), low4);
    } else {
        e0 = wasm_v128_and(wasm_u16x8_shr(l0, 4), low4);
        e1 = wasm_v128_and(wasm_u16x8_shr(l1, 4), low4);
        o0 = wasm_u16x8_shr(l0, 12);
        o1 = wasm_u16x8_shr(l1, 12);
    }
    // high 2 bits moved to bits 4, 5: even bytes hold them at bits 2g, odd bytes at 8 + 2g
    v128_t he0, he1, ho0, ho1;
    if (g == 0) {
        he0 = wasm_i16x8_shl(h0, 4); he1 = wasm_i16x8_shl(h1, 4);
        ho0 = wasm_u16x8_shr(h0, 4); ho1 = wasm_u16x8_shr(h1, 4);
    } else if (g == 1) {
        he0 = wasm_i16x8_shl(h0, 2); he1 = wasm_i16x8_shl(h1, 2);
        ho0 = wasm_u16x8_shr(h0, 6); ho1 = wasm_u16x8_shr(h1, 6);
    } else if (g == 2) {
        he0 = h0; he1 = h1;
        ho0 = wasm_u16x8_shr(h0, 8); ho1 = wasm_u16x8_shr(h1, 8);
    } else {
        he0 = wasm_u16x8_shr(h0, 2); he1 = wasm_u16x8_shr(h1, 2);
        ho0 = wasm_u16x8_shr(h0, 10); ho1 = wasm_u16x8_shr(h1, 10);
    }
    e0 = wasm_v128_or(e0, wasm_v128_and(he0, bits45));
    e1 = wasm_v128_or(e1, wasm_v128_and(he1, bits45));
    o0 = wasm_v128_or(o0, wasm_v128_and(ho0, bits45));
    o1 = wasm_v128_or(o1, wasm_v128_and(ho1, bits45));
    // quants 0..15 of the group (e0, o0) have scale s0, 16..31 (e1, o1) s1: multiplied in
    // int16 (63 * 128 fits) once per group, so the per-token work is the dot products alone
    e0 = wasm_i16x8_mul(e0, s0);
    o0 = wasm_i16x8_mul(o0, s0);
    e1 = wasm_i16x8_mul(e1, s1);
    o1 = wasm_i16x8_mul(o1, s1);
    UNROLL for (int t = 0; t < T; t++) {
        const int16_t *a = ((const block_q8_256w *)(x + t * xs) + b)->qs + 128 * h + 32 * g;
        isum[t] = wasm_i32x4_add(isum[t], dot4_i16(e0, e1, o0, o1, a));
    }
}
#endif

#if KERNELS_RELAXED
typedef block_q8_256 q6_K_act_block;
// multiplies i32 dot products (T = 1) or int16 pair sums (see q6_K_group)
#define Q6_K_SCALE_SPLAT(s) (T == 1 ? wasm_i32x4_splat(s) : wasm_i16x8_splat(s))
#else
typedef block_q8_256w q6_K_act_block;
#define Q6_K_SCALE_SPLAT(s) wasm_i16x8_splat(s)   // multiplies int16 weights
#endif

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

void rows_q6_K(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
               const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_q6_K)
}

// ---------------------------------------------------------------------------
// Q6_Kx (quants.h; relaxed build only): int32 lane j of a dot product with vector
// 4c + r sums part of sub-block 4c + j, so the 4 scales of group c apply to a
// whole vector of sums at once (Q6_K's kernel splats and multiplies one scale per
// 16 quants). Decode kernel 1.14-1.30x (A/B, CPU time, 1 thread). The SIMD128
// build keeps Q6_K: its kernel on this layout (dot_i16x8 lanes as sub-blocks)
// measured 0.63-0.91x in Node in three variants.

#if KERNELS_RELAXED
// Vector 4c + r of a block: its 16 quants (0..63) in bytes.
INLINE v128_t q6_Kx_vector(const block_q6_Kx *w, const int c, const int r) {
    const v128_t low4 = wasm_i8x16_splat(15), bits45 = wasm_i8x16_splat(0x30);
    v128_t l = wasm_v128_load(w->ql[r + 4 * (c & 1)]), h = wasm_v128_load(w->qh[r]);
    if (c >= 2) l = wasm_u16x8_shr(l, 4);  // groups 2, 3: the high nibbles
    // bits 2c, 2c+1 of each qh byte to bits 4, 5 (what crosses bytes is masked off)
    h = c == 0 ? wasm_i16x8_shl(h, 4) : c == 1 ? wasm_i16x8_shl(h, 2) : c == 2 ? h : wasm_u16x8_shr(h, 2);
    return wasm_v128_or(wasm_v128_and(l, low4), wasm_v128_and(h, bits45));
}

// Group c of block w (the row's block b) against T activation rows. Two vectors'
// int16 pair sums add up to at most 4 * 127 * 63 = 32004; one i32x4.dot_i16x8 with
// the group's scales (each in the two int16 lanes of its sub-block) scales and
// widens them.
INLINE void q6_Kx_group(v128_t *isum, const block_q6_Kx *w, int b, const uint8_t *x, size_t xs, const int c,
                        v128_t scales16, const int T) {
    UNROLL for (int r = 0; r < 4; r += 2) {
        v128_t q0 = q6_Kx_vector(w, c, r), q1 = q6_Kx_vector(w, c, r + 1);
        UNROLL for (int t = 0; t < T; t++) {
            const int8_t *a = ((const block_q8_256 *)(x + t * xs) + b)->qs + 16 * (4 * c + r);
            v128_t pairs = wasm_i16x8_add(rdot16(wasm_v128_load(a), q0), rdot16(wasm_v128_load(a + 16), q1));
            isum[t] = wasm_i32x4_add(isum[t], wasm_i32x4_dot_i16x8(pairs, scales16));
        }
    }
}

INLINE void tile_q6_Kx(float *out, int out_stride, const uint8_t *wrow, const uint8_t *x, size_t xs,
                       int cols, const int T) {
    const block_q6_Kx *w = (const block_q6_Kx *)wrow;
    v128_t acc[TILE_T];
    UNROLL for (int t = 0; t < T; t++) acc[t] = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < cols / QK_K; b++) {
        v128_t sc16_lo, sc16_hi;
        q6_K_scale_vectors(w[b].scales, &sc16_lo, &sc16_hi);
        v128_t isum[TILE_T];  // start from the "- 32" terms
        UNROLL for (int t = 0; t < T; t++)
            isum[t] = wasm_i32x4_neg(q6_K_offset(sc16_lo, sc16_hi, ((const q6_K_act_block *)(x + t * xs) + b)->bsums));
        // Group c's scales 4c .. 4c+3, each in the two int16 lanes of its sub-block.
#define Q6_KX_PAIRS(v, k) wasm_i16x8_shuffle((v), (v), (k), (k), (k) + 1, (k) + 1, (k) + 2, (k) + 2, (k) + 3, (k) + 3)
        q6_Kx_group(isum, w + b, b, x, xs, 0, Q6_KX_PAIRS(sc16_lo, 0), T);
        q6_Kx_group(isum, w + b, b, x, xs, 1, Q6_KX_PAIRS(sc16_lo, 4), T);
        q6_Kx_group(isum, w + b, b, x, xs, 2, Q6_KX_PAIRS(sc16_hi, 0), T);
        q6_Kx_group(isum, w + b, b, x, xs, 3, Q6_KX_PAIRS(sc16_hi, 4), T);
#undef Q6_KX_PAIRS
        float d = fp16_lookup(w[b].d);
        UNROLL for (int t = 0; t < T; t++) {
            const q6_K_act_block *a = (const q6_K_act_block *)(x + t * xs) + b;
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(isum[t]), wasm_f32x4_splat(d * a->d)));
        }
    }
    STORE_TILE(out, out_stride, acc, T);
}

void rows_q6_Kx(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
                const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_q6_Kx)
}
#endif
