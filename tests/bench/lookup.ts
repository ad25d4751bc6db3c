// Prompt-lookup drafting without a model: each task's answer is replayed through PromptLookup
// exactly as the bench's model worker does it (tests/support/replay-answer.ts), and each pass is
// charged 1 + r × its draft tokens, in decode steps. r, a drafted token's cost as a share of a
// decode step, is the machine's (about a prompt token's time ÷ a decode step; docs/perf-log.md);
// `npm run bench -- --task rewrite` measures the real thing. This runs in seconds and shows which drafts are made: passes, drafted
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
import { replayAnswer, type ReplayCounts } from '../support/replay-answer.ts';
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

interface Replay extends ReplayCounts { speedup: number }

function replay(prompt: number[], answer: number[], mode: LookupMode, cost: number): Replay {
  let steps = 0;
  const counts = replayAnswer(new PromptLookup(mode), prompt.slice(), answer, (i) => answer.length - i - 2, (_, draft) => {
    const passSteps = 1 + cost * draft.length;
    steps += passSteps;
    return 100 * passSteps;
  });
  return { ...counts, speedup: (answer.length - 1) / steps };
}

console.log('task     answer  r     default: passes drafted kept  ÷ plain    always: passes drafted kept  ÷ plain');
for (const [name, texts] of Object.entries(tasks)) {
  const prompt = encode(texts.prompt), answer = encode(texts.answer);
  for (const length of new Set(lengths.map((n) => Math.min(n, answer.length - 1)))) {
    for (const cost of costs) {
      const row = (r: Replay) => `${String(r.passes).padStart(6)} ${String(r.drafted).padStart(7)} ${String(r.accepted).padStart(4)}  ${r.speedup.toFixed(2).padStart(6)}×`;
      const slice = answer.slice(0, length + 1);
      console.log(`${name.padEnd(8)} ${String(length).padStart(6)}  ${cost.toFixed(2)}  ${row(replay(prompt, slice, 'when-it-pays', cost))}   ${row(replay(prompt, slice, 'always', cost))}`);
    }
  }
}
