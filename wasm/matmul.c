// matmul: dst[t * rows + r] = sum_c W[r, c] * src[t * cols + c]
//
// W is in a layout of this build's table (weights.c: GGUF layout, or as repack_weights left
// it; row r = output feature r, contiguous, `cols` elements in blocks). src is f32
// [n_tokens][cols], quantized first (into `scratch`, see matmul_scratch_bytes) into the
// activation layout the kernel reads. Prefill splits the work in items of PREFILL_ROW_CHUNK
// rows x TOKEN_CHUNK tokens claimed by the pool threads; decode lets each thread claim runs of
// rows that shrink as the rows run out. Where the layout has a group kernel, prefill also
// interleaves groups of 4 tokens (block_q8_32x4) and runs it on them. matmul_multi does the
// same for one input and several matrices (Q, K and V; gate and up) as one pool job. This file
// dispatches and threads; which kernel serves which layout is the build's table.
#include "kernels.h"

// Prefill (this many tokens or more) splits rows in fixed chunks and, where the build
// has one, runs the 4-token group kernel. Fewer tokens run the decode kernels, which give each
// token the bits it would get alone: a speculative draft of up to 8 tokens verified in one call
// gets the logits of decoding its tokens one by one (KERNEL_EXACT_MAX_TOKENS, kernels.h).
#define PREFILL_MIN_TOKENS (KERNEL_EXACT_MAX_TOKENS + 1)

// Groups of 4 tokens the group kernel takes (0: the type or build has none, or decode).
static int token_groups(const weight_layout *layout, int n_tokens) {
    return layout->groups && n_tokens >= PREFILL_MIN_TOKENS ? n_tokens / 4 : 0;
}

// Bytes of one group's interleaved activations (block_q8_32x4 per 32 columns).
static size_t group_row_bytes(int cols) { return (size_t)(cols / 32) * sizeof(block_q8_32x4); }

// Scratch `matmul` (or `matmul_ref`) needs for these arguments, or a negative status:
// the quantized activation rows, then the 4-token groups where the group kernel runs.
EXPORT int matmul_scratch_bytes(int wtype, int cols, int n_tokens) {
    const weight_layout *layout = weight_layout_of(wtype);
    if (!layout) return KERNEL_BAD_TYPE;
    if (cols <= 0 || cols % layout->block_elems || n_tokens <= 0) return KERNEL_BAD_ARGS;
    if (layout->act == ACT_F32) return 0;
    int ref = reference_act(wtype);
    size_t simd = act_row_bytes(layout->act, cols), natural = ref < 0 ? 0 : act_row_bytes((act_layout)ref, cols);
    size_t bytes = (simd > natural ? simd : natural) * (size_t)n_tokens;
    bytes += (size_t)token_groups(layout, n_tokens) * group_row_bytes(cols);
    return bytes > 0x7fffffff ? KERNEL_BAD_ARGS : (int)bytes;
}

// ---------------------------------------------------------------------------
// Threaded parts

typedef struct {
    const float *src;
    uint8_t *dst;
    act_layout act;
    int cols;
    size_t dst_row_bytes;
    int n_groups;         // items below this quantize 4 tokens and interleave them into `groups`
    uint8_t *groups;
} quantize_args;

static void quantize_item(const void *vargs, int item, int thread_index) {
    (void)thread_index;
    const quantize_args *a = (const quantize_args *)vargs;
    int t0 = item < a->n_groups ? 4 * item : 3 * a->n_groups + item;
    int n = item < a->n_groups ? 4 : 1;
    // A group is interleaved from its tokens' plain Q8_32 rows (group kernels read Q8_32 or
    // Q8_32X4 rows otherwise, both of Q8_32's size).
    act_layout act = item < a->n_groups ? ACT_Q8_32 : a->act;
    for (int t = t0; t < t0 + n; t++)
        quantize_activation_row(act, a->src + (size_t)t * a->cols, a->dst + (size_t)t * a->dst_row_bytes, a->cols);
    if (item < a->n_groups)
        interleave_q8_32x4(a->dst + (size_t)t0 * a->dst_row_bytes, a->dst_row_bytes,
                           (block_q8_32x4 *)(a->groups + (size_t)item * group_row_bytes(a->cols)), a->cols / 32);
}

// Prefill: rows per work item, enough work to hide the claim (one atomic add),
// small enough to balance two or more threads.
#define PREFILL_ROW_CHUNK 16
// Decode streams every weight once from memory: long runs of consecutive rows per
// claim keep each thread's reads sequential (256-row claims decode clearly faster
// than 32-row ones: docs/perf-log.md, "Kernel choices"). Claims shrink as the rows
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
    const weight_layout *info[MAX_TARGETS];
    int n_groups = 0, same_act = 1;
    for (int i = 0; i < n_targets; i++) {
        info[i] = weight_layout_of(targets[i].wtype);
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
    act_layout act = info[0]->act;
    const uint8_t *x = (const uint8_t *)src, *xg = 0;
    size_t x_row_bytes = (size_t)cols * 4;
    if (act != ACT_F32) {
        x_row_bytes = act_row_bytes(act, cols);
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
        a->kernel = info[i]->rows;
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
// Scalar reference: same activation quantization (natural layout), scalar dots,
// single thread.

EXPORT int matmul_ref(float *dst, const uint8_t *w, int wtype, int rows, int cols, const float *src, int n_tokens,
                      uint8_t *scratch) {
    const weight_layout *layout = weight_layout_of(wtype);
    int act = reference_act(wtype);
    if (!layout || act < 0) return KERNEL_BAD_TYPE;  // GGUF layouts only
    if (rows <= 0 || cols <= 0 || cols % layout->block_elems || n_tokens <= 0) return KERNEL_BAD_ARGS;
    size_t wrb = (size_t)(cols / layout->block_elems) * layout->block_bytes;
    size_t xrb = act_row_bytes((act_layout)act, cols);
    for (int t = 0; t < n_tokens; t++) {
        const float *xf = src + (size_t)t * cols;
        uint8_t *xq = scratch + (size_t)t * xrb;
        quantize_activation_row((act_layout)act, xf, xq, cols);
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
