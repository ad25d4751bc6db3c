// Matrix-vector and small-batch matmul speed of the wasm kernels (npm run bench:kernels), and the
// A/B comparison of kernel builds.
//
// Speeds of the current build:
//   npm run bench:kernels -- [--threads 1,2] [--build simd128|relaxed|auto] [--quick]
//                            [--tokens 1,32] [--types Q4_0,Q4_K,Q6_K,Q8_0]
//                            [--cold]   (weights streamed from DRAM, as in a model's decode)
//   npm run bench:kernels -- --browser [--threads 1,2] [--quick] ...   (headless Chromium, build auto)
//
// Shapes are Qwen3-4B's FFN: 9728 x 2560 (gate/up) and 2560 x 9728 (down), for Q4_0, Q4_K and
// Q6_K weights, with 1 token (decode) and 32 tokens (prefill). Reports GB/s of weight bytes and
// GFLOP/s (2 * rows * cols * tokens); each figure is the best call over the measuring time
// (shared machines are noisy); "mean GB/s" averages every call, as a model's decode sees them.
//
// A/B comparison of builds in one process, calls interleaved so that a noisy machine slows
// every variant alike:
//   npm run bench:kernels -- --ab A.wasm B.wasm [--types Q4_0,Q4_K] [--tokens 1,64] [--rounds 15] [--threads 1]
//   npm run bench:kernels -- --ab --browser A.wasm B.wasm ...   (relaxed builds, in a headless Chromium Worker)
//   npm run bench:kernels -- --ab --browser --cpu A.wasm B.wasm ... [--batch 0.5]
//   npm run bench:kernels -- --ab ... --types ATTN_F16,ATTN_Q8_0 [--depth 2048]   (one layer's attention)
//
// --cpu (browser, 1 thread): each variant runs batches of calls (--batch seconds each) and is
// charged the CPU time Linux counted for the Worker thread meanwhile (/proc schedstat, sampled
// every few ms), not wall time: on a machine shared with other jobs this stays meaningful.
// Node runs the files as SIMD128 builds; --browser as relaxed builds (each must pass the
// relaxed probe). Prints per variant the median and best ms of one matmul call, and the
// speed relative to the first file.
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { nodePlatform } from '../../src/model/kernel-platform-node.ts';
import { createKernels, type KernelBuild } from '../../src/model/kernels.ts';
import { withBenchBrowser } from './browser.ts';
import {
  BENCH_HEADER,
  median,
  runAb,
  runKernelBench,
  type AbBatch,
  type AbOptions,
  type AbRequest,
  type BenchOptions,
  type SpeedsRequest,
} from './kernel-cases.ts';

const USAGE = `usage: npm run bench:kernels -- [--browser] [--threads 1,2] [--build simd128|relaxed|auto] [--quick]
                                [--tokens 1,32] [--types Q4_0,Q4_K,Q6_K,Q8_0] [--cold]
       npm run bench:kernels -- --ab [--browser [--cpu [--batch 0.5]]] A.wasm B.wasm ...
                                [--types Q4_0,Q4_K,Q6_K,Q8_0,ATTN_F16,ATTN_Q8_0] [--tokens 1,64] [--rounds 15]
                                [--threads 1] [--depth 2048]
`;

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    ab: { type: 'boolean', default: false },
    browser: { type: 'boolean', default: false },
    cpu: { type: 'boolean', default: false },
    threads: { type: 'string' },
    build: { type: 'string', default: 'simd128' },
    quick: { type: 'boolean', default: false },
    tokens: { type: 'string' },
    types: { type: 'string' },
    cold: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '15' },
    depth: { type: 'string', default: '2048' },
    batch: { type: 'string', default: '0.5' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const numbers = (list: string) => list.split(',').map(Number);

// ---------------------------------------------------------------------------
// Speeds of the current build

function speedOptions(): BenchOptions {
  return {
    minSeconds: args.quick ? 0.3 : 1.5,
    tokens: args.tokens === undefined ? undefined : numbers(args.tokens),
    types: args.types?.split(','),
    cold: args.cold,
  };
}

const threadList = () => numbers(args.threads ?? '1,2');

async function speedsInNode(): Promise<void> {
  const build = args.build as KernelBuild | 'auto';
  console.log(`Node ${process.version}, build ${build}`);
  console.log(BENCH_HEADER);
  for (const threads of threadList()) {
    const k = await createKernels({ threads, build });
    try {
      runKernelBench(k, speedOptions(), (line) => console.log(line));
    } finally {
      k.dispose();
    }
  }
}

/** The page's worker runs the cases with build 'auto'; its lines come back through the console. */
async function speedsInBrowser(): Promise<void> {
  await withBenchBrowser({ log: (line) => console.log(line) }, async (browser) => {
    const tab = await browser.open('kernels.html');
    const version = browser.chromium.browser.browser()?.version() ?? 'Chromium';
    console.log(`${version} (headless), build auto`);
    console.log(BENCH_HEADER);
    await tab.call('speeds', { threadList: threadList(), options: speedOptions() } satisfies SpeedsRequest);
  });
}

// ---------------------------------------------------------------------------
// A/B comparison

function abOptions(): AbOptions {
  return {
    types: (args.types ?? 'Q4_0,Q4_K,Q6_K,Q8_0').split(','),
    tokens: numbers(args.tokens ?? '1,64'),
    rounds: Number(args.rounds),
    depth: Number(args.depth),
  };
}

const abThreads = () => Number(args.threads ?? 1);

async function abInNode(files: string[]): Promise<void> {
  const kernels = await Promise.all(files.map((f) => createKernels({ threads: abThreads(), build: 'simd128' },
    { ...nodePlatform, wasmBytes: async () => new Uint8Array(readFileSync(f)) })));
  try {
    runAb(kernels, abOptions(), (line) => console.log(line));
  } finally {
    for (const k of kernels) k.dispose();
  }
}

/** The variants' bytes go to the page's worker in the request; lines come back through the
 * console, a --cpu run's batches as the call's result. */
async function abInBrowser(files: string[]): Promise<void> {
  await withBenchBrowser({ log: (line) => console.log(line) }, async (browser) => {
    const tab = await browser.open('kernels.html');
    const request: AbRequest = {
      wasm: files.map((f) => readFileSync(f).toString('base64')),
      threads: abThreads(),
      options: abOptions(),
      batchSeconds: args.cpu ? Number(args.batch) : 0,
    };
    const sampler = args.cpu ? startCpuSampler(await rendererPids(browser.chromium)) : undefined;
    let batches: AbBatch[] | undefined;
    try {
      batches = await tab.call<AbBatch[] | undefined>('ab', request);
    } finally {
      const samples = await sampler?.stop();
      if (samples && batches) reportCpu(batches, samples);
    }
  });
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

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!args.ab) {
    if (positionals.length > 0) throw new Error(`unexpected argument ${positionals[0]} (A/B comparison of .wasm files: --ab)\n${USAGE}`);
    if (args.cpu) throw new Error(`--cpu is for --ab --browser\n${USAGE}`);
    return args.browser ? speedsInBrowser() : speedsInNode();
  }
  const files = positionals;
  const notWasm = files.find((f) => !f.endsWith('.wasm'));
  if (files.length === 0 || notWasm !== undefined) throw new Error(`--ab wants .wasm files${notWasm ? `, got ${notWasm}` : ''}\n${USAGE}`);
  if (args.cpu && !args.browser) throw new Error(`--cpu is for --ab --browser\n${USAGE}`);
  return args.browser ? abInBrowser(files) : abInNode(files);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
