// Translation between our Engine API and @mlc-ai/web-llm's OpenAI-style API, typed against
// web-llm's own exported types so the compiler checks every field we set or read.
//
// Pure functions only (no web-llm code at run time, type imports are erased): the WebGPU worker
// uses them, and Node tests run them against web-llm's real types.
//
// What differs between the two APIs (web-llm 0.2.86):
//  - top_k and min_p: web-llm's request has no such fields; they are ignored (reported back).
//  - enable_thinking: web-llm takes it in `extra_body.enable_thinking`. `false` makes web-llm put
//    an empty "<think>\n\n</think>\n\n" block at the start of the answer, and that block is part of
//    the streamed text.
//  - Thinking text: web-llm streams Qwen3's `<think>…</think>` inside `delta.content`; we split it
//    out into `reasoning_content` (ThinkSplitter).
//  - Usage: web-llm sends it in an extra chunk with no choices after the finish chunk (with
//    `stream_options.include_usage`). Our stream carries it on the last chunk, which also carries
//    finish_reason. web-llm counts only the newly prefilled part of a multi-turn prompt in
//    `prompt_tokens` and does not say how much of the prompt it reused, so on WebGPU
//    prompt_tokens = prefilled_tokens and cached_prompt_tokens = 0. It never drops messages (it
//    fails with ContextWindowSizeExceededError instead): dropped_messages = 0.
import type * as WebLlm from '@mlc-ai/web-llm';
import { EngineError, type EngineErrorCode } from './errors.ts';
import { isCodeUnavailable } from '../lazy-code.ts';
import type {
  ChatCompletionChunk,
  ChatCompletionTokenLogprob,
  ChatMessage,
  CompletionUsage,
  FinishReason,
  LoadProgress,
  NormalizedRequest,
} from './types.ts';

/** Request fields web-llm has no equivalent for: they do not reach the model. */
export const IGNORED_REQUEST_FIELDS = ['top_k', 'min_p'] as const;

export interface MappedRequest {
  request: WebLlm.ChatCompletionRequestStreaming;
  /** Fields of the caller's request that were set but cannot be honoured by web-llm. */
  ignored: string[];
}

function toWebLlmMessage(message: ChatMessage): WebLlm.ChatCompletionMessageParam {
  switch (message.role) {
    case 'system':
      return { role: 'system', content: message.content };
    case 'user':
      return { role: 'user', content: message.content };
    case 'assistant':
      // reasoning_content is not sent back: Qwen3's template drops earlier turns' thinking too.
      return { role: 'assistant', content: message.content };
    case 'tool':
      // web-llm accepts tool messages only as answers to its own function calls (tool_call_id).
      throw new EngineError('bad-request', "messages with role 'tool' are not supported on the WebGPU backend");
    default:
      throw new EngineError('bad-request', `unknown message role ${JSON.stringify((message as { role: unknown }).role)}`);
  }
}

/**
 * Our request as web-llm's streaming request. The worker always streams (a non-streaming call
 * is collected on our side, see collectCompletion), with usage requested on the last chunk.
 */
export function toWebLlmRequest(request: NormalizedRequest): MappedRequest {
  if (request.tools && request.tool_choice !== 'none') {
    // web-llm renders prompts with its own templates, which do not show Qwen3 its tools.
    throw new EngineError('unsupported', 'tools are not supported on the WebGPU backend; the CPU engine calls tools');
  }
  if (request.continue_final_message) {
    // web-llm always opens a new assistant turn: its prompt cannot end inside the last message.
    throw new EngineError('unsupported', 'continue_final_message is not supported on the WebGPU backend; the CPU engine continues answers');
  }
  const mapped: WebLlm.ChatCompletionRequestStreaming = {
    messages: request.messages.map(toWebLlmMessage),
    stream: true,
    stream_options: { include_usage: true },
  };
  if (request.temperature !== undefined) mapped.temperature = request.temperature;
  if (request.top_p !== undefined) mapped.top_p = request.top_p;
  if (request.presence_penalty !== undefined) mapped.presence_penalty = request.presence_penalty;
  if (request.frequency_penalty !== undefined) mapped.frequency_penalty = request.frequency_penalty;
  if (request.repetition_penalty !== undefined) mapped.repetition_penalty = request.repetition_penalty;
  if (request.max_tokens !== undefined) mapped.max_tokens = request.max_tokens;
  if (request.stop.length > 0) mapped.stop = request.stop;
  if (request.seed !== undefined) mapped.seed = request.seed;
  if (request.enable_thinking !== undefined) mapped.extra_body = { enable_thinking: request.enable_thinking };
  if (request.response_format) {
    // web-llm (XGrammar too) takes a schema as a string on its json_object type.
    const format = request.response_format;
    mapped.response_format = format.type === 'json_object'
      ? { type: 'json_object' }
      : { type: 'json_object', schema: JSON.stringify(format.json_schema.schema ?? {}) };
  }
  if (request.logprobs) {
    mapped.logprobs = true;
    mapped.top_logprobs = request.top_logprobs ?? 0;
  }
  const ignored = IGNORED_REQUEST_FIELDS.filter((field) => request[field] !== undefined);
  return { request: mapped, ignored };
}

const THINK_OPEN = '<think>';
const THINK_CLOSE = '</think>';

/** Length of the longest suffix of `text` that is a proper prefix of `tag` (text that may still become the tag). */
function partialTagSuffix(text: string, tag: string): number {
  for (let length = Math.min(tag.length - 1, text.length); length > 0; length--) {
    if (tag.startsWith(text.slice(text.length - length))) return length;
  }
  return 0;
}

/**
 * Splits streamed model text into thinking and answer. Only a `<think>` at the very start of
 * the output (after whitespace) opens a thinking block: the output is untrusted, and a "<think>"
 * quoted later in an answer is answer text. Whitespace right after `<think>`, right before
 * `</think>` and right after `</think>` is template formatting and is dropped.
 */
export class ThinkSplitter {
  private state: 'start' | 'think-start' | 'thinking' | 'after-think' | 'answer' = 'start';
  /** Text held back: it may be the start of a tag, or whitespace whose fate is not known yet. */
  private pending = '';

  push(text: string): { content: string; reasoning: string } {
    this.pending += text;
    let content = '';
    let reasoning = '';
    for (;;) {
      if (this.state === 'start') {
        const trimmed = this.pending.trimStart();
        if (trimmed.startsWith(THINK_OPEN)) {
          this.state = 'think-start';
          this.pending = trimmed.slice(THINK_OPEN.length);
          continue;
        }
        if (trimmed.length === 0 || THINK_OPEN.startsWith(trimmed)) break; // not decided yet
        this.state = 'answer';
        continue;
      }
      if (this.state === 'think-start') {
        this.pending = this.pending.trimStart();
        if (this.pending.length === 0) break;
        this.state = 'thinking';
        continue;
      }
      if (this.state === 'thinking') {
        const close = this.pending.indexOf(THINK_CLOSE);
        if (close >= 0) {
          reasoning += this.pending.slice(0, close).trimEnd();
          this.pending = this.pending.slice(close + THINK_CLOSE.length);
          this.state = 'after-think';
          continue;
        }
        // Keep a possible partial tag and trailing whitespace (dropped if `</think>` follows).
        let keep = partialTagSuffix(this.pending, THINK_CLOSE);
        while (keep < this.pending.length && /\s/.test(this.pending[this.pending.length - keep - 1]!)) keep++;
        reasoning += this.pending.slice(0, this.pending.length - keep);
        this.pending = this.pending.slice(this.pending.length - keep);
        break;
      }
      if (this.state === 'after-think') {
        this.pending = this.pending.trimStart();
        if (this.pending.length === 0) break;
        this.state = 'answer';
        continue;
      }
      content += this.pending;
      this.pending = '';
      break;
    }
    return { content, reasoning };
  }

  /** The end of the output: whatever was held back. An unclosed thinking block stays thinking. */
  flush(): { content: string; reasoning: string } {
    const rest = this.pending;
    this.pending = '';
    if (this.state === 'thinking' || this.state === 'think-start') return { content: '', reasoning: rest.trim() };
    if (this.state === 'start') return { content: rest.trimStart(), reasoning: '' };
    if (this.state === 'after-think') return { content: '', reasoning: '' };
    return { content: rest, reasoning: '' };
  }
}

export function toFinishReason(reason: WebLlm.ChatCompletionFinishReason): FinishReason {
  // We never send tools, so 'tool_calls' cannot be meant; it is still a normal end.
  return reason === 'tool_calls' ? 'stop' : reason;
}

export function toUsage(usage: WebLlm.CompletionUsage): CompletionUsage {
  return {
    prompt_tokens: usage.prompt_tokens,
    completion_tokens: usage.completion_tokens,
    total_tokens: usage.total_tokens,
    extra: {
      cached_prompt_tokens: 0,
      prefilled_tokens: usage.prompt_tokens,
      dropped_messages: 0,
      time_to_first_token_s: usage.extra.time_to_first_token_s,
      prefill_tokens_per_s: usage.extra.prefill_tokens_per_s,
      decode_tokens_per_s: usage.extra.decode_tokens_per_s,
    },
  };
}

/** Usage when web-llm sent none (it always does with include_usage; kept so a stream always ends well-formed). */
export function unknownUsage(completionTokens: number): CompletionUsage {
  return {
    prompt_tokens: 0,
    completion_tokens: completionTokens,
    total_tokens: completionTokens,
    extra: {
      cached_prompt_tokens: 0,
      prefilled_tokens: 0,
      dropped_messages: 0,
      time_to_first_token_s: 0,
      prefill_tokens_per_s: 0,
      decode_tokens_per_s: 0,
    },
  };
}

/**
 * web-llm's chunk stream as ours: thinking split from the answer, empty deltas skipped, the
 * first chunk with role 'assistant', and one final chunk with finish_reason and usage.
 */
export async function* fromWebLlmStream(
  source: AsyncIterable<WebLlm.ChatCompletionChunk>,
): AsyncGenerator<ChatCompletionChunk, void, undefined> {
  const splitter = new ThinkSplitter();
  let id = '';
  let created = 0;
  let model = '';
  let roleSent = false;
  let finishReason: FinishReason | undefined;
  let usage: CompletionUsage | undefined;
  let deltas = 0;
  // web-llm's logprobs (OpenAI's shape) ride on our next chunk: its text may be held back a while.
  let pendingLogprobs: ChatCompletionTokenLogprob[] = [];

  const chunk = (
    delta: ChatCompletionChunk['choices'][0]['delta'],
    finish: FinishReason | null,
    chunkUsage?: CompletionUsage,
  ): ChatCompletionChunk => {
    if (!roleSent) {
      delta = { role: 'assistant', ...delta };
      roleSent = true;
    }
    const result: ChatCompletionChunk = {
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index: 0, delta, finish_reason: finish }],
    };
    if (pendingLogprobs.length > 0) {
      result.choices[0]!.logprobs = { content: pendingLogprobs };
      pendingLogprobs = [];
    }
    if (chunkUsage) result.usage = chunkUsage;
    return result;
  };
  const delta = (parts: { content: string; reasoning: string }): ChatCompletionChunk['choices'][0]['delta'] => ({
    ...(parts.reasoning ? { reasoning_content: parts.reasoning } : {}),
    ...(parts.content ? { content: parts.content } : {}),
  });

  for await (const item of source) {
    if (!id) {
      id = item.id;
      created = item.created;
      model = item.model;
    }
    if (item.usage) usage = toUsage(item.usage);
    const choice = item.choices[0];
    if (!choice) continue;
    if (choice.logprobs?.content) pendingLogprobs.push(...(choice.logprobs.content as ChatCompletionTokenLogprob[]));
    const text = choice.delta.content ?? '';
    if (text) {
      deltas++;
      const parts = splitter.push(text);
      if (parts.content || parts.reasoning) yield chunk(delta(parts), null);
    }
    if (choice.finish_reason) finishReason = toFinishReason(choice.finish_reason);
  }
  // A source that ended without a finish chunk was cut short (an interrupted worker stream).
  const rest = splitter.flush();
  yield chunk(delta(rest), finishReason ?? 'abort', usage ?? unknownUsage(deltas));
}


/**
 * web-llm's load progress. It reports a fraction and a text line; the byte count appears only
 * in the text ("Fetching param cache[3/50]: 1200MB fetched. 25% completed, …" while
 * downloading, "Loading model from cache[…]: 1200MB loaded. …" from its cache), so bytes are
 * approximate (MiB resolution) and 0 when the line has none.
 */
export function fromWebLlmProgress(report: WebLlm.InitProgressReport): LoadProgress {
  const match = /(\d+)MB (fetched|loaded)/.exec(report.text);
  const phase: LoadProgress['phase'] = /^Fetching/.test(report.text) ? 'download' : 'load';
  if (!match || !(report.progress > 0)) {
    return { phase, loadedBytes: 0, totalBytes: 0, text: report.text };
  }
  const loadedBytes = Number(match[1]) * 1024 * 1024;
  return {
    phase,
    loadedBytes,
    totalBytes: Math.max(loadedBytes, Math.round(loadedBytes / Math.min(1, report.progress))),
    text: report.text,
  };
}

/** e.g. 'q4f16_1' from 'Qwen3-4B-q4f16_1-MLC'. */
export function quantOfMlcModel(modelId: string): string {
  return /-(q\d+f\d+(?:_\d+)?)(?:-|$)/.exec(modelId)?.[1] ?? 'unknown';
}

/** MLC builds with f16 weights/activations (q4f16_1, q0f16) need the adapter's shader-f16. */
export function mlcModelNeedsShaderF16(modelId: string, record?: Pick<WebLlm.ModelRecord, 'required_features'>): boolean {
  return record?.required_features?.includes('shader-f16') === true || /-q\d+f16(?:_\d+)?(?:-|$)/.test(modelId);
}

/** Qwen3's hybrid releases think by default; the 2507 Instruct/Thinking releases have a fixed mode. */
export function mlcModelSupportsThinking(modelId: string): boolean {
  return /^Qwen3-/i.test(modelId) && !/-(Instruct|Thinking)-2507/i.test(modelId);
}

/** The EngineError codes and details web-llm's failures map to. */
export function classifyWebLlmError(
  error: unknown,
  phase: 'load' | 'chat',
  deviceLost: boolean,
): EngineError {
  if (error instanceof EngineError) return error;
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  const make = (code: EngineErrorCode, detail: string, text = message) =>
    new EngineError(code, text, { cause: error, detail });
  if (deviceLost || name === 'DeviceLostError') {
    return make(phase === 'load' ? 'load-failed' : 'no-model', 'device-lost', `the WebGPU device was lost: ${message}`);
  }
  if (phase === 'load') {
    if (isCodeUnavailable(error)) return make('load-failed', 'code-unavailable');
    if (name === 'WebGPUNotAvailableError' || name === 'WebGPUNotFoundError' || /compatible GPU/.test(message)) {
      return make('load-failed', 'no-adapter');
    }
    if (name === 'ShaderF16SupportError') return make('load-failed', 'no-shader-f16');
    if (name === 'FeatureSupportError') return make('load-failed', 'missing-feature');
    if (name === 'ModelNotFoundError' || name === 'MissingModelError') return make('load-failed', 'unknown-model');
    if (name === 'IntegrityError') return make('load-failed', 'integrity');
    if (/Failed to store|Network response was not ok|Failed to fetch|NetworkError|failed to fetch/i.test(message)) {
      return make('load-failed', 'fetch-failed');
    }
    if (/exceeds limit/.test(message)) return make('load-failed', 'adapter-limits');
    return make('load-failed', 'webllm');
  }
  if (name === 'ModelNotLoadedError' || name === 'WorkerEngineModelNotLoadedError') return make('no-model', 'not-loaded');
  if (name === 'ContextWindowSizeExceededError') return make('context-overflow', 'context-window');
  if (
    error instanceof Error &&
    /ConfigValueError|RangeError|MinValueError|NonNegativeError|DependencyError|MessageOrderError|SystemMessageOrderError|ContentTypeError|UnsupportedRoleError|SeedTypeError|UnsupportedFieldsError|InvalidStreamOptionsError|CustomSystemPromptError|UnsupportedTokenizerFilesError/.test(name)
  ) {
    return make('bad-request', name);
  }
  return make('worker-failed', 'webllm');
}
