// Quantized block formats: the GGUF weight blocks (byte-exact with ggml) and
// the activation blocks the kernels quantize f32 inputs into on the fly.
//
// Halves (d, dmin) are IEEE binary16 stored as uint16_t. Every struct is packed
// by construction (2-byte alignment at most for weights); the sizes are asserted
// because GGUF rows are arrays of these structs.
#pragma once

#include <stdint.h>

// ggml type ids of the weight formats the kernels accept.
enum {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q6_K = 14,
    // Not GGUF types: rows repacked in memory by repack_weights (block_q4_0x4,
    // block_q4_Kx, block_q6_Kx).
    KERNEL_TYPE_Q4_0X4 = 1002,
    KERNEL_TYPE_Q4_KX = 1012,
    KERNEL_TYPE_Q6_KX = 1014,
};

#define QK4_0 32
#define QK8_0 32
#define QK_K 256

// Q4_0: 32 weights, 4.5 bits each.
// Layout: d, then 16 bytes; byte j holds element j in its low nibble and
// element j + 16 in its high nibble.  w = d * (nibble - 8).
typedef struct {
    uint16_t d;              // scale (half)
    uint8_t qs[QK4_0 / 2];   // nibbles
} block_q4_0;
_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 is 18 bytes");

// Q4_0x4: 4 consecutive Q4_0 blocks of a row, repacked at load time (same 72
// bytes). qs[m] holds bytes 4m .. 4m+3 of block 0, then of blocks 1, 2 and 3,
// so a relaxed dot's lane k sums block k alone and one vector holds the 4 block
// sums (see dot_q4_0x4), as does the SIMD128 build's i32x4.dot_i16x8 on the
// weights read as uint16 (its own dot_q4_0x4); d[k] is block k's scale.
typedef struct {
    uint16_t d[4];
    uint8_t qs[4][16];
} block_q4_0x4;
_Static_assert(sizeof(block_q4_0x4) == 4 * sizeof(block_q4_0), "block_q4_0x4 is 4 Q4_0 blocks");

// Q8_0: 32 weights, 8.5 bits each.  w = d * qs[j].
typedef struct {
    uint16_t d;              // scale (half)
    int8_t qs[QK8_0];        // quants
} block_q8_0;
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 is 34 bytes");

// Q4_K: 256 weights in 8 sub-blocks of 32, 4.5 bits each.
// Each sub-block j has a 6-bit scale sc[j] and a 6-bit min m[j], packed in
// scales[12] (see unpack_q4_K_scales).  qs holds 4 chunks of 64 weights; chunk c
// is 32 bytes whose low nibbles are sub-block 2c and high nibbles sub-block 2c+1.
// w = d * sc[j] * q - dmin * m[j].
typedef struct {
    uint16_t d;              // super-block scale for the scales (half)
    uint16_t dmin;           // super-block scale for the mins (half)
    uint8_t scales[12];      // 8 scales + 8 mins, 6 bits each
    uint8_t qs[QK_K / 2];    // nibbles
} block_q4_K;
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K is 144 bytes");

// Q4_Kx: a Q4_K block repacked at load time by both builds (same 144 bytes,
// scales as in Q4_K). qs[m] holds bytes 4m .. 4m+3 of chunk 0, then of chunks 1,
// 2 and 3, so int32 lane k of a dot product sums chunk k's low nibbles (sub-block
// 2k) or high nibbles (2k+1): one vector holds 4 sub-blocks' sums and takes their
// scales in one multiply. Its activations are block_q8_256w (SIMD128) or block_q8_256k
// (relaxed) in a matching order.
typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qs[8][16];
} block_q4_Kx;
_Static_assert(sizeof(block_q4_Kx) == sizeof(block_q4_K), "block_q4_Kx is a Q4_K block");

// Q6_K: 256 weights in 16 sub-blocks of 16, 6.5625 bits each.
// Two halves of 128 weights; in half h, for l in 0..31:
//   q[128h + l]      = (ql[64h + l]      & 15) | ((qh[32h + l] >> 0) & 3) << 4
//   q[128h + l + 32] = (ql[64h + l + 32] & 15) | ((qh[32h + l] >> 2) & 3) << 4
//   q[128h + l + 64] = (ql[64h + l]      >> 4) | ((qh[32h + l] >> 4) & 3) << 4
//   q[128h + l + 96] = (ql[64h + l + 32] >> 4) | ((qh[32h + l] >> 6) & 3) << 4
// w[i] = d * scales[i / 16] * (q[i] - 32).   d comes LAST.
typedef struct {
    uint8_t ql[QK_K / 2];    // low 4 bits
    uint8_t qh[QK_K / 4];    // high 2 bits
    int8_t scales[QK_K / 16];// signed 8-bit sub-block scales
    uint16_t d;              // super-block scale (half)
} block_q6_K;
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K is 210 bytes");

// Q6_Kx: a Q6_K block repacked at load time by the relaxed build (same 210 bytes,
// scales and d as in Q6_K), its 256 quants q (0..63) reordered so that 4-byte
// lane j of vector m (m = 4c + r) holds quants 4r .. 4r+3 of sub-block 4c + j:
//     Q[m][4j + u] = q[16 * (4c + j) + 4r + u]
// A dot product's lanes then keep to one sub-block each, and one i32x4.dot_i16x8
// per 2 vectors applies group c's 4 scales (where Q6_K needs one multiply per 16
// quants). Stored group by group (group c: vectors 4c .. 4c+3, one set of scales):
//     ql[i][k] = Q[2i][k] & 15 | (Q[2i + 1][k] & 15) << 4                       (i < 8)
//     qh[c][k] = Q[4c][k] >> 4 | (Q[4c + 1][k] >> 4) << 2 |
//                (Q[4c + 2][k] >> 4) << 4 | (Q[4c + 3][k] >> 4) << 6            (c < 4)
// so vector 4c + r comes out of ql[2c + r/2] and qh[c] with the same shifts in every group
// (a group is one iteration of a loop), one mask and one or per part.
// Its activations are block_q8_256 in the same order (quantize_row_q8_256_q6x).
typedef struct {
    uint8_t ql[8][16];
    uint8_t qh[4][16];
    int8_t scales[QK_K / 16];
    uint16_t d;
} block_q6_Kx;
_Static_assert(sizeof(block_q6_Kx) == sizeof(block_q6_K), "block_q6_Kx is a Q6_K block");

// ---------------------------------------------------------------------------
// Activation blocks (our own; never stored in files).
//
// x ~= d * q with d = max|x| / 127 and q = round-half-even(x / d), the same
// integers in every layout below, so the SIMD kernels and the scalar reference
// compute identical integer sums.

// Q8_32: 32 activations (for Q4_0 and Q8_0 weights), 10 bits each.
// sum = sum of qs folds Q4_0's "- 8" into one multiply per block.
typedef struct {
    float d;
    int32_t sum;
    int8_t qs[32];
} block_q8_32;
_Static_assert(sizeof(block_q8_32) == 40, "block_q8_32 is 40 bytes");

// Q8_256: 256 activations (for Q4_K and Q6_K weights), one scale per super-block
// so sub-block products add up in integers. bsums[k] = sum of qs[16k .. 16k+15]
// folds Q4_K's "- dmin * m" and Q6_K's "- 32" into a few multiplies.
typedef struct {
    float d;
    int16_t bsums[16];
    int8_t qs[QK_K];
} block_q8_256;
_Static_assert(sizeof(block_q8_256) == 292, "block_q8_256 is 292 bytes");

// Q8_32x4: one 32-activation block of 4 consecutive tokens, interleaved for the
// relaxed build's prefill kernel (many tokens against one Q4_0 weight block).
// qs[j] holds elements 4j .. 4j+3 of token 0, then of token 1, 2 and 3: a relaxed
// dot with a weight vector that repeats weights 4j .. 4j+3 four times leaves token
// k's partial sum in lane k. d[k], offset[k] = -8 * sum: token k's scale and Q4_0
// "- 8" term, lined up with those lanes.
// Decode on Q4_0x4 weights uses the same struct for 4 consecutive blocks of one
// token (lane k: block k), lined up with block_q4_0x4.
typedef struct {
    int8_t qs[8][16];
    float d[4];
    int32_t offset[4];
} block_q8_32x4;
_Static_assert(sizeof(block_q8_32x4) == 160, "block_q8_32x4 is 160 bytes");

// Q8_256 for Q4_Kx weights in the relaxed build: qs[m] (m < 8) holds quants 4m .. 4m+3 of
// sub-blocks 0, 2, 4, 6 (the low nibbles of weight vector m) and qs[8 + m] those of sub-blocks
// 1, 3, 5, 7 (its high nibbles); sums[j]: the sum of sub-block j's 32 quants (for the mins).
typedef struct {
    int8_t qs[16][16];
    int16_t sums[8];
    float d;
    int32_t pad[3];
} block_q8_256k;
_Static_assert(sizeof(block_q8_256k) == 288, "block_q8_256k is 288 bytes");

// SIMD128 builds have no 8-bit dot product, only i32x4.dot_i16x8_s. Their
// activations are therefore stored widened to int16 and permuted so that a
// weight vector read as 8 uint16 lanes lines up without shuffles. Per group of
// 32 activations the stored order is
//     [0 2 4 .. 14] [16 18 .. 30] [1 3 .. 15] [17 19 .. 31]
// because lane k of 16 weight bytes holds bytes 2k (low half) and 2k+1 (high half).

// Q8_32W: Q8_32 widened; offset = { -8 * sum, 0, 0, 0 } is added to the i32x4
// partial sums of a Q4_0 block (its "- 8") with one vector add.
typedef struct {
    int16_t qs[32];
    int32_t offset[4];
    float d;
    int32_t pad[3];
} block_q8_32w;
_Static_assert(sizeof(block_q8_32w) == 96, "block_q8_32w is 96 bytes");

// Q8_32x4W: 4 consecutive Q8_32W blocks of one token, for Q4_0x4 weights in the
// SIMD128 build: qs[m] holds int16 pair m (elements 2m, 2m+1 of the Q8_32W order
// above) of block 0, then of blocks 1, 2 and 3. Weight vector qs[j] of block_q4_0x4
// read as uint16 lanes gives, with the masks of Q8_32W, block k's quants in lanes
// 2k, 2k+1 only, lined up with pairs j (even bytes' low nibbles), 8 + j (odd bytes'
// low), 4 + j (even high) and 12 + j (odd high): int32 lane k of every
// i32x4.dot_i16x8 is block k. d[k], offset[k] = -8 * sum: block k's scale and
// Q4_0 "- 8" term.
typedef struct {
    int16_t qs[16][8];
    float d[4];
    int32_t offset[4];
} block_q8_32x4w;
_Static_assert(sizeof(block_q8_32x4w) == 288, "block_q8_32x4w is 288 bytes");

// Q8_256W: Q8_256 widened and permuted per group of 32.
typedef struct {
    int16_t qs[QK_K];
    int16_t bsums[16];
    float d;
    int32_t pad[3];
} block_q8_256w;
_Static_assert(sizeof(block_q8_256w) == 560, "block_q8_256w is 560 bytes");
