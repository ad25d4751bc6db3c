import { Qwen3Model } from '../src/model/qwen3.ts';
import { NodeFileSource } from '../src/gguf/node-file-source.ts';
async function main() {
  const file = process.argv[2] ?? '.cache/fixtures/qwen3-4b-q4_0.gguf';
  const src = await NodeFileSource.open(file);
  const model = await Qwen3Model.load(src, { threads: 2, contextLength: 1024 });
  const k: any = model.kernels;
  const times = new Map<string, number>();
  for (const name of ['matmul', 'matmulMulti', 'rmsnorm', 'ropeNeox', 'siluMul', 'add', 'kvStore', 'attention', 'getRow']) {
    const orig = k[name].bind(k);
    k[name] = (...a: any[]) => {
      const t0 = performance.now(); orig(...a);
      const key = name === 'matmul' ? `matmul ${a[3]}x${a[4]} t${a[2]}` : name;
      times.set(key, (times.get(key) ?? 0) + performance.now() - t0);
    };
  }
  model.prefill(Array.from({ length: 64 }, (_, i) => 100 + i));
  times.clear();
  const steps = 24;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) model.decode(200 + i);
  const total = performance.now() - t0;
  let sum = 0;
  for (const [key, ms] of [...times].sort((a, b) => b[1] - a[1])) { sum += ms; console.log(key.padEnd(28), (ms / steps).toFixed(2), 'ms/token'); }
  console.log('total', (total / steps).toFixed(2), 'ms/token; in calls', (sum / steps).toFixed(2));
  model.dispose();
}
main();
