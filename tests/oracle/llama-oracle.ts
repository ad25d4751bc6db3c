// llama.cpp as the reference implementation, through node-llama-cpp 3.21.1 (CPU prebuilt binary).
//
// node-llama-cpp has no raw-logits call; its samplers expose what we need (AddonContext.cpp,
// AddonSampler.cpp):
// - temperature 0: the chain is the greedy sampler alone, which selects without touching the
//   logits. `probabilities` then returns softmax(logits) over the whole vocabulary (float32
//   exp(logit - max) / sum), so ln p is llama.cpp's log-softmax. Exact but slow: node-llama-cpp
//   moves 151,936 (token, p) pairs through N-API and a Map, ~0.1-0.3 s per position.
//   `confidence` alone returns p of the greedy token = p_max over the full vocabulary, cheaply.
// - temperature 1 with topK = k, topP = 1, minP = 0: `probabilities` returns the top k renormalized
//   among themselves, so ln q_i - ln q_max = logit_i - logit_max exactly for those k.
// topLogProbs joins the two passes: ln p_i = (logit_i - logit_max) + ln p_max.
// A token whose logit is more than ~103 below the top underflows to p = 0 (ln p = -Infinity).
import {
  getLlama,
  LlamaLogLevel,
  type ControlledEvaluateInputItem,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type Token,
} from 'node-llama-cpp';

export interface OracleOptions {
  /** Context length to allocate; sequences passed in must fit. Default 1024. */
  contextSize?: number;
  /**
   * CPU threads for evaluation, at most 2. Default 1: llama.cpp's threads spin at barriers, and
   * on a busy 2-core machine two spinning threads made single-token steps ~40x slower.
   */
  threads?: number;
  /**
   * The KV cache type: 'f16' (default, attention without flash attention, as our f16 path rounds)
   * or 'q8_0' (keys and values; llama.cpp needs flash attention for a quantized V cache, and
   * rotates q, k and v by a Hadamard matrix around it: its attn_rot_k / attn_rot_v).
   */
  kvCache?: 'f16' | 'q8_0';
}

/** The k most likely next tokens, most likely first, with ln p over the FULL vocabulary. */
export interface TopLogProbs {
  ids: Int32Array;
  logProbs: Float32Array;
}

export interface GreedyResult {
  /** The n tokens llama.cpp's greedy sampler chose after the prompt. */
  tokens: number[];
  /** top[k]: the distribution tokens[k] was chosen from (top.ids[0] === tokens[k] but for exact ties). */
  top: TopLogProbs[];
}

export interface Oracle {
  /** Rows of the output layer (the model's n_vocab). */
  readonly vocabSize: number;
  tokenize(text: string, parseSpecial: boolean): number[];
  detokenize(ids: readonly number[], renderSpecial: boolean): string;
  /**
   * For every position i (or each of `positions`, in that order), llama.cpp's log-softmax over
   * the whole vocabulary of the next token after tokens[0..i] (inclusive), evaluated from an
   * empty context as one batch. Exact but slow: ~0.1-0.3 s per position asked for.
   */
  logProbs(tokens: readonly number[], positions?: readonly number[]): Promise<Float32Array[]>;
  /** Like logProbs, but only the k most likely tokens per position (two cheap passes, ~0.03 s per position). */
  topLogProbs(tokens: readonly number[], k?: number): Promise<TopLogProbs[]>;
  /** Greedy continuation of `n` tokens after the prompt (EOS does not stop it), with the top k per step. */
  greedy(promptTokens: readonly number[], n: number, k?: number): Promise<GreedyResult>;
  close(): Promise<void>;
}

let sharedLlama: Promise<Llama> | undefined;

/** One llama.cpp binding per process (loading it is slow and it holds global state). */
function llamaInstance(): Promise<Llama> {
  sharedLlama ??= getLlama({
    gpu: false,
    build: 'never',
    logLevel: LlamaLogLevel.error,
    progressLogs: false,
    maxThreads: 2,
  });
  return sharedLlama;
}

const DEFAULT_TOP_K = 64;

const GREEDY = { temperature: 0 } as const;
// temperature 1 divides by one; topP 1 and minP 0 are no-ops (the defaults would be 0.95 and 0)
const topKOptions = (k: number) => ({ temperature: 1, topK: k, topP: 1, minP: 0, seed: 1 }) as const;

function fullLogProbs(probabilities: Map<number, number> | undefined, vocabSize: number): Float32Array {
  if (!probabilities) throw new Error('llama-oracle: llama.cpp returned no probabilities');
  if (probabilities.size !== vocabSize) {
    throw new Error(`llama-oracle: ${probabilities.size} probabilities for a vocabulary of ${vocabSize}`);
  }
  const out = new Float32Array(vocabSize);
  for (const [token, p] of probabilities) out[token] = Math.log(p);
  return out;
}

/** Top-k logit differences (from the renormalized top k) shifted by ln p_max of the full softmax. */
function joinTop(probabilities: Map<number, number> | undefined, pMax: number | undefined): TopLogProbs {
  if (!probabilities || probabilities.size === 0) throw new Error('llama-oracle: llama.cpp returned no top-k probabilities');
  if (pMax === undefined || !(pMax > 0)) throw new Error(`llama-oracle: bad greedy confidence ${pMax}`);
  const entries = [...probabilities].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  const lnTop = Math.log(entries[0][1]);
  const lnPMax = Math.log(pMax);
  return {
    ids: Int32Array.from(entries, (e) => e[0]),
    logProbs: Float32Array.from(entries, (e) => Math.log(e[1]) - lnTop + lnPMax),
  };
}

export async function openOracle(path: string, options: OracleOptions = {}): Promise<Oracle> {
  const contextSize = options.contextSize ?? 1024;
  const threads = Math.max(1, Math.min(2, options.threads ?? 1));
  const llama = await llamaInstance();
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0, useMmap: true });
  let context: LlamaContext;
  try {
    context = await model.createContext({
      contextSize,
      batchSize: contextSize,
      threads,
      sequences: 1,
      ...(options.kvCache === 'q8_0'
        ? { flashAttention: true, experimentalKvCacheKeyType: 'Q8_0' as const, experimentalKvCacheValueType: 'Q8_0' as const }
        : { flashAttention: false }),
    });
  } catch (error) {
    await model.dispose();
    throw error;
  }
  const sequence: LlamaContextSequence = context.getSequence();
  const vocabSize = readVocabSize(model.fileInfo.metadata);

  const checkFits = (count: number): void => {
    if (count < 1) throw new Error('llama-oracle: empty token sequence');
    if (count > contextSize) throw new Error(`llama-oracle: ${count} tokens exceed the context of ${contextSize}`);
  };
  const checkK = (k: number): void => {
    if (!Number.isInteger(k) || k < 1 || k > vocabSize) throw new Error(`llama-oracle: bad k ${k}`);
  };

  /**
   * Evaluates `tokens` from an empty context in one batch, sampling with `next` after each of
   * `positions` (default: every position); returns the outputs in the order of `positions`.
   */
  const evaluateAt = async (tokens: readonly number[], next: GenerateNext, positions?: readonly number[]) => {
    const wanted = positions ?? tokens.map((_, i) => i);
    for (const p of wanted) {
      if (!Number.isInteger(p) || p < 0 || p >= tokens.length) throw new Error(`llama-oracle: bad position ${p}`);
    }
    const sampled = new Set(wanted);
    await sequence.clearHistory();
    const input: ControlledEvaluateInputItem[] = tokens.map((t, i) =>
      sampled.has(i) ? [asToken(t), { generateNext: next }] : asToken(t),
    );
    const results = await sequence.controlledEvaluate(input);
    return wanted.map((i) => {
      const result = results[i];
      if (!result) throw new Error(`llama-oracle: no output at position ${i}`);
      return result.next;
    });
  };

  const topLogProbs = async (tokens: readonly number[], k = DEFAULT_TOP_K): Promise<TopLogProbs[]> => {
    checkFits(tokens.length);
    checkK(k);
    const greedy = await evaluateAt(tokens, { confidence: true, options: GREEDY });
    const top = await evaluateAt(tokens, { probabilities: true, options: topKOptions(k) });
    return top.map((next, i) => joinTop(next.probabilities, greedy[i].confidence));
  };

  return {
    vocabSize,

    tokenize(text, parseSpecial) {
      return Array.from(model.tokenize(text, parseSpecial), Number);
    },

    detokenize(ids, renderSpecial) {
      return model.detokenize(ids.map(asToken), renderSpecial);
    },

    async logProbs(tokens, positions) {
      checkFits(tokens.length);
      const outputs = await evaluateAt(tokens, { probabilities: true, options: GREEDY }, positions);
      return outputs.map((next) => fullLogProbs(next.probabilities, vocabSize));
    },

    topLogProbs,

    async greedy(promptTokens, n, k = DEFAULT_TOP_K) {
      checkFits(promptTokens.length + n);
      checkK(k);
      // pass 1: greedy decoding after the prompt (the generator keeps one sampler: fast steps)
      await sequence.clearHistory();
      const tokens: number[] = [];
      if (n > 0) {
        for await (const token of sequence.evaluate(promptTokens.map(asToken), { ...GREEDY, yieldEogToken: true })) {
          tokens.push(token);
          if (tokens.length === n) break;
        }
      }
      // pass 2: the distributions behind each choice, from the whole sequence in one batch
      const all = [...promptTokens, ...tokens];
      const top = n > 0 ? (await topLogProbs(all.slice(0, -1), k)).slice(promptTokens.length - 1) : [];
      return { tokens, top };
    },

    async close() {
      await context.dispose();
      await model.dispose();
    },
  };
}

type GenerateNext = NonNullable<Extract<ControlledEvaluateInputItem, readonly unknown[]>[1]['generateNext']>;

// node-llama-cpp brands token ids with a type; the runtime value is a plain number.
function asToken(id: number): Token {
  if (!Number.isInteger(id) || id < 0) throw new Error(`llama-oracle: bad token id ${id}`);
  return id as Token;
}

function readVocabSize(metadata: unknown): number {
  const tokens = (metadata as { tokenizer?: { ggml?: { tokens?: unknown } } }).tokenizer?.ggml?.tokens;
  if (!Array.isArray(tokens)) throw new Error('llama-oracle: the GGUF has no tokenizer.ggml.tokens');
  return tokens.length;
}

export interface TopComparison {
  /** Positions compared. */
  positions: number;
  /** Fraction of positions where both put the same token first. */
  top1Agreement: number;
  /** Mean and max |ln p_candidate - ln p_reference| over the reference's top n tokens. */
  meanAbsDiff: number;
  maxAbsDiff: number;
  /** Reference top-n tokens absent from the candidate's list (counted with a lower bound of their difference). */
  missing: number;
}

/**
 * How far `candidate` is from `reference`, position by position, on the reference's `topN` most
 * likely tokens. A token missing from the candidate's list has ln p at most the candidate's last
 * entry: it counts with that lower bound and in `missing`.
 */
export function compareTop(reference: readonly TopLogProbs[], candidate: readonly TopLogProbs[], topN = 8): TopComparison {
  if (reference.length !== candidate.length) {
    throw new Error(`compareTop: ${reference.length} reference positions, ${candidate.length} candidate positions`);
  }
  let agree = 0;
  let sum = 0;
  let max = 0;
  let count = 0;
  let missing = 0;
  for (let i = 0; i < reference.length; i++) {
    const ref = reference[i];
    const cand = candidate[i];
    if (ref.ids[0] === cand.ids[0]) agree++;
    const lookup = new Map<number, number>();
    cand.ids.forEach((id, j) => lookup.set(id, cand.logProbs[j]));
    const floor = cand.logProbs[cand.logProbs.length - 1];
    for (let j = 0; j < Math.min(topN, ref.ids.length); j++) {
      let value = lookup.get(ref.ids[j]);
      if (value === undefined) {
        missing++;
        value = Math.min(floor, ref.logProbs[j]);
      }
      const diff = Math.abs(value - ref.logProbs[j]);
      sum += diff;
      max = Math.max(max, diff);
      count++;
    }
  }
  return {
    positions: reference.length,
    top1Agreement: reference.length > 0 ? agree / reference.length : 1,
    meanAbsDiff: count > 0 ? sum / count : 0,
    maxAbsDiff: max,
    missing,
  };
}

/**
 * Relative distance of two full log-softmax vectors: the RMS of their difference after removing
 * each one's mean (ln p and logits differ by a constant per position), over the reference's
 * standard deviation. 0 for the same logits; about sqrt(2) for unrelated ones. Tokens that
 * underflowed to -Infinity in either are left out.
 */
export function logitDistance(reference: Float32Array, candidate: Float32Array): number {
  if (reference.length !== candidate.length) throw new Error('logitDistance: lengths differ');
  let n = 0;
  let meanRef = 0;
  let meanCand = 0;
  for (let i = 0; i < reference.length; i++) {
    if (!Number.isFinite(reference[i]) || !Number.isFinite(candidate[i])) continue;
    meanRef += reference[i];
    meanCand += candidate[i];
    n++;
  }
  if (n === 0) return NaN;
  meanRef /= n;
  meanCand /= n;
  let diffSquares = 0;
  let refSquares = 0;
  for (let i = 0; i < reference.length; i++) {
    if (!Number.isFinite(reference[i]) || !Number.isFinite(candidate[i])) continue;
    const r = reference[i] - meanRef;
    const d = candidate[i] - meanCand - r;
    diffSquares += d * d;
    refSquares += r * r;
  }
  return Math.sqrt(diffSquares / refSquares);
}

/** ln softmax of a row of logits, in f64 (our side of a comparison with llama.cpp's log-probabilities). */
export function logSoftmax(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of row) if (v > max) max = v;
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(row, (v) => v - lse);
}
