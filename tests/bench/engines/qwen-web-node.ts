// qwen-web's own runtime in Node (wasm kernels on worker_threads): the seam the benchmark calls.
// Runs inside a bench child process, which reports that process's maxRSS as the peak.
import { NodeFileSource } from '../../../src/gguf/node-file-source.ts';
import { argmax } from '../../../src/engine/sampler.ts';
import { Qwen3Model } from '../../../src/model/qwen3.ts';
import { fillCacheTo } from '../../support/fill-cache.ts';
import { benchContextLength, type EngineRunOptions, type ChildEngineSession } from './types.ts';

/**
 * Loads the model from `modelPath` with `threads` threads (loadSeconds: until ready to prefill);
 * each round prefills exactly `promptTokens` from position 0, then runs `decodeSteps` greedy
 * single-token steps.
 */
export async function openQwenWebNode(options: EngineRunOptions): Promise<ChildEngineSession> {
  const { modelPath, threads, promptTokens, decodeSteps, depth } = options;
  const loadStart = performance.now();
  const source = await NodeFileSource.open(modelPath);
  let model: Qwen3Model;
  try {
    model = await Qwen3Model.load(source, {
      threads,
      contextLength: benchContextLength(options, 16),
      maxBatch: promptTokens.length,
      kvCache: options.kvCache,
    });
  } catch (error) {
    await source.close();
    throw error;
  }
  const loadSeconds = (performance.now() - loadStart) / 1000;
  // Untimed warm-up step (first-touch of scratch memory, JIT).
  model.forward([promptTokens[0]], 0, false);
  return {
    loadSeconds,
    async round() {
      const prefillStart = performance.now();
      let logits = model.forward(promptTokens, 0, false);
      const prefillSeconds = (performance.now() - prefillStart) / 1000;
      // To the depth (untimed): the cache filled with copies of the prompt's rows.
      fillCacheTo(model, depth);
      const decodeStart = performance.now();
      for (let step = 0; step < decodeSteps; step++) logits = model.decode(argmax(logits));
      const decodeSeconds = (performance.now() - decodeStart) / 1000;
      return { promptTokensPerSecond: promptTokens.length / prefillSeconds, decodeTokensPerSecond: decodeSteps / decodeSeconds };
    },
    async close() {
      const note = `${model.kernels.build}, ${model.kernels.threads} threads, ${model.kvCache} cache`;
      model.dispose();
      await source.close();
      return { peakBytes: 0, note };
    },
  };
}
