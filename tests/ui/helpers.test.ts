// The chat UI's pure helpers, in Node: sizes and durations as people read them, settings limits,
// what a request carries, conversation titles, file names and the Markdown export, and the
// string dictionaries. Expected values are worked out by hand from the rules in the sources.
import { describe, expect, it } from 'vitest';
import type { ModelInfo } from '../../src/engine/types.ts';
import { conversationToMarkdown, fileNameFor, mergeConversations, titleFrom, type Conversation } from '../../src/ui/conversation-store.ts';
import { formatBytes, formatDuration, formatNumber } from '../../src/format.ts';
import { STRINGS, resolveLang, t } from '../../src/ui/i18n.ts';
import { DEFAULT_SETTINGS, clampSetting, parseBackend, samplingOptions } from '../../src/ui/settings.ts';
import { recommendModel } from '../../src/ui/device.ts';

const model = (supportsThinking: boolean): ModelInfo => ({
  backend: 'cpu', name: 'm.gguf', quant: 'Q4_K_M', contextLength: 4096, maxContextLength: 4096, memoryBytes: 0, supportsThinking, loadMs: 0,
});

describe('format', () => {
  it('writes sizes in decimal units with one decimal under 10', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1500)).toBe('1.5 kB');
    expect(formatBytes(45_126_304)).toBe('45 MB');
    expect(formatBytes(2_497_280_224)).toBe('2.5 GB');
    expect(formatBytes(-1)).toBe('?');
    expect(formatBytes(Number.NaN)).toBe('?');
  });

  it('writes durations as m:ss or h:mm:ss', () => {
    expect(formatDuration(0)).toBe('0:00');
    expect(formatDuration(95)).toBe('1:35');
    expect(formatDuration(3700)).toBe('1:01:40');
    expect(formatDuration(Infinity)).toBe('?');
    expect(formatDuration(undefined)).toBe('?');
  });

  it('writes rates with sensible digits', () => {
    expect(formatNumber(123.4)).toBe('123');
    expect(formatNumber(12.34)).toBe('12.3');
    expect(formatNumber(0.0123)).toBe('0.012');
  });
});

describe('settings', () => {
  it('clamps numbers into their range and falls back to the default for non-numbers', () => {
    expect(clampSetting('temperature', 5)).toBe(2);
    expect(clampSetting('temperature', -1)).toBe(0);
    expect(clampSetting('temperature', 'abc')).toBe(DEFAULT_SETTINGS.temperature);
    expect(clampSetting('topK', 12.6)).toBe(13);
    expect(clampSetting('maxTokens', 0)).toBe(1);
    expect(clampSetting('topP', '0.5')).toBe(0.5);
  });

  it('sends sampling settings, and enable_thinking only to models that can think', () => {
    const settings = { ...DEFAULT_SETTINGS, temperature: 0.3, topP: 0.9, topK: 40, maxTokens: 77, thinking: true };
    expect(samplingOptions(settings, model(true))).toEqual({ temperature: 0.3, top_p: 0.9, top_k: 40, max_tokens: 77, enable_thinking: true });
    expect(samplingOptions(settings, model(false))).toEqual({ temperature: 0.3, top_p: 0.9, top_k: 40, max_tokens: 77 });
  });

  it('reads backend and language attributes leniently', () => {
    expect(parseBackend('webgpu')).toBe('webgpu');
    expect(parseBackend('cpu')).toBe('cpu');
    expect(parseBackend('gpu')).toBe('auto');
    expect(resolveLang('zh-CN')).toBe('zh');
    expect(resolveLang('zh')).toBe('zh');
    expect(resolveLang('en-GB')).toBe('en');
    expect(resolveLang(null)).toBe('en');
  });
});

describe('strings', () => {
  it('has every English key in Chinese, filled and with the same placeholders', () => {
    for (const [key, english] of Object.entries(STRINGS.en)) {
      const chinese = STRINGS.zh[key as keyof typeof STRINGS.zh];
      expect(chinese, key).toBeTruthy();
      const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      expect(placeholders(chinese), key).toEqual(placeholders(english));
    }
  });

  it('fills placeholders', () => {
    expect(t('en', 'status', { tokens: 5, rate: '9.5', ttft: '0.12' })).toBe('5 tokens · 9.5 tok/s · first token 0.12 s');
    expect(t('zh', 'loading', { name: 'x.gguf' })).toBe('正在加载 x.gguf…');
  });
});

describe('conversations', () => {
  it('titles a conversation by the first line of its first message', () => {
    expect(titleFrom('  Hello there\nsecond line')).toBe('Hello there');
    expect(titleFrom('x'.repeat(60))).toBe(`${'x'.repeat(47)}…`);
  });

  it('makes file names of letters and digits of any script', () => {
    expect(fileNameFor('My chat: part 2!', 'md')).toBe('My-chat-part-2.md');
    expect(fileNameFor('你好 世界', 'json')).toBe('你好-世界.json');
    expect(fileNameFor('???', 'md')).toBe('conversation.md');
  });

  it('exports Markdown with the system prompt, roles, reasoning and the text as written', () => {
    const conversation: Conversation = {
      id: '1', title: 'Sums', createdAt: 0, updatedAt: 0,
      messages: [
        { id: 'a', role: 'user', content: 'What is 2+2?', createdAt: 0 },
        { id: 'b', role: 'assistant', content: '**4**', reasoning: 'add', model: 'm.gguf', createdAt: 0 },
      ],
    };
    expect(conversationToMarkdown(conversation, 'Be brief.')).toBe(
      '# Sums\n\n## System\n\nBe brief.\n\n## User\n\nWhat is 2+2?\n\n## Assistant (m.gguf)\n\n' +
        '<details><summary>Reasoning</summary>\n\nadd\n\n</details>\n\n**4**\n',
    );
  });
});

describe('mergeConversations (two tabs on one conversation)', () => {
  const msg = (id: string, role: 'user' | 'assistant', at: number, content = id, updatedAt?: number) => ({ id, role, content, createdAt: at, updatedAt });
  const conv = (messages: ReturnType<typeof msg>[], removedIds?: string[]): Conversation =>
    ({ id: 'c', title: 'T', createdAt: 1, updatedAt: 10, messages, revision: 1, removedIds });

  it("keeps both tabs' new turns after the common part, each turn together", () => {
    const common = [msg('u1', 'user', 1), msg('a1', 'assistant', 1)]; // same millisecond: order must not come from time
    const stored = conv([...common, msg('uB', 'user', 5), msg('aB', 'assistant', 6)]);
    const ours = conv([...common, msg('uA', 'user', 3), msg('aA', 'assistant', 4)]);
    expect(mergeConversations(stored, ours).messages.map((m) => m.id)).toEqual(['u1', 'a1', 'uB', 'aB', 'uA', 'aA']);
  });

  it('takes the newer copy of a message both hold, ours on a tie', () => {
    const stored = conv([msg('u1', 'user', 1, 'old'), msg('a1', 'assistant', 2, 'full answer', 9)]);
    const ours = conv([msg('u1', 'user', 1, 'edited', 7), msg('a1', 'assistant', 2, 'partial')]);
    expect(mergeConversations(stored, ours).messages.map((m) => m.content)).toEqual(['edited', 'full answer']);
    const tie = conv([msg('a1', 'assistant', 2, 'stored')]);
    expect(mergeConversations(tie, conv([msg('a1', 'assistant', 2, 'ours')])).messages[0].content).toBe('ours');
  });

  it('does not bring back what either side removed (a regenerated answer, a cleared chat)', () => {
    const stored = conv([msg('u1', 'user', 1), msg('a1', 'assistant', 2)]);
    const ours = conv([msg('u1', 'user', 1), msg('a2', 'assistant', 3)], ['a1']);
    const merged = mergeConversations(stored, ours);
    expect(merged.messages.map((m) => m.id)).toEqual(['u1', 'a2']);
    expect(merged.removed).toEqual({ a1: 10 }); // an id without a time counts as removed at the copy's updatedAt
    const cleared = mergeConversations(stored, conv([], ['u1', 'a1']));
    expect(cleared.messages).toEqual([]);
    // Removed on the stored side, still held by ours: gone too.
    expect(mergeConversations(conv([], ['a1']), stored).messages.map((m) => m.id)).toEqual(['u1']);
  });

  it('brings back a message changed after its removal (an Undo), whichever copy still holds the removal', () => {
    const removedAt20 = (messages: ReturnType<typeof msg>[]): Conversation => ({ ...conv(messages), removed: { u1: 20, a1: 20 } });
    const cleared = removedAt20([]);
    const undone = { ...conv([msg('u1', 'user', 1, 'u1', 21), msg('a1', 'assistant', 2, 'a1', 21)]), removed: {} };
    for (const merged of [mergeConversations(cleared, undone), mergeConversations(undone, cleared)]) {
      expect(merged.messages.map((m) => m.id)).toEqual(['u1', 'a1']);
      expect(merged.removed).toEqual({}); // the removals are over: a later merge cannot revive them
    }
    // A copy not changed since the removal stays removed, and so does a removal at the same moment.
    const stale = conv([msg('u1', 'user', 1), msg('a1', 'assistant', 2, 'a1', 20)]);
    expect(mergeConversations(cleared, stale).messages).toEqual([]);
    expect(mergeConversations(stale, cleared).removed).toEqual({ u1: 20, a1: 20 });
    // Both removed it: the later removal counts.
    const later = { ...conv([msg('u1', 'user', 1, 'u1', 25)]), removed: { a1: 30 } };
    expect(mergeConversations(later, cleared)).toMatchObject({ removed: { a1: 30 } });
    expect(mergeConversations(later, cleared).messages.map((m) => m.id)).toEqual(['u1']);
  });
});

describe('recommendModel (the first screen)', () => {
  const device = (memoryGB: number | undefined, cores: number, isolated: boolean, mobile: boolean, relaxedSimd = true) => ({ memoryGB, cores, isolated, mobile, relaxedSimd });
  const pick = (d: ReturnType<typeof device>) => recommendModel(d).entry.params;

  it('takes the largest Q4_K_M model whose file, KV cache and the browser fit the memory', () => {
    // 4B: 2.5 GB × 1.2 + 1.5 = 4.5 GB; 1.7B: 2.83 GB; 0.6B: 1.98 GB.
    expect(pick(device(8, 4, true, false))).toBe('4B');
    expect(pick(device(4, 4, true, false))).toBe('1.7B');
    expect(pick(device(2, 4, true, false))).toBe('0.6B');
    expect(pick(device(0.5, 4, true, false))).toBe('0.6B'); // nothing fits: the smallest, still
    expect(recommendModel(device(8, 4, true, false)).entry.quant).toBe('Q4_K_M');
  });

  it('assumes room on a desktop and little on a phone when the browser does not say', () => {
    expect(pick(device(undefined, 4, true, false))).toBe('4B');
    expect(pick(device(undefined, 8, true, true))).toBe('1.7B');
  });

  it('prefers a smaller model when the larger would write under 3 tokens a second', () => {
    // One thread, SIMD128, a phone's speed: 4B at 9 × 0.5^0.7 × 0.7 × 0.5 ≈ 1.9 tokens/s at best.
    expect(pick(device(16, 8, false, true, false))).not.toBe('4B');
    const rate = recommendModel(device(8, 2, true, false)).tokensPerSecond;
    expect(rate[0]).toBeCloseTo(9 * 0.6);
    expect(rate[1]).toBeCloseTo(9 * 1.2);
    expect(recommendModel(device(8, 2, false, false)).threads).toBe(1);
  });
});
