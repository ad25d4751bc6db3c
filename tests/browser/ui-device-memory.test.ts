// A device with too little memory for a model, in headless Chromium with the real engine: V8's
// --wasm-max-mem-pages limits WebAssembly memory the way a phone's browser does (the same
// RangeError from the same call). The load fails with the numbers and what needs less, the error
// banner offers only smaller catalogue models, and the model list marks what does not fit: from a
// test allocation in a throwaway worker, a failed load here, and navigator.deviceMemory where the
// browser says it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { CATALOGUE } from '../../src/storage/catalogue.ts';
import { smallerModels } from '../../src/ui/device.ts';
import { STRINGS } from '../../src/ui/i18n.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { launchChromium, type LaunchedChromium } from '../support/chromium.ts';
import { startStaticServer, type StaticServer } from '../support/static-server.ts';
import { CHAT_HARNESS_JS } from '../support/chat-harness.ts';
import { startVitePages } from '../support/vite-pages.ts';

const MODEL_PATH = '/models/tiny.gguf';
/** WebAssembly memories of at most 64 MiB: room for the kernels, not for the 45 MB model and its buffers. */
const MAX_WASM_PAGES = 1024;

const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>device memory</title><link rel="icon" href="data:,"></head>
<body style="margin:0;height:100vh"><qwen-chat></qwen-chat><script type="module" src="/__memory/harness.js"></script></body></html>`;

let vite: ViteDevServer;
let files: StaticServer;
let baseUrl: string;

async function open(chromium: LaunchedChromium, deviceMemory?: number): Promise<Page> {
  const page = await chromium.newPage();
  await page.setViewportSize({ width: 1200, height: 800 });
  if (deviceMemory !== undefined) {
    await page.addInitScript(`Object.defineProperty(Navigator.prototype, 'deviceMemory', { get: () => ${deviceMemory} });`);
  }
  await page.goto(`${baseUrl}/__memory/index.html`);
  await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
  return page;
}

/** The catalogue ids the model list marks as too large for this device. */
async function markedTooLarge(page: Page): Promise<string[]> {
  if ((await page.locator('qwen-chat aside.panel.models').count()) === 0) await page.locator('qwen-chat button.open-models').click();
  await page.locator('qwen-model-manager ul.catalogue li').first().waitFor();
  return page.locator('qwen-model-manager ul.catalogue li:has(.badge.does-not-fit)').evaluateAll((items) => items.map((li) => li.getAttribute('data-id')!));
}

beforeAll(async () => {
  files = await startStaticServer({ files: { [MODEL_PATH]: await ensureFixture('tiny-f32') } });
  const pages = await startVitePages({
    '/__memory/harness.js': { type: 'text/javascript', body: CHAT_HARNESS_JS },
    '/__memory/index.html': { type: 'text/html', body: PAGE_HTML },
  });
  vite = pages.server;
  baseUrl = pages.url;
}, 300_000);

afterAll(async () => {
  await vite?.close();
  await files?.close();
});

describe('a device with too little memory', () => {
  it('says so with the numbers when a model does not fit, and marks the models as large as it', async () => {
    const chromium = await launchChromium({ extraArgs: [`--js-flags=--wasm-max-mem-pages=${MAX_WASM_PAGES}`] });
    try {
      const page = await open(chromium);
      // The list's test allocation is refused for every catalogue model already.
      await expect.poll(() => markedTooLarge(page), { timeout: 30_000 }).toEqual(CATALOGUE.map((e) => e.id));
      await page.locator('qwen-model-manager #model-url').fill(`${files.url}${MODEL_PATH}`);
      await page.locator('qwen-model-manager button.load-url').click();
      await page.waitForFunction(() => (window as unknown as { log: { type: string }[] }).log.some((e) => e.type === 'error'), undefined, { timeout: 120_000 });
      const log = await page.evaluate(() => (window as unknown as { log: { type: string; detail: { error: { code?: string; message: string } } }[] }).log);
      expect(log.filter((e) => e.type === 'ready')).toEqual([]);
      const { error } = log.find((e) => e.type === 'error')!.detail;
      expect(error.code).toBe('load-failed');
      expect(error.message).toMatch(/this model needs [\d.]+ MiB of memory \(weights [\d.]+ MiB, KV cache [\d.]+ MiB for [\d,]+ tokens/);
      expect(error.message).toMatch(/could not get \d+ bytes of WebAssembly memory .*the device has too little memory for it/);
      const banner = page.locator('qwen-chat .banner.error[role=alert]');
      expect(await banner.textContent()).toContain('the device has too little memory');
      // Every catalogue model is larger than the 45 MB that did not fit: none is offered, all are marked.
      expect(await banner.locator('button.try-model').count()).toBe(0);
      expect(await markedTooLarge(page)).toEqual(CATALOGUE.map((e) => e.id));
      expect(await page.locator('qwen-model-manager ul.catalogue .badge.does-not-fit').first().textContent()).toBe(STRINGS.en.doesNotFit);
    } finally {
      await chromium.close();
    }
  }, 300_000);

  it('marks the models whose memory a test allocation is refused, before any load', async () => {
    // 1 GiB of WebAssembly memory at most: the 0.6B model's 0.5 GB fits, the 1.7B's 1.3 GB does not.
    const chromium = await launchChromium({ extraArgs: ['--js-flags=--wasm-max-mem-pages=16384'] });
    try {
      const page = await open(chromium);
      const params = (ids: string[]) => ids.map((id) => CATALOGUE.find((e) => e.id === id)!.params);
      await expect.poll(async () => params(await markedTooLarge(page)), { timeout: 30_000 }).toEqual(['4B', '4B', '1.7B']);
    } finally {
      await chromium.close();
    }
  }, 120_000);

  it('marks the models the memory a browser admits to cannot hold (navigator.deviceMemory)', async () => {
    const chromium = await launchChromium();
    try {
      const bySize = (ids: string[]) => ids.map((id) => CATALOGUE.find((e) => e.id === id)!.params);
      expect(bySize(await markedTooLarge(await open(chromium, 2)))).toEqual(['4B', '4B', '1.7B']);
      expect(bySize(await markedTooLarge(await open(chromium, 4)))).toEqual(['4B', '4B']);
      expect(await markedTooLarge(await open(chromium, 8))).toEqual([]);
    } finally {
      await chromium.close();
    }
  }, 120_000);

  it('offers the smaller catalogue models, largest first, for a model that did not fit', () => {
    const ids = (size: number | undefined) => smallerModels(size).map((e) => e.id);
    const byParams = (params: string) => CATALOGUE.find((e) => e.params === params && e.quant === 'Q4_K_M')!;
    expect(ids(byParams('4B').sizeBytes)).toEqual([byParams('1.7B').id, byParams('0.6B').id]);
    expect(ids(CATALOGUE.find((e) => e.params === '4B' && e.quant === 'Q4_0')!.sizeBytes)).toEqual([byParams('1.7B').id, byParams('0.6B').id]);
    expect(ids(byParams('1.7B').sizeBytes)).toEqual([byParams('0.6B').id]);
    expect(ids(byParams('0.6B').sizeBytes)).toEqual([]);
  });
});
