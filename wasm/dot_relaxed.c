// The relaxed-SIMD build's dot-product kernels (clang 22, -mrelaxed-simd) and its table of
// weight layouts. Activations are int8 in natural order and products use
// i32x4.relaxed_dot_i8x16_i7x16_add_s. Its second operand must lie in 0..127 for the result to
// be the same on every engine: we always pass the weight quants there (4-bit 0..15 or 6-bit
// 0..63), never the signed activations. Q4_0 prefill goes further (groups_q4_0): tokens in groups
// of 4 interleaved so that the dot products' lanes are tokens. Load-time repacking gives Q4_0x4,
// Q4_Kx and Q6_Kx (quants.h). The measurements behind these choices: docs/perf-log.md, "Kernel
// choices".
#if !defined(__wasm_relaxed_simd__)
#error "dot_relaxed.c is the relaxed-SIMD build: compile it with -mrelaxed-simd"
#endif

#include "kernels.h"

// Tokens per tile: 8 (faster than 4 on Q4_K and Q6_K prefill; 12 and 16 no better).
#define TILE_T 8
// What dot_simd.h's shared Q6_K tile needs from this build: its activation block, and how a
// scale is splat for q6_K_group (defined below): i32 dot products (T = 1) or int16 pair sums.
typedef block_q8_256 q6_K_act_block;
#define Q6_K_SCALE_SPLAT(s) (T == 1 ? wasm_i32x4_splat(s) : wasm_i16x8_splat(s))
#include "dot_simd.h"

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

// ---------------------------------------------------------------------------
// Q4_0

INLINE void tile_q4_0(float *out, int out_stride, const uint8_t *wrow, const uint8_t *x, size_t xs,
                      int cols, const int T) {
    const block_q4_0 *w = (const block_q4_0 *)wrow;
    const v128_t low4 = loop_const(wasm_i8x16_splat(15));
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

static void rows_q4_0(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
               const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_q4_0)
}

// Prefill: one weight row against groups of 4 tokens (block_q8_32x4, built by
// matmul.c from the Q8_32 rows). A weight
// vector repeating weights 4j .. 4j+3 in every lane meets activation vector qs[j],
// so lane k of the relaxed dots sums token k: 8 dots give 4 tokens' block sums with
// no horizontal adds, and the per-block float step (convert, scale, add) serves 4
// tokens at once. Rounding is the scalar reference's: per block (d_w * d_x) * isum,
// added in block order, so results equal matmul_ref's bit for bit.
#define GROUP_TILE 4   // groups per weight-row pass (3 and 4 beat 2; 1 is slower)

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
    const v128_t low4 = loop_const(wasm_i8x16_splat(15));
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

// A Q4_0x4 group's quants as bytes 0..15: lo[j] the low nibbles of qs[j], hi[j] the high ones.
// low4: every byte 15.
INLINE void q4_0x4_unpack(const block_q4_0x4 *w, v128_t lo[4], v128_t hi[4], v128_t low4) {
    UNROLL for (int j = 0; j < 4; j++) {
        v128_t v = wasm_v128_load(w->qs[j]);
        lo[j] = wasm_v128_and(v, low4);
        hi[j] = wasm_v128_and(wasm_u16x8_shr(v, 4), low4);
    }
}

// One Q4_0x4 weight row against G groups. Block k of a 4-block group has its quants
// 4j .. 4j+3 in lane k of qs[j]: a byte swizzle repeating lane k gives the vectors
// tile_q4_0_x4 makes with lane shuffles. (Transposing each group back into 4 blocks,
// or unpacking whole rows first, was slower.)
INLINE void tile_q4_0x4_x4(float *out, int out_stride, const block_q4_0x4 *w, const block_q8_32x4 *x, int n_blocks, const int G) {
    const v128_t low4 = loop_const(wasm_i8x16_splat(15));
    v128_t acc[GROUP_TILE];
    UNROLL for (int g = 0; g < G; g++) acc[g] = wasm_f32x4_splat(0.0f);
    for (int q = 0; q < n_blocks / 4; q++) {
        v128_t lo[4], hi[4];
        q4_0x4_unpack(&w[q], lo, hi, low4);
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

static void groups_q4_0(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
                 const uint8_t *xg, int n_groups, int cols) {
    GROUPS_LOOP(tile_q4_0_x4, block_q4_0)
}

static void groups_q4_0x4(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
                   const uint8_t *xg, int n_groups, int cols) {
    GROUPS_LOOP(tile_q4_0x4_x4, block_q4_0x4)
}

// Decode on Q4_0x4: one weight row against T tokens' block-interleaved rows (block_q8_32x4,
// lane k = block k of each 4). Lane k of every dot is block k, so one vector holds 4 blocks' sums:
// no horizontal adds, and the float step (convert, scale, add) and the scales' f16 -> f32 run once
// per 4 blocks. Lane k of a token's accumulator sums blocks k, k+4, ...; the lanes are added at
// the end. The weights are loaded and unpacked once per tile; 4 tokens at most, so the unpacked
// weights and the accumulators stay in registers.
#define Q4_0X4_TILE_T 4
INLINE void tile_q4_0x4(float *out, int out_stride, const uint8_t *wrow, const uint8_t *x, size_t xs, int cols, const int T) {
    const block_q4_0x4 *w = (const block_q4_0x4 *)wrow;
    const v128_t low4 = loop_const(wasm_i8x16_splat(15)), ones = loop_const(wasm_i16x8_splat(1));
    const fp16_consts f16 = fp16_loop_consts();
    v128_t acc[Q4_0X4_TILE_T];
    UNROLL for (int t = 0; t < T; t++) acc[t] = wasm_f32x4_splat(0.0f);
    for (int q = 0; q < cols / 128; q++) {
        v128_t lo[4], hi[4];
        q4_0x4_unpack(&w[q], lo, hi, low4);
        v128_t dw = fp16x4_to_f32x4(w[q].d, f16);
        UNROLL for (int t = 0; t < T; t++) {
            const block_q8_32x4 *a = (const block_q8_32x4 *)(x + t * xs) + q;
            // int16 pair sums (rdot16: one instruction on x86 where rdot takes three), in two chains
            // so consecutive adds do not wait; 8 of them fit int16 (see rdot16). Integer sums are
            // exact, so this gives rdot's block sums bit for bit.
            v128_t s0 = rdot16(wasm_v128_load(a->qs[0]), lo[0]);
            v128_t s1 = rdot16(wasm_v128_load(a->qs[1]), lo[1]);
            s0 = wasm_i16x8_add(s0, rdot16(wasm_v128_load(a->qs[2]), lo[2]));
            s1 = wasm_i16x8_add(s1, rdot16(wasm_v128_load(a->qs[3]), lo[3]));
            s0 = wasm_i16x8_add(s0, rdot16(wasm_v128_load(a->qs[4]), hi[0]));
            s1 = wasm_i16x8_add(s1, rdot16(wasm_v128_load(a->qs[5]), hi[1]));
            s0 = wasm_i16x8_add(s0, rdot16(wasm_v128_load(a->qs[6]), hi[2]));
            s1 = wasm_i16x8_add(s1, rdot16(wasm_v128_load(a->qs[7]), hi[3]));
            // widen_i16 as a dot with ones: the same sums, with ones in a register
            v128_t isum = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_add(s0, s1), ones), wasm_v128_load(a->offset));
            v128_t scale = wasm_f32x4_mul(dw, wasm_v128_load(a->d));
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(isum), scale));
        }
    }
    STORE_TILE(out, out_stride, acc, T);
}

// Decode on Q4_0x4, and the few tokens of a speculative draft.
static void rows_q4_0x4(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
                 const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP_T(tile_q4_0x4, Q4_0X4_TILE_T)
}

// ---------------------------------------------------------------------------
// Q8_0

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

static void rows_q8_0(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
               const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_q8_0)
}

// ---------------------------------------------------------------------------
// Q4_K

// Chunk c (64 quants: sub-blocks 2c and 2c+1) against T activation rows;
// s_even, s_odd: the two sub-blocks' scales, splat in all 8 int16 lanes. A
// sub-block's 32 products are summed in pairs in int16 (rdot16: at most 2 * 3840),
// then i32x4.dot_i16x8 scales and widens them in one step (at most 2 * 7680 * 63).
// Decode too: fewer instructions than the int32 dot and an int32 multiply.
INLINE void q4_K_chunk(v128_t *isum, const block_q4_K *w, int b, const uint8_t *x, size_t xs, int c,
                       v128_t s_even, v128_t s_odd, v128_t low4, const int T) {
    v128_t v0 = wasm_v128_load(w[b].qs + 32 * c), v1 = wasm_v128_load(w[b].qs + 32 * c + 16);
    v128_t lo0 = wasm_v128_and(v0, low4), lo1 = wasm_v128_and(v1, low4);
    v128_t hi0 = wasm_v128_and(wasm_u16x8_shr(v0, 4), low4), hi1 = wasm_v128_and(wasm_u16x8_shr(v1, 4), low4);
    UNROLL for (int t = 0; t < T; t++) {
        const int8_t *a = ((const block_q8_256 *)(x + t * xs) + b)->qs + 64 * c;
        v128_t p_lo = wasm_i16x8_add(rdot16(wasm_v128_load(a), lo0), rdot16(wasm_v128_load(a + 16), lo1));
        v128_t p_hi = wasm_i16x8_add(rdot16(wasm_v128_load(a + 32), hi0), rdot16(wasm_v128_load(a + 48), hi1));
        isum[t] = wasm_i32x4_add(isum[t], wasm_i32x4_add(wasm_i32x4_dot_i16x8(p_lo, s_even), wasm_i32x4_dot_i16x8(p_hi, s_odd)));
    }
}

INLINE void tile_q4_K(float *out, int out_stride, const uint8_t *wrow, const uint8_t *x, size_t xs,
                      int cols, const int T) {
    const block_q4_K *w = (const block_q4_K *)wrow;
    const v128_t low4 = loop_const(wasm_i8x16_splat(15)), dup16 = loop_const(wasm_i32x4_splat(0x10001));
    v128_t acc[TILE_T];
    UNROLL for (int t = 0; t < T; t++) acc[t] = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < cols / QK_K; b++) {
        v128_t sc_lo, sc_hi, mins_lo, mins_hi;
        q4_K_scale_vectors(w[b].scales, &sc_lo, &sc_hi, &mins_lo, &mins_hi);
        v128_t isum[TILE_T];
        UNROLL for (int t = 0; t < T; t++) isum[t] = wasm_i32x4_splat(0);
        // each scale in all 8 int16 lanes (see q4_K_chunk)
        sc_lo = wasm_i32x4_mul(sc_lo, dup16);  // sc | sc << 16 (clang's own form of it, with the constant hoisted)
        sc_hi = wasm_i32x4_mul(sc_hi, dup16);
        // splat scales in a small array so the chunk loop can stay a loop (a fully
        // unrolled super-block is slower in V8: register pressure)
        v128_t scale[8] = { LANE_SPLAT(sc_lo, 0), LANE_SPLAT(sc_lo, 1), LANE_SPLAT(sc_lo, 2), LANE_SPLAT(sc_lo, 3),
                            LANE_SPLAT(sc_hi, 0), LANE_SPLAT(sc_hi, 1), LANE_SPLAT(sc_hi, 2), LANE_SPLAT(sc_hi, 3) };
        for (int c = 0; c < 4; c++) q4_K_chunk(isum, w, b, x, xs, c, scale[2 * c], scale[2 * c + 1], low4, T);
        float d = fp16_lookup(w[b].d), dmin = fp16_lookup(w[b].dmin);
        UNROLL for (int t = 0; t < T; t++) {
            const block_q8_256 *a = (const block_q8_256 *)(x + t * xs) + b;
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

// ---------------------------------------------------------------------------
// Q4_Kx (quants.h): int32 lane k of a dot product with a weight vector's low nibbles sums
// sub-block 2k, with its high nibbles sub-block 2k + 1, so two i32x4.dot_i16x8 apply a
// super-block's 8 scales. Its activations: block_q8_256k. The 6-bit scales and mins are
// unpacked in SIMD from the block's first 16 bytes.

typedef struct { v128_t mask_lo, mask_hi, even, odd, mins, low4; } q4_Kx_consts;

INLINE q4_Kx_consts q4_Kx_loop_consts(void) {
    return (q4_Kx_consts){
        loop_const(wasm_i32x4_make(0x3f3f3f3f, 0x3f3f3f3f, 0x0f0f0f0f, 0x0f0f0f0f)),
        loop_const(wasm_i32x4_make(0, 0, 0x30303030, 0x30303030)),
        // relaxed_swizzle: an index with its top bit set gives 0 on every engine
        loop_const(wasm_i8x16_make(0, -128, 0, -128, 2, -128, 2, -128, 8, -128, 8, -128, 10, -128, 10, -128)),
        loop_const(wasm_i8x16_make(1, -128, 1, -128, 3, -128, 3, -128, 9, -128, 9, -128, 11, -128, 11, -128)),
        loop_const(wasm_i8x16_make(4, -128, 5, -128, 6, -128, 7, -128, 12, -128, 13, -128, 14, -128, 15, -128)),
        loop_const(wasm_i8x16_splat(15)),
    };
}

// A block's scales as int16: even/odd: the scales of sub-blocks 0, 2, 4, 6 / 1, 3, 5, 7, each in
// the two lanes of its int32 lane; mins: the 8 mins in order.
INLINE void q4_Kx_scales(const block_q4_Kx *w, q4_Kx_consts k, v128_t *even, v128_t *odd, v128_t *mins) {
    v128_t v = wasm_v128_load(w);  // int32 lanes: d | dmin << 16, then u0, u1, u2 of scales[12]
    // as unpack_q4_K_scales: bytes sc0..3 = u0 & 63, m0..3 = u1 & 63,
    // sc4..7 = (u2 & 15) | (u0 >> 2 & 0x30), m4..7 = (u2 >> 4 & 15) | (u1 >> 2 & 0x30)
    v128_t lo = wasm_i32x4_shuffle(v, wasm_u32x4_shr(v, 4), 1, 2, 3, 7);
    v128_t hi = wasm_i32x4_shuffle(v, wasm_u32x4_shr(v, 2), 0, 0, 5, 6);
    v128_t r = wasm_v128_or(wasm_v128_and(lo, k.mask_lo), wasm_v128_and(hi, k.mask_hi));
    *even = wasm_i8x16_relaxed_swizzle(r, k.even);
    *odd = wasm_i8x16_relaxed_swizzle(r, k.odd);
    *mins = wasm_i8x16_relaxed_swizzle(r, k.mins);
}

INLINE void tile_q4_Kx(float *out, int out_stride, const uint8_t *wrow, const uint8_t *x, size_t xs,
                       int cols, const int T) {
    const block_q4_Kx *w = (const block_q4_Kx *)wrow;
    const q4_Kx_consts k = q4_Kx_loop_consts();
    v128_t acc[TILE_T];
    UNROLL for (int t = 0; t < T; t++) acc[t] = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < cols / QK_K; b++) {
        v128_t isum[TILE_T], sc_even, sc_odd, mins;
        if (T <= 4) {
            // up to 4 tokens: int16 pair sums over the whole super-block, 8 per lane, at most
            // 8 * 3840 (see rdot16); the m loop unrolled by 2 only, so the weight vectors are not
            // all loaded ahead (V8 then spills them)
            v128_t s_even[TILE_T], s_odd[TILE_T];
            UNROLL for (int t = 0; t < T; t++) s_even[t] = s_odd[t] = wasm_i16x8_splat(0);
            _Pragma("clang loop unroll_count(2)")
            for (int m = 0; m < 8; m++) {
                v128_t v = wasm_v128_load(w[b].qs[m]);
                v128_t lo = wasm_v128_and(v, k.low4), hi = wasm_v128_and(wasm_u16x8_shr(v, 4), k.low4);
                UNROLL for (int t = 0; t < T; t++) {
                    const block_q8_256k *a = (const block_q8_256k *)(x + t * xs) + b;
                    v128_t pe = rdot16(wasm_v128_load(a->qs[m]), lo), po = rdot16(wasm_v128_load(a->qs[8 + m]), hi);
                    s_even[t] = wasm_i16x8_add(s_even[t], pe);
                    s_odd[t] = wasm_i16x8_add(s_odd[t], po);
                }
            }
            q4_Kx_scales(&w[b], k, &sc_even, &sc_odd, &mins);  // after the quants: fewer live registers
            UNROLL for (int t = 0; t < T; t++)
                isum[t] = wasm_i32x4_add(wasm_i32x4_dot_i16x8(s_even[t], sc_even), wasm_i32x4_dot_i16x8(s_odd[t], sc_odd));
        } else {
            // more tokens (prefill's tiles of 8): scaled and widened every 2 vectors, so that
            // the 8 tokens' sums stay in registers; the same integers
            q4_Kx_scales(&w[b], k, &sc_even, &sc_odd, &mins);
            UNROLL for (int t = 0; t < T; t++) isum[t] = wasm_i32x4_splat(0);
            for (int m = 0; m < 8; m += 2) {
                v128_t v0 = wasm_v128_load(w[b].qs[m]), v1 = wasm_v128_load(w[b].qs[m + 1]);
                v128_t lo0 = wasm_v128_and(v0, k.low4), hi0 = wasm_v128_and(wasm_u16x8_shr(v0, 4), k.low4);
                v128_t lo1 = wasm_v128_and(v1, k.low4), hi1 = wasm_v128_and(wasm_u16x8_shr(v1, 4), k.low4);
                UNROLL for (int t = 0; t < T; t++) {
                    const block_q8_256k *a = (const block_q8_256k *)(x + t * xs) + b;
                    v128_t pe = wasm_i16x8_add(rdot16(wasm_v128_load(a->qs[m]), lo0), rdot16(wasm_v128_load(a->qs[m + 1]), lo1));
                    v128_t po = wasm_i16x8_add(rdot16(wasm_v128_load(a->qs[8 + m]), hi0), rdot16(wasm_v128_load(a->qs[9 + m]), hi1));
                    isum[t] = wasm_i32x4_add(isum[t], wasm_i32x4_add(wasm_i32x4_dot_i16x8(pe, sc_even), wasm_i32x4_dot_i16x8(po, sc_odd)));
                }
            }
        }
        float d = fp16_lookup(w[b].d), dmin = fp16_lookup(w[b].dmin);
        UNROLL for (int t = 0; t < T; t++) {
            const block_q8_256k *a = (const block_q8_256k *)(x + t * xs) + b;
            v128_t msum = wasm_i32x4_dot_i16x8(mins, wasm_v128_load(a->sums));
            acc[t] = q4_K_accumulate(acc[t], isum[t], msum, d, dmin, a->d);
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



// ---------------------------------------------------------------------------
// Q6_Kx (quants.h; relaxed build only): int32 lane j of a dot product with vector
// 4c + r sums part of sub-block 4c + j, so the 4 scales of group c apply to a
// whole vector of sums at once (Q6_K's kernel splats and multiplies one scale per
// 16 quants): a faster decode. The SIMD128 build keeps Q6_K: its kernel on this
// layout (dot_i16x8 lanes as sub-blocks) was slower in every variant tried.

// Masks of quant bits, as loop constants (kernels.h).
typedef struct { v128_t low4, bits45; } q6_masks;
INLINE q6_masks q6_loop_masks(void) { return (q6_masks){ loop_const(wasm_i8x16_splat(15)), loop_const(wasm_i8x16_splat(0x30)) }; }

// Group c's scales, each in the two int16 lanes of its sub-block: [s0 s0 s1 s1 s2 s2 s3 s3].
INLINE v128_t q6_Kx_scales(const block_q6_Kx *w, int c) {
    v128_t s = wasm_v128_load32_zero(w->scales + 4 * c);
    return wasm_i16x8_extend_low_i8x16(wasm_i8x16_shuffle(s, s, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
}

// Vector 4c + r of a block, from l = ql[2c + r/2] and h = qh[c]: its 16 quants (0..63) in bytes.
INLINE v128_t q6_Kx_vector(v128_t l, v128_t h, const int r, q6_masks k) {
    if (r & 1) l = wasm_u16x8_shr(l, 4);  // odd vectors: the high nibbles
    // bits 2r, 2r+1 of each qh byte to bits 4, 5 (what crosses bytes is masked off)
    h = r == 0 ? wasm_i16x8_shl(h, 4) : r == 1 ? wasm_i16x8_shl(h, 2) : r == 2 ? h : wasm_u16x8_shr(h, 2);
    return wasm_v128_or(wasm_v128_and(l, k.low4), wasm_v128_and(h, k.bits45));
}

// Group c of block w (the row's block b: vectors 4c .. 4c+3, sub-blocks 4c .. 4c+3 in their
// int32 lanes) against T activation rows. Two vectors' int16 pair sums add up to at most
// 4 * 127 * 63 = 32004; one i32x4.dot_i16x8 with the group's scales (each in the two int16
// lanes of its sub-block: q6_Kx_scales) scales and widens them. c may vary at run time:
// every group unpacks with the same shifts.
INLINE void q6_Kx_group(v128_t *isum, const block_q6_Kx *w, int b, const uint8_t *x, size_t xs, int c,
                        v128_t scales16, q6_masks k, const int T) {
    const v128_t h = wasm_v128_load(w->qh[c]);
    UNROLL for (int p = 0; p < 2; p++) {
        v128_t l = wasm_v128_load(w->ql[2 * c + p]);
        v128_t q0 = q6_Kx_vector(l, h, 2 * p, k), q1 = q6_Kx_vector(l, h, 2 * p + 1, k);
        UNROLL for (int t = 0; t < T; t++) {
            const int8_t *a = ((const block_q8_256 *)(x + t * xs) + b)->qs + 16 * (4 * c + 2 * p);
            v128_t pairs = wasm_i16x8_add(rdot16(wasm_v128_load(a), q0), rdot16(wasm_v128_load(a + 16), q1));
            isum[t] = wasm_i32x4_add(isum[t], wasm_i32x4_dot_i16x8(pairs, scales16));
        }
    }
}

INLINE void tile_q6_Kx(float *out, int out_stride, const uint8_t *wrow, const uint8_t *x, size_t xs,
                       int cols, const int T) {
    const block_q6_Kx *w = (const block_q6_Kx *)wrow;
    const q6_masks k = q6_loop_masks();
    v128_t acc[TILE_T];
    UNROLL for (int t = 0; t < T; t++) acc[t] = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < cols / QK_K; b++) {
        v128_t sc16_lo, sc16_hi;
        q6_K_scale_vectors(w[b].scales, &sc16_lo, &sc16_hi);
        v128_t isum[TILE_T];  // start from the "- 32" terms
        UNROLL for (int t = 0; t < T; t++)
            isum[t] = wasm_i32x4_neg(q6_K_offset(sc16_lo, sc16_hi, ((const q6_K_act_block *)(x + t * xs) + b)->bsums));
        if (T == 1) {
            // the scales as above, from the offset's vectors (fewer instructions in one token's loop)
#define Q6_KX_PAIRS(v, i) wasm_i16x8_shuffle((v), (v), (i), (i), (i) + 1, (i) + 1, (i) + 2, (i) + 2, (i) + 3, (i) + 3)
            q6_Kx_group(isum, w + b, b, x, xs, 0, Q6_KX_PAIRS(sc16_lo, 0), k, T);
            q6_Kx_group(isum, w + b, b, x, xs, 1, Q6_KX_PAIRS(sc16_lo, 4), k, T);
            q6_Kx_group(isum, w + b, b, x, xs, 2, Q6_KX_PAIRS(sc16_hi, 0), k, T);
            q6_Kx_group(isum, w + b, b, x, xs, 3, Q6_KX_PAIRS(sc16_hi, 4), k, T);
#undef Q6_KX_PAIRS
        } else {
            // A loop: the tokens' sums stay in registers from group to group. Unrolled, the
            // compiler adds up each token's 8 products at once, and V8 then keeps the block's
            // 16 weight vectors on the stack, reloaded for every token.
            _Pragma("clang loop unroll(disable)")
            for (int c = 0; c < 4; c++) q6_Kx_group(isum, w + b, b, x, xs, c, q6_Kx_scales(w + b, c), k, T);
        }
        float d = fp16_lookup(w[b].d);
        UNROLL for (int t = 0; t < T; t++) {
            const q6_K_act_block *a = (const q6_K_act_block *)(x + t * xs) + b;
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(isum[t]), wasm_f32x4_splat(d * a->d)));
        }
    }
    STORE_TILE(out, out_stride, acc, T);
}

static void rows_q6_Kx(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
                const uint8_t *x, size_t x_row_bytes, int n_tok, int cols) {
    ROWS_LOOP(tile_q6_Kx)
}

// ---------------------------------------------------------------------------
// This build

// Known-answer probe for the runtime check: the relaxed dots the kernels use
// (i32x4 form with a non-zero accumulator, and the i16x8 form) with negative
// 8-bit operands and 7-bit operands spread over 0..127, folded into one checksum.
// The host computes the same formula in JS; some engines validate relaxed SIMD
// but compute it wrongly (Node 20 returned 2 x dot and dropped the accumulator).
EXPORT int relaxed_probe(int seed) {
    int8_t a[16];
    uint8_t b[16];
    for (int i = 0; i < 16; i++) {
        a[i] = (int8_t)(seed * (i + 1) - 100 + 13 * i);
        b[i] = (uint8_t)((seed + 37 * i) & 127);
    }
    v128_t acc = wasm_i32x4_make(1000 + seed, -2000, 3000, seed);
    v128_t r = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(wasm_v128_load(a), wasm_v128_load(b), acc);
    v128_t p = wasm_i16x8_relaxed_dot_i8x16_i7x16(wasm_v128_load(a), wasm_v128_load(b));  // pairs: |sum| <= 2 * 128 * 127
    int pairs = 0;
    for (int k = 0; k < 8; k++) pairs += (2 * k + 9) * ((const int16_t *)&p)[k];
    return wasm_i32x4_extract_lane(r, 0) + 3 * wasm_i32x4_extract_lane(r, 1) + 5 * wasm_i32x4_extract_lane(r, 2) +
           7 * wasm_i32x4_extract_lane(r, 3) + pairs;
}

// The weight layouts this build reads (weights.c looks types up here).
const weight_layout build_layouts[] = {
    { GGML_TYPE_F32, 1, 4, ACT_F32, rows_f32, 0, 0 },
    { GGML_TYPE_F16, 1, 2, ACT_F16, rows_f16, 0, 0 },
    { GGML_TYPE_Q4_0, QK4_0, sizeof(block_q4_0), ACT_Q8_32, rows_q4_0, groups_q4_0, KERNEL_TYPE_Q4_0X4 },
    { GGML_TYPE_Q8_0, QK8_0, sizeof(block_q8_0), ACT_Q8_32, rows_q8_0, 0, 0 },
    { GGML_TYPE_Q4_K, QK_K, sizeof(block_q4_K), ACT_Q8_256, rows_q4_K, 0, KERNEL_TYPE_Q4_KX },
    { GGML_TYPE_Q6_K, QK_K, sizeof(block_q6_K), ACT_Q8_256, rows_q6_K, 0, KERNEL_TYPE_Q6_KX },
    { KERNEL_TYPE_Q4_0X4, 4 * QK4_0, sizeof(block_q4_0x4), ACT_Q8_32X4, rows_q4_0x4, groups_q4_0x4, 0 },
    { KERNEL_TYPE_Q4_KX, QK_K, sizeof(block_q4_Kx), ACT_Q8_256K, rows_q4_Kx, 0, 0 },
    { KERNEL_TYPE_Q6_KX, QK_K, sizeof(block_q6_Kx), ACT_Q8_256_Q6X, rows_q6_Kx, 0, 0 },
    { -1, 0, 0, ACT_F32, 0, 0, 0 },
};
