// The WebGPU adapter's translation between our Engine API and web-llm's, checked against web-llm
// itself (0.2.86, imported in Node; no GPU is needed for these parts):
//  - requests: the mapped request type-checks against web-llm's own ChatCompletionRequest (tsc),
//    and web-llm's own validator (postInitAndCheckFieldsChatCompletion) accepts it at run time;
//  - chunks: web-llm's real stream generator (MLCEngine.streamCurrentGeneration, the code that
//    builds its delta, finish and usage chunks) runs over a scripted token source standing in for
//    the GPU model, and our mapper turns its output into our chunks;
//  - errors: web-llm's real error objects are classified into our typed EngineErrors;
//  - the catalogue's MLC ids exist in web-llm's prebuilt list.
// Expected texts, counts and codes are written out by hand from the rules, not taken from output.
import { describe, expect, it } from 'vitest';
import * as webllm from '@mlc-ai/web-llm';
import { EngineError } from '../../src/engine/errors.ts';
import { collectCompletion } from '../../src/engine/completion.ts';
import { normalizeRequest } from '../../src/engine/request.ts';
import type { ChatCompletionChunk, ChatCompletionRequest } from '../../src/engine/types.ts';
import {
  classifyWebLlmError,
  fromWebLlmProgress,
  fromWebLlmStream,
  mlcModelNeedsShaderF16,
  quantOfMlcModel,
  ThinkSplitter,
  toWebLlmRequest,
} from '../../src/engine/webllm-mapping.ts';
import { CATALOGUE } from '../../src/storage/catalogue.ts';

const MODEL = 'Qwen3-0.6B-q4f16_1-MLC';

describe('request mapping', () => {
  const full: ChatCompletionRequest = {
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!', reasoning_content: 'greet back' },
      { role: 'user', content: 'Name a colour.' },
    ],
    stream: false,
    temperature: 0.7,
    top_p: 0.8,
    top_k: 20,
    min_p: 0.05,
    presence_penalty: 0.5,
    frequency_penalty: 0.25,
    repetition_penalty: 1.1,
    max_tokens: 64,
    stop: ['\n\n', 'END'],
    seed: 42,
    enable_thinking: false,
    signal: new AbortController().signal,
  };

  it('maps every field web-llm has, names the ignored ones, and web-llm accepts the result', () => {
    const { request, ignored } = toWebLlmRequest(normalizeRequest(full));
    expect(request).toEqual({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: 'Name a colour.' },
      ],
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.7,
      top_p: 0.8,
      presence_penalty: 0.5,
      frequency_penalty: 0.25,
      repetition_penalty: 1.1,
      max_tokens: 64,
      stop: ['\n\n', 'END'],
      seed: 42,
      extra_body: { enable_thinking: false },
    });
    expect(ignored).toEqual(['top_k', 'min_p']);
    // Nothing web-llm refuses, and its own checks pass (it throws on a bad field or order).
    for (const field of webllm.ChatCompletionRequestUnsupportedFields) expect(request).not.toHaveProperty(field);
    expect(() => webllm.postInitAndCheckFieldsChatCompletion(request, MODEL, webllm.ModelType.LLM)).not.toThrow();
  });

  it('sends only what the caller set', () => {
    const { request, ignored } = toWebLlmRequest(normalizeRequest({ messages: [{ role: 'user', content: 'x' }] }));
    expect(request).toEqual({ messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true } });
    expect(ignored).toEqual([]);
    expect(toWebLlmRequest(normalizeRequest({ messages: [{ role: 'user', content: 'x' }], enable_thinking: true })).request.extra_body)
      .toEqual({ enable_thinking: true });
  });

  it('refuses what web-llm cannot take, with typed errors', () => {
    expect(() => toWebLlmRequest(normalizeRequest({ messages: [] }))).toThrow(expect.objectContaining({ code: 'bad-request' }));
    expect(() => toWebLlmRequest(normalizeRequest({ messages: [{ role: 'tool', content: '{}' }] })))
      .toThrow(expect.objectContaining({ name: 'EngineError', code: 'bad-request' }));
    const cut = { messages: [{ role: 'user' as const, content: 'q' }, { role: 'assistant' as const, content: 'half an ans' }], continue_final_message: true };
    expect(() => toWebLlmRequest(normalizeRequest(cut))).toThrow(expect.objectContaining({ name: 'EngineError', code: 'unsupported' }));
    const tools = [{ type: 'function' as const, function: { name: 'f' } }];
    expect(() => toWebLlmRequest(normalizeRequest({ messages: [{ role: 'user', content: 'q' }], tools }))).toThrow(expect.objectContaining({ code: 'unsupported' }));
    expect(toWebLlmRequest(normalizeRequest({ messages: [{ role: 'user', content: 'q' }], tools, tool_choice: 'none' })).request.messages).toHaveLength(1);
  });

  it("classifies web-llm's own validation errors as bad requests", () => {
    const systemLast = toWebLlmRequest(normalizeRequest({
      messages: [{ role: 'user', content: 'a' }, { role: 'system', content: 'late system prompt' }],
    })).request;
    let thrown: unknown;
    try {
      webllm.postInitAndCheckFieldsChatCompletion(systemLast, MODEL, webllm.ModelType.LLM);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Error);
    const classified = classifyWebLlmError(thrown, 'chat', false);
    expect(classified).toBeInstanceOf(EngineError);
    expect(classified.code).toBe('bad-request');
    expect(classified.detail).toBe((thrown as Error).name);
  });
});

describe('errors from a real MLCEngine', () => {
  it('maps "no model loaded" and "unknown model" to typed codes', async () => {
    const engine = new webllm.MLCEngine({ appConfig: { model_list: [] }, logLevel: 'SILENT' });
    const chat = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(classifyWebLlmError(chat, 'chat', false)).toMatchObject({ code: 'no-model', detail: 'not-loaded' });
    // After a lost device, the same web-llm error says why.
    expect(classifyWebLlmError(chat, 'chat', true)).toMatchObject({ code: 'no-model', detail: 'device-lost' });
    const load = await engine.reload('No-Such-Model-MLC').catch((e: unknown) => e);
    expect(classifyWebLlmError(load, 'load', false)).toMatchObject({ code: 'load-failed', detail: 'unknown-model' });
  });
});

/**
 * The parts of web-llm's LLMChatPipeline that its stream generator reads, driven by a script:
 * each decode step appends one piece of text, as decoding one token does.
 */
function scriptedPipeline(pieces: string[], end: 'stop' | 'length') {
  let message = '';
  let step = 0;
  let stopped = false;
  let finishReason: 'stop' | 'length' | 'abort' | undefined;
  return {
    pipeline: {
      getMessage: () => message,
      stopped: () => stopped,
      triggerStop: () => {
        if (stopped) return;
        stopped = true;
        finishReason = 'abort';
      },
      getFinishReason: () => finishReason,
      getTokenLogprobArray: () => [],
      getCurRoundCompletionTotalTokens: () => step,
      getCurRoundDecodingTotalTokens: () => Math.max(0, step - 1),
      getCurRoundPrefillTotalTokens: () => 17,
      getCurRoundPrefillTotalTime: () => 0.5,
      getCurRoundDecodingTotalTime: () => 2,
      getCurRoundPrefillTokensPerSec: () => 34,
      getCurRoundDecodingTokensPerSec: () => 12.5,
      getCurRoundLatencyBreakdown: () => undefined,
    },
    decodeStep: async () => {
      message += pieces[step++] ?? '';
      if (step >= pieces.length) {
        stopped = true;
        finishReason = end;
      }
    },
  };
}

type StreamEngine = {
  interruptSignal: boolean;
  streamCurrentGeneration(...args: unknown[]): AsyncIterable<webllm.ChatCompletionChunk>;
};

/** web-llm's own chunk stream for a request whose model writes `pieces`. */
function webLlmStream(pieces: string[], end: 'stop' | 'length' = 'stop', interruptAfter = -1) {
  const engine = new webllm.MLCEngine({ appConfig: { model_list: [] }, logLevel: 'SILENT' }) as unknown as StreamEngine;
  const { pipeline, decodeStep } = scriptedPipeline(pieces, end);
  let steps = 0;
  const request = toWebLlmRequest(normalizeRequest({ messages: [{ role: 'user', content: 'q' }] })).request;
  const state = { id: 'chatcmpl-test', created: 1_700_000_000, prevMessageLength: 0 };
  return engine.streamCurrentGeneration(request, MODEL, pipeline, {}, Date.now(), state, async () => {
    await decodeStep();
    if (++steps === interruptAfter) engine.interruptSignal = true;
  }, { emitCurrent: false });
}

async function mapped(pieces: string[], end: 'stop' | 'length' = 'stop', interruptAfter = -1): Promise<ChatCompletionChunk[]> {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of fromWebLlmStream(webLlmStream(pieces, end, interruptAfter))) chunks.push(chunk);
  return chunks;
}

const joined = (chunks: ChatCompletionChunk[], field: 'content' | 'reasoning_content') =>
  chunks.map((chunk) => chunk.choices[0]!.delta[field] ?? '').join('');

/** Every way of cutting `text` into two pieces, and one piece per character. */
function splits(text: string): string[][] {
  const ways = [[...text]];
  for (let at = 1; at < text.length; at++) ways.push([text.slice(0, at), text.slice(at)]);
  return ways;
}

describe('chunk mapping over web-llm’s own stream generator', () => {
  it('shapes the stream: role first, finish_reason and usage on the last chunk only', async () => {
    const chunks = await mapped(['Hel', 'lo', ' there'], 'stop');
    expect(chunks.map((chunk) => chunk.choices[0]!.delta)).toEqual([
      { role: 'assistant', content: 'Hel' },
      { content: 'lo' },
      { content: ' there' },
      {},
    ]);
    for (const chunk of chunks) {
      expect(chunk).toMatchObject({ id: 'chatcmpl-test', object: 'chat.completion.chunk', created: 1_700_000_000, model: MODEL });
      expect(chunk.choices).toHaveLength(1);
    }
    expect(chunks.slice(0, -1).every((chunk) => chunk.choices[0]!.finish_reason === null && !chunk.usage)).toBe(true);
    const last = chunks.at(-1)!;
    expect(last.choices[0]!.finish_reason).toBe('stop');
    expect(last.usage).toEqual({
      prompt_tokens: 17,
      completion_tokens: 3,
      total_tokens: 20,
      extra: {
        cached_prompt_tokens: 0,
        prefilled_tokens: 17,
        dropped_messages: 0,
        time_to_first_token_s: 0.5,
        prefill_tokens_per_s: 34,
        decode_tokens_per_s: 12.5,
      },
    });
  });

  it("maps 'length' and an interrupt's 'abort'", async () => {
    expect((await mapped(['a', 'b'], 'length')).at(-1)!.choices[0]!.finish_reason).toBe('length');
    const interrupted = await mapped(['one', ' two', ' three', ' four'], 'stop', 2);
    expect(joined(interrupted, 'content')).toBe('one two');
    expect(interrupted.at(-1)!.choices[0]!.finish_reason).toBe('abort');
    expect(interrupted.at(-1)!.usage?.completion_tokens).toBe(2);
  });

  const cases: Array<{ name: string; text: string; reasoning: string; content: string }> = [
    { name: 'thinking, then the answer', text: '<think>\nI should greet.\n</think>\n\nHello!', reasoning: 'I should greet.', content: 'Hello!' },
    { name: "web-llm's empty block (enable_thinking: false)", text: '<think>\n\n</think>\n\nHello!', reasoning: '', content: 'Hello!' },
    { name: 'thinking with inner blank lines', text: '<think>\nline 1\n\nline 2\n</think>\n\nAnswer', reasoning: 'line 1\n\nline 2', content: 'Answer' },
    { name: 'no thinking block', text: 'Just an answer.', reasoning: '', content: 'Just an answer.' },
    { name: 'a quoted <think> later in the answer', text: 'Use the <think> tag.', reasoning: '', content: 'Use the <think> tag.' },
    { name: 'a close tag without an open one', text: 'a </think> b', reasoning: '', content: 'a </think> b' },
    { name: 'thinking cut short (max_tokens)', text: '<think>\nstill thinking', reasoning: 'still thinking', content: '' },
    { name: 'only whitespace', text: '\n\n', reasoning: '', content: '' },
  ];
  for (const { name, text, reasoning, content } of cases) {
    it(`splits thinking from the answer however the text is cut: ${name}`, async () => {
      for (const pieces of splits(text)) {
        const chunks = await mapped(pieces, 'length');
        expect({ pieces, reasoning: joined(chunks, 'reasoning_content'), content: joined(chunks, 'content') })
          .toEqual({ pieces, reasoning, content });
        // No empty deltas: every chunk but the last carries text.
        for (const chunk of chunks.slice(0, -1)) {
          const delta = chunk.choices[0]!.delta;
          expect(Boolean(delta.content) || Boolean(delta.reasoning_content)).toBe(true);
        }
      }
    });
  }

  it("asks web-llm for logprobs and passes its OpenAI-shaped entries through, in order, across held-back text", async () => {
    const mappedRequest = toWebLlmRequest(normalizeRequest({ messages: [{ role: 'user', content: 'q' }], logprobs: true, top_logprobs: 3 })).request;
    expect(mappedRequest).toMatchObject({ logprobs: true, top_logprobs: 3 });
    const schema = { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] };
    expect(toWebLlmRequest(normalizeRequest({ messages: [{ role: 'user', content: 'q' }], response_format: { type: 'json_schema', json_schema: { name: 'a', schema } } })).request.response_format)
      .toEqual({ type: 'json_object', schema: JSON.stringify(schema) });
    expect(toWebLlmRequest(normalizeRequest({ messages: [{ role: 'user', content: 'q' }], response_format: { type: 'json_object' } })).request.response_format)
      .toEqual({ type: 'json_object' });
    expect(toWebLlmRequest(normalizeRequest({ messages: [{ role: 'user', content: 'q' }] })).request.logprobs).toBeUndefined();
    const entry = (token: string) => ({ token, logprob: -0.5, bytes: [...new TextEncoder().encode(token)], top_logprobs: [] });
    async function* source() {
      const base = { id: 'c', object: 'chat.completion.chunk', created: 1, model: MODEL };
      // '<thi' is held back (it may open a think block) and comes out with the next piece.
      for (const piece of ['<thi', 'ng> is', ' text']) {
        yield { ...base, choices: [{ index: 0, delta: { content: piece }, finish_reason: null, logprobs: { content: [entry(piece)] } }] };
      }
      yield { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop', logprobs: null }], usage: { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4, extra: { e2e_latency_s: 0, prefill_tokens_per_s: 0, decode_tokens_per_s: 0, time_to_first_token_s: 0, time_per_output_token_s: 0 } } };
    }
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of fromWebLlmStream(source() as unknown as AsyncIterable<webllm.ChatCompletionChunk>)) chunks.push(chunk);
    expect(chunks.flatMap((c) => c.choices[0]!.logprobs?.content ?? []).map((e) => e.token)).toEqual(['<thi', 'ng> is', ' text']);
    expect(joined(chunks, 'content')).toBe('<thing> is text');
    const completion = await collectCompletion((async function* () { yield* chunks; })());
    expect(completion.choices[0]!.logprobs!.content!.map((e) => e.token)).toEqual(['<thi', 'ng> is', ' text']);
  });

  it('collects a whole completion for non-streaming requests', async () => {
    const completion = await collectCompletion(fromWebLlmStream(webLlmStream(['<think>\nhm\n</think>\n\n', 'Blue', '.'])));
    expect(completion).toMatchObject({
      id: 'chatcmpl-test',
      object: 'chat.completion',
      model: MODEL,
      choices: [{ index: 0, message: { role: 'assistant', content: 'Blue.', reasoning_content: 'hm' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 17, completion_tokens: 3, total_tokens: 20 },
    });
  });
});

describe('ThinkSplitter', () => {
  it('holds back a partial close tag and the whitespace before it', () => {
    const splitter = new ThinkSplitter();
    expect(splitter.push('<think>\nabc\n</th')).toEqual({ content: '', reasoning: 'abc' });
    expect(splitter.push('ink>\n\nX')).toEqual({ content: 'X', reasoning: '' });
    expect(splitter.flush()).toEqual({ content: '', reasoning: '' });
  });
});

describe('progress, model ids and the catalogue', () => {
  it("reads web-llm's progress lines", () => {
    expect(fromWebLlmProgress({
      progress: 0.25,
      timeElapsed: 10,
      text: 'Fetching param cache[3/50]: 1200MB fetched. 25% completed, 10 secs elapsed. It can take a while when we first visit this page to populate the cache. Later refreshes will become faster.',
    })).toMatchObject({ phase: 'download', loadedBytes: 1200 * 2 ** 20, totalBytes: 4800 * 2 ** 20 });
    expect(fromWebLlmProgress({ progress: 0.5, timeElapsed: 2, text: 'Loading model from cache[3/50]: 600MB loaded. 50% completed, 2 secs elapsed.' }))
      .toMatchObject({ phase: 'load', loadedBytes: 600 * 2 ** 20, totalBytes: 1200 * 2 ** 20 });
    expect(fromWebLlmProgress({ progress: 1, timeElapsed: 3, text: 'Finish loading on WebGPU - swiftshader' }))
      .toEqual({ phase: 'load', loadedBytes: 0, totalBytes: 0, text: 'Finish loading on WebGPU - swiftshader' });
  });

  it("knows the quantization and f16 needs of every Qwen3 build in web-llm's list", () => {
    const qwen3 = webllm.prebuiltAppConfig.model_list.filter((record) => record.model_id.startsWith('Qwen3-'));
    expect(qwen3.length).toBeGreaterThanOrEqual(8);
    for (const record of qwen3) {
      const quant = quantOfMlcModel(record.model_id);
      expect(quant).toMatch(/^q\d+f(16|32)(_\d+)?$/);
      expect(mlcModelNeedsShaderF16(record.model_id, record)).toBe(quant.includes('f16'));
    }
    expect(quantOfMlcModel('Qwen3-4B-q4f16_1-MLC')).toBe('q4f16_1');
    expect(quantOfMlcModel('Qwen3-0.6B-q0f32-MLC')).toBe('q0f32');
  });

  it("names only MLC builds that web-llm's prebuilt list has", () => {
    const known = new Set(webllm.prebuiltAppConfig.model_list.map((record) => record.model_id));
    const named = CATALOGUE.flatMap((entry) => (entry.mlcModelId ? [entry.mlcModelId] : []));
    expect(named.length).toBeGreaterThan(0);
    for (const id of named) expect(known.has(id), id).toBe(true);
  });
});
