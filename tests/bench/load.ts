// How long "load" takes until "ready" for the 4B Q4_0 fixture (2.37 GB) in headless Chromium:
// from IndexedDB (the every-visit path: ModelStore chunks → wasm memory) and from its URL
// (range reads from a local static server, the first-visit path without the download). Also
// times the download into IndexedDB itself. Goal from the storage issue: ≤ 3 s per 2.3 GB from
// IndexedDB.
//
//   npm run bench:load [-- --threads 2 --runs 2 --fixture qwen3-4b-q4_0]
//
// The page is tests/bench/pages/load.html (load-page.ts). Each load runs in a fresh
// tests/support/model-worker.ts (terminated afterwards, so only one 2.4 GB wasm memory exists at
// a time). "load → ready" is measured on the page from posting the load request to the 'loaded'
// reply; the worker's own figure (which excludes worker start-up) is shown beside it. The model
// is deleted from IndexedDB and the profile removed at the end.
import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { startStaticServer } from '../support/static-server.ts';
import { withBenchBrowser } from './browser.ts';
import type { DownloadResult, LoadRequest, LoadResult } from './pages/load-page.ts';

const { values: args } = parseArgs({
  options: {
    fixture: { type: 'string', default: 'qwen3-4b-q4_0' },
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '2' },
  },
});
const threads = Number(args.threads);
const runs = Number(args.runs);

const path = await ensureFixture(args.fixture!);
const size = (await stat(path)).size;
const files = await startStaticServer({ files: { '/model.gguf': path } });
const rows: string[][] = [];
const gb = size / 1e9;
try {
  await withBenchBrowser({}, async (browser) => {
    const page = await browser.open('load.html');
    const url = `${files.url}/model.gguf`;

    console.log(`downloading ${args.fixture} (${gb.toFixed(2)} GB) into IndexedDB…`);
    const download = await page.call<DownloadResult>('download', url);
    if (!download.complete) throw new Error('download did not complete');
    rows.push(['download → IndexedDB (local HTTP)', (download.ms / 1000).toFixed(2), '', (size / 1e6 / (download.ms / 1000)).toFixed(0)]);

    const load = async (label: string, source: LoadRequest['source']): Promise<void> => {
      let result: LoadResult;
      try {
        result = await page.call<LoadResult>('load', { source, threads } satisfies LoadRequest);
      } catch (error) {
        throw new Error(`${label}: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (result.fileBytes !== size) throw new Error(`${label}: loaded ${result.fileBytes} bytes, file has ${size}`);
      rows.push([`${label} (${result.build}, ${result.threads} thr)`, (result.ms / 1000).toFixed(2), (result.loadMs / 1000).toFixed(2), (size / 1e6 / (result.ms / 1000)).toFixed(0)]);
      console.log(`${label}: ${(result.ms / 1000).toFixed(2)} s`);
    };
    for (let run = 1; run <= runs; run++) {
      await load(`IndexedDB, run ${run}`, { kind: 'cached', id: download.id, store: 'bench' });
      await load(`URL (Range reads), run ${run}`, { kind: 'url', url, cache: false });
    }
    await page.call('remove', download.id);
  });
} finally {
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
