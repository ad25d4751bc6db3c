// The KV cache and causal grouped-query attention, in two cache formats:
//  - f16 (llama.cpp's default cache): rows of halves; attention in two passes
//    (scores, softmax, then p.v) rounded as llama.cpp's attention without flash
//    attention, which our f16 logits are checked against.
//  - q8_0 (llama.cpp's --cache-type-k/v q8_0): rows of block_q8_0 (32 values, an
//    f16 scale), half the bytes; attention as llama.cpp's flash attention over a
//    quantized cache: q quantized to Q8_0, integer q.k per block, an online
//    softmax over tiles of positions (no score row as long as the context), v
//    dequantized to f32 and accumulated in f32. As llama.cpp does for a
//    quantized cache, callers rotate q, k and v with a Hadamard matrix first
//    (hadamard_rotate) and the output back: scores do not change, and the
//    rotation spreads outlying values so blocks quantize with less error.
#include "kernels.h"

#define UNROLL_ATTN _Pragma("clang loop unroll(full)")

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
// reads KV head h / (n_heads / n_kv_heads). One work item = up to 16 tokens
// (fewer where the context is long: see attention_tokens_per_item) and one KV head:
// every K/V row is converted from f16 once for all of them (a prompt's tokens
// share their cache rows), and their query heads go in batches of up to 4.
//
// Scores: K rows are converted K_TILE at a time into a transposed tile
// ([dim][K_TILE]), so a query's scores against the tile come out as vectors of
// positions, one multiply-add per value with the query value splatted. Scores
// are stored [token][head][position]; the softmax runs along a row.
//
// Rounding follows llama.cpp's CPU attention, so that our activations and its
// agree closely enough to quantize to the same integers in the next matmul: it
// multiplies an f16 cache, so it converts q to f16 before q.k and the softmax
// probabilities to f16 before p.v (accumulating in f32). We round q in place
// and the normalized probabilities before the V pass. Each output sums in the
// same order however many tokens share an item, so results do not depend on it.
//
// scratch: per thread, the scores of an item's tokens (4 heads x n_ctx each),
// their output accumulators, a K tile and a V block (n_ctx = start_pos +
// n_tokens; see attention_scratch_bytes).

#define HEADS_PER_BATCH 4
#define MAX_TOKENS_PER_ITEM 16
#define K_TILE 8             // positions per K tile: two vectors of scores per query head
#define V_POSITION_BLOCK 64  // positions per pass over the V rows (their 8-dim slices stay in L1)

// One attention call, for either cache type (cache_k / cache_v point at its rows).
typedef struct {
    float *out;
    const float *q;
    const void *cache_k, *cache_v;
    int n_tokens, start_pos, n_heads, n_kv_heads, head_dim, group;
    float scale;
    float *scratch;
    size_t score_stride;   // f16: floats per head's row of scores, n_ctx rounded up to 16
    int tokens_per_item;   // f16: see attention_tokens_per_item
    size_t scratch_floats_per_thread;
} attention_args;

// Checks the shapes (head_dim a multiple of head_multiple) and fills what both kernels share.
static int attention_setup(attention_args *a, float *out, const float *q, const void *cache_k, const void *cache_v,
                           int n_tokens, int start_pos, int n_heads, int n_kv_heads, int head_dim, float scale,
                           float *scratch, int head_multiple) {
    if (n_tokens <= 0 || start_pos < 0 || n_kv_heads <= 0 || n_heads % n_kv_heads || head_dim <= 0 ||
        head_dim % head_multiple)
        return KERNEL_BAD_ARGS;
    a->out = out;
    a->q = q;
    a->cache_k = cache_k;
    a->cache_v = cache_v;
    a->n_tokens = n_tokens;
    a->start_pos = start_pos;
    a->n_heads = n_heads;
    a->n_kv_heads = n_kv_heads;
    a->head_dim = head_dim;
    a->group = n_heads / n_kv_heads;
    a->scale = scale;
    a->scratch = scratch;
    return KERNEL_OK;
}

// [sum(a), sum(b), sum(c), sum(d)]
INLINE v128_t transpose_sum4(v128_t a, v128_t b, v128_t c, v128_t d) {
    v128_t ab = wasm_f32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
    v128_t cd = wasm_f32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
    return wasm_f32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

// The K rows of positions p0 .. p0 + rows - 1 (rows <= K_TILE; missing rows read as 0) to f32,
// transposed: kt[d * K_TILE + r] = k[p0 + r][d]. Each step loads all the rows, so their cache
// misses overlap.
INLINE void k_tile_transposed(float *kt, const uint16_t *k, size_t kv_stride, int rows, int hd, fp16_consts fc) {
    for (int d = 0; d < hd; d += 8) {
        v128_t lo[K_TILE], hi[K_TILE];
        UNROLL_ATTN for (int r = 0; r < K_TILE; r++) {
            if (r < rows) fp16x8_to_f32x4x2(k + (size_t)r * kv_stride + d, &lo[r], &hi[r], fc);
            else lo[r] = hi[r] = wasm_f32x4_splat(0.0f);
        }
        v128_t w[4];
        UNROLL_ATTN for (int half = 0; half < K_TILE / 4; half++) {
            transpose_words(lo[4 * half], lo[4 * half + 1], lo[4 * half + 2], lo[4 * half + 3], w);
            UNROLL_ATTN for (int i = 0; i < 4; i++) wasm_v128_store(kt + (size_t)(d + i) * K_TILE + 4 * half, w[i]);
            transpose_words(hi[4 * half], hi[4 * half + 1], hi[4 * half + 2], hi[4 * half + 3], w);
            UNROLL_ATTN for (int i = 0; i < 4; i++) wasm_v128_store(kt + (size_t)(d + 4 + i) * K_TILE + 4 * half, w[i]);
        }
    }
}

// s_j[r] = scale * q_j . k_r for the K_TILE positions of a transposed tile and G (1..4) heads
// q_j = q + j * hd; head j's scores go to s + j * score_stride.
INLINE void tile_scores(float *s, size_t score_stride, const float *q, const float *kt, int hd, float scale, const int G) {
    v128_t lo[HEADS_PER_BATCH], hi[HEADS_PER_BATCH];
    UNROLL_ATTN for (int j = 0; j < G; j++) lo[j] = hi[j] = wasm_f32x4_splat(0.0f);
    for (int d = 0; d < hd; d++) {
        v128_t k_lo = wasm_v128_load(kt + (size_t)d * K_TILE), k_hi = wasm_v128_load(kt + (size_t)d * K_TILE + 4);
        UNROLL_ATTN for (int j = 0; j < G; j++) {
            v128_t qd = wasm_v128_load32_splat(q + (size_t)j * hd + d);
            lo[j] = madd_f32x4(k_lo, qd, lo[j]);
            hi[j] = madd_f32x4(k_hi, qd, hi[j]);
        }
    }
    const v128_t sc = wasm_f32x4_splat(scale);
    UNROLL_ATTN for (int j = 0; j < G; j++) {
        wasm_v128_store(s + (size_t)j * score_stride, wasm_f32x4_mul(lo[j], sc));
        wasm_v128_store(s + (size_t)j * score_stride + 4, wasm_f32x4_mul(hi[j], sc));
    }
}

INLINE float hmax_f32x4(v128_t v) {
    v128_t m = wasm_f32x4_pmax(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
    return wasm_f32x4_extract_lane(wasm_f32x4_pmax(m, wasm_i32x4_shuffle(m, m, 1, 0, 3, 2)), 0);
}

// exp(s - max) over the first n scores of a row, normalized, rounded to f16 as llama.cpp does
// before multiplying by V. The row has room for n rounded up to 4; lanes past n take no part.
static void softmax_row(float *s, int n, exp_consts ec) {
    const int full = n & ~3;
    const v128_t tail_lanes = wasm_i32x4_lt(wasm_i32x4_make(0, 1, 2, 3), wasm_i32x4_splat(n - full));
    const v128_t minus_inf = wasm_f32x4_splat(-__builtin_inff());
    // pmax: one instruction where max's NaN rules take several (a NaN score is not lost: exp gives NaN)
    v128_t mx = minus_inf;
    for (int p = 0; p < full; p += 4) mx = wasm_f32x4_pmax(mx, wasm_v128_load(s + p));
    if (full < n) mx = wasm_f32x4_pmax(mx, wasm_v128_bitselect(wasm_v128_load(s + full), minus_inf, tail_lanes));
    const v128_t m = wasm_f32x4_splat(hmax_f32x4(mx));
    v128_t sum = wasm_f32x4_splat(0.0f);
    for (int p = 0; p < full; p += 4) {
        v128_t e = expf_nonpositive_f32x4(wasm_f32x4_sub(wasm_v128_load(s + p), m), ec);
        wasm_v128_store(s + p, e);
        sum = wasm_f32x4_add(sum, e);
    }
    if (full < n) {
        v128_t e = wasm_v128_and(expf_nonpositive_f32x4(wasm_f32x4_sub(wasm_v128_load(s + full), m), ec), tail_lanes);
        wasm_v128_store(s + full, e);
        sum = wasm_f32x4_add(sum, e);
    }
    const v128_t inv_sum = wasm_f32x4_splat(1.0f / hsum_f32x4(sum));
    for (int p = 0; p < n; p += 4) wasm_v128_store(s + p, round_to_f16_f32x4(wasm_f32x4_mul(wasm_v128_load(s + p), inv_sum)));
}

// T (1..item_tokens) tokens x G (1..4) query heads of one KV head. q and out point at the
// first token's first head of the batch; tokens are q_stride floats apart; token t sees n_pos0 + t
// positions.
INLINE void attention_tokens(float *out, const float *q, size_t q_stride, const uint16_t *k, const uint16_t *v,
                             size_t kv_stride, int n_pos0, int T, int hd, float scale, float *scratch,
                             size_t score_stride, int item_tokens, const int G) {
    const size_t token_scores = HEADS_PER_BATCH * score_stride;
    float *scores = scratch;                                        // [T][4][score_stride]
    float *acc = scores + (size_t)item_tokens * token_scores;       // [T][G][hd]
    float *kt = acc + (size_t)item_tokens * HEADS_PER_BATCH * hd;   // [hd][K_TILE]
    float *vblock = kt + (size_t)K_TILE * hd;                       // [V_POSITION_BLOCK][8]
    const int n_pos_max = n_pos0 + T - 1;
    const fp16_consts fc = fp16_loop_consts();

    // scores[t][j][p] = scale * q_tj . k_p, each K tile converted once for the T tokens (a
    // token's scores past its own positions are computed with the tile and never read)
    for (int p0 = 0; p0 < n_pos_max; p0 += K_TILE) {
        k_tile_transposed(kt, k + (size_t)p0 * kv_stride, kv_stride, n_pos_max - p0 < K_TILE ? n_pos_max - p0 : K_TILE, hd, fc);
        for (int t = (p0 >= n_pos0 ? p0 - n_pos0 + 1 : 0); t < T; t++)
            tile_scores(scores + (size_t)t * token_scores + p0, score_stride, q + (size_t)t * q_stride, kt, hd, scale, G);
    }
    const exp_consts ec = exp_loop_consts();
    for (int t = 0; t < T; t++)
        for (int j = 0; j < G; j++) softmax_row(scores + (size_t)t * token_scores + (size_t)j * score_stride, n_pos0 + t, ec);

    // acc[t][j] = sum_p scores[t][j][p] * v_p: each V block converted once, 8 dims at a time
    for (int i = 0; i < T * G * hd; i++) acc[i] = 0.0f;
    for (int p0 = 0; p0 < n_pos_max; p0 += V_POSITION_BLOCK) {
        int p1 = p0 + V_POSITION_BLOCK < n_pos_max ? p0 + V_POSITION_BLOCK : n_pos_max;
        for (int d = 0; d < hd; d += 8) {
            for (int p = p0; p < p1; p++) {
                v128_t lo, hi;
                fp16x8_to_f32x4x2(v + (size_t)p * kv_stride + d, &lo, &hi, fc);
                wasm_v128_store(vblock + 8 * (size_t)(p - p0), lo);
                wasm_v128_store(vblock + 8 * (size_t)(p - p0) + 4, hi);
            }
            for (int t = 0; t < T; t++) {
                int end = n_pos0 + t < p1 ? n_pos0 + t : p1;
                const float *st = scores + (size_t)t * token_scores;
                float *at = acc + (size_t)t * G * hd;
                v128_t a_lo[HEADS_PER_BATCH], a_hi[HEADS_PER_BATCH];
                UNROLL_ATTN for (int j = 0; j < G; j++) {
                    a_lo[j] = wasm_v128_load(at + (size_t)j * hd + d);
                    a_hi[j] = wasm_v128_load(at + (size_t)j * hd + d + 4);
                }
                for (int p = p0; p < end; p++) {
                    v128_t v_lo = wasm_v128_load(vblock + 8 * (size_t)(p - p0));
                    v128_t v_hi = wasm_v128_load(vblock + 8 * (size_t)(p - p0) + 4);
                    UNROLL_ATTN for (int j = 0; j < G; j++) {
                        v128_t w = wasm_v128_load32_splat(st + (size_t)j * score_stride + p);
                        a_lo[j] = madd_f32x4(v_lo, w, a_lo[j]);
                        a_hi[j] = madd_f32x4(v_hi, w, a_hi[j]);
                    }
                }
                UNROLL_ATTN for (int j = 0; j < G; j++) {
                    wasm_v128_store(at + (size_t)j * hd + d, a_lo[j]);
                    wasm_v128_store(at + (size_t)j * hd + d + 4, a_hi[j]);
                }
            }
        }
    }
    for (int t = 0; t < T; t++)
        for (int i = 0; i < G * hd; i++) out[(size_t)t * q_stride + i] = acc[(size_t)t * G * hd + i];
}

static void attention_item(const void *vargs, int item, int thread_index) {
    const attention_args *a = (const attention_args *)vargs;
    int block = item / a->n_kv_heads, kvh = item % a->n_kv_heads;
    int t0 = block * a->tokens_per_item;
    int T = a->n_tokens - t0 < a->tokens_per_item ? a->n_tokens - t0 : a->tokens_per_item;
    int hd = a->head_dim;
    size_t kv_stride = (size_t)a->n_kv_heads * hd, q_stride = (size_t)a->n_heads * hd;
    float *scratch = a->scratch + (size_t)thread_index * a->scratch_floats_per_thread;
    const uint16_t *k = (const uint16_t *)a->cache_k + (size_t)kvh * hd, *v = (const uint16_t *)a->cache_v + (size_t)kvh * hd;
    for (int j0 = 0; j0 < a->group; j0 += HEADS_PER_BATCH) {
        size_t head = (size_t)t0 * a->n_heads + (size_t)kvh * a->group + j0;
        float *out = a->out + head * hd;
        const float *q = a->q + head * hd;
        int n_pos0 = a->start_pos + t0 + 1;
        switch (a->group - j0 < HEADS_PER_BATCH ? a->group - j0 : HEADS_PER_BATCH) {
        case 1: attention_tokens(out, q, q_stride, k, v, kv_stride, n_pos0, T, hd, a->scale, scratch, a->score_stride, a->tokens_per_item, 1); break;
        case 2: attention_tokens(out, q, q_stride, k, v, kv_stride, n_pos0, T, hd, a->scale, scratch, a->score_stride, a->tokens_per_item, 2); break;
        case 3: attention_tokens(out, q, q_stride, k, v, kv_stride, n_pos0, T, hd, a->scale, scratch, a->score_stride, a->tokens_per_item, 3); break;
        default: attention_tokens(out, q, q_stride, k, v, kv_stride, n_pos0, T, hd, a->scale, scratch, a->score_stride, a->tokens_per_item, 4); break;
        }
    }
}

INLINE size_t attention_score_stride(int n_tokens, int start_pos) {
    return ((size_t)start_pos + n_tokens + 15) & ~(size_t)15;  // whole K tiles, 64-byte aligned rows
}

// Tokens an item: 16, halved while their scores would take more than 1 MiB (16 up to a context of
// 4,096, 8 up to 8,192), at least 4: more tokens share each converted K tile and V block, and a
// thread's scratch stays bounded as the context grows.
#define ITEM_SCORES_MAX_FLOATS ((size_t)1 << 18)
#define MIN_TOKENS_PER_ITEM 4
INLINE int attention_tokens_per_item(size_t score_stride) {
    int tokens = MAX_TOKENS_PER_ITEM;
    while (tokens > MIN_TOKENS_PER_ITEM && (size_t)tokens * HEADS_PER_BATCH * score_stride > ITEM_SCORES_MAX_FLOATS) tokens /= 2;
    return tokens;
}

INLINE size_t attention_floats_per_thread_at(size_t score_stride, int head_dim) {
    size_t item_tokens = (size_t)attention_tokens_per_item(score_stride);
    size_t floats = item_tokens * HEADS_PER_BATCH * score_stride + item_tokens * HEADS_PER_BATCH * head_dim +
                    (size_t)K_TILE * head_dim + 8 * V_POSITION_BLOCK;
    return (floats + 15) & ~(size_t)15;  // keep every thread's slice 64-byte aligned
}

INLINE size_t attention_floats_per_thread(int n_tokens, int start_pos, int head_dim) {
    return attention_floats_per_thread_at(attention_score_stride(n_tokens, start_pos), head_dim);
}

// The scratch of any call over at most start_pos + n_tokens positions: the largest of them (rows
// of scores grow with the context, and a call just past a change of item size needs less than
// one just before), so that scratch sized once for a context serves every call in it.
EXPORT int attention_scratch_bytes(int n_tokens, int start_pos, int n_heads, int n_kv_heads, int head_dim) {
    if (n_kv_heads <= 0 || n_heads % n_kv_heads || n_tokens <= 0 || start_pos < 0 || head_dim <= 0) return KERNEL_BAD_ARGS;
    size_t stride = attention_score_stride(n_tokens, start_pos);
    size_t floats = attention_floats_per_thread_at(stride, head_dim);
    for (int tokens = MAX_TOKENS_PER_ITEM; tokens > MIN_TOKENS_PER_ITEM; tokens /= 2) {
        size_t last_stride = ITEM_SCORES_MAX_FLOATS / ((size_t)tokens * HEADS_PER_BATCH);  // the largest with `tokens`
        size_t at_last = attention_floats_per_thread_at(last_stride, head_dim);
        if (stride > last_stride && at_last > floats) floats = at_last;
    }
    size_t bytes = floats * 4 * (size_t)pool_thread_count();
    return bytes > 0x7fffffff ? KERNEL_BAD_ARGS : (int)bytes;
}

EXPORT int attention(float *out, const float *q, const uint16_t *cache_k, const uint16_t *cache_v,
                     int n_tokens, int start_pos, int n_heads, int n_kv_heads, int head_dim, float scale,
                     float *scratch) {
    attention_args a;
    if (attention_setup(&a, out, q, cache_k, cache_v, n_tokens, start_pos, n_heads, n_kv_heads, head_dim, scale, scratch, 8))
        return KERNEL_BAD_ARGS;
    a.score_stride = attention_score_stride(n_tokens, start_pos);
    a.scratch_floats_per_thread = attention_floats_per_thread(n_tokens, start_pos, head_dim);
    // q to f16 precision, in place (see the header comment)
    float *qw = (float *)q;
    size_t nq = (size_t)n_tokens * n_heads * head_dim;
    for (size_t i = 0; i < nq; i += 4) wasm_v128_store(qw + i, round_to_f16_f32x4(wasm_v128_load(qw + i)));
    a.tokens_per_item = attention_tokens_per_item(a.score_stride);
    pool_run(attention_item, &a, (n_tokens + a.tokens_per_item - 1) / a.tokens_per_item * n_kv_heads);
    return KERNEL_OK;
}

// ---------------------------------------------------------------------------
// Hadamard rotation: each `block` values of each row (block a power of two
// dividing width) times the Sylvester Hadamard matrix H[i][j] = (-1)^popcount(i & j)
// / sqrt(block), by the fast Walsh-Hadamard butterflies. H is orthonormal and
// symmetric, so rotating twice gives the input back.

EXPORT int hadamard_rotate(float *x, int n_rows, int width, int block) {
    if (n_rows <= 0 || width <= 0 || block < 8 || (block & (block - 1)) || width % block) return KERNEL_BAD_ARGS;
    const float norm = 1.0f / __builtin_sqrtf((float)block);
    for (size_t c = 0; c < (size_t)n_rows * width; c += block) {
        float *v = x + c;
        for (int i = 0; i < block; i += 2) {
            float a = v[i], b = v[i + 1];
            v[i] = a + b;
            v[i + 1] = a - b;
        }
        for (int i = 0; i < block; i += 4) {
            float a0 = v[i], a1 = v[i + 1], b0 = v[i + 2], b1 = v[i + 3];
            v[i] = a0 + b0;
            v[i + 1] = a1 + b1;
            v[i + 2] = a0 - b0;
            v[i + 3] = a1 - b1;
        }
        for (int h = 4; h < block; h *= 2) {
            for (int i = 0; i < block; i += 2 * h) {
                for (int j = i; j < i + h; j += 4) {
                    v128_t a = wasm_v128_load(v + j), b = wasm_v128_load(v + j + h);
                    wasm_v128_store(v + j, wasm_f32x4_add(a, b));
                    wasm_v128_store(v + j + h, wasm_f32x4_sub(a, b));
                }
            }
        }
        for (int i = 0; i < block; i += 4) wasm_v128_store(v + i, wasm_f32x4_mul(wasm_v128_load(v + i), wasm_f32x4_splat(norm)));
    }
    return KERNEL_OK;
}

// ---------------------------------------------------------------------------
// q8_0 cache: cache_k, cache_v are [position][kv_dim / 32] block_q8_0, kv_dim a
// multiple of 32 (each head's values start a block when head_dim is one too).

EXPORT int kv_store_q8_0(block_q8_0 *cache_k, block_q8_0 *cache_v, const float *k, const float *v,
                         int n_tokens, int start_pos, int kv_dim) {
    if (n_tokens <= 0 || start_pos < 0 || kv_dim <= 0 || kv_dim % QK8_0) return KERNEL_BAD_ARGS;
    size_t blocks = (size_t)kv_dim / QK8_0;
    quantize_row_q8_0(k, cache_k + (size_t)start_pos * blocks, n_tokens * kv_dim);
    quantize_row_q8_0(v, cache_v + (size_t)start_pos * blocks, n_tokens * kv_dim);
    return KERNEL_OK;
}

// Positions per online-softmax step: scores for a tile, one rescale of the
// accumulators, then the tile's v rows.
#define Q8_TILE 32
#define Q8_TOKENS_PER_ITEM 16

// Eight int8 at p -> two f32x4.
INLINE void i8x8_to_f32x4x2(const int8_t *p, v128_t *lo, v128_t *hi) {
    v128_t w = wasm_i16x8_extend_low_i8x16(wasm_v128_load64_zero(p));
    *lo = wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(w));
    *hi = wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(w));
}

// 32 int8 (a block's quants) -> 32 int16, for the i16 dots of q.k.
INLINE void widen_i8x32(int16_t *dst, const int8_t *src) {
    v128_t a = wasm_v128_load(src), b = wasm_v128_load(src + 16);
    wasm_v128_store(dst, wasm_i16x8_extend_low_i8x16(a));
    wasm_v128_store(dst + 8, wasm_i16x8_extend_high_i8x16(a));
    wasm_v128_store(dst + 16, wasm_i16x8_extend_low_i8x16(b));
    wasm_v128_store(dst + 24, wasm_i16x8_extend_high_i8x16(b));
}

// One item's scratch (attention_q8_0_floats_per_thread sizes it): the tile's K rows widened to
// int16 with their block scales, its V rows dequantized, and per token the quantized queries of
// a batch of heads, the online softmax's state and the output accumulators.
typedef struct {
    int16_t *k16;   // [Q8_TILE][hd]
    float *dk;      // [Q8_TILE][nb]
    float *v32;     // [Q8_TILE][hd]: q * d, as llama.cpp dequantizes before its f32 multiply-add
    float *scores;  // [Q8_TILE][4]
    block_q8_32 *qq; // [4 * nb]: one token's heads, quantized
    int16_t *q16;   // [T][4][hd]
    float *dq;      // [T][4 * nb]
    float *state;   // [T][8]: running max per head (4 lanes), running sum of exp(s - max)
    float *acc;     // [T][4][hd]
} q8_scratch;

// Positions p0 .. p1 - 1 of one KV head (k, v at its first block of position 0; rows kv_blocks
// apart) into the tile buffers: each row read once for all the item's tokens.
INLINE void q8_0_tile(const q8_scratch *s, const block_q8_0 *k, const block_q8_0 *v, size_t kv_blocks, int p0, int p1, int hd) {
    const int nb = hd / QK8_0;
    for (int p = p0; p < p1; p++) {
        const block_q8_0 *kp = k + (size_t)p * kv_blocks, *vp = v + (size_t)p * kv_blocks;
        int16_t *k16 = s->k16 + (size_t)(p - p0) * hd;
        float *v32 = s->v32 + (size_t)(p - p0) * hd;
        for (int b = 0; b < nb; b++) {
            widen_i8x32(k16 + b * QK8_0, kp[b].qs);
            s->dk[(size_t)(p - p0) * nb + b] = fp16_lookup(kp[b].d);
            v128_t dv = wasm_f32x4_splat(fp16_lookup(vp[b].d));
            for (int off = 0; off < QK8_0; off += 8) {
                v128_t v_lo, v_hi;
                i8x8_to_f32x4x2(vp[b].qs + off, &v_lo, &v_hi);
                wasm_v128_store(v32 + b * QK8_0 + off, wasm_f32x4_mul(v_lo, dv));
                wasm_v128_store(v32 + b * QK8_0 + off + 4, wasm_f32x4_mul(v_hi, dv));
            }
        }
    }
}

// One token's G (1..4) query heads (q16, dq: quantized) over tile positions p0 .. p1 - 1 (the
// tile starts at p0): the tile's scores, the online softmax's step, the tile's v rows added to
// acc ([G][hd]); state holds the running max and sum (a lane per head).
INLINE void q8_0_token_tile(const q8_scratch *s, const int16_t *q16, const float *dq, float *state, float *acc,
                            int p0, int p1, int hd, float scale, exp_consts ec, const int G) {
    const int nb = hd / QK8_0;
    float *scores = s->scores;
    // scores[p][j] = scale * q_j . k_p: per block, integer products in 4 lanes, times both
    // scales, summed in f32 lanes across blocks (as llama.cpp's q8_0 dot), lanes added last
    v128_t tile_max = wasm_f32x4_splat(-__builtin_inff());
    for (int p = p0; p < p1; p++) {
        const int16_t *k16 = s->k16 + (size_t)(p - p0) * hd;
        v128_t acc_s[HEADS_PER_BATCH];
        UNROLL_ATTN for (int j = 0; j < HEADS_PER_BATCH; j++) acc_s[j] = wasm_f32x4_splat(0.0f);
        for (int b = 0; b < nb; b++) {
            const int16_t *kb = k16 + b * QK8_0;
            v128_t kw0 = wasm_v128_load(kb), kw1 = wasm_v128_load(kb + 8), kw2 = wasm_v128_load(kb + 16), kw3 = wasm_v128_load(kb + 24);
            float dk = s->dk[(size_t)(p - p0) * nb + b];
            UNROLL_ATTN for (int j = 0; j < G; j++) {
                const int16_t *qw = q16 + ((size_t)j * nb + b) * QK8_0;
                v128_t dot = wasm_i32x4_add(
                    wasm_i32x4_add(wasm_i32x4_dot_i16x8(kw0, wasm_v128_load(qw)), wasm_i32x4_dot_i16x8(kw1, wasm_v128_load(qw + 8))),
                    wasm_i32x4_add(wasm_i32x4_dot_i16x8(kw2, wasm_v128_load(qw + 16)), wasm_i32x4_dot_i16x8(kw3, wasm_v128_load(qw + 24))));
                acc_s[j] = madd_f32x4(wasm_f32x4_convert_i32x4(dot), wasm_f32x4_splat(dk * dq[j * nb + b]), acc_s[j]);
            }
        }
        v128_t sv = wasm_f32x4_mul(transpose_sum4(acc_s[0], acc_s[1], acc_s[2], acc_s[3]), wasm_f32x4_splat(scale));
        wasm_v128_store(scores + 4 * (size_t)(p - p0), sv);
        tile_max = wasm_f32x4_max(tile_max, sv);
    }
    // a new maximum rescales what was summed so far
    v128_t m = wasm_v128_load(state), sum = wasm_v128_load(state + 4);
    v128_t m_new = wasm_f32x4_max(m, tile_max);
    v128_t first = wasm_f32x4_eq(m, wasm_f32x4_splat(-__builtin_inff()));  // nothing summed yet (exp(-inf - x) would be NaN here)
    v128_t correction = wasm_v128_bitselect(wasm_f32x4_splat(0.0f), expf_f32x4_with(wasm_f32x4_sub(m, m_new), ec), first);
    m = m_new;
    sum = wasm_f32x4_mul(sum, correction);
    float factor[HEADS_PER_BATCH];
    wasm_v128_store(factor, correction);
    UNROLL_ATTN for (int j = 0; j < G; j++) {
        v128_t c = wasm_f32x4_splat(factor[j]);
        for (int d = 0; d < hd; d += 4) wasm_v128_store(acc + (size_t)j * hd + d, wasm_f32x4_mul(wasm_v128_load(acc + (size_t)j * hd + d), c));
    }
    for (int p = p0; p < p1; p++) {
        float *sp = scores + 4 * (size_t)(p - p0);
        v128_t e = expf_f32x4_with(wasm_f32x4_sub(wasm_v128_load(sp), m), ec);
        wasm_v128_store(sp, e);
        sum = wasm_f32x4_add(sum, e);
    }
    wasm_v128_store(state, m);
    wasm_v128_store(state + 4, sum);
    // acc[j] += e[p][j] * v_p
    for (int d = 0; d < hd; d += 8) {
        v128_t a_lo[HEADS_PER_BATCH], a_hi[HEADS_PER_BATCH];
        UNROLL_ATTN for (int j = 0; j < G; j++) {
            a_lo[j] = wasm_v128_load(acc + (size_t)j * hd + d);
            a_hi[j] = wasm_v128_load(acc + (size_t)j * hd + d + 4);
        }
        for (int p = p0; p < p1; p++) {
            const float *vp = s->v32 + (size_t)(p - p0) * hd + d;
            v128_t v_lo = wasm_v128_load(vp), v_hi = wasm_v128_load(vp + 4);
            UNROLL_ATTN for (int j = 0; j < G; j++) {
                v128_t w = wasm_v128_load32_splat(scores + 4 * (size_t)(p - p0) + j);
                a_lo[j] = madd_f32x4(v_lo, w, a_lo[j]);
                a_hi[j] = madd_f32x4(v_hi, w, a_hi[j]);
            }
        }
        UNROLL_ATTN for (int j = 0; j < G; j++) {
            wasm_v128_store(acc + (size_t)j * hd + d, a_lo[j]);
            wasm_v128_store(acc + (size_t)j * hd + d + 4, a_hi[j]);
        }
    }
}

// T tokens x G (1..4) query heads of one KV head (q16, dq of the T tokens prepared in s); token
// t sees n_pos0 + t positions. Tiles of Q8_TILE positions from 0, as for a token alone.
INLINE void attention_q8_0_tokens(float *out, size_t q_stride, const q8_scratch *s, const block_q8_0 *k,
                                  const block_q8_0 *v, size_t kv_blocks, int n_pos0, int T, int hd, float scale,
                                  const int G) {
    const int nb = hd / QK8_0;
    const int n_pos_max = n_pos0 + T - 1;
    const exp_consts ec = exp_loop_consts();
    for (int t = 0; t < T; t++) {
        v128_t minus_inf = wasm_f32x4_splat(-__builtin_inff());
        wasm_v128_store(s->state + 8 * (size_t)t, minus_inf);
        wasm_v128_store(s->state + 8 * (size_t)t + 4, wasm_f32x4_splat(0.0f));
        for (int i = 0; i < G * hd; i++) s->acc[(size_t)t * HEADS_PER_BATCH * hd + i] = 0.0f;
    }
    for (int p0 = 0; p0 < n_pos_max; p0 += Q8_TILE) {
        int p1 = p0 + Q8_TILE < n_pos_max ? p0 + Q8_TILE : n_pos_max;
        q8_0_tile(s, k, v, kv_blocks, p0, p1, hd);
        for (int t = (p0 >= n_pos0 ? p0 - n_pos0 + 1 : 0); t < T; t++) {
            int end = n_pos0 + t < p1 ? n_pos0 + t : p1;
            q8_0_token_tile(s, s->q16 + (size_t)t * HEADS_PER_BATCH * hd, s->dq + (size_t)t * HEADS_PER_BATCH * nb,
                            s->state + 8 * (size_t)t, s->acc + (size_t)t * HEADS_PER_BATCH * hd, p0, end, hd, scale, ec, G);
        }
    }
    for (int t = 0; t < T; t++) {
        float sums[HEADS_PER_BATCH];
        wasm_v128_store(sums, wasm_v128_load(s->state + 8 * (size_t)t + 4));
        const float *acc = s->acc + (size_t)t * HEADS_PER_BATCH * hd;
        UNROLL_ATTN for (int j = 0; j < G; j++) {
            v128_t inv = wasm_f32x4_splat(1.0f / sums[j]);
            for (int d = 0; d < hd; d += 4)
                wasm_v128_store(out + (size_t)t * q_stride + (size_t)j * hd + d, wasm_f32x4_mul(wasm_v128_load(acc + (size_t)j * hd + d), inv));
        }
    }
}

// Per thread (all independent of the context length): the tile's K rows (int16) and scales and
// V rows (f32), a tile of scores, and per token of an item the quantized queries of 4 heads, the
// softmax state and the accumulators.
INLINE size_t attention_q8_0_floats_per_thread(int head_dim) {
    const size_t nb = (size_t)head_dim / QK8_0, T = Q8_TOKENS_PER_ITEM;
    size_t floats = (size_t)Q8_TILE * head_dim / 2 + Q8_TILE * nb + (size_t)Q8_TILE * head_dim + 4 * Q8_TILE +
                    HEADS_PER_BATCH * nb * (sizeof(block_q8_32) / 4) + T * HEADS_PER_BATCH * head_dim / 2 +
                    T * HEADS_PER_BATCH * nb + 8 * T + T * HEADS_PER_BATCH * (size_t)head_dim;
    return (floats + 15) & ~(size_t)15;
}

static void attention_q8_0_item(const void *vargs, int item, int thread_index) {
    const attention_args *a = (const attention_args *)vargs;
    int block = item / a->n_kv_heads, kvh = item % a->n_kv_heads;
    int t0 = block * Q8_TOKENS_PER_ITEM;
    int T = a->n_tokens - t0 < Q8_TOKENS_PER_ITEM ? a->n_tokens - t0 : Q8_TOKENS_PER_ITEM;
    int hd = a->head_dim, nb = hd / QK8_0;
    size_t kv_blocks = (size_t)a->n_kv_heads * nb, q_stride = (size_t)a->n_heads * hd;
    float *base = a->scratch + (size_t)thread_index * a->scratch_floats_per_thread;
    q8_scratch s;
    s.k16 = (int16_t *)base;
    s.dk = (float *)(s.k16 + (size_t)Q8_TILE * hd);
    s.v32 = s.dk + (size_t)Q8_TILE * nb;
    s.scores = s.v32 + (size_t)Q8_TILE * hd;
    s.qq = (block_q8_32 *)(s.scores + 4 * Q8_TILE);
    s.q16 = (int16_t *)(s.qq + HEADS_PER_BATCH * nb);
    s.dq = (float *)(s.q16 + (size_t)Q8_TOKENS_PER_ITEM * HEADS_PER_BATCH * hd);
    s.state = s.dq + (size_t)Q8_TOKENS_PER_ITEM * HEADS_PER_BATCH * nb;
    s.acc = s.state + 8 * Q8_TOKENS_PER_ITEM;
    const block_q8_0 *k = (const block_q8_0 *)a->cache_k + (size_t)kvh * nb, *v = (const block_q8_0 *)a->cache_v + (size_t)kvh * nb;
    for (int j0 = 0; j0 < a->group; j0 += HEADS_PER_BATCH) {
        int G = a->group - j0 < HEADS_PER_BATCH ? a->group - j0 : HEADS_PER_BATCH;
        // q to Q8_0, as llama.cpp quantizes it for the integer dot with a q8_0 K; widened to int16 once
        for (int t = 0; t < T; t++) {
            size_t head = (size_t)(t0 + t) * a->n_heads + (size_t)kvh * a->group + j0;
            quantize_activation_row(ACT_Q8_32, a->q + head * hd, (uint8_t *)s.qq, G * hd);
            int16_t *q16 = s.q16 + (size_t)t * HEADS_PER_BATCH * hd;
            float *dq = s.dq + (size_t)t * HEADS_PER_BATCH * nb;
            for (int b = 0; b < G * nb; b++) {
                dq[b] = s.qq[b].d;
                widen_i8x32(q16 + b * QK8_0, s.qq[b].qs);
            }
        }
        float *out = a->out + ((size_t)t0 * a->n_heads + (size_t)kvh * a->group + j0) * hd;
        int n_pos0 = a->start_pos + t0 + 1;
        switch (G) {
        case 1: attention_q8_0_tokens(out, q_stride, &s, k, v, kv_blocks, n_pos0, T, hd, a->scale, 1); break;
        case 2: attention_q8_0_tokens(out, q_stride, &s, k, v, kv_blocks, n_pos0, T, hd, a->scale, 2); break;
        case 3: attention_q8_0_tokens(out, q_stride, &s, k, v, kv_blocks, n_pos0, T, hd, a->scale, 3); break;
        default: attention_q8_0_tokens(out, q_stride, &s, k, v, kv_blocks, n_pos0, T, hd, a->scale, 4); break;
        }
    }
}

EXPORT int attention_q8_0_scratch_bytes(int head_dim) {
    if (head_dim <= 0 || head_dim % QK8_0) return KERNEL_BAD_ARGS;
    return (int)(attention_q8_0_floats_per_thread(head_dim) * 4 * (size_t)pool_thread_count());
}

EXPORT int attention_q8_0(float *out, const float *q, const block_q8_0 *cache_k, const block_q8_0 *cache_v,
                          int n_tokens, int start_pos, int n_heads, int n_kv_heads, int head_dim, float scale,
                          float *scratch) {
    attention_args a;
    if (attention_setup(&a, out, q, cache_k, cache_v, n_tokens, start_pos, n_heads, n_kv_heads, head_dim, scale, scratch, QK8_0))
        return KERNEL_BAD_ARGS;
    a.scratch_floats_per_thread = attention_q8_0_floats_per_thread(head_dim);
    pool_run(attention_q8_0_item, &a, (n_tokens + Q8_TOKENS_PER_ITEM - 1) / Q8_TOKENS_PER_ITEM * n_kv_heads);
    return KERNEL_OK;
}
