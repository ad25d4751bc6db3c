import { describe, expect, it } from 'vitest';
import { DEFAULT_SAMPLING, Sampler, SeededRandom, argmax, topCandidates, type SamplingParams } from '../../src/engine/sampler.ts';

const params = (overrides: Partial<SamplingParams>): SamplingParams => ({ ...DEFAULT_SAMPLING, ...overrides });

/** The textbook definition, written independently: which tokens survive, with what probability. */
function referenceDistribution(logits: number[], p: SamplingParams): Map<number, number> {
  const order = logits.map((_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  let kept = p.topK > 0 ? order.slice(0, p.topK) : order;
  const weights = kept.map((i) => Math.exp((logits[i] - logits[kept[0]]) / p.temperature));
  const z = weights.reduce((a, b) => a + b, 0);
  let n = kept.length;
  if (p.topP < 1) {
    let c = 0;
    for (let i = 0; i < kept.length; i++) {
      c += weights[i] / z;
      if (c >= p.topP) { n = i + 1; break; }
    }
  }
  if (p.minP > 0) n = Math.min(n, weights.filter((w) => w >= weights[0] * p.minP).length);
  kept = kept.slice(0, n);
  const zKept = weights.slice(0, n).reduce((a, b) => a + b, 0);
  return new Map(kept.map((t, i) => [t, weights[i] / zKept]));
}

function randomLogits(n: number, seed: number): Float32Array {
  const r = new SeededRandom(seed);
  return Float32Array.from({ length: n }, () => (r.next() - 0.5) * 8);
}

describe('sampler', () => {
  it('is greedy at temperature 0', () => {
    const logits = randomLogits(1000, 1);
    const s = new Sampler(params({ temperature: 0 }), new SeededRandom(0));
    expect(s.sample(logits.slice())).toBe(argmax(logits));
    expect(argmax(logits)).toBe(Array.from(logits).indexOf(Math.max(...logits)));
  });

  it('topCandidates equals a full sort', () => {
    const logits = randomLogits(5000, 2);
    const sorted = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
    for (const k of [1, 5, 20, 300]) expect(topCandidates(logits, k)).toEqual(sorted.slice(0, k));
  });

  it('draws from the distribution the filters define', () => {
    const logits = Array.from(randomLogits(60, 3));
    for (const p of [
      params({ temperature: 0.7, topK: 20, topP: 0.8, minP: 0 }),
      params({ temperature: 1.3, topK: 0, topP: 1, minP: 0.05 }),
      params({ temperature: 1, topK: 10, topP: 0.5, minP: 0 }),
    ]) {
      const expected = referenceDistribution(logits, p);
      const sampler = new Sampler(p, new SeededRandom(42));
      const counts = new Map<number, number>();
      const draws = 20000;
      for (let i = 0; i < draws; i++) {
        const t = sampler.sample(Float32Array.from(logits));
        counts.set(t, (counts.get(t) ?? 0) + 1);
      }
      for (const t of counts.keys()) expect(expected.has(t), `token ${t} should have been filtered`).toBe(true);
      for (const [t, prob] of expected) {
        const observed = (counts.get(t) ?? 0) / draws;
        // 5 standard deviations of a binomial proportion.
        expect(Math.abs(observed - prob)).toBeLessThan(5 * Math.sqrt((prob * (1 - prob)) / draws) + 1e-9);
      }
    }
  });

  it('gives the same tokens for the same seed and different ones for another seed', () => {
    const run = (seed: number) => {
      const s = new Sampler(params({ temperature: 1, topK: 0, topP: 1 }), new SeededRandom(seed));
      return Array.from({ length: 50 }, (_, i) => s.sample(randomLogits(500, i)));
    };
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
  });

  it('applies presence and repetition penalties to generated tokens only', () => {
    const logits = Float32Array.from([2, 1.9, -1, 0.5]);
    const s = new Sampler(params({ temperature: 0, presencePenalty: 0.5, repetitionPenalty: 2 }), new SeededRandom(0));
    s.accept(0);
    s.accept(2);
    const penalized = logits.slice();
    expect(s.sample(penalized)).toBe(1);
    expect(Array.from(penalized)).toEqual([2 / 2 - 0.5, 1.9, -1 * 2 - 0.5, 0.5].map(Math.fround));
  });
});
