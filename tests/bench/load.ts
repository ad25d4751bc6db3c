// How long "load" takes until "ready" for the 4B Q4_0 fixture (2.37 GB) in headless Chromium,
// and where that time goes: from IndexedDB (the every-visit path: ModelStore chunks → wasm
// memory) and from its URL (range reads from a local static server, the first-visit path without
// the download). Also times the download into IndexedDB itself, and, as the reference of what the
// machine gives, a raw read of the same stored bytes (no wasm, no model).
//
//   npm run bench:load [-- --threads 2 --runs 2 --fixture qwen3-4b-q4_0 --cold --json out.json]
//
// Each load runs in a fresh tests/support/model-worker.ts (terminated afterwards, so only one
// 2.4 GB wasm memory exists at a time) that also builds the tokenizer and chat template, as the
// engine does before it is ready. "load → ready" is measured on the page from posting the load
// request to the 'loaded' reply; its parts come from the worker (Qwen3Model.load's `timings`):
//   read    reading weight bytes from the source (the copy excepted)
//   copy    copying stream chunks into wasm memory
//   touch   the first write to each fresh wasm page (the OS maps and zeroes it)
//   repack  rewriting matrices into the kernels' layouts
//   other   the rest: worker and kernel start, GGUF header, tokenizer and template, messages
//           (three of them shown apart: header, kernels, tokenizer)
// Peak is the renderer's VmHWM over the load (reset before it through /proc/PID/clear_refs).
// Then, through the engine the app uses (the tabs' shared engine): the first tab's load → ready, and
// a second tab's time from opening to ready, which joins the first tab's engine instead of loading.
// --cold drops the page cache (/proc/sys/vm/drop_caches, root only) before extra IndexedDB runs.
// The model is deleted from IndexedDB and the profile removed at the end.
import { writeFileSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { rendererPeakBytes, type LaunchedChromium } from '../support/chromium.ts';
import { startStaticServer } from '../support/static-server.ts';
import { withBenchBrowser } from './browser.ts';
import type { DownloadResult, EngineLoadResult, LoadRequest, LoadResult } from './pages/load-page.ts';

const { values: args } = parseArgs({
  options: {
    fixture: { type: 'string', default: 'qwen3-4b-q4_0' },
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '2' },
    cold: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const threads = Number(args.threads);
const runs = Number(args.runs);

/** One row of the table and of --json. */
interface LoadRow {
  path: string;
  seconds: number;
  bytes: number;
  peakMiB?: number;
  parts?: { read: number; copy: number; touch: number; repack: number; other: number };
  /** The tokenizer and chat template's share of `other`. */
  tokenizerSeconds?: number;
  /** The GGUF header's share of `other` (read and checked before any weight). */
  headerSeconds?: number;
  /** The kernels' start (module compile and probe, memory, threads): their share of `other`. */
  kernelsSeconds?: number;
}

const path = await ensureFixture(args.fixture!);
const size = (await stat(path)).size;
const files = await startStaticServer({ files: { '/model.gguf': path } });
const rows: LoadRow[] = [];
const gb = size / 1e9;

async function renderers(chromium: LaunchedChromium): Promise<number[]> {
  return (await chromium.processMemory()).filter((p) => p.type === 'renderer').map((p) => p.pid);
}

/** Resets the renderers' VmHWM (peak RSS) so the next reading covers what follows. */
async function resetPeaks(chromium: LaunchedChromium): Promise<void> {
  for (const pid of await renderers(chromium)) await writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => undefined);
}

async function peakMiB(chromium: LaunchedChromium): Promise<number> {
  return rendererPeakBytes(await chromium.processMemory()) / 2 ** 20;
}

async function dropPageCache(): Promise<boolean> {
  try {
    await writeFile('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

try {
  await withBenchBrowser({}, async (browser) => {
    const page = await browser.open('load.html');
    const url = `${files.url}/model.gguf`;

    console.log(`downloading ${args.fixture} (${gb.toFixed(2)} GB) into IndexedDB…`);
    const download = await page.call<DownloadResult>('download', url);
    if (!download.complete) throw new Error('download did not complete');
    rows.push({ path: 'download → IndexedDB (local HTTP)', seconds: download.ms / 1000, bytes: size });

    const rawRead = async (label: string): Promise<void> => {
      const raw = await page.call<{ ms: number; bytes: number }>('rawRead', download.id);
      rows.push({ path: label, seconds: raw.ms / 1000, bytes: raw.bytes });
      console.log(`${label}: ${(raw.ms / 1000).toFixed(2)} s`);
    };
    const load = async (label: string, source: LoadRequest['source']): Promise<void> => {
      await resetPeaks(browser.chromium);
      let result: LoadResult;
      try {
        result = await page.call<LoadResult>('load', { source, threads } satisfies LoadRequest);
      } catch (error) {
        throw new Error(`${label}: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (result.fileBytes !== size) throw new Error(`${label}: loaded ${result.fileBytes} bytes, file has ${size}`);
      const t = result.timings;
      const part = (ms: number | undefined) => (ms ?? 0) / 1000;
      const parts = { read: part(t.read), copy: part(t.copy), touch: part(t.touch), repack: part(t.repack), other: 0 };
      const seconds = result.ms / 1000;
      parts.other = seconds - parts.read - parts.copy - parts.touch - parts.repack;
      rows.push({ path: `${label} (${result.build}, ${result.threads} thr)`, seconds, bytes: size, peakMiB: await peakMiB(browser.chromium), parts,
        tokenizerSeconds: part(t.tokenizer), headerSeconds: part(t.header), kernelsSeconds: part(t.kernels) });
      console.log(`${label}: ${seconds.toFixed(2)} s`);
    };
    for (let run = 1; run <= runs; run++) {
      await rawRead(`raw IndexedDB read (page), run ${run}`);
      await load(`IndexedDB, run ${run}`, { kind: 'cached', id: download.id, store: 'qwen-web' });
      await load(`URL (Range reads), run ${run}`, { kind: 'url', url, cache: false });
    }
    if (args.cold) {
      for (let run = 1; run <= runs; run++) {
        if (!(await dropPageCache())) throw new Error('--cold: cannot write /proc/sys/vm/drop_caches (needs root)');
        await rawRead(`raw IndexedDB read (page), cold, run ${run}`);
        if (!(await dropPageCache())) throw new Error('--cold: cannot drop the page cache');
        await load(`IndexedDB, cold, run ${run}`, { kind: 'cached', id: download.id, store: 'qwen-web' });
      }
    }
    // The app's path: the shared engine in a first tab, then a second tab joining it.
    const engineLoad = async (tab: typeof page, label: string, since: 'ms' | 'sinceOpen'): Promise<void> => {
      await resetPeaks(browser.chromium);
      const result = await tab.call<EngineLoadResult>('engineLoad', { id: download.id, threads });
      const seconds = result[since] / 1000;
      rows.push({ path: `${label} (${result.role})`, seconds, bytes: since === 'ms' ? size : 0, peakMiB: await peakMiB(browser.chromium) });
      console.log(`${label}: ${seconds.toFixed(2)} s`);
    };
    await engineLoad(page, 'engine, first tab: IndexedDB → ready', 'ms');
    const second = await browser.open('load.html');
    await engineLoad(second, 'engine, second tab: opened → ready', 'sinceOpen');
    await second.call('engineClose');
    await page.call('engineClose');
    await page.call('remove', download.id);
  });
} finally {
  await files.close();
}

const fixed = (n: number | undefined, digits = 2) => (n === undefined ? '' : n.toFixed(digits));
const header = ['path', 'load → ready (s)', 'MB/s', 'read', 'copy', 'touch', 'repack', 'other', '(header)', '(kernels)', '(tokenizer)', 'peak MiB'];
const cells = rows.map((r) => [r.path, fixed(r.seconds), r.bytes ? (r.bytes / 1e6 / r.seconds).toFixed(0) : '—', fixed(r.parts?.read), fixed(r.parts?.copy),
  fixed(r.parts?.touch), fixed(r.parts?.repack), fixed(r.parts?.other), fixed(r.headerSeconds), fixed(r.kernelsSeconds), fixed(r.tokenizerSeconds), fixed(r.peakMiB, 0)]);
const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
const line = (row: string[]) => `| ${row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
console.log(`\n${args.fixture}: ${size} bytes (${gb.toFixed(2)} GB), Chromium headless, ${threads} threads; parts in seconds`);
console.log(line(header));
console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
for (const row of cells) console.log(line(row));
console.log(`goal: IndexedDB → ready ≤ 2.5 s for 2.37 GB with a warm page cache; peak ≤ 1.2 × (weights + KV)`);
if (args.json) {
  writeFileSync(args.json, `${JSON.stringify(rows, null, 2)}\n`);
  console.log(`wrote ${args.json}`);
}
