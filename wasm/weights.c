// Weight layouts: this build's table (build_layouts, in its dot file) looked up by type, row
// sizes, the repacking of matrices at load time into the layouts the kernels read fastest, and
// weight rows back to f32 (get_row: the embedding lookup, tests). Everything about how weights
// lie in memory is here; matmul.c only asks.
#include "kernels.h"

const weight_layout *weight_layout_of(int type) {
    for (const weight_layout *l = build_layouts; l->type >= 0; l++)
        if (l->type == type) return l;
    return 0;
}

int reference_act(int type) {
    switch (type) {
    case GGML_TYPE_F32: return ACT_F32;
    case GGML_TYPE_F16: return ACT_F16;
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q8_0: return ACT_Q8_32;
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q6_K: return ACT_Q8_256;
    default: return -1;
    }
}

// Bytes of one weight row, or a negative status.
EXPORT int row_bytes(int wtype, int cols) {
    const weight_layout *l = weight_layout_of(wtype);
    if (!l) return KERNEL_BAD_TYPE;
    if (cols <= 0 || cols % l->block_elems) return KERNEL_BAD_ARGS;
    return cols / l->block_elems * l->block_bytes;
}

// This build's table, field by field, for the host to check its own copy of the type ids and
// sizes against: 0 type, 1 block_elems, 2 block_bytes, 3 the type repack_weights makes of it
// (itself when it keeps it); -1 past the end.
EXPORT int layout_count(void) {
    int n = 0;
    while (build_layouts[n].type >= 0) n++;
    return n;
}

EXPORT int layout_field(int i, int field) {
    if (i < 0 || i >= layout_count()) return -1;
    const weight_layout *l = &build_layouts[i];
    switch (field) {
    case 0: return l->type;
    case 1: return l->block_elems;
    case 2: return l->block_bytes;
    case 3: return l->packed_type ? l->packed_type : l->type;
    default: return -1;
    }
}

// ---------------------------------------------------------------------------
// Repacked layouts (quants.h): Q4_0 <-> Q4_0x4, Q4_K <-> Q4_Kx, Q6_K <-> Q6_Kx

// In place: the four blocks are all loaded before the first store.
static void pack_q4_0x4(uint8_t *group) {
    const block_q4_0 *src = (const block_q4_0 *)group;
    uint16_t d[4];
    v128_t q[4];
    for (int k = 0; k < 4; k++) d[k] = src[k].d;
    transpose_words(wasm_v128_load(src[0].qs), wasm_v128_load(src[1].qs), wasm_v128_load(src[2].qs), wasm_v128_load(src[3].qs), q);
    block_q4_0x4 *dst = (block_q4_0x4 *)group;
    for (int k = 0; k < 4; k++) dst->d[k] = d[k];
    for (int m = 0; m < 4; m++) wasm_v128_store(dst->qs[m], q[m]);
}

static void unpack_q4_0x4(const block_q4_0x4 *src, block_q4_0 dst[4]) {
    deinterleave_runs(&src->qs[0][0], dst[0].qs, sizeof(block_q4_0), 1);
    for (int k = 0; k < 4; k++) dst[k].d = src->d[k];
}

// interleave_runs(b->qs, 32, 2, b->qs) in place: all 8 vectors loaded before the first store.
static void pack_q4_Kx(block_q4_K *b) {
    v128_t v[8], q[8];
    for (int j = 0; j < 8; j++) v[j] = wasm_v128_load(b->qs + 16 * j);
    for (int i = 0; i < 2; i++) transpose_words(v[i], v[2 + i], v[4 + i], v[6 + i], q + 4 * i);
    for (int j = 0; j < 8; j++) wasm_v128_store(b->qs + 16 * j, q[j]);
}

static void unpack_q4_Kx(const block_q4_Kx *src, block_q4_K *dst) {
    memcpy(dst, src, 16);  // d, dmin, scales
    deinterleave_runs(&src->qs[0][0], dst->qs, 32, 2);
}

// Q6_K <-> Q6_Kx (quants.h): quant k of vector m is natural quant Q6_KX_INDEX(m, k).
#define Q6_KX_INDEX(m, k) (16 * (4 * ((m) / 4) + (k) / 4) + 4 * ((m) % 4) + (k) % 4)

// The 256 quants (0..63) of a Q6_K block, in natural order.
static void q6_K_quants(const block_q6_K *b, uint8_t q[QK_K]) {
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        uint8_t *o = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            o[l] = (uint8_t)((ql[l] & 15) | (qh[l] & 3) << 4);
            o[l + 32] = (uint8_t)((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4);
            o[l + 64] = (uint8_t)((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4);
            o[l + 96] = (uint8_t)((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4);
        }
    }
}

// The same from a Q6_Kx block.
static void q6_Kx_quants(const block_q6_Kx *b, uint8_t q[QK_K]) {
    for (int m = 0; m < 16; m++) {
        for (int k = 0; k < 16; k++) {
            uint8_t low = m % 2 == 0 ? b->ql[m / 2][k] & 15 : b->ql[m / 2][k] >> 4;
            uint8_t high = (uint8_t)((b->qh[m / 4][k] >> (2 * (m % 4))) & 3);
            q[Q6_KX_INDEX(m, k)] = (uint8_t)(low | high << 4);
        }
    }
}

// In vectors, in place (all 12 loaded before the first store). Byte shifts are u16 shifts whose
// bits crossing into the next byte are masked off (or, shifting left, cannot occur: values <= 15).
static void pack_q6_Kx(block_q6_K *block) {
    const v128_t m4 = wasm_i8x16_splat(15), m2 = wasm_i8x16_splat(3);
    // The natural quants (quants.h, Q6_K): N[8h + 2j + s] holds q[128h + 32j + 16s .. +15].
    v128_t N[16];
    for (int h = 0; h < 2; h++) {
        for (int s = 0; s < 2; s++) {
            v128_t ql0 = wasm_v128_load(block->ql + 64 * h + 16 * s);
            v128_t ql1 = wasm_v128_load(block->ql + 64 * h + 32 + 16 * s);
            v128_t qh = wasm_v128_load(block->qh + 32 * h + 16 * s);
            v128_t hi[4];
            for (int j = 0; j < 4; j++) hi[j] = wasm_i16x8_shl(wasm_v128_and(wasm_u16x8_shr(qh, 2 * j), m2), 4);
            N[8 * h + s] = wasm_v128_or(wasm_v128_and(ql0, m4), hi[0]);
            N[8 * h + 2 + s] = wasm_v128_or(wasm_v128_and(ql1, m4), hi[1]);
            N[8 * h + 4 + s] = wasm_v128_or(wasm_v128_and(wasm_u16x8_shr(ql0, 4), m4), hi[2]);
            N[8 * h + 6 + s] = wasm_v128_or(wasm_v128_and(wasm_u16x8_shr(ql1, 4), m4), hi[3]);
        }
    }
    // Q[4c + r][k] = natural quant Q6_KX_INDEX(4c + r, k) = byte 4r + k % 4 of N[4c + k / 4].
    v128_t Q[16];
    for (int c = 0; c < 4; c++) transpose_words(N[4 * c], N[4 * c + 1], N[4 * c + 2], N[4 * c + 3], Q + 4 * c);
    block_q6_Kx *x = (block_q6_Kx *)block;  // scales and d stay where they are
    for (int i = 0; i < 8; i++)
        wasm_v128_store(x->ql[i], wasm_v128_or(wasm_v128_and(Q[2 * i], m4), wasm_i16x8_shl(wasm_v128_and(Q[2 * i + 1], m4), 4)));
    for (int c = 0; c < 4; c++) {
        v128_t h = wasm_v128_and(wasm_u16x8_shr(Q[4 * c], 4), m2);
        for (int r = 1; r < 4; r++) h = wasm_v128_or(h, wasm_i16x8_shl(wasm_v128_and(wasm_u16x8_shr(Q[4 * c + r], 4), m2), 2 * r));
        wasm_v128_store(x->qh[c], h);
    }
}

// ---------------------------------------------------------------------------
// Repacking at load time

typedef struct {
    uint8_t *w;
    size_t row_bytes;
    int rows, packed;
    int non_finite;  // a Q4_0 scale is inf or NaN (set by check_item)
} repack_args;

#define REPACK_ROW_CHUNK 64

// The end of item `item`'s rows (it starts at item * REPACK_ROW_CHUNK).
static int item_rows_end(const repack_args *a, int item) {
    int end = (item + 1) * REPACK_ROW_CHUNK;
    return end < a->rows ? end : a->rows;
}

static void repack_item(const void *vargs, int item, int thread_index) {
    (void)thread_index;
    const repack_args *a = (const repack_args *)vargs;
    int r_end = item_rows_end(a, item);
    for (int r = item * REPACK_ROW_CHUNK; r < r_end; r++) {
        uint8_t *row = a->w + (size_t)r * a->row_bytes;
        switch (a->packed) {
        case KERNEL_TYPE_Q4_KX:
            for (size_t b = 0; b < a->row_bytes / sizeof(block_q4_K); b++) pack_q4_Kx((block_q4_K *)row + b);
            break;
        case KERNEL_TYPE_Q6_KX:
            for (size_t b = 0; b < a->row_bytes / sizeof(block_q6_K); b++) pack_q6_Kx((block_q6_K *)row + b);
            break;
        case KERNEL_TYPE_Q4_0X4:
            for (size_t g = 0; g < a->row_bytes / sizeof(block_q4_0x4); g++) pack_q4_0x4(row + g * sizeof(block_q4_0x4));
            break;
        }
    }
}

// Q4_0x4's precondition over an item's rows: every scale finite.
static void check_item(const void *vargs, int item, int thread_index) {
    (void)thread_index;
    repack_args *a = (repack_args *)vargs;
    int r_end = item_rows_end(a, item);
    const block_q4_0 *b = (const block_q4_0 *)(a->w + (size_t)item * REPACK_ROW_CHUNK * a->row_bytes);
    size_t n_blocks = (size_t)(r_end - item * REPACK_ROW_CHUNK) * (a->row_bytes / sizeof(block_q4_0));
    int bad = 0;
    for (size_t i = 0; i < n_blocks; i++) bad |= (b[i].d & 0x7c00) == 0x7c00;
    if (bad) __atomic_store_n(&a->non_finite, 1, __ATOMIC_RELAXED);
}

// Rewrites a weight matrix in place into the layout this build's kernels read fastest (the
// table's packed_type), and returns the type to pass to matmul from then on (wtype itself when
// the layout stays). Q4_0x4 takes rows of whole groups of 4 blocks with every scale finite
// (its kernels convert scales 4 at a time, finite values only).
EXPORT int repack_weights(uint8_t *w, int wtype, int rows, int cols) {
    int rb = row_bytes(wtype, cols);
    if (rb < 0) return rb;
    if (rows <= 0) return KERNEL_BAD_ARGS;
    int packed = weight_layout_of(wtype)->packed_type;
    if (!packed) return wtype;
    const weight_layout *target = weight_layout_of(packed);
    if (!target || cols % target->block_elems) return wtype;
    repack_args args = { w, (size_t)rb, rows, packed, 0 };
    int items = (rows + REPACK_ROW_CHUNK - 1) / REPACK_ROW_CHUNK;
    if (packed == KERNEL_TYPE_Q4_0X4) {
        pool_run(check_item, &args, items);
        if (args.non_finite) return wtype;
    }
    pool_run(repack_item, &args, items);
    return packed;
}

// ---------------------------------------------------------------------------
// Weight rows -> f32 (embedding lookup, tests)

static void dequantize_row_q4_0(const block_q4_0 *w, float *y, int n) {
    for (int b = 0; b < n / QK4_0; b++, y += QK4_0) {
        float d = fp16_to_fp32(w[b].d);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)((w[b].qs[j] & 15) - 8);
            y[j + 16] = d * (float)((w[b].qs[j] >> 4) - 8);
        }
    }
}

static void dequantize_row_q8_0(const block_q8_0 *w, float *y, int n) {
    for (int b = 0; b < n / QK8_0; b++, y += QK8_0) {
        float d = fp16_to_fp32(w[b].d);
        for (int j = 0; j < 32; j++) y[j] = d * (float)w[b].qs[j];
    }
}

static void dequantize_row_q4_K(const block_q4_K *w, float *y, int n) {
    for (int b = 0; b < n / QK_K; b++) {
        float d = fp16_to_fp32(w[b].d), dmin = fp16_to_fp32(w[b].dmin);
        uint8_t sc[8], m[8];
        unpack_q4_K_scales(w[b].scales, sc, m);
        for (int c = 0; c < 4; c++) {
            const uint8_t *q = w[b].qs + 32 * c;
            float d_lo = d * sc[2 * c], m_lo = dmin * m[2 * c];
            float d_hi = d * sc[2 * c + 1], m_hi = dmin * m[2 * c + 1];
            for (int l = 0; l < 32; l++) {
                y[l] = d_lo * (float)(q[l] & 15) - m_lo;
                y[l + 32] = d_hi * (float)(q[l] >> 4) - m_hi;
            }
            y += 64;
        }
    }
}

// 256 quants (natural order), scales and d -> 256 weights.
static void dequantize_q6_K_quants(const uint8_t q[QK_K], const int8_t scales[16], uint16_t d16, float *y) {
    float d = fp16_to_fp32(d16);
    for (int i = 0; i < QK_K; i++) y[i] = d * (float)scales[i / 16] * (float)(q[i] - 32);
}

static void dequantize_row_q6_K(const block_q6_K *w, float *y, int n) {
    for (int b = 0; b < n / QK_K; b++) {
        uint8_t q[QK_K];
        q6_K_quants(w + b, q);
        dequantize_q6_K_quants(q, w[b].scales, w[b].d, y + QK_K * b);
    }
}

// dst[0 .. cols) = row `row` of weight matrix w (GGUF layout: rows contiguous).
EXPORT int get_row(float *dst, const uint8_t *w, int wtype, int cols, int row) {
    int rb = row_bytes(wtype, cols);
    if (rb <= 0 || row < 0) return rb < 0 ? rb : KERNEL_BAD_ARGS;
    const uint8_t *src = w + (size_t)row * (size_t)rb;
    switch (wtype) {
    case GGML_TYPE_F32: memcpy(dst, src, (size_t)cols * 4); break;
    case GGML_TYPE_F16:
        for (int i = 0; i < cols; i++) dst[i] = fp16_to_fp32(((const uint16_t *)src)[i]);
        break;
    case GGML_TYPE_Q4_0: dequantize_row_q4_0((const block_q4_0 *)src, dst, cols); break;
    case KERNEL_TYPE_Q4_KX:
        for (int b = 0; b < cols / QK_K; b++) {
            block_q4_K block;
            unpack_q4_Kx((const block_q4_Kx *)src + b, &block);
            dequantize_row_q4_K(&block, dst + QK_K * b, QK_K);
        }
        break;
    case KERNEL_TYPE_Q4_0X4:
        for (int g = 0; g < cols / 128; g++) {
            block_q4_0 blocks[4];
            unpack_q4_0x4((const block_q4_0x4 *)src + g, blocks);
            dequantize_row_q4_0(blocks, dst + 128 * g, 128);
        }
        break;
    case GGML_TYPE_Q8_0: dequantize_row_q8_0((const block_q8_0 *)src, dst, cols); break;
    case GGML_TYPE_Q4_K: dequantize_row_q4_K((const block_q4_K *)src, dst, cols); break;
    case GGML_TYPE_Q6_K: dequantize_row_q6_K((const block_q6_K *)src, dst, cols); break;
    case KERNEL_TYPE_Q6_KX:
        for (int b = 0; b < cols / QK_K; b++) {
            const block_q6_Kx *block = (const block_q6_Kx *)src + b;
            uint8_t q[QK_K];
            q6_Kx_quants(block, q);
            dequantize_q6_K_quants(q, block->scales, block->d, dst + QK_K * b);
        }
        break;
    default: return KERNEL_BAD_TYPE;
    }
    return KERNEL_OK;
}
