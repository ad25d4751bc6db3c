// qwen-web's own runtime in a browser Worker (Chromium; Firefox and WebKit for qwen-firefox and
// qwen-webkit): the seam the benchmark calls. The model worker (tests/support/model-worker.ts,
// its kernel workers and the wasm builds) is bundled by vite into
// .cache/bench/qwen-web/ and served under /qwen-web/ next to the page
// (tests/bench/pages/qwen-web.html); the page loads the model by URL (Range reads) in that worker,
// as an application would.
import { readdir } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import type { BrowserName } from '../../support/browsers.ts';
import { WORKER_OUTPUT } from '../../../vite.config.ts';
import { openBrowserBench } from '../browser.ts';
import { benchContextLength, type EngineRunOptions, type EngineSession, type RoundSpeeds } from './types.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..', '..');
const PAGES = join(HERE, '..', 'pages');
const OUT_DIR = join(ROOT, '.cache', 'bench', 'qwen-web');

/** Bundles the model worker (with its kernel worker and wasm assets) and returns URL path → file. */
async function buildWorker(): Promise<Record<string, string>> {
  await build({
    configFile: false,
    root: ROOT,
    logLevel: 'warn',
    // Relative asset URLs (new URL('./…', import.meta.url)), so the bundle works under /qwen-web/.
    base: './',
    worker: { format: 'es', rolldownOptions: { output: WORKER_OUTPUT } },
    build: {
      outDir: OUT_DIR,
      emptyOutDir: true,
      target: 'es2022',
      copyPublicDir: false,
      modulePreload: false,
      // Wasm must stay a separate file: inlining 2 builds as base64 would inflate the worker.
      assetsInlineLimit: 0,
      rollupOptions: {
        input: { 'model-worker': join(ROOT, 'tests', 'support', 'model-worker.ts') },
        // The model worker is this build's entry: split as the site's workers are.
        output: { entryFileNames: '[name].js', ...WORKER_OUTPUT },
      },
    },
  });
  const files: Record<string, string> = {};
  for (const entry of await readdir(OUT_DIR, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files[`/qwen-web/${relative(OUT_DIR, path).split(sep).join('/')}`] = path;
  }
  if (!files['/qwen-web/model-worker.js']) throw new Error(`vite build left no model-worker.js in ${OUT_DIR}`);
  return files;
}

export async function openQwenWebBrowser(
  options: EngineRunOptions & { addressing: 'wasm32' | 'memory64'; speculative: boolean; timeoutMs: number; log?: (line: string) => void; browser: BrowserName },
): Promise<EngineSession> {
  const page = await openBrowserBench<{ loadSeconds: number }>({
    browser: options.browser,
    pagePath: join(PAGES, 'qwen-web.html'),
    modelPath: options.modelPath,
    files: await buildWorker(),
    loadParams: {
      threads: options.threads,
      promptTokens: options.promptTokens,
      decodeSteps: options.decodeSteps,
      // As the wllama row: room for the prompt and the decode, no more (the KV cache is memory).
      contextLength: benchContextLength(options, 64),
      depth: options.depth,
      answerTokens: options.answerTokens,
      speculative: options.speculative,
      kvCache: options.kvCache,
      addressing: options.addressing,
    },
    timeoutMs: options.timeoutMs,
    log: options.log,
  });
  return {
    loadSeconds: page.loaded.loadSeconds,
    round: () => page.round<RoundSpeeds>(),
    cpuSeconds: () => page.cpuSeconds(),
    async close() {
      const { value, peakBytes } = await page.close<{ note: string }>();
      return { peakBytes, note: value.note };
    },
  };
}
