// llama.cpp native (CPU, prebuilt node-llama-cpp addon): the reference the other engines are
// compared against. Runs inside a bench child process so that its peak RSS is its own.
import { getLlama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import type { EngineRunOptions, EngineSession } from './types.ts';

export async function openNative(options: EngineRunOptions): Promise<EngineSession> {
  const { modelPath, threads, promptTokens, decodeSteps } = options;
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: threads });

  const loadStart = performance.now();
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: Math.max(512, promptTokens.length + decodeSteps + 16),
    // The whole prompt in one batch, as the other engines prefill it.
    batchSize: Math.max(512, promptTokens.length),
    threads: { ideal: threads, min: threads },
    sequences: 1,
  });
  const sequence = context.getSequence();
  const loadSeconds = (performance.now() - loadStart) / 1000;

  // Warm-up (not timed): the first evaluation allocates compute buffers.
  await sequence.evaluateWithoutGeneratingNewTokens(promptTokens.slice(0, 8) as Token[]);

  return {
    loadSeconds,
    async round() {
      await sequence.clearHistory();
      const promptStart = performance.now();
      await sequence.evaluateWithoutGeneratingNewTokens(promptTokens as Token[]);
      const promptSeconds = (performance.now() - promptStart) / 1000;

      // Each generated token is one single-token forward pass. Feeding the last prompt token
      // again starts the chain; what it generates does not matter for timing.
      const decodeStart = performance.now();
      let steps = 0;
      const lastToken = promptTokens[promptTokens.length - 1] as Token;
      for await (const token of sequence.evaluate([lastToken], { temperature: 0 })) {
        void token;
        if (++steps >= decodeSteps) break;
      }
      const decodeSeconds = (performance.now() - decodeStart) / 1000;
      return { promptTokensPerSecond: promptTokens.length / promptSeconds, decodeTokensPerSecond: steps / decodeSeconds };
    },
    async close() {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
      return { peakBytes: 0 };
    },
  };
}
