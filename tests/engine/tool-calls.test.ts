// Tool calls out of model text (src/engine/tool-calls.ts): Qwen3's <tool_call> blocks become
// OpenAI tool calls, whole or streamed in any pieces, and what is not a valid call stays text.
// The expected calls are written out by hand from the format (Qwen3's chat template tells the
// model to write {"name": …, "arguments": {…}} between the tags).
import { describe, expect, it } from 'vitest';
import { ToolCallOutput, ToolCallParser, type ToolCallPiece } from '../../src/engine/tool-calls.ts';
import type { ToolDefinition } from '../../src/engine/types.ts';

const TOOLS = new Set(['get_weather', 'search']);

/** Text and calls (id aside) from pushing `text` in pieces of `step` characters (0: whole). */
function parse(text: string, step = 0): { content: string; calls: { name: string; arguments: string }[] } {
  const parser = new ToolCallParser(TOOLS);
  const pieces: ToolCallPiece[] = [];
  if (step === 0) pieces.push(parser.push(text));
  else for (let i = 0; i < text.length; i += step) pieces.push(parser.push(text.slice(i, i + step)));
  pieces.push(parser.end());
  return {
    content: pieces.map((p) => p.content).join(''),
    calls: pieces.flatMap((p) => p.calls.map((c) => ({ name: c.function.name, arguments: c.function.arguments }))),
  };
}

const weather = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n</tool_call>';
const search = '<tool_call>\n{"name": "search", "arguments": {"q": "lighthouse <b>keepers</b>"}}\n</tool_call>';

const CASES: [string, string, { content: string; calls: { name: string; arguments: string }[] }][] = [
  ['one call', weather, { content: '', calls: [{ name: 'get_weather', arguments: '{"city":"Paris","days":2}' }] }],
  ['text, then a call', `Let me check.\n\n${weather}`, { content: 'Let me check.', calls: [{ name: 'get_weather', arguments: '{"city":"Paris","days":2}' }] }],
  ['two calls, newline between', `${weather}\n${search}`, {
    content: '',
    calls: [{ name: 'get_weather', arguments: '{"city":"Paris","days":2}' }, { name: 'search', arguments: '{"q":"lighthouse <b>keepers</b>"}' }],
  }],
  ['arguments as JSON text', '<tool_call>{"name": "search", "arguments": "{\\"q\\": \\"x\\"}"}</tool_call>', { content: '', calls: [{ name: 'search', arguments: '{"q":"x"}' }] }],
  ['no arguments', '<tool_call>{"name": "search"}</tool_call>', { content: '', calls: [{ name: 'search', arguments: '{}' }] }],
  ['malformed JSON stays text', '<tool_call>\n{"name": "search", "arguments": {"q": }\n</tool_call> after', {
    content: '<tool_call>\n{"name": "search", "arguments": {"q": }\n</tool_call> after', calls: [],
  }],
  ['an unknown function stays text', '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>', { content: '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>', calls: [] }],
  ['arguments that are not an object stay text', '<tool_call>{"name": "search", "arguments": [1, 2]}</tool_call>', { content: '<tool_call>{"name": "search", "arguments": [1, 2]}</tool_call>', calls: [] }],
  ['a call never closed stays text', `Sure: <tool_call>\n{"name": "search", "argu`, { content: 'Sure: <tool_call>\n{"name": "search", "argu', calls: [] }],
  ['a tag-like start that is not a tag', 'a <tool and <tool_cal> and <b>', { content: 'a <tool and <tool_cal> and <b>', calls: [] }],
  ['text ending in a partial tag', 'The tag starts with <tool_ca', { content: 'The tag starts with <tool_ca', calls: [] }],
  ['plain text keeps its whitespace', '  Hello,\n\n  world!  \n', { content: '  Hello,\n\n  world!  \n', calls: [] }],
  ['text after a call', `${weather}\nDone.`, { content: '\nDone.', calls: [{ name: 'get_weather', arguments: '{"city":"Paris","days":2}' }] }],
];

describe('ToolCallParser', () => {
  it.each(CASES)('%s: the same calls and text whole and in pieces of 1, 2, 5 and 13 characters', (_, text, expected) => {
    for (const step of [0, 1, 2, 5, 13]) expect(parse(text, step), `step ${step}`).toEqual(expected);
  });

  it('gives every call an OpenAI id (call_…), distinct', () => {
    const parser = new ToolCallParser(TOOLS);
    const ids = [...parser.push(`${weather}${weather}${search}`).calls, ...parser.end().calls].map((c) => c.id);
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) expect(id).toMatch(/^call_[a-z0-9]+$/);
  });
});

describe('ToolCallOutput', () => {
  const tools: ToolDefinition[] = [...TOOLS].map((name) => ({ type: 'function', function: { name } }));
  const run = (output: ToolCallOutput, pieces: string[]) => {
    const deltas = pieces.map((content) => output.take({ content }));
    deltas.push(output.end(undefined));
    return deltas.filter((d) => d !== undefined);
  };

  it('streams calls as OpenAI tool_calls deltas with running indices, and stops after one without parallel calls', () => {
    const parallel = new ToolCallOutput({ mode: 'auto', offered: tools, parallel: true });
    const deltas = run(parallel, [...`${weather}\n${search}`]);
    expect(deltas.flatMap((d) => d.tool_calls ?? []).map((c) => [c.index, c.type, c.function?.name])).toEqual([[0, 'function', 'get_weather'], [1, 'function', 'search']]);
    expect(deltas.map((d) => d.content ?? '').join('')).toBe('');
    expect(parallel.made).toBe(true);

    const single = new ToolCallOutput({ mode: 'auto', offered: tools, parallel: false });
    let done = -1;
    [...`${weather}\n${search}`].forEach((ch, i) => { single.take({ content: ch }); if (single.done && done < 0) done = i; });
    expect(done).toBe(weather.length - 1); // the engine can stop right after the first call closes
  });

  it('takes a forced answer as the body of one call, or as text when it was cut short', () => {
    const forced = new ToolCallOutput({ mode: 'forced', offered: tools, parallel: false });
    const deltas = run(forced, ['{"name": "search", ', '"arguments": {"q": "x"}}']);
    expect(deltas).toEqual([{ tool_calls: [{ index: 0, id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'search', arguments: '{"q":"x"}' } }] }]);
    const cut = new ToolCallOutput({ mode: 'forced', offered: tools, parallel: false });
    expect(run(cut, ['{"name": "sea'])).toEqual([{ content: '{"name": "sea' }]);
  });

  it("leaves the text alone with tool_choice 'none'", () => {
    const none = new ToolCallOutput({ mode: 'none', offered: [], parallel: false });
    expect(run(none, [weather]).map((d) => d.content).join('')).toBe(weather);
  });
});
