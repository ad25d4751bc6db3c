// <qwen-chat> when things go wrong, in headless Chromium with the real engine: the engine's worker
// dying or hanging mid-answer, storage running full on save, two tabs on one conversation, Esc
// after Regenerate, Clear chat and its Undo. Answers are checked against the same engine in Node
// (greedy, so the text is a function of the conversation the page sent); screenshots of the error
// states go to test-results/.
import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { CpuEngine } from '../../src/engine/cpu-engine.ts';
import type { ChatMessage } from '../../src/engine/types.ts';
import { STRINGS } from '../../src/ui/i18n.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { launchChromium, type LaunchedChromium } from '../support/chromium.ts';
import { startStaticServer, type StaticServer } from '../support/static-server.ts';
import { startVitePages } from '../support/vite-pages.ts';

const FIXTURE = 'tiny-f32';
const MODEL_PATH = '/models/tiny.gguf';
const HANG_MS = 4000;
const STOP_MS = 1500;
const en = STRINGS.en;

// The element with an engine of the page's own: the app's switching engine over the real engine
// worker with scripted faults (tests/support/faulty-engine-worker.ts) and short hang timeouts.
const HARNESS_JS = `
import '/src/ui/qwen-chat.ts';
import { createEngine } from '/src/engine/backend.ts';
import { createWorkerEngine } from '/src/engine/worker-engine.ts';
const chat = document.querySelector('qwen-chat');
window.workers = [];
chat.engine = await createEngine({ backend: 'cpu', engines: { cpu: () => createWorkerEngine({
  threads: 2, hangTimeoutMs: ${HANG_MS}, stopTimeoutMs: ${STOP_MS},
  createWorker: () => { const w = new Worker('/tests/support/faulty-engine-worker.ts', { type: 'module' }); window.workers.push(w); return w; },
}) } });
window.log = [];
for (const type of ['ready', 'token', 'message', 'error']) {
  chat.addEventListener(type, (event) => window.log.push({ type, detail: JSON.parse(JSON.stringify(event.detail ?? null)) }));
}
window.fault = (kind) => window.workers.at(-1).postMessage({ qwenTestFault: kind });
await chat.updateComplete;
window.harnessReady = true;
`;

const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>trust</title><link rel="icon" href="data:,"></head>
<body style="margin:0;height:100vh"><qwen-chat temperature="0" max-tokens="300"></qwen-chat><script type="module" src="/__ui-trust/harness.js"></script></body></html>`;

interface Logged {
  type: string;
  detail: { message?: { content: string; finishReason?: string }; error?: { code?: string; message: string } };
}

let vite: ViteDevServer;
let files: StaticServer;
let chromium: LaunchedChromium;
let pageUrl: string;
let modelUrl: string;
let oracle: CpuEngine;

async function greedy(messages: ChatMessage[], maxTokens: number): Promise<string> {
  const completion = await oracle.chat.completions.create({ messages, temperature: 0, max_tokens: maxTokens, enable_thinking: false });
  return completion.choices[0].message.content;
}

async function openApp(browser: LaunchedChromium = chromium): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1200, height: 800 });
  await page.goto(pageUrl);
  await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
  return page;
}

const log = (page: Page, type: string) =>
  page.evaluate((t) => (window as unknown as { log: Logged[] }).log.filter((e) => e.type === t), type);

async function waitFor(page: Page, type: string, count: number): Promise<Logged[]> {
  await page.waitForFunction(([t, n]) => (window as unknown as { log: Logged[] }).log.filter((e) => e.type === t).length >= (n as number),
    [type, count] as const, { timeout: 60_000 });
  return log(page, type);
}

/** Loads the fixture by URL (not kept in storage) and waits until it is ready. */
async function loadModel(page: Page): Promise<void> {
  const before = (await log(page, 'ready')).length;
  await page.evaluate((url) => void document.querySelector('qwen-chat')!.loadModel({ kind: 'url', url, cache: false }), modelUrl);
  await waitFor(page, 'ready', before + 1);
}

async function type(page: Page, text: string): Promise<void> {
  await page.locator('qwen-composer textarea').fill(text);
  await page.locator('qwen-composer textarea').press('Enter');
}

/** The conversation as shown: role, text and the note under each message. */
async function shown(page: Page): Promise<Array<{ role: string; text: string; error?: string }>> {
  return page.evaluate(() => {
    const list = document.querySelector('qwen-chat')!.shadowRoot!.querySelector('qwen-message-list')!.shadowRoot!;
    return [...list.querySelectorAll('qwen-message')].map((m) => {
      const root = m.shadowRoot!;
      const article = root.querySelector('article')!;
      const text = article.classList.contains('user') ? root.querySelector('.user-text')!.textContent! : root.querySelector('.markdown')!.textContent!;
      const error = root.querySelector('.error')?.textContent ?? undefined;
      return { role: article.className, text, ...(error ? { error } : {}) };
    });
  });
}

/** How many messages each stored conversation holds. */
const storedLengths = (page: Page): Promise<number[]> => page.evaluate(async () => {
  const request = indexedDB.open('qwen-web-chat');
  const db: IDBDatabase = await new Promise((resolve) => (request.onsuccess = () => resolve(request.result)));
  const all: { messages: unknown[] }[] = await new Promise((resolve) => {
    const get = db.transaction('conversations').objectStore('conversations').getAll();
    get.onsuccess = () => resolve(get.result);
  });
  db.close();
  return all.map((c) => c.messages.length);
});

/** The open conversation as the element holds it (raw text, as the engine gets it). */
const stored = (page: Page): Promise<ChatMessage[]> =>
  page.evaluate(() => document.querySelector('qwen-chat')!.conversation.messages.map((m) => ({ role: m.role, content: m.content })));

beforeAll(async () => {
  const path = await ensureFixture(FIXTURE);
  oracle = new CpuEngine();
  await oracle.load({ kind: 'path', path }, { contextLength: 4096 });
  files = await startStaticServer({ files: { [MODEL_PATH]: path } });
  modelUrl = `${files.url}${MODEL_PATH}`;
  const pages = await startVitePages({
    '/__ui-trust/harness.js': { type: 'text/javascript', body: HARNESS_JS },
    '/__ui-trust/index.html': { type: 'text/html', body: PAGE_HTML },
  });
  vite = pages.server;
  pageUrl = `${pages.url}/__ui-trust/index.html`;
  chromium = await launchChromium();
  mkdirSync('test-results', { recursive: true });
}, 300_000);

afterAll(async () => {
  await chromium?.close();
  await vite?.close();
  await files?.close();
  await oracle?.unload();
});

describe('<qwen-chat> when the engine worker dies or hangs', () => {
  let page: Page;
  beforeAll(async () => {
    page = await openApp();
    await loadModel(page);
  }, 120_000);
  afterAll(() => page?.close());

  it.each([
    ['closes itself', 'close', false, HANG_MS],
    ['hangs and the user presses Esc', 'hang', true, STOP_MS],
  ] as const)('ends the answer with its text when the worker %s, says so, and answers the next question on a fresh worker', async (_, fault, pressEsc, limitMs) => {
    const messagesBefore = (await log(page, 'message')).length;
    const tokensBefore = (await log(page, 'token')).length;
    await type(page, `Tell me a long story (${fault})`);
    await waitFor(page, 'token', tokensBefore + 5);
    await page.evaluate((kind) => (window as unknown as { fault: (k: string) => void }).fault(kind), fault);
    const started = Date.now();
    if (pressEsc) await page.keyboard.press('Escape');
    // The UI comes back: Send instead of Stop, the answer ended with a note, the model marked gone.
    await page.locator('qwen-composer button.send').waitFor({ timeout: limitMs + 5000 });
    expect(Date.now() - started).toBeLessThan(limitMs + 4000);
    const answer = (await shown(page)).at(-1)!;
    expect(answer.error).toBe(en.engineStopped);
    // What the page kept is what streamed, a prefix of the engine's full answer.
    const conversation = await stored(page);
    const partial = conversation.at(-1)!.content;
    expect(partial.length).toBeGreaterThan(0);
    expect(partial).toBe((await log(page, 'token')).slice(tokensBefore).map((e) => (e.detail as { content?: string }).content ?? '').join(''));
    expect((await greedy(conversation.slice(0, -1), 300)).startsWith(partial)).toBe(true);
    expect(await page.locator('qwen-chat .model-status').textContent()).toBe(en.noModel);
    expect(await page.locator('qwen-chat .banner.notice').textContent()).toContain('was restarted');
    expect(await page.locator('qwen-message').last().locator('.status').textContent()).toMatch(/stopped$/);
    await page.screenshot({ path: `test-results/ui-trust-engine-${fault}.png` });
    expect((await log(page, 'message')).length).toBe(messagesBefore); // no 'message' event for a failed answer

    // The next question reloads the model (a fresh worker) and answers the whole conversation.
    const readyBefore = (await log(page, 'ready')).length;
    const workersBefore = await page.evaluate(() => (window as unknown as { workers: unknown[] }).workers.length);
    await type(page, 'Go on.');
    await waitFor(page, 'ready', readyBefore + 1);
    const [reply] = (await waitFor(page, 'message', messagesBefore + 1)).slice(-1);
    expect(await page.evaluate(() => (window as unknown as { workers: unknown[] }).workers.length)).toBe(workersBefore + 1);
    expect(reply.detail.message!.content).toBe(await greedy((await stored(page)).slice(0, -1), 300));
  }, 120_000);
});

describe('<qwen-chat> keyboard and destructive actions', () => {
  let page: Page;
  beforeAll(async () => {
    page = await openApp();
    await page.evaluate(() => indexedDB.deleteDatabase('qwen-web-chat'));
    await page.reload();
    await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
    await loadModel(page);
  }, 120_000);
  afterAll(() => page?.close());

  it('stops an answer started by Regenerate with Esc, even with focus on <body>', async () => {
    await type(page, 'Count slowly to a thousand.');
    await waitFor(page, 'message', 1);
    const tokens = (await log(page, 'token')).length;
    await page.locator('qwen-message .regenerate').click();
    await waitFor(page, 'token', tokens + 3);
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    expect(await page.evaluate(() => document.activeElement === document.body)).toBe(true);
    await page.keyboard.press('Escape');
    const [stopped] = (await waitFor(page, 'message', 2)).slice(-1);
    expect(stopped.detail.message!.finishReason).toBe('abort');
  });

  it('clears the chat with Undo offered, and the undone chat is the one kept', async () => {
    const before = await shown(page);
    expect(before.length).toBe(2);
    await page.locator('qwen-chat button.clear').click();
    expect(await shown(page)).toEqual([]);
    const undo = page.locator('qwen-chat .banner.undo');
    expect(await undo.locator('span').textContent()).toBe(en.chatCleared);
    await undo.locator('button.undo-action').click();
    expect(await shown(page)).toEqual(before);
    await expect.poll(() => storedLengths(page)).toEqual([2]);
    await page.reload();
    await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
    await expect.poll(() => shown(page)).toEqual(before);

    // Undo while the clear is still being saved: when that save lands, neither the chat shown nor
    // the stored one loses the messages brought back. A transaction of the test's holds the store
    // so that the clear's save waits behind it until Undo is clicked.
    await page.evaluate(async () => {
      const request = indexedDB.open('qwen-web-chat');
      const db: IDBDatabase = await new Promise((resolve) => (request.onsuccess = () => resolve(request.result)));
      let held = true;
      const store = db.transaction('conversations', 'readwrite').objectStore('conversations');
      const hold = () => { if (held) store.count().onsuccess = hold; };
      hold();
      const chat = document.querySelector('qwen-chat')!;
      chat.shadowRoot!.querySelector<HTMLButtonElement>('button.clear')!.click();
      await new Promise((resolve) => setTimeout(resolve, 100)); // the clear's save is queued by now
      chat.shadowRoot!.querySelector<HTMLButtonElement>('.banner.undo button.undo-action')!.click();
      held = false;
      db.close();
    });
    await expect.poll(() => storedLengths(page)).toEqual([2]);
    await page.evaluate(() => document.querySelector('qwen-chat')!.updateComplete);
    expect(await shown(page)).toEqual(before);
    await page.reload();
    await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
    await expect.poll(() => shown(page)).toEqual(before);

    // Without Undo, cleared stays cleared across a reload.
    await page.locator('qwen-chat button.clear').click();
    await expect.poll(() => storedLengths(page)).toEqual([0]);
    await page.reload();
    await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
    expect(await shown(page)).toEqual([]);
  });
});

describe('<qwen-chat> in two tabs on one conversation', () => {
  it("keeps both tabs' turns: tab B sees tab A's turn at once, and a save from a stale copy merges", async () => {
    const a = await openApp();
    await a.evaluate(() => indexedDB.deleteDatabase('qwen-web-chat'));
    await a.reload();
    await a.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
    await loadModel(a);
    await type(a, 'First question');
    await waitFor(a, 'message', 1);
    const b = await openApp();
    await loadModel(b);
    // B reopened the latest conversation: A's.
    await expect.poll(() => shown(b)).toEqual(await shown(a));

    // A adds a turn; B shows it without a reload.
    await type(a, 'Second question from A');
    await waitFor(a, 'message', 2);
    await expect.poll(() => shown(b)).toEqual(await shown(a));

    // B answers at length; while it streams (its copy is now stale) A adds another turn.
    await b.evaluate(() => {
      document.querySelector('qwen-chat')!.maxTokens = 120;
    });
    const bTokens = (await log(b, 'token')).length;
    await type(b, 'Question from B');
    await waitFor(b, 'token', bTokens + 2);
    await type(a, 'Third question from A');
    await waitFor(a, 'message', 3);
    await waitFor(b, 'message', 1);

    // Every turn of both tabs is kept, in both tabs and after a reload.
    const expectedUsers = ['First question', 'Second question from A', 'Question from B', 'Third question from A'];
    const users = async (page: Page) => (await shown(page)).filter((m) => m.role === 'user').map((m) => m.text).sort();
    await expect.poll(() => users(b)).toEqual([...expectedUsers].sort());
    await expect.poll(() => users(a)).toEqual([...expectedUsers].sort());
    for (const page of [a, b]) {
      await page.reload();
      await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
      await expect.poll(() => users(page)).toEqual([...expectedUsers].sort());
      expect((await shown(page)).length).toBe(8); // each question with its answer
    }
    await a.close();
    await b.close();
  }, 180_000);
});

describe('<qwen-chat> downloading without a network', () => {
  it('says it is offline while it retries, then points to a local file; the file loads', async () => {
    const page = await openApp();
    // Online first, so the engine's worker and its modules are in place (the built site has them
    // from its service worker; this dev page has none), then the network goes.
    await loadModel(page);
    await page.context().setOffline(true);
    try {
      await page.locator('qwen-chat button.open-models').click();
      await page.locator('qwen-model-manager #model-url').fill(`${files.url}/models/offline.gguf`);
      await page.locator('qwen-model-manager button.load-url').click();
      const progress = page.locator('qwen-chat .progress-text');
      await expect.poll(() => progress.textContent({ timeout: 500 }).catch(() => ''), { timeout: 10_000 })
        .toMatch(/^Downloading offline\.gguf: You are offline\. Retrying in [124] s \(attempt [234] of 4\)…$/);
      const banner = page.locator('qwen-chat .banner.error');
      await banner.waitFor({ timeout: 20_000 });
      expect(await banner.textContent()).toMatch(/You are offline, so the model cannot be downloaded now/);
      await page.screenshot({ path: 'test-results/ui-trust-offline.png' });
      await banner.locator('button.open-local').click();
      await expect.poll(() => page.evaluate(() => document.querySelector('qwen-chat')!.shadowRoot!.querySelector('qwen-model-manager')!
        .shadowRoot!.activeElement?.id)).toBe('model-file');
      // (This dev page fetches the kernels' wasm and workers on each load; the built site serves
      // them from its service worker offline, see tests/browser/site.test.ts. So the network comes back here.)
      await page.context().setOffline(false);
      await page.locator('qwen-model-manager #model-file').setInputFiles(await ensureFixture(FIXTURE));
      await waitFor(page, 'ready', 2);
    } finally {
      await page.context().setOffline(false);
      await page.close();
    }
  }, 60_000);
});

describe('<qwen-chat> when storage is full', () => {
  // CDP's quota override holds only for an origin that has not used storage yet in that browser:
  // a browser of its own, the quota set before the first page.
  let quotaChromium: LaunchedChromium;
  let page: Page;
  beforeAll(async () => {
    quotaChromium = await launchChromium();
    page = await quotaChromium.newPage();
    // The override lasts as long as this DevTools session: the page keeps it open.
    const session = await page.context().newCDPSession(page);
    await session.send('Storage.overrideQuotaForOrigin', { origin: new URL(pageUrl).origin, quotaSize: 4_000_000 });
    await page.setViewportSize({ width: 1200, height: 800 });
    await page.goto(pageUrl);
    await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
    // A local file is read in place: the model takes no storage.
    await page.locator('qwen-chat button.open-models').click();
    await page.locator('qwen-model-manager #model-file').setInputFiles(await ensureFixture(FIXTURE));
    await waitFor(page, 'ready', 1);
    await page.locator('qwen-chat button.close-panel').click();
  }, 120_000);
  afterAll(() => quotaChromium?.close());

  it('keeps a turn that could not be saved, says why and what to do, and saves it once space is freed', async () => {
    await type(page, 'A question that is saved');
    await waitFor(page, 'message', 1);
    expect(await page.locator('qwen-chat .save-error').count()).toBe(0);

    // Fill the rest of the quota with other data, as other sites' data or models would.
    const filled = await page.evaluate(async () => {
      const open = indexedDB.open('junk', 1);
      open.onupgradeneeded = () => open.result.createObjectStore('junk');
      const db: IDBDatabase = await new Promise((resolve) => (open.onsuccess = () => resolve(open.result)));
      let stored = 0;
      for (let i = 0; ; i++) {
        const ok = await new Promise<boolean>((resolve) => {
          const tx = db.transaction('junk', 'readwrite');
          tx.objectStore('junk').put(new Uint8Array(200_000).map((_, j) => (j * 31 + i) & 255), i);
          tx.oncomplete = () => resolve(true);
          tx.onerror = tx.onabort = () => resolve(false);
        });
        if (!ok) break;
        stored++;
      }
      db.close();
      return stored;
    });
    expect(filled).toBeGreaterThan(0);

    await type(page, 'A question asked when storage is full');
    await waitFor(page, 'message', 2);
    const banner = page.locator('qwen-chat .save-error');
    await banner.waitFor();
    expect(await banner.textContent()).toContain(en.saveFailed.replace('{reason}', en.storageFull).slice(0, 60));
    const conversation = await shown(page);
    expect(conversation.length).toBe(4);
    await page.screenshot({ path: 'test-results/ui-trust-storage-full.png' });

    // Free space: the retry saves the turn, the banner goes, and a reload shows it.
    await page.evaluate(() => new Promise((resolve) => (indexedDB.deleteDatabase('junk').onsuccess = resolve)));
    await banner.waitFor({ state: 'detached', timeout: 30_000 });
    await page.reload();
    await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
    await expect.poll(() => shown(page)).toEqual(conversation);
  }, 120_000);
});
