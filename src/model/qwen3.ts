// The Qwen3 forward pass on the wasm kernels.
//
// Everything lives in one wasm memory laid out here: the weights (placed straight from the byte
// source, tensor by tensor), the KV cache (f16, or q8_0 at half the size), and activation buffers
// for a batch of tokens.
// `forward` reads top to bottom like llama2.c's: one layer loop, a comment per step.
import { streamCopyClock, type ByteSource } from '../gguf/byte-source.ts';
import { GGMLType, ggmlTypeName } from '../gguf/ggml-types.ts';
import { readModelConfig, type ModelConfig } from '../gguf/metadata.ts';
import { readGGUF, type GGUFFile, type GGUFTensorInfo } from '../gguf/reader.ts';
import { ModelError } from './errors.ts';
import {
  GGUF_WEIGHT_TYPES, MAX_MEMORY64_BYTES, MAX_MEMORY_BYTES, MemoryAllocationError, WeightType, createKernels, hasMemory64, kernelThreadCount,
  kvCacheRowBytes, type KernelOptions, type Kernels, type KvCacheType,
} from './kernels.ts';

/** How the kernels address their memory: wasm32 (4 GiB, faster) or memory64 (up to 16 GiB). */
export type Addressing = 'wasm32' | 'memory64';

export interface LoadOptions extends Omit<KernelOptions, 'memory64'> {
  /**
   * Tokens the KV cache holds; default the smallest of 8,192, the model's trained context and
   * what fits in memory (see maxContextLength).
   */
  contextLength?: number;
  /** Memory the model may take (default and most: the 4 GiB a wasm32 memory holds, 16 GiB where memory64 runs). */
  memoryLimitBytes?: number;
  /**
   * 'auto' (default): wasm32 where the weights and the context fit in its 4 GiB, else memory64
   * where the host has it; or either one forced.
   */
  addressing?: 'auto' | Addressing;
  /** How the KV cache holds keys and values: 'f16' (default) or 'q8_0' (half the memory; heads of a multiple of 32 values). */
  kvCache?: KvCacheType;
  /** Most tokens one forward step processes (longer prompts are split); default 64. */
  maxBatch?: number;
  /** Called as weight bytes arrive in wasm memory. */
  onProgress?: (loadedBytes: number, totalBytes: number) => void;
  /** Stop loading early (e.g. the user closed the model). */
  signal?: AbortSignal;
  /** Filled with where the load's time went (benchmarks); the weights' pages are then touched
   * before they are written, so that first-touch cost is told apart from the copy. */
  timings?: LoadTimings;
}

/** Milliseconds of a load by part; what is left of the whole (module, header, tokenizer) is the caller's "other". */
export interface LoadTimings {
  /** Reading weight bytes from the source, the copy into wasm memory excepted. */
  read?: number;
  /** Copying stream chunks into wasm memory (stream sources: IndexedDB chunks, URLs, Blobs). */
  copy?: number;
  /** The first write to each fresh wasm page of the weights (the OS maps and zeroes it). */
  touch?: number;
  /** Rewriting matrices into the kernels' layouts. */
  repack?: number;
  /** Reading and checking the GGUF header (before any weight). */
  header?: number;
  /** Starting the kernels: module compile and probe, memory, threads. */
  kernels?: number;
}

/** A matrix in wasm memory: `rows` output features of `cols` inputs, in GGUF layout. */
interface Matrix {
  ptr: number;
  type: WeightType;
  rows: number;
  cols: number;
}

interface LayerWeights {
  attnNorm: number; // f32 [hidden]
  wq: Matrix; // [nHeads*headDim, hidden]
  wk: Matrix; // [nKvHeads*headDim, hidden]
  wv: Matrix; // [nKvHeads*valueDim, hidden]
  qNorm: number; // f32 [headDim], shared by all heads
  kNorm: number; // f32 [headDim]
  wo: Matrix; // [hidden, nHeads*valueDim]
  ffnNorm: number; // f32 [hidden]
  wGate: Matrix; // [ffn, hidden]
  wUp: Matrix; // [ffn, hidden]
  wDown: Matrix; // [hidden, ffn]
  cacheK: number; // [context][nKvHeads*headDim] in the cache type (f16 or block_q8_0)
  cacheV: number; // [context][nKvHeads*valueDim]
}

/** Activation buffers for up to `maxBatch` tokens (f32 unless noted). */
interface RunState {
  x: number; // residual stream [batch][hidden]
  xb: number; // normalized input of a sublayer [batch][hidden]
  xb2: number; // sublayer output [batch][hidden]
  q: number; // [batch][nHeads*headDim]
  k: number; // [batch][nKvHeads*headDim]
  v: number; // [batch][nKvHeads*valueDim]
  att: number; // attention output [batch][nHeads*valueDim]
  gate: number; // [batch][ffn]
  up: number; // [batch][ffn]
  positions: number; // i32 [batch]
  logits: number; // [logitRows][vocab]
  logitRows: number;
}

/** The context a model gets unless asked: the 8K of coherent text the product promises. */
export const DEFAULT_CONTEXT_LENGTH = 8192;
/** Contexts that fit are counted in steps of this many tokens. */
const CONTEXT_STEP = 256;
/** Less than this is no use for a chat (unless the model was trained for less). */
const MIN_CONTEXT_LENGTH = 512;
/** The context suggested where the device lacks memory for the one asked for. */
const SHORT_CONTEXT_LENGTH = 2048;
/** The attention kernel walks a head in steps of this many values (two 4-lane vectors). */
const ATTENTION_LANES = 8;
const ALIGN = 64;
const alignUp = (n: number) => Math.ceil(n / ALIGN) * ALIGN;
/** Reads from the source in pieces this large, so a Blob source never holds a whole tensor twice. */
export const READ_CHUNK_BYTES = 64 * 1024 * 1024;

/**
 * Rows of logits planned and allocated at load: a speculative pass (the sampled token and a draft,
 * at most 8 tokens, whose rows the kernels compute as lone tokens') never allocates while it answers.
 */
const PASS_LOGIT_ROWS = 8;
/** Pieces read at once: the next one arrives while this thread copies and repacks the last. */
const READ_AHEAD_PIECES = 2;
/** Room the kernels need beside our buffers: module data, matmul/attention scratch, thread stacks. */
const KERNEL_OVERHEAD_BYTES = 64 * 1024 * 1024;

export class Qwen3Model {
  /** Tokens currently in the KV cache (the next token's position). */
  position = 0;
  /** Hadamard blocks a quantized cache rotates keys (and queries) and values by; 0 for none. */
  private readonly rotation: { kBlock: number; vBlock: number };

  private constructor(
    readonly config: ModelConfig,
    readonly gguf: GGUFFile,
    readonly kernels: Kernels,
    readonly contextLength: number,
    /** The largest context this model can be loaded with here (trained length and memory). */
    readonly maxContextLength: number,
    readonly kvCache: KvCacheType,
    readonly maxBatch: number,
    readonly memoryBytes: number,
    private readonly tokenEmbd: Matrix,
    private readonly outputNorm: number,
    private readonly output: Matrix,
    private readonly layers: LayerWeights[],
    private readonly state: RunState,
  ) {
    this.rotation = kvCache === 'f16' ? { kBlock: 0, vBlock: 0 } : cacheRotation(config);
  }

  /** Reads the GGUF header from `source`, checks the model fits, and places its weights in wasm memory. */
  static async load(source: ByteSource, options: LoadOptions = {}): Promise<Qwen3Model> {
    const headerStarted = performance.now();
    const gguf = await readGGUF(source);
    if (options.timings) options.timings.header = performance.now() - headerStarted;
    const config = readModelConfig(gguf);
    const maxBatch = options.maxBatch ?? 64;
    if (!(Number.isInteger(maxBatch) && maxBatch > 0)) throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
    if (config.headDim % ATTENTION_LANES !== 0) {
      throw new ModelError('bad-model', `attention heads of ${config.headDim} values (qwen3.attention.key_length) are not supported: ` +
        `the attention kernel needs a multiple of ${ATTENTION_LANES}`);
    }
    if (config.valueDim !== config.headDim) {
      throw new ModelError('bad-model', `value heads (${config.valueDim}) wider or narrower than key heads (${config.headDim}) are not supported`);
    }
    const kvCache = options.kvCache ?? 'f16';
    if (kvCache !== 'f16' && kvCache !== 'q8_0') throw new RangeError(`kvCache must be 'f16' or 'q8_0', got ${String(kvCache)}`);
    if (kvCache === 'q8_0' && config.headDim % 32 !== 0) {
      throw new ModelError('unsupported-quant', `a q8_0 KV cache holds blocks of 32 values, and this model's attention heads have ` +
        `${config.headDim}: load it with the f16 cache`);
    }
    const tensors = modelTensors(gguf, config);
    const weightBytes = tensors.reduce((sum, t) => sum + alignUp(t.byteSize), 0);
    const threads = await kernelThreadCount(options);
    const plan = planMemory(config, weightBytes, { ...options, threads, maxBatch, kvCache, memory64: options.addressing !== 'wasm32' && hasMemory64() });
    const { contextLength, maxContextLength, neededBytes: needed } = plan;
    /** The device would not give us the memory: say how much was asked for, and what needs less. */
    const deviceMemoryError = (error: MemoryAllocationError): ModelError => {
      const kvBytes = needed - plan.fixedBytes;
      const shorter = Math.min(SHORT_CONTEXT_LENGTH, contextLength);
      const shorterNeeds = plan.fixedBytes + (kvBytes / contextLength) * shorter;
      return new ModelError('model-too-large', `this model needs ${gib(needed)} of memory (weights ${gib(weightBytes)}, ` +
        `KV cache ${gib(kvBytes)} for ${contextLength.toLocaleString('en-US')} tokens, buffers ${gib(plan.fixedBytes - weightBytes)}), ` +
        `and this browser could not get that much (${error.message}): the device has too little memory for it. ` +
        (shorter < contextLength ? `With ${shorter.toLocaleString('en-US')} tokens of context it needs ${gib(shorterNeeds)}; ` : '') +
        `a smaller model needs less.`);
    };

    const kernelsStarted = performance.now();
    const kernels = await createKernels({ ...options, initialBytes: options.initialBytes ?? needed, memory64: plan.addressing === 'memory64' })
      .catch((error: unknown) => {
        if (error instanceof MemoryAllocationError) throw deviceMemoryError(error);
        if (plan.addressing !== 'memory64' || options.addressing === 'memory64') throw error;
        // memory64 was chosen because the context needs it, and it failed here: say what fits without.
        const wasm32 = planMemory(config, weightBytes, { ...options, threads, maxBatch, kvCache, memory64: false, contextLength: undefined });
        throw new ModelError('model-too-large', `${contextLength.toLocaleString('en-US')} tokens of context need ${gib(needed)} of memory, ` +
          `more than wasm32's 4 GiB, and the memory64 kernels cannot run here (${error instanceof Error ? error.message : String(error)}). ` +
          `At most ${wasm32.maxContextLength.toLocaleString('en-US')} tokens of context fit: choose that or less.`);
      });
    if (options.timings) options.timings.kernels = performance.now() - kernelsStarted;
    try {
      // The attention's scratch for the whole context, now: no call allocates later.
      const attentionBytes = kernels.reserveAttention(kvCache, contextLength, config.nHeads, config.nKvHeads, config.headDim);
      const attentionBound = attentionScratchBound(kvCache, contextLength, kernels.threads, config.headDim);
      if (attentionBytes > attentionBound) {
        throw new Error(`the attention kernel's scratch (${attentionBytes} bytes for ${contextLength} positions on ${kernels.threads} ` +
          `threads) outgrew the memory plan's ${attentionBound}: update ATTENTION_SCORE_BYTES and attentionScratchBound`);
      }
      // Weights: one arena, each tensor read straight into its place.
      const weightBase = kernels.alloc(weightBytes, ALIGN);
      const placed = new Map<string, number>();
      const pieces: { tensor: GGUFTensorInfo; fileOffset: number; at: number; length: number; last: boolean }[] = [];
      let offset = weightBase;
      for (const t of tensors) {
        for (let done = 0; done < t.byteSize; done += READ_CHUNK_BYTES) {
          const length = Math.min(READ_CHUNK_BYTES, t.byteSize - done);
          pieces.push({ tensor: t, fileOffset: t.offset + done, at: offset + done, length, last: done + length === t.byteSize });
        }
        placed.set(t.name, offset);
        offset += alignUp(t.byteSize);
      }

      // Each piece read straight into its place, the next one already on its way (the source's
      // I/O goes on while this thread copies, touches fresh pages and repacks); each matrix
      // rewritten into the layout the kernels read fastest (in place; see Kernels.repack) as
      // soon as its last piece has arrived.
      const timings = options.timings;
      const copiedBefore = streamCopyClock.ms;
      const readsStarted = performance.now();
      let touchMs = 0, repackMs = 0, loaded = 0;
      const packedTypes = new Map<string, WeightType>();
      const startRead = (i: number): Promise<void> => {
        const p = pieces[i]!;
        const target = kernels.bytes().subarray(p.at, p.at + p.length);
        if (timings) touchMs += touchPages(target);
        return source.readInto(p.fileOffset, target);
      };
      const reads: Promise<void>[] = [];
      try {
        for (let i = 0; i < pieces.length; i++) {
          while (reads.length < Math.min(pieces.length, i + READ_AHEAD_PIECES)) {
            options.signal?.throwIfAborted();
            const read = startRead(reads.length);
            read.catch(() => undefined);  // a read failing ahead is seen when its turn comes (not as unhandled)
            reads.push(read);
          }
          await reads[i];
          const p = pieces[i]!;
          loaded += p.length;
          options.onProgress?.(loaded, weightBytes);
          if (p.last && p.tensor.dims.length === 2) {
            const repackStarted = performance.now();
            const t = p.tensor;
            packedTypes.set(t.name, kernels.repack(placed.get(t.name)!, t.type as WeightType, t.dims[1]!, t.dims[0]!));
            repackMs += performance.now() - repackStarted;
          }
        }
      } catch (error) {
        await Promise.allSettled(reads);  // nothing may still be writing when the caller sees the error
        throw error;
      }
      if (timings) {
        timings.copy = streamCopyClock.ms - copiedBefore;
        timings.touch = touchMs;
        timings.repack = repackMs;
        timings.read = performance.now() - readsStarted - timings.copy - touchMs - repackMs;
      }

      const matrix = (name: string): Matrix => {
        const t = gguf.tensor(name)!;
        return { ptr: placed.get(name)!, type: packedTypes.get(name) ?? (t.type as WeightType), rows: t.dims[1], cols: t.dims[0] };
      };
      const vector = (name: string): number => placed.get(name)!;
      const kvK = config.nKvHeads * config.headDim;
      const kvV = config.nKvHeads * config.valueDim;
      const layers: LayerWeights[] = [];
      for (let l = 0; l < config.nLayers; l++) {
        const p = `blk.${l}.`;
        layers.push({
          attnNorm: vector(`${p}attn_norm.weight`),
          wq: matrix(`${p}attn_q.weight`),
          wk: matrix(`${p}attn_k.weight`),
          wv: matrix(`${p}attn_v.weight`),
          qNorm: vector(`${p}attn_q_norm.weight`),
          kNorm: vector(`${p}attn_k_norm.weight`),
          wo: matrix(`${p}attn_output.weight`),
          ffnNorm: vector(`${p}ffn_norm.weight`),
          wGate: matrix(`${p}ffn_gate.weight`),
          wUp: matrix(`${p}ffn_up.weight`),
          wDown: matrix(`${p}ffn_down.weight`),
          cacheK: kernels.alloc(contextLength * kvCacheRowBytes(kvCache, kvK), ALIGN),
          cacheV: kernels.alloc(contextLength * kvCacheRowBytes(kvCache, kvV), ALIGN),
        });
      }
      const tokenEmbd = matrix('token_embd.weight');
      const output = config.tiedEmbeddings ? tokenEmbd : matrix('output.weight');
      const state = allocRunState(kernels, config, maxBatch, PASS_LOGIT_ROWS);
      return new Qwen3Model(config, gguf, kernels, contextLength, maxContextLength, kvCache, maxBatch, needed, tokenEmbd,
        vector('output_norm.weight'), output, layers, state);
    } catch (error) {
      kernels.dispose();
      throw error;
    }
  }

  /** Appends `tokens` to the KV cache and returns the logits after the last one ([vocab]). */
  prefill(tokens: readonly number[]): Float32Array {
    return this.forward(tokens, this.position, false);
  }

  /** One step of generation: the logits after `token`. */
  decode(token: number): Float32Array {
    return this.forward([token], this.position, false);
  }

  /** Forgets cached positions from `position` on (e.g. to reuse a shared prompt prefix). */
  truncate(position: number): void {
    if (!(Number.isInteger(position) && position >= 0 && position <= this.position)) {
      throw new RangeError(`truncate(${position}): the cache holds ${this.position} tokens`);
    }
    this.position = position;
  }

  /** Bytes one position takes in the KV cache, all layers' keys and values. */
  get cacheBytesPerToken(): number {
    return kvCacheBytesPerToken(this.config, this.kvCache);
  }

  /**
   * A copy of the cache's positions from..to (every layer's key rows, then its value rows), to put
   * back with `restoreCache` in a model of the same file and cache type. Saved in parts (0..a,
   * a..b, …), one conversation's cache grows by its new rows only.
   */
  saveCache(from = 0, to = this.position): Uint8Array {
    if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && from <= to && to <= this.position)) {
      throw new RangeError(`saveCache(${from}, ${to}): the cache holds ${this.position} tokens`);
    }
    const { kRow, vRow } = this.cacheRowBytes();
    const out = new Uint8Array((to - from) * (kRow + vRow) * this.layers.length);
    const bytes = this.kernels.bytes();
    let o = 0;
    for (const L of this.layers) {
      out.set(bytes.subarray(L.cacheK + from * kRow, L.cacheK + to * kRow), o);
      o += (to - from) * kRow;
      out.set(bytes.subarray(L.cacheV + from * vRow, L.cacheV + to * vRow), o);
      o += (to - from) * vRow;
    }
    return out;
  }

  /**
   * Puts back the first `length` positions of parts saved by `saveCache` one after another:
   * `partEnds` are the positions each part ends at (default: one part). The cache then holds
   * exactly those positions.
   */
  restoreCache(saved: Uint8Array, length: number, partEnds?: readonly number[]): void {
    const { kRow, vRow } = this.cacheRowBytes();
    if (!(Number.isInteger(length) && length >= 0 && length <= this.contextLength)) throw new RangeError(`restoreCache: ${length} tokens do not fit the ${this.contextLength}-token context`);
    const stride = (kRow + vRow) * this.layers.length;
    const ends = partEnds ?? [saved.length / stride];
    const whole = ends.every((end, i) => Number.isInteger(end) && end > (i === 0 ? 0 : ends[i - 1]!));
    if (!whole || saved.length % stride !== 0 || saved.length / stride !== ends.at(-1) || ends.at(-1)! < length) {
      throw new RangeError(`restoreCache: ${saved.length} bytes in parts ending at ${ends.join(', ')} are not ${length} positions of this model's ${this.kvCache} cache`);
    }
    const bytes = this.kernels.bytes();
    let o = 0, start = 0;
    for (const end of ends) {
      const count = end - start, used = Math.max(0, Math.min(end, length) - start);
      for (const L of this.layers) {
        bytes.set(saved.subarray(o, o + used * kRow), L.cacheK + start * kRow);
        o += count * kRow;
        bytes.set(saved.subarray(o, o + used * vRow), L.cacheV + start * vRow);
        o += count * vRow;
      }
      start = end;
    }
    this.position = length;
  }

  private cacheRowBytes(): { kRow: number; vRow: number } {
    const c = this.config;
    return { kRow: kvCacheRowBytes(this.kvCache, c.nKvHeads * c.headDim), vRow: kvCacheRowBytes(this.kvCache, c.nKvHeads * c.valueDim) };
  }

  /**
   * Runs `tokens` at positions startPos.. and returns logits: for the last token only, or with
   * `allLogits` for every token ([n][vocab], row t predicts the token after tokens[t]).
   */
  forward(tokens: readonly number[], startPos: number, allLogits: boolean): Float32Array {
    const steps = this.forwardSteps(tokens, startPos, allLogits);
    for (;;) {
      const step = steps.next();
      if (step.done) return step.value;
    }
  }

  /**
   * `forward` one batch of at most `maxBatch` tokens at a time: yields how many tokens are in
   * the cache after each batch but the last (a caller may yield to its event loop, or stop:
   * the cache then holds the batches done), and returns the logits.
   */
  *forwardSteps(tokens: readonly number[], startPos: number, allLogits: boolean): Generator<number, Float32Array, void> {
    const c = this.config;
    if (tokens.length === 0) throw new RangeError('forward needs at least one token');
    if (startPos > this.position) throw new RangeError(`startPos ${startPos} is past the ${this.position} cached tokens`);
    if (startPos + tokens.length > this.contextLength) {
      throw new ModelError('context-overflow',
        `${startPos + tokens.length} tokens do not fit the ${this.contextLength}-token context`);
    }
    for (const t of tokens) {
      if (!(Number.isInteger(t) && t >= 0 && t < c.vocabSize)) throw new RangeError(`token id ${t} is outside the vocabulary (0..${c.vocabSize - 1})`);
    }
    const out = new Float32Array((allLogits ? tokens.length : 1) * c.vocabSize);
    this.position = startPos;
    for (let start = 0; start < tokens.length; start += this.maxBatch) {
      const batch = tokens.slice(start, start + this.maxBatch);
      const last = start + batch.length === tokens.length;
      const rows = allLogits ? batch.length : last ? 1 : 0;
      const logits = this.forwardBatch(batch, startPos + start, rows);
      if (rows > 0) out.set(logits, allLogits ? start * c.vocabSize : 0);
      this.position = startPos + start + batch.length;
      if (!last) yield this.position;
    }
    return out;
  }

  /** The transformer over one batch; returns a view of the logits of the last `logitRows` tokens. */
  private forwardBatch(tokens: readonly number[], startPos: number, logitRows: number): Float32Array {
    const k = this.kernels;
    const c = this.config;
    const n = tokens.length;
    const H = c.hiddenSize;
    const kvDim = c.nKvHeads * c.headDim;
    const s = this.state;
    if (logitRows > s.logitRows) {
      // More rows than a speculative pass (tests ask for every position's): grow that one buffer.
      s.logits = k.alloc(logitRows * c.vocabSize * 4, ALIGN);
      s.logitRows = logitRows;
    }

    // Token embeddings into the residual stream; positions for RoPE.
    tokens.forEach((token, t) => k.getRow(s.x + t * H * 4, this.tokenEmbd.ptr, this.tokenEmbd.type, H, token));
    const positions = k.i32();
    for (let t = 0; t < n; t++) positions[s.positions / 4 + t] = startPos + t;

    for (const L of this.layers) {
      // Attention: pre-norm, projections, per-head QK RMSNorm, RoPE, cache, grouped-query attention.
      k.rmsnorm(s.xb, s.x, L.attnNorm, H, n, c.rmsEps);
      matmuls(k, s.xb, n, [s.q, L.wq], [s.k, L.wk], [s.v, L.wv]);
      k.rmsnorm(s.q, s.q, L.qNorm, c.headDim, n * c.nHeads, c.rmsEps);
      k.rmsnorm(s.k, s.k, L.kNorm, c.headDim, n * c.nKvHeads, c.rmsEps);
      k.ropeNeox(s.q, n, c.nHeads, c.headDim, s.positions, c.ropeTheta);
      k.ropeNeox(s.k, n, c.nKvHeads, c.headDim, s.positions, c.ropeTheta);
      if (this.kvCache === 'q8_0') {
        // llama.cpp's quantized cache: q, k, v rotated (Hadamard) before the cache, the output back.
        const { kBlock, vBlock } = this.rotation;
        if (kBlock) k.hadamardRotate(s.q, n * c.nHeads, c.headDim, kBlock);
        if (kBlock) k.hadamardRotate(s.k, n * c.nKvHeads, c.headDim, kBlock);
        if (vBlock) k.hadamardRotate(s.v, n * c.nKvHeads, c.valueDim, vBlock);
        k.kvStoreQ8_0(L.cacheK, L.cacheV, s.k, s.v, n, startPos, kvDim);
        k.attentionQ8_0(s.att, s.q, L.cacheK, L.cacheV, n, startPos, c.nHeads, c.nKvHeads, c.headDim);
        if (vBlock) k.hadamardRotate(s.att, n * c.nHeads, c.valueDim, vBlock);
      } else {
        k.kvStore(L.cacheK, L.cacheV, s.k, s.v, n, startPos, kvDim);
        k.attention(s.att, s.q, L.cacheK, L.cacheV, n, startPos, c.nHeads, c.nKvHeads, c.headDim);
      }
      // Output projection back into the residual stream.
      matmul(k, s.xb2, L.wo, s.att, n);
      k.add(s.x, s.xb2, n * H);
      // Feed-forward: pre-norm, SwiGLU, down projection, residual.
      k.rmsnorm(s.xb, s.x, L.ffnNorm, H, n, c.rmsEps);
      matmuls(k, s.xb, n, [s.gate, L.wGate], [s.up, L.wUp]);
      k.siluMul(s.gate, s.up, n * c.ffnSize);
      matmul(k, s.xb2, L.wDown, s.gate, n);
      k.add(s.x, s.xb2, n * H);
    }
    if (logitRows === 0) return new Float32Array(0);

    // Final norm and the LM head, only for the rows whose logits are wanted.
    const first = n - logitRows;
    k.rmsnorm(s.xb, s.x + first * H * 4, this.outputNorm, H, logitRows, c.rmsEps);
    matmul(k, s.logits, this.output, s.xb, logitRows);
    return k.f32().subarray(s.logits / 4, s.logits / 4 + logitRows * c.vocabSize);
  }

  dispose(): void {
    this.kernels.dispose();
  }
}

function matmul(k: Kernels, dst: number, w: Matrix, src: number, nTokens: number): void {
  k.matmul(dst, w.ptr, w.type, w.rows, w.cols, src, nTokens);
}

/** Products of one input with several matrices of the same width, as one kernel job. */
function matmuls(k: Kernels, src: number, nTokens: number, ...products: [dst: number, w: Matrix][]): void {
  k.matmulMulti(products.map(([dst, w]) => ({ dst, w: w.ptr, type: w.type, rows: w.rows })), products[0]![1].cols, src, nTokens);
}

/** The tensors the forward pass reads, each checked for a type the kernels support. */
function modelTensors(gguf: GGUFFile, config: ModelConfig): GGUFTensorInfo[] {
  const names = ['token_embd.weight', 'output_norm.weight'];
  if (!config.tiedEmbeddings) names.push('output.weight');
  for (let l = 0; l < config.nLayers; l++) {
    for (const part of ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_q_norm', 'attn_k_norm', 'attn_output',
      'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down']) {
      names.push(`blk.${l}.${part}.weight`);
    }
  }
  return names.map((name) => {
    const t = gguf.tensor(name);
    if (!t) throw new ModelError('bad-model', `tensor '${name}' is missing`);
    const isVector = t.dims.length === 1;
    if (isVector ? t.type !== GGMLType.F32 : !GGUF_WEIGHT_TYPES.has(t.type)) {
      throw new ModelError('unsupported-quant',
        `tensor '${name}' is ${ggmlTypeName(t.type)}, which qwen-web cannot run yet ` +
          `(supported: F32 norms; F32, F16, Q8_0, Q4_0, Q4_K, Q6_K matrices)`);
    }
    return t;
  });
}

export interface MemoryPlan {
  /** The context this load gets. */
  contextLength: number;
  /** The largest context that fits (and the model was trained for). */
  maxContextLength: number;
  /** Weights, KV cache, buffers and the kernels' own room. */
  neededBytes: number;
  /** All of that but the KV cache. */
  fixedBytes: number;
  /** wasm32 when that fits (or is asked for), else memory64. */
  addressing: Addressing;
}

/**
 * Sizes the context of a model whose weights take `weightBytes`: the one asked for, else the
 * default (8,192, or less where the model was trained for less or memory holds less). Throws
 * 'model-too-large' naming the most that would fit when it does not.
 */
export function planMemory(
  config: ModelConfig,
  weightBytes: number,
  options: {
    contextLength?: number; memoryLimitBytes?: number; maxBatch: number; kvCache?: KvCacheType;
    /** The host runs the memory64 kernels (default false: 4 GiB at most). */
    memory64?: boolean;
    /** The kernels' pool threads (default 1): each has its own rows of attention scores. */
    threads?: number;
    addressing?: 'auto' | Addressing;
  },
): MemoryPlan {
  const fixedBytes = weightBytes + runStateBytes(config, options.maxBatch, PASS_LOGIT_ROWS) + KERNEL_OVERHEAD_BYTES;
  const forced = options.addressing === 'auto' ? undefined : options.addressing;
  const addressLimit = forced === 'memory64' || (forced === undefined && options.memory64) ? MAX_MEMORY64_BYTES : MAX_MEMORY_BYTES;
  const limit = Math.min(options.memoryLimitBytes ?? addressLimit, addressLimit);
  const kvCache = options.kvCache ?? 'f16';
  // the cache, and what the attention's scratch takes per position of it
  const kvPerToken = kvCacheBytesPerToken(config, kvCache) + attentionScratchPerPosition(kvCache, options.threads ?? 1);
  const fits = Math.floor(Math.max(0, limit - fixedBytes) / kvPerToken / CONTEXT_STEP) * CONTEXT_STEP;
  const maxContextLength = Math.min(config.contextLength, fits);
  const requested = options.contextLength;
  if (requested !== undefined && !(Number.isInteger(requested) && requested > 0)) {
    throw new RangeError(`contextLength must be a positive integer, got ${requested}`);
  }
  const contextLength = requested ?? Math.min(DEFAULT_CONTEXT_LENGTH, maxContextLength);
  const neededBytes = fixedBytes + kvPerToken * contextLength;
  if (neededBytes > limit || (requested === undefined && contextLength < Math.min(MIN_CONTEXT_LENGTH, config.contextLength))) {
    const room = fits >= MIN_CONTEXT_LENGTH
      ? `At most ${fits.toLocaleString('en-US')} tokens of context fit: choose that or less.`
      : 'Not even a short context fits beside the weights: choose a smaller quantization or model.';
    throw new ModelError(
      'model-too-large',
      `this model needs ${gib(neededBytes)} of memory (weights ${gib(weightBytes)}, KV cache ${gib(kvPerToken * contextLength)} for ` +
        `${contextLength.toLocaleString('en-US')} tokens, buffers ${gib(fixedBytes - weightBytes)}), more than the ${gib(limit)} it may take` +
        `${limit === MAX_MEMORY_BYTES ? ` (all a wasm32 memory can hold${forced ? '' : '; no WebAssembly memory64 here for more'})`
          : limit === MAX_MEMORY64_BYTES ? ' (all a memory64 memory can hold)' : ''}. ${room}`,
    );
  }
  return { contextLength, maxContextLength, neededBytes, fixedBytes, addressing: forced ?? (neededBytes > MAX_MEMORY_BYTES ? 'memory64' : 'wasm32') };
}

/**
 * The rotation llama.cpp applies to a quantized cache (its attn_rot_k / attn_rot_v): keys by the
 * largest power-of-two block (from 64) dividing the head, values by blocks of 64; none for heads
 * that 64 does not divide.
 */
function cacheRotation(c: ModelConfig): { kBlock: number; vBlock: number } {
  let kBlock = 0;
  for (let b = 64; c.headDim % b === 0; b *= 2) kBlock = b;
  return { kBlock, vBlock: c.valueDim % 64 === 0 ? 64 : 0 };
}

/**
 * Scores the f16 attention kernel keeps per position of the context and pool thread: 8 tokens x 4
 * heads of f32 (wasm/attention.c; its scratch grows with the context, the q8_0 kernel's does not).
 * Its items take 16 tokens while their scores fit in 1 MiB (up to 4,096 positions): 512 KiB more
 * per thread at most, which KERNEL_OVERHEAD_BYTES holds. Load checks the kernel's own figure
 * against attentionScratchBound.
 */
const ATTENTION_SCORE_BYTES = 8 * 4 * 4;
const ATTENTION_SHORT_CONTEXT_BYTES = 2 ** 20 - ATTENTION_SCORE_BYTES * 4096;

function attentionScratchPerPosition(kvCache: KvCacheType, threads: number): number {
  return kvCache === 'f16' ? ATTENTION_SCORE_BYTES * threads : 0;
}

/**
 * The most the attention's scratch may take for `positions` positions: the plan's share of it,
 * and per thread the rest of a call's scratch (accumulators, tiles, quantized queries: under 640
 * bytes a head value in either kernel, and alignment), which KERNEL_OVERHEAD_BYTES holds.
 */
function attentionScratchBound(kvCache: KvCacheType, positions: number, threads: number, headDim: number): number {
  const shortContext = kvCache === 'f16' ? ATTENTION_SHORT_CONTEXT_BYTES : 0;
  return attentionScratchPerPosition(kvCache, threads) * (positions + 16) + threads * (640 * headDim + 4096 + shortContext);
}

/** K and V rows of every layer for one position. */
function kvCacheBytesPerToken(c: ModelConfig, type: KvCacheType): number {
  return c.nLayers * (kvCacheRowBytes(type, c.nKvHeads * c.headDim) + kvCacheRowBytes(type, c.nKvHeads * c.valueDim));
}

/** f32 counts of the activation buffers for `batch` tokens (positions is i32 [batch]). */
function runStateFloats(c: ModelConfig, batch: number, logitRows: number) {
  return {
    x: batch * c.hiddenSize,
    xb: batch * c.hiddenSize,
    xb2: batch * c.hiddenSize,
    q: batch * c.nHeads * c.headDim,
    k: batch * c.nKvHeads * c.headDim,
    v: batch * c.nKvHeads * c.valueDim,
    att: batch * c.nHeads * c.valueDim,
    gate: batch * c.ffnSize,
    up: batch * c.ffnSize,
    positions: batch,
    logits: logitRows * c.vocabSize,
  };
}

function runStateBytes(c: ModelConfig, batch: number, logitRows: number): number {
  return Object.values(runStateFloats(c, batch, logitRows)).reduce((sum, n) => sum + alignUp(n * 4), 0);
}

function allocRunState(k: Kernels, c: ModelConfig, batch: number, logitRows: number): RunState {
  const floats = runStateFloats(c, batch, logitRows);
  const buffer = (name: keyof typeof floats) => k.alloc(floats[name] * 4, ALIGN);
  return {
    x: buffer('x'), xb: buffer('xb'), xb2: buffer('xb2'),
    q: buffer('q'), k: buffer('k'), v: buffer('v'), att: buffer('att'),
    gate: buffer('gate'), up: buffer('up'),
    positions: buffer('positions'),
    logits: buffer('logits'),
    logitRows,
  };
}

/** Writes each 4 KiB page of `target` once (zeroes over zeroes: fresh wasm pages); returns the ms it took. */
function touchPages(target: Uint8Array): number {
  const started = performance.now();
  for (let i = 0; i < target.length; i += 4096) target[i] = 0;
  return performance.now() - started;
}

/** A memory size for people: GiB, or MiB below one GiB. */
function gib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
