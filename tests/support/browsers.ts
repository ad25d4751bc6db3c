// One way to open a page, run a script in it and collect its console errors, whichever browser
// engine runs it: Chromium through playwright-core (tests/support/chromium.ts), Firefox ESR through
// puppeteer-core over WebDriver BiDi. Browser test files that use it run once per engine named in
// $QWEN_WEB_BROWSERS (comma-separated), by default in both.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page as PlaywrightPage } from 'playwright-core';
import puppeteer, { type Page as PuppeteerPage } from 'puppeteer-core';
import { launchChromium } from './chromium.ts';

export type BrowserName = 'chromium' | 'firefox';
export const BROWSER_NAMES: readonly BrowserName[] = ['chromium', 'firefox'];
export const FIREFOX_PATH = '/usr/bin/firefox-esr';

/** The engines to test in: $QWEN_WEB_BROWSERS (e.g. chromium), else all of them. */
export function testBrowsers(): BrowserName[] {
  const names = (process.env.QWEN_WEB_BROWSERS ?? BROWSER_NAMES.join(',')).split(',').map((name) => name.trim()).filter(Boolean);
  for (const name of names) {
    if (!(BROWSER_NAMES as readonly string[]).includes(name)) throw new Error(`QWEN_WEB_BROWSERS: unknown browser '${name}' (known: ${BROWSER_NAMES.join(', ')})`);
  }
  return names as BrowserName[];
}

export interface TestPage {
  goto(url: string): Promise<void>;
  /** Runs `fn(arg)` in the page (arg and result plain JSON: undefined fields drop out). */
  evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R>;
  /** Waits until `fn()` is truthy in the page. */
  waitForFunction(fn: () => unknown, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface TestBrowser {
  name: BrowserName;
  newPage(): Promise<TestPage>;
  /** Console errors and uncaught exceptions of its pages, in arrival order. */
  consoleErrors: string[];
  close(): Promise<void>;
}

export async function launchBrowser(name: BrowserName): Promise<TestBrowser> {
  return name === 'chromium' ? launchChromiumBrowser() : launchFirefox();
}

async function launchChromiumBrowser(): Promise<TestBrowser> {
  const chromium = await launchChromium();
  const wrap = (page: PlaywrightPage): TestPage => ({
    goto: async (url) => void (await page.goto(url)),
    evaluate: (fn, arg) => page.evaluate(fn as (a: unknown) => unknown, arg) as Promise<never>,
    waitForFunction: async (fn, timeoutMs = 30_000) => void (await page.waitForFunction(fn, undefined, { timeout: timeoutMs })),
    close: () => page.close(),
  });
  return { name: 'chromium', newPage: async () => wrap(await chromium.newPage()), consoleErrors: chromium.consoleErrors, close: () => chromium.close() };
}

async function launchFirefox(): Promise<TestBrowser> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'qwen-web-firefox-'));
  // Bounded, so that a browser that does not answer fails the test instead of hanging the run.
  const browser = await puppeteer.launch({ browser: 'firefox', executablePath: FIREFOX_PATH, headless: true, userDataDir,
    timeout: 60_000, protocolTimeout: 300_000 });
  const consoleErrors: string[] = [];
  const wrap = (page: PuppeteerPage): TestPage => {
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${String(error)}`));
    return {
      goto: async (url) => void (await page.goto(url)),
      // Through JSON text: puppeteer's BiDi deserializer drops an object met twice in a result
      // (`{ a: o, b: o }` arrives as `{ a: o }`). Arguments and results are plain JSON here.
      evaluate: async (fn, arg) => {
        const text = await page.evaluate(`(async () => JSON.stringify(await (${fn.toString()})(${JSON.stringify(arg) ?? 'undefined'})))()`);
        return (typeof text === 'string' ? JSON.parse(text) : undefined) as never;
      },
      waitForFunction: async (fn, timeoutMs = 30_000) => void (await page.waitForFunction(fn, { timeout: timeoutMs })),
      close: () => page.close(),
    };
  };
  return {
    name: 'firefox',
    newPage: async () => wrap(await browser.newPage()),
    consoleErrors,
    async close() {
      const closed = browser.close().then(() => true, () => false);
      const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000).unref());
      if (!(await Promise.race([closed, timer]))) browser.process()?.kill('SIGKILL');
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}
