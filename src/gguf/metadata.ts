// Typed views of a GGUF file's metadata: the model hyper-parameters (checked against the tensor
// shapes), the tokenizer data and the chat template.

import { GGUFError } from './errors.ts';
import type { GGUFFile, GGUFTensorInfo } from './reader.ts';

export interface ModelConfig {
  architecture: 'qwen3';
  name?: string;
  nLayers: number;
  hiddenSize: number;
  ffnSize: number;
  nHeads: number;
  nKvHeads: number;
  /** Width of one query/key head. */
  headDim: number;
  /** Width of one value head. */
  valueDim: number;
  ropeTheta: number;
  rmsEps: number;
  contextLength: number;
  /** Rows of token_embd.weight. */
  vocabSize: number;
  /** True when the file has no output.weight: the LM head is token_embd. */
  tiedEmbeddings: boolean;
  /** general.file_type (llama_ftype), when present. */
  fileType?: number;
}

export interface TokenizerData {
  /** tokenizer.ggml.model, e.g. "gpt2" (byte-level BPE). */
  model: string;
  /** tokenizer.ggml.pre, e.g. "qwen2"; "default" when absent (as llama.cpp does). */
  pre: string;
  tokens: string[];
  /** llama_token_type per token; all 1 (normal) when absent. */
  tokenTypes: Int32Array;
  /** "a b" merge rules, highest priority first. */
  merges: string[];
  bosId?: number;
  eosId?: number;
  padId?: number;
  eotId?: number;
  addBos: boolean;
  chatTemplate?: string;
}

const SUPPORTED_ARCHITECTURES = ['qwen3'];

/** A metadata value that must be an integer >= `min`. */
function integerKey(file: GGUFFile, key: string, min: number): number | undefined {
  const v = file.getNumber(key);
  if (v === undefined) return undefined;
  if (!Number.isSafeInteger(v) || v < min) {
    throw new GGUFError('invalid-value', `metadata key '${key}' is ${v}, expected an integer >= ${min}`);
  }
  return v;
}

function requireInteger(file: GGUFFile, key: string, min: number): number {
  const v = integerKey(file, key, min);
  if (v === undefined) throw new GGUFError('missing-key', `metadata key '${key}' is missing`);
  return v;
}

function positiveNumber(file: GGUFFile, key: string, fallback?: number): number {
  const v = fallback === undefined ? file.requireNumber(key) : (file.getNumber(key) ?? fallback);
  if (!(v > 0) || !Number.isFinite(v)) {
    throw new GGUFError('invalid-value', `metadata key '${key}' is ${v}, expected a positive number`);
  }
  return v;
}

export function readModelConfig(file: GGUFFile): ModelConfig {
  const architecture = file.requireString('general.architecture');
  if (!SUPPORTED_ARCHITECTURES.includes(architecture)) {
    throw new GGUFError(
      'unsupported-architecture',
      `architecture '${architecture}' is not supported (supported: ${SUPPORTED_ARCHITECTURES.join(', ')})`,
    );
  }
  const a = architecture;
  const nLayers = requireInteger(file, `${a}.block_count`, 1);
  const hiddenSize = requireInteger(file, `${a}.embedding_length`, 1);
  const ffnSize = requireInteger(file, `${a}.feed_forward_length`, 1);
  const nHeads = requireInteger(file, `${a}.attention.head_count`, 1);
  const nKvHeads = integerKey(file, `${a}.attention.head_count_kv`, 1) ?? nHeads;
  if (nHeads % nKvHeads !== 0) {
    throw new GGUFError('invalid-value', `${nHeads} query heads are not a multiple of ${nKvHeads} KV heads`);
  }
  let headDim = integerKey(file, `${a}.attention.key_length`, 1);
  if (headDim === undefined) {
    if (hiddenSize % nHeads !== 0) {
      throw new GGUFError('missing-key', `metadata key '${a}.attention.key_length' is missing and ${hiddenSize} is not divisible by ${nHeads} heads`);
    }
    headDim = hiddenSize / nHeads;
  }
  const valueDim = integerKey(file, `${a}.attention.value_length`, 1) ?? headDim;
  const ropeTheta = positiveNumber(file, `${a}.rope.freq_base`, 10000);
  const rmsEps = positiveNumber(file, `${a}.attention.layer_norm_rms_epsilon`);
  const contextLength = requireInteger(file, `${a}.context_length`, 1);
  const name = file.getString('general.name');
  const fileType = integerKey(file, 'general.file_type', 0);

  // Shapes, ne0 first: a weight [in, out] maps `in` features to `out`.
  const expect = (name: string, dims: number[]): GGUFTensorInfo => {
    const t = file.tensor(name);
    if (!t) throw new GGUFError('bad-tensor', `tensor '${name}' is missing`);
    if (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i])) {
      throw new GGUFError('bad-tensor', `tensor '${name}' has shape [${t.dims.join(',')}], expected [${dims.join(',')}]`);
    }
    return t;
  };

  const embd = file.tensor('token_embd.weight');
  if (!embd) throw new GGUFError('bad-tensor', `tensor 'token_embd.weight' is missing`);
  if (embd.dims.length !== 2 || embd.dims[0] !== hiddenSize) {
    throw new GGUFError('bad-tensor', `tensor 'token_embd.weight' has shape [${embd.dims.join(',')}], expected [${hiddenSize}, vocab]`);
  }
  const vocabSize = embd.dims[1];
  expect('output_norm.weight', [hiddenSize]);
  const tiedEmbeddings = file.tensor('output.weight') === undefined;
  if (!tiedEmbeddings) expect('output.weight', [hiddenSize, vocabSize]);

  const qWidth = nHeads * headDim;
  const kWidth = nKvHeads * headDim;
  const vWidth = nKvHeads * valueDim;
  for (let i = 0; i < nLayers; i++) {
    const b = `blk.${i}`;
    expect(`${b}.attn_norm.weight`, [hiddenSize]);
    expect(`${b}.attn_q.weight`, [hiddenSize, qWidth]);
    expect(`${b}.attn_k.weight`, [hiddenSize, kWidth]);
    expect(`${b}.attn_v.weight`, [hiddenSize, vWidth]);
    expect(`${b}.attn_output.weight`, [nHeads * valueDim, hiddenSize]);
    expect(`${b}.attn_q_norm.weight`, [headDim]);
    expect(`${b}.attn_k_norm.weight`, [headDim]);
    expect(`${b}.ffn_norm.weight`, [hiddenSize]);
    expect(`${b}.ffn_gate.weight`, [hiddenSize, ffnSize]);
    expect(`${b}.ffn_up.weight`, [hiddenSize, ffnSize]);
    expect(`${b}.ffn_down.weight`, [ffnSize, hiddenSize]);
  }
  if (file.tensor(`blk.${nLayers}.attn_norm.weight`)) {
    throw new GGUFError('bad-tensor', `tensor 'blk.${nLayers}.attn_norm.weight' is present but block_count is ${nLayers}`);
  }

  const config: ModelConfig = {
    architecture: 'qwen3',
    nLayers,
    hiddenSize,
    ffnSize,
    nHeads,
    nKvHeads,
    headDim,
    valueDim,
    ropeTheta,
    rmsEps,
    contextLength,
    vocabSize,
    tiedEmbeddings,
  };
  if (name !== undefined) config.name = name;
  if (fileType !== undefined) config.fileType = fileType;
  return config;
}

export function readTokenizerData(file: GGUFFile): TokenizerData {
  const model = file.requireString('tokenizer.ggml.model');
  const pre = file.getString('tokenizer.ggml.pre') ?? 'default';
  const tokens = file.requireStringArray('tokenizer.ggml.tokens');
  if (tokens.length === 0) throw new GGUFError('invalid-value', `metadata key 'tokenizer.ggml.tokens' is empty`);

  let tokenTypes: Int32Array;
  const storedTypes = file.getNumberArray('tokenizer.ggml.token_type');
  if (storedTypes === undefined) {
    tokenTypes = new Int32Array(tokens.length).fill(1);
  } else {
    if (storedTypes.length !== tokens.length) {
      throw new GGUFError(
        'invalid-value',
        `metadata key 'tokenizer.ggml.token_type' has ${storedTypes.length} entries but there are ${tokens.length} tokens`,
      );
    }
    tokenTypes = storedTypes instanceof Int32Array ? storedTypes : Int32Array.from(storedTypes);
  }

  const storedMerges = file.getStringArray('tokenizer.ggml.merges');
  if (storedMerges === undefined && model === 'gpt2') {
    throw new GGUFError('missing-key', `metadata key 'tokenizer.ggml.merges' is missing (required by the gpt2 tokenizer)`);
  }
  const merges = storedMerges ?? [];

  const tokenId = (key: string): number | undefined => {
    const id = integerKey(file, key, 0);
    if (id !== undefined && id >= tokens.length) {
      throw new GGUFError('invalid-value', `metadata key '${key}' is ${id}, beyond the ${tokens.length} tokens`);
    }
    return id;
  };

  const data: TokenizerData = {
    model,
    pre,
    tokens,
    tokenTypes,
    merges,
    addBos: file.getBool('tokenizer.ggml.add_bos_token') ?? false,
  };
  const bosId = tokenId('tokenizer.ggml.bos_token_id');
  const eosId = tokenId('tokenizer.ggml.eos_token_id');
  const padId = tokenId('tokenizer.ggml.padding_token_id');
  const eotId = tokenId('tokenizer.ggml.eot_token_id');
  const chatTemplate = readChatTemplate(file);
  if (bosId !== undefined) data.bosId = bosId;
  if (eosId !== undefined) data.eosId = eosId;
  if (padId !== undefined) data.padId = padId;
  if (eotId !== undefined) data.eotId = eotId;
  if (chatTemplate !== undefined) data.chatTemplate = chatTemplate;
  return data;
}

export function readChatTemplate(file: GGUFFile): string | undefined {
  return file.getString('tokenizer.chat_template');
}
