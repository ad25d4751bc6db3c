// The model store in headless Chromium against real HTTP: a vite-served test page imports
// src/storage/model-store.ts and downloads fixture GGUFs from the static test server (another
// origin, CORS, Range, fault injection) into IndexedDB. Oracles are Node's: the file on disk
// (its SHA-256 from node:crypto, its byte ranges) and the server's request log. The page hashes
// what IndexedDB holds with WebCrypto (crypto.subtle.digest), independent of the store's own
// SHA-256 code.
//
// Tests use 1 MiB chunks so an 11 MB fixture spans a dozen chunks; the 2.37 GB test uses the
// default 16 MiB. A page-side fetch wrapper can hold a response body after N bytes (a "gate"):
// the HTTP exchange stays real, the gate only decides *when* the test reloads the page, lowers
// the quota or deletes the model, so those cases are deterministic rather than timing races.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ViteDevServer } from 'vite';
import { topCandidates } from '../../src/engine/sampler.ts';
import { NodeFileSource } from '../../src/gguf/node-file-source.ts';
import { Qwen3Model } from '../../src/model/qwen3.ts';
import type { CachedModel, DownloadProgress } from '../../src/storage/model-store.ts';
import type { ModelResponse } from '../support/model-protocol.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { ENGINE_PATHS, launchBrowser, testBrowsers, type BrowserName, type TestBrowser, type TestPage } from '../support/browsers.ts';
import { launchChromium, type LaunchedChromium } from '../support/chromium.ts';
import { startStaticServer, type StaticServer } from '../support/static-server.ts';
import { startVitePages } from '../support/vite-pages.ts';

const CHUNK = 1 << 20;

const PAGE_HTML = `<!doctype html><meta charset="utf-8"><title>storage</title><link rel="icon" href="data:,">
<script type="module">
  import { ModelStore } from '/src/storage/model-store.ts';
  const CHUNK = ${CHUNK};
  let gate;
  // Passes exactly gate.at bytes of the next response body, then holds the rest until the test opens the gate.
  async function gatedFetch(input, init) {
    const response = await fetch(input, init);
    const g = gate;
    if (!g || !response.body) return response;
    gate = undefined;
    let passed = 0;
    let held;
    const reader = response.body.getReader();
    const body = new ReadableStream({
      async pull(controller) {
        if (passed >= g.at) { g.reached(); await g.opened; }
        let value = held;
        held = undefined;
        if (!value) {
          const next = await reader.read();
          if (next.done) { controller.close(); return; }
          value = next.value;
        }
        if (passed < g.at && passed + value.length > g.at) {
          held = value.subarray(g.at - passed);
          value = value.subarray(0, g.at - passed);
        }
        passed += value.length;
        controller.enqueue(value);
      },
      cancel(reason) { return reader.cancel(reason); },
    }, { highWaterMark: 0 });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  }
  const store = (name = 'test', chunkBytes = CHUNK) => ModelStore.open(name, { chunkBytes, fetch: gatedFetch });
  const info = (e) => ({ name: e?.name, code: e?.code, message: String(e?.message ?? e),
    status: e?.details?.status, neededBytes: e?.details?.neededBytes, availableBytes: e?.details?.availableBytes });
  const hex = (buffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
  let pending;
  window.t = {
    async download(url, options = {}, storeName, chunkBytes) {
      const progress = [];
      try {
        const model = await store(storeName, chunkBytes).download(url, { ...options, onProgress: (p) => progress.push(p) });
        return { model, progress };
      } catch (e) {
        return { error: info(e), progress };
      }
    },
    start(url, options) { pending = window.t.download(url, options); },
    finish() { return pending; },
    setGate(at) {
      const g = { at };
      g.reachedP = new Promise((r) => { g.reached = r; });
      g.opened = new Promise((r) => { g.open = r; });
      gate = g;
      window.gateObj = g;
    },
    // 'reached', or 'finished' when the download ended before the gate (so a test cannot hang here).
    gateReached() { return Promise.race([window.gateObj.reachedP.then(() => 'reached'), pending.then(() => 'finished')]); },
    // Makes navigator.storage.estimate() report these numbers (undefined: the browser's own again).
    stubEstimate(quota, usage) {
      if (quota === undefined) { delete navigator.storage.estimate; return; }
      navigator.storage.estimate = async () => ({ quota, usage });
    },
    release() { window.gateObj.open(); },
    id: (url) => store().idForUrl(url),
    get: (id, storeName) => store(storeName).get(id).then((m) => m ?? null),
    list: (storeName) => store(storeName).list(),
    remove: (id, storeName) => store(storeName).delete(id),
    usage: () => store().usage(),
    estimate: () => navigator.storage.estimate(),
    async openError(id) {
      try { await store().openSource(id); return null; } catch (e) { return info(e); }
    },
    // WebCrypto over the whole model as read back from IndexedDB (small fixtures only).
    async sha256(id, storeName) {
      const source = await store(storeName).openSource(id);
      return hex(await crypto.subtle.digest('SHA-256', await source.read(0, source.size)));
    },
    // Each span read separately (readInto a fresh buffer), hashed, in order.
    async spans(id, spans) {
      const source = await store().openSource(id);
      const out = [];
      for (const [offset, length] of spans) {
        const target = new Uint8Array(length);
        await source.readInto(offset, target);
        out.push(hex(await crypto.subtle.digest('SHA-256', target)));
      }
      return out;
    },
    async readError(id, offset, length) {
      const source = await store().openSource(id);
      try { await source.read(offset, length); return null; } catch (e) { return info(e); }
    },
    async importFile(url, name) {
      const blob = await (await fetch(url)).blob();
      const file = new File([blob], name, { lastModified: 1700000000000 });
      const progress = [];
      try {
        return { model: await store().importFile(file, { onProgress: (p) => progress.push(p) }), progress };
      } catch (e) {
        return { error: info(e), progress };
      }
    },
  };
</script>`;

interface ErrorInfo {
  name: string;
  code?: string;
  message: string;
  status?: number;
  neededBytes?: number;
  availableBytes?: number;
}
interface DownloadResult {
  model?: CachedModel;
  error?: ErrorInfo;
  progress: DownloadProgress[];
}
interface PageApi {
  download(url: string, options?: Record<string, unknown>, storeName?: string, chunkBytes?: number): Promise<DownloadResult>;
  start(url: string, options?: Record<string, unknown>): void;
  finish(): Promise<DownloadResult>;
  setGate(at: number): void;
  gateReached(): Promise<'reached' | 'finished'>;
  stubEstimate(quota?: number, usage?: number): void;
  release(): void;
  id(url: string): string;
  get(id: string, storeName?: string): Promise<CachedModel | null>;
  list(storeName?: string): Promise<CachedModel[]>;
  remove(id: string, storeName?: string): Promise<void>;
  usage(): Promise<{ usage: number; quota: number; persisted: boolean }>;
  estimate(): Promise<{ usage: number; quota: number }>;
  openError(id: string): Promise<ErrorInfo | null>;
  sha256(id: string, storeName?: string): Promise<string>;
  spans(id: string, spans: [number, number][]): Promise<string[]>;
  readError(id: string, offset: number, length: number): Promise<ErrorInfo | null>;
  importFile(url: string, name: string): Promise<DownloadResult>;
}

let vite: ViteDevServer;
let pagesUrl: string;
let files: StaticServer;
let chromium: LaunchedChromium;
let page: Page;
let tempDir: string;
let tinyPath: string;
let tinySize: number;
let tinySha: string;
let otherPath: string;

/** The page `call` talks to: Chromium's, or the page of the engine the downloads run in now. */
let current: Page | TestPage;

/** Calls window.t[name](...args) in the page. */
function call<K extends keyof PageApi>(name: K, ...args: Parameters<PageApi[K]>): Promise<Awaited<ReturnType<PageApi[K]>>> {
  return callOn(current, name, ...args);
}

function callOn<K extends keyof PageApi>(on: Page | TestPage, name: K, ...args: Parameters<PageApi[K]>): Promise<Awaited<ReturnType<PageApi[K]>>> {
  return (on as TestPage).evaluate(([n, a]) => {
    const api = (window as unknown as { t: Record<string, (...x: unknown[]) => unknown> }).t;
    return api[n as string]!(...(a as unknown[]));
  }, [name, args] as const) as Promise<Awaited<ReturnType<PageApi[K]>>>;
}

async function openPage(on: Page | TestPage = current): Promise<void> {
  await on.goto(`${pagesUrl}/__storage-test/index.html`);
  await (on as TestPage).waitForFunction(() => typeof (window as unknown as { t?: unknown }).t === 'object');
}

async function fileSha256(path: string, start = 0, length?: number): Promise<string> {
  const hash = createHash('sha256');
  if (length === 0) return hash.digest('hex');
  const stream = createReadStream(path, length === undefined ? { start } : { start, end: start + length - 1 });
  for await (const piece of stream as AsyncIterable<Buffer>) hash.update(piece);
  return hash.digest('hex');
}

async function fileSize(path: string): Promise<number> {
  const handle = await open(path);
  try {
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}

const url = (path: string): string => `${files.url}${path}`;
const gets = (path: string) => files.requests.filter((r) => r.path === path && r.method === 'GET');

/**
 * Starts downloading `id`, holds the body just after `chunks` whole chunks, waits until they are
 * committed, and reloads the page under the running download: a partial model, deterministically.
 */
async function downloadThenReload(id: string, chunks: number): Promise<void> {
  await call('setGate', chunks * CHUNK + 100);
  await call('start', id, { retries: 0 });
  expect(await call('gateReached')).toBe('reached');
  await expect.poll(async () => (await call('get', id))?.storedBytes, { timeout: 20_000 }).toBe(chunks * CHUNK);
  await openPage();
}

function expectModel(result: DownloadResult): CachedModel {
  if (result.error) throw new Error(`download failed: ${JSON.stringify(result.error)}`);
  return result.model!;
}

function expectError(result: DownloadResult, code: string): ErrorInfo {
  expect(result.model).toBeUndefined();
  expect(result.error).toMatchObject({ name: 'StorageError', code });
  return result.error!;
}

// Every test path serves the same tiny fixture unless noted; distinct paths keep models apart.
const TINY_PATHS = ['/full', '/cut', '/auto', '/reload', '/cl-long', '/cl-short', '/norange', '/fail5xx', '/fail500',
  '/hash-ok', '/hash-bad', '/quota-pre', '/quota-mid', '/delete', '/delete-mid'].map((p) => `${p}/tiny-q4_0.gguf`);

beforeAll(async () => {
  tinyPath = await ensureFixture('tiny-q4_0');
  otherPath = await ensureFixture('tiny-q8_0');
  tinySize = await fileSize(tinyPath);
  tinySha = await fileSha256(tinyPath);
  tempDir = await mkdtemp(join(tmpdir(), 'qwen-web-storage-'));
  await copyFile(tinyPath, join(tempDir, 'changing.gguf'));
  // Two files of one size, different from byte 2 MiB on (a model re-uploaded under the same name).
  await copyFile(tinyPath, join(tempDir, 'same-size-a.gguf'));
  await copyFile(tinyPath, join(tempDir, 'same-size-b.gguf'));
  const handle = await open(join(tempDir, 'same-size-b.gguf'), 'r+');
  await handle.write(new Uint8Array(3 * CHUNK).fill(0x5a), 0, 3 * CHUNK, 2 * CHUNK);
  await handle.close();
  files = await startStaticServer({
    files: {
      ...Object.fromEntries(TINY_PATHS.map((p) => [p, tinyPath])),
      '/quota/tiny-q8_0.gguf': otherPath,
      '/changing.gguf': join(tempDir, 'changing.gguf'),
    },
    headers: {
      '/hash-ok/tiny-q4_0.gguf': { 'X-Linked-ETag': `"${tinySha}"` },
      '/hash-bad/tiny-q4_0.gguf': { 'X-Linked-ETag': `"${'0'.repeat(64)}"` },
    },
  });
  const pages = await startVitePages({ '/__storage-test/index.html': { type: 'text/html', body: PAGE_HTML } });
  vite = pages.server;
  pagesUrl = pages.url;
  chromium = await launchChromium();
  page = await chromium.newPage();
  current = page;
  await openPage();
}, 300_000);

afterAll(async () => {
  await chromium?.close();
  await vite?.close();
  await files?.close();
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
});

beforeEach(() => {
  files.requests.length = 0;
});

// Where the engine keeps models (ENGINE_PATHS): Chromium and Firefox. WebKit's test session is
// private and keeps no Blobs in IndexedDB: there a download fails as 'unsupported' (below).
/** For the describe it is called in: `call` talks to a page of `browserName` (Chromium's own page for Chromium). */
function inEngine(browserName: BrowserName): void {
  let other: TestBrowser | undefined;

  beforeAll(async () => {
    if (browserName === 'chromium') return;
    other = await launchBrowser(browserName);
    current = await other.newPage();
    await openPage();
  }, 120_000);

  afterAll(async () => {
    current = page;
    await other?.close();
  });
}

describe.each(testBrowsers().filter((name) => ENGINE_PATHS[name].keepsModels))('ModelStore in %s: downloads', (browserName) => {
  inEngine(browserName);

  it('downloads a model whole: IndexedDB holds exactly the file, progress reaches the total', async () => {
    const path = TINY_PATHS[0]!;
    const result = await call('download', url(path));
    const model = expectModel(result);
    expect(model).toMatchObject({ id: url(path), url: url(path), name: 'tiny-q4_0.gguf', totalBytes: tinySize, storedBytes: tinySize, complete: true, kind: 'url' });
    // The store's own SHA-256 (computed while streaming) and WebCrypto's over the stored bytes.
    expect(model.sha256).toBe(tinySha);
    expect(model.hashVerified).toBe(false);
    expect(await call('sha256', model.id)).toBe(tinySha);
    // One request, a range from byte 0.
    expect(gets(path)).toEqual([{ method: 'GET', path, range: 'bytes=0-', status: 206 }]);
    const last = result.progress.at(-1)!;
    expect(last.loadedBytes).toBe(tinySize);
    expect(last.totalBytes).toBe(tinySize);
    expect(last.etaSeconds).toBe(0);
    for (let i = 1; i < result.progress.length; i++) {
      expect(result.progress[i]!.loadedBytes).toBeGreaterThanOrEqual(result.progress[i - 1]!.loadedBytes);
    }
    // Already complete: returns at once without touching the network.
    files.requests.length = 0;
    expect(expectModel(await call('download', url(path)))).toMatchObject({ complete: true, sha256: tinySha });
    expect(gets(path)).toEqual([]);
    const listed = await call('list');
    expect(listed.find((m) => m.id === model.id)).toMatchObject({ complete: true, totalBytes: tinySize });
  });

  it('reads spans across chunk boundaries equal to the file, and refuses reads past the end', async () => {
    const id = url(TINY_PATHS[0]!);
    const spans: [number, number][] = [
      [0, 10], [CHUNK - 5, 10], [CHUNK, CHUNK], [3 * CHUNK - 1, 2 * CHUNK + 2], [12_345, 5 * CHUNK + 77],
      [tinySize - 7, 7], [tinySize - CHUNK - 3, CHUNK + 3], [5, 0],
    ];
    const got = await call('spans', id, spans);
    const expected = await Promise.all(spans.map(([offset, length]) => fileSha256(tinyPath, offset, length)));
    expect(got).toEqual(expected);
    expect(await call('readError', id, tinySize - 3, 4)).toMatchObject({ name: 'GGUFError', code: 'truncated' });
  });

  it('resumes after cuts at several points, each time from the last complete chunk it stored', async () => {
    const path = TINY_PATHS[1]!;
    const id = url(path);
    let stored = 0;
    // Mid-chunk, an exact chunk boundary, a few bytes into the next response.
    for (const cut of [2.5 * CHUNK, 4 * CHUNK, 100]) {
      files.setFault(path, { cutAfterBytes: cut, times: 1 });
      files.requests.length = 0;
      expectError(await call('download', id, { retries: 0 }), 'network');
      expect(gets(path)).toEqual([{ method: 'GET', path, range: `bytes=${stored}-`, status: 206 }]);
      const partial = (await call('get', id))!;
      // When a connection fails, Chromium drops body bytes it had received but not yet handed to
      // the page, so fewer chunks than were sent may be complete: never more, always whole ones.
      expect(partial).toMatchObject({ totalBytes: tinySize, complete: false });
      expect(partial.storedBytes % CHUNK).toBe(0);
      expect(partial.storedBytes).toBeGreaterThanOrEqual(stored);
      expect(partial.storedBytes).toBeLessThanOrEqual(Math.floor((stored + cut) / CHUNK) * CHUNK);
      stored = partial.storedBytes;
      // A partial model is never handed out as a source.
      expect(await call('openError', id)).toMatchObject({ name: 'StorageError', code: 'incomplete' });
    }
    expect(stored).toBeGreaterThan(0);
    files.setFault(path, undefined);
    files.requests.length = 0;
    const model = expectModel(await call('download', id, { retries: 0 }));
    expect(gets(path)).toEqual([{ method: 'GET', path, range: `bytes=${stored}-`, status: 206 }]);
    expect(model).toMatchObject({ complete: true, storedBytes: tinySize, sha256: tinySha });
    expect(await call('sha256', id)).toBe(tinySha);
  });

  it('resumes by itself after a dropped connection (automatic retry)', async () => {
    const path = TINY_PATHS[2]!;
    files.setFault(path, { cutAfterBytes: 3 * CHUNK + 1234, times: 1 });
    const model = expectModel(await call('download', url(path)));
    const ranges = gets(path).map((r) => r.range);
    expect(ranges).toHaveLength(2);
    expect(ranges[0]).toBe('bytes=0-');
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1]!)?.[1]);
    expect(resumedAt % CHUNK).toBe(0);
    expect(resumedAt).toBeLessThanOrEqual(3 * CHUNK);
    expect(model.sha256).toBe(tinySha);
    expect(await call('sha256', model.id)).toBe(tinySha);
  });

  it('resumes after the page reloads mid-download', async () => {
    const path = TINY_PATHS[3]!;
    const id = url(path);
    await downloadThenReload(id, 5);
    expect(await call('get', id)).toMatchObject({ storedBytes: 5 * CHUNK, complete: false });
    expect(await call('openError', id)).toMatchObject({ code: 'incomplete' });
    files.requests.length = 0;
    const model = expectModel(await call('download', id, { retries: 0 }));
    expect(gets(path)).toEqual([{ method: 'GET', path, range: `bytes=${5 * CHUNK}-`, status: 206 }]);
    expect(model.sha256).toBe(tinySha);
    expect(await call('sha256', id)).toBe(tinySha);
  });

  it('refuses a wrong Content-Length with a typed error and never marks the model complete', async () => {
    for (const [path, declared] of [[TINY_PATHS[4]!, tinySize + 1000], [TINY_PATHS[5]!, tinySize - 1000]] as const) {
      files.setFault(path, { contentLength: declared });
      const error = expectError(await call('download', url(path), { retries: 0 }), 'size-mismatch');
      expect(error.message).toContain(String(declared));
      expect((await call('get', url(path)))?.complete ?? false).toBe(false);
      expect(await call('openError', url(path))).toMatchObject({ code: expect.stringMatching(/^(not-found|incomplete)$/) });
    }
  });

  it('resumes safely from a server that ignores Range (200 with the whole file)', async () => {
    const path = TINY_PATHS[6]!;
    const id = url(path);
    await downloadThenReload(id, 3);
    files.setFault(path, { ignoreRange: true });
    files.requests.length = 0;
    const model = expectModel(await call('download', id, { retries: 0 }));
    // Asked for the rest, got everything: the known prefix was skipped, not stored twice.
    expect(gets(path)).toEqual([{ method: 'GET', path, range: `bytes=${3 * CHUNK}-`, status: 200 }]);
    expect(model).toMatchObject({ complete: true, storedBytes: tinySize, sha256: tinySha });
    expect(await call('sha256', id)).toBe(tinySha);
  });

  it('starts over when the file changed between sessions (ETag and size differ)', async () => {
    const path = '/changing.gguf';
    const id = url(path);
    await copyFile(tinyPath, join(tempDir, 'changing.gguf'));  // as it was (an engine before this one changed it)
    await downloadThenReload(id, 2);
    expect(await call('get', id)).toMatchObject({ storedBytes: 2 * CHUNK, totalBytes: tinySize });
    await copyFile(otherPath, join(tempDir, 'changing.gguf'));
    const otherSha = await fileSha256(otherPath);
    files.requests.length = 0;
    const model = expectModel(await call('download', id, { retries: 0 }));
    expect(gets(path).map((r) => [r.range, r.status])).toEqual([[`bytes=${2 * CHUNK}-`, 206], ['bytes=0-', 206]]);
    expect(model).toMatchObject({ complete: true, totalBytes: await fileSize(otherPath), sha256: otherSha });
    expect(await call('sha256', id)).toBe(otherSha);
  });

  it('starts over instead of resuming when the server gives no validator (a file replaced at the same size is never mixed in)', async () => {
    const path = '/no-validators/model.gguf';
    const id = url(path);
    files.setFile(path, join(tempDir, 'same-size-a.gguf'));
    files.setFault(path, { noValidators: true, cutAfterBytes: 3.5 * CHUNK, times: 1 });
    expectError(await call('download', id, { retries: 0 }), 'network');
    const partial = (await call('get', id))!;
    expect(partial.storedBytes).toBeGreaterThan(0);
    // The file is replaced by one of the same size (so size cannot tell): the resume must not trust the range.
    files.setFile(path, join(tempDir, 'same-size-b.gguf'));
    files.setFault(path, { noValidators: true });
    files.requests.length = 0;
    const model = expectModel(await call('download', id, { retries: 0 }));
    const shaB = await fileSha256(join(tempDir, 'same-size-b.gguf'));
    expect(model).toMatchObject({ complete: true, sha256: shaB, hashVerified: false });
    expect(await call('sha256', id)).toBe(shaB);
    // It asked for the rest once, saw nothing proving the rest was the same file, and started over.
    expect(gets(path).map((r) => r.range)).toEqual([`bytes=${partial.storedBytes}-`, 'bytes=0-']);
  });

  it('drops a stalled connection (after the headers, or mid-body), says it is retrying, and resumes', async () => {
    const path = '/stall/tiny-q4_0.gguf';
    const id = url(path);
    files.setFile(path, tinyPath);
    // First: headers, 2.5 chunks, then silence. Second: headers, then silence. Third: fine.
    files.setFault(path, { stallAfterBytes: 2.5 * CHUNK, times: 1 });
    await call('start', id, { retries: 3, stallTimeoutMs: 1500 });
    await expect.poll(() => files.requests.filter((r) => r.path === path).length, { timeout: 20_000 }).toBe(1);
    files.setFault(path, { stallAfterBytes: 0, times: 1 });
    const done = await call('finish');
    const model = expectModel(done);
    expect(model).toMatchObject({ complete: true, sha256: tinySha });
    const ranges = gets(path).map((r) => r.range);
    expect(ranges.length).toBe(3);
    expect(ranges[0]).toBe('bytes=0-');
    expect(Number(/^bytes=(\d+)-/.exec(ranges[2]!)![1])).toBeGreaterThanOrEqual(2 * CHUNK); // resumed, not restarted
    const retries = done.progress.filter((p) => p.retry).map((p) => p.retry!);
    expect(retries.map((r) => [r.attempt, r.attempts, r.code])).toEqual([[2, 4, 'stalled'], [3, 4, 'stalled']]);
    expect(retries[0]!.reason).toMatch(/stopped sending after byte \d+ of \d+ \(nothing for 1.5 s\)/);
    expect(retries[1]!.reason).toMatch(/sent no answer for 1.5 s/);
    // A stall that lasts: a typed error, the stored part kept.
    const other = '/stall-forever/tiny-q4_0.gguf';
    files.setFile(other, tinyPath);
    files.setFault(other, { stallAfterBytes: 1.5 * CHUNK });
    const failed = expectError(await call('download', url(other), { retries: 1, stallTimeoutMs: 1000 }), 'stalled');
    expect(failed.message).toMatch(/stopped sending|sent no answer/);
    const kept = (await call('get', url(other)))!.storedBytes;
    expect(kept).toBeGreaterThanOrEqual(CHUNK);
    expect(kept % CHUNK).toBe(0);
  });

  it('retries HTTP 5xx, and reports a lasting one (or a 404) as a typed error that leaves nothing behind', async () => {
    const flaky = TINY_PATHS[7]!;
    files.setFault(flaky, { status: 503, times: 2 });
    const model = expectModel(await call('download', url(flaky), { retries: 2 }));
    expect(gets(flaky).map((r) => r.status)).toEqual([503, 503, 206]);
    expect(model.sha256).toBe(tinySha);

    const broken = TINY_PATHS[8]!;
    files.setFault(broken, { status: 500 });
    const error = expectError(await call('download', url(broken), { retries: 0 }), 'http-status');
    expect(error.status).toBe(500);
    expect(await call('get', url(broken))).toBeNull();
    const missing = expectError(await call('download', url('/no/such.gguf'), { retries: 0 }), 'http-status');
    expect(missing.status).toBe(404);
    expect((await call('list')).map((m) => m.id)).not.toContain(url('/no/such.gguf'));
  });

  it("checks the SHA-256 the server names (Hugging Face's X-Linked-ETag) before marking complete", async () => {
    const good = expectModel(await call('download', url(TINY_PATHS[9]!), { retries: 0 }));
    expect(good).toMatchObject({ complete: true, sha256: tinySha, hashVerified: true });
    const error = expectError(await call('download', url(TINY_PATHS[10]!), { retries: 0 }), 'hash-mismatch');
    expect(error.message).toContain(tinySha);
    // Wrong bytes are not kept as a model.
    expect(await call('get', url(TINY_PATHS[10]!))).toBeNull();
  });

  it('keeps a picked local file when asked (importFile), chunked, equal to the file', async () => {
    const result = await call('importFile', url(TINY_PATHS[0]!), 'picked.gguf');
    const model = expectModel(result);
    expect(model).toMatchObject({ kind: 'file', name: 'picked.gguf', complete: true, totalBytes: tinySize, sha256: tinySha });
    expect(await call('sha256', model.id)).toBe(tinySha);
    expect(result.progress.at(-1)!.loadedBytes).toBe(tinySize);
    await call('remove', model.id);
  });

  it('refuses up front, with the numbers, when the model clearly cannot fit', async () => {
    // Chromium's estimate() ignores CDP quota overrides, so the page reports a nearly full disk itself.
    await call('stubEstimate', 1_000_000_000, 1_000_000_000 - 2 * CHUNK);
    try {
      const path = TINY_PATHS[11]!;
      const error = expectError(await call('download', url(path), { retries: 0 }), 'quota');
      expect(error).toMatchObject({ neededBytes: tinySize, availableBytes: 2 * CHUNK });
      expect(error.message).toContain('needs 11 MB more (2.1 MB available)');
      expect(await call('get', url(path))).toBeNull();
      expect(gets(path)).toHaveLength(1); // the response was only looked at, not stored
    } finally {
      await call('stubEstimate');
    }
  });

  it('deletes a model and all its chunks; the list and the sources follow', async () => {
    const path = TINY_PATHS[13]!;
    const id = url(path);
    expectModel(await call('download', id, { retries: 0 }));
    expect((await call('list')).map((m) => m.id)).toContain(id);
    await call('remove', id);
    expect(await call('get', id)).toBeNull();
    expect((await call('list')).map((m) => m.id)).not.toContain(id);
    expect(await call('openError', id)).toMatchObject({ code: 'not-found' });
    // Downloading again starts from byte 0 (no orphan chunks were counted).
    files.requests.length = 0;
    expect(expectModel(await call('download', id, { retries: 0 })).sha256).toBe(tinySha);
    expect(gets(path).map((r) => r.range)).toEqual(['bytes=0-']);
    await call('remove', id);
    const usage = await call('usage');
    expect(usage.quota).toBeGreaterThan(0);
    expect(typeof usage.persisted).toBe('boolean');
  });

  it('stops a running download when its model is deleted', async () => {
    const path = TINY_PATHS[14]!;
    const id = url(path);
    await call('setGate', 3 * CHUNK + 10);
    await call('start', id, { retries: 0 });
    expect(await call('gateReached')).toBe('reached');
    await call('remove', id);
    await call('release');
    expectError(await call('finish'), 'aborted');
    expect(await call('get', id)).toBeNull();
  });
});

describe.each(testBrowsers().filter((name) => !ENGINE_PATHS[name].keepsModels))('ModelStore in %s, whose test session keeps no Blobs', (browserName) => {
  inEngine(browserName);

  it('a download fails with a typed StorageError (unsupported) and leaves no record behind', async () => {
    const path = TINY_PATHS[0]!;
    const error = expectError(await call('download', url(path), { retries: 0 }), 'unsupported');
    expect(error.message.length).toBeGreaterThan(0);
    expect(await call('get', url(path))).toBeNull();
    expect(await call('list')).toEqual([]);
  });
});

describe('ModelStore in Chromium: a real quota running out mid-download', () => {
  // CDP's quota override only takes hold for an origin that has not used storage yet in that
  // browser, so this runs in a browser of its own with the quota set before the first page.
  let quotaChromium: LaunchedChromium;
  let quotaPage: Page;
  const QUOTA = 20_000_000;

  beforeAll(async () => {
    quotaChromium = await launchChromium();
    quotaPage = await quotaChromium.newPage();
    const session = await quotaPage.context().newCDPSession(quotaPage);
    await session.send('Storage.overrideQuotaForOrigin', { origin: new URL(pagesUrl).origin, quotaSize: QUOTA });
    await openPage(quotaPage);
  });
  afterAll(async () => {
    await quotaChromium?.close();
  });

  it('fails with a typed error, keeps the stored chunks, and resumes after them once space is freed', async () => {
    const first = url(TINY_PATHS[12]!);
    const secondPath = '/quota/tiny-q8_0.gguf';
    const second = url(secondPath);
    const otherSha = await fileSha256(otherPath);
    const otherSize = await fileSize(otherPath);
    expectModel(await callOn(quotaPage, 'download', first, { retries: 0 }));
    // 11.4 MB stored; 16.3 MB more do not fit in 20 MB.
    const error = expectError(await callOn(quotaPage, 'download', second, { retries: 0 }), 'quota');
    expect(error.message).toMatch(/^not enough storage space: the model needs \d+(\.\d)? MB more/);
    expect(error.neededBytes).toBeGreaterThan(0);
    const partial = (await callOn(quotaPage, 'get', second))!;
    expect(partial).toMatchObject({ complete: false, totalBytes: otherSize });
    expect(partial.storedBytes % CHUNK).toBe(0);
    expect(partial.storedBytes).toBeGreaterThan(0);
    expect(partial.storedBytes).toBeLessThan(otherSize);
    expect(await callOn(quotaPage, 'openError', second)).toMatchObject({ code: 'incomplete' });

    // Free space the way a user would: delete the other model. The download resumes after the
    // chunks it kept, and the result is the exact file.
    const before = (await callOn(quotaPage, 'estimate')).usage;
    await callOn(quotaPage, 'remove', first);
    // Chromium removes a deleted value's blob file only once no Blob handle to it is alive (the
    // store's hash check held some until garbage collection): a reload drops them all, then the
    // space comes back in the background.
    await openPage(quotaPage);
    await expect.poll(async () => (await callOn(quotaPage, 'estimate')).usage, { timeout: 60_000, interval: 500 })
      .toBeLessThan(before - tinySize / 2);
    files.requests.length = 0;
    const model = expectModel(await callOn(quotaPage, 'download', second, { retries: 0 }));
    expect(gets(secondPath)).toEqual([{ method: 'GET', path: secondPath, range: `bytes=${partial.storedBytes}-`, status: 206 }]);
    expect(model).toMatchObject({ complete: true, sha256: otherSha });
    expect(await callOn(quotaPage, 'sha256', second)).toBe(otherSha);
  });
});

describe('ModelStore in Chromium: a 2.37 GB model from IndexedDB into the wasm runtime', () => {
  const tokens = [9707, 11, 1879, 0, 151644, 872, 198, 3838];

  it('downloads qwen3-4b-q4_0 into IndexedDB and a worker loads it from there; top tokens equal Node; with 32K of context it runs on memory64', async () => {
    const errorsBefore = chromium.consoleErrors.length;
    const bigPath = await ensureFixture('qwen3-4b-q4_0');
    const bigSize = await fileSize(bigPath);
    expect(bigSize).toBeGreaterThan(2 ** 31);

    // Node reference first (then freed), so the two 2.4 GB copies never coexist with Chromium's.
    let expected: { ids: number[]; logits: number[] };
    {
      const source = await NodeFileSource.open(bigPath);
      try {
        const model = await Qwen3Model.load(source, { threads: 2, build: 'simd128', contextLength: 64 });
        try {
          const logits = model.forward(tokens, 0, false);
          const ids = topCandidates(logits, 5);
          expected = { ids, logits: ids.map((i) => logits[i]!) };
        } finally {
          model.dispose();
        }
      } finally {
        await source.close();
      }
    }

    const big = await startStaticServer({ files: { '/big/qwen3-4b-q4_0.gguf': bigPath } });
    try {
      const id = `${big.url}/big/qwen3-4b-q4_0.gguf`;
      const result = await call('download', id, { retries: 0 }, 'big', 16 * 1024 * 1024);
      const model = expectModel(result);
      expect(model).toMatchObject({ complete: true, totalBytes: bigSize, storedBytes: bigSize });
      // The hash was computed while streaming over every stored byte; Node hashes the file.
      expect(model.sha256).toBe(await fileSha256(bigPath));
      expect(big.requests.filter((r) => r.method === 'GET').map((r) => r.range)).toEqual(['bytes=0-']);

      const reply = await page.evaluate(async ([storeId]) => {
        const worker = new Worker('/tests/support/model-worker.ts', { type: 'module' });
        const ask = (message: Record<string, unknown>) => new Promise<ModelResponse>((resolve) => {
          worker.onmessage = (e: MessageEvent<ModelResponse>) => { if (e.data.type !== 'progress') resolve(e.data); };
          worker.postMessage(message);
        });
        try {
          const loaded = await ask({ type: 'load', id: 1, source: { kind: 'cached', id: storeId, store: 'big' }, threads: 2, build: 'simd128', contextLength: 64 });
          if (loaded.type !== 'loaded') return { loaded };
          const tokens = [9707, 11, 1879, 0, 151644, 872, 198, 3838];
          const forward = await ask({ type: 'forward', id: 2, tokens, startPos: 0, allLogits: false, topK: 5 });
          // The relaxed build at a short context (wasm32), then with 32K tokens of f16 cache:
          // 2.4 GB of weights and 4.8 GB of cache need memory64 ('auto' picks it).
          const source = { kind: 'cached', id: storeId, store: 'big' };
          const short = await ask({ type: 'load', id: 3, source, threads: 2, contextLength: 64 });
          const shortForward = await ask({ type: 'forward', id: 4, tokens, startPos: 0, allLogits: false, topK: 5 });
          const long = await ask({ type: 'load', id: 5, source, threads: 2, contextLength: 32768 });
          const longForward = await ask({ type: 'forward', id: 6, tokens, startPos: 0, allLogits: false, topK: 5 });
          return { loaded, forward, short, shortForward, long, longForward };
        } finally {
          worker.terminate();
        }
      }, [id] as const);
      if (reply.loaded.type !== 'loaded') throw new Error(`load from IndexedDB failed: ${JSON.stringify(reply.loaded)}`);
      expect(reply.loaded.fileBytes).toBe(bigSize);
      console.info(`4B Q4_0 from IndexedDB: load ${(reply.loaded.loadMs / 1000).toFixed(2)} s`);
      const forward = reply.forward!;
      if (forward.type !== 'forward-result') throw new Error(`forward failed: ${JSON.stringify(forward)}`);
      // Same SIMD128 wasm on the same bytes: the top tokens and their logits are identical.
      expect(forward.topK[0]!.ids).toEqual(expected.ids);
      expect(forward.topK[0]!.logits).toEqual(expected.logits);
      // memory64 runs the relaxed build's arithmetic on 8-byte pointers: the same logits as wasm32's.
      const [short, long] = [reply.short!, reply.long!];
      if (short.type !== 'loaded' || long.type !== 'loaded') throw new Error(`relaxed loads failed: ${JSON.stringify([short, long])}`);
      expect([short.build, short.addressing, short.contextLength]).toEqual(['relaxed', 'wasm32', 64]);
      expect([long.build, long.addressing, long.contextLength]).toEqual(['relaxed', 'memory64', 32768]);
      expect(long.memoryBytes).toBeGreaterThan(2 ** 32 + 2 ** 31);
      const [shortForward, longForward] = [reply.shortForward!, reply.longForward!];
      if (shortForward.type !== 'forward-result' || longForward.type !== 'forward-result') throw new Error(`relaxed forwards failed: ${JSON.stringify([shortForward, longForward])}`);
      expect(longForward.topK[0]).toEqual(shortForward.topK[0]);
      // No download happened for the loads: the worker read IndexedDB only.
      expect(big.requests.filter((r) => r.method === 'GET')).toHaveLength(1);
    } finally {
      await big.close();
      // Give the 2.4 GB back to the disk.
      await call('remove', `${big.url}/big/qwen3-4b-q4_0.gguf`, 'big').catch(() => undefined);
    }
    expect(chromium.consoleErrors.slice(errorsBefore)).toEqual([]);
  }, 900_000);
});
