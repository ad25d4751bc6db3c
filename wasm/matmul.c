// matmul: dst[t * rows + r] = sum_c W[r, c] * src[t * cols + c]
//
// W is in GGUF layout (row r = output feature r, contiguous, `cols` elements
// in blocks). src is f32 [n_tokens][cols]. Quantized weights get their
// activations quantized first (into `scratch`, see matmul_scratch_bytes).
// Prefill splits the work in items of PREFILL_ROW_CHUNK rows x TOKEN_CHUNK
// tokens claimed by the pool threads; decode lets each thread claim runs of
// rows that shrink as the rows run out. Where the build has a group kernel for
// the type (relaxed Q4_0), prefill also interleaves groups of 4 tokens
// (block_q8_32x4) and runs it on them. matmul_multi does the same for one
// input and several matrices (Q, K and V; gate and up) as one pool job. This
// file is the one place that picks a kernel per type.
#include "kernels.h"

float fp16_table[65536];

EXPORT void kernels_init(void) {
    for (int i = 0; i < 65536; i++) fp16_table[i] = fp16_to_fp32((uint16_t)i);
}

// 1 for the relaxed-SIMD build. Runtime selection never trusts this alone: see relaxed_probe.
EXPORT int kernels_build_is_relaxed(void) { return KERNELS_RELAXED; }

#if KERNELS_RELAXED
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
#endif

// Activation formats. F16 weights take activations rounded to f16 (kept as f32), as
// llama.cpp converts them to f16 before its f16 dot products.
// ACT_Q8_32X4B: Q8_32 with each 4 blocks interleaved, for Q4_0x4: block_q8_32x4 (relaxed),
// block_q8_32x4w (SIMD128).
// ACT_Q8_256X: Q8_256W with quants in Q4_Kx order, for Q4_Kx (SIMD128).
// ACT_Q8_256_Q6X: Q8_256 with quants in Q6_Kx order, for Q6_Kx (relaxed).
enum { ACT_F32, ACT_F16, ACT_Q8_32, ACT_Q8_256, ACT_Q8_32X4B, ACT_Q8_256X, ACT_Q8_256_Q6X };

typedef struct {
    int block_elems;        // weights per block
    int block_bytes;        // bytes per block
    int act;                // activation format
    rows_kernel_fn simd;    // this build's kernel
    groups_kernel_fn groups; // this build's prefill kernel on 4-token groups (Q8_32x4), or NULL
} wtype_info;

#if KERNELS_RELAXED
#define GROUPS_Q4_0 groups_q4_0
#else
#define GROUPS_Q4_0 0
#endif

// Weight rows of Q4_0x4 hold whole groups of 4 blocks.
#define Q4_0X4_COLS (4 * QK4_0)

static const wtype_info *wtype_lookup(int wtype) {
    static const wtype_info f32 = { 1, 4, ACT_F32, rows_f32, 0 };
    static const wtype_info f16 = { 1, 2, ACT_F16, rows_f16, 0 };
    static const wtype_info q4_0 = { QK4_0, sizeof(block_q4_0), ACT_Q8_32, rows_q4_0, GROUPS_Q4_0 };
    static const wtype_info q8_0 = { QK8_0, sizeof(block_q8_0), ACT_Q8_32, rows_q8_0, 0 };
    static const wtype_info q4_K = { QK_K, sizeof(block_q4_K), ACT_Q8_256, rows_q4_K, 0 };
    static const wtype_info q6_K = { QK_K, sizeof(block_q6_K), ACT_Q8_256, rows_q6_K, 0 };
#if KERNELS_RELAXED
    static const wtype_info q6_Kx = { QK_K, sizeof(block_q6_Kx), ACT_Q8_256_Q6X, rows_q6_Kx, 0 };
    static const wtype_info q4_0x4 = { Q4_0X4_COLS, sizeof(block_q4_0x4), ACT_Q8_32X4B, rows_q4_0x4, groups_q4_0x4 };
#else
    static const wtype_info q4_Kx = { QK_K, sizeof(block_q4_Kx), ACT_Q8_256X, rows_q4_Kx, 0 };
    static const wtype_info q4_0x4 = { Q4_0X4_COLS, sizeof(block_q4_0x4), ACT_Q8_32X4B, rows_q4_0x4, 0 };
#endif
    switch (wtype) {
    case GGML_TYPE_F32: return &f32;
    case GGML_TYPE_F16: return &f16;
    case GGML_TYPE_Q4_0: return &q4_0;
    case GGML_TYPE_Q8_0: return &q8_0;
    case GGML_TYPE_Q4_K: return &q4_K;
    case GGML_TYPE_Q6_K: return &q6_K;
    case KERNEL_TYPE_Q4_0X4: return &q4_0x4;
#if KERNELS_RELAXED
    case KERNEL_TYPE_Q6_KX: return &q6_Kx;
#else
    case KERNEL_TYPE_Q4_KX: return &q4_Kx;
#endif
    default: return 0;
    }
}

// Bytes of one weight row, or a negative status.
EXPORT int row_bytes(int wtype, int cols) {
    const wtype_info *info = wtype_lookup(wtype);
    if (!info) return KERNEL_BAD_TYPE;
    if (cols <= 0 || cols % info->block_elems) return KERNEL_BAD_ARGS;
    return cols / info->block_elems * info->block_bytes;
}

// Bytes of one quantized activation row in this build's layout (ref: natural layout).
static size_t act_row_bytes(int act, int cols, int natural) {
    switch (act) {
    case ACT_Q8_32: return (size_t)(cols / 32) * (natural || KERNELS_RELAXED ? sizeof(block_q8_32) : sizeof(block_q8_32w));
    case ACT_Q8_256: return (size_t)(cols / QK_K) * (natural || KERNELS_RELAXED ? sizeof(block_q8_256) : sizeof(block_q8_256w));
    case ACT_Q8_32X4B:  // relaxed: the natural Q8_32 row's size
        return (size_t)(cols / Q4_0X4_COLS) * (KERNELS_RELAXED ? sizeof(block_q8_32x4) : sizeof(block_q8_32x4w));
    case ACT_Q8_256X: return (size_t)(cols / QK_K) * sizeof(block_q8_256w);
    case ACT_Q8_256_Q6X: return (size_t)(cols / QK_K) * sizeof(block_q8_256);
    default: return (size_t)cols * 4;
    }
}

static void quantize_activation_row(int act, const float *x, uint8_t *y, int cols, int natural) {
    if (act == ACT_Q8_32) {
        if (natural || KERNELS_RELAXED) quantize_row_q8_32(x, (block_q8_32 *)y, cols);
        else quantize_row_q8_32w(x, (block_q8_32w *)y, cols);
    } else if (act == ACT_Q8_256) {
        if (natural || KERNELS_RELAXED) quantize_row_q8_256(x, (block_q8_256 *)y, cols);
        else quantize_row_q8_256w(x, (block_q8_256w *)y, cols);
    } else if (act == ACT_Q8_32X4B) {
        if (KERNELS_RELAXED) quantize_row_q8_32x4b(x, (block_q8_32x4 *)y, cols);
        else quantize_row_q8_32x4w(x, (block_q8_32x4w *)y, cols);
#if KERNELS_RELAXED
    } else if (act == ACT_Q8_256_Q6X) {
        quantize_row_q8_256_q6x(x, (block_q8_256 *)y, cols);
#else
    } else if (act == ACT_Q8_256X) {
        quantize_row_q8_256x(x, (block_q8_256w *)y, cols);
#endif
    } else if (act == ACT_F16) {
        float *yf = (float *)y;
        for (int i = 0; i < cols; i++) yf[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
    }
}

// Prefill (this many tokens or more) splits rows in fixed chunks and, where the build
// has one, runs the 4-token group kernel.
#define PREFILL_MIN_TOKENS 4

// Groups of 4 tokens the group kernel takes (0: the type or build has none, or decode).
static int token_groups(const wtype_info *info, int n_tokens) {
    return info->groups && n_tokens >= PREFILL_MIN_TOKENS ? n_tokens / 4 : 0;
}

// Bytes of one group's interleaved activations (block_q8_32x4 per 32 columns).
static size_t group_row_bytes(int cols) { return (size_t)(cols / 32) * sizeof(block_q8_32x4); }

// Scratch `matmul` (or `matmul_ref`) needs for these arguments, or a negative status:
// the quantized activation rows, then the 4-token groups where the group kernel runs.
EXPORT int matmul_scratch_bytes(int wtype, int cols, int n_tokens) {
    const wtype_info *info = wtype_lookup(wtype);
    if (!info) return KERNEL_BAD_TYPE;
    if (cols <= 0 || cols % info->block_elems || n_tokens <= 0) return KERNEL_BAD_ARGS;
    if (info->act == ACT_F32) return 0;
    size_t simd = act_row_bytes(info->act, cols, 0), natural = act_row_bytes(info->act, cols, 1);
    size_t bytes = (simd > natural ? simd : natural) * (size_t)n_tokens;
    bytes += (size_t)token_groups(info, n_tokens) * group_row_bytes(cols);
    return bytes > 0x7fffffff ? KERNEL_BAD_ARGS : (int)bytes;
}

// ---------------------------------------------------------------------------
// Threaded parts

typedef struct {
    const float *src;
    uint8_t *dst;
    int act, cols;
    size_t dst_row_bytes;
    int n_groups;         // items below this quantize 4 tokens and interleave them into `groups`
    uint8_t *groups;
} quantize_args;

static void quantize_item(const void *vargs, int item, int thread_index) {
    (void)thread_index;
    const quantize_args *a = (const quantize_args *)vargs;
    int t0 = item < a->n_groups ? 4 * item : 3 * a->n_groups + item;
    int n = item < a->n_groups ? 4 : 1;
    // a group's rows are interleaved from plain Q8_32 rows (same size as the Q8_32X4B rows)
    int act = item < a->n_groups && a->act == ACT_Q8_32X4B ? ACT_Q8_32 : a->act;
    for (int t = t0; t < t0 + n; t++)
        quantize_activation_row(act, a->src + (size_t)t * a->cols, a->dst + (size_t)t * a->dst_row_bytes, a->cols, 0);
    if (item < a->n_groups)
        interleave_q8_32x4(a->dst + (size_t)t0 * a->dst_row_bytes, a->dst_row_bytes,
                           (block_q8_32x4 *)(a->groups + (size_t)item * group_row_bytes(a->cols)), a->cols / 32);
}

// Prefill: rows per work item, enough work to hide the claim (one atomic add),
// small enough to balance two or more threads.
#define PREFILL_ROW_CHUNK 16
// Decode streams every weight once from memory: long runs of consecutive rows per
// claim keep each thread's reads sequential (measured on the 4B model, 2 threads:
// 32-row claims 5.1-5.4 tok/s, 256-row claims 6.3-6.6). Claims shrink as the rows
// run out (guided scheduling: a share of what is left), so the threads finish
// together instead of one waiting out the other's last long claim.
#define DECODE_CLAIM_MIN 16
#define DECODE_CLAIM_MAX 256
#define TOKEN_CHUNK 64   // a multiple of 4: token chunks start on group boundaries

typedef struct {
    float *dst;
    const uint8_t *w;
    size_t w_row_bytes;
    int rows, cols, n_tokens;
    const uint8_t *x;
    size_t x_row_bytes;
    int row_chunk, n_row_chunks;
    rows_kernel_fn kernel;
    groups_kernel_fn groups;   // for tokens < 4 * n_groups, else `kernel`
    const uint8_t *xg;
    int n_groups;
    volatile int next_row;     // decode: first row not yet claimed
} matmul_args;

static void matmul_item(const void *vargs, int item, int thread_index) {
    (void)thread_index;
    const matmul_args *a = (const matmul_args *)vargs;
    int row0 = (item % a->n_row_chunks) * a->row_chunk;
    int tok0 = (item / a->n_row_chunks) * TOKEN_CHUNK;
    int n_rows = a->rows - row0 < a->row_chunk ? a->rows - row0 : a->row_chunk;
    int n_tok = a->n_tokens - tok0 < TOKEN_CHUNK ? a->n_tokens - tok0 : TOKEN_CHUNK;
    const uint8_t *w = a->w + (size_t)row0 * a->w_row_bytes;
    int grouped = 4 * a->n_groups - tok0;
    grouped = grouped < 0 ? 0 : grouped < n_tok ? grouped : n_tok;
    if (grouped > 0)
        a->groups(a->dst + (size_t)tok0 * a->rows + row0, a->rows, w, a->w_row_bytes, n_rows,
                  a->xg + (size_t)(tok0 / 4) * group_row_bytes(a->cols), grouped / 4, a->cols);
    if (n_tok > grouped) {
        int t = tok0 + grouped;
        a->kernel(a->dst + (size_t)t * a->rows + row0, a->rows, w, a->w_row_bytes,
                  n_rows, a->x + (size_t)t * a->x_row_bytes, a->x_row_bytes, n_tok - grouped, a->cols);
    }
}

// Products of one input with up to MAX_TARGETS matrices (e.g. the Q, K and V
// projections): the input is quantized once and all of them run as one pool job.
#define MAX_TARGETS 4

typedef struct {
    float *dst;
    const uint8_t *w;
    int wtype, rows;
} matmul_target;

typedef struct {
    matmul_args m[MAX_TARGETS];
    int n;
    int first_item[MAX_TARGETS + 1];  // prefill: items of target i are first_item[i] ..
} matmul_job;

// Decode: one item per thread; each claims runs of rows (all tokens) of the
// targets in turn until none are left. Claims are sized by all rows still left.
static void matmul_decode_item(const void *vargs, int item, int thread_index) {
    (void)item;
    (void)thread_index;
    matmul_job *job = (matmul_job *)vargs;
    int threads = pool_thread_count();
    int rows_after = 0;  // rows of the targets after i
    for (int i = 0; i < job->n; i++) rows_after += job->m[i].rows;
    for (int i = 0; i < job->n; i++) {
        matmul_args *a = &job->m[i];
        rows_after -= a->rows;
        for (;;) {
            int row0 = __atomic_load_n(&a->next_row, __ATOMIC_SEQ_CST);
            int left = a->rows - row0;
            if (left <= 0) break;
            int n = ((left + rows_after) / (2 * threads)) & ~15;
            n = n < DECODE_CLAIM_MIN ? DECODE_CLAIM_MIN : n > DECODE_CLAIM_MAX ? DECODE_CLAIM_MAX : n;
            n = n < left ? n : left;
            if (!__atomic_compare_exchange_n(&a->next_row, &row0, row0 + n, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) continue;
            a->kernel(a->dst + row0, a->rows, a->w + (size_t)row0 * a->w_row_bytes, a->w_row_bytes, n, a->x,
                      a->x_row_bytes, a->n_tokens, a->cols);
        }
    }
}

static void matmul_prefill_item(const void *vargs, int item, int thread_index) {
    const matmul_job *job = (const matmul_job *)vargs;
    int i = 0;
    while (item >= job->first_item[i + 1]) i++;
    matmul_item(&job->m[i], item - job->first_item[i], thread_index);
}

EXPORT int matmul_multi(const matmul_target *targets, int n_targets, int cols, const float *src, int n_tokens,
                        uint8_t *scratch) {
    if (n_targets <= 0 || n_targets > MAX_TARGETS || cols <= 0 || n_tokens <= 0) return KERNEL_BAD_ARGS;
    const wtype_info *info[MAX_TARGETS];
    int n_groups = 0, same_act = 1;
    for (int i = 0; i < n_targets; i++) {
        info[i] = wtype_lookup(targets[i].wtype);
        if (!info[i]) return KERNEL_BAD_TYPE;
        if (targets[i].rows <= 0 || cols % info[i]->block_elems) return KERNEL_BAD_ARGS;
        same_act &= info[i]->act == info[0]->act;
        int g = token_groups(info[i], n_tokens);
        n_groups = g > n_groups ? g : n_groups;
    }
    if (!same_act) {  // inputs quantized differently: one job each
        for (int i = 0; i < n_targets; i++) {
            int status = matmul_multi(targets + i, 1, cols, src, n_tokens, scratch);
            if (status != KERNEL_OK) return status;
        }
        return KERNEL_OK;
    }

    // The input, quantized once for all targets (with 4-token groups where a target has that kernel).
    int act = info[0]->act;
    const uint8_t *x = (const uint8_t *)src, *xg = 0;
    size_t x_row_bytes = (size_t)cols * 4;
    if (act != ACT_F32) {
        x_row_bytes = act_row_bytes(act, cols, 0);
        uint8_t *groups = scratch + x_row_bytes * (size_t)n_tokens;
        quantize_args q = { src, scratch, act, cols, x_row_bytes, n_groups, groups };
        int n_items = n_tokens - 3 * n_groups;  // a group of 4 tokens is one item
        if (n_tokens >= 8) pool_run(quantize_item, &q, n_items);
        else for (int i = 0; i < n_items; i++) quantize_item(&q, i, 0);
        x = scratch;
        xg = groups;
    }

    matmul_job job;
    job.n = n_targets;
    job.first_item[0] = 0;
    int n_token_chunks = (n_tokens + TOKEN_CHUNK - 1) / TOKEN_CHUNK;
    int rows_total = 0;
    for (int i = 0; i < n_targets; i++) {
        matmul_args *a = &job.m[i];
        a->dst = targets[i].dst;
        a->w = targets[i].w;
        a->w_row_bytes = (size_t)(cols / info[i]->block_elems) * info[i]->block_bytes;
        a->rows = targets[i].rows;
        a->cols = cols;
        a->n_tokens = n_tokens;
        a->kernel = info[i]->simd;
        a->groups = info[i]->groups;
        a->n_groups = token_groups(info[i], n_tokens);
        a->x = x;
        a->x_row_bytes = x_row_bytes;
        a->xg = xg;
        a->next_row = 0;
        a->row_chunk = PREFILL_ROW_CHUNK;
        a->n_row_chunks = (a->rows + a->row_chunk - 1) / a->row_chunk;
        job.first_item[i + 1] = job.first_item[i] + a->n_row_chunks * n_token_chunks;
        rows_total += a->rows;
    }
    if (n_tokens < PREFILL_MIN_TOKENS) {
        int threads = pool_thread_count();
        pool_run(matmul_decode_item, &job, rows_total < threads * DECODE_CLAIM_MIN ? 1 : threads);
    } else {
        pool_run(matmul_prefill_item, &job, job.first_item[n_targets]);
    }
    return KERNEL_OK;
}

EXPORT int matmul(float *dst, const uint8_t *w, int wtype, int rows, int cols, const float *src, int n_tokens,
                  uint8_t *scratch) {
    matmul_target target = { dst, w, wtype, rows };
    return matmul_multi(&target, 1, cols, src, n_tokens, scratch);
}

// ---------------------------------------------------------------------------
// Repacking at load time

typedef struct {
    uint8_t *w;
    size_t row_bytes;
    int rows, wtype;
} repack_args;

#define REPACK_ROW_CHUNK 64

static void repack_item(const void *vargs, int item, int thread_index) {
    (void)thread_index;
    const repack_args *a = (const repack_args *)vargs;
    int r_end = (item + 1) * REPACK_ROW_CHUNK < a->rows ? (item + 1) * REPACK_ROW_CHUNK : a->rows;
    for (int r = item * REPACK_ROW_CHUNK; r < r_end; r++) {
        uint8_t *row = a->w + (size_t)r * a->row_bytes;
        if (a->wtype == GGML_TYPE_Q4_K) {
            for (size_t b = 0; b < a->row_bytes / sizeof(block_q4_K); b++) pack_q4_Kx((block_q4_K *)row + b);
            continue;
        }
        if (a->wtype == GGML_TYPE_Q6_K) {
            for (size_t b = 0; b < a->row_bytes / sizeof(block_q6_K); b++) pack_q6_Kx((block_q6_K *)row + b);
            continue;
        }
        for (size_t g = 0; g < a->row_bytes / sizeof(block_q4_0x4); g++) {
            block_q4_0 blocks[4];
            memcpy(blocks, row + g * sizeof(blocks), sizeof(blocks));
            pack_q4_0x4(blocks, (block_q4_0x4 *)(row + g * sizeof(blocks)));
        }
    }
}

// Rewrites a weight matrix in place into the layout this build's kernels read
// fastest, and returns the type to pass to matmul from then on (wtype itself
// when the layout stays). Both builds repack Q4_0 into Q4_0x4 when rows hold
// whole groups of 4 blocks and every scale is finite (the kernels convert scales
// 4 at a time, finite values only); the SIMD128 build Q4_K into Q4_Kx, the
// relaxed build Q6_K into Q6_Kx.
EXPORT int repack_weights(uint8_t *w, int wtype, int rows, int cols) {
    int rb = row_bytes(wtype, cols);
    if (rb < 0) return rb;
    if (rows <= 0) return KERNEL_BAD_ARGS;
    int packed = wtype;
    if (!KERNELS_RELAXED && wtype == GGML_TYPE_Q4_K) packed = KERNEL_TYPE_Q4_KX;
    if (KERNELS_RELAXED && wtype == GGML_TYPE_Q6_K) packed = KERNEL_TYPE_Q6_KX;
    if (wtype == GGML_TYPE_Q4_0 && cols % Q4_0X4_COLS == 0) {
        packed = KERNEL_TYPE_Q4_0X4;
        size_t n_blocks = (size_t)rows * (size_t)(cols / QK4_0);
        for (size_t b = 0; b < n_blocks; b++) {
            uint16_t d = ((const block_q4_0 *)w)[b].d;
            if ((d & 0x7c00) == 0x7c00) return wtype;  // inf or NaN
        }
    }
    if (packed == wtype) return wtype;
    repack_args args = { w, (size_t)rb, rows, wtype };
    pool_run(repack_item, &args, (rows + REPACK_ROW_CHUNK - 1) / REPACK_ROW_CHUNK);
    return packed;
}

// ---------------------------------------------------------------------------
// Scalar reference: same activation quantization (natural layout), scalar dots,
// single thread.

EXPORT int matmul_ref(float *dst, const uint8_t *w, int wtype, int rows, int cols, const float *src, int n_tokens,
                      uint8_t *scratch) {
    const wtype_info *info = wtype_lookup(wtype);
    if (!info || wtype == KERNEL_TYPE_Q4_0X4 || wtype == KERNEL_TYPE_Q4_KX || wtype == KERNEL_TYPE_Q6_KX)
        return KERNEL_BAD_TYPE;  // GGUF layouts only
    if (rows <= 0 || cols <= 0 || cols % info->block_elems || n_tokens <= 0) return KERNEL_BAD_ARGS;
    size_t wrb = (size_t)(cols / info->block_elems) * info->block_bytes;
    size_t xrb = act_row_bytes(info->act, cols, 1);
    for (int t = 0; t < n_tokens; t++) {
        const float *xf = src + (size_t)t * cols;
        uint8_t *xq = scratch + (size_t)t * xrb;
        quantize_activation_row(info->act, xf, xq, cols, 1);
        for (int r = 0; r < rows; r++) {
            const uint8_t *wr = w + (size_t)r * wrb;
            float v;
            switch (wtype) {
            case GGML_TYPE_F32: v = dot_f32_ref((const float *)wr, xf, cols); break;
            case GGML_TYPE_F16: v = dot_f16_ref((const uint16_t *)wr, (const float *)xq, cols); break;
            case GGML_TYPE_Q4_0: v = dot_q4_0_ref((const block_q4_0 *)wr, (const block_q8_32 *)xq, cols / QK4_0); break;
            case GGML_TYPE_Q8_0: v = dot_q8_0_ref((const block_q8_0 *)wr, (const block_q8_32 *)xq, cols / QK8_0); break;
            case GGML_TYPE_Q4_K: v = dot_q4_K_ref((const block_q4_K *)wr, (const block_q8_256 *)xq, cols / QK_K); break;
            default: v = dot_q6_K_ref((const block_q6_K *)wr, (const block_q8_256 *)xq, cols / QK_K); break;
            }
            dst[(size_t)t * rows + r] = v;
        }
    }
    return KERNEL_OK;
}
