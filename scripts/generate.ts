// CLI: stream a completion from a GGUF file on the wasm kernels in Node.
//   npm run generate -- --model path/to/model.gguf --prompt "Write a haiku" [--max-tokens 128]
//     [--temperature 0.7] [--top-k 20] [--top-p 0.8] [--seed 1] [--threads N] [--context 4096] [--raw]
import { parseArgs } from 'node:util';
import { NodeFileSource } from '../src/gguf/node-file-source.ts';
import { readTokenizerData } from '../src/gguf/metadata.ts';
import { DEFAULT_SAMPLING, Sampler, SeededRandom } from '../src/engine/sampler.ts';
import type { KernelBuild } from '../src/model/kernel-platform.ts';
import { Qwen3Model } from '../src/model/qwen3.ts';
import { renderChat } from '../src/tokenizer/chat-template.ts';
import { Tokenizer } from '../src/tokenizer/tokenizer.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    prompt: { type: 'string', default: 'Write a short poem about the sea.' },
    system: { type: 'string' },
    'max-tokens': { type: 'string', default: '128' },
    temperature: { type: 'string', default: String(DEFAULT_SAMPLING.temperature) },
    'top-k': { type: 'string', default: String(DEFAULT_SAMPLING.topK) },
    'top-p': { type: 'string', default: String(DEFAULT_SAMPLING.topP) },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    threads: { type: 'string' },
    context: { type: 'string', default: '4096' },
    build: { type: 'string', default: 'auto' },
    raw: { type: 'boolean', default: false },
  },
});
if (!values.model) {
  console.error('usage: npm run generate -- --model FILE.gguf --prompt "..." [--max-tokens N] [--temperature T] [--seed S] [--raw]');
  process.exit(2);
}

const source = await NodeFileSource.open(values.model);
const loadStart = performance.now();
const model = await Qwen3Model.load(source, {
  contextLength: Number(values.context),
  threads: values.threads ? Number(values.threads) : undefined,
  build: values.build as 'auto' | KernelBuild, // checked by the loader
});
const tokenizerData = readTokenizerData(model.gguf);
const tokenizer = Tokenizer.fromData(tokenizerData);
const loadSeconds = (performance.now() - loadStart) / 1000;
console.error(`loaded ${values.model} in ${loadSeconds.toFixed(2)} s: ${model.config.nLayers} layers, ` +
  `${model.kernels.threads} threads, ${model.kernels.build} kernels, ${(model.memoryBytes / 2 ** 30).toFixed(2)} GiB`);

const text = values.raw
  ? values.prompt
  : renderChat(tokenizerData.chatTemplate, [
      ...(values.system ? [{ role: 'system' as const, content: values.system }] : []),
      { role: 'user' as const, content: values.prompt },
    ], { enableThinking: false });
const promptTokens = tokenizer.encode(text, { parseSpecial: !values.raw });
const sampler = new Sampler(
  { ...DEFAULT_SAMPLING, temperature: Number(values.temperature), topK: Number(values['top-k']), topP: Number(values['top-p']) },
  new SeededRandom(Number(values.seed)),
);

const prefillStart = performance.now();
let logits = model.prefill(promptTokens);
const prefillSeconds = (performance.now() - prefillStart) / 1000;

const decoder = tokenizer.createStreamDecoder();
const maxTokens = Math.min(Number(values['max-tokens']), model.contextLength - promptTokens.length);
const decodeStart = performance.now();
let generated = 0;
for (; generated < maxTokens; generated++) {
  const token = sampler.sample(logits);
  sampler.accept(token);
  if (tokenizer.eogIds.has(token)) break;
  process.stdout.write(decoder.push(token));
  if (generated + 1 < maxTokens) logits = model.decode(token);
}
process.stdout.write(decoder.flush() + '\n');
const decodeSeconds = (performance.now() - decodeStart) / 1000;
console.error(`prompt: ${promptTokens.length} tokens, ${(promptTokens.length / prefillSeconds).toFixed(1)} tok/s; ` +
  `generated: ${generated} tokens, ${(generated / decodeSeconds).toFixed(1)} tok/s`);
model.dispose();
await source.close();
