// Context sizing (default, the most that fits, the too-large error) and long contexts: logits at
// positions past 4,096 against llama.cpp's on the same file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmax } from '../../src/engine/sampler.ts';
import { tensorBytes } from '../../src/gguf/ggml-types.ts';
import { readTokenizerData, type ModelConfig } from '../../src/gguf/metadata.ts';
import { NodeFileSource } from '../../src/gguf/node-file-source.ts';
import { readGGUF } from '../../src/gguf/reader.ts';
import { ModelError } from '../../src/model/errors.ts';
import { MAX_MEMORY64_BYTES, MAX_MEMORY_BYTES } from '../../src/model/kernels.ts';
import { DEFAULT_CONTEXT_LENGTH, Qwen3Model, planMemory } from '../../src/model/qwen3.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { SHAPES, tensorPlan, type FixtureType, type ShapeSpec } from '../fixtures/models.ts';
import { logSoftmax, openOracle, type Oracle } from '../oracle/llama-oracle.ts';

const configOf = (shape: ShapeSpec): ModelConfig => ({
  architecture: 'qwen3',
  nLayers: shape.nLayers, hiddenSize: shape.hidden, ffnSize: shape.ffn, nHeads: shape.nHeads, nKvHeads: shape.nKvHeads,
  headDim: shape.headDim, valueDim: shape.headDim, ropeTheta: shape.ropeTheta, rmsEps: shape.rmsEps,
  contextLength: shape.contextLength, vocabSize: shape.vocab, tiedEmbeddings: shape.tied,
});
/** The bytes a fixture's tensors take in memory (each placed at a 64-byte boundary, as load does). */
const weightBytesOf = (shape: ShapeSpec, type: FixtureType | 'q8_0') =>
  tensorPlan(shape, type as FixtureType).reduce((sum, t) => sum + Math.ceil(tensorBytes(t.type, t.dims) / 64) * 64, 0);
const tooLarge = (run: () => unknown): ModelError => {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ModelError);
    expect((error as ModelError).code).toBe('model-too-large');
    return error as ModelError;
  }
  throw new Error('expected model-too-large');
};

describe('context sizing', () => {
  const fourB = SHAPES['qwen3-4b'];
  const config = configOf(fourB);

  it('gives the 4B model 8,192 tokens by default, and names the most that fits beyond', () => {
    for (const type of ['q4_0', 'q4_k_m'] as const) {
      const weights = weightBytesOf(fourB, type);
      const plan = planMemory(config, weights, { maxBatch: 64 });
      expect(plan.contextLength).toBe(DEFAULT_CONTEXT_LENGTH);
      expect(plan.neededBytes).toBeLessThanOrEqual(MAX_MEMORY_BYTES);
      // The most that fits is the edge: it fits, and one step more does not.
      const max = plan.maxContextLength;
      expect(max).toBeGreaterThan(DEFAULT_CONTEXT_LENGTH);
      expect(max).toBeLessThan(fourB.contextLength);
      expect(planMemory(config, weights, { maxBatch: 64, contextLength: max }).neededBytes).toBeLessThanOrEqual(MAX_MEMORY_BYTES);
      const error = tooLarge(() => planMemory(config, weights, { maxBatch: 64, contextLength: max + 256 }));
      expect(error.message).toContain(`At most ${max.toLocaleString('en-US')} tokens of context fit`);
      // 32K with an f16 cache does not fit a wasm32 memory beside 4B weights.
      tooLarge(() => planMemory(config, weights, { maxBatch: 64, contextLength: 32768 }));
    }
  });

  it('holds 16K tokens of the 4B model with a q8_0 cache, about twice what fits with f16', () => {
    for (const type of ['q4_0', 'q4_k_m'] as const) {
      const weights = weightBytesOf(fourB, type);
      const f16 = planMemory(config, weights, { maxBatch: 64 });
      const q8 = planMemory(config, weights, { maxBatch: 64, kvCache: 'q8_0' });
      expect(q8.contextLength).toBe(DEFAULT_CONTEXT_LENGTH);
      expect(q8.maxContextLength).toBeGreaterThanOrEqual(16384);
      // 34 bytes per 32 values against 64: the room left after the weights holds 64/34 times the tokens.
      expect(q8.maxContextLength / f16.maxContextLength).toBeGreaterThan(1.8);
      expect(planMemory(config, weights, { maxBatch: 64, kvCache: 'q8_0', contextLength: 16384 }).neededBytes).toBeLessThanOrEqual(MAX_MEMORY_BYTES);
    }
  });

  it('plans memory64 only where a context needs more than 4 GiB and the host has it; says so where it has not', () => {
    for (const type of ['q4_0', 'q4_k_m', 'q8_0'] as const) {
      const weights = weightBytesOf(fourB, type);
      // 32K with an f16 cache (4.5 GiB of cache), and even the Q8_0 file (4.3 GB of weights)
      for (const contextLength of [32768, 8192]) {
        const plan = planMemory(config, weights, { maxBatch: 64, contextLength, memory64: true });
        const over = plan.neededBytes > MAX_MEMORY_BYTES;
        expect(plan.addressing, `${type} at ${contextLength}`).toBe(over ? 'memory64' : 'wasm32');
        expect(plan.neededBytes).toBeLessThanOrEqual(MAX_MEMORY64_BYTES);
        if (over) {
          const error = tooLarge(() => planMemory(config, weights, { maxBatch: 64, contextLength }));
          expect(error.message).toContain('no WebAssembly memory64 here');
        }
      }
      expect(planMemory(config, weights, { maxBatch: 64, contextLength: 32768, memory64: true }).addressing).toBe('memory64');
      // The default stays the 8K that wasm32 holds (Q8_0 excepted: its weights alone need memory64).
      const byDefault = planMemory(config, weights, { maxBatch: 64, memory64: true });
      expect(byDefault.contextLength).toBe(DEFAULT_CONTEXT_LENGTH);
      expect(byDefault.addressing).toBe(type === 'q8_0' ? 'memory64' : 'wasm32');
      // In 16 GiB the whole trained context (40,960) fits; 128K tokens of f16 cache do not.
      expect(byDefault.maxContextLength).toBe(fourB.contextLength);
      const error = tooLarge(() => planMemory(config, weights, { maxBatch: 64, contextLength: 131072, memory64: true }));
      expect(error.message).toContain('all a memory64 memory can hold');
      // Forced either way: wasm32 keeps its 4 GiB even where memory64 runs; memory64 is used even where wasm32 would do.
      expect(planMemory(config, weights, { maxBatch: 64, contextLength: 1024, memory64: true, addressing: 'memory64' }).addressing).toBe('memory64');
      if (type !== 'q8_0') tooLarge(() => planMemory(config, weights, { maxBatch: 64, contextLength: 32768, memory64: true, addressing: 'wasm32' }));
    }
  });

  it('refuses a q8_0 cache for heads that are not whole blocks of 32', async () => {
    const source = await NodeFileSource.open(await ensureFixture('tiny-f32')); // heads of 16 values
    try {
      const error = await Qwen3Model.load(source, { threads: 1, kvCache: 'q8_0' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModelError);
      expect((error as ModelError).message).toMatch(/q8_0 KV cache .* 16: load it with the f16 cache/);
    } finally {
      await source.close();
    }
  });

  it('refuses weights that leave no room for a context at all', () => {
    // Qwen3-4B in Q8_0 is ~4.3 GB: more than a wasm32 memory before any KV cache.
    const error = tooLarge(() => planMemory(config, weightBytesOf(fourB, 'q8_0'), { maxBatch: 64 }));
    expect(error.message).toMatch(/Not even a short context fits/);
  });

  it('defaults to less where memory holds less, and never past the trained context', () => {
    const weights = weightBytesOf(fourB, 'q4_k_m');
    const roomy = planMemory(config, weights, { maxBatch: 64 });
    const kvPerToken = config.nLayers * config.nKvHeads * (config.headDim + config.valueDim) * 2;
    // A device that lends 1 GiB less: the default shrinks to what fits, in steps of 256.
    const tight = planMemory(config, weights, { maxBatch: 64, memoryLimitBytes: roomy.neededBytes - 2 ** 30 + kvPerToken * 1000 });
    expect(tight.contextLength).toBeLessThan(DEFAULT_CONTEXT_LENGTH);
    expect(tight.contextLength % 256).toBe(0);
    expect(tight.contextLength).toBe(tight.maxContextLength);
    const tiny = configOf(SHAPES.tiny);
    expect(planMemory(tiny, 1 << 20, { maxBatch: 64 })).toMatchObject({ contextLength: 4096, maxContextLength: 4096 });
    // Asked for explicitly, a longer context than trained is allowed (llama.cpp allows it too).
    expect(planMemory(tiny, 1 << 20, { maxBatch: 64, contextLength: 6144 }).contextLength).toBe(6144);
  });

  it('loads with the planned context and reports the most it could take', async () => {
    const source = await NodeFileSource.open(await ensureFixture('tiny-f32'));
    try {
      const model = await Qwen3Model.load(source, { threads: 1 });
      expect(model.contextLength).toBe(4096);
      expect(model.maxContextLength).toBe(4096);
      model.dispose();
      // Memory for ~1,000 tokens of cache beyond the weights: the default follows.
      const limit = model.memoryBytes - 3000 * (2 * 2 * 2 * 16 * 2);
      const small = await Qwen3Model.load(source, { threads: 1, memoryLimitBytes: limit });
      expect(small.contextLength).toBe(small.maxContextLength);
      expect(small.contextLength).toBeGreaterThanOrEqual(512);
      expect(small.contextLength).toBeLessThan(4096);
      expect(small.memoryBytes).toBeLessThanOrEqual(limit);
      small.dispose();
      const error = await Qwen3Model.load(source, { threads: 1, memoryLimitBytes: limit, contextLength: 4096 }).catch((e: unknown) => e);
      expect((error as ModelError).code).toBe('model-too-large');
      expect((error as ModelError).message).toContain(`At most ${small.contextLength.toLocaleString('en-US')} tokens`);
    } finally {
      await source.close();
    }
  });
});

describe('long context vs llama.cpp', () => {
  const CONTEXT = 6144;
  /** Positions (0-based) whose next-token distributions are compared, past 4,096. */
  const POSITIONS = [4095, 4500, 5200, 6000];
  const TOP_K = 16;
  let path: string;
  let oracle: Oracle;
  let tokens: number[];

  beforeAll(async () => {
    path = await ensureFixture('tiny-f32');
    oracle = await openOracle(path, { contextSize: CONTEXT, threads: 2 });
    const source = await NodeFileSource.open(path);
    const gguf = await readGGUF(source);
    await source.close();
    // Text of every kind, repeated past the positions compared.
    const tokenizer = Tokenizer.fromData(readTokenizerData(gguf));
    const text = 'The keeper logged wind, ships and weather. 灯塔看守人写日志。 for (let i = 0; i < n; i++) sum += a[i]; ';
    tokens = [];
    for (let i = 0; tokens.length <= POSITIONS[POSITIONS.length - 1]!; i++) tokens.push(...tokenizer.encode(`${i}: ${text}`));
    tokens = tokens.slice(0, POSITIONS[POSITIONS.length - 1]! + 1);
  }, 120_000);

  afterAll(async () => {
    await oracle?.close();
  });

  it('matches llama.cpp at positions past 4,096 (f16 cache)', async () => {
    const theirs = await oracle.logProbs(tokens, POSITIONS);
    const source = await NodeFileSource.open(path);
    const model = await Qwen3Model.load(source, { threads: 2, contextLength: CONTEXT, build: 'simd128' });
    try {
      let worst = 0;
      let done = 0;
      for (const [i, position] of POSITIONS.entries()) {
        const logits = model.prefill(tokens.slice(done, position + 1));
        done = position + 1;
        const ours = logSoftmax(logits);
        const reference = theirs[i]!;
        const top = [...reference.keys()].sort((a, b) => reference[b]! - reference[a]!).slice(0, TOP_K);
        for (const id of top) worst = Math.max(worst, Math.abs(ours[id]! - reference[id]!));
        expect(argmax(ours)).toBe(top[0]);
      }
      console.log(`tiny-f32 at positions ${POSITIONS.join(', ')}: max |Δ ln p| over top-${TOP_K} = ${worst.toFixed(4)}`);
      // tiny-f32's bound in tests/model/forward-llama.test.ts.
      expect(worst).toBeLessThan(0.02);
    } finally {
      model.dispose();
      await source.close();
    }
  }, 300_000);
});

describe('q8_0 KV cache vs llama.cpp (--cache-type-k/v q8_0, flash attention)', () => {
  const CONTEXT = 4800;
  const POSITIONS = [0, 31, 63, 700, 4700];
  const TOP_K = 16;

  it.each(['small-f32', 'small-q4_k_m'])('%s: matches llama.cpp with the same cache type, positions up to 4,700', async (name) => {
    const path = await ensureFixture(name);
    const source = await NodeFileSource.open(path);
    const gguf = await readGGUF(source);
    const tokenizer = Tokenizer.fromData(readTokenizerData(gguf));
    const text = 'The keeper logged wind, ships and weather. 灯塔看守人写日志。 for (let i = 0; i < n; i++) sum += a[i]; ';
    let tokens: number[] = [];
    for (let i = 0; tokens.length <= POSITIONS.at(-1)!; i++) tokens.push(...tokenizer.encode(`${i}: ${text}`));
    tokens = tokens.slice(0, POSITIONS.at(-1)! + 1);
    const oracle = await openOracle(path, { contextSize: CONTEXT, threads: 2, kvCache: 'q8_0' });
    const worst: Record<string, number> = {};
    try {
      const theirs = await oracle.logProbs(tokens, POSITIONS);
      for (const kvCache of ['q8_0', 'f16'] as const) {
        const model = await Qwen3Model.load(source, { threads: 2, contextLength: CONTEXT, kvCache });
        try {
          expect(model.kvCache).toBe(kvCache);
          let done = 0;
          worst[kvCache] = 0;
          for (const [i, position] of POSITIONS.entries()) {
            const ours = logSoftmax(model.prefill(tokens.slice(done, position + 1)));
            done = position + 1;
            const reference = theirs[i]!;
            const top = [...reference.keys()].sort((a, b) => reference[b]! - reference[a]!).slice(0, TOP_K);
            for (const id of top) worst[kvCache] = Math.max(worst[kvCache]!, Math.abs(ours[id]! - reference[id]!));
          }
        } finally {
          model.dispose();
        }
      }
    } finally {
      await oracle.close();
      await source.close();
    }
    console.log(`${name}: max |Δ ln p| over top-${TOP_K} vs llama.cpp's q8_0 cache: ours q8_0 ${worst.q8_0!.toFixed(4)}, ours f16 ${worst.f16!.toFixed(4)}`);
    // Within the bound of the f16 path for these weights (tests/model/forward-llama.test.ts)...
    expect(worst.q8_0).toBeLessThan(name === 'small-f32' ? 0.02 : 0.8);
    // ...and a q8_0 cache, not an f16 one, is what llama.cpp ran: ours in f16 is further from it.
    expect(worst.q8_0).toBeLessThan(worst.f16! / 2);
  }, 300_000);
});
