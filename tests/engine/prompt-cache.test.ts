// Saved prompt caches: a new engine (a reload) continues a conversation from its saved KV cache
// instead of reading the prompt again, answering exactly as an engine that read it all (a cold
// engine: fresh load, empty cache, no store); a saved cache is used only for the same model file
// and only as far as the new prompt's tokens equal its own; the store keeps a byte budget, least
// recently used out first.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuEngine } from '../../src/engine/cpu-engine.ts';
import type { ChatCompletion, ChatCompletionRequest, ChatMessage } from '../../src/engine/types.ts';
import { nodeSnapshotFiles } from '../../src/storage/node-snapshot-files.ts';
import { PromptCache, newSnapshotId, type SnapshotFiles } from '../../src/storage/prompt-cache.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { SHAPES } from '../fixtures/models.ts';

const user = (content: string): ChatMessage => ({ role: 'user', content });
const assistant = (content: string): ChatMessage => ({ role: 'assistant', content });
const LONG = 'The keeper counted the waves and the ships and the gulls, and wrote them all down. '.repeat(20);
const greedy = (messages: ChatMessage[]): ChatCompletionRequest & { stream?: false } => ({ messages, temperature: 0, max_tokens: 12 });

let dir: string;
const paths: Record<string, string> = {};
const engines: CpuEngine[] = [];

async function engineWith(name: string, cache: PromptCache | undefined, promptCache = true): Promise<CpuEngine> {
  const engine = new CpuEngine({ promptCache: cache });
  engines.push(engine);
  await engine.load({ kind: 'path', path: paths[name]! }, { threads: 2, build: 'simd128', contextLength: 1024, promptCache });
  return engine;
}

async function coldAnswer(name: string, request: ChatCompletionRequest): Promise<ChatCompletion> {
  const engine = await engineWith(name, undefined);
  try {
    return await engine.chat.completions.create({ ...request, stream: false });
  } finally {
    await engine.unload();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'qwen-web-prompt-cache-'));
  paths['tiny-f32'] = await ensureFixture('tiny-f32');
  paths['small-f32'] = await ensureFixture('small-f32');
}, 120_000);

afterAll(async () => {
  for (const engine of engines) await engine.unload();
  rmSync(dir, { recursive: true, force: true });
});

describe('a conversation continued by a new engine (a reload)', () => {
  it('starts from the saved cache instead of reading the prompt again, and answers as a cold engine', async () => {
    const store = join(dir, 'reload');
    const firstCache = new PromptCache(nodeSnapshotFiles(store));
    const first = await engineWith('tiny-f32', firstCache);
    const opening = await first.chat.completions.create(greedy([user(LONG)]));
    const promptTokens = opening.usage.prompt_tokens;
    const saved = await firstCache.entries(); // after the save the answer queued
    expect(saved).toHaveLength(1);
    // The prompt and every answer token but the last (whose step never ran: it ended the answer).
    expect(saved[0]!.tokens.length).toBe(promptTokens + opening.usage.completion_tokens - 1);

    // The page reloads: a new engine, a new cache object over the same files.
    const again = await engineWith('tiny-f32', new PromptCache(nodeSnapshotFiles(store)));
    const followUp = greedy([user(LONG), assistant(opening.choices[0].message.content), user('And then?')]);
    const answer = await again.chat.completions.create(followUp);
    expect(answer.usage.extra.cached_prompt_tokens).toBeGreaterThanOrEqual(promptTokens);
    expect(answer.usage.extra.prefilled_tokens).toBe(answer.usage.prompt_tokens - answer.usage.extra.cached_prompt_tokens);
    expect(answer.choices[0].message.content).toBe((await coldAnswer('tiny-f32', followUp)).choices[0].message.content);
  }, 120_000);

  it('grows the saved cache by each answer\'s new rows, and a reload continues from all its parts as a cold engine', async () => {
    const written = { whole: 0, appended: 0 };
    const files = nodeSnapshotFiles(join(dir, 'grown'));
    const counted: SnapshotFiles = {
      ...files,
      write: (id, bytes) => ((written.whole += bytes.length), files.write(id, bytes)),
      append: (id, bytes) => ((written.appended += bytes.length), files.append(id, bytes)),
    };
    const cache = new PromptCache(counted);
    const engine = await engineWith('tiny-f32', cache);
    const { nLayers, nKvHeads, headDim } = SHAPES.tiny;
    const perToken = nLayers * nKvHeads * headDim * 2 * 2; // f16 keys and values of every layer
    const history: ChatMessage[] = [user(LONG)];
    for (const question of ['And then?', 'Why?']) {
      const answer = await engine.chat.completions.create(greedy(history));
      history.push(assistant(answer.choices[0].message.content), user(question));
    }
    const [entry, ...others] = await cache.entries();
    expect(others).toEqual([]);
    // One whole save, then one part per answer after it: every byte written once.
    expect(entry!.partEnds).toHaveLength(2);
    expect(written.whole).toBe(entry!.partEnds![0]! * perToken);
    expect(written.appended).toBe((entry!.partEnds![1]! - entry!.partEnds![0]!) * perToken);
    expect(entry!.bytes).toBe(entry!.tokens.length * perToken);

    const again = await engineWith('tiny-f32', new PromptCache(nodeSnapshotFiles(join(dir, 'grown'))));
    const answer = await again.chat.completions.create(greedy(history));
    expect(answer.usage.extra.cached_prompt_tokens).toBe(entry!.tokens.length);
    expect(answer.choices[0].message.content).toBe((await coldAnswer('tiny-f32', greedy(history))).choices[0].message.content);
  }, 120_000);

  it('never uses a cache saved for another model file', async () => {
    const store = join(dir, 'models');
    const cache = new PromptCache(nodeSnapshotFiles(store));
    await (await engineWith('tiny-f32', cache)).chat.completions.create(greedy([user(LONG)]));
    expect(await cache.entries()).toHaveLength(1);
    const other = await engineWith('small-f32', new PromptCache(nodeSnapshotFiles(store)));
    const answer = await other.chat.completions.create(greedy([user(LONG)]));
    expect(answer.usage.extra.cached_prompt_tokens).toBe(0);
    expect(answer.choices[0].message.content).toBe((await coldAnswer('small-f32', greedy([user(LONG)]))).choices[0].message.content);
  }, 120_000);

  it('uses only the part an edited history still shares, and answers as a cold engine', async () => {
    const store = join(dir, 'edited');
    const messages = [user(LONG), assistant('Noted.'), user(`Summarise: ${LONG}`)];
    const cache = new PromptCache(nodeSnapshotFiles(store));
    await (await engineWith('tiny-f32', cache)).chat.completions.create(greedy(messages));
    expect(await cache.entries()).toHaveLength(1);
    const edited = [user(LONG), assistant('Noted, every wave.'), user(`Summarise: ${LONG}`)];
    const again = await engineWith('tiny-f32', new PromptCache(nodeSnapshotFiles(store)));
    const answer = await again.chat.completions.create(greedy(edited));
    const cached = answer.usage.extra.cached_prompt_tokens;
    expect(cached).toBeGreaterThan(100); // the first message and the turn opening
    expect(cached).toBeLessThan(answer.usage.prompt_tokens - 100); // not the edited reply, nor what follows it
    expect(answer.choices[0].message.content).toBe((await coldAnswer('tiny-f32', greedy(edited))).choices[0].message.content);
  }, 120_000);

  it('keeps the start of a cache larger than the whole budget, and continues from there', async () => {
    const store = join(dir, 'budget');
    const { nLayers, nKvHeads, headDim } = SHAPES.tiny;
    const perToken = nLayers * nKvHeads * headDim * 2 * 2; // f16 keys and values of every layer
    const cache = new PromptCache(nodeSnapshotFiles(store), { maxBytes: 100 * perToken });
    await (await engineWith('tiny-f32', cache)).chat.completions.create(greedy([user(LONG)]));
    expect((await cache.entries()).map((e) => [e.tokens.length, e.bytes])).toEqual([[100, 100 * perToken]]);
    const again = await engineWith('tiny-f32', new PromptCache(nodeSnapshotFiles(store), { maxBytes: 100 * perToken }));
    const answer = await again.chat.completions.create(greedy([user(LONG)]));
    expect(answer.usage.extra.cached_prompt_tokens).toBe(100);
    expect(answer.choices[0].message.content).toBe((await coldAnswer('tiny-f32', greedy([user(LONG)]))).choices[0].message.content);
  }, 120_000);

  it('keeps nothing when the load says not to', async () => {
    const store = join(dir, 'off');
    const cache = new PromptCache(nodeSnapshotFiles(store));
    const engine = await engineWith('tiny-f32', cache, false);
    await engine.chat.completions.create(greedy([user(LONG)]));
    expect(await cache.entries()).toEqual([]);
  });
});

describe('PromptCache', () => {
  function memoryFiles(): SnapshotFiles & { blobs: Map<string, Uint8Array> } {
    const blobs = new Map<string, Uint8Array>();
    let index: unknown;
    return {
      blobs,
      readIndex: async () => structuredClone(index) as never,
      writeIndex: async (entries) => void (index = structuredClone(entries)),
      read: async (id) => blobs.get(id),
      write: async (id, bytes) => void blobs.set(id, bytes),
      append: async (id, bytes) => void blobs.set(id, new Uint8Array([...blobs.get(id)!, ...bytes])),
      remove: async (id) => void blobs.delete(id),
    };
  }
  const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

  it('evicts the least recently used beyond its budget; a read counts as a use', async () => {
    const files = memoryFiles();
    const cache = new PromptCache(files, { maxBytes: 250 });
    await cache.save('m', [1, 2, 3], bytes(100, 1));
    await new Promise((resolve) => setTimeout(resolve, 5));
    await cache.save('m', [7, 8, 9], bytes(100, 2));
    await new Promise((resolve) => setTimeout(resolve, 5));
    const a = await cache.find('m', [1, 2, 3, 4]);
    expect(a?.shared).toBe(3);
    expect((await cache.read(a!.meta))?.rows).toEqual(bytes(100, 1)); // [1, 2, 3] is now the newer
    await new Promise((resolve) => setTimeout(resolve, 5));
    await cache.save('m', [5, 5, 5], bytes(100, 3));
    expect((await cache.entries()).map((e) => e.tokens)).toEqual([[1, 2, 3], [5, 5, 5]]);
    expect(files.blobs.size).toBe(2);
  });

  it('replaces a snapshot its own continuation extends, and keeps other models apart', async () => {
    const cache = new PromptCache(memoryFiles());
    await cache.save('m', [1, 2, 3], bytes(30, 1));
    await cache.save('other', [1, 2, 3], bytes(30, 9));
    await cache.save('m', [1, 2, 3, 4, 5], bytes(50, 2));
    expect((await cache.entries()).map((e) => [e.modelKey, e.tokens])).toEqual([['other', [1, 2, 3]], ['m', [1, 2, 3, 4, 5]]]);
    expect((await cache.find('m', [1, 2, 9]))?.shared).toBe(2);
    expect(await cache.find('m', [4, 5])).toBeUndefined();
    expect(await cache.find('none', [1, 2, 3])).toBeUndefined();
  });

  it('grows a snapshot by its new rows only; refuses to grow one that is gone, holds other tokens or would pass the budget', async () => {
    const files = memoryFiles();
    const cache = new PromptCache(files, { maxBytes: 100 });
    const id = newSnapshotId();
    expect(await cache.save('m', [1, 2, 3], bytes(30, 1), id)).toBe(true);
    await cache.save('m', [1, 2], bytes(20, 7)); // another snapshot, which the grown one will extend
    expect(await cache.extend(id, [1, 2, 3, 4, 5], bytes(20, 2))).toBe(true);
    expect(await cache.extend(id, [1, 2, 3, 4, 5, 6], bytes(10, 3))).toBe(true);
    const [entry, ...others] = await cache.entries();
    expect(others).toEqual([]);
    expect(entry).toMatchObject({ id, tokens: [1, 2, 3, 4, 5, 6], bytes: 60, partEnds: [3, 5, 6] });
    expect(await cache.read(entry!)).toEqual({ rows: new Uint8Array([...bytes(30, 1), ...bytes(20, 2), ...bytes(10, 3)]), partEnds: [3, 5, 6] });

    expect(await cache.extend(id, [1, 2, 9, 9, 9, 9, 9], bytes(10, 4))).toBe(false); // not its continuation
    expect(await cache.extend(id, [1, 2, 3, 4, 5, 6, 7], bytes(50, 4))).toBe(false); // 110 bytes > 100
    expect(await cache.extend('gone', [1, 2, 3], bytes(10, 4))).toBe(false);
    expect(files.blobs.get(id)!.length).toBe(60);
    // A part list that does not end at the snapshot's last token is not a snapshot.
    await files.writeIndex([{ ...entry!, partEnds: [3, 5] }]);
    expect(await cache.entries()).toEqual([]);
  });

  it('drops an entry whose file is gone or cut short, and reads a damaged index as empty', async () => {
    const files = memoryFiles();
    const cache = new PromptCache(files);
    await cache.save('m', [1, 2], bytes(40, 1));
    const [entry] = await cache.entries();
    files.blobs.set(entry!.id, bytes(10, 1)); // cut short
    expect(await cache.read(entry!)).toBeUndefined();
    expect(await cache.entries()).toEqual([]);
    await files.writeIndex([{ id: '../escape', modelKey: 'm', tokens: [1], bytes: 1, lastUsed: 0 }, 'junk' as never]);
    expect(await cache.entries()).toEqual([]);
  });
});
