// wllama (llama.cpp compiled to wasm, @wllama/wllama 3.13) in Chromium, CPU only: the browser
// peer. Its load time includes fetching the model from the local server into wllama's cache.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBrowserBench } from './browser.ts';
import type { BenchResult, EngineRunOptions } from './types.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

/** What scripts/bench/wllama.html's runBench resolves to. */
interface WllamaPageResult {
  loadSeconds: number;
  threads: number;
  multithread: boolean;
  timings: {
    prompt_n: number;
    prompt_ms: number;
    predicted_n: number;
    predicted_ms: number;
  };
}

function wllamaEsmDir(): string {
  const require = createRequire(import.meta.url);
  // The package exports './*', so its package.json resolves and sits next to esm/.
  return join(dirname(require.resolve('@wllama/wllama/package.json')), 'esm');
}

export async function runWllama(
  options: EngineRunOptions & { timeoutMs: number; log?: (line: string) => void },
): Promise<BenchResult> {
  const esm = wllamaEsmDir();
  const outcome = await runBrowserBench<WllamaPageResult>({
    pagePath: join(HERE, 'wllama.html'),
    modelPath: options.modelPath,
    files: {
      '/wllama/index.js': join(esm, 'index.js'),
      '/wllama/wasm/wllama.wasm': join(esm, 'wasm', 'wllama.wasm'),
    },
    params: {
      threads: options.threads,
      promptText: options.promptText,
      decodeSteps: options.decodeSteps,
      bannedTokens: options.bannedTokens,
      contextSize: Math.max(512, options.promptTokens.length + options.decodeSteps + 64),
    },
    timeoutMs: options.timeoutMs,
    log: options.log,
  });
  const { value } = outcome;
  const { timings } = value;
  const notes: string[] = [];
  if (timings.prompt_n !== options.promptTokens.length) notes.push(`prompt was ${timings.prompt_n} tokens`);
  if (timings.predicted_n !== options.decodeSteps) notes.push(`decoded ${timings.predicted_n} tokens`);
  if (value.threads !== options.threads || value.multithread !== options.threads > 1) {
    notes.push(`ran ${value.threads} thread(s), multithread=${value.multithread}`);
  }
  return {
    loadSeconds: value.loadSeconds,
    promptTokensPerSecond: timings.prompt_n / (timings.prompt_ms / 1000),
    decodeTokensPerSecond: timings.predicted_n / (timings.predicted_ms / 1000),
    peakBytes: outcome.rendererPeakBytes,
    note: notes.length > 0 ? notes.join('; ') : undefined,
  };
}
