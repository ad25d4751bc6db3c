// Request checking and normalization (src/engine/request.ts): what OpenAI's chat completions API
// accepts is accepted; what the engine cannot do is refused as 'unsupported' naming the field;
// malformed input is 'bad-request' naming the field. Never an untyped error.
import { describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/errors.ts';
import { normalizeRequest } from '../../src/engine/request.ts';

const hi = [{ role: 'user' as const, content: 'hi' }];

function failure(input: unknown): EngineError {
  try {
    normalizeRequest(input);
  } catch (error) {
    expect(error).toBeInstanceOf(EngineError);
    return error as EngineError;
  }
  throw new Error(`accepted: ${JSON.stringify(input)}`);
}

describe('normalizeRequest', () => {
  it('refuses what is not a request with bad-request, never a TypeError', () => {
    for (const input of [null, undefined, 42, 'hi', [], () => 0]) expect(failure(input).code).toBe('bad-request');
    for (const messages of [undefined, null, [], {}, 'hi', [null], [42], [{}], [{ role: 'robot', content: 'x' }]]) {
      expect(failure({ messages }).code, JSON.stringify(messages)).toBe('bad-request');
    }
    expect(failure({ messages: [{ role: 'user', content: 5 }] }).message).toMatch(/messages\[0\]\.content/);
    expect(failure({ messages: [{ role: 'user', content: null }] }).message).toMatch(/messages\[0\]\.content/);
    expect(failure({ messages: hi, maxTokens: 5 }).message).toMatch(/unknown request field 'maxTokens'/);
  });

  it('names the field of every bad number', () => {
    const bad: [string, unknown][] = [
      ['temperature', -1], ['temperature', NaN], ['temperature', '0.5'], ['top_p', 1.5], ['top_k', 2.5], ['min_p', 2],
      ['presence_penalty', 3], ['frequency_penalty', -3], ['repetition_penalty', 0], ['max_tokens', 0], ['max_tokens', 1.5],
      ['max_completion_tokens', -4], ['seed', 0.5], ['stream', 'yes'], ['enable_thinking', 1], ['stop', [1]], ['stop', ''],
    ];
    for (const [field, value] of bad) {
      const error = failure({ messages: hi, [field]: value });
      expect(error.code, field).toBe('bad-request');
      expect(error.message, field).toContain(field);
    }
  });

  it("refuses, naming the field, what the engine does not do (n > 1, logit_bias, images)", () => {
    const refused: [Record<string, unknown>, string][] = [
      [{ n: 2 }, 'n'],
      [{ logit_bias: { 42: 5 } }, 'logit_bias'],
      [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 'content[0].type'],
    ];
    for (const [fields, name] of refused) {
      const error = failure({ messages: hi, ...fields });
      expect(error.code, name).toBe('unsupported');
      expect(error.message, name).toContain(name);
    }
  });

  it('accepts what OpenAI accepts, in the one form the engines run', () => {
    const normalized = normalizeRequest({
      model: 'qwen3', user: 'u', n: 1, logprobs: false, tools: [], tool_choice: 'none', response_format: { type: 'text' },
      logit_bias: {}, stream_options: { include_usage: true }, stop: null, top_p: 0, max_completion_tokens: 7,
      messages: [
        { role: 'developer', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'first part' }, { type: 'text', text: 'second part' }], name: 'ann' },
        { role: 'assistant', content: null },
        { role: 'tool', content: '{"ok":true}', tool_call_id: 'call_1' },
        { role: 'user', content: 'go' },
      ],
    });
    expect(normalized.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'first part\nsecond part' },
      { role: 'assistant', content: '' },
      { role: 'tool', content: '{"ok":true}', tool_call_id: 'call_1' },
      { role: 'user', content: 'go' },
    ]);
    expect(normalized.stop).toEqual([]);
    expect(normalized.temperature).toBe(0); // top_p 0 keeps only the most likely token: greedy
    expect(normalized.top_p).toBeUndefined();
    expect(normalized.max_tokens).toBe(7);
    expect(normalized.stream).toBe(false);
    expect(normalizeRequest({ messages: hi, stop: 'END', stream: true })).toMatchObject({ stop: ['END'], stream: true });
    expect(failure({ messages: hi, max_tokens: 5, max_completion_tokens: 6 }).code).toBe('bad-request');
  });

  it('takes logprobs with 0–20 top alternatives, and top_logprobs only with logprobs', () => {
    expect(normalizeRequest({ messages: hi, logprobs: true }).top_logprobs).toBe(0);
    expect(normalizeRequest({ messages: hi, logprobs: true, top_logprobs: 20 }).top_logprobs).toBe(20);
    expect(normalizeRequest({ messages: hi, logprobs: false })).toMatchObject({ logprobs: false });
    expect(normalizeRequest({ messages: hi, logprobs: false }).top_logprobs).toBeUndefined();
    expect(failure({ messages: hi, top_logprobs: 3 })).toMatchObject({ code: 'bad-request', message: expect.stringMatching(/top_logprobs needs logprobs: true/) });
    expect(failure({ messages: hi, logprobs: true, top_logprobs: 21 })).toMatchObject({ code: 'bad-request', message: expect.stringMatching(/top_logprobs must be an integer in \[0, 20\]/) });
  });

  it('gives a normalized request back unchanged (the worker engine normalizes on both sides)', () => {
    const requests: Record<string, unknown>[] = [
      { messages: hi },
      { messages: hi, logprobs: true, top_logprobs: 3, stream: true, stop: 'x', temperature: 0.5, top_p: 0, max_completion_tokens: 9 },
      { messages: [...hi, { role: 'assistant', content: 'half' }], continue_final_message: true, seed: 4 },
      { messages: hi, response_format: { type: 'json_schema', json_schema: { name: 'a', schema: { allOf: [{ type: 'object', properties: { a: { type: 'string', format: 'date' } } }] } } } },
      { messages: hi, response_format: { type: 'json_object' }, enable_thinking: false, special_tokens_in_content: true },
    ];
    for (const request of requests) {
      const once = normalizeRequest(request);
      expect(normalizeRequest(once), JSON.stringify(request)).toEqual(once);
    }
  });

  it('takes continue_final_message only where the last message is the assistant\'s', () => {
    const cut = [...hi, { role: 'assistant' as const, content: 'Half an' }];
    expect(normalizeRequest({ messages: cut, continue_final_message: true }).continue_final_message).toBe(true);
    expect(normalizeRequest({ messages: hi }).continue_final_message).toBe(false);
    expect(failure({ messages: hi, continue_final_message: true })).toMatchObject({ code: 'bad-request', message: expect.stringMatching(/last message to be the assistant's, got 'user'/) });
    expect(failure({ messages: cut, continue_final_message: 'yes' }).code).toBe('bad-request');
  });
});
