// llama.cpp native (CPU, prebuilt node-llama-cpp addon): the reference the other engines are
// compared against. Runs inside a bench child process so that its peak RSS is its own.
import { getLlama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import { benchContextLength, type EngineRunOptions, type ChildEngineSession } from './types.ts';

export async function openNative(options: EngineRunOptions): Promise<ChildEngineSession> {
  const { modelPath, threads, promptTokens, decodeSteps, depth } = options;
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: threads });

  const loadStart = performance.now();
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: benchContextLength(options, 16),
    // The whole prompt in one batch, as the other engines prefill it.
    batchSize: Math.max(512, promptTokens.length),
    threads: { ideal: threads, min: threads },
    sequences: 1,
    // A quantized V cache needs flash attention in llama.cpp.
    ...(options.kvCache === 'q8_0' ? { flashAttention: true, experimentalKvCacheKeyType: 'Q8_0' as const, experimentalKvCacheValueType: 'Q8_0' as const } : {}),
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
      // To the depth (untimed): the prompt's tokens again, a batch at a time.
      for (let filled = promptTokens.length; filled < depth; ) {
        const take = Math.min(depth - filled, promptTokens.length);
        await sequence.evaluateWithoutGeneratingNewTokens(promptTokens.slice(0, take) as Token[]);
        filled += take;
      }

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
