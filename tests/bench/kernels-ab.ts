// A/B comparison of kernel builds in one process, calls interleaved so that a
// noisy machine slows every variant alike.
//
//   npx tsx tests/bench/kernels-ab.ts A.wasm B.wasm [--types Q4_0,Q4_K] [--tokens 1,64] [--rounds 15] [--threads 1]
//   npx tsx tests/bench/kernels-ab.ts --browser A.wasm B.wasm ...   (relaxed builds, in a headless Chromium Worker)
//   npx tsx tests/bench/kernels-ab.ts --browser --cpu A.wasm B.wasm ... [--batch 0.5]
//
// --cpu (browser, 1 thread): each variant runs batches of calls (--batch seconds each) and is
// charged the CPU time Linux counted for the Worker thread meanwhile (/proc schedstat, sampled
// every few ms), not wall time: on a machine shared with other jobs this stays meaningful.
// Node runs the files as SIMD128 builds; --browser as relaxed builds (each must pass the
// relaxed probe). Prints per variant the median and best ms of one matmul call, and the
// speed relative to the first file.
import { readFileSync } from 'node:fs';
import { createKernels } from '../../src/model/kernels.ts';
import { nodePlatform } from '../../src/model/kernel-platform-node.ts';
import { readdir, readFile } from 'node:fs/promises';
import { type AbBatch, type AbOptions, runAb } from './kernels-ab-core.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const VALUE_OPTIONS = ['--types', '--tokens', '--rounds', '--threads', '--batch'];
const files = process.argv.slice(2).filter((a, i, all) => a.endsWith('.wasm') && !VALUE_OPTIONS.includes(all[i - 1] ?? ''));
const options: AbOptions = {
  types: (arg('--types') ?? 'Q4_0,Q4_K,Q6_K,Q8_0').split(','),
  tokens: (arg('--tokens') ?? '1,64').split(',').map(Number),
  rounds: Number(arg('--rounds') ?? 15),
};
const threads = Number(arg('--threads') ?? 1);
const cpuMode = process.argv.includes('--cpu');
const batchSeconds = Number(arg('--batch') ?? 0.5);

async function inNode(): Promise<void> {
  const kernels = await Promise.all(files.map((f) => createKernels({ threads, build: 'simd128' },
    { ...nodePlatform, wasmBytes: async () => new Uint8Array(readFileSync(f)) })));
  try {
    runAb(kernels, options, (line) => console.log(line));
  } finally {
    for (const k of kernels) k.dispose();
  }
}

// The worker gets the variants' bytes in its message and hands each to createKernels
// through a platform whose wasmBytes returns them.
const WORKER_JS = `
import { createKernels } from '/src/model/kernels.ts';
import { browserPlatform } from '/src/model/kernel-platform-browser.ts';
import { runAb, runAbBatches } from '/tests/bench/kernels-ab-core.ts';
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
self.onmessage = async (e) => {
  try {
    const kernels = [];
    for (const b of e.data.wasm) {
      const bytes = unb64(b);
      kernels.push(await createKernels({ threads: e.data.threads, build: 'relaxed' }, { ...browserPlatform, wasmBytes: async () => bytes }));
    }
    if (e.data.batchSeconds) self.postMessage({ batches: runAbBatches(kernels, { ...e.data.options, batchSeconds: e.data.batchSeconds }) });
    else runAb(kernels, e.data.options, (line) => self.postMessage({ line }));
    for (const k of kernels) k.dispose();
    self.postMessage({ done: true });
  } catch (err) {
    self.postMessage({ error: String(err && err.stack || err) });
  }
};`;

const PAGE_HTML = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="module">
  const worker = new Worker('/__ab/worker.js', { type: 'module' });
  worker.onmessage = (e) => console.log(JSON.stringify(e.data));
  window.startAb = (request) => worker.postMessage(request);
</script>`;

async function inBrowser(): Promise<void> {
  const { startVitePages } = await import('../support/vite-pages.ts');
  const { launchChromium } = await import('../support/chromium.ts');
  const { url, server } = await startVitePages({
    '/__ab/index.html': { type: 'text/html', body: PAGE_HTML },
    '/__ab/worker.js': { type: 'text/javascript', body: WORKER_JS },
  });
  let batches: AbBatch[] = [];
  let finish!: (error?: string) => void;
  const finished = new Promise<string | undefined>((resolve) => { finish = resolve; });
  const chromium = await launchChromium({
    onConsole: (_type, text) => {
      if (!text.startsWith('{')) return;
      const msg = JSON.parse(text) as { line?: string; done?: boolean; error?: string; batches?: AbBatch[] };
      if (msg.line) console.log(msg.line);
      if (msg.batches) batches = msg.batches;
      if (msg.done) finish();
      if (msg.error) finish(msg.error);
    },
  });
  try {
    const page = await chromium.newPage();
    await page.goto(`${url}/__ab/index.html`);
    await page.waitForFunction(() => typeof (window as unknown as { startAb?: unknown }).startAb === 'function');
    const wasm = files.map((f) => readFileSync(f).toString('base64'));
    const sampler = cpuMode ? startCpuSampler(await rendererPids(chromium)) : undefined;
    await page.evaluate((req) => (window as unknown as { startAb(r: unknown): void }).startAb(req),
      { wasm, threads, options, batchSeconds: cpuMode ? batchSeconds : 0 });
    const error = await finished;
    const samples = await sampler?.stop();
    if (error) throw new Error(error);
    if (samples) reportCpu(batches, samples);
  } finally {
    await chromium.close();
    await server.close();
  }
}

// ---------------------------------------------------------------------------
// --cpu: per-thread CPU time of the renderer process

interface CpuSample {
  time: number;                 // Date.now()
  ns: Map<string, number>;      // thread id -> CPU ns so far (schedstat field 1)
}

async function rendererPids(chromium: { processMemory(): Promise<{ pid: number; type: string }[]> }): Promise<number[]> {
  return (await chromium.processMemory()).filter((p) => p.type === 'renderer').map((p) => p.pid);
}

function startCpuSampler(pids: number[]): { stop(): Promise<CpuSample[]> } {
  const samples: CpuSample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const ns = new Map<string, number>();
      for (const pid of pids) {
        const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
        for (const tid of tids) {
          const text = await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').catch(() => '');
          if (text) ns.set(`${pid}/${tid}`, Number(text.split(' ')[0]));
        }
      }
      samples.push({ time: Date.now(), ns });
      await new Promise((r) => setTimeout(r, 3));
    }
  })();
  return { async stop() { running = false; await loop; return samples; } };
}

/** CPU ns of `thread` at wall time `time`, interpolated between samples. */
function cpuAt(samples: CpuSample[], thread: string, time: number): number {
  let i = samples.findIndex((s) => s.time >= time);
  if (i < 0) i = samples.length - 1;
  const b = samples[i]!, a = samples[Math.max(0, i - 1)]!;
  const va = a.ns.get(thread) ?? 0, vb = b.ns.get(thread) ?? va;
  return b.time === a.time ? vb : va + ((vb - va) * (time - a.time)) / (b.time - a.time);
}

function reportCpu(batches: AbBatch[], samples: CpuSample[]): void {
  const threadsSeen = new Set<string>();
  for (const s of samples) for (const t of s.ns.keys()) threadsSeen.add(t);
  const perLabel = new Map<string, number[][]>();
  for (const b of batches) {
    // the batch's thread: the one that used the most CPU during it
    let best = 0;
    for (const t of threadsSeen) best = Math.max(best, cpuAt(samples, t, b.end) - cpuAt(samples, t, b.start));
    const rows = perLabel.get(b.label) ?? [];
    (rows[b.variant] ??= []).push(best / 1e6 / b.calls);
    perLabel.set(b.label, rows);
  }
  for (const [label, rows] of perLabel) {
    const m0 = median(rows[0]!);
    console.log(`${label} (CPU ms/call): ` + rows.map((v, i) =>
      `[${i}] med ${median(v).toFixed(2)} best ${Math.min(...v).toFixed(2)} (${(m0 / median(v)).toFixed(2)}x)`).join('  '));
  }
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;

(process.argv.includes('--browser') ? inBrowser() : inNode()).catch((e) => {
  console.error(e);
  process.exit(1);
});
