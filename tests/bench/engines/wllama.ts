// wllama (llama.cpp compiled to wasm, @wllama/wllama 3.13) in Chromium, CPU only: the browser
// peer (page: tests/bench/pages/wllama.html). Its load time includes fetching the model from the
// local server into wllama's cache.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBrowserBench } from '../browser.ts';
import { benchContextLength, NotYetAvailableError, type EngineRunOptions, type EngineSession } from './types.ts';

const PAGES = join(dirname(fileURLToPath(import.meta.url)), '..', 'pages');

/** What tests/bench/pages/wllama.html's bench.round resolves to: llama.cpp's own timings. */
interface WllamaTimings {
  prompt_n: number;
  prompt_ms: number;
  predicted_n: number;
  predicted_ms: number;
}

function wllamaEsmDir(): string {
  const require = createRequire(import.meta.url);
  // The package exports './*', so its package.json resolves and sits next to esm/.
  return join(dirname(require.resolve('@wllama/wllama/package.json')), 'esm');
}

export async function openWllama(
  options: EngineRunOptions & { timeoutMs: number; log?: (line: string) => void },
): Promise<EngineSession> {
  if (options.depth > 0 || options.kvCache !== 'f16') {
    throw new NotYetAvailableError('not yet available: --depth and --kv-cache are not wired for wllama');
  }
  const esm = wllamaEsmDir();
  const page = await openBrowserBench<{ loadSeconds: number; threads: number; multithread: boolean }>({
    pagePath: join(PAGES, 'wllama.html'),
    modelPath: options.modelPath,
    files: {
      '/wllama/index.js': join(esm, 'index.js'),
      '/wllama/wasm/wllama.wasm': join(esm, 'wasm', 'wllama.wasm'),
    },
    loadParams: {
      threads: options.threads,
      promptText: options.promptText,
      decodeSteps: options.decodeSteps,
      bannedTokens: options.bannedTokens,
      contextSize: benchContextLength(options, 64),
    },
    timeoutMs: options.timeoutMs,
    log: options.log,
  });
  const loaded = page.loaded;
  const notes = new Set<string>();
  if (loaded.threads !== options.threads || loaded.multithread !== options.threads > 1) {
    notes.add(`ran ${loaded.threads} thread(s), multithread=${loaded.multithread}`);
  }
  return {
    loadSeconds: loaded.loadSeconds,
    // One round: a second completion of the same prompt may reuse wllama's KV cache, and a
    // round of the 4B fixtures takes minutes.
    maxRounds: 1,
    cpuSeconds: () => page.cpuSeconds(),
    async round() {
      const timings = await page.round<WllamaTimings>();
      if (timings.prompt_n !== options.promptTokens.length) notes.add(`prompt was ${timings.prompt_n} tokens`);
      if (timings.predicted_n !== options.decodeSteps) notes.add(`decoded ${timings.predicted_n} tokens`);
      return {
        promptTokensPerSecond: timings.prompt_n / (timings.prompt_ms / 1000),
        decodeTokensPerSecond: timings.predicted_n / (timings.predicted_ms / 1000),
      };
    },
    async close() {
      const { peakBytes } = await page.close();
      return { peakBytes, note: notes.size > 0 ? [...notes].join('; ') : undefined };
    },
  };
}
