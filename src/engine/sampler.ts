// Turns logits into the next token: penalties → top-k → temperature softmax → top-p → min-p → draw.
// The order follows llama.cpp's default sampler chain so settings mean what users expect.

export interface SamplingParams {
  /** 0 (or below) means greedy: always the most likely token. */
  temperature: number;
  /** Keep the k most likely tokens; 0 disables. */
  topK: number;
  /** Keep the smallest set whose probability reaches p; 1 disables. */
  topP: number;
  /** Drop tokens less likely than minP × the most likely one; 0 disables. */
  minP: number;
  /** Subtracted from the logit of every token already generated (OpenAI semantics). */
  presencePenalty: number;
  /** Subtracted from a token's logit once per time it was generated (OpenAI semantics). */
  frequencyPenalty: number;
  /** Divides positive / multiplies negative logits of tokens already seen (CTRL semantics); 1 disables. */
  repetitionPenalty: number;
}

/** Qwen3-4B-Instruct-2507's recommended settings. */
export const DEFAULT_SAMPLING: SamplingParams = {
  temperature: 0.7,
  topK: 20,
  topP: 0.8,
  minP: 0,
  presencePenalty: 0,
  frequencyPenalty: 0,
  repetitionPenalty: 1,
};

/** xoshiro128**: small, fast, and the same sequence for the same seed on every platform. */
export class SeededRandom {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    // splitmix32 spreads any seed (even 0) over the 128-bit state.
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  /** Uniform in [0, 1). */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result / 4294967296;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > bestValue) {
      bestValue = logits[i];
      best = i;
    }
  }
  return best;
}

export class Sampler {
  private readonly counts = new Map<number, number>();

  constructor(
    readonly params: SamplingParams,
    private readonly random: SeededRandom,
  ) {}

  /** Tokens that penalties apply to (the generated answer so far). */
  accept(token: number): void {
    this.counts.set(token, (this.counts.get(token) ?? 0) + 1);
  }

  /** Picks the next token. `logits` is modified in place by the penalties. */
  sample(logits: Float32Array): number {
    const p = this.params;
    for (const [token, count] of this.counts) {
      let logit = logits[token];
      if (p.repetitionPenalty !== 1) logit = logit > 0 ? logit / p.repetitionPenalty : logit * p.repetitionPenalty;
      logit -= p.presencePenalty + count * p.frequencyPenalty;
      logits[token] = logit;
    }
    if (p.temperature <= 0) return argmax(logits);

    const candidates = topCandidates(logits, p.topK > 0 ? p.topK : logits.length);
    // Softmax with temperature over the surviving candidates, highest first.
    const maxLogit = logits[candidates[0]];
    const probs = new Float64Array(candidates.length);
    let sum = 0;
    for (let i = 0; i < candidates.length; i++) {
      probs[i] = Math.exp((logits[candidates[i]] - maxLogit) / p.temperature);
      sum += probs[i];
    }
    let kept = candidates.length;
    if (p.topP < 1) {
      let cumulative = 0;
      for (let i = 0; i < candidates.length; i++) {
        cumulative += probs[i] / sum;
        if (cumulative >= p.topP) {
          kept = i + 1;
          break;
        }
      }
    }
    if (p.minP > 0) {
      const floor = probs[0] * p.minP;
      let i = 1;
      while (i < kept && probs[i] >= floor) i++;
      kept = i;
    }
    let total = 0;
    for (let i = 0; i < kept; i++) total += probs[i];
    let r = this.random.next() * total;
    for (let i = 0; i < kept; i++) {
      r -= probs[i];
      if (r < 0) return candidates[i];
    }
    return candidates[kept - 1];
  }
}

/**
 * Indices of the k largest logits, largest first (ties: lower id first). Finite logits only.
 * A bounded insertion pass keeps this O(n·k) for the small k samplers use, without sorting 150k entries.
 */
export function topCandidates(logits: Float32Array, k: number): number[] {
  if (k >= 256) {
    const all: number[] = [];
    for (let i = 0; i < logits.length; i++) if (logits[i] > -Infinity) all.push(i);
    all.sort((a, b) => logits[b] - logits[a] || a - b);
    return all.slice(0, k);
  }
  const top: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (!(v > -Infinity)) continue;
    if (top.length === k && v <= logits[top[k - 1]]) continue;
    let j = top.length === k ? k - 1 : top.length;
    while (j > 0 && logits[top[j - 1]] < v) {
      top[j] = top[j - 1];
      j--;
    }
    top[j] = i;
  }
  return top;
}
