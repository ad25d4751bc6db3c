// A/B comparison of kernel builds in one process, calls interleaved so that a
// noisy machine slows every variant alike (SIMD128 builds, Node, 1 thread).
//
//   npx tsx scripts/bench-kernels-ab.ts A.wasm B.wasm [--types Q4_0,Q4_K] [--tokens 1,64] [--rounds 15]
//
// Prints per variant the median and best ms of one matmul call, and the ratio to the first file.
import { readFileSync } from 'node:fs';
import { createKernels, WeightType } from '../src/model/kernels.ts';
import { nodePlatform } from '../src/model/kernel-platform-node.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const files = process.argv.slice(2).filter((a, i, all) => a.endsWith('.wasm') && !all[i - 1]?.startsWith('--'));
const types = (arg('--types') ?? 'Q4_0,Q4_K,Q6_K,Q8_0').split(',');
const tokenList = (arg('--tokens') ?? '1,64').split(',').map(Number);
const rounds = Number(arg('--rounds') ?? 15);
const SHAPES = [{ rows: 9728, cols: 2560 }, { rows: 2560, cols: 9728 }];
const TYPES: Record<string, { id: WeightType; blockBytes: number; halfOffsets: number[] }> = {
  Q4_0: { id: WeightType.Q4_0, blockBytes: 18, halfOffsets: [0] },
  Q8_0: { id: WeightType.Q8_0, blockBytes: 34, halfOffsets: [0] },
  Q4_K: { id: WeightType.Q4_K, blockBytes: 144, halfOffsets: [0, 2] },
  Q6_K: { id: WeightType.Q6_K, blockBytes: 210, halfOffsets: [208] },
};

const kernels = await Promise.all(files.map((f) => createKernels({ threads: 1, build: 'simd128' },
  { ...nodePlatform, wasmBytes: async () => new Uint8Array(readFileSync(f)) })));
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
for (const name of types) {
  const t = TYPES[name]!;
  for (const { rows, cols } of SHAPES) {
    const maxTok = Math.max(...tokenList);
    const bufs = kernels.map((k) => {
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
    });
    for (const nTok of tokenList) {
      const times = kernels.map(() => [] as number[]);
      kernels.forEach((k, i) => k.matmul(bufs[i]!.dst, bufs[i]!.w, t.id, rows, cols, bufs[i]!.src, nTok));
      for (let r = 0; r < rounds; r++) {
        kernels.forEach((k, i) => {
          const b = bufs[i]!;
          const reps = nTok === 1 ? 20 : 1;
          const t0 = performance.now();
          for (let j = 0; j < reps; j++) k.matmul(b.dst, b.w, t.id, rows, cols, b.src, nTok);
          times[i]!.push((performance.now() - t0) / reps);
        });
      }
      const m0 = median(times[0]!);
      console.log(`${name} ${rows}x${cols} t=${nTok}: ` + times.map((v, i) =>
        `[${i}] med ${median(v).toFixed(2)} best ${Math.min(...v).toFixed(2)} ms (${(m0 / median(v)).toFixed(2)}x)`).join('  '));
    }
  }
}
for (const k of kernels) k.dispose();
