// What structured output costs: decode speed of the CPU engine in Node with and without a JSON
// Schema constraint (one answer each per round, rounds interleaved), on a Qwen3-4B-shaped fixture,
// and the grammar's own time per token (next() + mask() on Qwen3's vocabulary, no model).
// Goal from the writing-features issue: the mask costs ≤ 10% of decode time.
//
//   npm run bench:grammar [-- --fixture qwen3-4b-q4_0 --tokens 32 --rounds 3 --threads 2]
import { parseArgs } from 'node:util';
import { CpuEngine } from '../../src/engine/cpu-engine.ts';
import { GrammarCompiler } from '../../src/engine/grammar.ts';
import { argmax } from '../../src/engine/sampler.ts';
import type { ChatCompletionRequest } from '../../src/engine/types.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { loadQwen3Vocab } from '../fixtures/qwen3-vocab.ts';
import { Rng } from '../fixtures/random.ts';

const { values: args } = parseArgs({
  options: {
    fixture: { type: 'string', default: 'qwen3-4b-q4_0' },
    tokens: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
  },
});
const tokens = Number(args.tokens);
const rounds = Number(args.rounds);

// A long string to write: a random-weight model stays inside it, so every step is masked.
const SCHEMA = { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false };
const base: ChatCompletionRequest & { stream?: false } = {
  messages: [{ role: 'user', content: 'Write a paragraph about lighthouses.' }],
  max_tokens: tokens, temperature: 0.7, seed: 1,
};
const constrained = { ...base, response_format: { type: 'json_schema' as const, json_schema: { name: 'paragraph', schema: SCHEMA } } };

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
const range = (v: number[]) => `${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)}`;

// 1. The grammar alone: next() + mask() per token over the whole vocabulary, walking a string.
const tokenizer = Tokenizer.fromData(loadQwen3Vocab());
const vocabRows = 151_936;
const compiler = await GrammarCompiler.create(tokenizer, vocabRows);
const constraint = await compiler.constraint(constrained.response_format);
const rng = new Rng(5);
const logits = new Float32Array(vocabRows);
const maskMs: number[] = [];
for (let step = 0; step < 200; step++) {
  for (let i = 0; i < logits.length; i++) logits[i] = rng.nextGaussian();
  const t0 = performance.now();
  if (!(await constraint.next())) break;
  constraint.mask(logits);
  maskMs.push(performance.now() - t0);
  constraint.accept(argmax(logits));
}
constraint.dispose();
compiler.dispose();

// 2. The engine, free and constrained, rounds interleaved.
const engine = new CpuEngine();
const path = await ensureFixture(args.fixture!);
await engine.load({ kind: 'path', path }, { threads: Number(args.threads), contextLength: 512 });
const free: number[] = [];
const held: number[] = [];
for (let round = 0; round < rounds; round++) {
  for (const [request, into] of [[base, free], [constrained, held]] as const) {
    const completion = await engine.chat.completions.create(request);
    into.push(completion.usage.extra.decode_tokens_per_s);
    console.log(`round ${round + 1} ${request === base ? 'free' : 'json_schema'}: ${completion.usage.completion_tokens} tokens, ` +
      `decode ${completion.usage.extra.decode_tokens_per_s.toFixed(2)} tok/s`);
  }
}
await engine.unload();

const decodeMs = 1000 / median(free);
console.log(`\n${args.fixture}, Node ${process.version}, ${args.threads} threads, ${tokens} tokens per answer, ${rounds} rounds, load ${(await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log('| | median | range |');
console.log('|---|---|---|');
console.log(`| decode, free (tok/s) | ${median(free).toFixed(2)} | ${range(free)} |`);
console.log(`| decode, json_schema (tok/s) | ${median(held).toFixed(2)} | ${range(held)} |`);
console.log(`| grammar next()+mask() (ms/token, ${maskMs.length} steps) | ${median(maskMs).toFixed(3)} | ${range(maskMs)} |`);
console.log(`mask / decode time: ${((100 * median(maskMs)) / decodeMs).toFixed(2)} % (goal ≤ 10 %); ` +
  `constrained / free decode speed: ${(median(held) / median(free)).toFixed(3)}`);
