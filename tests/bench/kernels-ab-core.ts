// The A/B loop of tests/bench/kernels-ab.ts, platform-neutral (Node, or a Chromium Worker).
import type { Kernels } from '../../src/model/kernels.ts';
import { fillWeights, SHAPES, TYPES } from './kernel-cases.ts';

export interface AbOptions {
  types: string[];
  tokens: number[];
  rounds: number;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;

/** Seeded weights in the variant's own layout (`repack`), activations and an output buffer for one matmul shape. */
function matmulBuffers(k: Kernels, t: (typeof TYPES)[string], rows: number, cols: number, maxTok: number) {
  const wBytes = rows * k.rowBytes(t.id, cols);
  const w = k.alloc(wBytes);
  fillWeights(k, w, wBytes, t.blockBytes, t.halfOffsets);
  const type = k.repack(w, t.id, rows, cols);
  const src = k.alloc(maxTok * cols * 4), dst = k.alloc(maxTok * rows * 4);
  const f = k.f32();
  for (let i = 0; i < maxTok * cols; i++) f[src / 4 + i] = Math.sin(i * 0.37);
  return { w, type, src, dst };
}

/** Every type x shape x token count: `measure(label, nTok, call)`, where call(i) runs variant i's
 * matmul once; each variant has its own buffers and has made one warm-up call. */
function eachCase(kernels: Kernels[], options: AbOptions, measure: (label: string, nTok: number, call: (variant: number) => void) => void): void {
  for (const name of options.types) {
    const t = TYPES[name];
    if (!t) throw new Error(`unknown type ${name}`);
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
