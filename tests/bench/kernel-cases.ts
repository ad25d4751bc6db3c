// The kernel benchmark itself, platform-neutral: tests/bench/kernels.ts runs it
// in Node and, with --browser, inside a Chromium Worker.
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
    const t = TYPES[name];
    if (!t) throw new Error(`unknown type ${name}`);
    for (const { rows, cols } of SHAPES) {
      const wBytes = rows * k.rowBytes(t.id, cols);
      const copies = options.cold ? Math.ceil(COLD_BYTES / wBytes) : 1;
      const w = k.alloc(wBytes * copies);
      fillWeights(k, w, wBytes, t.blockBytes, t.halfOffsets);
      // the layout a model runs on (Q4_0 becomes Q4_0x4, Q4_K Q4_Kx on SIMD128, Q6_K Q6_Kx on relaxed)
      const type = k.repack(w, t.id, rows, cols);
      for (let c = 1; c < copies; c++) k.bytes().copyWithin(w + c * wBytes, w, w + wBytes);
      let call = 0;
      const src = k.alloc(maxTok * cols * 4), dst = k.alloc(maxTok * rows * 4);
      const f = k.f32();
      for (let i = 0; i < maxTok * cols; i++) f[src / 4 + i] = Math.sin(i * 0.37);
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
