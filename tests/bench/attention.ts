// Attention deep into the context: one layer of Qwen3-4B's attention (32 query heads, 8 KV heads
// of 128) over a cache holding `depth` tokens, f16 and q8_0 caches, for one decode token and for a
// 64-token prefill batch, next to the same layer's matmuls (Q4_K projections and FFN). Times are
// medians of interleaved rounds; the share says how much of a layer's time attention takes.
// Run: npm run bench:attention [-- --depths 128,2048,8000 --threads 2 --rounds 5]
import { parseArgs } from 'node:util';
import os from 'node:os';
import { createKernels, WeightType } from '../../src/model/kernels.ts';
import { fillWeights, median } from './kernel-cases.ts';

const { values } = parseArgs({
  options: {
    depths: { type: 'string', default: '128,2048,8000' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '5' },
  },
});
const depths = values.depths.split(',').map(Number);
const threads = Number(values.threads);
const rounds = Number(values.rounds);

const HEADS = 32, KV_HEADS = 8, HEAD_DIM = 128, HIDDEN = 2560, FFN = 9728;
const KV_DIM = KV_HEADS * HEAD_DIM;
const maxDepth = Math.max(...depths) + 64;

const k = await createKernels({ threads, initialBytes: 1.5 * 2 ** 30 });
const cache = {
  f16: { k: k.alloc(maxDepth * KV_DIM * 2), v: k.alloc(maxDepth * KV_DIM * 2) },
  q8_0: { k: k.alloc(maxDepth * (KV_DIM / 32) * 34), v: k.alloc(maxDepth * (KV_DIM / 32) * 34) },
};
// Keys and values of a whole context, stored in both caches.
const rows = k.alloc(maxDepth * KV_DIM * 4);
const f = k.f32();
for (let i = 0; i < maxDepth * KV_DIM; i++) f[rows / 4 + i] = Math.sin(i * 0.61) * 2;
k.kvStore(cache.f16.k, cache.f16.v, rows, rows, maxDepth, 0, KV_DIM);
k.kvStoreQ8_0(cache.q8_0.k, cache.q8_0.v, rows, rows, maxDepth, 0, KV_DIM);
const q = k.alloc(64 * HEADS * HEAD_DIM * 4), out = k.alloc(64 * HEADS * HEAD_DIM * 4);

// One layer's matmuls in Q4_K (Q, K, V, O, gate, up, down), the weights of a Q4_K_M layer.
const shapes: [number, number][] = [[HEADS * HEAD_DIM, HIDDEN], [KV_DIM, HIDDEN], [KV_DIM, HIDDEN], [HIDDEN, HEADS * HEAD_DIM],
  [FFN, HIDDEN], [FFN, HIDDEN], [HIDDEN, FFN]];
const mats = shapes.map(([r, c]) => {
  const bytes = r * k.rowBytes(WeightType.Q4_K, c);
  const w = k.alloc(bytes);
  fillWeights(k, w, bytes, 144, [0, 2]);
  return { w, type: k.repack(w, WeightType.Q4_K, r, c), rows: r, cols: c };
});
const src = k.alloc(64 * FFN * 4), dst = k.alloc(64 * FFN * 4);
for (let i = 0; i < 64 * FFN; i++) k.f32()[src / 4 + i] = Math.cos(i * 0.3);

function time(run: () => void): number {
  const start = performance.now();
  run();
  return performance.now() - start;
}

const fillQ = (n: number) => { const f32 = k.f32(); for (let i = 0; i < n * HEADS * HEAD_DIM; i++) f32[q / 4 + i] = Math.sin(i * 0.13); };
const attention = (type: 'f16' | 'q8_0', n: number, depth: number) => () => {
  fillQ(n);
  if (type === 'f16') k.attention(out, q, cache.f16.k, cache.f16.v, n, depth, HEADS, KV_HEADS, HEAD_DIM);
  else k.attentionQ8_0(out, q, cache.q8_0.k, cache.q8_0.v, n, depth, HEADS, KV_HEADS, HEAD_DIM);
};
const matmuls = (n: number) => () => { for (const m of mats) k.matmul(dst, m.w, m.type, m.rows, m.cols, src, n); };

console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; ${threads} threads, build ${k.build}, ${rounds} rounds`);
console.log('tokens  depth   matmuls ms   f16 attn ms (share)   q8_0 attn ms (share)');
for (const n of [1, 64]) {
  for (const depth of depths) {
    const samples: Record<string, number[]> = { mm: [], f16: [], q8: [] };
    for (let r = 0; r < rounds; r++) {
      samples.mm!.push(time(matmuls(n)));
      samples.f16!.push(time(attention('f16', n, depth)));
      samples.q8!.push(time(attention('q8_0', n, depth)));
    }
    const mm = median(samples.mm!), a16 = median(samples.f16!), a8 = median(samples.q8!);
    const share = (a: number) => `${(100 * a / (a + mm)).toFixed(0)}%`;
    console.log(`${String(n).padStart(6)} ${String(depth).padStart(6)} ${mm.toFixed(2).padStart(12)} ` +
      `${a16.toFixed(2).padStart(13)} (${share(a16)})`.padEnd(22) + `${a8.toFixed(2).padStart(13)} (${share(a8)})`);
  }
}
k.dispose();
