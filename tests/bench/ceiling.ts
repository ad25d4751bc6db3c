// The ceilings of 128-bit WebAssembly on this machine, in Chromium: how many int8 multiply-adds
// per second the relaxed dot (i32x4.relaxed_dot_i8x16_i7x16_add_s, 16 each) and SIMD128's
// (i32x4.dot_i16x8_s on widened values, 8 each) give from registers only, and how fast wasm loads
// stream a buffer far larger than the caches; on 1 and 2 threads (Workers started together).
// The kernels are tests/bench/ceiling.c, built here with @yowasp/clang (clang 22).
//
//   npm run bench:ceiling [-- --rounds 5 --json out.json]
//
// Prints medians and ranges over the rounds. `npm run bench` uses the same measurement
// (measureCeilings) to print its engines' efficiency beside their ratio to native.
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { withBenchBrowser, type BenchTab } from './browser.ts';
import { median } from './engines/types.ts';
import type { CeilingRequest } from './pages/ceiling-worker.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

/** Multiply-adds per dot instruction, and dots per loop iteration (CHAINS in ceiling.c). */
const MACS = { relaxed: 16, simd128: 8 } as const;
const CHAINS = 12;
const ITERATIONS = 20_000_000;
const STREAM_BYTES = 512 * 2 ** 20;
const STREAM_PASSES = 4;

export interface Ceilings {
  /** int8 multiply-adds per second (1e9), by kernel and thread count: medians, with the rounds. */
  relaxed: Record<1 | 2, number[]>;
  simd128: Record<1 | 2, number[]>;
  /** Streaming read of wasm loads, GB/s. */
  stream: Record<1 | 2, number[]>;
}

/** Compiles ceiling.c with @yowasp/clang; returns the module. */
export async function buildCeilingModule(): Promise<Uint8Array> {
  type Tool = (args: string[], files: Record<string, unknown>, options: object) => Promise<Record<string, unknown> | undefined>;
  const { runClang, runLLVM } = (await import('@yowasp/clang')) as unknown as { runClang: Tool; runLLVM: Tool };
  const files = { 'ceiling.c': readFileSync(join(HERE, 'ceiling.c')) };
  const quiet = { fetchProgress: () => {}, stderr: () => {} };
  await runLLVM(null as unknown as string[], {}, { fetchProgress: () => {} });  // loads the toolchain without printing its progress
  const compiled = await runClang(['clang', '--target=wasm32', '-O2', '-msimd128', '-mrelaxed-simd', '-ffreestanding', '-c', 'ceiling.c'], files, quiet);
  const linked = await runLLVM(['wasm-ld', '--no-entry', '--export-dynamic', '--export=__heap_base', '-o', 'ceiling.wasm', 'ceiling.o'],
    { 'ceiling.o': compiled!['ceiling.o'] }, quiet);
  return linked!['ceiling.wasm'] as Uint8Array;
}

/** Runs every ceiling `rounds` times on an open bench browser, kinds and thread counts in turn. */
export async function measureCeilings(browser: { open(name: string): Promise<BenchTab> }, wasm: Uint8Array, rounds: number): Promise<Ceilings> {
  const tab = await browser.open('ceiling.html');
  const request = { wasm: Buffer.from(wasm).toString('base64'), iterations: ITERATIONS, bytes: STREAM_BYTES, passes: STREAM_PASSES };
  const result: Ceilings = { relaxed: { 1: [], 2: [] }, simd128: { 1: [], 2: [] }, stream: { 1: [], 2: [] } };
  for (let round = 0; round < rounds; round++) {
    for (const kind of ['relaxed', 'simd128', 'stream'] as const) {
      for (const threads of [1, 2] as const) {
        const seconds = await tab.call<number[]>('run', { ...request, kind, threads } satisfies CeilingRequest & { threads: number });
        const slowest = Math.max(...seconds);
        const rate = kind === 'stream'
          ? (STREAM_BYTES * STREAM_PASSES * threads) / slowest / 1e9
          : (ITERATIONS * CHAINS * MACS[kind] * threads) / slowest / 1e9;
        result[kind][threads].push(rate);
      }
    }
  }
  await tab.page.close();
  return result;
}

/** "123 (118–127)". */
export function formatSpread(values: number[]): string {
  const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
  return values.length > 1 ? `${fmt(median(values))} (${fmt(Math.min(...values))}–${fmt(Math.max(...values))})` : fmt(values[0] ?? NaN);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, json: { type: 'string' } } });
  const rounds = Number(values.rounds);
  const wasm = await buildCeilingModule();
  console.log(`load average before: ${loadavg()[0]!.toFixed(2)}`);
  const ceilings = await withBenchBrowser({}, (browser) => measureCeilings(browser, wasm, rounds));
  console.log(`\nWebAssembly ceilings in Chromium, median (range) of ${rounds} rounds:`);
  console.log('| measure | 1 thread | 2 threads |');
  console.log('|---|---|---|');
  console.log(`| relaxed int8 dot, GMAC/s | ${formatSpread(ceilings.relaxed[1])} | ${formatSpread(ceilings.relaxed[2])} |`);
  console.log(`| SIMD128 int8 dot (i16 widened), GMAC/s | ${formatSpread(ceilings.simd128[1])} | ${formatSpread(ceilings.simd128[2])} |`);
  console.log(`| streaming read of wasm loads, GB/s | ${formatSpread(ceilings.stream[1])} | ${formatSpread(ceilings.stream[2])} |`);
  if (values.json) writeFileSync(values.json, `${JSON.stringify(ceilings, null, 2)}\n`);
}
