// Opens one benchmark page in a fresh Chromium and loads the model in it: the page is served
// cross-origin isolated by the static server together with the model and whatever else it
// needs. The page defines `window.bench = { load(params), round(), close() }`, each returning a
// promise of something JSON-serialisable. Peak memory is the highest VmHWM among the renderer
// processes (the page's workers are threads of its renderer), read from /proc.
import { launchChromium } from '../support/chromium.ts';
import { startStaticServer } from '../support/static-server.ts';

export interface BrowserBenchOptions {
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
}

/** Opens the page and runs its `bench.load`; when that fails, Chromium and the server are closed. */
export async function openBrowserBench<L>(options: BrowserBenchOptions): Promise<BrowserBenchPage<L>> {
  const server = await startStaticServer({
    files: { '/bench.html': options.pagePath, '/model.gguf': options.modelPath, ...options.files },
  });
  let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;
  const shutDown = async () => {
    await chromium?.close();
    await server.close();
  };
  try {
    chromium = await launchChromium({
      onConsole: (type, text) => {
        if (type === 'log' || type === 'info') options.log?.(text);
      },
    });
    const page = await chromium.newPage();
    await page.goto(`${server.url}/bench.html`);
    await page.waitForFunction('typeof window.bench === "object"', undefined, { timeout: 60_000 });
    const browser = chromium;
    const call = async <T>(method: string, arg?: unknown, timeoutMs = options.timeoutMs): Promise<T> => {
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
    };
    const loaded = await call<L>('load', { ...options.loadParams, modelUrl: `${server.url}/model.gguf` });
    return {
      loaded,
      round: <T>() => call<T>('round'),
      async close<T>() {
        try {
          // Unloading is quick; a page still busy with a round that timed out is not waited for.
          const value = await call<T>('close', undefined, Math.min(options.timeoutMs, 60_000));
          const memory = await browser.processMemory();
          return { value, peakBytes: Math.max(0, ...memory.filter((p) => p.type === 'renderer').map((p) => p.peakRssBytes)) };
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
