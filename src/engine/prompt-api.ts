// Chrome's built-in Prompt API (the `LanguageModel` global: availability(), create(), sessions
// with prompt(), promptStreaming(), append(), clone(), destroy(), measureInputUsage()), answered
// by this project's engine, so a page written for Chrome's built-in model runs on Qwen3 in any
// browser. installLanguageModel() puts it on globalThis where the browser has no usable one.
//
// Shape and errors as Chrome documents them: prompts are text or { role, content } messages
// (content text or [{ type: 'text', value }]); promptStreaming() gives a ReadableStream of text
// pieces; responseConstraint is a JSON Schema (held by the engine's structured output); failures
// are DOMExceptions (AbortError, InvalidStateError after destroy(), QuotaExceededError when the
// input does not fit, NotSupportedError for what this model cannot do).
import { EngineError } from './errors.ts';
import type { ChatCompletionRequest, ChatMessage, Engine, LoadOptions, LoadProgress, ModelSpec } from './types.ts';

export type Availability = 'unavailable' | 'downloadable' | 'downloading' | 'available';

export interface LanguageModelMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | { type: 'text'; value: string }[];
  /** Chrome's prefix: the assistant message is the start of the answer, to be continued. */
  prefix?: boolean;
}
export type LanguageModelPrompt = string | LanguageModelMessage[];

export interface LanguageModelCreateOptions {
  initialPrompts?: LanguageModelMessage[];
  temperature?: number;
  topK?: number;
  signal?: AbortSignal;
  /** Called with an EventTarget that fires 'downloadprogress' (loaded: 0–1) while the model loads. */
  monitor?: (target: EventTarget) => void;
  expectedInputs?: { type: string; languages?: string[] }[];
  expectedOutputs?: { type: string; languages?: string[] }[];
}

export interface LanguageModelPromptOptions {
  signal?: AbortSignal;
  /** A JSON Schema the answer must match. */
  responseConstraint?: Record<string, unknown>;
  omitResponseConstraintInput?: boolean;
}

export interface LanguageModelParams {
  defaultTopK: number;
  maxTopK: number;
  defaultTemperature: number;
  maxTemperature: number;
}

export interface LanguageModelSession extends EventTarget {
  readonly inputUsage: number;
  readonly inputQuota: number;
  readonly topK: number;
  readonly temperature: number;
  prompt(input: LanguageModelPrompt, options?: LanguageModelPromptOptions): Promise<string>;
  promptStreaming(input: LanguageModelPrompt, options?: LanguageModelPromptOptions): ReadableStream<string>;
  append(input: LanguageModelPrompt, options?: { signal?: AbortSignal }): Promise<void>;
  measureInputUsage(input: LanguageModelPrompt, options?: LanguageModelPromptOptions): Promise<number>;
  clone(options?: { signal?: AbortSignal }): Promise<LanguageModelSession>;
  destroy(): void;
}

export interface LanguageModelStatic {
  availability(options?: Omit<LanguageModelCreateOptions, 'signal' | 'monitor' | 'initialPrompts'>): Promise<Availability>;
  params(): Promise<LanguageModelParams>;
  create(options?: LanguageModelCreateOptions): Promise<LanguageModelSession>;
}

export interface LanguageModelConfig {
  /** The engine sessions run on (its model loads on the first create()). */
  engine: Engine;
  /** The model to load. */
  model: ModelSpec;
  loadOptions?: Omit<LoadOptions, 'signal' | 'onProgress'>;
  /** Whether the model is on this device already (e.g. in the model store); default: loaded only. */
  isStored?: () => Promise<boolean>;
  /** Longest answer in tokens (Chrome's API has no such option; default: until the context is full). */
  maxAnswerTokens?: number;
}

const DEFAULT_TOP_K = 20;
const MAX_TOP_K = 128;
const DEFAULT_TEMPERATURE = 0.7;
const MAX_TEMPERATURE = 2;

const domError = (name: string, message: string) => new DOMException(message, name);

/** Our typed errors as the DOMExceptions Chrome's API throws. */
function asDomException(error: unknown): unknown {
  if (error instanceof DOMException) return error;
  if (!(error instanceof EngineError)) return error;
  switch (error.code) {
    case 'context-overflow': return domError('QuotaExceededError', error.message);
    case 'aborted': return domError('AbortError', error.message);
    case 'unsupported': return domError('NotSupportedError', error.message);
    case 'bad-request': return domError('SyntaxError', error.message);
    default: return domError('OperationError', error.message);
  }
}

function toMessages(input: LanguageModelPrompt): ChatMessage[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  if (!Array.isArray(input)) throw new TypeError('a prompt is a string or an array of { role, content } messages');
  return input.map((message) => {
    if (!['system', 'user', 'assistant'].includes(message?.role)) throw new TypeError(`unknown role ${JSON.stringify(message?.role)}`);
    const content = typeof message.content === 'string'
      ? message.content
      : message.content.map((part) => {
        if (part.type !== 'text') throw domError('NotSupportedError', `this model reads text only, not ${part.type}`);
        return part.value;
      }).join('\n');
    return { role: message.role, content };
  });
}

export function createLanguageModel(config: LanguageModelConfig): LanguageModelStatic {
  let loading: Promise<void> | undefined;
  let downloading = false;

  async function ensureLoaded(monitor: EventTarget | undefined, signal: AbortSignal | undefined): Promise<void> {
    if (config.engine.info()) return;
    loading ??= (async () => {
      downloading = true;
      try {
        await config.engine.load(config.model, {
          ...config.loadOptions,
          onProgress: (progress: LoadProgress) => {
            const loaded = progress.totalBytes > 0 ? Math.min(1, progress.loadedBytes / progress.totalBytes) : 0;
            monitor?.dispatchEvent(Object.assign(new Event('downloadprogress'), { loaded, total: 1 }));
          },
        });
      } finally {
        downloading = false;
        loading = undefined;
      }
    })();
    const aborted = signal && new Promise<never>((_, reject) => {
      if (signal.aborted) reject(domError('AbortError', 'create() was aborted'));
      signal.addEventListener('abort', () => reject(domError('AbortError', 'create() was aborted')), { once: true });
    });
    try {
      await (aborted ? Promise.race([loading, aborted]) : loading);
    } catch (error) {
      throw asDomException(error);
    }
  }

  const api: LanguageModelStatic = {
    async availability() {
      if (config.engine.info()) return 'available';
      if (downloading) return 'downloading';
      if (await config.isStored?.().catch(() => false)) return 'available';
      return 'downloadable';
    },

    async params() {
      return { defaultTopK: DEFAULT_TOP_K, maxTopK: MAX_TOP_K, defaultTemperature: DEFAULT_TEMPERATURE, maxTemperature: MAX_TEMPERATURE };
    },

    async create(options = {}) {
      options.signal?.throwIfAborted();
      for (const expected of [...(options.expectedInputs ?? []), ...(options.expectedOutputs ?? [])]) {
        if (expected.type !== 'text') throw domError('NotSupportedError', `this model reads and writes text only, not ${expected.type}`);
      }
      const temperature = options.temperature ?? DEFAULT_TEMPERATURE;
      const topK = options.topK ?? DEFAULT_TOP_K;
      if (!(temperature >= 0 && temperature <= MAX_TEMPERATURE)) throw new RangeError(`temperature must be in [0, ${MAX_TEMPERATURE}]`);
      if (!(Number.isInteger(topK) && topK >= 1 && topK <= MAX_TOP_K)) throw new RangeError(`topK must be an integer in [1, ${MAX_TOP_K}]`);
      const initial = toMessages(options.initialPrompts ?? []);
      if (initial.some((m, i) => m.role === 'system' && i > 0)) throw new TypeError('a system prompt must come first in initialPrompts');
      let monitor: EventTarget | undefined;
      if (options.monitor) {
        monitor = new EventTarget();
        options.monitor(monitor);
      }
      await ensureLoaded(monitor, options.signal);
      const session = new Session(config.engine, initial, temperature, topK, config.maxAnswerTokens);
      if (initial.length > 0) await session.refreshUsage();
      return session;
    },
  };
  return api;
}

class Session extends EventTarget implements LanguageModelSession {
  inputUsage = 0;
  readonly inputQuota: number;
  private destroyed = false;
  private readonly running = new Set<AbortController>();

  constructor(
    private readonly engine: Engine,
    private readonly history: ChatMessage[],
    readonly temperature: number,
    readonly topK: number,
    private readonly maxAnswerTokens: number | undefined,
  ) {
    super();
    this.inputQuota = engine.info()?.contextLength ?? 0;
  }

  async prompt(input: LanguageModelPrompt, options: LanguageModelPromptOptions = {}): Promise<string> {
    let text = '';
    const reader = this.promptStreaming(input, options).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return text;
      text += value;
    }
  }

  promptStreaming(input: LanguageModelPrompt, options: LanguageModelPromptOptions = {}): ReadableStream<string> {
    this.live();
    const added = toMessages(input);
    const request = this.request(added, options);
    const controller = new AbortController();
    const forward = () => controller.abort();
    options.signal?.addEventListener('abort', forward, { once: true });
    this.running.add(controller);
    let answer = '';
    let iterator: AsyncIterator<{ choices: { delta: { content?: string } }[] }> | undefined;
    const finish = () => {
      this.running.delete(controller);
      options.signal?.removeEventListener('abort', forward);
    };
    return new ReadableStream<string>({
      start: async () => {
        if (options.signal?.aborted) throw domError('AbortError', 'the prompt was aborted');
      },
      pull: async (stream) => {
        const abortError = () => domError('AbortError', this.destroyed ? 'the session was destroyed' : 'the prompt was aborted');
        try {
          if (controller.signal.aborted) throw abortError();
          iterator ??= (await this.engine.chat.completions.create({ ...request, stream: true, signal: controller.signal }))[Symbol.asyncIterator]();
          for (;;) {
            const next = await iterator.next();
            if (controller.signal.aborted) throw abortError();
            if (next.done) {
              // The turn is part of the session only once the whole answer is there; an answer to
              // an assistant prefix continues that message.
              this.history.push(...added);
              const last = this.history[this.history.length - 1]!;
              if (last.role === 'assistant') last.content += answer;
              else this.history.push({ role: 'assistant', content: answer });
              finish();
              await this.refreshUsage().catch(() => {});
              stream.close();
              return;
            }
            const piece = next.value.choices[0]?.delta.content;
            if (piece) {
              answer += piece;
              stream.enqueue(piece);
              return;
            }
          }
        } catch (error) {
          finish();
          throw controller.signal.aborted ? abortError() : asDomException(error);
        }
      },
      cancel: () => {
        controller.abort();
        finish();
      },
    });
  }

  async append(input: LanguageModelPrompt, options: { signal?: AbortSignal } = {}): Promise<void> {
    this.live();
    options.signal?.throwIfAborted();
    const added = toMessages(input);
    const usage = await this.count([...this.history, ...added]);
    if (usage > this.inputQuota) throw domError('QuotaExceededError', `the session would need ${usage} of its ${this.inputQuota} tokens`);
    this.history.push(...added);
    this.inputUsage = usage;
  }

  async measureInputUsage(input: LanguageModelPrompt): Promise<number> {
    this.live();
    return (await this.count([...this.history, ...toMessages(input)])) - this.inputUsage;
  }

  async clone(options: { signal?: AbortSignal } = {}): Promise<LanguageModelSession> {
    this.live();
    options.signal?.throwIfAborted();
    const copy = new Session(this.engine, this.history.map((m) => ({ ...m })), this.temperature, this.topK, this.maxAnswerTokens);
    copy.inputUsage = this.inputUsage;
    return copy;
  }

  destroy(): void {
    this.destroyed = true;
    for (const controller of this.running) controller.abort();
    this.running.clear();
  }

  /** Tokens the history takes now (the prompt the next turn builds on). */
  async refreshUsage(): Promise<void> {
    this.inputUsage = this.history.length > 0 ? await this.count(this.history) : 0;
  }

  private async count(messages: ChatMessage[]): Promise<number> {
    if (!this.engine.countPromptTokens) throw domError('NotSupportedError', 'this engine cannot measure input');
    try {
      return await this.engine.countPromptTokens({ messages, max_tokens: 1 });
    } catch (error) {
      throw asDomException(error);
    }
  }

  private request(added: ChatMessage[], options: LanguageModelPromptOptions): ChatCompletionRequest {
    const request: ChatCompletionRequest = {
      messages: [...this.history, ...added],
      temperature: this.temperature,
      top_k: this.topK,
    };
    if (this.maxAnswerTokens !== undefined) request.max_tokens = this.maxAnswerTokens;
    const last = added[added.length - 1];
    // An assistant message last (Chrome's prefix): the answer continues it.
    if (last?.role === 'assistant') request.continue_final_message = true;
    if (options.responseConstraint) {
      if (options.responseConstraint instanceof RegExp) throw domError('NotSupportedError', 'regular-expression constraints are not supported; give a JSON Schema');
      request.response_format = { type: 'json_schema', json_schema: { name: 'response', schema: options.responseConstraint, strict: true } };
    }
    return request;
  }

  private live(): void {
    if (this.destroyed) throw domError('InvalidStateError', 'the session was destroyed');
  }
}

/**
 * Makes globalThis.LanguageModel this engine's where the browser has none, or has one that says
 * it is 'unavailable' (Chromium ships the API without a model on most devices); `replace: true`
 * puts ours there anyway. Resolves to the LanguageModel now in place.
 */
export async function installLanguageModel(config: LanguageModelConfig & { replace?: boolean }): Promise<LanguageModelStatic> {
  const scope = globalThis as { LanguageModel?: LanguageModelStatic };
  const builtIn = scope.LanguageModel;
  let keep = builtIn !== undefined && !config.replace;
  if (keep) {
    try {
      keep = (await builtIn!.availability()) !== 'unavailable';
    } catch {
      keep = false;
    }
  }
  if (!keep) {
    const ours = createLanguageModel(config);
    // Chromium defines LanguageModel as a class on the global: replace it as a plain property.
    Object.defineProperty(scope, 'LanguageModel', { value: ours, writable: true, configurable: true, enumerable: false });
  }
  return scope.LanguageModel!;
}
