// Checks a chat completion request and brings it to the one form the engines run. What OpenAI's
// API accepts is accepted (role 'developer', text-part arrays, null assistant content, stop: null,
// top_p 0, max_completion_tokens); what the engine cannot do is refused with 'unsupported' naming
// the field, never silently ignored; anything malformed is 'bad-request' naming the field.
import { EngineError } from './errors.ts';
import { prepareSchema } from './json-schema.ts';
import type { ChatCompletionRequest, ChatMessage, NormalizedRequest, ResponseFormat, ToolCall, ToolChoice, ToolDefinition } from './types.ts';

const ROLES = new Set(['system', 'user', 'assistant', 'tool', 'developer']);

/** Every top-level field a request may carry. */
const KNOWN_FIELDS = new Set<string>([
  'messages', 'stream', 'temperature', 'top_p', 'top_k', 'min_p', 'presence_penalty', 'frequency_penalty',
  'repetition_penalty', 'max_tokens', 'max_completion_tokens', 'stop', 'seed', 'enable_thinking',
  'special_tokens_in_content', 'continue_final_message', 'signal', 'return_progress', 'onProgress', 'n', 'logprobs', 'top_logprobs', 'tools', 'tool_choice', 'response_format',
  'logit_bias', 'stream_options', 'user', 'model', 'metadata', 'store', 'parallel_tool_calls', 'service_tier', 'speculative',
]);

const bad = (message: string) => new EngineError('bad-request', message);
const unsupported = (message: string) => new EngineError('unsupported', message);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function normalizeRequest(input: unknown): NormalizedRequest {
  if (!isObject(input)) throw bad(`the request must be an object, got ${input === null ? 'null' : typeof input}`);
  const request = input as ChatCompletionRequest & Record<string, unknown>;
  for (const key of Object.keys(request)) {
    if (!KNOWN_FIELDS.has(key)) throw bad(`unknown request field '${key}'`);
  }
  refuseUnimplemented(request);

  if (!Array.isArray(request.messages) || request.messages.length === 0) throw bad('messages must be a non-empty array');
  const messages = request.messages.map((m, i) => normalizeMessage(m, i));

  const number = (name: string, ok: (v: number) => boolean, rule: string): number | undefined => {
    const v = request[name];
    if (v === undefined || v === null) return undefined;
    if (!(typeof v === 'number' && Number.isFinite(v) && ok(v))) throw bad(`${name} must be ${rule}, got ${String(v)}`);
    return v;
  };
  let temperature = number('temperature', (v) => v >= 0, 'a number >= 0');
  let topP = number('top_p', (v) => v >= 0 && v <= 1, 'in [0, 1]');
  if (topP === 0) {
    // Only the most likely token survives: greedy.
    temperature = 0;
    topP = undefined;
  }
  const maxTokens = number('max_tokens', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1');
  const maxCompletionTokens = number('max_completion_tokens', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1');
  if (maxTokens !== undefined && maxCompletionTokens !== undefined && maxTokens !== maxCompletionTokens) {
    throw bad('max_tokens and max_completion_tokens disagree: give one of them');
  }

  const stop = request.stop ?? [];
  const stops = Array.isArray(stop) ? stop : [stop];
  if (!stops.every((s) => typeof s === 'string' && s.length > 0)) throw bad('stop must be a non-empty string or an array of them');

  const flag = (name: string): boolean | undefined => {
    const v = request[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw bad(`${name} must be a boolean, got ${String(v)}`);
    return v;
  };
  const signal = request.signal;
  if (signal !== undefined && !(typeof signal === 'object' && signal !== null && 'aborted' in signal)) throw bad('signal must be an AbortSignal');
  const onProgress = request.onProgress;
  if (onProgress !== undefined && typeof onProgress !== 'function') throw bad('onProgress must be a function');
  const speculative = request.speculative ?? undefined;
  if (speculative !== undefined && speculative !== 'prompt-lookup' && speculative !== 'off') throw bad(`speculative must be 'prompt-lookup' or 'off', got ${String(speculative)}`);

  const normalized: NormalizedRequest = {
    messages,
    stream: flag('stream') ?? false,
    stop: stops,
    special_tokens_in_content: flag('special_tokens_in_content') ?? false,
    continue_final_message: flag('continue_final_message') ?? false,
    logprobs: flag('logprobs') ?? false,
    return_progress: flag('return_progress') ?? false,
  };
  const format = normalizeResponseFormat(request.response_format);
  if (format) normalized.response_format = format;
  Object.assign(normalized, normalizeTools(request));
  if (format && normalized.tools && normalized.tool_choice !== 'none') throw bad('response_format and tools together: give one of them (or tool_choice: \'none\')');
  const topLogprobs = number('top_logprobs', (v) => Number.isInteger(v) && v >= 0 && v <= 20, 'an integer in [0, 20]');
  if (normalized.logprobs) normalized.top_logprobs = topLogprobs ?? 0;
  else if (topLogprobs !== undefined) throw bad('top_logprobs needs logprobs: true');
  if (normalized.continue_final_message && messages[messages.length - 1]!.role !== 'assistant') {
    throw bad(`continue_final_message needs the last message to be the assistant's, got '${messages[messages.length - 1]!.role}'`);
  }
  const optional: Partial<NormalizedRequest> = {
    temperature,
    top_p: topP,
    top_k: number('top_k', (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0'),
    min_p: number('min_p', (v) => v >= 0 && v <= 1, 'in [0, 1]'),
    presence_penalty: number('presence_penalty', (v) => v >= -2 && v <= 2, 'in [-2, 2]'),
    frequency_penalty: number('frequency_penalty', (v) => v >= -2 && v <= 2, 'in [-2, 2]'),
    repetition_penalty: number('repetition_penalty', (v) => v > 0, 'a number > 0'),
    max_tokens: maxTokens ?? maxCompletionTokens,
    seed: number('seed', (v) => Number.isSafeInteger(v), 'an integer'),
    enable_thinking: flag('enable_thinking'),
    signal,
    onProgress,
    speculative,
  };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (normalized as unknown as Record<string, unknown>)[key] = value;
  }
  return normalized;
}

/** Longest JSON schema accepted, as JSON text (a grammar is compiled from it per request). */
export const MAX_SCHEMA_CHARS = 64 * 1024;

function normalizeResponseFormat(input: unknown): ResponseFormat | undefined {
  if (input === undefined || input === null) return undefined;
  if (!isObject(input)) throw bad('response_format must be an object such as { type: \'json_object\' }');
  for (const key of Object.keys(input)) {
    if (key !== 'type' && key !== 'json_schema') throw bad(`unknown field response_format.${key}`);
  }
  switch (input.type) {
    case 'text':
      return undefined;
    case 'json_object':
      if (input.json_schema !== undefined) throw bad("response_format.json_schema goes with type 'json_schema'");
      return { type: 'json_object' };
    case 'json_schema': {
      const spec = input.json_schema;
      if (!isObject(spec)) throw bad('response_format.json_schema must be an object { name, schema, strict }');
      for (const key of Object.keys(spec)) {
        if (!['name', 'description', 'schema', 'strict'].includes(key)) throw bad(`unknown field response_format.json_schema.${key}`);
      }
      if (typeof spec.name !== 'string' || !/^[\w-]{1,64}$/.test(spec.name)) {
        throw bad('response_format.json_schema.name must be 1-64 letters, digits, _ or -');
      }
      if (spec.description !== undefined && typeof spec.description !== 'string') throw bad('response_format.json_schema.description must be a string');
      if (spec.schema !== undefined && !isObject(spec.schema) && typeof spec.schema !== 'boolean') {
        throw bad('response_format.json_schema.schema must be a JSON Schema object');
      }
      if (spec.strict !== undefined && spec.strict !== null && typeof spec.strict !== 'boolean') throw bad('response_format.json_schema.strict must be a boolean');
      const size = JSON.stringify(spec.schema ?? {}).length;
      if (size > MAX_SCHEMA_CHARS) throw bad(`response_format.json_schema.schema is ${size} characters of JSON; at most ${MAX_SCHEMA_CHARS}`);
      const json_schema = { ...spec, schema: prepareSchema(spec.schema ?? {}) } as Extract<ResponseFormat, { type: 'json_schema' }>['json_schema'];
      return { type: 'json_schema', json_schema };
    }
    default:
      throw bad(`response_format.type must be 'text', 'json_object' or 'json_schema', got ${JSON.stringify(input.type)}`);
  }
}

/** OpenAI fields whose set values ask for what this engine does not do yet. */
function refuseUnimplemented(request: ChatCompletionRequest): void {
  const set = (v: unknown) => v !== undefined && v !== null;
  if (set(request.n) && request.n !== 1) throw unsupported(`n = ${String(request.n)}: one answer per request is supported (n = 1)`);
  if (set(request.logit_bias) && !(isObject(request.logit_bias) && Object.keys(request.logit_bias).length === 0)) {
    throw unsupported('logit_bias is not supported');
  }
}

function normalizeMessage(input: unknown, i: number): ChatMessage {
  const where = `messages[${i}]`;
  if (!isObject(input)) throw bad(`${where} must be an object`);
  const role = input.role;
  if (typeof role !== 'string' || !ROLES.has(role)) throw bad(`${where}.role must be system, developer, user, assistant or tool, got ${JSON.stringify(role)}`);
  let content: string;
  const raw = input.content;
  if (typeof raw === 'string') {
    content = raw;
  } else if ((raw === null || raw === undefined) && role === 'assistant') {
    content = '';
  } else if (Array.isArray(raw)) {
    // Text parts join with a newline, as other OpenAI-compatible servers do.
    content = raw.map((part, j) => {
      if (!isObject(part)) throw bad(`${where}.content[${j}] must be an object`);
      if (part.type !== 'text') throw unsupported(`${where}.content[${j}].type ${JSON.stringify(part.type)}: this model reads text only`);
      if (typeof part.text !== 'string') throw bad(`${where}.content[${j}].text must be a string`);
      return part.text;
    }).join('\n');
  } else {
    throw bad(`${where}.content must be a string or an array of text parts${role === 'assistant' ? ' (or null)' : ''}`);
  }
  const message: ChatMessage = { role: role === 'developer' ? 'system' : (role as ChatMessage['role']), content };
  if (input.reasoning_content !== undefined && input.reasoning_content !== null) {
    if (typeof input.reasoning_content !== 'string') throw bad(`${where}.reasoning_content must be a string`);
    message.reasoning_content = input.reasoning_content;
  }
  if (input.tool_calls !== undefined && input.tool_calls !== null) {
    if (role !== 'assistant') throw bad(`${where}.tool_calls: only an assistant message calls tools`);
    if (!Array.isArray(input.tool_calls)) throw bad(`${where}.tool_calls must be an array`);
    message.tool_calls = input.tool_calls.map((call, j) => normalizeToolCall(call, `${where}.tool_calls[${j}]`));
  }
  if (input.tool_call_id !== undefined && input.tool_call_id !== null) {
    if (role !== 'tool') throw bad(`${where}.tool_call_id goes with role 'tool'`);
    if (typeof input.tool_call_id !== 'string') throw bad(`${where}.tool_call_id must be a string`);
    message.tool_call_id = input.tool_call_id;
  }
  return message;
}

const FUNCTION_NAME = /^[A-Za-z0-9_-]{1,64}$/;

function normalizeToolCall(input: unknown, where: string): ToolCall {
  if (!isObject(input)) throw bad(`${where} must be an object`);
  if (input.type !== undefined && input.type !== 'function') throw bad(`${where}.type must be 'function'`);
  const fn = input.function;
  if (!isObject(fn) || typeof fn.name !== 'string' || !FUNCTION_NAME.test(fn.name)) throw bad(`${where}.function.name must be 1-64 letters, digits, _ or -`);
  // OpenAI sends arguments as JSON text; an object is taken as what that text would say.
  const args = typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments ?? {});
  if (typeof input.id !== 'string' && input.id !== undefined) throw bad(`${where}.id must be a string`);
  return { id: typeof input.id === 'string' ? input.id : '', type: 'function', function: { name: fn.name, arguments: args } };
}

/** The tools a request offers, and how it asks the model to use them. */
function normalizeTools(request: Record<string, unknown>): Pick<NormalizedRequest, 'tools' | 'tool_choice' | 'parallel_tool_calls'> {
  const tools = request.tools;
  const choice = request.tool_choice;
  if (tools !== undefined && tools !== null && !Array.isArray(tools)) throw bad('tools must be an array of { type: \'function\', function: { name, description, parameters } }');
  const list = (tools ?? []) as unknown[];
  const names = new Set<string>();
  const normalized: ToolDefinition[] = list.map((tool, i) => {
    const where = `tools[${i}]`;
    if (!isObject(tool) || tool.type !== 'function' || !isObject(tool.function)) throw bad(`${where} must be { type: 'function', function: { name, ... } }`);
    const fn = tool.function;
    for (const key of Object.keys(fn)) {
      if (!['name', 'description', 'parameters', 'strict'].includes(key)) throw bad(`unknown field ${where}.function.${key}`);
    }
    if (typeof fn.name !== 'string' || !FUNCTION_NAME.test(fn.name)) throw bad(`${where}.function.name must be 1-64 letters, digits, _ or -`);
    if (names.has(fn.name)) throw bad(`${where}.function.name '${fn.name}' is given twice`);
    names.add(fn.name);
    if (fn.description !== undefined && typeof fn.description !== 'string') throw bad(`${where}.function.description must be a string`);
    if (fn.parameters !== undefined && !isObject(fn.parameters)) throw bad(`${where}.function.parameters must be a JSON Schema object`);
    if (fn.strict !== undefined && fn.strict !== null && typeof fn.strict !== 'boolean') throw bad(`${where}.function.strict must be a boolean`);
    const size = JSON.stringify(fn.parameters ?? {}).length;
    if (size > MAX_SCHEMA_CHARS) throw bad(`${where}.function.parameters is ${size} characters of JSON; at most ${MAX_SCHEMA_CHARS}`);
    return { type: 'function', function: { ...fn } as ToolDefinition['function'] };
  });
  let toolChoice: ToolChoice | undefined;
  if (choice === undefined || choice === null) {
    toolChoice = undefined;
  } else if (choice === 'none' || choice === 'auto' || choice === 'required') {
    toolChoice = choice;
  } else if (isObject(choice) && choice.type === 'function' && isObject(choice.function) && typeof choice.function.name === 'string') {
    if (!names.has(choice.function.name)) throw bad(`tool_choice names '${choice.function.name}', which is not among the tools`);
    toolChoice = { type: 'function', function: { name: choice.function.name } };
  } else {
    throw bad("tool_choice must be 'none', 'auto', 'required' or { type: 'function', function: { name } }");
  }
  if ((toolChoice === 'required' || typeof toolChoice === 'object') && normalized.length === 0) throw bad('tool_choice asks for a tool call, but no tools are given');
  const parallel = request.parallel_tool_calls;
  if (parallel !== undefined && parallel !== null && typeof parallel !== 'boolean') throw bad('parallel_tool_calls must be a boolean');
  const out: Pick<NormalizedRequest, 'tools' | 'tool_choice' | 'parallel_tool_calls'> = {};
  if (normalized.length > 0) out.tools = normalized;
  if (toolChoice !== undefined) out.tool_choice = toolChoice;
  if (typeof parallel === 'boolean') out.parallel_tool_calls = parallel;
  return out;
}
