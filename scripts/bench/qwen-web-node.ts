// qwen-web's own runtime in Node (wasm kernels on worker_threads): the seam the benchmark calls.
// Runs inside a bench child process; the child replaces `peakBytes` with its own maxRSS.
import { NotYetAvailableError, type BenchResult } from './types.ts';

export interface QwenWebNodeOptions {
  modelPath: string;
  threads: number;
  promptTokens: number[];
  decodeSteps: number;
}

/**
 * Load the model from `modelPath` with `threads` threads (loadSeconds: until ready to prefill),
 * prefill exactly `promptTokens` (promptTokensPerSecond), then run `decodeSteps` greedy
 * single-token steps (decodeTokensPerSecond).
 */
export async function runQwenWebNode(options: QwenWebNodeOptions): Promise<BenchResult> {
  // TODO(lead): wire in the runtime (src/model + src/engine) once it exists.
  void options;
  throw new NotYetAvailableError('qwen-web in Node: not yet available (scripts/bench/qwen-web-node.ts)');
}
