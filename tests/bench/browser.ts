// The benchmarks' one browser harness. Every browser bench opens a page of its own in a fresh
// headless Chromium (tests/support/chromium.ts) and talks to it one way: the page defines
// `window.bench = { method(arg) … }`, each method returning a promise of something
// JSON-serialisable, and the bench calls them with a timeout. Progress and result lines the page
// prints with console.log / console.info are relayed to a log callback; completion and errors
// come back through the returned promise.
//
// Two ways to serve the page:
// - withBenchBrowser: tests/bench/pages/<name> from a vite dev server over the repository
//   (tests/support/vite-pages.ts, cross-origin isolated), which compiles the pages' TypeScript
//   modules and workers and the src/ they import (kernels, load, ui benches);
// - openBrowserBench: one HTML page with a model file and prebuilt engine files from the static
//   server (tests/support/static-server.ts, Range requests, cross-origin isolated), for the
//   model table's browser engines (engines/qwen-web-browser.ts, engines/wllama.ts), with the
//   load / round / close protocol and the renderer's peak memory.
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { launchChromium, rendererPeakBytes, type LaunchedChromium } from '../support/chromium.ts';
import { launchBrowser, type BrowserName, type TestBrowser } from '../support/browsers.ts';
import { startStaticServer, type StaticServer } from '../support/static-server.ts';
import { startVitePages } from '../support/vite-pages.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** URL path of tests/bench/pages/ on the vite dev server. */
export const BENCH_PAGES_PATH = '/tests/bench/pages';

/** A vite-served bench call gives up after this long unless told otherwise. */
const DEFAULT_TIMEOUT_MS = 30 * 60_000;

/**
 * Extra Chromium flags for a bench from BENCH_CHROMIUM_ARGS (space-separated), e.g.
 * `--js-flags=--perf-prof` to see V8's machine code with linux-perf (tests/bench/README.md).
 */
function benchChromiumArgs(): string[] {
  return (process.env.BENCH_CHROMIUM_ARGS ?? '').split(' ').filter(Boolean);
}

/** Waits until the page has defined `window.bench`. */
async function waitForBench(page: Page): Promise<void> {
  await page.waitForFunction('typeof window.bench === "object"', undefined, { timeout: 60_000 });
}

/** Runs the page's `window.bench.<method>(arg)` and resolves to what it resolved to; rejects after `timeoutMs`. */
export async function callBench<T>(page: Page, method: string, arg: unknown, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  // A string, not a function: tsx's transpiled closures can carry helpers the page lacks.
  const run = page.evaluate(`window.bench.${method}(${arg === undefined ? '' : JSON.stringify(arg)})`) as Promise<T>;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${method} timed out after ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    return await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Chromium's console messages → `log`: the console.log and console.info lines of pages and workers. */
function relayConsole(log: ((line: string) => void) | undefined): (type: string, text: string) => void {
  return (type, text) => {
    if (type === 'log' || type === 'info') log?.(text);
  };
}

// ---------------------------------------------------------------------------------------------
// Pages under tests/bench/pages, through the vite dev server

export interface BenchBrowserOptions {
  /** Console lines of the pages and their workers (console.log/info). Default: dropped. */
  log?: (line: string) => void;
  /** Default timeout of each call (ms). Default 30 minutes. */
  timeoutMs?: number;
}

export interface BenchTab {
  page: Page;
  /** Runs `window.bench.<method>(arg)` (arg as JSON), giving up after `timeoutMs`. */
  call<T = void>(method: string, arg?: unknown, timeoutMs?: number): Promise<T>;
}

export interface BenchBrowser {
  /** The browser, e.g. for its version or the renderer's processes. */
  chromium: LaunchedChromium;
  /** Opens tests/bench/pages/<name> in a new tab and waits for its `window.bench`. */
  open(name: string, options?: { viewport?: { width: number; height: number } }): Promise<BenchTab>;
}

/**
 * Starts the vite dev server and a fresh Chromium, runs `run` with them, and closes both
 * (also when `run` fails).
 */
export async function withBenchBrowser<T>(options: BenchBrowserOptions, run: (browser: BenchBrowser) => Promise<T>): Promise<T> {
  const pages = await startVitePages({}, { root: REPO_ROOT });
  let chromium: LaunchedChromium | undefined;
  try {
    chromium = await launchChromium({ onConsole: relayConsole(options.log), extraArgs: benchChromiumArgs() });
    const launched = chromium;
    return await run({
      chromium: launched,
      async open(name, openOptions = {}) {
        const page = await launched.newPage();
        if (openOptions.viewport) await page.setViewportSize(openOptions.viewport);
        await page.goto(`${pages.url}${BENCH_PAGES_PATH}/${name}`);
        await waitForBench(page);
        return {
          page,
          call: <R>(method: string, arg?: unknown, timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS) =>
            callBench<R>(page, method, arg, timeoutMs),
        };
      },
    });
  } finally {
    await chromium?.close();
    await pages.server.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The model table's browser engines: a page, a model and engine files from the static server.
// The page defines `window.bench = { load(params), round(), close() }`. Peak memory is the
// highest VmHWM among the renderer processes (the page's workers are threads of its renderer),
// read from /proc.

export interface BrowserBenchOptions {
  /** The engine (default Chromium). Firefox and WebKit run through tests/support/browsers.ts,
   * which relays no console lines and measures neither peak memory (0) nor CPU time (NaN). */
  browser?: BrowserName;
  /** Absolute path of the HTML page; it must define `window.bench`. */
  pagePath: string;
  /** Model file, served at `/model.gguf` (its URL is added to loadParams as `modelUrl`). */
  modelPath: string;
  /** JSON-serialisable parameters for `bench.load`. */
  loadParams: Record<string, unknown>;
  /** More URL path → absolute file path entries (the engine's JS and wasm). */
  files?: Record<string, string>;
  /** Each call gives up after this long (ms). */
  timeoutMs: number;
  /** Progress lines from the page (console.log/info). */
  log?: (line: string) => void;
}

export interface BrowserBenchPage<L> {
  /** What the page's `bench.load` resolved to. */
  loaded: L;
  /** Runs the page's `bench.round()`. */
  round<T>(): Promise<T>;
  /**
   * Runs the page's `bench.close()`, then closes Chromium and the server (also when that
   * fails); resolves to what `bench.close()` gave and the renderer's peak RSS in bytes.
   */
  close<T>(): Promise<{ value: T; peakBytes: number }>;
  /** CPU time Chromium's processes have used so far, seconds. */
  cpuSeconds(): Promise<number>;
}

/** Opens the page and runs its `bench.load`; when that fails, the browser and the server are closed. */
export async function openBrowserBench<L>(options: BrowserBenchOptions): Promise<BrowserBenchPage<L>> {
  const server = await startStaticServer({
    files: { '/bench.html': options.pagePath, '/model.gguf': options.modelPath, ...options.files },
  });
  if (options.browser && options.browser !== 'chromium') return openInOtherBrowser<L>(options.browser, server, options);
  let chromium: LaunchedChromium | undefined;
  const shutDown = async () => {
    await chromium?.close();
    await server.close();
  };
  try {
    chromium = await launchChromium({ onConsole: relayConsole(options.log), extraArgs: benchChromiumArgs() });
    const page = await chromium.newPage();
    await page.goto(`${server.url}/bench.html`);
    await waitForBench(page);
    const browser = chromium;
    const call = <T>(method: string, arg?: unknown, timeoutMs = options.timeoutMs) => callBench<T>(page, method, arg, timeoutMs);
    const loaded = await call<L>('load', { ...options.loadParams, modelUrl: `${server.url}/model.gguf` });
    return {
      loaded,
      round: <T>() => call<T>('round'),
      cpuSeconds: async () => (await browser.processMemory()).reduce((sum, p) => sum + p.cpuSeconds, 0),
      async close<T>() {
        try {
          // Unloading is quick; a page still busy with a round that timed out is not waited for.
          const value = await call<T>('close', undefined, Math.min(options.timeoutMs, 60_000));
          const memory = await browser.processMemory();
          return { value, peakBytes: rendererPeakBytes(memory) };
        } finally {
          await shutDown();
        }
      },
    };
  } catch (error) {
    await shutDown();
    throw error;
  }
}

/** openBrowserBench in Firefox or WebKit (tests/support/browsers.ts). */
async function openInOtherBrowser<L>(name: BrowserName, server: StaticServer, options: BrowserBenchOptions): Promise<BrowserBenchPage<L>> {
  let browser: TestBrowser | undefined;
  const shutDown = async () => {
    await browser?.close();
    await server.close();
  };
  try {
    browser = await launchBrowser(name);
    const page = await browser.newPage();
    await page.goto(`${server.url}/bench.html`);
    await page.waitForFunction(() => typeof (window as unknown as { bench?: unknown }).bench === 'object', 60_000);
    const call = async <T>(method: string, arg?: unknown, timeoutMs = options.timeoutMs): Promise<T> => {
      let timer: NodeJS.Timeout | undefined;
      const run = page.evaluate(([m, a]) => (window as unknown as { bench: Record<string, (x: unknown) => unknown> }).bench[m as string]!(a), [method, arg] as const);
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${method} timed out after ${timeoutMs / 1000} s`)), timeoutMs);
      });
      try {
        return (await Promise.race([run, timeout])) as T;
      } finally {
        clearTimeout(timer);
      }
    };
    const loaded = await call<L>('load', { ...options.loadParams, modelUrl: `${server.url}/model.gguf` });
    return {
      loaded,
      round: <T>() => call<T>('round'),
      cpuSeconds: async () => Number.NaN,  // not measured there: the table shows –
      async close<T>() {
        try {
          return { value: await call<T>('close', undefined, Math.min(options.timeoutMs, 60_000)), peakBytes: 0 };
        } finally {
          await shutDown();
        }
      },
    };
  } catch (error) {
    await shutDown();
    throw error;
  }
}
