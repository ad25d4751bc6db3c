// Shared shapes of the benchmark: what every engine is given and what it reports back.

export type EngineName = 'native' | 'wllama' | 'qwen-node' | 'qwen-browser' | 'qwen-browser-plain' | 'qwen-browser64' | 'qwen-firefox' | 'qwen-webkit';

/**
 * qwen-browser64: qwen-browser on its memory64 kernels (what contexts past 4 GiB run on), to price
 * them; qwen-firefox and qwen-webkit: the same page and worker in Firefox ESR and WebKitGTK.
 */
export const ENGINE_NAMES: readonly EngineName[] = ['native', 'wllama', 'qwen-node', 'qwen-browser', 'qwen-browser-plain', 'qwen-browser64', 'qwen-firefox', 'qwen-webkit'];
/** What runs unless --engines says otherwise. */
export const DEFAULT_ENGINES: readonly EngineName[] = ['native', 'wllama', 'qwen-node', 'qwen-browser'];

/** Where each engine runs, for the table. */
export const ENGINE_WHERE: Readonly<Record<EngineName, string>> = {
  native: 'node addon',
  wllama: 'chromium',
  'qwen-node': 'node',
  'qwen-browser': 'chromium worker',
  'qwen-browser-plain': 'chromium worker, no prompt lookup',
  'qwen-browser64': 'chromium worker, memory64',
  'qwen-firefox': 'firefox worker',
  'qwen-webkit': 'webkit worker',
};

/** One engine run: one model file, one thread count. */
export interface EngineRunOptions {
  /** Absolute path of the GGUF file. */
  modelPath: string;
  threads: number;
  /** The prompt as token ids (engines that take ids prefill exactly these). */
  promptTokens: number[];
  /** The same prompt as text (engines that only take text, e.g. wllama). */
  promptText: string;
  /** Greedy decode steps after the prompt. */
  decodeSteps: number;
  /**
   * --task rewrite|free: the answer (decodeSteps + 1 tokens) that qwen-web's browser engines replay
   * as if their model had picked it, with prompt-lookup decoding (qwen-browser) or without
   * (qwen-browser-plain); the other engines decode their own greedy tokens (the speed is the same).
   */
  answerTokens?: number[];
  /**
   * Tokens in the context when the decode starts (0: the prompt's). Decode time depends on how
   * many rows the KV cache holds, not on their values: qwen-web fills its cache with copies of
   * the prompt's rows (tests/support/fill-cache.ts); llama.cpp evaluates filler tokens. Neither is timed.
   */
  depth: number;
  /** KV cache type of every engine that has the choice ('q8_0': llama.cpp's --cache-type-k/v q8_0). */
  kvCache: 'f16' | 'q8_0';
  /**
   * Token ids whose bytes are not valid UTF-8 on their own. Random weights pick them freely and
   * some engines' text plumbing breaks on them; those engines ban them from sampling.
   */
  bannedTokens: number[];
}

/** The context an engine allocates: the prompt or the depth, and the decode. */
export function benchContextLength(options: EngineRunOptions, spare: number): number {
  return Math.max(512, Math.max(options.promptTokens.length, options.depth) + options.decodeSteps + spare);
}

/** One timed round: a prefill of the prompt from an empty cache, then the decode steps. */
export interface RoundSpeeds {
  /** Prefill speed over the prompt (promptTokens.length tokens). */
  promptTokensPerSecond: number;
  /** Greedy one-token steps per second. */
  decodeTokensPerSecond: number;
}

/**
 * A loaded engine. The bench times rounds of every engine of one model and thread count in
 * turn, so that each engine's rounds see the same state of a shared machine (its speed moves
 * 10-20 % over minutes) and the ratios compare like with like.
 */
export interface EngineSession {
  /** From "start loading" to "ready to prefill": file or URL to a usable model and context. */
  loadSeconds: number;
  /** Timed rounds this engine can give, if limited (wllama: 1, see the bench README). */
  maxRounds?: number;
  round(): Promise<RoundSpeeds>;
  /** CPU time its processes have used so far (the renderer, GPU and browser processes for a
   * browser engine), seconds: read around other engines' rounds, what it burns while idle. */
  cpuSeconds(): Promise<number>;
  /** Unloads the model and frees the process, page or worker it ran in. */
  close(): Promise<SessionEnd>;
}

/** An engine inside a bench child process: the parent measures the child's CPU itself. */
export type ChildEngineSession = Omit<EngineSession, 'cpuSeconds'>;

/** One timed round as the bench records it. */
export interface RoundRecord extends RoundSpeeds {
  /** The 1-minute load average just before the round. */
  loadAverage: number;
}

export interface SessionEnd {
  /** Peak resident memory of the engine's process (the renderer for browser engines). */
  peakBytes: number;
  note?: string;
}

/** A row of the table: one engine on one model at one thread count. */
export interface BenchResult extends RoundSpeeds, SessionEnd {
  loadSeconds: number;
  /** Every round, in the order run; the speeds above are their medians. */
  rounds: RoundRecord[];
  /** CPU this engine burned while the other engines ran their rounds, as a share of one core
   * over those rounds' wall time (threads that spin while idle steal the others' cores). */
  idleCpuShare?: number;
}

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The median prompt and decode speeds over some rounds. */
export function medianOf(rounds: readonly RoundSpeeds[]): RoundSpeeds {
  return {
    promptTokensPerSecond: median(rounds.map((r) => r.promptTokensPerSecond)),
    decodeTokensPerSecond: median(rounds.map((r) => r.decodeTokensPerSecond)),
  };
}

/** Thrown by engines that are not wired up yet; the table shows "not yet available". */
export class NotYetAvailableError extends Error {
  override name = 'NotYetAvailableError';
}

export function isNotYetAvailable(error: unknown): boolean {
  if (error instanceof NotYetAvailableError) return true;
  const message = error instanceof Error ? error.message : String(error);
  return /not yet available/i.test(message);
}

/**
 * A bench child process reads commands as lines on stdin (first the EngineRunOptions as JSON,
 * then `round` or `close`) and answers each with one line on stdout: a prefix, then JSON.
 */
export const CHILD_REPLY_PREFIX = 'BENCH_REPLY ';
export const CHILD_ERROR_PREFIX = 'BENCH_ERROR ';

export interface ChildError {
  message: string;
  notYetAvailable: boolean;
}
