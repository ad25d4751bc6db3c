// Prompt-lookup drafting without a model: each task's answer is replayed through PromptLookup
// exactly as the engine does it (one pass per sampled token and its draft, the draft kept up to
// the first token the answer does not have), and each pass is charged 1 + r × its draft tokens,
// in decode steps. r, a drafted token's cost as a share of a decode step, is the machine's (about
// a prompt token's time ÷ a decode step; docs/perf-log.md); `npm run bench -- --task rewrite`
// measures the real thing. This runs in seconds and shows which drafts are made: passes, drafted
// and kept tokens, and the speedup they buy at a given r, the same every run, so drafting rules
// can be compared exactly.
//
// Tasks: rewrite and free (the main bench's, engines/prompt.ts), and edit (rename two identifiers
// through this repository's src/engine/stop-filter.ts, the first 2,400 characters).
// Run: npm run bench:lookup [-- --cost 0.4,0.5,0.6] [--decode 128,475] (answers cut to their length)
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { PromptLookup, type LookupMode } from '../../src/engine/prompt-lookup.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { loadQwen3Vocab } from '../fixtures/qwen3-vocab.ts';
import { taskTexts } from './engines/prompt.ts';

const { values } = parseArgs({
  options: {
    cost: { type: 'string', default: '0.4,0.5,0.6' },
    decode: { type: 'string', default: '128,475' },
  },
});
const costs = values.cost.split(',').map(Number);
const lengths = values.decode.split(',').map(Number);

const tokenizer = Tokenizer.fromData(loadQwen3Vocab());
const encode = (text: string) => tokenizer.encode(text);
const code = readFileSync(new URL('../../src/engine/stop-filter.ts', import.meta.url), 'utf8').slice(0, 2400);
const tasks = {
  rewrite: taskTexts('rewrite'),
  free: taskTexts('free'),
  edit: { prompt: `Rename stop to halt and text to content in this code:\n\n${code}\n\n`, answer: code.replace(/\bstop\b/g, 'halt').replace(/text/g, 'content') },
};

interface Replay { passes: number; drafted: number; kept: number; speedup: number }

function replay(prompt: number[], answer: number[], mode: LookupMode, cost: number): Replay {
  const lookup = new PromptLookup(mode);
  const context = prompt.slice();
  let passes = 0, drafted = 0, kept = 0, steps = 0;
  // As tests/support/model-worker.ts 'replay': a pass puts answer[i] and its draft in the cache.
  for (let i = 0; i < answer.length - 1;) {
    context.push(answer[i]!);
    const draft = lookup.draft(context, answer.length - i - 2);
    const passSteps = 1 + cost * draft.length;
    lookup.timePass(1 + draft.length, 100 * passSteps);
    let right = 0;
    while (right < draft.length && draft[right] === answer[i + 1 + right]) right++;
    lookup.record(draft.length, right);
    context.push(...draft.slice(0, right));
    passes++;
    drafted += draft.length;
    kept += right;
    steps += passSteps;
    i += 1 + right;
  }
  return { passes, drafted, kept, speedup: (answer.length - 1) / steps };
}

console.log('task     answer  r     default: passes drafted kept  ÷ plain    always: passes drafted kept  ÷ plain');
for (const [name, texts] of Object.entries(tasks)) {
  const prompt = encode(texts.prompt), answer = encode(texts.answer);
  for (const length of new Set(lengths.map((n) => Math.min(n, answer.length - 1)))) {
    for (const cost of costs) {
      const row = (r: Replay) => `${String(r.passes).padStart(6)} ${String(r.drafted).padStart(7)} ${String(r.kept).padStart(4)}  ${r.speedup.toFixed(2).padStart(6)}×`;
      const slice = answer.slice(0, length + 1);
      console.log(`${name.padEnd(8)} ${String(length).padStart(6)}  ${cost.toFixed(2)}  ${row(replay(prompt, slice, 'when-it-pays', cost))}   ${row(replay(prompt, slice, 'always', cost))}`);
    }
  }
}
