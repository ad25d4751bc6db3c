import { createKernels } from './src/model/kernels.ts';
const HEADS = 32, KV_HEADS = 8, HEAD_DIM = 128, KV_DIM = 1024;
const depth = Number(process.env.DEPTH ?? 2048), n = Number(process.env.N ?? 64), iters = Number(process.env.ITERS ?? 20);
const k = await createKernels({ threads: Number(process.env.THREADS ?? 1), initialBytes: 2 ** 30 });
const maxDepth = depth + 64;
const ck = k.alloc(maxDepth * KV_DIM * 2), cv = k.alloc(maxDepth * KV_DIM * 2);
const rows = k.alloc(maxDepth * KV_DIM * 4);
const f = k.f32();
for (let i = 0; i < maxDepth * KV_DIM; i++) f[rows / 4 + i] = Math.sin(i * 0.61) * 2;
k.kvStore(ck, cv, rows, rows, maxDepth, 0, KV_DIM);
const q = k.alloc(64 * HEADS * HEAD_DIM * 4), out = k.alloc(64 * HEADS * HEAD_DIM * 4);
const times: number[] = [];
for (let it = 0; it < iters; it++) {
  const f32 = k.f32(); for (let i = 0; i < n * HEADS * HEAD_DIM; i++) f32[q / 4 + i] = Math.sin(i * 0.13);
  const t0 = performance.now();
  k.attention(out, q, ck, cv, n, depth, HEADS, KV_HEADS, HEAD_DIM);
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
console.log(`n=${n} depth=${depth} build=${k.build} median ${times[times.length >> 1].toFixed(2)} ms min ${times[0].toFixed(2)}`);
k.dispose();
