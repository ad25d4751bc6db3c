// Runs one benchmark page in a fresh Chromium: the page is served cross-origin isolated by the
// static server together with the model and whatever else it needs, then its
// `window.runBench(params)` is called. Peak memory is the highest VmHWM among the renderer
// processes (the page's workers are threads of its renderer), read from /proc.
import { launchChromium } from '../../tests/support/chromium.ts';
import { startStaticServer } from '../../tests/support/static-server.ts';

export interface BrowserBenchOptions {
  /** Absolute path of the HTML page; it must define `window.runBench(params)`. */
  pagePath: string;
  /** Model file, served at `/model.gguf` (its URL is passed to the page as params.modelUrl). */
  modelPath: string;
  /** More URL path → absolute file path entries (the engine's JS and wasm). */
  files?: Record<string, string>;
  /** JSON-serialisable parameters for runBench; `modelUrl` is added. */
  params: Record<string, unknown>;
  /** Give up after this long (ms). */
  timeoutMs: number;
  /** Progress lines from the page (console.log/info). */
  log?: (line: string) => void;
}

export interface BrowserBenchOutcome<T> {
  /** What runBench resolved to. */
  value: T;
  /** Peak RSS of the page's renderer process. */
  rendererPeakBytes: number;
  /** Console errors seen meanwhile (some engines log harmless ones). */
  consoleErrors: string[];
}

export async function runBrowserBench<T>(options: BrowserBenchOptions): Promise<BrowserBenchOutcome<T>> {
  const server = await startStaticServer({
    files: { '/bench.html': options.pagePath, '/model.gguf': options.modelPath, ...options.files },
  });
  let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    chromium = await launchChromium({
      onConsole: (type, text) => {
        if (type === 'log' || type === 'info') options.log?.(text);
      },
    });
    const page = await chromium.newPage();
    await page.goto(`${server.url}/bench.html`);
    await page.waitForFunction('typeof window.runBench === "function"', undefined, { timeout: 60_000 });
    const params = { ...options.params, modelUrl: `${server.url}/model.gguf` };
    // A string, not a function: tsx's transpiled closures can carry helpers the page lacks.
    const run = page.evaluate(`window.runBench(${JSON.stringify(params)})`) as Promise<T>;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${options.timeoutMs / 1000} s`)), options.timeoutMs);
    });
    const value = await Promise.race([run, timeout]);
    const memory = await chromium.processMemory();
    const rendererPeakBytes = Math.max(0, ...memory.filter((p) => p.type === 'renderer').map((p) => p.peakRssBytes));
    return { value, rendererPeakBytes, consoleErrors: [...chromium.consoleErrors] };
  } finally {
    clearTimeout(timer);
    await chromium?.close();
    await server.close();
  }
}
