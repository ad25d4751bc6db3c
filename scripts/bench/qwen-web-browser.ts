// qwen-web's own runtime in a Chromium Worker: the seam the benchmark calls. The harness is
// complete; what is missing is the page's side (scripts/bench/qwen-web.html), which throws
// "not yet available" until the runtime exists.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBrowserBench } from './browser.ts';
import type { BenchResult, EngineRunOptions } from './types.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

/** What scripts/bench/qwen-web.html's runBench must resolve to. */
export interface QwenWebPageResult {
  loadSeconds: number;
  promptTokensPerSecond: number;
  decodeTokensPerSecond: number;
  note?: string;
}

export async function runQwenWebBrowser(
  options: EngineRunOptions & { timeoutMs: number; log?: (line: string) => void },
): Promise<BenchResult> {
  const outcome = await runBrowserBench<QwenWebPageResult>({
    pagePath: join(HERE, 'qwen-web.html'),
    modelPath: options.modelPath,
    // TODO(lead): serve the built runtime here, e.g. '/qwen-web/worker.js' → a vite build of
    // workers/…, and '/qwen-web/qwen-simd128.wasm' → wasm/build/qwen-simd128.wasm.
    files: {},
    params: {
      threads: options.threads,
      promptTokens: options.promptTokens,
      decodeSteps: options.decodeSteps,
    },
    timeoutMs: options.timeoutMs,
    log: options.log,
  });
  return { ...outcome.value, peakBytes: outcome.rendererPeakBytes };
}
