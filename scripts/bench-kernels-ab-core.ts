// The A/B loop of scripts/bench-kernels-ab.ts, platform-neutral (Node, or a Chromium Worker).
import type { Kernels } from '../src/model/kernels.ts';
import { WeightType } from '../src/model/kernels.ts';

export interface AbOptions {
  types: string[];
  tokens: number[];
  rounds: number;
}

const SHAPES = [{ rows: 9728, cols: 2560 }, { rows: 2560, cols: 9728 }];
const TYPES: Record<string, { id: WeightType; blockBytes: number; halfOffsets: number[] }> = {
  Q4_0: { id: WeightType.Q4_0, blockBytes: 18, halfOffsets: [0] },
  Q8_0: { id: WeightType.Q8_0, blockBytes: 34, halfOffsets: [0] },
  Q4_K: { id: WeightType.Q4_K, blockBytes: 144, halfOffsets: [0, 2] },
  Q6_K: { id: WeightType.Q6_K, blockBytes: 210, halfOffsets: [208] },
};

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;

/** Seeded weights (with a sane half, 2^-7, wherever d / dmin live: no inf/NaN in the sums),
 * activations and an output buffer for one matmul shape. */
function matmulBuffers(k: Kernels, t: (typeof TYPES)[string], rows: number, cols: number, maxTok: number) {
  const wBytes = rows * k.rowBytes(t.id, cols);
  const w = k.alloc(wBytes);
  const u8 = k.bytes();
  let s = 12345;
  for (let i = 0; i < wBytes; i++) { s = (Math.imul(s, 1103515245) + 12345) | 0; u8[w + i] = s >>> 24; }
  for (let b = 0; b < wBytes; b += t.blockBytes) for (const o of t.halfOffsets) { u8[w + b + o] = 0; u8[w + b + o + 1] = 0x20; }
  const src = k.alloc(maxTok * cols * 4), dst = k.alloc(maxTok * rows * 4);
  const f = k.f32();
  for (let i = 0; i < maxTok * cols; i++) f[src / 4 + i] = Math.sin(i * 0.37);
  return { w, src, dst };
}

/** Times one matmul per variant, the variants' calls interleaved round by round; one line per
 * type x shape x token count: median and best ms per call, and speed relative to variant 0. */
export function runAb(kernels: Kernels[], options: AbOptions, log: (line: string) => void): void {
  for (const name of options.types) {
    const t = TYPES[name];
    if (!t) throw new Error(`unknown type ${name}`);
    for (const { rows, cols } of SHAPES) {
      const maxTok = Math.max(...options.tokens);
      const bufs = kernels.map((k) => matmulBuffers(k, t, rows, cols, maxTok));
      for (const nTok of options.tokens) {
        const times = kernels.map(() => [] as number[]);
        kernels.forEach((k, i) => k.matmul(bufs[i]!.dst, bufs[i]!.w, t.id, rows, cols, bufs[i]!.src, nTok));
        for (let r = 0; r < options.rounds; r++) {
          kernels.forEach((k, i) => {
            const b = bufs[i]!;
            const reps = nTok === 1 ? 20 : 1;
            const t0 = performance.now();
            for (let j = 0; j < reps; j++) k.matmul(b.dst, b.w, t.id, rows, cols, b.src, nTok);
            times[i]!.push((performance.now() - t0) / reps);
          });
        }
        const m0 = median(times[0]!);
        log(`${name} ${rows}x${cols} t=${nTok}: ` + times.map((v, i) =>
          `[${i}] med ${median(v).toFixed(2)} best ${Math.min(...v).toFixed(2)} ms (${(m0 / median(v)).toFixed(2)}x)`).join('  '));
      }
    }
  }
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
  for (const name of options.types) {
    const t = TYPES[name];
    if (!t) throw new Error(`unknown type ${name}`);
    for (const { rows, cols } of SHAPES) {
      const maxTok = Math.max(...options.tokens);
      const bufs = kernels.map((k) => matmulBuffers(k, t, rows, cols, maxTok));
      for (const nTok of options.tokens) {
        const label = `${name} ${rows}x${cols} t=${nTok}`;
        // calls per batch from one timed call of variant 0 (after a warm-up call of each)
        kernels.forEach((k, i) => k.matmul(bufs[i]!.dst, bufs[i]!.w, t.id, rows, cols, bufs[i]!.src, nTok));
        const t0 = performance.now();
        kernels[0]!.matmul(bufs[0]!.dst, bufs[0]!.w, t.id, rows, cols, bufs[0]!.src, nTok);
        const calls = Math.max(1, Math.round((options.batchSeconds * 1000) / Math.max(0.01, performance.now() - t0)));
        for (let r = 0; r < options.rounds; r++) {
          kernels.forEach((k, i) => {
            const b = bufs[i]!;
            const start = Date.now();
            for (let j = 0; j < calls; j++) k.matmul(b.dst, b.w, t.id, rows, cols, b.src, nTok);
            batches.push({ label, variant: i, calls, start, end: Date.now() });
          });
        }
      }
    }
  }
  return batches;
}
