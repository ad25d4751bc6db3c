// Shared shapes of the benchmark: what every engine is given and what it reports back.

export type EngineName = 'native' | 'wllama' | 'qwen-node' | 'qwen-browser';

export const ENGINE_NAMES: readonly EngineName[] = ['native', 'wllama', 'qwen-node', 'qwen-browser'];

/** Where each engine runs, for the table. */
export const ENGINE_WHERE: Readonly<Record<EngineName, string>> = {
  native: 'node addon',
  wllama: 'chromium',
  'qwen-node': 'node',
  'qwen-browser': 'chromium worker',
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
   * Timed rounds (prefill from an empty cache, then the decode steps) after one load; the best
   * round's speeds are reported, so a passing slowdown of a shared machine hurts no engine.
   */
  repeats: number;
  /**
   * Token ids whose bytes are not valid UTF-8 on their own. Random weights pick them freely and
   * some engines' text plumbing breaks on them; those engines ban them from sampling.
   */
  bannedTokens: number[];
}

export interface BenchResult {
  /** From "start loading" to "ready to prefill": file or URL to a usable model and context. */
  loadSeconds: number;
  /** Prefill speed over the prompt (promptTokens.length tokens). */
  promptTokensPerSecond: number;
  /** Greedy one-token steps per second. */
  decodeTokensPerSecond: number;
  /** Peak resident memory of the engine's process (the renderer for browser engines). */
  peakBytes: number;
  note?: string;
}

/** Best prompt and decode speed (tok/s) over `repeats` rounds of `round`. */
export async function bestOfRounds(
  repeats: number,
  round: () => Promise<{ promptTokensPerSecond: number; decodeTokensPerSecond: number }>,
): Promise<{ promptTokensPerSecond: number; decodeTokensPerSecond: number }> {
  let best = { promptTokensPerSecond: 0, decodeTokensPerSecond: 0 };
  for (let i = 0; i < Math.max(1, repeats); i++) {
    const r = await round();
    best = {
      promptTokensPerSecond: Math.max(best.promptTokensPerSecond, r.promptTokensPerSecond),
      decodeTokensPerSecond: Math.max(best.decodeTokensPerSecond, r.decodeTokensPerSecond),
    };
  }
  return best;
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

/** The line a bench child process prints on stdout: a prefix, then JSON. */
export const CHILD_RESULT_PREFIX = 'BENCH_RESULT ';
export const CHILD_ERROR_PREFIX = 'BENCH_ERROR ';

export interface ChildError {
  message: string;
  notYetAvailable: boolean;
}
