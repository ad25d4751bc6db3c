// Matrix-vector and small-batch matmul speed of the wasm kernels.
//
//   npx tsx tests/bench/kernels.ts [--threads 1,2] [--build simd128|relaxed|auto] [--quick]
//                                    [--tokens 1,32] [--types Q4_0,Q4_K,Q6_K,Q8_0]
//                                    [--cold]   (weights streamed from DRAM, as in a model's decode)
//   npx tsx tests/bench/kernels.ts --browser [--threads 1,2] [--quick]   (headless Chromium, build auto)
//
// Shapes are Qwen3-4B's FFN: 9728 x 2560 (gate/up) and 2560 x 9728 (down), for
// Q4_0, Q4_K and Q6_K weights, with 1 token (decode) and 32 tokens (prefill).
// Reports GB/s of weight bytes and GFLOP/s (2 * rows * cols * tokens); each
// figure is the best call over the measuring time (shared machines are noisy); "mean GB/s"
// averages every call, as a model's decode sees them.
import type { AddressInfo } from 'node:net';
import { createKernels, type KernelBuild } from '../../src/model/kernels.ts';
import { BENCH_HEADER, runKernelBench } from './kernel-cases.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const threadList = (arg('--threads') ?? '1,2').split(',').map(Number);
const minSeconds = process.argv.includes('--quick') ? 0.3 : 1.5;
const tokens = arg('--tokens')?.split(',').map(Number);
const types = arg('--types')?.split(',');
const cold = process.argv.includes('--cold');

async function inNode(): Promise<void> {
  const build = (arg('--build') ?? 'simd128') as KernelBuild | 'auto';
  console.log(`Node ${process.version}, build ${build}`);
  console.log(BENCH_HEADER);
  for (const threads of threadList) {
    const k = await createKernels({ threads, build });
    try {
      runKernelBench(k, { minSeconds, tokens, types, cold }, (line) => console.log(line));
    } finally {
      k.dispose();
    }
  }
}

// The worker imports the benchmark through vite; the page relays its lines.
const WORKER_JS = `
import { createKernels } from '/src/model/kernels.ts';
import { runKernelBench } from '/tests/bench/kernel-cases.ts';
self.onmessage = async (e) => {
  try {
    for (const threads of e.data.threadList) {
      const k = await createKernels({ threads, build: 'auto' });
      runKernelBench(k, { minSeconds: e.data.minSeconds, tokens: e.data.tokens, types: e.data.types, cold: e.data.cold }, (line) => self.postMessage({ line }));
      k.dispose();
    }
    self.postMessage({ done: true });
  } catch (err) {
    self.postMessage({ error: String(err && err.stack || err) });
  }
};`;

const PAGE_HTML = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="module">
  const worker = new Worker('/__bench/worker.js', { type: 'module' });
  worker.onmessage = (e) => console.log(JSON.stringify(e.data));
  window.startBench = (request) => worker.postMessage(request);
</script>`;

async function inBrowser(): Promise<void> {
  const { createServer } = await import('vite');
  const { launchChromium } = await import('../support/chromium.ts');
  const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
  const server = await createServer({
    configFile: false,
    root: new URL('../..', import.meta.url).pathname,
    logLevel: 'silent',
    server: { host: '127.0.0.1', port: 0, headers: isolation, hmr: false },
    optimizeDeps: { noDiscovery: true, include: [] },
    plugins: [{
      name: 'bench-pages',
      configureServer(s) {
        s.middlewares.use((req, res, next) => {
          const body = req.url === '/__bench/index.html' ? ['text/html', PAGE_HTML] : req.url === '/__bench/worker.js' ? ['text/javascript', WORKER_JS] : undefined;
          if (!body) return next();
          res.writeHead(200, { 'Content-Type': body[0]!, ...isolation });
          res.end(body[1]);
        });
      },
    }],
  });
  await server.listen();
  let finish!: (error?: string) => void;
  const finished = new Promise<string | undefined>((resolve) => { finish = resolve; });
  const chromium = await launchChromium({
    onConsole: (_type, text) => {
      if (!text.startsWith('{')) return;
      const msg = JSON.parse(text) as { line?: string; done?: boolean; error?: string };
      if (msg.line) console.log(msg.line);
      if (msg.done) finish();
      if (msg.error) finish(msg.error);
    },
  });
  try {
    const page = await chromium.newPage();
    const port = (server.httpServer!.address() as AddressInfo).port;
    await page.goto(`http://127.0.0.1:${port}/__bench/index.html`);
    const version = chromium.browser.browser()?.version() ?? 'Chromium';
    console.log(`${version} (headless), build auto`);
    console.log(BENCH_HEADER);
    await page.waitForFunction(() => typeof (window as unknown as { startBench?: unknown }).startBench === 'function');
    await page.evaluate((req) => (window as unknown as { startBench(r: unknown): void }).startBench(req), { threadList, minSeconds, tokens, types, cold });
    const error = await finished;
    if (error) throw new Error(error);
  } finally {
    await chromium.close();
    await server.close();
  }
}

(process.argv.includes('--browser') ? inBrowser() : inNode()).catch((e) => {
  console.error(e);
  process.exit(1);
});
