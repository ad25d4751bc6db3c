// matmul: dst[t * rows + r] = sum_c W[r, c] * src[t * cols + c]
//
// W is in GGUF layout (row r = output feature r, contiguous, `cols` elements
// in blocks). src is f32 [n_tokens][cols]. Quantized weights get their
// activations quantized first (into `scratch`, see matmul_scratch_bytes), then
// the work is split in items of ROW_CHUNK rows x TOKEN_CHUNK tokens claimed by
// the pool threads. Where the build has a group kernel for the type (relaxed
// Q4_0), prefill also interleaves groups of 4 tokens (block_q8_32x4) and runs it
// on them. This file is the one place that picks a kernel per type.
#include "kernels.h"

float fp16_table[65536];

EXPORT void kernels_init(void) {
    for (int i = 0; i < 65536; i++) fp16_table[i] = fp16_to_fp32((uint16_t)i);
}

// 1 for the relaxed-SIMD build. Runtime selection never trusts this alone: see relaxed_probe.
EXPORT int kernels_build_is_relaxed(void) { return KERNELS_RELAXED; }

#if KERNELS_RELAXED
// Known-answer probe for the runtime check: the relaxed dot the kernels use
// (i32x4 form) with a non-zero accumulator, negative 8-bit operands and 7-bit
// operands spread over 0..127, folded into one checksum.
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
    return wasm_i32x4_extract_lane(r, 0) + 3 * wasm_i32x4_extract_lane(r, 1) + 5 * wasm_i32x4_extract_lane(r, 2) +
           7 * wasm_i32x4_extract_lane(r, 3);
}
#endif

// Activation formats. F16 weights take activations rounded to f16 (kept as f32), as
// llama.cpp converts them to f16 before its f16 dot products.
enum { ACT_F32, ACT_F16, ACT_Q8_32, ACT_Q8_256 };

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

static const wtype_info *wtype_lookup(int wtype) {
    static const wtype_info f32 = { 1, 4, ACT_F32, rows_f32, 0 };
    static const wtype_info f16 = { 1, 2, ACT_F16, rows_f16, 0 };
    static const wtype_info q4_0 = { QK4_0, sizeof(block_q4_0), ACT_Q8_32, rows_q4_0, GROUPS_Q4_0 };
    static const wtype_info q8_0 = { QK8_0, sizeof(block_q8_0), ACT_Q8_32, rows_q8_0, 0 };
    static const wtype_info q4_K = { QK_K, sizeof(block_q4_K), ACT_Q8_256, rows_q4_K, 0 };
    static const wtype_info q6_K = { QK_K, sizeof(block_q6_K), ACT_Q8_256, rows_q6_K, 0 };
    switch (wtype) {
    case GGML_TYPE_F32: return &f32;
    case GGML_TYPE_F16: return &f16;
    case GGML_TYPE_Q4_0: return &q4_0;
    case GGML_TYPE_Q8_0: return &q8_0;
    case GGML_TYPE_Q4_K: return &q4_K;
    case GGML_TYPE_Q6_K: return &q6_K;
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
    for (int t = t0; t < t0 + n; t++)
        quantize_activation_row(a->act, a->src + (size_t)t * a->cols, a->dst + (size_t)t * a->dst_row_bytes, a->cols, 0);
    if (item < a->n_groups)
        interleave_q8_32x4(a->dst + (size_t)t0 * a->dst_row_bytes, a->dst_row_bytes,
                           (block_q8_32x4 *)(a->groups + (size_t)item * group_row_bytes(a->cols)), a->cols / 32);
}

// Rows per work item: enough work to hide the claim (one atomic add), small
// enough to balance two or more threads.
// Decode streams every weight once from memory: long runs of consecutive rows per
// claim keep each thread's reads sequential (measured on the 4B model, 2 threads:
// 32-row claims 5.1-5.4 tok/s, 256-row claims 6.3-6.6), while at least 4 claims per
// thread keep them balanced on small matrices and many threads.
#define DECODE_ROW_CHUNK_MIN 32
#define DECODE_ROW_CHUNK_MAX 256
#define PREFILL_ROW_CHUNK 16
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

EXPORT int matmul(float *dst, const uint8_t *w, int wtype, int rows, int cols, const float *src, int n_tokens,
                  uint8_t *scratch) {
    const wtype_info *info = wtype_lookup(wtype);
    if (!info) return KERNEL_BAD_TYPE;
    if (rows <= 0 || cols <= 0 || cols % info->block_elems || n_tokens <= 0) return KERNEL_BAD_ARGS;

    matmul_args a;
    a.dst = dst;
    a.w = w;
    a.w_row_bytes = (size_t)(cols / info->block_elems) * info->block_bytes;
    a.rows = rows;
    a.cols = cols;
    a.n_tokens = n_tokens;
    a.kernel = info->simd;
    a.groups = info->groups;
    a.n_groups = token_groups(info, n_tokens);
    a.xg = 0;
    if (info->act == ACT_F32) {
        a.x = (const uint8_t *)src;
        a.x_row_bytes = (size_t)cols * 4;
    } else {
        size_t x_row_bytes = act_row_bytes(info->act, cols, 0);
        uint8_t *groups = scratch + x_row_bytes * (size_t)n_tokens;
        quantize_args q = { src, scratch, info->act, cols, x_row_bytes, a.n_groups, groups };
        int n_items = n_tokens - 3 * a.n_groups;  // a group of 4 tokens is one item
        if (n_tokens >= 8) pool_run(quantize_item, &q, n_items);
        else for (int i = 0; i < n_items; i++) quantize_item(&q, i, 0);
        a.x = scratch;
        a.x_row_bytes = x_row_bytes;
        a.xg = groups;
    }
    if (n_tokens < PREFILL_MIN_TOKENS) {
        int chunk = rows / (4 * pool_thread_count());
        chunk = chunk < DECODE_ROW_CHUNK_MIN ? DECODE_ROW_CHUNK_MIN : chunk > DECODE_ROW_CHUNK_MAX ? DECODE_ROW_CHUNK_MAX : chunk;
        a.row_chunk = chunk & ~15;
    } else {
        a.row_chunk = PREFILL_ROW_CHUNK;
    }
    a.n_row_chunks = (rows + a.row_chunk - 1) / a.row_chunk;
    int n_token_chunks = (n_tokens + TOKEN_CHUNK - 1) / TOKEN_CHUNK;
    pool_run(matmul_item, &a, a.n_row_chunks * n_token_chunks);
    return KERNEL_OK;
}

// ---------------------------------------------------------------------------
// Scalar reference: same activation quantization (natural layout), scalar dots,
// single thread.

EXPORT int matmul_ref(float *dst, const uint8_t *w, int wtype, int rows, int cols, const float *src, int n_tokens,
                      uint8_t *scratch) {
    const wtype_info *info = wtype_lookup(wtype);
    if (!info) return KERNEL_BAD_TYPE;
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
