// The oracle for the f16-cache attention kernel: causal softmax attention in f64 over the K/V
// values as the cache stores them, with q and the softmax probabilities rounded to f16 first, as
// llama.cpp's CPU attention (without flash attention) multiplies f16 operands. Shared by the
// Node kernel tests (SIMD128 build) and the browser ones (relaxed build, whose fused
// multiply-adds round differently).
import { f16BitsToF32, f32ToF16Bits } from '../fixtures/quantize.ts';

const EPS32 = 2 ** -24;  // unit roundoff of float32

export interface AttentionShape {
  nTokens: number;
  startPos: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

/**
 * The first output of `got` ([token][head][dim]) further from the reference than rounding allows,
 * described; undefined when every one is within. q: the queries as passed; kh, vh: the cache's
 * values ([position][kvHead][dim]) for positions 0 .. startPos + nTokens - 1.
 */
export function attentionMismatch(got: Float32Array, qRaw: Float32Array, kh: Float64Array, vh: Float64Array,
                                  c: AttentionShape): string | undefined {
  const toF16 = (x: number) => f16BitsToF32(f32ToF16Bits(x));
  const q = qRaw.map(toF16);
  const kvDim = c.nKvHeads * c.headDim;
  const group = c.nHeads / c.nKvHeads;
  const scale = 1 / Math.sqrt(c.headDim);
  for (let t = 0; t < c.nTokens; t++) {
    const nPos = c.startPos + t + 1;  // causal: positions 0 .. startPos + t
    for (let h = 0; h < c.nHeads; h++) {
      const kvh = Math.floor(h / group);
      const qo = (t * c.nHeads + h) * c.headDim;
      const scores: number[] = [];
      let scoreSize = 0;
      for (let p = 0; p < nPos; p++) {
        let s = 0, size = 0;
        for (let d = 0; d < c.headDim; d++) {
          const prod = q[qo + d]! * kh[p * kvDim + kvh * c.headDim + d]!;
          s += prod;
          size += Math.abs(prod);
        }
        scores.push(s * scale);
        scoreSize = Math.max(scoreSize, size * scale);
      }
      const mx = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - mx));
      const sum = e.reduce((a, b) => a + b, 0);
      let vmax = 0;
      for (let p = 0; p < nPos; p++) for (let d = 0; d < c.headDim; d++) vmax = Math.max(vmax, Math.abs(vh[p * kvDim + kvh * c.headDim + d]!));
      // A score off by delta changes its weight by a factor e^delta ~ 1 + delta; a score sums its
      // headDim products (exact: f16 times f16) in some order, at most headDim roundings of their
      // total magnitude, and the scale one more; softmax and the weighted sum a few more relative
      // to max|v|. The f16 rounding of a probability may land one f16 step (2^-10 relative, or
      // 2^-24 for subnormals) away from the f64 reference's when the f32 value sits near a tie.
      const scoreError = (c.headDim + 2) * EPS32 * scoreSize;
      const roundingFlip = 2 ** -10 + nPos * 2 ** -24;
      const allowed = (2 * scoreError + (nPos + 10) * EPS32 + roundingFlip) * vmax;
      const prob = e.map((x) => toF16(x / sum));
      for (let d = 0; d < c.headDim; d++) {
        let want = 0;
        for (let p = 0; p < nPos; p++) want += prob[p]! * vh[p * kvDim + kvh * c.headDim + d]!;
        const g = got[qo + d]!;
        if (!(Math.abs(g - want) <= allowed)) return `token ${t} head ${h} dim ${d}: got ${g}, want ${want} (allowed ${allowed})`;
      }
    }
  }
  return undefined;
}
