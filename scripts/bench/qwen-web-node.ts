// qwen-web's own runtime in Node (wasm kernels on worker_threads): the seam the benchmark calls.
// Runs inside a bench child process; the child replaces `peakBytes` with its own maxRSS.
import { NodeFileSource } from '../../src/gguf/node-file-source.ts';
import { argmax } from '../../src/engine/sampler.ts';
import { Qwen3Model } from '../../src/model/qwen3.ts';
import { bestOfRounds, type BenchResult } from './types.ts';

export interface QwenWebNodeOptions {
  modelPath: string;
  threads: number;
  promptTokens: number[];
  decodeSteps: number;
  repeats: number;
}

/**
 * Load the model from `modelPath` with `threads` threads (loadSeconds: until ready to prefill),
 * prefill exactly `promptTokens` (promptTokensPerSecond), then run `decodeSteps` greedy
 * single-token steps (decodeTokensPerSecond).
 */
export async function runQwenWebNode(options: QwenWebNodeOptions): Promise<BenchResult> {
  const { modelPath, threads, promptTokens, decodeSteps, repeats } = options;
  const loadStart = performance.now();
  const source = await NodeFileSource.open(modelPath);
  const model = await Qwen3Model.load(source, {
    threads,
    contextLength: promptTokens.length + decodeSteps + 16,
    maxBatch: promptTokens.length,
  });
  const loadSeconds = (performance.now() - loadStart) / 1000;
  try {
    // Untimed warm-up step (first-touch of scratch memory, JIT), then start from an empty cache.
    model.forward([promptTokens[0]], 0, false);
    const speeds = await bestOfRounds(repeats, async () => {
      const prefillStart = performance.now();
      let logits = model.forward(promptTokens, 0, false);
      const prefillSeconds = (performance.now() - prefillStart) / 1000;
      const decodeStart = performance.now();
      for (let step = 0; step < decodeSteps; step++) logits = model.decode(argmax(logits));
      const decodeSeconds = (performance.now() - decodeStart) / 1000;
      return { promptTokensPerSecond: promptTokens.length / prefillSeconds, decodeTokensPerSecond: decodeSteps / decodeSeconds };
    });
    return {
      loadSeconds,
      ...speeds,
      peakBytes: 0,
      note: `${model.kernels.build}, ${model.kernels.threads} threads`,
    };
  } finally {
    model.dispose();
    await source.close();
  }
}
