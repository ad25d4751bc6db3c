// A first visit and a phone, in headless Chromium with the real engine: the first screen's model
// recommendation on simulated devices (memory, cores, isolation, phone), a local GGUF file kept on
// the device when the user asks and offered on the next visit, the phone layout (panels that get
// out of the way, a sidebar that closes, a model name that is not cut), and the WebGPU reason in
// Chinese. Screenshots go to test-results/.
import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { CATALOGUE } from '../../src/storage/catalogue.ts';
import { STRINGS } from '../../src/ui/i18n.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { launchChromium, type LaunchedChromium } from '../support/chromium.ts';
import { CHAT_HARNESS_JS } from '../support/chat-harness.ts';
import { startVitePages } from '../support/vite-pages.ts';

const FIXTURE = 'tiny-f32';
const en = STRINGS.en;
const zh = STRINGS.zh;

const PAGE_HTML = (lang = 'en') => `<!doctype html><html><head><meta charset="utf-8"><title>first visit</title><link rel="icon" href="data:,"></head>
<body style="margin:0;height:100vh"><qwen-chat lang="${lang}"></qwen-chat><script type="module" src="/__first/harness.js"></script></body></html>`;

/** Makes the page see another device: memory, cores, isolation, a phone's user agent data. */
const simulate = (device: { memory?: number | null; cores?: number; isolated?: boolean; mobile?: boolean }) => `
  ${device.memory === undefined ? '' : `Object.defineProperty(Navigator.prototype, 'deviceMemory', { get: () => ${device.memory ?? 'undefined'} });`}
  ${device.cores === undefined ? '' : `Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => ${device.cores} });`}
  ${device.isolated === undefined ? '' : `Object.defineProperty(globalThis, 'crossOriginIsolated', { get: () => ${device.isolated} });`}
  ${device.mobile === undefined ? '' : `Object.defineProperty(Navigator.prototype, 'userAgentData', { get: () => ({ mobile: ${device.mobile} }) });`}
`;

let vite: ViteDevServer;
let chromium: LaunchedChromium;
let baseUrl: string;

async function open(options: { width?: number; height?: number; lang?: string; device?: Parameters<typeof simulate>[0] } = {}): Promise<Page> {
  const page = await chromium.newPage();
  await page.setViewportSize({ width: options.width ?? 1200, height: options.height ?? 800 });
  if (options.device) await page.addInitScript(simulate(options.device));
  await page.goto(`${baseUrl}/__first/${options.lang ?? 'en'}.html`);
  await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
  return page;
}

const readyCount = (page: Page) =>
  page.evaluate(() => (window as unknown as { log: { type: string }[] }).log.filter((e) => e.type === 'ready').length);

beforeAll(async () => {
  const pages = await startVitePages({
    '/__first/harness.js': { type: 'text/javascript', body: CHAT_HARNESS_JS },
    '/__first/en.html': { type: 'text/html', body: PAGE_HTML('en') },
    '/__first/zh.html': { type: 'text/html', body: PAGE_HTML('zh') },
  });
  vite = pages.server;
  baseUrl = pages.url;
  chromium = await launchChromium();
  mkdirSync('test-results', { recursive: true });
}, 120_000);

afterAll(async () => {
  await chromium?.close();
  await vite?.close();
});

describe('the first screen', () => {
  const byParams = (params: string) => CATALOGUE.find((e) => e.params === params && e.quant === 'Q4_K_M')!;

  it.each([
    ['a desktop with 8 GB, 2 cores, isolated', { memory: 8, cores: 2, isolated: true, mobile: false }, '4B'],
    ['a desktop with 4 GB', { memory: 4, cores: 4, isolated: true, mobile: false }, '1.7B'],
    ['a device with 2 GB', { memory: 2, cores: 4, isolated: true, mobile: false }, '0.6B'],
    ['a phone that does not say its memory', { memory: null, cores: 8, isolated: true, mobile: true }, '1.7B'],
    ['a desktop on one thread (no isolation) that does not say its memory', { memory: null, cores: 8, isolated: false, mobile: false }, '4B'],
  ] as const)('recommends the model that fits %s, with its size and the speed to expect', async (name, device, params) => {
    const page = await open({ device });
    const entry = byParams(params);
    const card = page.locator('qwen-welcome .recommended');
    await expect.poll(() => card.getAttribute('data-id')).toBe(entry.id);
    expect(await card.locator('.model-name').textContent()).toBe(entry.name);
    expect(await card.locator('.size').textContent()).toContain(en.welcomeDownloadOnce.replace('{size}', entry.sizeBytes >= 1e9 ? `${(entry.sizeBytes / 1e9).toFixed(1)} GB` : `${Math.round(entry.sizeBytes / 1e6)} MB`));
    const threads = device.isolated ? Math.min(device.cores, 8) : 1;
    expect(await card.locator('.speed').textContent()).toMatch(new RegExp(`about [\\d.]+–[\\d.]+ tokens a second here \\(${threads} threads?\\)`));
    await page.screenshot({ path: `test-results/first-visit-${params}.png` });
    await page.close();
  });

  it('starts the recommended download with one click, shown in the progress line', async () => {
    const page = await open({ device: { memory: 8, cores: 2, isolated: true, mobile: false } });
    await page.locator('qwen-welcome button.download').click();
    await expect.poll(() => page.locator('qwen-chat .progress-text').textContent({ timeout: 500 }).catch(() => ''))
      .toContain(byParams('4B').name);
    await page.locator('qwen-chat button.cancel-load').click();
    await page.close();
  });
});

describe('a local GGUF file', () => {
  it('is offered to be kept after it loads, is kept on request, and is offered on the next visit', async () => {
    const page = await open();
    await page.locator('qwen-welcome button.open-file').click();
    await expect.poll(() => page.evaluate(() => document.querySelector('qwen-chat')!.shadowRoot!.querySelector('qwen-model-manager')
      ?.shadowRoot!.activeElement?.id)).toBe('model-file');
    await page.locator('qwen-model-manager #model-file').setInputFiles(await ensureFixture(FIXTURE));
    await expect.poll(() => readyCount(page), { timeout: 60_000 }).toBe(1);
    const offer = page.locator('qwen-chat .banner.keep-offer');
    expect(await offer.locator('span').textContent()).toBe(en.keepOffer.replace('{name}', `${FIXTURE}.gguf`).replace('{size}', '45 MB'));
    await offer.locator('button.keep').click();
    await expect.poll(() => page.locator('qwen-chat .banner.notice').textContent(), { timeout: 30_000 }).toContain(en.kept.replace('{name}', `${FIXTURE}.gguf`));

    // Next visit: the first screen offers the kept model, which loads from storage.
    await page.reload();
    await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
    const stored = page.locator('qwen-welcome .stored');
    await expect.poll(() => stored.locator('.model-name').textContent()).toBe(`${FIXTURE}.gguf`);
    await stored.locator('button.start').click();
    await expect.poll(() => readyCount(page), { timeout: 60_000 }).toBe(1);
    expect(await page.locator('qwen-chat .model-status').textContent()).toBe(`${FIXTURE}.gguf · F32 · cpu`);
    await page.close();
  }, 120_000);
});

describe('on a phone (390 × 844)', () => {
  it('lets the sidebar close (Esc, a tap outside, ✕), moves panels out of the way of progress, and shows the whole model name', async () => {
    const page = await open({ width: 390, height: 844, device: { memory: 4, mobile: true } });
    await page.screenshot({ path: 'test-results/phone-first-visit.png' });

    const sidebar = page.locator('qwen-chat nav.sidebar');
    const menu = page.locator('qwen-chat button.menu');
    await menu.click();
    expect(await sidebar.isVisible()).toBe(true);
    await page.screenshot({ path: 'test-results/phone-sidebar.png' });
    await page.keyboard.press('Escape');
    expect(await sidebar.isVisible()).toBe(false);
    await menu.click();
    await page.mouse.click(370, 400); // on the dimmed chat beside the sidebar
    expect(await sidebar.isVisible()).toBe(false);
    await menu.click();
    await page.locator('qwen-chat button.close-sidebar').click();
    expect(await sidebar.isVisible()).toBe(false);

    // A load started from the models panel closes it, so its progress (or error) is seen.
    await page.locator('qwen-chat button.open-models').click();
    await page.screenshot({ path: 'test-results/phone-models-panel.png' });
    await page.locator('qwen-model-manager #model-file').setInputFiles(await ensureFixture(FIXTURE));
    expect(await page.locator('qwen-chat aside.panel').count()).toBe(0);
    await expect.poll(() => readyCount(page), { timeout: 60_000 }).toBe(1);
    const status = page.locator('qwen-chat .model-status');
    expect(await status.textContent()).toBe(`${FIXTURE}.gguf · F32 · cpu`);
    expect(await status.evaluate((e) => e.scrollWidth <= e.clientWidth)).toBe(true); // not cut
    expect(await status.isVisible()).toBe(true);
    await page.screenshot({ path: 'test-results/phone-loaded.png' });

    // A download error shows where it can be seen: a URL that does not exist.
    await page.locator('qwen-chat button.open-models').click();
    await page.locator('qwen-model-manager #model-url').fill(`${baseUrl}/no-such-model.gguf`);
    await page.locator('qwen-model-manager button.load-url').click();
    const banner = page.locator('qwen-chat .banner.error');
    await banner.waitFor({ timeout: 30_000 });
    const box = (await banner.boundingBox())!;
    const top = await page.evaluate(([x, y]) => {
      let element: Element | null = document.elementFromPoint(x!, y!);
      while (element?.shadowRoot?.elementFromPoint(x!, y!) && element.shadowRoot.elementFromPoint(x!, y!) !== element) element = element.shadowRoot.elementFromPoint(x!, y!);
      return element?.closest('.banner')?.className ?? element?.tagName;
    }, [box.x + box.width / 2, box.y + box.height / 2]);
    expect(top).toContain('error'); // the banner itself is on top, not a panel over it
    await page.screenshot({ path: 'test-results/phone-error.png' });
    await page.close();
  }, 120_000);
});

describe('in Chinese', () => {
  it('says why WebGPU is unavailable in Chinese', async () => {
    const page = await open({ lang: 'zh' });
    await page.locator('qwen-chat button.open-settings').click();
    const state = page.locator('qwen-settings-panel .webgpu-state');
    await expect.poll(() => state.textContent(), { timeout: 15_000 }).not.toBe(zh.checking);
    const text = (await state.textContent())!;
    expect([zh.webgpuNoApi, zh.webgpuNoAdapter, zh.webgpuAdapterFailed].map((reason) => `${zh.unavailable} (${reason})`)).toContain(text);
    await page.close();
  });
});
