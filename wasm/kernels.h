// Shared declarations for the qwen-web wasm kernels.
//
// The module is freestanding (no libc, no emscripten runtime): it imports one
// WebAssembly.Memory, every thread instantiates it on that memory, and all
// pointers the host passes in are byte offsets into it.
//
// Two builds come from these sources, differing in one file: SIMD128 (emcc, clang 14) compiles
// dot_simd128.c, relaxed SIMD (clang 22, -mrelaxed-simd) dot_relaxed.c; everything else is
// common. Each build's dot file holds its kernels and the table of weight layouts they read
// (build_layouts); nothing else depends on which build it is.
//
// Files: weights.c owns the weight layouts (the table lookup, row sizes, load-time repacking,
// get_row); quantize.c the activations (quantizing f32 inputs into the layouts kernels read);
// matmul.c dispatch and threading; ops.c element-wise and attention kernels and the f16 table;
// pool.c the threads; dot_ref.c the scalar reference.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <wasm_simd128.h>

#include "quants.h"

#define EXPORT __attribute__((visibility("default")))
#define INLINE static inline __attribute__((always_inline))

// Status codes returned by the exported entry points.
enum { KERNEL_OK = 0, KERNEL_BAD_ARGS = -1, KERNEL_BAD_TYPE = -2 };

// matmul of at most this many tokens gives every token the same bits as a call with that token
// alone (the decode kernels; more tokens take prefill's). Speculative decoding relies on it.
#define KERNEL_EXACT_MAX_TOKENS 8

// ---------------------------------------------------------------------------
// freestanding helpers (libc.c)

void *memset(void *dst, int value, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
// -ffreestanding makes a call of every memcpy; as builtins, copies of a known size are inlined
// as loads and stores, and the rest become memory.copy (-mbulk-memory).
#define memset(dst, value, n) __builtin_memset(dst, value, n)
#define memcpy(dst, src, n) __builtin_memcpy(dst, src, n)

// ---------------------------------------------------------------------------
// float helpers

INLINE float f32_from_bits(uint32_t u) {
    union { uint32_t u; float f; } v = { u };
    return v.f;
}

INLINE uint32_t f32_to_bits(float f) {
    union { float f; uint32_t u; } v = { f };
    return v.u;
}

INLINE float minf(float a, float b) { return a < b ? a : b; }
INLINE float maxf(float a, float b) { return a > b ? a : b; }
INLINE float absf(float a) { return __builtin_fabsf(a); }

// IEEE half -> float, exact for every input (normals, subnormals, inf, NaN).
// Shifting the 15 magnitude bits into a float's exponent/mantissa position and
// multiplying by 2^112 rebiases the exponent (15 -> 127) and also turns half
// subnormals into the right float value; only inf/NaN need a special case.
INLINE float fp16_to_fp32(uint16_t h) {
    uint32_t magnitude = (uint32_t)(h & 0x7fff);
    float f = (magnitude >= 0x7c00) ? f32_from_bits(0x7f800000u | (magnitude & 0x3ff) << 13)
                                    : f32_from_bits(magnitude << 13) * 0x1p112f;
    return (h & 0x8000) ? -f : f;
}

// float -> IEEE half, round to nearest even (what F16C's vcvtps2ph does, and so
// what llama.cpp stores in its f16 KV cache on x86).
INLINE uint16_t fp32_to_fp16(float f) {
    uint32_t x = f32_to_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffff;
    if (ax >= 0x7f800000) return sign | (ax > 0x7f800000 ? 0x7e00 : 0x7c00);  // NaN, inf
    if (ax >= 0x477ff000) return sign | 0x7c00;  // >= 65520 rounds to inf
    if (ax < 0x38800000) {                        // below 2^-14: half subnormal or zero
        // value * 2^24 is exact in float and < 1024; rint rounds half to even.
        return sign | (uint16_t)__builtin_rintf(f32_from_bits(ax) * 0x1p24f);
    }
    uint32_t rounded = ax + 0xfff + ((ax >> 13) & 1);  // round the 13 dropped bits, ties to even
    return sign | (uint16_t)((rounded - ((uint32_t)(127 - 15) << 23)) >> 13);
}

// Table of all 65536 half values, filled by kernels_init() (ops.c). A single load beats
// the bit manipulation inside the hot dot-product loops.
extern float fp16_table[65536];

INLINE float fp16_lookup(uint16_t h) { return fp16_table[h]; }

// V8 materializes a v128.const at every use, inside loops too: on x64 three instructions
// (movabs, vmovq, punpcklqdq) per use and iteration. A value it cannot see as constant is
// computed once before the loop and stays in a register. kernel_runtime_zero is always 0.
extern volatile int32_t kernel_runtime_zero;
INLINE v128_t loop_const(v128_t c) { return wasm_v128_xor(c, wasm_i32x4_splat(kernel_runtime_zero)); }

// What the half conversions below need: plain, or as loop constants (above) for the relaxed
// build's decode loops and both builds' attention (the SIMD128 build's matmuls keep plain ones;
// docs/perf-log.md says why).
typedef struct { v128_t mask, scale; } fp16_consts;
INLINE fp16_consts fp16_consts_plain(void) {
    return (fp16_consts){ wasm_i32x4_splat((int32_t)0x8fffe000u), wasm_f32x4_splat(0x1p112f) };
}
INLINE fp16_consts fp16_loop_consts(void) {
    fp16_consts k = fp16_consts_plain();
    return (fp16_consts){ loop_const(k.mask), loop_const(k.scale) };
}

// Eight halves (unaligned) -> two f32x4. Finite inputs only (inf/NaN come out
// as large finite numbers), which holds for weights and the KV cache.
INLINE void fp16x8_to_f32x4x2(const uint16_t *p, v128_t *lo, v128_t *hi, fp16_consts k) {
    v128_t h = wasm_v128_load(p);
    // Sign-extending puts the sign in bit 31; << 13 moves exponent+mantissa into
    // float position; the mask clears the copies of the sign in bits 28..30.
    v128_t l = wasm_v128_and(wasm_i32x4_shl(wasm_i32x4_extend_low_i16x8(h), 13), k.mask);
    v128_t u = wasm_v128_and(wasm_i32x4_shl(wasm_i32x4_extend_high_i16x8(h), 13), k.mask);
    *lo = wasm_f32x4_mul(l, k.scale);
    *hi = wasm_f32x4_mul(u, k.scale);
}

// Four halves (unaligned) -> f32x4, the same way. Finite inputs only: callers
// check (repack_weights leaves a matrix with inf/NaN scales in its GGUF layout).
INLINE v128_t fp16x4_to_f32x4(const uint16_t *p, fp16_consts k) {
    v128_t h = wasm_v128_load64_zero(p);
    v128_t bits = wasm_v128_and(wasm_i32x4_shl(wasm_i32x4_extend_low_i16x8(h), 13), k.mask);
    return wasm_f32x4_mul(bits, k.scale);
}

// Rounds each lane to the nearest f16 value (ties to even), kept as f32, like
// fp16_to_fp32(fp32_to_fp16(x)) for |x| < 65520. Normal halves: round the 13
// dropped mantissa bits. Below 2^-14 halves are multiples of 2^-24, which
// (x + 0.75) - 0.75 rounds to, 0.75's binade having exactly that spacing.
INLINE v128_t round_to_f16_f32x4(v128_t x) {
    v128_t lsb = wasm_v128_and(wasm_u32x4_shr(x, 13), wasm_i32x4_splat(1));
    v128_t normal = wasm_v128_and(wasm_i32x4_add(wasm_i32x4_add(x, wasm_i32x4_splat(0xfff)), lsb),
                                  wasm_i32x4_splat((int32_t)0xffffe000u));
    v128_t c = wasm_f32x4_splat(0.75f);
    v128_t subnormal = wasm_f32x4_sub(wasm_f32x4_add(x, c), c);
    return wasm_v128_bitselect(subnormal, normal, wasm_f32x4_lt(wasm_f32x4_abs(x), wasm_f32x4_splat(0x1p-14f)));
}

// a * b + c. The relaxed build fuses it where the engine and CPU do (relaxed_madd: fused or
// not, fixed for a given engine and CPU); the SIMD128 build multiplies, then adds.
INLINE v128_t madd_f32x4(v128_t a, v128_t b, v128_t c) {
#ifdef __wasm_relaxed_simd__
    return wasm_f32x4_relaxed_madd(a, b, c);
#else
    return wasm_f32x4_add(wasm_f32x4_mul(a, b), c);
#endif
}

INLINE float hsum_f32x4(v128_t v) {
    return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
           (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

// 4 x 4 transpose of 32-bit words: out[j] = word j of a, b, c, d.
INLINE void transpose_words(v128_t a, v128_t b, v128_t c, v128_t d, v128_t out[4]) {
    v128_t ab_lo = wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), cd_lo = wasm_i32x4_shuffle(c, d, 0, 4, 1, 5);
    v128_t ab_hi = wasm_i32x4_shuffle(a, b, 2, 6, 3, 7), cd_hi = wasm_i32x4_shuffle(c, d, 2, 6, 3, 7);
    out[0] = wasm_i64x2_shuffle(ab_lo, cd_lo, 0, 2);
    out[1] = wasm_i64x2_shuffle(ab_lo, cd_lo, 1, 3);
    out[2] = wasm_i64x2_shuffle(ab_hi, cd_hi, 0, 2);
    out[3] = wasm_i64x2_shuffle(ab_hi, cd_hi, 1, 3);
}

INLINE int32_t hsum_i32x4(v128_t v) {
    return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) +
           wasm_i32x4_extract_lane(v, 2) + wasm_i32x4_extract_lane(v, 3);
}

// ---------------------------------------------------------------------------
// math (ops.c)

// expf (ops.c says how it is computed); the f32x4 version, expf_f32x4_with below, gives the
// scalar one's bits.
#define EXP_LN2_HI 0x1.62e4p-1f            // 0.693145751953125
#define EXP_LN2_LO 0x1.7f7d1cf79abcap-20f  // ln2 - EXP_LN2_HI
#define EXP_LOG2E 0x1.715476p+0f
#define EXP_MAX 0x1.62e42ep+6f             // largest x with finite expf(x)
#define EXP_MIN (-0x1.9fe368p+6f)          // below: rounds to 0

float expf_accurate(float x);

// The constants of the f32x4 expf, as loop constants (loop_const) for the loops that call it.
typedef struct { v128_t log2e, ln2_hi, ln2_lo, c7, c6, c5, c4, c3, c2, one, k_min, k_max, bias, inf, zero, x_max, x_min, x_floor; } exp_consts;
INLINE exp_consts exp_consts_plain(void) {
    return (exp_consts){
        wasm_f32x4_splat(EXP_LOG2E), wasm_f32x4_splat(EXP_LN2_HI), wasm_f32x4_splat(EXP_LN2_LO),
        wasm_f32x4_splat(1.0f / 5040.0f), wasm_f32x4_splat(1.0f / 720.0f), wasm_f32x4_splat(1.0f / 120.0f),
        wasm_f32x4_splat(1.0f / 24.0f), wasm_f32x4_splat(1.0f / 6.0f), wasm_f32x4_splat(0.5f), wasm_f32x4_splat(1.0f),
        wasm_f32x4_splat(-150.0f), wasm_f32x4_splat(128.0f), wasm_i32x4_splat(127),
        wasm_f32x4_splat(__builtin_inff()), wasm_f32x4_splat(0.0f), wasm_f32x4_splat(EXP_MAX), wasm_f32x4_splat(EXP_MIN),
        wasm_f32x4_splat(-88.0f),
    };
}
INLINE exp_consts exp_loop_consts(void) {
    exp_consts c = exp_consts_plain();
    v128_t *v = (v128_t *)&c;
    for (unsigned i = 0; i < sizeof c / sizeof *v; i++) v[i] = loop_const(v[i]);
    return c;
}

// exp(x) = p * 2^k: k = x / ln2 rounded, p = exp(x - k ln2) by its polynomial.
INLINE v128_t expf_poly_f32x4(v128_t x, v128_t *k_out, exp_consts c) {
    v128_t k = wasm_f32x4_nearest(wasm_f32x4_mul(x, c.log2e));
    v128_t r = wasm_f32x4_sub(wasm_f32x4_sub(x, wasm_f32x4_mul(k, c.ln2_hi)), wasm_f32x4_mul(k, c.ln2_lo));
    v128_t p = c.c7;
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), c.c6);
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), c.c5);
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), c.c4);
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), c.c3);
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), c.c2);
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), c.one);
    *k_out = k;
    return wasm_f32x4_add(wasm_f32x4_mul(p, r), c.one);
}

// expf_accurate of each lane, with its constants given.
INLINE v128_t expf_f32x4_with(v128_t x, exp_consts c) {
    v128_t k, p = expf_poly_f32x4(x, &k, c);
    // Clamp k so the exponent arithmetic stays in range for out-of-range lanes
    // (their results are replaced below).
    v128_t ki = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_pmin(wasm_f32x4_pmax(k, c.k_min), c.k_max));
    v128_t k1 = wasm_i32x4_shr(ki, 1), k2 = wasm_i32x4_sub(ki, k1);
    v128_t y = wasm_f32x4_mul(wasm_f32x4_mul(p, wasm_i32x4_shl(wasm_i32x4_add(k1, c.bias), 23)),
                              wasm_i32x4_shl(wasm_i32x4_add(k2, c.bias), 23));
    y = wasm_v128_bitselect(c.inf, y, wasm_f32x4_gt(x, c.x_max));
    y = wasm_v128_bitselect(c.zero, y, wasm_f32x4_lt(x, c.x_min));
    return wasm_v128_bitselect(x, y, wasm_f32x4_ne(x, x));  // NaN stays NaN
}

// The same for x <= 0 (or NaN), for a softmax's exp(s - max): results below 2^-126 may come out
// as 0, since terms that small neither move a sum holding exp(0) = 1 nor survive the
// probabilities' rounding to f16; the rest get expf_f32x4_with's bits (p * 2^k rounds once in
// both) without its range checks.
INLINE v128_t expf_nonpositive_f32x4(v128_t x, exp_consts c) {
    // -inf and below -88 give k = -127, whose scale reads as 0; NaN stays NaN (pmax keeps it)
    v128_t k, p = expf_poly_f32x4(wasm_f32x4_pmax(x, c.x_floor), &k, c);
    return wasm_f32x4_mul(p, wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(k), c.bias), 23));
}

// ---------------------------------------------------------------------------
// thread pool (pool.c)

// A task processes work items [item] on thread [thread_index] (0 = caller).
typedef void (*pool_task_fn)(const void *args, int item, int thread_index);

// Runs task(args, item, thread) for item in [0, n_items) on every pool thread;
// returns when all items are done. Items are claimed dynamically.
void pool_run(pool_task_fn task, const void *args, int n_items);
int pool_thread_count(void);

// ---------------------------------------------------------------------------
// activations (quantize.c): how a kernel wants its f32 input, quantized once per matmul

typedef enum {
    ACT_F32,         // f32 as it is (F32 weights)
    ACT_F16,         // f32 rounded to f16 values (F16 weights, as llama.cpp converts them)
    ACT_Q8_32,       // block_q8_32, natural order
    ACT_Q8_32W,      // block_q8_32w: int16, permuted (quants.h)
    ACT_Q8_256,      // block_q8_256, natural order
    ACT_Q8_256W,     // block_q8_256w: int16, permuted
    ACT_Q8_32X4,     // block_q8_32x4: each 4 blocks of the row interleaved like 4 tokens
    ACT_Q8_32X4W,    // block_q8_32x4w: 4 Q8_32W blocks with their int16 pairs interleaved
    ACT_Q8_256X,     // block_q8_256w with the quants in Q4_Kx order
    ACT_Q8_256_Q6X,  // block_q8_256 with the quants in Q6_Kx order
    ACT_Q8_256K,     // block_q8_256k: the quants in Q4_Kx order, sums per sub-block (relaxed build)
} act_layout;

// Bytes of one activation row of `cols` elements in `act`.
size_t act_row_bytes(act_layout act, int cols);
// x[0 .. cols) -> one row of `act` at y.
void quantize_activation_row(act_layout act, const float *x, uint8_t *y, int cols);
// f32 -> block_q8_0 as llama.cpp stores a q8_0 tensor (n a multiple of 32): the q8_0 KV cache.
void quantize_row_q8_0(const float *x, block_q8_0 *y, int n);
// Four tokens' Q8_32 rows (token k at x + k * x_row_bytes) -> one row of Q8_32x4 blocks.
void interleave_q8_32x4(const uint8_t *x, size_t x_row_bytes, block_q8_32x4 *y, int n_blocks);
// 4 runs of 16 * n bytes (run k at src + k * stride) -> 4n vectors at dst, vector m holding
// bytes 4m .. 4m+3 of run 0, 1, 2, 3; and the inverse. The interleave of Q4_0x4, Q4_Kx and
// Q6_Kx weights and of their activations.
void interleave_runs(const uint8_t *src, size_t stride, int n, uint8_t *dst);
void deinterleave_runs(const uint8_t *src, uint8_t *dst, size_t stride, int n);

// Q4_K's packed 6-bit scales and mins for the 8 sub-blocks.
INLINE void unpack_q4_K_scales(const uint8_t s[12], uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (uint8_t)((s[j + 8] & 15) | ((s[j] >> 6) << 4));
        m[j + 4] = (uint8_t)((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
    }
}

// ---------------------------------------------------------------------------
// dot products (dot_ref.c; dot_simd128.c or dot_relaxed.c)

// Scalar reference: one weight row (n_blocks blocks) against one activation row
// in the natural layout (block_q8_32 for Q4_0/Q8_0, block_q8_256 for Q4_K/Q6_K,
// f32 for F32/F16).
float dot_f32_ref(const float *w, const float *x, int n);
float dot_f16_ref(const uint16_t *w, const float *x, int n);
float dot_q4_0_ref(const block_q4_0 *w, const block_q8_32 *x, int n_blocks);
float dot_q8_0_ref(const block_q8_0 *w, const block_q8_32 *x, int n_blocks);
float dot_q4_K_ref(const block_q4_K *w, const block_q8_256 *x, int n_blocks);
float dot_q6_K_ref(const block_q6_K *w, const block_q8_256 *x, int n_blocks);

// SIMD: n_rows weight rows x n_tok activation rows (in the layout's act), out[t * out_stride + r].
typedef void (*rows_kernel_fn)(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes,
                               int n_rows, const uint8_t *x, size_t x_row_bytes, int n_tok, int cols);

// Prefill kernels on activations in groups of 4 tokens (block_q8_32x4, one row of
// cols / 32 blocks per group): n_rows weight rows x n_groups groups,
// out[(4 * g + k) * out_stride + r].
typedef void (*groups_kernel_fn)(float *out, int out_stride, const uint8_t *w, size_t w_row_bytes, int n_rows,
                                 const uint8_t *xg, int n_groups, int cols);

// ---------------------------------------------------------------------------
// weight layouts (the table in each build's dot file; weights.c)

// One weight layout as this build's kernels read it.
typedef struct {
    int type;                 // ggml type id, or KERNEL_TYPE_* for a layout repacking makes
    int block_elems;          // weights per block
    int block_bytes;          // bytes per block
    act_layout act;           // the layout the kernels read the input in
    rows_kernel_fn rows;
    groups_kernel_fn groups;  // prefill on 4-token groups (block_q8_32x4), or NULL
    int packed_type;          // the layout repack_weights turns this one into, or 0 (it stays)
} weight_layout;

// This build's layouts, ended by an entry of type -1 (dot_simd128.c or dot_relaxed.c).
extern const weight_layout build_layouts[];

// The layout of `type` in this build, or NULL.
const weight_layout *weight_layout_of(int type);
// The natural activation layout the scalar reference reads for a GGUF type (-1 for others).
int reference_act(int type);
// Bytes of one weight row, or a negative status (exported).
int row_bytes(int wtype, int cols);
