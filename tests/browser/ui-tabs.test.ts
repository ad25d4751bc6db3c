// Two tabs of the app, as a user opens them: the second shows the model the first loaded at once
// (no load, no engine worker of its own), answers from it, and when the first tab is closed in the
// middle of an answer, keeps the text so far, takes the engine over and answers again. Answers are
// checked against Node's CpuEngine answering the same messages greedily (see ui-chat.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ViteDevServer } from 'vite';
import type { Page } from 'playwright-core';
import { CpuEngine } from '../../src/engine/cpu-engine.ts';
import { STRINGS } from '../../src/ui/i18n.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { launchChromium, type LaunchedChromium } from '../support/chromium.ts';
import { startStaticServer, type StaticServer } from '../support/static-server.ts';
import { startVitePages } from '../support/vite-pages.ts';

const FIXTURE = 'tiny-f32';
const MODEL_PATH = '/models/tiny.gguf';
const en = STRINGS.en;

const HARNESS_JS = `
import '/src/ui/qwen-chat.ts';
const chat = document.querySelector('qwen-chat');
window.log = [];
for (const type of ['ready', 'token', 'message', 'error']) {
  chat.addEventListener(type, (event) => window.log.push({ type, detail: JSON.parse(JSON.stringify(event.detail ?? null)) }));
}
await chat.updateComplete;
window.harnessReady = true;
`;

const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>chat</title><link rel="icon" href="data:,"></head>
<body style="margin:0;height:100vh"><qwen-chat temperature="0"></qwen-chat><script type="module" src="/__ui-tabs/harness.js"></script></body></html>`;

interface Logged {
  type: string;
  detail: { message?: { content: string; error?: string; finishReason?: string } };
}

let vite: ViteDevServer;
let files: StaticServer;
let chromium: LaunchedChromium;
let pagesUrl: string;
let oracle: CpuEngine;

async function openApp(): Promise<Page> {
  const page = await chromium.newPage();
  await page.setViewportSize({ width: 1200, height: 800 });
  await page.goto(`${pagesUrl}/__ui-tabs/index.html`);
  await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
  return page;
}

const log = (page: Page, type: string) => page.evaluate((t) => (window as unknown as { log: Logged[] }).log.filter((e) => e.type === t), type);

async function send(page: Page, text: string): Promise<void> {
  await page.locator('qwen-composer textarea').fill(text);
  await page.keyboard.press('Enter');
}

async function greedy(content: string, maxTokens: number): Promise<string> {
  const completion = await oracle.chat.completions.create({ messages: [{ role: 'user', content }], temperature: 0, max_tokens: maxTokens, enable_thinking: false });
  return completion.choices[0].message.content;
}

/** The text of every message shown. */
const shownText = (page: Page) => page.evaluate(() => {
  const list = document.querySelector('qwen-chat')!.shadowRoot!.querySelector('qwen-message-list')!.shadowRoot!;
  return [...list.querySelectorAll('qwen-message')].map((m) => m.shadowRoot!.textContent).join('\n');
});

const engineWorkers = (page: Page) => page.workers().filter((worker) => worker.url().includes('engine-worker')).length;

beforeAll(async () => {
  const path = await ensureFixture(FIXTURE);
  oracle = new CpuEngine();
  await oracle.load({ kind: 'path', path });
  files = await startStaticServer({ files: { [MODEL_PATH]: path } });
  const pages = await startVitePages({
    '/__ui-tabs/harness.js': { type: 'text/javascript', body: HARNESS_JS },
    '/__ui-tabs/index.html': { type: 'text/html', body: PAGE_HTML },
  });
  vite = pages.server;
  pagesUrl = pages.url;
  chromium = await launchChromium();
}, 120_000);

afterAll(async () => {
  await chromium?.close();
  await vite?.close();
  await files?.close();
  await oracle?.unload();
});

describe('<qwen-chat> in two tabs', () => {
  it('the second tab uses the first tab\'s model at once; closing the first mid-answer hands the model over', async () => {
    const first = await openApp();
    await first.evaluate((url) => (document.querySelector('qwen-chat') as unknown as { loadModel(m: string): Promise<unknown> }).loadModel(url), `${files.url}${MODEL_PATH}`);
    expect(await first.locator('qwen-chat .model-status').textContent()).toBe('tiny.gguf · F32 · cpu');
    expect(engineWorkers(first)).toBe(1);

    // The second tab: ready with the same model, without loading it and without a worker of its own.
    const second = await openApp();
    await expect.poll(() => second.locator('qwen-chat .model-status').textContent(), { timeout: 30_000 }).toBe('tiny.gguf · F32 · cpu');
    expect(await log(second, 'ready')).toHaveLength(1);
    expect(engineWorkers(second)).toBe(0);
    const requestsBefore = files.requests.length;
    await second.evaluate(() => document.querySelector('qwen-chat')!.setAttribute('max-tokens', '24'));
    await send(second, 'Hello from the second tab');
    await second.waitForFunction(() => (window as unknown as { log: Logged[] }).log.some((e) => e.type === 'message'), undefined, { timeout: 60_000 });
    const [answered] = await log(second, 'message');
    expect(answered.detail.message!.content).toBe(await greedy('Hello from the second tab', 24));
    expect(files.requests.length).toBe(requestsBefore); // nothing downloaded or read again

    // An answer streams in the second tab; the first tab (which runs the engine) is closed under it.
    await second.evaluate(() => document.querySelector('qwen-chat')!.setAttribute('max-tokens', '400'));
    await send(second, 'Write a long story');
    await second.waitForFunction(() => (window as unknown as { log: Logged[] }).log.filter((e) => e.type === 'token').length >= 3, undefined, { timeout: 60_000 });
    await first.close();
    // The answer ends with what streamed so far and says why.
    await expect.poll(() => shownText(second), { timeout: 60_000 }).toContain(en.ownerTabClosed);
    // The second tab runs the engine now, with the same model, loaded again by itself.
    await expect.poll(() => second.locator('qwen-chat .model-status').textContent(), { timeout: 60_000 }).toBe('tiny.gguf · F32 · cpu');
    expect(await second.locator('qwen-chat .banner.notice').textContent()).toContain(en.engineTakenOver);
    expect(engineWorkers(second)).toBe(1);
    await second.evaluate(() => document.querySelector('qwen-chat')!.setAttribute('max-tokens', '24'));
    await second.locator('qwen-conversation-list button.new').click();
    await send(second, 'And now?');
    await second.waitForFunction(() => (window as unknown as { log: Logged[] }).log.filter((e) => e.type === 'message').length >= 2, undefined, { timeout: 60_000 });
    const messages = await log(second, 'message');
    expect(messages[1].detail.message!.content).toBe(await greedy('And now?', 24));
    expect(await log(second, 'error')).toEqual([]);
    await second.close();
  }, 240_000);
});

