// The ceilings of 128-bit WebAssembly on this CPU (npm run bench:ceiling): int8 dot products
// from registers only, and the streaming read rate of wasm loads. Built at bench time by
// tests/bench/ceiling.ts with @yowasp/clang (never shipped).
#include <stddef.h>
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT __attribute__((visibility("default")))
#define CHAINS 12  // independent accumulators: enough to hide a dot's latency, few enough for 16 registers

// Each chain's second operand comes from memory (L1, as kernels read weights), a different
// vector per chain: operands shared by chains would let the compiler compute one dot for all.
static v128_t operands[CHAINS];

EXPORT void set_operands(int seed) {
    for (int c = 0; c < CHAINS; c++) operands[c] = wasm_i8x16_splat((int8_t)((seed + 5 * c) & 63));
}

// i32x4.relaxed_dot_i8x16_i7x16_add_s: 16 multiply-adds each. `a` moves every iteration so no
// dot can be hoisted out of the loop. Returns a lane sum so nothing is dead.
EXPORT int relaxed_dots(int iterations, int seed) {
    v128_t a = wasm_i8x16_splat((int8_t)seed), one = wasm_i8x16_splat(1);
    v128_t acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = wasm_i32x4_splat(c);
    for (int i = 0; i < iterations; i++) {
        for (int c = 0; c < CHAINS; c++) acc[c] = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a, operands[c], acc[c]);
        a = wasm_i8x16_add(a, one);
    }
    v128_t s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = wasm_i32x4_add(s, acc[c]);
    return wasm_i32x4_extract_lane(s, 0) + wasm_i32x4_extract_lane(s, 3);
}

// SIMD128's int8 path: i32x4.dot_i16x8_s on int16-widened values (8 multiply-adds) and an add.
EXPORT int simd128_dots(int iterations, int seed) {
    v128_t a = wasm_i16x8_splat((int16_t)seed), one = wasm_i16x8_splat(1);
    v128_t acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = wasm_i32x4_splat(c);
    for (int i = 0; i < iterations; i++) {
        for (int c = 0; c < CHAINS; c++) acc[c] = wasm_i32x4_add(acc[c], wasm_i32x4_dot_i16x8(a, operands[c]));
        a = wasm_i16x8_add(a, one);
    }
    v128_t s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = wasm_i32x4_add(s, acc[c]);
    return wasm_i32x4_extract_lane(s, 0) + wasm_i32x4_extract_lane(s, 3);
}

// Streams `bytes` (a multiple of 64) from `p` `passes` times, xor-ing every 16-byte load.
EXPORT int stream_read(const uint8_t *p, size_t bytes, int passes) {
    v128_t x0 = wasm_i32x4_splat(0), x1 = x0, x2 = x0, x3 = x0;
    for (int pass = 0; pass < passes; pass++) {
        for (size_t i = 0; i < bytes; i += 64) {
            x0 = wasm_v128_xor(x0, wasm_v128_load(p + i));
            x1 = wasm_v128_xor(x1, wasm_v128_load(p + i + 16));
            x2 = wasm_v128_xor(x2, wasm_v128_load(p + i + 32));
            x3 = wasm_v128_xor(x3, wasm_v128_load(p + i + 48));
        }
    }
    v128_t x = wasm_v128_xor(wasm_v128_xor(x0, x1), wasm_v128_xor(x2, x3));
    return wasm_i32x4_extract_lane(x, 0) ^ wasm_i32x4_extract_lane(x, 2);
}
