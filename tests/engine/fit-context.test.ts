// Fitting a conversation into the context (src/engine/fit-context.ts), with the real tokenizer and
// Qwen3's template. Oracle: the plain walk (drop the oldest turn, render, repeat) that the search
// replaces. Cost is counted in renders and text measurements, not timed.
import { beforeAll, describe, expect, it } from 'vitest';
import { fitConversation, type PromptMeasure } from '../../src/engine/fit-context.ts';
import type { ChatMessage } from '../../src/engine/types.ts';
import { readChatTemplate, readTokenizerData } from '../../src/gguf/metadata.ts';
import { NodeFileSource } from '../../src/gguf/node-file-source.ts';
import { readGGUF } from '../../src/gguf/reader.ts';
import { ChatPrompt } from '../../src/tokenizer/chat-prompt.ts';
import { ChatTemplate } from '../../src/tokenizer/chat-template.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { Rng } from '../fixtures/random.ts';

let tokenizer: Tokenizer;
let template: ChatTemplate;

beforeAll(async () => {
  const source = await NodeFileSource.open(await ensureFixture('tiny-f32'));
  try {
    const gguf = await readGGUF(source);
    tokenizer = Tokenizer.fromData(readTokenizerData(gguf));
    template = ChatTemplate.parse(readChatTemplate(gguf));
  } finally {
    await source.close();
  }
});

/** A ChatPrompt that counts what fitting asks of it. */
function counted(messages: ChatMessage[]) {
  const prompt = new ChatPrompt(tokenizer, template, messages);
  const counts = { renders: 0, measured: 0 };
  const measure: PromptMeasure = {
    tokens: (m) => (counts.renders++, prompt.tokens(m)),
    textTokens: (m) => (counts.measured++, prompt.textTokens(m)),
    minTextTokens: (m) => prompt.minTextTokens(m),
  };
  return { measure, counts, prompt };
}

/** The oracle: drop the oldest turn until the prompt fits. */
function walk(messages: ChatMessage[], prompt: ChatPrompt, contextLength: number, answerRoom: number) {
  let first = 0;
  while (first < messages.length && messages[first].role === 'system') first++;
  const system = messages.slice(0, first);
  const turnStarts: number[] = [];
  messages.forEach((m, i) => {
    if (i >= first && (m.role === 'user' || turnStarts.length === 0)) turnStarts.push(i);
  });
  for (let t = 0; t < turnStarts.length; t++) {
    const tokens = prompt.tokens([...system, ...messages.slice(turnStarts[t])]);
    if (tokens.length + answerRoom <= contextLength) return { tokens, droppedMessages: turnStarts[t] - first };
  }
  return undefined;
}

function conversation(rng: Rng, turns: number, wordsPerMessage: number): ChatMessage[] {
  const words = ['the', 'quick', 'brown', 'fox', '中文', 'naïve', 'code()', '\n', 'émoji 🙂', '42'];
  const text = () => Array.from({ length: 1 + Math.floor(rng.nextU32() % wordsPerMessage) }, () => words[rng.nextU32() % words.length]).join(' ');
  const messages: ChatMessage[] = [{ role: 'system', content: text() }];
  for (let t = 0; t < turns; t++) {
    messages.push({ role: 'user', content: text() });
    if (rng.nextU32() % 4 !== 0) messages.push({ role: 'assistant', content: text() });
    if (rng.nextU32() % 5 === 0) messages.push({ role: 'tool', content: text() });
  }
  return messages;
}

describe('fitConversation', () => {
  it('keeps exactly the turns the drop-one-at-a-time walk keeps (200 random conversations)', () => {
    const rng = new Rng(0xf17);
    for (let i = 0; i < 200; i++) {
      const messages = conversation(rng, 1 + (rng.nextU32() % 40), 1 + (rng.nextU32() % 120));
      const contextLength = 128 + (rng.nextU32() % 1500);
      const answerRoom = rng.nextU32() % 64;
      const { measure, prompt } = counted(messages);
      const expected = walk(messages, prompt, contextLength, answerRoom);
      if (!expected) {
        expect(() => fitConversation(messages, measure, contextLength, answerRoom)).toThrow(expect.objectContaining({ code: 'context-overflow' }));
        continue;
      }
      const fitted = fitConversation(messages, measure, contextLength, answerRoom);
      expect(fitted.droppedMessages, `case ${i}`).toBe(expected.droppedMessages);
      expect(fitted.tokens).toEqual(expected.tokens);
    }
  });

  it("still finds the walk's cut in O(log turns) renders when the template fools the estimate", () => {
    // Contents written three times, or assistant turns left out: the text measurements are off by far.
    const templates = [
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content ~ m.content ~ m.content }}<|im_end|>\n{% endfor %}",
      "{% for m in messages %}{% if m.role != 'assistant' %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endif %}{% endfor %}",
    ];
    const rng = new Rng(0xbad);
    for (const source of templates) {
      const odd = ChatTemplate.parse(source);
      for (let i = 0; i < 15; i++) {
        const messages = conversation(rng, 20 + (rng.nextU32() % 80), 40);
        const prompt = new ChatPrompt(tokenizer, odd, messages);
        let renders = 0;
        const measure: PromptMeasure = {
          tokens: (m) => (renders++, prompt.tokens(m)),
          textTokens: (m) => prompt.textTokens(m),
          minTextTokens: (m) => prompt.minTextTokens(m),
        };
        const contextLength = 512 + (rng.nextU32() % 2048);
        const expected = walk(messages, prompt, contextLength, 64);
        if (!expected) continue;
        const fitted = fitConversation(messages, measure, contextLength, 64);
        expect(fitted.droppedMessages).toBe(expected.droppedMessages);
        expect(renders).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(messages.length)) + 4);
      }
    }
  });

  it('fits 6,000 turns with O(log turns) renders, each message measured at most once', () => {
    const messages = conversation(new Rng(6000), 6000, 12);
    const { measure, counts, prompt } = counted(messages);
    const fitted = fitConversation(messages, measure, 4096, 512);
    expect(fitted.tokens.length).toBeLessThanOrEqual(4096 - 512);
    expect(fitted.droppedMessages).toBeGreaterThan(0);
    expect(counts.renders).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(6000)) + 2);
    expect(counts.measured).toBeLessThanOrEqual(messages.length);
    // The answer is the longest suffix that fits: one more turn would not.
    const kept = messages.length - 1 - fitted.droppedMessages;
    const firstKept = messages.length - kept;
    let previousTurn = firstKept - 1;
    while (messages[previousTurn].role !== 'user') previousTurn--;
    expect(prompt.tokens([messages[0], ...messages.slice(previousTurn)]).length + 512).toBeGreaterThan(4096);
    console.log(`6,000 turns: ${counts.renders} renders, ${counts.measured} of ${messages.length} messages measured, ${fitted.droppedMessages} dropped`);
  });

  it('fits 10 MiB over 1,000 turns measuring only the turns near the cut', () => {
    const rng = new Rng(10);
    const messages: ChatMessage[] = [];
    for (let t = 0; t < 1000; t++) {
      messages.push({ role: 'user', content: `turn ${t} ` + 'lorem ipsum dolor sit amet '.repeat(220 + (rng.nextU32() % 380)) });
      messages.push({ role: 'assistant', content: 'ok' });
    }
    expect(messages.reduce((n, m) => n + m.content.length, 0)).toBeGreaterThan(10 << 20);
    const { measure, counts } = counted(messages);
    const fitted = fitConversation(messages, measure, 8192, 512);
    expect(fitted.tokens.length).toBeLessThanOrEqual(8192 - 512);
    expect(counts.renders).toBeLessThanOrEqual(4);
    expect(counts.measured).toBeLessThanOrEqual(40);
    console.log(`10 MiB: ${counts.renders} renders, ${counts.measured} messages measured, kept ${messages.length - fitted.droppedMessages}`);
  });

  it('refuses a newest message longer than any context could hold without tokenizing it', () => {
    const messages: ChatMessage[] = [{ role: 'system', content: 'sys' }, { role: 'user', content: 'x'.repeat(30_000_000) }];
    const { measure, counts } = counted(messages);
    expect(() => fitConversation(messages, measure, 8192, 512)).toThrow(expect.objectContaining({ code: 'context-overflow' }));
    expect(counts).toEqual({ renders: 0, measured: 0 });
  });

  it('names the newest turn when it alone overflows, and keeps system-only prompts whole', () => {
    const long: ChatMessage[] = [{ role: 'user', content: 'a' }, { role: 'user', content: 'word '.repeat(3000) }];
    expect(() => fitConversation(long, counted(long).measure, 1024, 64)).toThrow(/needs \d+ tokens even after dropping 1 earlier messages/);
    const systemOnly: ChatMessage[] = [{ role: 'system', content: 'only a system prompt' }];
    expect(fitConversation(systemOnly, counted(systemOnly).measure, 1024, 64).droppedMessages).toBe(0);
  });
});
