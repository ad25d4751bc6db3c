// Activations: f32 inputs quantized on the fly into the layouts the kernels read (act_layout,
// kernels.h), and the interleaves shared with the repacked weight layouts.
//
// All Q8 activation layouts run the same arithmetic (max, one division, one multiply, round
// half to even), so they hold identical integers. That arithmetic is llama.cpp's (x86
// quantize_row_q8_0 and quantize_row_q8_K): multiplier 127/amax, round half to even, Q8_0's
// scale rounded to f16, Q8_K's scale 1/multiplier. Same integers and scales as llama.cpp make
// our quantized matmuls differ from its only by float summation order.
#include "kernels.h"

static void quantize_row_q8_256(const float *x, block_q8_256 *y, int n);

INLINE float max_abs(const float *x, int n) {
    v128_t m = wasm_f32x4_splat(0.0f);
    for (int i = 0; i < n; i += 4) m = wasm_f32x4_max(m, wasm_f32x4_abs(wasm_v128_load(x + i)));
    return maxf(maxf(wasm_f32x4_extract_lane(m, 0), wasm_f32x4_extract_lane(m, 1)),
                maxf(wasm_f32x4_extract_lane(m, 2), wasm_f32x4_extract_lane(m, 3)));
}

// 32 floats -> 4 x i16x8 in natural order, q = round-half-even(x * inv_scale).
INLINE void quantize_32_i16(const float *x, float inv_scale, v128_t q[4]) {
    v128_t s = wasm_f32x4_splat(inv_scale);
    for (int k = 0; k < 4; k++) {
        v128_t a = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x + 8 * k), s)));
        v128_t b = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x + 8 * k + 4), s)));
        q[k] = wasm_i16x8_narrow_i32x4(a, b);
    }
}

INLINE int32_t sum_i16x8(v128_t v) { return hsum_i32x4(wasm_i32x4_extadd_pairwise_i16x8(v)); }

// The permutation of quants.h: [0 2 .. 14] [16 18 .. 30] [1 3 .. 15] [17 19 .. 31].
INLINE void store_permuted_32(int16_t *dst, const v128_t q[4]) {
    wasm_v128_store(dst + 0, wasm_i16x8_shuffle(q[0], q[1], 0, 2, 4, 6, 8, 10, 12, 14));
    wasm_v128_store(dst + 8, wasm_i16x8_shuffle(q[2], q[3], 0, 2, 4, 6, 8, 10, 12, 14));
    wasm_v128_store(dst + 16, wasm_i16x8_shuffle(q[0], q[1], 1, 3, 5, 7, 9, 11, 13, 15));
    wasm_v128_store(dst + 24, wasm_i16x8_shuffle(q[2], q[3], 1, 3, 5, 7, 9, 11, 13, 15));
}

// Multiplier applied before rounding: 127 / max|x| (0 for an all-zero block).
INLINE float q8_multiplier(float amax) { return amax != 0.0f ? 127.0f / amax : 0.0f; }

// Scale of a 32-element block, as llama.cpp's block_q8_0 stores it: amax / 127 in f16.
INLINE float q8_32_scale(float amax) { return fp16_to_fp32(fp32_to_fp16(amax / 127.0f)); }

// Scale of a 256-element block, as llama.cpp's block_q8_K stores it: 1 / multiplier in f32.
INLINE float q8_256_scale(float multiplier) { return multiplier != 0.0f ? 1.0f / multiplier : 0.0f; }

static void quantize_row_q8_32(const float *x, block_q8_32 *y, int n) {
    for (int b = 0; b < n / 32; b++, x += 32) {
        float amax = max_abs(x, 32);
        v128_t q[4];
        quantize_32_i16(x, q8_multiplier(amax), q);
        y[b].d = q8_32_scale(amax);
        y[b].sum = sum_i16x8(wasm_i16x8_add(wasm_i16x8_add(q[0], q[1]), wasm_i16x8_add(q[2], q[3])));
        wasm_v128_store(y[b].qs, wasm_i8x16_narrow_i16x8(q[0], q[1]));
        wasm_v128_store(y[b].qs + 16, wasm_i8x16_narrow_i16x8(q[2], q[3]));
    }
}

// f32 -> llama.cpp's block_q8_0 (the q8_0 KV cache): the same integers and scale as Q8_32.
void quantize_row_q8_0(const float *x, block_q8_0 *y, int n) {
    for (int b = 0; b < n / QK8_0; b++, x += QK8_0) {
        float amax = max_abs(x, QK8_0);
        v128_t q[4];
        quantize_32_i16(x, q8_multiplier(amax), q);
        y[b].d = fp32_to_fp16(amax / 127.0f);
        wasm_v128_store(y[b].qs, wasm_i8x16_narrow_i16x8(q[0], q[1]));
        wasm_v128_store(y[b].qs + 16, wasm_i8x16_narrow_i16x8(q[2], q[3]));
    }
}

static void quantize_row_q8_32w(const float *x, block_q8_32w *y, int n) {
    for (int b = 0; b < n / 32; b++, x += 32) {
        float amax = max_abs(x, 32);
        v128_t q[4];
        quantize_32_i16(x, q8_multiplier(amax), q);
        int32_t sum = sum_i16x8(wasm_i16x8_add(wasm_i16x8_add(q[0], q[1]), wasm_i16x8_add(q[2], q[3])));
        y[b].d = q8_32_scale(amax);
        wasm_v128_store(y[b].offset, wasm_i32x4_make(-8 * sum, 0, 0, 0));
        y[b].pad[0] = y[b].pad[1] = y[b].pad[2] = 0;
        store_permuted_32(y[b].qs, q);
    }
}

// Four tokens' Q8_32 rows (token k at x + k * x_row_bytes) -> one row of Q8_32x4 blocks.
void interleave_q8_32x4(const uint8_t *x, size_t x_row_bytes, block_q8_32x4 *y, int n_blocks) {
    const block_q8_32 *t0 = (const block_q8_32 *)x, *t1 = (const block_q8_32 *)(x + x_row_bytes);
    const block_q8_32 *t2 = (const block_q8_32 *)(x + 2 * x_row_bytes), *t3 = (const block_q8_32 *)(x + 3 * x_row_bytes);
    for (int b = 0; b < n_blocks; b++) {
        v128_t q[4];
        transpose_words(wasm_v128_load(t0[b].qs), wasm_v128_load(t1[b].qs), wasm_v128_load(t2[b].qs), wasm_v128_load(t3[b].qs), q);
        for (int j = 0; j < 4; j++) wasm_v128_store(y[b].qs[j], q[j]);
        transpose_words(wasm_v128_load(t0[b].qs + 16), wasm_v128_load(t1[b].qs + 16), wasm_v128_load(t2[b].qs + 16),
                        wasm_v128_load(t3[b].qs + 16), q);
        for (int j = 0; j < 4; j++) wasm_v128_store(y[b].qs[4 + j], q[j]);
        y[b].d[0] = t0[b].d; y[b].d[1] = t1[b].d; y[b].d[2] = t2[b].d; y[b].d[3] = t3[b].d;
        y[b].offset[0] = -8 * t0[b].sum; y[b].offset[1] = -8 * t1[b].sum;
        y[b].offset[2] = -8 * t2[b].sum; y[b].offset[3] = -8 * t3[b].sum;
    }
}

// One token's Q8_32 row with each 4 consecutive blocks interleaved like 4 tokens
// (block_q8_32x4, lane k = block k): the activations of Q4_0x4 weights.
static void quantize_row_q8_32x4b(const float *x, block_q8_32x4 *y, int n) {
    for (int g = 0; g < n / 128; g++) {
        block_q8_32 blocks[4];
        quantize_row_q8_32(x + 128 * g, blocks, 128);
        interleave_q8_32x4((const uint8_t *)blocks, sizeof(block_q8_32), y + g, 1);
    }
}

// 4 runs of 16 * n bytes (run k at src + k * stride) -> 4n vectors at dst, vector m
// holding bytes 4m .. 4m+3 of run 0, 1, 2, 3: Q4_0 blocks -> Q4_0x4 (n = 1), Q4_K
// chunks -> Q4_Kx (n = 2).
void interleave_runs(const uint8_t *src, size_t stride, int n, uint8_t *dst) {
    for (int i = 0; i < n; i++) {
        v128_t q[4];
        transpose_words(wasm_v128_load(src + 16 * i), wasm_v128_load(src + stride + 16 * i),
                        wasm_v128_load(src + 2 * stride + 16 * i), wasm_v128_load(src + 3 * stride + 16 * i), q);
        for (int m = 0; m < 4; m++) wasm_v128_store(dst + 16 * (4 * i + m), q[m]);
    }
}

// The inverse: 4n vectors at src -> 4 runs of 16 * n bytes at dst + k * stride.
void deinterleave_runs(const uint8_t *src, uint8_t *dst, size_t stride, int n) {
    for (int i = 0; i < n; i++) {
        v128_t q[4];
        transpose_words(wasm_v128_load(src + 64 * i), wasm_v128_load(src + 64 * i + 16),
                        wasm_v128_load(src + 64 * i + 32), wasm_v128_load(src + 64 * i + 48), q);
        for (int k = 0; k < 4; k++) wasm_v128_store(dst + k * stride + 16 * i, q[k]);
    }
}

// One token's row as Q8_32x4W blocks (quants.h): the activations of Q4_0x4 weights
// in the SIMD128 build, 4 Q8_32W blocks with their int16 pairs interleaved.
static void quantize_row_q8_32x4w(const float *x, block_q8_32x4w *y, int n) {
    for (int g = 0; g < n / 128; g++) {
        block_q8_32w blocks[4];
        quantize_row_q8_32w(x + 128 * g, blocks, 128);
        interleave_runs((const uint8_t *)blocks[0].qs, sizeof(block_q8_32w), 4, (uint8_t *)y[g].qs);
        for (int k = 0; k < 4; k++) {
            y[g].d[k] = blocks[k].d;
            y[g].offset[k] = blocks[k].offset[0];
        }
    }
}

// Q8_256 activations of Q4_Kx weights (SIMD128 build): per super-block, for each m
// the int16 lanes its weight vector qs[m] gives when read as uint16 (tile_q4_Kx):
// even bytes' low nibbles, odd bytes' low nibbles, then the same for the high
// nibbles; lanes 2k and 2k+1 of each come from chunk k.
static void quantize_row_q8_256x(const float *x, block_q8_256w *y, int n) {
    for (int b = 0; b < n / QK_K; b++) {
        block_q8_256 natural;
        quantize_row_q8_256(x + (size_t)b * QK_K, &natural, QK_K);
        for (int m = 0; m < 8; m++) {
            int16_t *dst = y[b].qs + 32 * m;
            for (int k = 0; k < 4; k++) {
                const int8_t *lo = natural.qs + 64 * k + 4 * m, *hi = lo + 32;
                dst[2 * k] = lo[0];       dst[2 * k + 1] = lo[2];
                dst[8 + 2 * k] = lo[1];   dst[8 + 2 * k + 1] = lo[3];
                dst[16 + 2 * k] = hi[0];  dst[16 + 2 * k + 1] = hi[2];
                dst[24 + 2 * k] = hi[1];  dst[24 + 2 * k + 1] = hi[3];
            }
        }
        y[b].d = natural.d;
        memcpy(y[b].bsums, natural.bsums, sizeof(natural.bsums));
        y[b].pad[0] = y[b].pad[1] = y[b].pad[2] = 0;
    }
}

// Q8_256 activations of Q6_Kx weights (relaxed build): quants in Q6_Kx order, i.e. in each 64 the
// 4 sub-blocks of 16 interleaved in 4-byte runs.
static void quantize_row_q8_256_q6x(const float *x, block_q8_256 *y, int n) {
    quantize_row_q8_256(x, y, n);
    for (int b = 0; b < n / QK_K; b++)
        for (int c = 0; c < 4; c++) interleave_runs((const uint8_t *)y[b].qs + 64 * c, 16, 1, (uint8_t *)y[b].qs + 64 * c);
}

// Q8_256 activations of Q4_Kx weights in the relaxed build (block_q8_256k).
static void quantize_row_q8_256k(const float *x, block_q8_256k *y, int n) {
    for (int b = 0; b < n / QK_K; b++) {
        block_q8_256 natural;
        quantize_row_q8_256(x + (size_t)b * QK_K, &natural, QK_K);
        // runs k = sub-blocks 2k (low nibbles) and 2k + 1 (high nibbles): 64 bytes apart
        interleave_runs((const uint8_t *)natural.qs, 64, 2, (uint8_t *)y[b].qs[0]);
        interleave_runs((const uint8_t *)natural.qs + 32, 64, 2, (uint8_t *)y[b].qs[8]);
        for (int j = 0; j < 8; j++) y[b].sums[j] = (int16_t)(natural.bsums[2 * j] + natural.bsums[2 * j + 1]);
        y[b].d = natural.d;
        y[b].pad[0] = y[b].pad[1] = y[b].pad[2] = 0;
    }
}

static void quantize_row_q8_256(const float *x, block_q8_256 *y, int n) {
    for (int b = 0; b < n / QK_K; b++, x += QK_K) {
        float id = q8_multiplier(max_abs(x, QK_K));
        y[b].d = q8_256_scale(id);
        for (int g = 0; g < QK_K / 32; g++) {
            v128_t q[4];
            quantize_32_i16(x + 32 * g, id, q);
            y[b].bsums[2 * g] = (int16_t)sum_i16x8(wasm_i16x8_add(q[0], q[1]));
            y[b].bsums[2 * g + 1] = (int16_t)sum_i16x8(wasm_i16x8_add(q[2], q[3]));
            wasm_v128_store(y[b].qs + 32 * g, wasm_i8x16_narrow_i16x8(q[0], q[1]));
            wasm_v128_store(y[b].qs + 32 * g + 16, wasm_i8x16_narrow_i16x8(q[2], q[3]));
        }
    }
}

static void quantize_row_q8_256w(const float *x, block_q8_256w *y, int n) {
    for (int b = 0; b < n / QK_K; b++, x += QK_K) {
        float id = q8_multiplier(max_abs(x, QK_K));
        y[b].d = q8_256_scale(id);
        y[b].pad[0] = y[b].pad[1] = y[b].pad[2] = 0;
        for (int g = 0; g < QK_K / 32; g++) {
            v128_t q[4];
            quantize_32_i16(x + 32 * g, id, q);
            y[b].bsums[2 * g] = (int16_t)sum_i16x8(wasm_i16x8_add(q[0], q[1]));
            y[b].bsums[2 * g + 1] = (int16_t)sum_i16x8(wasm_i16x8_add(q[2], q[3]));
            store_permuted_32(y[b].qs + 32 * g, q);
        }
    }
}

// ---------------------------------------------------------------------------
// The layouts by name

size_t act_row_bytes(act_layout act, int cols) {
    switch (act) {
    case ACT_F32: case ACT_F16: return (size_t)cols * 4;
    case ACT_Q8_32: return (size_t)(cols / 32) * sizeof(block_q8_32);
    case ACT_Q8_32W: return (size_t)(cols / 32) * sizeof(block_q8_32w);
    case ACT_Q8_256: case ACT_Q8_256_Q6X: return (size_t)(cols / QK_K) * sizeof(block_q8_256);
    case ACT_Q8_256W: case ACT_Q8_256X: return (size_t)(cols / QK_K) * sizeof(block_q8_256w);
    case ACT_Q8_32X4: return (size_t)(cols / 128) * sizeof(block_q8_32x4);
    case ACT_Q8_32X4W: return (size_t)(cols / 128) * sizeof(block_q8_32x4w);
    case ACT_Q8_256K: return (size_t)(cols / QK_K) * sizeof(block_q8_256k);
    }
    return 0;
}

void quantize_activation_row(act_layout act, const float *x, uint8_t *y, int cols) {
    switch (act) {
    case ACT_F32: break;  // read in place: matmul passes the input itself
    case ACT_F16:
        for (int i = 0; i < cols; i++) ((float *)y)[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
        break;
    case ACT_Q8_32: quantize_row_q8_32(x, (block_q8_32 *)y, cols); break;
    case ACT_Q8_32W: quantize_row_q8_32w(x, (block_q8_32w *)y, cols); break;
    case ACT_Q8_256: quantize_row_q8_256(x, (block_q8_256 *)y, cols); break;
    case ACT_Q8_256W: quantize_row_q8_256w(x, (block_q8_256w *)y, cols); break;
    case ACT_Q8_32X4: quantize_row_q8_32x4b(x, (block_q8_32x4 *)y, cols); break;
    case ACT_Q8_32X4W: quantize_row_q8_32x4w(x, (block_q8_32x4w *)y, cols); break;
    case ACT_Q8_256X: quantize_row_q8_256x(x, (block_q8_256w *)y, cols); break;
    case ACT_Q8_256_Q6X: quantize_row_q8_256_q6x(x, (block_q8_256 *)y, cols); break;
    case ACT_Q8_256K: quantize_row_q8_256k(x, (block_q8_256k *)y, cols); break;
    }
}
