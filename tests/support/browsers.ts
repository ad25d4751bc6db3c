// One way to open a page, run a script in it and collect its console errors, whichever browser
// engine runs it: Chromium through playwright-core (tests/support/chromium.ts), Firefox ESR through
// puppeteer-core over WebDriver BiDi, WebKitGTK (Safari's engine) through its W3C WebDriver server
// on a virtual display. Browser test files that use it run once per engine named in
// $QWEN_WEB_BROWSERS (comma-separated), by default in all of them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page as PlaywrightPage } from 'playwright-core';
import puppeteer, { type Page as PuppeteerPage } from 'puppeteer-core';
import { launchChromium } from './chromium.ts';

export type BrowserName = 'chromium' | 'firefox' | 'webkit';
export const BROWSER_NAMES: readonly BrowserName[] = ['chromium', 'firefox', 'webkit'];
export const FIREFOX_PATH = '/usr/bin/firefox-esr';
export const WEBKIT_BROWSER_PATH = '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

/**
 * The kernel path each engine takes here (toolchain.md): WebKitGTK has no SharedArrayBuffer even
 * when cross-origin isolated (one thread), no relaxed SIMD, memory64 only in an older API, no OPFS.
 */
export const ENGINE_PATHS: Record<BrowserName, { threads: boolean; relaxedSimd: boolean; memory64: boolean; opfs: boolean; keepsModels: boolean }> = {
  chromium: { threads: true, relaxedSimd: true, memory64: true, opfs: true, keepsModels: true },
  firefox: { threads: true, relaxedSimd: true, memory64: true, opfs: true, keepsModels: true },
  // keepsModels: WebKit's WebDriver session is a private one, whose IndexedDB keeps no Blobs.
  webkit: { threads: false, relaxedSimd: false, memory64: false, opfs: false, keepsModels: false },
};

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
  return name === 'chromium' ? launchChromiumBrowser() : name === 'firefox' ? launchFirefox() : launchWebKit();
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

/** Captures a WebKit page's errors from the moment it runs (W3C WebDriver has no console log). */
const CAPTURE_ERRORS = `
  window.__errors ??= [];
  // ErrorEvents only: <qwen-chat>'s own 'error' event (a CustomEvent) bubbles up to window too.
  addEventListener('error', (e) => { if (e instanceof ErrorEvent) window.__errors.push('uncaught: ' + e.message); });
  addEventListener('unhandledrejection', (e) => window.__errors.push('uncaught: ' + String(e.reason)));
  const error = console.error.bind(console);
  console.error = (...args) => { window.__errors.push(args.map(String).join(' ')); error(...args); };`;

async function launchWebKit(): Promise<TestBrowser> {
  // A display of its own (Xvfb picks a free number and tells it), then the WebDriver server on it.
  const children: ChildProcess[] = [];
  const stop = () => { for (const child of children) child.kill('SIGKILL'); };
  try {
    const xvfb = spawn('Xvfb', ['-displayfd', '1', '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(xvfb);
    const display = await withTimeout(new Promise<string>((resolve, reject) => {
      xvfb.stdout!.once('data', (data) => resolve(String(data).trim()));
      xvfb.once('error', reject);
    }), 10_000, 'Xvfb did not start');
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const driver = spawn('WebKitWebDriver', [`--port=${port}`], { env: { ...process.env, DISPLAY: `:${display}` }, stdio: 'ignore' });
    children.push(driver);
    const base = `http://127.0.0.1:${port}`;
    const command = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const response = await fetch(base + path, { method, headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body) });
      const { value } = (await response.json()) as { value: T & { error?: string; message?: string } };
      if (!response.ok) throw new Error(`WebDriver ${method} ${path}: ${value?.error}: ${value?.message}`);
      return value;
    };
    for (let tries = 0; ; tries++) {  // the server takes a moment to listen
      const up = await fetch(`${base}/status`).then((r) => r.ok, () => false);
      if (up) break;
      if (tries > 100) throw new Error('WebKitWebDriver did not start');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const consoleErrors: string[] = [];
    const sessions: string[] = [];
    const newPage = async (): Promise<TestPage> => {
      const { sessionId } = await command<{ sessionId: string }>('POST', '/session', { capabilities: { alwaysMatch: {
        browserName: 'MiniBrowser', 'webkitgtk:browserOptions': { binary: WEBKIT_BROWSER_PATH, args: ['--automation'] } } } });
      sessions.push(sessionId);
      await command('POST', `/session/${sessionId}/timeouts`, { script: 300_000 });
      const run = <R>(body: string): Promise<R> => command<R>('POST', `/session/${sessionId}/execute/sync`, { script: body, args: [] });
      const collectErrors = async () => {
        consoleErrors.push(...await run<string[]>('const e = window.__errors ?? []; window.__errors = []; return e;'));
      };
      return {
        goto: async (url) => {
          await command('POST', `/session/${sessionId}/url`, { url });
          await run(CAPTURE_ERRORS);
        },
        // Through JSON text, as for Firefox: arguments and results are plain JSON here.
        evaluate: async (fn, arg) => {
          const text = await command<string>('POST', `/session/${sessionId}/execute/async`, { args: [], script:
            `const done = arguments[arguments.length - 1];
             Promise.resolve().then(() => (${fn.toString()})(${JSON.stringify(arg) ?? 'undefined'}))
               .then((r) => done(JSON.stringify({ value: r })), (e) => done(JSON.stringify({ error: String(e) + (e && e.stack ? ' ' + e.stack : '') })));` });
          await collectErrors();
          const result = JSON.parse(text) as { value?: unknown; error?: string };
          if (result.error !== undefined) throw new Error(`in WebKit: ${result.error}`);
          return result.value as never;
        },
        waitForFunction: async (fn, timeoutMs = 30_000) => {
          const end = Date.now() + timeoutMs;
          while (!(await run<boolean>(`return !!(${fn.toString()})();`))) {
            if (Date.now() > end) throw new Error(`waitForFunction timed out after ${timeoutMs} ms`);
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        },
        close: async () => {
          await command('DELETE', `/session/${sessionId}`).catch(() => undefined);
          sessions.splice(sessions.indexOf(sessionId), 1);
        },
      };
    };
    return {
      name: 'webkit',
      newPage,
      consoleErrors,
      async close() {
        for (const id of [...sessions]) await withTimeout(command('DELETE', `/session/${id}`), 10_000, 'close').catch(() => undefined);
        stop();
      },
    };
  } catch (error) {
    stop();
    throw error;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} (${ms} ms)`)), ms).unref())]);
}
