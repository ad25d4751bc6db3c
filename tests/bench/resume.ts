// Back to a conversation after a reload: time to the first token of a follow-up question when
// the page was reloaded (a new engine) with and without the conversation's saved KV cache, next
// to the same follow-up in the engine that answered before (its cache still in memory). Model
// loading is not counted. Run: npm run bench:resume [-- --fixture qwen3-4b-q4_0 --tokens 1024 --threads 2]
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CpuEngine } from '../../src/engine/cpu-engine.ts';
import type { ChatCompletion, ChatMessage } from '../../src/engine/types.ts';
import { nodeSnapshotFiles } from '../../src/storage/node-snapshot-files.ts';
import { PromptCache } from '../../src/storage/prompt-cache.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';

const { values } = parseArgs({
  options: {
    fixture: { type: 'string', default: 'qwen3-4b-q4_0' },
    tokens: { type: 'string', default: '1024' },
    threads: { type: 'string', default: '2' },
    'kv-cache': { type: 'string', default: 'f16' },
  },
});
const path = await ensureFixture(values.fixture);
const threads = Number(values.threads);
const kvCache = values['kv-cache'] === 'q8_0' ? 'q8_0' : 'f16';
const dir = mkdtempSync(join(os.tmpdir(), 'qwen-web-resume-'));

async function engine(store: boolean): Promise<CpuEngine> {
  const e = new CpuEngine(store ? { promptCache: new PromptCache(nodeSnapshotFiles(dir)) } : {});
  await e.load({ kind: 'path', path }, { threads, kvCache, contextLength: Number(values.tokens) + 512 });
  return e;
}

// An article of about --tokens tokens to work on, and a question about it.
const paragraph = 'The lighthouse keeper wrote in her log every night: wind, ships, weather, and what the sea brought in. ';
const article = paragraph.repeat(Math.ceil(Number(values.tokens) / 22));
const opening: ChatMessage[] = [{ role: 'user', content: `Polish this article:\n\n${article}` }];
const ask = (e: CpuEngine, messages: ChatMessage[]): Promise<ChatCompletion> =>
  e.chat.completions.create({ messages, temperature: 0, max_tokens: 8 });

console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; ${values.fixture}, ${threads} threads, ${kvCache} cache`);
const first = await engine(true);
const answered = await ask(first, opening);
const followUp: ChatMessage[] = [...opening, { role: 'assistant', content: answered.choices[0].message.content }, { role: 'user', content: 'Now make it shorter.' }];
console.log(`conversation: ${answered.usage.prompt_tokens} prompt tokens read in ${(answered.usage.extra.time_to_first_token_s).toFixed(2)} s`);

const rows: [string, ChatCompletion][] = [];
const saved = await engine(true); // the reload, the saved cache on disk
rows.push(['after a reload, saved cache', await ask(saved, followUp)]);
await saved.unload();
const cold = await engine(false); // the reload, nothing saved
rows.push(['after a reload, no saved cache', await ask(cold, followUp)]);
await cold.unload();
rows.push(['no reload (cache in memory)', await ask(first, followUp)]);
await first.unload();

console.log('follow-up                          prompt  from cache  read  first token s');
for (const [label, c] of rows) {
  const u = c.usage;
  console.log(`${label.padEnd(34)} ${String(u.prompt_tokens).padStart(6)} ${String(u.extra.cached_prompt_tokens).padStart(11)} ${String(u.extra.prefilled_tokens).padStart(5)} ${u.extra.time_to_first_token_s.toFixed(2).padStart(14)}`);
}
rmSync(dir, { recursive: true, force: true });
