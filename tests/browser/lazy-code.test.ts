// Parts of the built app that load when first needed (the engine's chunk on the page, the kernels'
// host in the engine's worker) and whose fetch fails: a connection dropped on a first visit, a
// server answering 503 under load. In every engine (tests/support/browsers.ts) the person gets a
// typed error that says what to do (never an uncaught one) and is one step from a working model:
// Chromium and WebKit fetch the file again by themselves; Firefox keeps a failed module fetch for
// the life of the page or worker, so there the page's "Reload page" (page code) or the next load
// (a fresh worker) is that step. The embed example is used: it has no service worker, so every
// fetch reaches the server.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readdir } from 'node:fs/promises';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { launchBrowser, testBrowsers, type TestBrowser, type TestPage } from '../support/browsers.ts';
import { buildSite, type SiteBuild } from '../support/site-build.ts';
import { startStaticServer, type StaticServer } from '../support/static-server.ts';

const MODEL_PATH = '/models/tiny-f32.gguf';

let site: SiteBuild;
let server: StaticServer;
/** URL paths of the chunks: the engine (imported by the page) and the kernels' host (by the worker). */
let engineChunk: string;
let kernelHostChunk: string;

beforeAll(async () => {
  site = await buildSite();
  const assets = await readdir(`${site.dir}/assets`);
  const chunk = (prefix: string) => `/assets/${assets.find((name) => name.startsWith(prefix) && name.endsWith('.js'))!}`;
  engineChunk = chunk('engine-factory-');
  kernelHostChunk = chunk('kernel-platform-browser-');
  server = await startStaticServer({ root: site.dir, isolation: false, files: { [MODEL_PATH]: await ensureFixture('tiny-f32') } });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await site?.remove();
});

interface LoadOutcome {
  ok: boolean;
  name?: string;
  code?: string;
  detail?: string;
  message?: string;
  /** The codes of the element's 'error' events. */
  events: (string | undefined)[];
  /** The error banner's text and whether it offers to reload the page. */
  banner?: string;
  offersReload: boolean;
}

describe.each(testBrowsers())('lazily loaded code in %s', (browserName) => {
  let browser: TestBrowser;
  let page: TestPage;
  const retriesByItself = browserName !== 'firefox';

  beforeAll(async () => {
    browser = await launchBrowser(browserName);
    page = await browser.newPage();
  }, 120_000);

  afterAll(async () => {
    await page?.close();
    await browser?.close();
  });

  const requestsOf = (path: string) => server.requests.filter((r) => r.path === path).length;

  async function openEmbed(): Promise<void> {
    await page.goto(`${server.url}/examples/embed.html`);
    await page.waitForFunction(() => document.querySelector('qwen-chat')?.shadowRoot != null, 60_000);
  }

  /** loadModel() as a page calls it, with what the person and the page were told. */
  function load(): Promise<LoadOutcome> {
    return page.evaluate(async (url) => {
      const chat = document.querySelector('qwen-chat')!;
      const events: (string | undefined)[] = [];
      chat.addEventListener('error', (e) => events.push((e as unknown as CustomEvent<{ error: { code?: string } }>).detail.error.code));
      const outcome = await chat.loadModel(url).then(
        (info) => ({ ok: true, name: info.name }),
        (e: { name?: string; code?: string; detail?: string; message?: string }) =>
          ({ ok: false, name: e.name, code: e.code, detail: e.detail, message: e.message }),
      );
      await chat.updateComplete;
      const banner = chat.shadowRoot!.querySelector('.banner.error');
      return { ...outcome, events, banner: banner?.textContent?.replace(/\s+/g, ' ').trim(), offersReload: banner?.querySelector('button.reload-page') != null };
    }, `${server.url}${MODEL_PATH}`);
  }

  /** Clicks the banner's "Reload page" and waits for the reloaded page. */
  async function reloadFromBanner(): Promise<void> {
    await page.evaluate(() => {
      (window as unknown as { beforeReload: boolean }).beforeReload = true;
      // After this call has returned: the page goes away with the click.
      setTimeout(() => document.querySelector('qwen-chat')!.shadowRoot!.querySelector<HTMLButtonElement>('button.reload-page')!.click(), 50);
    });
    const end = Date.now() + 60_000;
    for (;;) {
      const reloaded = await page.evaluate(() => !(window as unknown as { beforeReload?: boolean }).beforeReload &&
        document.querySelector('qwen-chat')?.shadowRoot != null).catch(() => false);
      if (reloaded) return;
      if (Date.now() > end) throw new Error('the page did not reload');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /**
   * Uncaught errors since the test began. Firefox reports each failed module fetch itself
   * ("Loading module from … was blocked"), caught or not: that report is the browser's, not ours.
   */
  const uncaught = () => browser.consoleErrors.filter((line) => line.startsWith('uncaught') && !/Loading module from .* was blocked/.test(line));
  beforeEach(() => void browser.consoleErrors.splice(0));

  it('the engine\'s code failing to come: a typed error saying to reload, and Reload page brings a working model', async () => {
    server.setFault(engineChunk, { status: 503 });
    const before = requestsOf(engineChunk);
    await openEmbed();
    const failed = await load();
    expect(failed).toMatchObject({ ok: false, name: 'CodeUnavailableError', code: 'code-unavailable', events: ['code-unavailable'], offersReload: true });
    expect(failed.message).toMatch(/^The engine could not be loaded \(.+\); check the connection and reload the page$/);
    expect(failed.banner).toContain('The engine could not be loaded');
    // Tried twice (here, at the element's start and on load) where the browser fetches it again.
    if (retriesByItself) expect(requestsOf(engineChunk) - before).toBeGreaterThanOrEqual(2);

    server.setFault(engineChunk, undefined);
    await reloadFromBanner();
    expect(await load()).toMatchObject({ ok: true, name: expect.stringContaining('tiny-f32'), events: [], offersReload: false });
    expect(uncaught()).toEqual([]);
  }, 300_000);

  it('the engine\'s code failing once: the load goes on (Chromium, WebKit) or Reload page is the one step (Firefox)', async () => {
    server.setFault(engineChunk, { status: 503, times: 1 });
    await openEmbed();
    const outcome = await load();
    if (retriesByItself) {
      expect(outcome).toMatchObject({ ok: true, name: expect.stringContaining('tiny-f32'), events: [] });
    } else {
      expect(outcome).toMatchObject({ ok: false, code: 'code-unavailable', offersReload: true });
      await reloadFromBanner();
      expect(await load()).toMatchObject({ ok: true, events: [] });
    }
    expect(uncaught()).toEqual([]);
  }, 300_000);

  it('the worker\'s kernel host failing once: the load goes on, or the next load (a fresh worker) works without a reload', async () => {
    server.setFault(kernelHostChunk, { status: 503, times: 1 });
    const before = requestsOf(kernelHostChunk);
    await openEmbed();
    const outcome = await load();
    if (retriesByItself) {
      expect(outcome).toMatchObject({ ok: true, events: [] });
      expect(requestsOf(kernelHostChunk) - before).toBe(2);
    } else {
      expect(outcome).toMatchObject({ ok: false, code: 'load-failed', detail: 'code-unavailable', events: ['load-failed'], offersReload: true });
      expect(outcome.message).toMatch(/^The kernels' host could not be loaded/);
      expect(await load()).toMatchObject({ ok: true, events: [] });
    }
    // The model answers.
    const answer = await page.evaluate(async () => {
      const chat = document.querySelector('qwen-chat')!;
      chat.setAttribute('max-tokens', '4');
      chat.setAttribute('temperature', '0');
      const message = new Promise<string>((resolve) => chat.addEventListener('message', (e) => resolve((e as CustomEvent<{ message: { role: string } }>).detail.message.role), { once: true }));
      await chat.send('Hi');
      return message;
    });
    expect(answer).toBe('assistant');
    expect(uncaught()).toEqual([]);
  }, 300_000);

  // Last: once the app page loads, its service worker controls every page of the origin here.
  it('the app page\'s code failing to come: the page says what happened, and loads once it is back', async () => {
    server.setFault('/qwen-chat.js', { status: 503 });
    await page.goto(`${server.url}/`);
    await page.waitForFunction(() => document.documentElement.dataset.ready === 'failed', 60_000);
    const shown = await page.evaluate(() => document.querySelector('.app-loading')?.textContent);
    expect(shown).toMatch(/^qwen-web could not be loaded \(.+\); check the connection and reload the page$/);

    server.setFault('/qwen-chat.js', undefined);
    await page.goto(`${server.url}/`);
    await page.waitForFunction(() => document.documentElement.dataset.ready === 'true', 60_000);
    expect(uncaught()).toEqual([]);
  }, 300_000);
});
