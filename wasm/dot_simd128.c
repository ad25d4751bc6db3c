// The SIMD128 build's dot-product kernels (emcc) and its table of weight layouts.
// Activations are int16, permuted (quants.h), and products use i32x4.dot_i16x8_s. A block of
// weight bytes read as uint16 lanes gives the even bytes with "& 0x000f"-style masks and the
// odd bytes with ">> 8": no shuffles and no widening of activations in the hot loop.
// Load-time repacking gives Q4_0x4 and Q4_Kx (quants.h); Q6_K keeps GGUF's layout (its kernel
// on Q6_Kx was slower here). The measurements behind these choices: docs/perf-log.md,
// "Kernel choices".

#include "kernels.h"

// Tokens per tile: 4 (8 is slower on Q4_Kx: its per-token int32 sums run out of registers).
#define TILE_T 4
// What dot_simd.h's shared Q6_K tile needs from this build: its activation block, and how a
// scale is splat for q6_K_group (defined below).
typedef block_q8_256w q6_K_act_block;
#define Q6_K_SCALE_SPLAT(s) wasm_i16x8_splat(s)   // multiplies int16 weights
#include "dot_simd.h"

// sum of 32 products of 4 int16 weight vectors with 32 permuted activations, in 4 lanes
INLINE v128_t dot4_i16(v128_t w0, v128_t w1, v128_t w2, v128_t w3, const int16_t *a) {
    v128_t s0 = wasm_i32x4_dot_i16x8(w0, wasm_v128_load(a + 0));
    v128_t s1 = wasm_i32x4_dot_i16x8(w1, wasm_v128_load(a + 8));
    v128_t s2 = wasm_i32x4_dot_i16x8(w2, wasm_v128_load(a + 16));
    v128_t s3 = wasm_i32x4_dot_i16x8(w3, wasm_v128_load(a + 24));
    return wasm_i32x4_add(wasm_i32x4_add(s0, s1), wasm_i32x4_add(s2, s3));
}

// ---------------------------------------------------------------------------
// Q4_0

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

static void rows_q4_0(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
               const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_q4_0)
}

// Q4_0x4 in the SIMD128 build: weight vector qs[j] read as uint16 lanes gives, with
// tile_q4_0's masks, 4 int16 vectors whose int32 lane k after i32x4.dot_i16x8 is
// block k (activations: block_q8_32x4w), so one vector holds 4 blocks' sums and the
// float step and the scales' f16 -> f32 run once per 4 blocks: a faster decode than
// the GGUF layout's kernel. Prefill runs it token by token (a little slower than
// tile_q4_0's 4-token tiles, and faster than Q4_0x4 tiles of 2 or 4 tokens).
typedef block_q8_32x4w q4_0x4_act_block;
INLINE float dot_q4_0x4(const block_q4_0x4 *w, const block_q8_32x4w *a, int n_groups) {
    const v128_t low4 = wasm_i16x8_splat(15);
    const fp16_consts f16 = fp16_consts_plain();
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
        v128_t scale = wasm_f32x4_mul(fp16x4_to_f32x4(w[q].d, f16), wasm_v128_load(a[q].d));
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_add(s0, s1)), scale));
    }
    return hsum_f32x4(acc);
}

// Decode on Q4_0x4 (both builds; the SIMD128 build's prefill too): every row against
// each token's block-interleaved row.
static void rows_q4_0x4(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
                 const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    for (int t = 0; t < n_tok; t++) {
        const q4_0x4_act_block *a = (const q4_0x4_act_block *)(x + (size_t)t * x_row_bytes);
        for (int r = 0; r < n_rows; r++)
            out[(size_t)t * out_stride + r] = dot_q4_0x4((const block_q4_0x4 *)(w + (size_t)r * w_row_bytes), a, cols / 128);
    }
}

// ---------------------------------------------------------------------------
// Q8_0

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

static void rows_q8_0(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
               const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_q8_0)
}

// ---------------------------------------------------------------------------
// Q4_K

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
            acc[t] = q4_K_accumulate(acc[t], isum[t], msum, d, dmin, a->d);
        }
    }
    STORE_TILE(out, out_stride, acc, T);
}

static void rows_q4_K(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
               const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_q4_K)
}

// Q4_Kx (the relaxed build has its own kernel on it). A weight vector qs[m] read as
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
        // all T tokens (15 * 63 fits): faster there, slower in decode.
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
            acc[t] = q4_K_accumulate(acc[t], isum, msum, d, dmin, a->d);
        }
    }
    STORE_TILE(out, out_stride, acc, T);
}

static void rows_q4_Kx(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
                const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_q4_Kx)
}

// ---------------------------------------------------------------------------
// Q6_K

// This build's q6_K_group (declared, with what it computes, in dot_simd.h).
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



// ---------------------------------------------------------------------------
// This build

// The weight layouts this build reads (weights.c looks types up here).
const weight_layout build_layouts[] = {
    { GGML_TYPE_F32, 1, 4, ACT_F32, rows_f32, 0, 0 },
    { GGML_TYPE_F16, 1, 2, ACT_F16, rows_f16, 0, 0 },
    { GGML_TYPE_Q4_0, QK4_0, sizeof(block_q4_0), ACT_Q8_32W, rows_q4_0, 0, KERNEL_TYPE_Q4_0X4 },
    { GGML_TYPE_Q8_0, QK8_0, sizeof(block_q8_0), ACT_Q8_32W, rows_q8_0, 0, 0 },
    { GGML_TYPE_Q4_K, QK_K, sizeof(block_q4_K), ACT_Q8_256W, rows_q4_K, 0, KERNEL_TYPE_Q4_KX },
    { GGML_TYPE_Q6_K, QK_K, sizeof(block_q6_K), ACT_Q8_256W, rows_q6_K, 0, 0 },
    { KERNEL_TYPE_Q4_0X4, 4 * QK4_0, sizeof(block_q4_0x4), ACT_Q8_32X4W, rows_q4_0x4, 0, 0 },
    { KERNEL_TYPE_Q4_KX, QK_K, sizeof(block_q4_Kx), ACT_Q8_256X, rows_q4_Kx, 0, 0 },
    { -1, 0, 0, ACT_F32, 0, 0, 0 },
};
