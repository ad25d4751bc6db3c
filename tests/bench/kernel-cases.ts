// The kernel benchmark's cases, platform-neutral: tests/bench/kernels.ts runs them in Node and,
// with --browser, inside a Chromium Worker (tests/bench/pages/kernels-worker.ts).
//
// Two measurements over the same matrices (Qwen3-4B's FFN shapes, seeded weights in the layout a
// model runs on):
// - runKernelBench: the speed of one build, one line per type x shape x token count;
// - runAb / runAbBatches: the A/B comparison of several builds, their calls interleaved so that a
//   noisy machine slows every variant alike.
import type { Kernels } from '../../src/model/kernels.ts';
import { WeightType } from '../../src/model/kernels.ts';

export interface BenchOptions {
  /** Seconds of repeated calls per measurement (the best call is kept). */
  minSeconds: number;
  types?: string[];
  tokens?: number[];
  /**
   * Rotate over copies of each matrix (≥ 256 MB in all), so every call streams its weights
   * from DRAM as a model's decode does, instead of from a cache that holds one matrix.
   */
  cold?: boolean;
}

export interface AbOptions {
  /** Weight types (matmuls of the FFN shapes), or ATTN_F16 / ATTN_Q8_0 (one layer's attention). */
  types: string[];
  tokens: number[];
  rounds: number;
  /** Cache positions before the tokens in the attention cases. */
  depth: number;
}

const COLD_BYTES = 256 * 1024 * 1024;

export const SHAPES = [{ rows: 9728, cols: 2560 }, { rows: 2560, cols: 9728 }];
export const TYPES: Record<string, { id: WeightType; blockBytes: number; halfOffsets: number[] }> = {
  Q4_0: { id: WeightType.Q4_0, blockBytes: 18, halfOffsets: [0] },
  Q4_K: { id: WeightType.Q4_K, blockBytes: 144, halfOffsets: [0, 2] },
  Q6_K: { id: WeightType.Q6_K, blockBytes: 210, halfOffsets: [208] },
  Q8_0: { id: WeightType.Q8_0, blockBytes: 34, halfOffsets: [0] },
};
const DEFAULT_TYPES = ['Q4_0', 'Q4_K', 'Q6_K'];

export const BENCH_HEADER = 'type   rows x cols    tokens threads build      ms/call    GB/s  GFLOP/s mean GB/s';

export const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;

/** Seeded weights with a sane half (0x2000 = 2^-7) wherever d / dmin live. */
export function fillWeights(k: Kernels, ptr: number, bytes: number, blockBytes: number, halfOffsets: number[]): void {
  const u8 = k.bytes();
  let s = 12345;
  for (let i = 0; i < bytes; i++) {
    s = (Math.imul(s, 1103515245) + 12345) | 0;
    u8[ptr + i] = s >>> 24;
  }
  // a sane half (0x2000 = 2^-7) wherever d / dmin live: no inf/NaN in the sums
  for (let b = 0; b < bytes; b += blockBytes) for (const o of halfOffsets) { u8[ptr + b + o] = 0; u8[ptr + b + o + 1] = 0x20; }
}

function weightType(name: string): (typeof TYPES)[string] {
  const t = TYPES[name];
  if (!t) throw new Error(`unknown type ${name}`);
  return t;
}

/**
 * Seeded weights in the layout a model runs on (`repack`: Q4_0 becomes Q4_0x4, Q4_K Q4_Kx on
 * SIMD128, Q6_K Q6_Kx on relaxed), `copies` times one after the other (wBytes apart),
 * activations for `maxTok` tokens and an output buffer, for one matmul shape.
 */
function matmulBuffers(k: Kernels, t: (typeof TYPES)[string], rows: number, cols: number, maxTok: number, copies = 1) {
  const wBytes = rows * k.rowBytes(t.id, cols);
  const w = k.alloc(wBytes * copies);
  fillWeights(k, w, wBytes, t.blockBytes, t.halfOffsets);
  const type = k.repack(w, t.id, rows, cols);
  for (let c = 1; c < copies; c++) k.bytes().copyWithin(w + c * wBytes, w, w + wBytes);
  const src = k.alloc(maxTok * cols * 4), dst = k.alloc(maxTok * rows * 4);
  const f = k.f32();
  for (let i = 0; i < maxTok * cols; i++) f[src / 4 + i] = Math.sin(i * 0.37);
  return { w, wBytes, type, src, dst };
}

// ---------------------------------------------------------------------------
// Speed of one build

/** Best and mean seconds per call of `fn` over `minSeconds` (and at least 3 calls). */
function time(fn: () => void, minSeconds: number): { best: number; mean: number } {
  fn();  // warm up
  let best = Infinity;
  const started = performance.now();
  const deadline = started + minSeconds * 1000;
  let rounds = 0;
  for (; rounds < 3 || performance.now() < deadline; rounds++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return { best, mean: (performance.now() - started) / 1000 / rounds };
}

const layoutName = (type: WeightType) => Object.entries(WeightType).find(([, id]) => id === type)![0];

/** Runs every type x shape x token count on `k`, one line per measurement through `log`. */
export function runKernelBench(k: Kernels, options: BenchOptions, log: (line: string) => void): void {
  const tokens = options.tokens ?? [1, 32];
  const maxTok = Math.max(...tokens);
  for (const name of options.types ?? DEFAULT_TYPES) {
    const t = weightType(name);
    for (const { rows, cols } of SHAPES) {
      const copies = options.cold ? Math.ceil(COLD_BYTES / (rows * k.rowBytes(t.id, cols))) : 1;
      const { w, wBytes, type, src, dst } = matmulBuffers(k, t, rows, cols, maxTok, copies);
      let call = 0;
      for (const nTok of tokens) {
        k.poolStats();  // reset
        const { best: seconds, mean } = time(() => k.matmul(dst, w + (call++ % copies) * wBytes, type, rows, cols, src, nTok), options.minSeconds);
        const items = k.poolStats();
        const total = items.reduce((a, b) => a + b, 0);
        const shares = k.threads > 1 ? `  work split ${items.map((n) => `${Math.round((100 * n) / total)}%`).join('/')}` : '';
        log(`${layoutName(type).padEnd(6)} ${`${rows}x${cols}`.padEnd(14)} ${String(nTok).padStart(6)} ${String(k.threads).padStart(7)} ` +
          `${k.build.padEnd(8)} ${(seconds * 1e3).toFixed(2).padStart(9)} ${(wBytes / seconds / 1e9).toFixed(2).padStart(7)} ` +
          `${((2 * rows * cols * nTok) / seconds / 1e9).toFixed(1).padStart(8)} ${(wBytes / mean / 1e9).toFixed(2).padStart(9)}${shares}`);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// A/B comparison of builds

/** The attention cases: one layer of Qwen3-4B's (32 query heads, 8 KV heads of 128) per cache type. */
const ATTENTION_CASES: Record<string, 'f16' | 'q8_0'> = { ATTN_F16: 'f16', ATTN_Q8_0: 'q8_0' };
const ATTN_HEADS = 32, ATTN_KV_HEADS = 8, ATTN_HEAD_DIM = 128;

/** A cache holding `depth + maxTok` positions of seeded keys and values, and queries for `maxTok` tokens. */
function attentionBuffers(k: Kernels, cache: 'f16' | 'q8_0', depth: number, maxTok: number) {
  const kvDim = ATTN_KV_HEADS * ATTN_HEAD_DIM, positions = depth + maxTok;
  const rowBytes = cache === 'f16' ? kvDim * 2 : (kvDim / 32) * 34;
  const ck = k.alloc(positions * rowBytes), cv = k.alloc(positions * rowBytes);
  const rows = k.alloc(positions * kvDim * 4);
  const q = k.alloc(maxTok * ATTN_HEADS * ATTN_HEAD_DIM * 4), out = k.alloc(maxTok * ATTN_HEADS * ATTN_HEAD_DIM * 4);
  const f = k.f32();
  for (let i = 0; i < positions * kvDim; i++) f[rows / 4 + i] = Math.sin(i * 0.61) * 2;
  for (let i = 0; i < maxTok * ATTN_HEADS * ATTN_HEAD_DIM; i++) f[q / 4 + i] = Math.sin(i * 0.13);
  if (cache === 'f16') k.kvStore(ck, cv, rows, rows, positions, 0, kvDim);
  else k.kvStoreQ8_0(ck, cv, rows, rows, positions, 0, kvDim);
  return { ck, cv, q, out };
}

/** One attention case: call(i) runs variant i's attention of nTok tokens after `depth` positions. */
function attentionCase(kernels: Kernels[], cache: 'f16' | 'q8_0', options: AbOptions,
                       measure: (label: string, nTok: number, call: (variant: number) => void) => void): void {
  const bufs = kernels.map((k) => attentionBuffers(k, cache, options.depth, Math.max(...options.tokens)));
  for (const nTok of options.tokens) {
    const call = (i: number) => {
      const k = kernels[i]!, b = bufs[i]!;
      const run = cache === 'f16' ? k.attention : k.attentionQ8_0;
      run.call(k, b.out, b.q, b.ck, b.cv, nTok, options.depth, ATTN_HEADS, ATTN_KV_HEADS, ATTN_HEAD_DIM);
    };
    kernels.forEach((_, i) => call(i));
    measure(`attention ${cache} depth=${options.depth} t=${nTok}`, nTok, call);
  }
}

/** Every type x shape x token count: `measure(label, nTok, call)`, where call(i) runs variant i's
 * matmul (or attention) once; each variant has its own buffers and has made one warm-up call. */
function eachCase(kernels: Kernels[], options: AbOptions, measure: (label: string, nTok: number, call: (variant: number) => void) => void): void {
  for (const name of options.types) {
    const cache = ATTENTION_CASES[name];
    if (cache) {
      attentionCase(kernels, cache, options, measure);
      continue;
    }
    const t = weightType(name);
    for (const { rows, cols } of SHAPES) {
      const bufs = kernels.map((k) => matmulBuffers(k, t, rows, cols, Math.max(...options.tokens)));
      for (const nTok of options.tokens) {
        const call = (i: number) => kernels[i]!.matmul(bufs[i]!.dst, bufs[i]!.w, bufs[i]!.type, rows, cols, bufs[i]!.src, nTok);
        kernels.forEach((_, i) => call(i));
        measure(`${name} ${rows}x${cols} t=${nTok}`, nTok, call);
      }
    }
  }
}

/** Times one matmul per variant, the variants' calls interleaved round by round; one line per
 * type x shape x token count: median and best ms per call, and speed relative to variant 0. */
export function runAb(kernels: Kernels[], options: AbOptions, log: (line: string) => void): void {
  eachCase(kernels, options, (label, nTok, call) => {
    const reps = nTok === 1 ? 20 : 1;  // single-token calls are short: time 20 at once
    const times = kernels.map(() => [] as number[]);
    for (let r = 0; r < options.rounds; r++) {
      kernels.forEach((_, i) => {
        const t0 = performance.now();
        for (let j = 0; j < reps; j++) call(i);
        times[i]!.push((performance.now() - t0) / reps);
      });
    }
    const m0 = median(times[0]!);
    log(`${label}: ` + times.map((v, i) =>
      `[${i}] med ${median(v).toFixed(2)} best ${Math.min(...v).toFixed(2)} ms (${(m0 / median(v)).toFixed(2)}x)`).join('  '));
  });
}

/** One batch of calls of one variant, timed by the wall clock (Date.now(), ms since the epoch). */
export interface AbBatch {
  label: string;
  variant: number;
  calls: number;
  start: number;
  end: number;
}

/** Like runAb, but each variant runs batches of calls (about `batchSeconds` long), and the
 * batches are returned, so the caller can charge them the CPU time the OS counted for the
 * thread that ran them (robust where other processes compete for the cores). */
export function runAbBatches(kernels: Kernels[], options: AbOptions & { batchSeconds: number }): AbBatch[] {
  const batches: AbBatch[] = [];
  eachCase(kernels, options, (label, _nTok, call) => {
    // calls per batch from one timed call of variant 0
    const t0 = performance.now();
    call(0);
    const calls = Math.max(1, Math.round((options.batchSeconds * 1000) / Math.max(0.01, performance.now() - t0)));
    for (let r = 0; r < options.rounds; r++) {
      kernels.forEach((_, i) => {
        const start = Date.now();
        for (let j = 0; j < calls; j++) call(i);
        batches.push({ label, variant: i, calls, start, end: Date.now() });
      });
    }
  });
  return batches;
}

// ---------------------------------------------------------------------------
// The browser page's requests (tests/bench/pages/kernels-page.ts hands them to its worker)

/** `bench.speeds(request)`: runKernelBench with the 'auto' build at each thread count. */
export interface SpeedsRequest {
  threadList: number[];
  options: BenchOptions;
}

/** `bench.ab(request)`: the variants' wasm bytes (base64) run as relaxed builds; with
 * batchSeconds > 0, runAbBatches (the promise resolves to the batches), else runAb. */
export interface AbRequest {
  wasm: string[];
  threads: number;
  options: AbOptions;
  batchSeconds: number;
}

/** What the worker posts: a result line (the page logs it), then the end of the run. */
export type KernelWorkerReply = { line: string } | { done: true; batches?: AbBatch[] } | { error: string };

export type KernelWorkerRequest = ({ kind: 'speeds' } & SpeedsRequest) | ({ kind: 'ab' } & AbRequest);
