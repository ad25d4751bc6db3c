// Prompt-lookup decoding: drafts from the context, checked in one pass, kept while the sampler
// agrees. The reference is the same engine decoding plainly (speculative: 'off'): the kernels give
// each of up to 8 tokens in a pass the bits it gets alone (tests/model/kernels.test.ts), and a
// draft token is kept only when the sampler, drawing from those logits exactly as plain decoding
// does, picks it — so greedy answers, and seeded sampled answers, must be the same token for token.
// Random-weight models fall into loops under greedy decoding; the loops are what the drafts find,
// and every test checks that drafts were made and kept, so equality is not reached by never drafting.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuEngine } from '../../src/engine/cpu-engine.ts';
import { MAX_DRAFT_TOKENS, PromptLookup } from '../../src/engine/prompt-lookup.ts';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest } from '../../src/engine/types.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { Rng } from '../fixtures/random.ts';

describe('PromptLookup.draft', () => {
  it('takes what followed the latest earlier occurrence of the longest suffix (4 down to 2 tokens)', () => {
    const lookup = new PromptLookup();
    lookup.record(2, 2); // limit 4
    // suffix [7, 8] occurs at 1..3 (followed by 9, 10) and at 5..7 (followed by 11): the latest wins
    expect(lookup.draft([6, 7, 8, 9, 10, 7, 8, 11, 12, 7, 8], 10)).toEqual([11, 12, 7, 8]);
    // a longer suffix beats a later shorter one: [5, 7, 8] occurs only at the start
    expect(lookup.draft([5, 7, 8, 1, 2, 3, 9, 7, 8, 4, 5, 7, 8], 10)).toEqual([1, 2, 3, 9]);
    expect(lookup.draft([1, 2, 3, 4], 10)).toEqual([]); // no repeat
    expect(lookup.draft([3, 3], 10)).toEqual([]); // a 1-token suffix is not enough
    expect(lookup.draft([1, 2, 9, 1, 2], 1)).toEqual([9]); // room
    expect(lookup.draft([1, 2, 9, 1, 2], 0)).toEqual([]);
  });

  it('follows the copy: after an edited word one token past its place picks the copy up again', () => {
    const source = Array.from({ length: 30 }, (_, i) => 100 + i);
    const copying = () => {
      const lookup = new PromptLookup();
      [2, 4, 7].forEach((n) => lookup.record(n, n)); // limit 7
      const tokens = [...source, 100, 101];
      const draft = lookup.draft(tokens, 100);
      expect(draft).toEqual([102, 103, 104, 105, 106, 107, 108]);
      lookup.record(7, 7);
      tokens.push(...draft);
      return { lookup, tokens };
    };
    // 109 replaced by 900: nothing ends with 900 anywhere, then 110 alone is found where the copy
    // goes on (a 2-token suffix [900, 110] occurs nowhere).
    const replaced = copying();
    replaced.tokens.push(900);
    expect(replaced.lookup.draft(replaced.tokens, 100)).toEqual([]);
    replaced.tokens.push(110);
    expect(replaced.lookup.draft(replaced.tokens, 100)).toEqual([111, 112, 113, 114, 115, 116, 117]);
    // Without a copy followed, one token is not enough.
    const fresh = new PromptLookup();
    [2, 4, 7].forEach((n) => fresh.record(n, n));
    expect(fresh.draft(replaced.tokens, 100)).toEqual([]);
    // Two words put in before 109: the copy is found again a little further on.
    const inserted = copying();
    inserted.tokens.push(900, 901, 109);
    expect(inserted.lookup.draft(inserted.tokens, 100)).toEqual([110, 111, 112, 113, 114, 115, 116]);
    // 109 and 110 left out.
    const deleted = copying();
    deleted.tokens.push(111);
    expect(deleted.lookup.draft(deleted.tokens, 100)).toEqual([112, 113, 114, 115, 116, 117, 118]);
    // The copy is forgotten 16 tokens after its last right guess: 17 tokens of other text, then
    // the token the copy would go on with is a lone token again.
    const left = copying();
    left.tokens.push(...Array.from({ length: 17 }, (_, i) => 1000 + i), 126);
    expect(left.lookup.draft(left.tokens, 100)).toEqual([]);
  });

  it('while copying, the occurrence where the copy goes on wins over a later one elsewhere', () => {
    const lookup = new PromptLookup();
    [2, 4, 7].forEach((n) => lookup.record(n, n));
    // [50, 51, 52, 53] occurs twice in the source; the answer copies the first.
    const source = [1, 2, 3, 50, 51, 52, 53, 4, 5, 50, 51, 52, 53, 6, 7];
    const tokens = [...source, 1, 2];
    expect(lookup.draft(tokens, 3)).toEqual([3, 50, 51]);
    lookup.record(3, 3);
    tokens.push(3, 50, 51, 52, 53);
    expect(lookup.draft(tokens, 3)).toEqual([4, 5, 50]);
    // Nothing copied: the latest occurrence.
    expect(new PromptLookup().draft(tokens, 2)).toEqual([6, 7]);
  });

  it('grows the draft while whole drafts are kept and shrinks it when the first token is refused', () => {
    const lookup = new PromptLookup();
    const long = [...Array.from({ length: 20 }, (_, i) => i), 0, 1];
    expect(lookup.draft(long, 100)).toHaveLength(2);
    lookup.record(2, 2);
    lookup.record(4, 4);
    lookup.record(7, 7);
    expect(lookup.draft(long, 100)).toHaveLength(MAX_DRAFT_TOKENS);
    lookup.record(7, 3); // partly kept: unchanged
    expect(lookup.draft(long, 100)).toHaveLength(MAX_DRAFT_TOKENS);
    lookup.record(7, 0);
    lookup.record(3, 0);
    lookup.record(1, 0);
    lookup.record(1, 0);
    expect(lookup.draft(long, 100)).toHaveLength(1);
  });

  it("'when-it-pays': no draft until guesses prove right, then as long as the odds outweigh a drafted token's timed cost", () => {
    const lookup = new PromptLookup('when-it-pays');
    const context = [...Array.from({ length: 40 }, (_, i) => i), 0, 1]; // every guess: the next count
    // Prior odds 1 in 2, below a drafted token's assumed cost (0.7 of a step): the guess is held back.
    expect(lookup.draft(context, 100)).toEqual([]);
    // The text goes on as guessed (the held-back guesses were right): drafting starts, short.
    let draft: number[] = [];
    for (let next = 2; draft.length === 0 && next < 10; next++) {
      context.push(next);
      draft = lookup.draft(context, 100);
    }
    expect(draft.length).toBeGreaterThan(0);
    expect(draft.length).toBeLessThan(3);
    expect(draft[0]).toBe(context[context.length - 1]! + 1);
    lookup.record(draft.length, draft.length);
    // Timed passes: a drafted token adds 0.2 of a step; of each 4 drafted, 3 are right (p ~ 3/4,
    // and 0.75^5 > 0.2 > 0.75^6): 5 tokens.
    for (let i = 0; i < 20; i++) {
      lookup.timePass(1, 100);
      lookup.timePass(5, 180);
      lookup.record(4, 3);
    }
    const cheap = lookup.draft(context, 100).length;
    expect(cheap).toBeGreaterThanOrEqual(4);
    expect(cheap).toBeLessThan(MAX_DRAFT_TOKENS);
    // The same odds with a drafted token costing 0.6 of a step: 1 token (0.75 > 0.6 > 0.75^2).
    for (let i = 0; i < 30; i++) lookup.timePass(3, 220);
    expect(lookup.draft(context, 100)).toHaveLength(1);
    // Cheap again, and every draft kept: the longest drafts, within the room.
    for (let i = 0; i < 30; i++) {
      lookup.timePass(5, 180);
      lookup.record(4, 4);
    }
    expect(lookup.draft(context, 100)).toHaveLength(MAX_DRAFT_TOKENS);
    expect(lookup.draft(context, 3)).toHaveLength(3);
    // Guesses refused again and again (free writing): no drafts, the guesses held back.
    for (let i = 0; i < 30; i++) lookup.record(1, 0);
    expect(lookup.draft(context, 100)).toEqual([]);
    // ...until the held-back guesses turn out right again: the text goes on as guessed.
    let next = context[context.length - 1]! + 1;
    do {
      context.push(next++);
      draft = lookup.draft(context, 100);
    } while (draft.length === 0 && next < 40);
    expect(draft.length).toBeGreaterThan(0);
    expect(draft[0]).toBe(next);
  });
});

const CONTEXT = 512;
let engine: CpuEngine;

const ask = (content: string, extra: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest =>
  ({ messages: [{ role: 'user', content }], temperature: 0, max_tokens: 96, enable_thinking: false, ...extra });

async function complete(request: ChatCompletionRequest, speculative: 'prompt-lookup' | 'off'): Promise<ChatCompletion> {
  return engine.chat.completions.create({ ...request, speculative, stream: false });
}

const PROMPTS = [
  'Hello', 'Fix the typos: teh quick brown fox jumsp over the lazy dog, teh quick brown fox.', 'Write a poem about rivers.',
  'a b c a b c a b c a b c', 'function add(a, b) { return a + b; }\nfunction sub(a, b) { return a - b; }\nRename add to plus.',
  '1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12', 'Summarize: the meeting was long. The meeting was long. The meeting was long.',
  'Translate to French: good morning', 'List the planets.', 'Say yes yes yes yes yes.',
];

for (const fixture of ['tiny-f32', 'small-q4_0']) {
  describe(`prompt-lookup decoding on ${fixture} (Node, SIMD128)`, () => {
    beforeAll(async () => {
      engine = new CpuEngine();
      await engine.load({ kind: 'path', path: await ensureFixture(fixture) }, { threads: 2, contextLength: CONTEXT });
    }, 120_000);
    afterAll(async () => {
      await engine.unload();
    });

    it('greedy: the same answer token for token over many prompts, with drafts made and kept', async () => {
      let drafted = 0, kept = 0;
      for (const content of PROMPTS) {
        const plain = await complete(ask(content), 'off');
        const fast = await complete(ask(content), 'prompt-lookup');
        expect(fast.choices[0].message.content, content).toBe(plain.choices[0].message.content);
        expect(fast.choices[0].finish_reason).toBe(plain.choices[0].finish_reason);
        expect(fast.usage.completion_tokens).toBe(plain.usage.completion_tokens);
        expect(plain.usage.extra.draft_tokens).toBe(0);
        drafted += fast.usage.extra.draft_tokens!;
        kept += fast.usage.extra.accepted_draft_tokens!;
      }
      expect(drafted).toBeGreaterThan(20);
      expect(kept).toBeGreaterThan(10);
    }, 300_000);

    it('sampled with a seed: the same answer as plain decoding with that seed (so the same distribution)', async () => {
      const rng = new Rng(31);
      let kept = 0;
      for (let i = 0; i < 12; i++) {
        const request = ask(PROMPTS[i % PROMPTS.length]!, { temperature: 0.4, top_p: 0.95, top_k: 40, seed: rng.nextU32(), max_tokens: 64, repetition_penalty: 1.02 });
        const plain = await complete(request, 'off');
        const fast = await complete(request, 'prompt-lookup');
        expect(fast.choices[0].message.content).toBe(plain.choices[0].message.content);
        kept += fast.usage.extra.accepted_draft_tokens!;
      }
      expect(kept).toBeGreaterThan(0);
    }, 300_000);

    it('log-probabilities are those of plain decoding', async () => {
      // Over several prompts: which ones a random-weight model answers with kept drafts depends on
      // the kernels' rounding, so the test only asks that some did.
      let kept = 0;
      for (const content of PROMPTS.slice(0, 6)) {
        const request = ask(content, { logprobs: true, top_logprobs: 3, max_tokens: 40 });
        const plain = await complete(request, 'off');
        const fast = await complete(request, 'prompt-lookup');
        expect(fast.choices[0].logprobs, content).toEqual(plain.choices[0].logprobs);
        kept += fast.usage.extra.accepted_draft_tokens!;
      }
      expect(kept).toBeGreaterThan(0);
    }, 240_000);

    it('the token budget and the context end fall mid-draft: the same answer and finish as plain decoding', async () => {
      for (const maxTokens of [1, 2, 5, 9, 17, 33]) {
        const plain = await complete(ask(PROMPTS[3]!, { max_tokens: maxTokens }), 'off');
        const fast = await complete(ask(PROMPTS[3]!, { max_tokens: maxTokens }), 'prompt-lookup');
        expect(fast.choices[0].message.content, `max_tokens ${maxTokens}`).toBe(plain.choices[0].message.content);
        expect(fast.usage.completion_tokens).toBe(plain.usage.completion_tokens);
      }
      // A short context: the answer runs into its end while drafts are in flight.
      const small = new CpuEngine();
      await small.load({ kind: 'path', path: await ensureFixture(fixture) }, { threads: 2, contextLength: 64 });
      try {
        const request = { ...ask('a b c a b c a b c'), max_tokens: undefined };
        const plain = await small.chat.completions.create({ ...request, speculative: 'off', stream: false });
        const fast = await small.chat.completions.create({ ...request, speculative: 'prompt-lookup', stream: false });
        expect(plain.choices[0].finish_reason).toBe('length');
        expect(fast.choices[0].finish_reason).toBe('length');
        expect(fast.choices[0].message.content).toBe(plain.choices[0].message.content);
        expect(fast.usage.total_tokens).toBe(plain.usage.total_tokens);
        expect(fast.usage.extra.draft_tokens).toBeGreaterThan(0);
      } finally {
        await small.unload();
      }
    }, 300_000);

    it('interrupted mid-draft: a prefix of the plain answer, and the cache holds only what was answered', async () => {
      const request = ask(PROMPTS[5]!, { max_tokens: 80 });
      const plain = (await complete(request, 'off')).choices[0].message.content;
      for (const stopAfter of [3, 7, 12]) {
        const controller = new AbortController();
        let text = '', pieces = 0, finish: string | null = null;
        const stream = await engine.chat.completions.create({ ...request, speculative: 'prompt-lookup', stream: true, signal: controller.signal });
        for await (const chunk of stream as AsyncIterable<ChatCompletionChunk>) {
          const choice = chunk.choices[0];
          if (choice.delta.content) {
            text += choice.delta.content;
            if (++pieces === stopAfter) controller.abort();
          }
          finish = choice.finish_reason ?? finish;
        }
        expect(finish).toBe('abort');
        expect(plain.startsWith(text), `stopped after ${stopAfter}: ${JSON.stringify(text)}`).toBe(true);
        // The next request reuses the cache (its prompt is a prefix of it): the answer must be the plain one.
        const again = await complete(request, 'prompt-lookup');
        expect(again.usage.extra.cached_prompt_tokens).toBeGreaterThan(0);
        expect(again.choices[0].message.content).toBe(plain);
      }
    }, 300_000);
  });
}
