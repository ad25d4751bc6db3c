// Tool calls on the CPU engine in Node (tiny-f32): a required or named call is one call whose
// arguments validate (Ajv) against the function's parameters, streamed or whole; a conversation
// carrying calls and their results renders as the template renders it (the template itself is
// checked against Jinja2 in tests/tokenizer/chat-template.test.ts) and is answered; bad tool
// requests are typed errors. The text parser is tested in tests/engine/tool-calls.test.ts.
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuEngine } from '../../src/engine/cpu-engine.ts';
import type { ChatCompletionChunk, ChatCompletionRequest, ChatMessage, ToolDefinition } from '../../src/engine/types.ts';
import { readChatTemplate, readTokenizerData } from '../../src/gguf/metadata.ts';
import { NodeFileSource } from '../../src/gguf/node-file-source.ts';
import { readGGUF } from '../../src/gguf/reader.ts';
import { renderChat } from '../../src/tokenizer/chat-template.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';

const ajv = new Ajv2020({ strict: false });
const TOOLS: ToolDefinition[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather', description: 'Weather for a city',
      parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city', 'days'], additionalProperties: false },
    },
  },
  {
    type: 'function',
    function: {
      name: 'search', description: 'Search the notes',
      parameters: { type: 'object', properties: { q: { type: 'string', minLength: 1, maxLength: 10 }, limit: { enum: [5, 10] } }, required: ['q'], additionalProperties: false },
    },
  },
];
const question: ChatMessage = { role: 'user', content: 'What is the weather in Paris?' };

let engine: CpuEngine;
let tokenizer: Tokenizer;
let template: string | undefined;

beforeAll(async () => {
  const path = await ensureFixture('tiny-f32');
  const source = await NodeFileSource.open(path);
  try {
    const gguf = await readGGUF(source);
    tokenizer = Tokenizer.fromData(readTokenizerData(gguf));
    template = readChatTemplate(gguf);
  } finally {
    await source.close();
  }
  engine = new CpuEngine();
  await engine.load({ kind: 'path', path }, { threads: 2, build: 'simd128', contextLength: 1024 });
}, 120_000);

afterAll(async () => {
  await engine?.unload();
});

const parameters = (name: string) => TOOLS.find((t) => t.function.name === name)!.function.parameters!;

describe('tool calls (tiny-f32)', () => {
  it('makes the named call, its arguments valid for the function, whole and streamed alike', async () => {
    for (const seed of [1, 2, 3]) {
      const request: ChatCompletionRequest & { stream?: false } = {
        messages: [question], tools: TOOLS, tool_choice: { type: 'function', function: { name: 'get_weather' } }, temperature: 0.8, seed, max_tokens: 200,
      };
      const completion = await engine.chat.completions.create(request);
      const choice = completion.choices[0];
      expect(choice.finish_reason).toBe('tool_calls');
      expect(choice.message.content).toBe('');
      expect(choice.message.tool_calls).toHaveLength(1);
      const call = choice.message.tool_calls![0]!;
      expect(call).toMatchObject({ id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather' } });
      expect(ajv.validate(parameters('get_weather'), JSON.parse(call.function.arguments)), call.function.arguments).toBe(true);

      const chunks: ChatCompletionChunk[] = [];
      for await (const chunk of await engine.chat.completions.create({ ...request, stream: true })) chunks.push(chunk);
      const streamed = chunks.flatMap((c) => c.choices[0].delta.tool_calls ?? []);
      expect(streamed.map((d) => [d.index, d.function?.name, d.function?.arguments])).toEqual([[0, 'get_weather', call.function.arguments]]);
      expect(chunks.at(-1)!.choices[0].finish_reason).toBe('tool_calls');
    }
  }, 120_000);

  it("makes one call to one of the tools with tool_choice 'required'", async () => {
    const names: string[] = [];
    for (const seed of [4, 5, 6, 7]) {
      const completion = await engine.chat.completions.create({ messages: [question], tools: TOOLS, tool_choice: 'required', temperature: 1, seed, max_tokens: 200 });
      const call = completion.choices[0].message.tool_calls![0]!;
      names.push(call.function.name);
      expect(ajv.validate(parameters(call.function.name), JSON.parse(call.function.arguments))).toBe(true);
    }
    expect(names.every((name) => name === 'get_weather' || name === 'search')).toBe(true);
  }, 120_000);

  it('answers a conversation that carries calls and their results, rendered as the template renders it', async () => {
    const call = { id: 'call_7', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city":"Paris","days":1}' } };
    const messages: ChatMessage[] = [question, { role: 'assistant', content: '', tool_calls: [call] }, { role: 'tool', content: '{"temp": 21, "sky": "clear"}', tool_call_id: 'call_7' }];
    const completion = await engine.chat.completions.create({ messages, tools: TOOLS, temperature: 0, max_tokens: 8 });
    const rendered = renderChat(template, messages, { tools: TOOLS });
    expect(rendered).toContain('<tool_response>\n{"temp": 21, "sky": "clear"}\n</tool_response>');
    expect(rendered).toContain('<tool_call>\n{"name": "get_weather", "arguments": {"city":"Paris","days":1}}\n</tool_call>');
    expect(completion.usage.prompt_tokens).toBe(tokenizer.encode(rendered, { parseSpecial: true }).length);
    expect(['stop', 'length', 'tool_calls']).toContain(completion.choices[0].finish_reason);
  });

  it("never opens a call with tool_choice 'none', and answers in text", async () => {
    for (const seed of [1, 2]) {
      const completion = await engine.chat.completions.create({ messages: [question], tools: TOOLS, tool_choice: 'none', temperature: 1.5, seed, max_tokens: 40, logprobs: true });
      expect(completion.choices[0].message.tool_calls).toBeUndefined();
      expect(completion.choices[0].finish_reason).not.toBe('tool_calls');
      expect(completion.choices[0].logprobs!.content!.map((e) => e.token)).not.toContain('<tool_call>');
    }
  });

  it('refuses malformed tools and choices with bad-request naming the field', async () => {
    const ask = (extra: Record<string, unknown>) => engine.chat.completions.create({ messages: [question], ...extra } as ChatCompletionRequest);
    await expect(ask({ tools: [{ type: 'function', function: { name: 'has space' } }] })).rejects.toMatchObject({ code: 'bad-request', message: expect.stringMatching(/tools\[0\].function.name/) });
    await expect(ask({ tools: [TOOLS[0], TOOLS[0]] })).rejects.toMatchObject({ code: 'bad-request', message: expect.stringMatching(/given twice/) });
    await expect(ask({ tools: TOOLS, tool_choice: { type: 'function', function: { name: 'nope' } } })).rejects.toMatchObject({ code: 'bad-request', message: expect.stringMatching(/not among the tools/) });
    await expect(ask({ tool_choice: 'required' })).rejects.toMatchObject({ code: 'bad-request', message: expect.stringMatching(/no tools are given/) });
    await expect(ask({ tools: TOOLS, response_format: { type: 'json_object' } })).rejects.toMatchObject({ code: 'bad-request' });
    await expect(ask({ messages: [question, { role: 'user', content: 'x', tool_calls: [] }] })).rejects.toMatchObject({ code: 'bad-request', message: expect.stringMatching(/only an assistant message calls tools/) });
    const forcedBad = [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { n: { type: 'number', maximum: 1 } } } } }];
    await expect(ask({ tools: forcedBad, tool_choice: 'required' })).rejects.toMatchObject({ code: 'unsupported', message: expect.stringMatching(/tools\[0\].function.parameters.properties.n/) });
  });
});
