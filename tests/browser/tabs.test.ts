// One engine for all tabs (src/engine/tab-shared-engine.ts) in real Chromium tabs of one profile
// (and two Firefox tabs, at the end):
// the first tab to take the Web Lock runs a worker engine, the others use it over a BroadcastChannel.
// Every answer is checked against Node's in-process CpuEngine on the same fixture, kernel build and
// threads (their logits are bit-identical, tests/browser/model.test.ts), so an answer spoiled by
// another tab's generation (the engine aborts a generation when a new one starts) cannot pass.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { CpuEngine } from '../../src/engine/cpu-engine.ts';
import type { ChatCompletionRequest, LoadOptions, ModelInfo } from '../../src/engine/types.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { launchBrowser, testBrowsers, type TestBrowser, type TestPage } from '../support/browsers.ts';
import { launchChromium, type LaunchedChromium } from '../support/chromium.ts';
import { startStaticServer, type StaticServer } from '../support/static-server.ts';
import { startVitePages } from '../support/vite-pages.ts';

const FIXTURE = 'tiny-f32';
const OPTIONS: LoadOptions = { build: 'simd128', threads: 1, contextLength: 512 };

const PAGE_HTML = `<!doctype html><meta charset="utf-8"><title>tab</title><link rel="icon" href="data:,">
<script type="module">
  import { createTabSharedEngine } from '/src/engine/tab-shared-engine.ts';
  import { createWorkerEngine } from '/src/engine/worker-engine.ts';
  const describeError = (e) => ({ name: e.name, code: e.code, detail: e.detail, message: e.message });
  let enginesMade = 0;
  const models = [];
  const ownerTimeoutMs = Number(new URLSearchParams(location.hash.slice(1)).get('ownerTimeout')) || undefined;
  const engine = createTabSharedEngine({ name: 'tabs-test', ownerTimeoutMs, createEngine: () => (enginesMade++, createWorkerEngine()) });
  engine.onModelChange((model) => models.push(model ? model.info.contextLength : null));
  window.tab = {
    role: () => engine.role(),
    info: () => engine.info(),
    enginesMade: () => enginesMade,
    models: () => models,
    async load(spec, options) {
      const progress = [];
      try {
        const info = await engine.load(spec, { ...options, onProgress: (p) => progress.push(p.loadedBytes) });
        return { info, progress };
      } catch (e) { return { error: describeError(e), progress }; }
    },
    async stream(request, interruptAfter = -1) {
      let content = '', finish = null, contentChunks = 0;
      const times = [];
      try {
        for await (const chunk of await engine.chat.completions.create({ ...request, stream: true })) {
          times.push(Date.now());
          const choice = chunk.choices[0];
          if (choice.delta.content) { content += choice.delta.content; contentChunks++; }
          if (choice.finish_reason) finish = choice.finish_reason;
          if (contentChunks === interruptAfter) engine.interrupt();
        }
      } catch (e) { return { error: describeError(e), content, times }; }
      return { content, finish, times };
    },
    async complete(request) {
      try { return { completion: await engine.chat.completions.create({ ...request, stream: false }) }; }
      catch (e) { return { error: describeError(e) }; }
    },
    interrupt: () => engine.interrupt(),
    count: (request) => engine.countPromptTokens(request),
    unload: () => engine.unload(),
  };
</script>`;

interface StreamReport {
  content: string;
  finish?: string | null;
  times: number[];
  error?: { code?: string; detail?: string; message: string };
}
interface LoadReport {
  info?: ModelInfo;
  progress: number[];
  error?: { code?: string; detail?: string; message: string };
}

let files: StaticServer;
let vite: ViteDevServer;
let chromium: LaunchedChromium;
let pageUrl: string;
let modelUrl: string;
let node: CpuEngine;
const opened: Page[] = [];

const prompt = (text: string, max_tokens = 24): ChatCompletionRequest => ({ messages: [{ role: 'user', content: text }], temperature: 0, max_tokens });

async function expected(request: ChatCompletionRequest): Promise<string> {
  const completion = await node.chat.completions.create({ ...request, stream: false });
  return completion.choices[0].message.content;
}

async function openTab(query = ''): Promise<Page> {
  const page = await chromium.newPage();
  opened.push(page);
  await page.goto(pageUrl + query);
  await page.waitForFunction(() => typeof (window as unknown as { tab?: unknown }).tab === 'object');
  return page;
}

async function closeTabs(): Promise<void> {
  for (const page of opened.splice(0)) await page.close();
}

/** Runs `window.tab[method](...args)` in a tab (Chromium's, or one of the cross-engine harness). */
const call = <T>(page: Page | TestPage, method: string, ...args: unknown[]): Promise<T> =>
  (page as TestPage).evaluate(([name, rest]) => (window as unknown as { tab: Record<string, (...a: unknown[]) => unknown> }).tab[name as string]!(...(rest as unknown[])), [method, args] as const) as Promise<T>;

/** One question from each tab at once: both answers whole (not cut by the other) and Node's. */
async function expectBothAnswered(first: Page | TestPage, second: Page | TestPage): Promise<void> {
  const a = prompt('First tab asks about rivers.', 40);
  const b = prompt('Second tab asks about mountains.', 40);
  const [ra, rb] = await Promise.all([call<StreamReport>(first, 'stream', a), call<StreamReport>(second, 'stream', b)]);
  expect(ra.error).toBeUndefined();
  expect(rb.error).toBeUndefined();
  expect(ra.content).toBe(await expected(a));
  expect(rb.content).toBe(await expected(b));
  expect(ra.finish).not.toBe('abort');
  expect(rb.finish).not.toBe('abort');
}

/** Engine workers alive across every open tab: one model in memory means one. */
function engineWorkers(): number {
  return opened.filter((page) => !page.isClosed()).flatMap((page) => page.workers()).filter((worker) => worker.url().includes('engine-worker')).length;
}

/** Waits until the tab's engine has a model (another tab's, or one it loaded again after a handover). */
async function waitForModel(page: Page, timeout = 30_000): Promise<void> {
  await page.waitForFunction(() => (window as unknown as { tab: { info(): unknown } }).tab.info() !== undefined, undefined, { timeout });
}

async function roleOf(page: Page): Promise<string> {
  return call<string>(page, 'role');
}

beforeAll(async () => {
  const path = await ensureFixture(FIXTURE);
  files = await startStaticServer({ files: { [`/${FIXTURE}.gguf`]: path } });
  modelUrl = `${files.url}/${FIXTURE}.gguf`;
  const pages = await startVitePages({ '/__tabs-test/index.html': { type: 'text/html', body: PAGE_HTML } });
  vite = pages.server;
  pageUrl = `${pages.url}/__tabs-test/index.html`;
  chromium = await launchChromium();
  node = new CpuEngine();
  await node.load({ kind: 'path', path }, OPTIONS);
}, 300_000);

afterAll(async () => {
  await node?.unload();
  await chromium?.close();
  await vite?.close();
  await files?.close();
});

describe('one engine for all tabs (Chromium)', () => {
  it('a second tab uses the model the first loaded: no second copy, no second load', async () => {
    const spec = { kind: 'url', url: modelUrl };
    const first = await openTab();
    const loaded = await call<LoadReport>(first, 'load', spec, OPTIONS);
    expect(loaded.error).toBeUndefined();
    expect(loaded.progress.length).toBeGreaterThan(0);
    expect(await roleOf(first)).toBe('owner');

    const second = await openTab();
    await waitForModel(second);
    expect(await roleOf(second)).toBe('follower');
    const joined = await call<LoadReport>(second, 'load', spec, OPTIONS);
    expect(joined.info).toEqual(loaded.info); // the same load, not a second one
    expect(joined.progress).toEqual([]);
    expect(await call<number>(second, 'enginesMade')).toBe(0);
    expect(engineWorkers()).toBe(1);

    const request = prompt('Tell me about tabs.');
    const fromSecond = await call<StreamReport>(second, 'stream', request);
    expect(fromSecond.error).toBeUndefined();
    expect(fromSecond.content).toBe(await expected(request));
    const whole = await call<{ completion: { choices: Array<{ message: { content: string } }> } }>(second, 'complete', request);
    expect(whole.completion.choices[0].message.content).toBe(fromSecond.content);
    expect(await call<number>(second, 'count', request)).toBe(await node.countPromptTokens(request));
    await closeTabs();
  }, 180_000);

  it('generations from two tabs queue: both answers whole and right, one after the other', async () => {
    const first = await openTab();
    expect((await call<LoadReport>(first, 'load', { kind: 'url', url: modelUrl }, OPTIONS)).error).toBeUndefined();
    const second = await openTab();
    await expectBothAnswered(first, second);
    await closeTabs();
  }, 180_000);

  it("interrupt() stops the calling tab's answer only, running or waiting its turn", async () => {
    const first = await openTab();
    expect((await call<LoadReport>(first, 'load', { kind: 'url', url: modelUrl }, OPTIONS)).error).toBeUndefined();
    const second = await openTab();
    const long = prompt('Write at length about the sea.', 120);
    // The second tab stops its own answer after two pieces; the first tab's answer runs on to its end.
    const [ra, rb] = await Promise.all([call<StreamReport>(first, 'stream', long), call<StreamReport>(second, 'stream', long, 2)]);
    expect(rb.finish).toBe('abort');
    expect(ra.content).toBe(await expected(long));
    expect(ra.finish).not.toBe('abort');

    // Stopped while queued behind the first tab's answer: it ends at once with nothing said.
    const running = call<StreamReport>(first, 'stream', long);
    await first.waitForTimeout(100);
    const queued = second.evaluate(async (request) => {
      const tab = (window as unknown as { tab: { stream(r: unknown): Promise<StreamReport>; interrupt(): void } }).tab;
      const stream = tab.stream(request);
      setTimeout(() => tab.interrupt(), 50);
      return stream;
    }, long);
    const [rq, rr] = await Promise.all([queued, running]);
    expect(rq.finish).toBe('abort');
    expect(rq.content).toBe('');
    expect(rr.content).toBe(await expected(long));
    await closeTabs();
  }, 240_000);

  it('a load of the same model joins the one in flight; a different load replaces the model in every tab', async () => {
    const first = await openTab();
    const second = await openTab();
    const spec = { kind: 'url', url: modelUrl };
    const [la, lb] = await Promise.all([call<LoadReport>(first, 'load', spec, OPTIONS), call<LoadReport>(second, 'load', spec, OPTIONS)]);
    expect(la.error).toBeUndefined();
    expect(lb.info).toEqual(la.info);
    expect(engineWorkers()).toBe(1);
    const bigger = { ...OPTIONS, contextLength: 1024 };
    const lc = await call<LoadReport>(second, 'load', spec, bigger);
    expect(lc.info?.contextLength).toBe(1024);
    await first.waitForFunction(() => (window as unknown as { tab: { info(): { contextLength: number } | undefined } }).tab.info()?.contextLength === 1024);
    expect(await call<Array<number | null>>(first, 'models')).toContain(1024);
    await call(first, 'unload');
    await second.waitForFunction(() => (window as unknown as { tab: { info(): unknown } }).tab.info() === undefined);
    await closeTabs();
  }, 180_000);

  it('closing the owner tab mid-answer: the other tab gets a typed error, takes the engine over and answers right', async () => {
    const owner = await openTab();
    expect((await call<LoadReport>(owner, 'load', { kind: 'url', url: modelUrl }, OPTIONS)).error).toBeUndefined();
    const other = await openTab();
    const long = prompt('Write at length about the sea.', 200);
    const streaming = other.evaluate(async (request) => {
      const tab = (window as unknown as { tab: { stream(r: unknown): Promise<StreamReport> } }).tab;
      return tab.stream(request);
    }, long);
    await other.waitForFunction(() => (window as unknown as { tab: { role(): string } }).tab.role() === 'follower');
    await owner.waitForTimeout(300); // mid-answer
    await owner.close();
    const cut = await streaming;
    expect(cut.error?.code).toBe('worker-failed');
    expect(cut.error?.detail).toBe('owner-closed');
    // The lock passed to the other tab: it runs an engine now and loaded the same model again by itself.
    await waitForModel(other, 60_000);
    expect(await roleOf(other)).toBe('owner');
    expect(await call<number>(other, 'enginesMade')).toBe(1);
    const request = prompt('Tell me about tabs.');
    expect((await call<StreamReport>(other, 'stream', request)).content).toBe(await expected(request));
    expect(engineWorkers()).toBe(1);
    await closeTabs();
  }, 180_000);

  it('three tabs: the owner closes, one of the other two takes over, the third follows it', async () => {
    const owner = await openTab();
    expect((await call<LoadReport>(owner, 'load', { kind: 'url', url: modelUrl }, OPTIONS)).error).toBeUndefined();
    const b = await openTab();
    const c = await openTab();
    expect(engineWorkers()).toBe(1);
    await owner.close();
    await expect.poll(async () => [await roleOf(b), await roleOf(c)].sort(), { timeout: 30_000 }).toEqual(['follower', 'owner']);
    // The new owner loads the model again by itself; the follower hears of it.
    for (const tab of [b, c]) {
      await waitForModel(tab, 60_000);
    }
    const qb = prompt('B asks.', 30);
    const qc = prompt('C asks.', 30);
    const [rb, rc] = await Promise.all([call<StreamReport>(b, 'stream', qb), call<StreamReport>(c, 'stream', qc)]);
    expect(rb.content).toBe(await expected(qb));
    expect(rc.content).toBe(await expected(qc));
    expect(engineWorkers()).toBe(1);
    expect((await call<number>(b, 'enginesMade')) + (await call<number>(c, 'enginesMade'))).toBe(1);
    await closeTabs();
  }, 180_000);

  it('an owner tab that stops answering (its page hangs) fails the other tab\'s calls with a typed error instead of hanging them', async () => {
    const owner = await openTab();
    expect((await call<LoadReport>(owner, 'load', { kind: 'url', url: modelUrl }, OPTIONS)).error).toBeUndefined();
    const other = await openTab('#ownerTimeout=1500');
    await waitForModel(other);
    // The owner's page blocks its main thread (which relays the engine to the other tabs) for 6 s.
    void owner.evaluate(() => {
      const until = Date.now() + 6_000;
      while (Date.now() < until);
    }).catch(() => undefined);
    const started = Date.now();
    const report = await call<StreamReport>(other, 'stream', prompt('Anyone there?'));
    expect(report.error?.code).toBe('worker-failed');
    expect(report.error?.detail).toBe('owner-silent');
    expect(Date.now() - started).toBeLessThan(5_500); // failed before the owner woke up
    await closeTabs();
  }, 120_000);
});

// Firefox: two tabs of one profile (its Web Locks and BroadcastChannel), through the cross-engine
// harness. Not WebKit: its WebDriver server holds one window per session, and two sessions do not
// share storage.
describe.each(testBrowsers().filter((name) => name === 'firefox'))('one engine for all tabs (%s)', (browserName) => {
  let browser: TestBrowser;
  const tabs: TestPage[] = [];

  beforeAll(async () => {
    browser = await launchBrowser(browserName);
  }, 120_000);

  afterAll(async () => {
    for (const tab of tabs) await tab.close();
    await browser?.close();
  });

  async function open(): Promise<TestPage> {
    const tab = await browser.newPage();
    tabs.push(tab);
    await tab.goto(pageUrl);
    await tab.waitForFunction(() => typeof (window as unknown as { tab?: unknown }).tab === 'object');
    return tab;
  }

  it('a second tab uses the first tab\'s model, and generations from both queue, each answer right', async () => {
    const spec = { kind: 'url', url: modelUrl };
    const first = await open();
    const loaded = await call<LoadReport>(first, 'load', spec, OPTIONS);
    expect(loaded.error).toBeUndefined();
    expect(await call<string>(first, 'role')).toBe('owner');

    const second = await open();
    await second.waitForFunction(() => (window as unknown as { tab: { info(): unknown } }).tab.info() !== undefined);
    expect(await call<string>(second, 'role')).toBe('follower');
    const joined = await call<LoadReport>(second, 'load', spec, OPTIONS);
    expect(joined.info).toEqual(loaded.info);
    expect(joined.progress).toEqual([]);
    expect(await call<number>(second, 'enginesMade')).toBe(0);

    await expectBothAnswered(first, second);
    expect(browser.consoleErrors, browser.consoleErrors.join('\n')).toEqual([]);
  }, 180_000);
});
