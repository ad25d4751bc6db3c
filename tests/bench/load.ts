// How long "load" takes until "ready" for the 4B Q4_0 fixture (2.37 GB) in headless Chromium:
// from IndexedDB (the every-visit path: ModelStore chunks → wasm memory) and from its URL
// (range reads from a local static server, the first-visit path without the download). Also
// times the download into IndexedDB itself. Goal from the storage issue: ≤ 3 s per 2.3 GB from
// IndexedDB.
//
//   npm run bench:load [-- --threads 2 --runs 2 --fixture qwen3-4b-q4_0]
//
// Each load runs in a fresh tests/support/model-worker.ts (terminated afterwards, so only one 2.4 GB
// wasm memory exists at a time). "load → ready" is measured on the page from posting the load
// request to the 'loaded' reply; the worker's own figure (which excludes worker start-up) is
// shown beside it. The model is deleted from IndexedDB and the profile removed at the end.
import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { launchChromium } from '../support/chromium.ts';
import { startStaticServer } from '../support/static-server.ts';
import { startVitePages } from '../support/vite-pages.ts';

const { values: args } = parseArgs({
  options: {
    fixture: { type: 'string', default: 'qwen3-4b-q4_0' },
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '2' },
  },
});
const threads = Number(args.threads);
const runs = Number(args.runs);

const PAGE = `<!doctype html><meta charset="utf-8"><title>bench-load</title><link rel="icon" href="data:,">
<script type="module">
  import { ModelStore } from '/src/storage/model-store.ts';
  window.download = async (url) => {
    const store = ModelStore.open('bench');
    const started = performance.now();
    const model = await store.download(url, { retries: 0 });
    return { ms: performance.now() - started, model };
  };
  window.remove = (id) => ModelStore.open('bench').delete(id);
  window.load = (source, threads) => new Promise((resolve) => {
    const worker = new Worker('/tests/support/model-worker.ts', { type: 'module' });
    const started = performance.now();
    worker.onmessage = (e) => {
      const m = e.data;
      if (m.type === 'progress') return;
      const ms = performance.now() - started;
      worker.terminate();
      resolve(m.type === 'loaded' ? { ms, loadMs: m.loadMs, build: m.build, threads: m.threads, fileBytes: m.fileBytes } : { error: m.error });
    };
    worker.postMessage({ type: 'load', id: 1, source, threads, contextLength: 4096 });
  });
</script>`;

interface LoadResult {
  ms: number;
  loadMs: number;
  build: string;
  threads: number;
  fileBytes: number;
  error?: { name: string; message: string };
}

const path = await ensureFixture(args.fixture!);
const size = (await stat(path)).size;
const files = await startStaticServer({ files: { '/model.gguf': path } });
const pages = await startVitePages({ '/__bench-load/index.html': { type: 'text/html', body: PAGE } });
const chromium = await launchChromium();
const rows: string[][] = [];
const gb = size / 1e9;
try {
  const page = await chromium.newPage();
  await page.goto(`${pages.url}/__bench-load/index.html`);
  await page.waitForFunction(() => typeof (window as unknown as { load?: unknown }).load === 'function');
  const url = `${files.url}/model.gguf`;

  console.log(`downloading ${args.fixture} (${gb.toFixed(2)} GB) into IndexedDB…`);
  const download = await page.evaluate((u) => (window as unknown as { download(u: string): Promise<{ ms: number; model: { id: string; complete: boolean } }> }).download(u), url);
  if (!download.model.complete) throw new Error('download did not complete');
  rows.push(['download → IndexedDB (local HTTP)', (download.ms / 1000).toFixed(2), '', (size / 1e6 / (download.ms / 1000)).toFixed(0)]);

  const load = async (label: string, source: Record<string, unknown>): Promise<void> => {
    const result = await page.evaluate(([s, t]) =>
      (window as unknown as { load(s: unknown, t: number): Promise<LoadResult> }).load(s, t), [source, threads] as const);
    if (result.error) throw new Error(`${label}: ${result.error.name}: ${result.error.message}`);
    if (result.fileBytes !== size) throw new Error(`${label}: loaded ${result.fileBytes} bytes, file has ${size}`);
    rows.push([`${label} (${result.build}, ${result.threads} thr)`, (result.ms / 1000).toFixed(2), (result.loadMs / 1000).toFixed(2), (size / 1e6 / (result.ms / 1000)).toFixed(0)]);
    console.log(`${label}: ${(result.ms / 1000).toFixed(2)} s`);
  };
  for (let run = 1; run <= runs; run++) {
    await load(`IndexedDB, run ${run}`, { kind: 'cached', id: download.model.id, store: 'bench' });
    await load(`URL (Range reads), run ${run}`, { kind: 'url', url, cache: false });
  }
  await page.evaluate((id) => (window as unknown as { remove(id: string): Promise<void> }).remove(id), download.model.id);
} finally {
  await chromium.close();
  await pages.server.close();
  await files.close();
}

const header = ['path', 'load → ready (s)', 'in worker (s)', 'MB/s'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
console.log(`\n${args.fixture}: ${size} bytes (${gb.toFixed(2)} GB), Chromium headless, ${threads} threads`);
console.log(line(header));
console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
for (const row of rows) console.log(line(row));
console.log(`goal: ≤ 3 s per 2.3 GB from IndexedDB (≈ ${(3 * gb / 2.3).toFixed(2)} s for this file)`);
