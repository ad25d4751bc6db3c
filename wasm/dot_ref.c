// Scalar reference dot products: one weight row against one activation row.
// Plain C, no SIMD, written straight from the block formats in quants.h; the
// SIMD kernels are tested against these.
#include "kernels.h"

float dot_f32_ref(const float *w, const float *x, int n) {
    float sum = 0.0f;
    for (int i = 0; i < n; i++) sum += w[i] * x[i];
    return sum;
}

float dot_f16_ref(const uint16_t *w, const float *x, int n) {
    float sum = 0.0f;
    for (int i = 0; i < n; i++) sum += fp16_to_fp32(w[i]) * x[i];
    return sum;
}

// sum_b d_w * d_x * (sum_j nibble_j * q_j - 8 * sum_j q_j)
float dot_q4_0_ref(const block_q4_0 *w, const block_q8_32 *x, int n_blocks) {
    float sum = 0.0f;
    for (int b = 0; b < n_blocks; b++) {
        int32_t isum = 0;
        for (int j = 0; j < 16; j++) {
            isum += (w[b].qs[j] & 15) * x[b].qs[j];
            isum += (w[b].qs[j] >> 4) * x[b].qs[j + 16];
        }
        isum -= 8 * x[b].sum;
        sum += fp16_to_fp32(w[b].d) * x[b].d * (float)isum;
    }
    return sum;
}

float dot_q8_0_ref(const block_q8_0 *w, const block_q8_32 *x, int n_blocks) {
    float sum = 0.0f;
    for (int b = 0; b < n_blocks; b++) {
        int32_t isum = 0;
        for (int j = 0; j < 32; j++) isum += w[b].qs[j] * x[b].qs[j];
        sum += fp16_to_fp32(w[b].d) * x[b].d * (float)isum;
    }
    return sum;
}

// sum over super-blocks of d*d_x * sum_j sc_j * (q . x)_j  -  dmin*d_x * sum_j m_j * (sum x)_j
float dot_q4_K_ref(const block_q4_K *w, const block_q8_256 *x, int n_blocks) {
    float sum = 0.0f;
    for (int b = 0; b < n_blocks; b++) {
        uint8_t sc[8], m[8];
        unpack_q4_K_scales(w[b].scales, sc, m);
        int32_t isum = 0, msum = 0;
        for (int c = 0; c < 4; c++) {
            const uint8_t *q = w[b].qs + 32 * c;
            const int8_t *a = x[b].qs + 64 * c;
            int32_t lo = 0, hi = 0;
            for (int l = 0; l < 32; l++) {
                lo += (q[l] & 15) * a[l];
                hi += (q[l] >> 4) * a[l + 32];
            }
            isum += sc[2 * c] * lo + sc[2 * c + 1] * hi;
        }
        for (int j = 0; j < 8; j++) msum += m[j] * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
        sum += fp16_to_fp32(w[b].d) * x[b].d * (float)isum - fp16_to_fp32(w[b].dmin) * x[b].d * (float)msum;
    }
    return sum;
}

// sum over super-blocks of d*d_x * sum_k scales_k * ((q . x)_k - 32 * (sum x)_k)
float dot_q6_K_ref(const block_q6_K *w, const block_q8_256 *x, int n_blocks) {
    float sum = 0.0f;
    for (int b = 0; b < n_blocks; b++) {
        int8_t q[QK_K];
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = w[b].ql + 64 * h, *qh = w[b].qh + 32 * h;
            int8_t *o = q + 128 * h;
            for (int l = 0; l < 32; l++) {
                o[l] = (int8_t)((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4);
                o[l + 32] = (int8_t)((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4);
                o[l + 64] = (int8_t)((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4);
                o[l + 96] = (int8_t)((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4);
            }
        }
        int32_t isum = 0;
        for (int k = 0; k < 16; k++) {
            int32_t s = 0;
            for (int i = 0; i < 16; i++) s += q[16 * k + i] * x[b].qs[16 * k + i];
            isum += w[b].scales[k] * (s - 32 * x[b].bsums[k]);
        }
        sum += fp16_to_fp32(w[b].d) * x[b].d * (float)isum;
    }
    return sum;
}
