// Loads one GGUF file with the CPU engine and prints what happened as one JSON line: the test of
// a memory-limited device runs it in a Node started with --wasm-max-mem-pages (V8's own limit,
// met by the kernels exactly as a phone's browser meets its own).
import { CpuEngine } from '../../src/engine/cpu-engine.ts';

const [path, contextLength] = process.argv.slice(2);
const engine = new CpuEngine();
try {
  const info = await engine.load({ kind: 'path', path: path! }, { threads: 1, build: 'simd128', contextLength: Number(contextLength) });
  console.log(JSON.stringify({ info: { contextLength: info.contextLength } }));
  await engine.unload();
} catch (e) {
  const { name, code, detail, message } = e as { name: string; code?: string; detail?: string; message: string };
  console.log(JSON.stringify({ error: { name, code, detail, message } }));
}
