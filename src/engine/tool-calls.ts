// Tool calls in model output. Qwen3 (its chat template tells it so) writes a call as
//
//   <tool_call>
//   {"name": "get_weather", "arguments": {"city": "Paris"}}
//   </tool_call>
//
// between or after its text. ToolCallParser takes the answer's text as it streams and splits it
// into text and OpenAI tool calls: text outside the tags passes through (a suffix that may be the
// start of a tag waits for the next piece), a complete call becomes a ToolCall with its arguments
// as JSON text. The model's output is untrusted: a call whose body is not a JSON object with a
// known function name and object arguments is not a call, and its text stays in the answer, tags
// and all, so nothing the model wrote is lost. Whitespace only between or around calls is layout.
import type { ChatCompletionChunk, NormalizedRequest, ToolCall, ToolCallDelta, ToolDefinition } from './types.ts';

export const TOOL_CALL_OPEN = '<tool_call>';
export const TOOL_CALL_CLOSE = '</tool_call>';

export interface ToolCallPiece {
  content: string;
  calls: ToolCall[];
}

/** Length of the longest suffix of `text` that is a proper prefix of `tag`. */
function partialTag(text: string, tag: string): number {
  for (let length = Math.min(tag.length - 1, text.length); length > 0; length--) {
    if (tag.startsWith(text.slice(text.length - length))) return length;
  }
  return 0;
}

let callCounter = 0;
/** An id in OpenAI's shape (call_…), unique in this page. */
function callId(): string {
  callCounter = (callCounter + 1) % 0x100000;
  return `call_${Date.now().toString(36)}${callCounter.toString(36).padStart(4, '0')}${Math.floor(Math.random() * 0x10000).toString(36)}`;
}

/**
 * A tool call from the text between the tags, or undefined when it is not one: a JSON object
 * with `name` among `tools` and `arguments` an object (or JSON text of one).
 */
export function parseToolCall(body: string, tools: ReadonlySet<string>): ToolCall | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { name, arguments: args } = value as { name?: unknown; arguments?: unknown };
  if (typeof name !== 'string' || !tools.has(name)) return undefined;
  let parsed = args ?? {};
  if (typeof parsed === 'string') {
    try {
      parsed = JSON.parse(parsed);
    } catch {
      return undefined;
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  return { id: callId(), type: 'function', function: { name, arguments: JSON.stringify(parsed) } };
}

export class ToolCallParser {
  private inCall = false;
  /** The whitespace before the open call's tag: layout if it is a call, the answer's text if not. */
  private lead = '';
  /** Text not given out yet: a possible tag start, whitespace whose role is not known, or a call's body. */
  private held = '';
  private callsSoFar = 0;

  constructor(private readonly tools: ReadonlySet<string>) {}

  /** Calls found so far. */
  get calls(): number {
    return this.callsSoFar;
  }

  push(text: string): ToolCallPiece {
    const out: ToolCallPiece = { content: '', calls: [] };
    let rest = this.held + text;
    this.held = '';
    for (;;) {
      if (this.inCall) {
        const end = rest.indexOf(TOOL_CALL_CLOSE);
        if (end < 0) {
          this.held = rest;
          return out;
        }
        const body = rest.slice(0, end);
        const call = parseToolCall(body.trim(), this.tools);
        if (call) {
          out.calls.push(call);
          this.callsSoFar++;
        } else {
          out.content += this.lead + TOOL_CALL_OPEN + body + TOOL_CALL_CLOSE;
        }
        this.inCall = false;
        rest = rest.slice(end + TOOL_CALL_CLOSE.length);
        continue;
      }
      const start = rest.indexOf(TOOL_CALL_OPEN);
      if (start >= 0) {
        // Whitespace right before a call is layout; other text is the answer's.
        const before = rest.slice(0, start);
        out.content += before.trimEnd();
        this.lead = before.slice(before.trimEnd().length);
        this.inCall = true;
        rest = rest.slice(start + TOOL_CALL_OPEN.length);
        continue;
      }
      // Hold a possible tag start, and the whitespace before it (it may turn out to come before a call).
      let keep = partialTag(rest, TOOL_CALL_OPEN);
      const head = rest.slice(0, rest.length - keep);
      keep += head.length - head.trimEnd().length;
      const given = rest.slice(0, rest.length - keep);
      this.held = rest.slice(rest.length - keep);
      out.content += given;
      return out;
    }
  }

  /** The end of the answer: an unclosed call is text; whitespace after calls is dropped. */
  end(): ToolCallPiece {
    const out: ToolCallPiece = { content: '', calls: [] };
    if (this.inCall) out.content = this.lead + TOOL_CALL_OPEN + this.held;
    else if (this.held.trim() || this.callsSoFar === 0) out.content = this.held;
    this.held = '';
    this.inCall = false;
    return out;
  }
}

/** How one answer may call tools. */
export interface ToolUse {
  /**
   * 'auto': calls are taken out of the free answer; 'forced' (tool_choice 'required' or a named
   * function): the answer is one call, its body held to the function's parameters by the grammar;
   * 'none': the model may not open a call.
   */
  mode: 'auto' | 'forced' | 'none';
  /** The functions it may call (forced: the named one, or every one for 'required'). */
  offered: ToolDefinition[];
  /** More than one call in an answer. */
  parallel: boolean;
}

export function toolUse(request: NormalizedRequest): ToolUse | undefined {
  if (!request.tools) return undefined;
  const choice = request.tool_choice ?? 'auto';
  if (choice === 'none') return { mode: 'none', offered: [], parallel: false };
  if (choice === 'auto') return { mode: 'auto', offered: request.tools, parallel: request.parallel_tool_calls ?? true };
  const offered = choice === 'required' ? request.tools : request.tools.filter((tool) => tool.function.name === choice.function.name);
  return { mode: 'forced', offered, parallel: false };
}

type Delta = ChatCompletionChunk['choices'][0]['delta'];

const isEmpty = (delta: Delta) => !delta.content && !delta.reasoning_content && !delta.tool_calls?.length && !delta.role;

/** The answer's deltas with its tool calls taken out of the content and given as tool_calls. */
export class ToolCallOutput {
  private readonly parser: ToolCallParser;
  private readonly names: ReadonlySet<string>;
  private forcedText = '';
  private index = 0;
  /** Some call was made. */
  made = false;

  constructor(private readonly use: ToolUse) {
    this.names = new Set(use.offered.map((tool) => tool.function.name));
    this.parser = new ToolCallParser(this.names);
  }

  /** One call is all this answer may make, and it is made: generation can stop. */
  get done(): boolean {
    return this.made && !this.use.parallel;
  }

  take(delta: Delta | undefined): Delta | undefined {
    if (!delta || this.use.mode === 'none' || !delta.content) return delta;
    const out: Delta = { ...delta };
    delete out.content;
    if (this.use.mode === 'forced') this.forcedText += delta.content;
    else this.add(out, this.parser.push(delta.content));
    return isEmpty(out) ? undefined : out;
  }

  /** The last delta of the answer, with what the parser still held. */
  end(last: Delta | undefined): Delta | undefined {
    const out: Delta = this.take(last) ?? {};
    if (this.use.mode === 'forced') {
      const call = parseToolCall(this.forcedText.trim(), this.names);
      if (call) this.add(out, { content: '', calls: [call] });
      else out.content = (out.content ?? '') + this.forcedText; // cut short: the text as written
    } else if (this.use.mode === 'auto') {
      this.add(out, this.parser.end());
    }
    return isEmpty(out) ? undefined : out;
  }

  private add(out: Delta, piece: ToolCallPiece): void {
    if (piece.content) out.content = (out.content ?? '') + piece.content;
    for (const call of piece.calls) {
      if (this.done) break; // parallel_tool_calls: false keeps the first
      (out.tool_calls ??= []).push({ index: this.index++, id: call.id, type: 'function', function: { ...call.function } });
      this.made = true;
    }
  }
}

/** Joins a streamed tool-call delta into the calls so far: the first of a call has its id and name. */
export function addToolCallDelta(calls: ToolCall[], delta: ToolCallDelta): void {
  const call = (calls[delta.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
  if (delta.id) call.id = delta.id;
  call.function.name += delta.function?.name ?? '';
  call.function.arguments += delta.function?.arguments ?? '';
}
