// Our Qwen3 forward pass against llama.cpp (node-llama-cpp 3.21.1) on the same GGUF files:
// a 64-token prompt and 64 greedy steps, per fixture type, on two model shapes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmax } from '../../src/engine/sampler.ts';
import { NodeFileSource } from '../../src/gguf/node-file-source.ts';
import { ModelError } from '../../src/model/errors.ts';
import { Qwen3Model } from '../../src/model/qwen3.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { logSoftmax, openOracle, type Oracle, type TopLogProbs } from '../oracle/llama-oracle.ts';

const PROMPT_TOKENS = 64;
const GREEDY_STEPS = 64;
const TOP_K = 16;

/**
 * Largest |ln p_ours − ln p_llama| allowed over llama.cpp's 16 most likely next tokens.
 *
 * Our kernels do llama.cpp's arithmetic: the same f16 K/V cache, q and attention weights rounded
 * to f16, activations quantized to the same Q8_0 / Q8_K integers and scales before quantized
 * matmuls, f16 activations for f16 weights. What cannot agree is float summation order (~1e-7
 * relative), so once in a while an activation lands on the other side of an int8 rounding
 * boundary here than in llama.cpp. These random-weight models turn one such flip into an error of
 * a few tenths of a nat that persists through the KV cache; the bounds below sit above the largest
 * flip effect measured per type (see the issue notes), while a wrong block layout, scale, RoPE or
 * norm shows up as errors of whole nats. Before any flip, agreement is ~1e-4: FIRST_TOKEN_TOLERANCE
 * checks that on the first prompt position for every type.
 *
 * For the same reason the argmax may differ where llama.cpp's top two are closer than the
 * tolerance (a near-tie); anywhere else it must be identical, and greedy sequences must be
 * identical up to the first such near-tie. The count of near-ties is printed, not bounded: it
 * depends on where this seed's flips happen to land.
 */
const TOLERANCE: Record<string, number> = {
  f32: 0.02,
  f16: 0.05,
  q8_0: 0.5,
  q4_0: 0.5,
  q4_k_m: 0.8,
};
/** The first prompt position, before any rounding flip: only summation order differs. */
const FIRST_TOKEN_TOLERANCE: Record<string, number> = {
  f32: 2e-3,
  f16: 1e-2, // f16 products summed in another order over a few hundred terms
  q8_0: 2e-3,
  q4_0: 2e-3,
  q4_k_m: 2e-3,
};

const FIXTURES = [
  'tiny-f32', 'tiny-f16', 'tiny-q8_0', 'tiny-q4_0',
  'small-f32', 'small-f16', 'small-q8_0', 'small-q4_0', 'small-q4_k_m',
];

const PROMPT_TEXT =
  'The lighthouse keeper wrote in her log every night: wind from the north-east, 14 knots; ' +
  'two ships passed. 灯塔看守人每天晚上都写日志。 function add(a, b) { return a + b; } // 42 ✓ ' +
  'She wondered whether anyone would ever read it, and decided it did not matter.';

/** Worst difference over llama.cpp's top-k tokens at one position. */
function worstError(ours: Float64Array, theirs: TopLogProbs): number {
  let worst = 0;
  theirs.ids.forEach((id, i) => {
    worst = Math.max(worst, Math.abs(ours[id] - theirs.logProbs[i]));
  });
  return worst;
}

/**
 * Our argmax must be llama.cpp's choice `expected`, except where llama.cpp itself rates our
 * choice within the tolerance of its own: a near-tie that rounding may decide either way (llama.cpp
 * can decide one differently between its batched and one-token kernels too). Returns whether this
 * position was such a near-tie decided differently.
 */
function checkArgmax(ours: Float64Array, theirs: TopLogProbs, expected: number, tolerance: number, where: string): boolean {
  const mine = argmax(ours);
  if (mine === expected) return false;
  const logProbOf = (id: number) => {
    const rank = Array.from(theirs.ids).indexOf(id);
    return rank < 0 ? -Infinity : theirs.logProbs[rank];
  };
  const gap = logProbOf(expected) - logProbOf(mine);
  expect(gap, `${where}: our argmax ${mine} vs llama.cpp's ${expected} (llama.cpp gap ${gap})`).toBeLessThan(tolerance);
  return true;
}

describe.each(FIXTURES)('forward pass vs llama.cpp: %s', (name) => {
  const type = name.slice(name.indexOf('-') + 1);
  const tolerance = TOLERANCE[type];
  let oracle: Oracle;
  let model: Qwen3Model;
  let source: NodeFileSource;
  let prompt: number[];
  let nearTies = 0;

  beforeAll(async () => {
    const path = await ensureFixture(name);
    oracle = await openOracle(path, { contextSize: PROMPT_TOKENS + GREEDY_STEPS + 8 });
    source = await NodeFileSource.open(path);
    model = await Qwen3Model.load(source, { contextLength: PROMPT_TOKENS + GREEDY_STEPS + 8, threads: 2, build: 'simd128' });
    prompt = oracle.tokenize(PROMPT_TEXT, false).slice(0, PROMPT_TOKENS);
    expect(prompt.length).toBe(PROMPT_TOKENS);
  });

  afterAll(async () => {
    model?.dispose();
    await source?.close();
    await oracle?.close();
  });

  it('matches llama.cpp logits and argmax at every prompt position', async () => {
    const theirs = await oracle.topLogProbs(prompt, TOP_K);
    const ours = model.forward(prompt, 0, true);
    const vocab = model.config.vocabSize;
    let worst = 0;
    for (let i = 0; i < prompt.length; i++) {
      const row = logSoftmax(ours.subarray(i * vocab, (i + 1) * vocab));
      const error = worstError(row, theirs[i]);
      if (i === 0) expect(error, 'first position').toBeLessThan(FIRST_TOKEN_TOLERANCE[type]);
      worst = Math.max(worst, error);
      if (checkArgmax(row, theirs[i], theirs[i].ids[0], tolerance, `prompt position ${i}`)) nearTies++;
    }
    console.log(`${name}: prompt max |Δ ln p| over top-${TOP_K} = ${worst.toFixed(4)}, near-ties ${nearTies}`);
    expect(worst).toBeLessThan(tolerance);
  });

  it('generates the same greedy tokens as llama.cpp, with matching logits at every step', async () => {
    const theirs = await oracle.greedy(prompt, GREEDY_STEPS, TOP_K);
    // Free-running greedy: must reproduce llama.cpp's sequence unless a near-tie went the other way.
    const ours: number[] = [];
    let logits = model.forward(prompt, 0, false);
    for (let step = 0; step < GREEDY_STEPS; step++) {
      ours.push(argmax(logits));
      if (step + 1 < GREEDY_STEPS) logits = model.decode(ours[step]);
    }
    // Teacher-forced on llama.cpp's tokens, so every step compares the same context.
    let worst = 0;
    logits = model.forward(prompt, 0, false);
    let firstDifference = -1;
    for (let step = 0; step < GREEDY_STEPS; step++) {
      const row = logSoftmax(logits);
      worst = Math.max(worst, worstError(row, theirs.top[step]));
      if (checkArgmax(row, theirs.top[step], theirs.tokens[step], tolerance, `greedy step ${step}`)) {
        nearTies++;
        if (firstDifference < 0) firstDifference = step;
      }
      if (step + 1 < GREEDY_STEPS) logits = model.decode(theirs.tokens[step]);
    }
    console.log(`${name}: greedy max |Δ ln p| over top-${TOP_K} = ${worst.toFixed(4)}; ` +
      `distinct tokens ${new Set(ours).size}; near-ties in all ${nearTies}`);
    const agreeUntil = firstDifference < 0 ? GREEDY_STEPS : firstDifference;
    expect(ours.slice(0, agreeUntil)).toEqual(theirs.tokens.slice(0, agreeUntil));
    if (firstDifference < 0) expect(ours).toEqual(theirs.tokens);
    expect(worst).toBeLessThan(tolerance);
  });
});

describe('model loading errors', () => {
  it('refuses a tensor type the kernels cannot run, naming it', async () => {
    const source = await NodeFileSource.open(await ensureFixture('tiny-bf16'));
    try {
      const error = await Qwen3Model.load(source).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModelError);
      expect((error as ModelError).code).toBe('unsupported-quant');
      expect((error as ModelError).message).toMatch(/BF16/);
    } finally {
      await source.close();
    }
  });

  it('refuses a model that cannot fit in 4 GiB before allocating anything', async () => {
    const source = await NodeFileSource.open(await ensureFixture('tiny-f32'));
    try {
      // KV cache for 2^26 tokens: 2 layers × 2^26 × 2 KV heads × (16 + 16) values × 2 bytes = 16 GiB.
      const error = await Qwen3Model.load(source, { contextLength: 2 ** 26 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModelError);
      expect((error as ModelError).code).toBe('model-too-large');
      expect((error as ModelError).message).toMatch(/KV cache/);
    } finally {
      await source.close();
    }
  });

  it('reports a context overflow instead of writing past the cache', async () => {
    const source = await NodeFileSource.open(await ensureFixture('tiny-f32'));
    const model = await Qwen3Model.load(source, { contextLength: 8, threads: 1 });
    try {
      model.prefill([1, 2, 3, 4, 5, 6]);
      expect(() => model.prefill([7, 8, 9])).toThrow(ModelError);
      expect(model.position).toBe(6);
    } finally {
      model.dispose();
      await source.close();
    }
  });
});
