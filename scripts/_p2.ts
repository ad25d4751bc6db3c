import { Qwen3Model } from '../src/model/qwen3.ts';
import { NodeFileSource } from '../src/gguf/node-file-source.ts';
async function main() {
  const model = await Qwen3Model.load(await NodeFileSource.open('.cache/fixtures/small-q4_0.gguf'), { threads: 2, contextLength: 512 });
  model.prefill(Array.from({ length: 64 }, (_, i) => 100 + i));
  for (let i = 0; i < 40; i++) model.decode(200 + i);
  console.log((globalThis as any).__profile);
}
main();
