// The CPU engine: our wasm runtime behind the OpenAI-shaped Engine API. Runs in-process (Node, or
// inside the engine Worker; never on a page's main thread, whose kernels could not block).
//
// One model, one KV cache. `cachedTokens` is always exactly what the cache holds, so the next
// request reuses the longest common prefix of its prompt and only prefills the rest. Generation
// is an async generator that yields to the event loop after every token (and every prefill
// batch), so interrupt() — a worker message, a timer, an AbortSignal — is seen within one token.
import { ggmlTypeName } from '../gguf/ggml-types.ts';
import { readChatTemplate, readTokenizerData } from '../gguf/metadata.ts';
import { ModelError } from '../model/errors.ts';
import { Qwen3Model } from '../model/qwen3.ts';
import { ChatPrompt } from '../tokenizer/chat-prompt.ts';
import { ChatTemplate, ChatTemplateError } from '../tokenizer/chat-template.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import type { ByteSource } from '../gguf/byte-source.ts';
import { newSnapshotId, sharedPrefix, type PromptCache } from '../storage/prompt-cache.ts';
import { Sha256 } from '../storage/sha256.ts';
import { collectCompletion, reportPromptProgress } from './completion.ts';
import { EngineError } from './errors.ts';
import { fitConversation } from './fit-context.ts';
import { GrammarCompiler, type TokenConstraint } from './grammar.ts';
import { TOOL_CALL_OPEN, ToolCallOutput, toolUse, type ToolUse } from './tool-calls.ts';
import { LogprobReporter } from './logprobs.ts';
import { MAX_DRAFT_TOKENS, PromptLookup, type LookupMode } from './prompt-lookup.ts';
import { openModelSource, type OpenedSource } from './model-source.ts';
import { normalizeRequest } from './request.ts';
import { DEFAULT_SAMPLING, Sampler, SeededRandom, type SamplingParams } from './sampler.ts';
import { StopFilter } from './stop-filter.ts';
import type {
  ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatCompletions, ChatCompletionTokenLogprob, CompletionUsage,
  Engine, FinishReason, LoadOptions, ModelInfo, ModelSpec, NormalizedRequest, ResponseFormat,
} from './types.ts';

/** Room kept free for the answer when the request sets no max_tokens (at most a quarter of the context). */
const DEFAULT_ANSWER_ROOM = 512;

interface Loaded {
  model: Qwen3Model;
  tokenizer: Tokenizer;
  template: ChatTemplate;
  source: OpenedSource;
  info: ModelInfo;
  thinkStart: number | undefined;
  thinkEnd: number | undefined;
  turnStart: number | undefined;
  /** The grammar compiler for structured output, made on the first request that asks. */
  grammar?: Promise<GrammarCompiler>;
  /** Names the file and cache layout saved caches must match (see modelKey); undefined: none kept. */
  promptCacheKey?: string;
  /** The saved snapshot holding this cache's first tokens (`tokens`), which the next save grows. */
  snapshot?: { id: string; tokens: number[] };
}

/** One generation; `stopped` is set by interrupt() or by a newer request taking the model. */
interface Job {
  stopped: boolean;
}

/** A request checked and tokenized, ready to run. */
interface PreparedRequest {
  loaded: Loaded;
  id: string;
  created: number;
  startedAt: number;
  promptTokens: number[];
  droppedMessages: number;
  sampling: SamplingParams;
  seed: number;
  maxTokens: number;
  stops: string[];
  /** The prompt ends inside an open <think> block (the template opened it). */
  startsThinking: boolean;
  /** Log-probabilities wanted: how many alternatives per token; undefined for none. */
  topLogprobs: number | undefined;
  /** Structured output: the answer is held to this format token by token. */
  responseFormat: ResponseFormat | undefined;
  /** How the answer may call tools; undefined when it has none. */
  tools: ToolUse | undefined;
  /** Report reading the prompt (progress-only chunks). */
  progress: boolean;
  /** Prompt-lookup decoding, and how drafts are made (prompt-lookup.ts); undefined for none. */
  speculative: LookupMode | undefined;
  signal: AbortSignal | undefined;
}

/** Resolves on the next macrotask: lets queued messages and timers run between tokens without setTimeout's clamping. */
const nextMacrotask: () => Promise<void> = typeof setImmediate === 'function'
  ? () => new Promise((resolve) => setImmediate(resolve))
  : (() => {
      const channel = new MessageChannel();
      const waiting: (() => void)[] = [];
      channel.port1.onmessage = () => waiting.shift()?.();
      return () => new Promise<void>((resolve) => {
        waiting.push(resolve);
        channel.port2.postMessage(0);
      });
    })();

export interface CpuEngineOptions {
  /** A Jinja chat template to use instead of the model's own (a GGUF without one, or a fixed one). */
  chatTemplate?: string;
  /**
   * Where the caches of answered prompts are kept, so that a conversation continued after a reload
   * (a new engine) does not read its prompt again; off per load with `promptCache: false`.
   */
  promptCache?: PromptCache;
}

/** Prompts shorter than this are quick to read again: their caches are not kept. */
const MIN_SAVED_TOKENS = 32;

export class CpuEngine implements Engine {
  readonly backend = 'cpu' as const;
  readonly chat: { readonly completions: ChatCompletions };
  private loaded: Loaded | undefined;
  private loading = false;
  /** Token ids whose keys and values are in the KV cache, in order. */
  private cachedTokens: number[] = [];
  private current: Job | undefined;

  constructor(private readonly options: CpuEngineOptions = {}) {
    const create = (request: ChatCompletionRequest) => this.create(request);
    this.chat = { completions: { create } as ChatCompletions };
  }

  info(): ModelInfo | undefined {
    return this.loaded?.info;
  }

  interrupt(): void {
    if (this.current) this.current.stopped = true;
  }

  async countPromptTokens(raw: ChatCompletionRequest): Promise<number> {
    try {
      return this.prepare(normalizeRequest(raw)).promptTokens.length;
    } catch (error) {
      throw engineError(error);
    }
  }

  async unload(): Promise<void> {
    this.interrupt();
    const loaded = this.loaded;
    this.loaded = undefined;
    this.cachedTokens = [];
    if (loaded) {
      loaded.model.dispose();
      void loaded.grammar?.then((g) => g.dispose(), () => {});
      await loaded.source.close();
    }
  }

  async load(spec: ModelSpec, options: LoadOptions = {}): Promise<ModelInfo> {
    if (this.loading) throw new EngineError('busy', 'a model is already loading');
    this.loading = true;
    try {
      await this.unload();
      const started = performance.now();
      const { signal, onProgress } = options;
      let source: OpenedSource | undefined;
      try {
        source = await openModelSource(spec, signal, onProgress);
        const model = await Qwen3Model.load(source.source, {
          contextLength: options.contextLength,
          kvCache: options.kvCache,
          threads: options.threads,
          build: options.build,
          addressing: options.addressing,
          signal,
          onProgress: onProgress && ((loadedBytes, totalBytes) => onProgress({ phase: 'load', loadedBytes, totalBytes })),
        });
        try {
          const loaded = this.describe(model, source, performance.now() - started);
          if (this.options.promptCache && options.promptCache !== false) loaded.promptCacheKey = await modelKey(model, source.source);
          this.loaded = loaded;
          // After the load has answered: the person reads and types meanwhile.
          setTimeout(() => loaded.tokenizer.prepare(), 0);
        } catch (error) {
          model.dispose();
          throw error;
        }
        return this.loaded.info;
      } catch (error) {
        await source?.close();
        throw loadError(error, signal);
      }
    } finally {
      this.loading = false;
    }
  }

  private describe(model: Qwen3Model, source: OpenedSource, loadMs: number): Loaded {
    const tokenizerData = readTokenizerData(model.gguf);
    const tokenizer = Tokenizer.fromData(tokenizerData);
    if (tokenizer.vocabSize !== model.config.vocabSize) {
      throw new ModelError('bad-model', `the tokenizer has ${tokenizer.vocabSize} tokens (tokenizer.ggml.tokens) but ` +
        `token_embd.weight has ${model.config.vocabSize} rows: every token needs exactly one embedding row`);
    }
    const templateSource = this.options.chatTemplate ?? readChatTemplate(model.gguf);
    const template = ChatTemplate.parse(templateSource);
    // A template that cannot render a plain exchange would fail every request: refuse the model now.
    template.render([{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: 'Hello' }]);
    const info: ModelInfo = {
      backend: 'cpu',
      name: source.name,
      quant: quantName(model),
      contextLength: model.contextLength,
      maxContextLength: model.maxContextLength,
      kvCache: model.kvCache,
      memoryBytes: model.memoryBytes,
      threads: model.kernels.threads,
      build: model.kernels.build,
      addressing: model.kernels.memory64 ? 'memory64' : 'wasm32',
      supportsThinking: template.source.includes('enable_thinking'),
      loadMs,
    };
    return {
      model, tokenizer, template, source, info,
      thinkStart: tokenizer.tokenId('<think>'),
      thinkEnd: tokenizer.tokenId('</think>'),
      turnStart: tokenizer.tokenId('<|im_start|>'),
    };
  }

  private create(raw: ChatCompletionRequest): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion> {
    try {
      const request = normalizeRequest(raw);
      const prepared = this.prepare(request);
      // A new request takes the model: a generation still running (or abandoned mid-stream) ends with 'abort'.
      this.interrupt();
      const job: Job = { stopped: false };
      this.current = job;
      const chunks = reportPromptProgress(this.generate(prepared, job), request);
      return Promise.resolve(request.stream ? chunks : collectCompletion(chunks));
    } catch (error) {
      return Promise.reject(engineError(error));
    }
  }

  /** Renders the request's prompt, dropping old turns if it does not fit. */
  private prepare(request: NormalizedRequest): PreparedRequest {
    const loaded = this.loaded;
    if (!loaded) throw new EngineError('no-model', this.loading ? 'the model is still loading' : 'no model loaded: call load() first');
    const { tokenizer, template, model } = loaded;
    const contextLength = model.contextLength;
    const answerRoom = Math.min(request.max_tokens ?? DEFAULT_ANSWER_ROOM, Math.floor(contextLength / 4));
    const prompt = new ChatPrompt(tokenizer, template, request.messages, {
      enableThinking: request.enable_thinking,
      bosToken: tokenizer.bosId === undefined ? '' : tokenizer.tokenText(tokenizer.bosId),
      eosToken: tokenizer.eosId === undefined ? '' : tokenizer.tokenText(tokenizer.eosId),
      specialTokensInContent: request.special_tokens_in_content,
      continueFinalMessage: request.continue_final_message,
      tools: request.tools,
    });
    const fitted = fitConversation(request.messages, prompt, contextLength, answerRoom);
    const tools = toolUse(request);
    if ((request.response_format || tools?.mode === 'forced') && promptOpensThinking(fitted.tokens, loaded)) {
      throw new EngineError('bad-request', "this model's chat template starts every answer with thinking; structured output and required tool calls need an answer that starts at once");
    }
    // A required call: the answer starts inside <tool_call> (the grammar then holds its body).
    const promptTokens = tools?.mode === 'forced'
      ? [...fitted.tokens, ...tokenizer.encode(`${TOOL_CALL_OPEN}\n`, { parseSpecial: true, addSpecial: false })]
      : fitted.tokens;
    if (promptTokens.length >= contextLength) throw new EngineError('context-overflow', `the prompt needs ${promptTokens.length} of the ${contextLength} tokens of context`);
    const stops = request.stop;
    return {
      loaded,
      id: `chatcmpl-${randomId()}`,
      created: Math.floor(Date.now() / 1000),
      startedAt: performance.now(),
      promptTokens,
      droppedMessages: fitted.droppedMessages,
      sampling: {
        temperature: request.temperature ?? DEFAULT_SAMPLING.temperature,
        topK: request.top_k ?? DEFAULT_SAMPLING.topK,
        topP: request.top_p ?? DEFAULT_SAMPLING.topP,
        minP: request.min_p ?? DEFAULT_SAMPLING.minP,
        presencePenalty: request.presence_penalty ?? DEFAULT_SAMPLING.presencePenalty,
        frequencyPenalty: request.frequency_penalty ?? DEFAULT_SAMPLING.frequencyPenalty,
        repetitionPenalty: request.repetition_penalty ?? DEFAULT_SAMPLING.repetitionPenalty,
      },
      seed: request.seed ?? Math.floor(Math.random() * 2 ** 32),
      maxTokens: request.max_tokens ?? Infinity,
      stops,
      startsThinking: promptOpensThinking(fitted.tokens, loaded),
      topLogprobs: request.logprobs ? request.top_logprobs ?? 0 : undefined,
      responseFormat: request.response_format,
      tools,
      progress: request.return_progress || request.onProgress !== undefined,
      // Asked for: every guess is drafted. Default: drafts where they pay, with the kernels where a
      // pass of a few tokens costs well under that many decode steps (relaxed SIMD).
      speculative: request.speculative === 'prompt-lookup' ? 'always'
        : request.speculative === undefined && model.kernels.build === 'relaxed' ? 'when-it-pays' : undefined,
      signal: request.signal,
    };
  }

  /** The generation, every failure in it surfacing as an EngineError. */
  private async *generate(request: PreparedRequest, job: Job): AsyncGenerator<ChatCompletionChunk> {
    try {
      yield* this.run(request, job);
    } catch (error) {
      throw engineError(error);
    }
  }

  private async *run(request: PreparedRequest, job: Job): AsyncGenerator<ChatCompletionChunk> {
    const { loaded } = request;
    const { model, tokenizer } = loaded;
    const stopped = () => job.stopped || this.current !== job || this.loaded !== loaded || request.signal?.aborted === true;
    // Logprobs of the tokens generated since the last chunk ride on the next one.
    const logprobs = request.topLogprobs === undefined ? undefined : new LogprobReporter(tokenizer, request.topLogprobs);
    let pendingLogprobs: ChatCompletionTokenLogprob[] = [];
    const chunk = (delta: ChatCompletionChunk['choices'][0]['delta'], finish: FinishReason | null = null): ChatCompletionChunk => {
      const choice: ChatCompletionChunk['choices'][0] = { index: 0, delta, finish_reason: finish };
      if (logprobs && pendingLogprobs.length > 0) {
        choice.logprobs = { content: pendingLogprobs };
        pendingLogprobs = [];
      }
      return { id: request.id, object: 'chat.completion.chunk', created: request.created, model: loaded.info.name, choices: [choice] };
    };
    let constraint: TokenConstraint | undefined;
    try {
      yield chunk({ role: 'assistant', content: '' });
      // Reuse the cached prefix; at least the last prompt token runs, for its logits.
      const prompt = request.promptTokens;
      let reused = stopped() ? 0 : Math.min(sharedPrefix(this.cachedTokens, prompt), prompt.length - 1);
      if (!stopped()) this.truncateCache(reused);
      if (!stopped()) reused = await this.restoreSaved(loaded, prompt, reused, stopped);
      let finish: FinishReason = 'abort';
      let logits: Float32Array | undefined;
      let prefilled = 0;
      const prefillStart = performance.now();
      const progress = (processed: number): ChatCompletionChunk => ({
        ...chunk({}),
        prompt_progress: { total: prompt.length, cache: reused, processed, time_ms: performance.now() - prefillStart },
      });
      if (!stopped()) {
        if (request.progress) yield progress(reused);
        const steps = model.forwardSteps(prompt.slice(reused), reused, false);
        for (let step = steps.next(); ; step = steps.next()) {
          const cached = step.done ? prompt.length : step.value;
          this.cachedTokens.push(...prompt.slice(this.cachedTokens.length, cached));
          prefilled = cached - reused;
          if (request.progress) yield progress(cached);
          if (step.done) { logits = step.value; break; }
          await nextMacrotask();
          if (stopped()) break;
        }
      }
      const prefillSeconds = (performance.now() - prefillStart) / 1000;
      const sampler = new Sampler(request.sampling, new SeededRandom(request.seed));
      const format = request.responseFormat;
      const tools = request.tools;
      if ((format || tools?.mode === 'forced') && logits && !stopped()) {
        const grammar = await (loaded.grammar ??= GrammarCompiler.create(tokenizer, model.config.vocabSize));
        constraint = format ? await grammar.constraint(format) : await grammar.toolCallConstraint(tools!.offered);
      }
      const text = new OutputText(tokenizer, loaded, request.stops, request.startsThinking);
      const calls = tools ? new ToolCallOutput(tools) : undefined;
      const toolCallToken = tools?.mode === 'none' ? tokenizer.tokenId(TOOL_CALL_OPEN) : undefined;
      let completionTokens = 0;
      let firstTokenAt = 0;
      // Tokens whose keys and values are in the cache for good (the draft's are there on trial).
      let position = model.position;
      // Prompt-lookup decoding: the prompt and the answer so far, where drafts are looked up; the
      // draft in the cache with the logits after each of its tokens, used while the sampler agrees.
      const lookup = request.speculative ? new PromptLookup(request.speculative) : undefined;
      const context = lookup ? prompt.slice() : [];
      let draft: { tokens: number[]; logits: Float32Array[]; checked: number } | undefined;
      let draftTokens = 0;
      let acceptedDraftTokens = 0;
      const decodeStart = performance.now();
      while (logits && !stopped()) {
        checkLogits(logits);
        // The grammar (structured output): a complete answer ends here, without another step.
        if (constraint && !(await constraint.next())) { finish = 'stop'; break; }
        // The sampler's penalties and the grammar change logits in place; logprobs are of the
        // model's own distribution.
        const raw = logprobs ? logits.slice() : logits;
        constraint?.mask(logits);
        if (toolCallToken !== undefined) logits[toolCallToken] = -Infinity; // tool_choice 'none'
        const token = sampler.sample(logits);
        sampler.accept(token);
        firstTokenAt ||= performance.now();
        if (tokenizer.eogIds.has(token)) { finish = 'stop'; break; }
        constraint?.accept(token);
        if (logprobs) pendingLogprobs.push(logprobs.entry(raw, token));
        completionTokens++;
        const delta = calls ? calls.take(text.push(token)) : text.push(token);
        if (delta) yield chunk(delta);
        if (text.stopped) { finish = 'stop'; break; }
        if (calls?.done) { finish = 'stop'; break; }
        if (completionTokens >= request.maxTokens || position >= model.contextLength) { finish = 'length'; break; }
        await nextMacrotask(); // interrupt() and worker messages get in here
        if (stopped()) break;
        position++;
        if (draft?.tokens[draft.checked] === token) {
          // The sampler picked the drafted token: its logits were computed with the draft.
          logits = draft.logits[draft.checked++]!;
          acceptedDraftTokens++;
          if (draft.checked === draft.tokens.length) {
            lookup!.record(draft.tokens.length, draft.checked);
            draft = undefined;
          }
          context.push(token);
          continue;
        }
        if (draft) {
          // Refused: the draft's rest leaves the cache; `token` runs below as any other.
          lookup!.record(draft.tokens.length, draft.checked);
          this.truncateCache(position - 1);
          draft = undefined;
        }
        context.push(token);
        // Room for a draft: the context, the answer's token budget, one pass's exact size.
        const guess = lookup?.draft(context, Math.min(MAX_DRAFT_TOKENS, model.contextLength - position, request.maxTokens - completionTokens - 1)) ?? [];
        const passStart = performance.now();
        if (guess.length === 0) {
          logits = model.decode(token);
          lookup?.timePass(1, performance.now() - passStart);
          this.cachedTokens.push(token);
          continue;
        }
        // The token and its draft in one pass: row 0 predicts after the token, row i after draft token i.
        const rows = model.forward([token, ...guess], position - 1, true);
        lookup!.timePass(1 + guess.length, performance.now() - passStart);
        const vocab = model.config.vocabSize;
        this.cachedTokens.push(token, ...guess);
        logits = rows.subarray(0, vocab);
        draft = { tokens: guess, logits: guess.map((_, i) => rows.subarray((i + 1) * vocab, (i + 2) * vocab)), checked: 0 };
        draftTokens += guess.length;
      }
      // A draft the answer did not reach leaves the cache: it holds the answer, as without drafts.
      if (draft && this.current === job && this.loaded === loaded) this.truncateCache(position);
      const decodeSeconds = (performance.now() - decodeStart) / 1000;
      const rest = calls ? calls.end(text.end()) : text.end();
      if (rest) yield chunk(rest);
      if (calls?.made && finish === 'stop') finish = 'tool_calls';
      const usage: CompletionUsage = {
        prompt_tokens: prompt.length,
        completion_tokens: completionTokens,
        total_tokens: prompt.length + completionTokens,
        extra: {
          cached_prompt_tokens: reused,
          prefilled_tokens: prefilled,
          dropped_messages: request.droppedMessages,
          time_to_first_token_s: firstTokenAt ? (firstTokenAt - request.startedAt) / 1000 : 0,
          prefill_tokens_per_s: prefillSeconds > 0 ? prefilled / prefillSeconds : 0,
          decode_tokens_per_s: decodeSeconds > 0 && completionTokens > 1 ? (completionTokens - 1) / decodeSeconds : 0,
          draft_tokens: draftTokens,
          accepted_draft_tokens: acceptedDraftTokens,
        },
      };
      yield { ...chunk({}, finish), usage };
    } finally {
      constraint?.dispose();
      // Kept however the answer ended (a reader may stop pulling at the final chunk).
      if (this.current === job) this.keepCache(loaded);
      if (this.current === job) this.current = undefined;
    }
  }

  /**
   * Puts back the saved cache sharing the longest prefix with `prompt` when it is longer than what
   * the cache holds (`reused`); returns how many tokens the cache now holds of the prompt.
   */
  private async restoreSaved(loaded: Loaded, prompt: readonly number[], reused: number, stopped: () => boolean): Promise<number> {
    const store = this.options.promptCache;
    const key = loaded.promptCacheKey;
    if (!store || !key || prompt.length - reused < MIN_SAVED_TOKENS) return reused;
    const found = await store.find(key, prompt).catch(() => undefined);
    // At least the last prompt token runs, for its logits.
    const length = Math.min(found?.shared ?? 0, prompt.length - 1);
    if (!found || length <= reused) return reused;
    const saved = await store.read(found.meta).catch(() => undefined);
    // While it read, a newer request may have taken the model: the cache is its now.
    if (!saved || stopped()) return reused;
    loaded.model.restoreCache(saved.rows, length, saved.partEnds);
    this.cachedTokens = prompt.slice(0, length);
    // Put back whole, the snapshot grows with this conversation; cut, the next save makes a new one.
    loaded.snapshot = length === found.meta.tokens.length ? { id: found.meta.id, tokens: this.cachedTokens.slice() } : undefined;
    return length;
  }

  /** Saves the cache as it stands after an answer (copied now, written in the background). */
  private keepCache(loaded: Loaded): void {
    const store = this.options.promptCache;
    const key = loaded.promptCacheKey;
    if (!store || !key || this.loaded !== loaded || this.cachedTokens.length < MIN_SAVED_TOKENS) return;
    // A cache larger than the whole budget is kept as far as the budget goes: its start is still
    // most of a long conversation's reading.
    const length = Math.min(this.cachedTokens.length, Math.floor(store.maxBytes / loaded.model.cacheBytesPerToken));
    if (length < MIN_SAVED_TOKENS) return;
    const tokens = this.cachedTokens.slice(0, length);
    // Not kept (storage full, or gone): the next visit reads the prompt.
    const lost = () => {
      if (loaded.snapshot?.tokens === tokens) loaded.snapshot = undefined;
    };
    const grown = loaded.snapshot;
    if (grown && grown.tokens.length <= length && sharedPrefix(grown.tokens, tokens) === grown.tokens.length) {
      // The conversation went on from what was saved: only its new rows are copied and written.
      const rows = loaded.model.saveCache(grown.tokens.length, length);
      loaded.snapshot = { id: grown.id, tokens };
      void store.extend(grown.id, tokens, rows).then((kept) => kept || lost(), lost);
      return;
    }
    const rows = loaded.model.saveCache(0, length);
    const id = newSnapshotId();
    loaded.snapshot = { id, tokens };
    void store.save(key, tokens, rows, id).then((kept) => kept || lost(), lost);
  }

  /** Forgets cached positions from `length` on (the cache and `cachedTokens` together). */
  private truncateCache(length: number): void {
    const model = this.loaded!.model;
    model.truncate(Math.min(length, model.position));
    this.cachedTokens.length = model.position;
  }
}

/**
 * Turns generated token ids into deltas: `<think>`…`</think>` text goes to reasoning_content, the
 * rest to content; each side is cut at stop strings, and UTF-8 characters split across tokens are
 * held until complete.
 */
export class OutputText {
  private readonly decoder;
  private readonly reasoningStops: StopFilter;
  private readonly contentStops: StopFilter;
  private thinking: boolean;
  /** Whitespace right after a think tag is layout, not text. */
  private trimNext = false;

  constructor(
    tokenizer: Tokenizer,
    private readonly ids: { thinkStart?: number; thinkEnd?: number },
    stops: readonly string[],
    startsThinking: boolean,
  ) {
    this.decoder = tokenizer.createStreamDecoder();
    this.reasoningStops = new StopFilter(stops);
    this.contentStops = new StopFilter(stops);
    this.thinking = startsThinking;
    this.trimNext = startsThinking;
  }

  get stopped(): boolean {
    return this.reasoningStops.stopped || this.contentStops.stopped;
  }

  push(token: number): ChatCompletionChunk['choices'][0]['delta'] | undefined {
    if (token === this.ids.thinkStart || token === this.ids.thinkEnd) {
      const held = this.end();
      this.thinking = token === this.ids.thinkStart;
      this.trimNext = true;
      return held;
    }
    let text = this.decoder.push(token);
    if (this.trimNext) {
      text = text.trimStart();
      if (text) this.trimNext = false;
    }
    return this.delta(this.thinking ? this.reasoningStops.push(text) : this.contentStops.push(text));
  }

  /** Generation ended (or the channel switches): held text that turned out not to be a stop string. */
  end(): ChatCompletionChunk['choices'][0]['delta'] | undefined {
    // A character cut off by the end of generation is dropped, never shown broken.
    const tail = this.decoder.flush().replace(/\uFFFD$/, '');
    const filter = this.thinking ? this.reasoningStops : this.contentStops;
    return this.delta(filter.push(tail) + filter.flush());
  }

  private delta(text: string): ChatCompletionChunk['choices'][0]['delta'] | undefined {
    if (!text) return undefined;
    return this.thinking ? { reasoning_content: text } : { content: text };
  }
}


/** True when the last turn of the prompt opened <think> and did not close it (the template starts the reasoning). */
function promptOpensThinking(tokens: readonly number[], ids: Pick<Loaded, 'thinkStart' | 'thinkEnd' | 'turnStart'>): boolean {
  for (let i = tokens.length - 1; i >= 0 && tokens[i] !== ids.turnStart; i--) {
    if (tokens[i] === ids.thinkEnd) return false;
    if (tokens[i] === ids.thinkStart) return true;
  }
  return false;
}

/** NaN or infinite logits mean corrupt weights: say so instead of sampling garbage. */
function checkLogits(logits: Float32Array): void {
  let poison = 0;
  for (let i = 0; i < logits.length; i++) poison += logits[i] * 0; // NaN as soon as one value is not finite
  if (poison !== 0) {
    throw new EngineError('bad-model', 'the model computed invalid numbers (NaN or infinite logits): its weights are corrupt. ' +
      'Download the model again, or choose another file.');
  }
}

/** Every failure as an EngineError, so callers never see an untyped error. */
function engineError(error: unknown): EngineError {
  if (error instanceof EngineError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof ChatTemplateError) {
    // The template refusing the conversation (e.g. no user message) is the request's problem; the rest the model file's.
    if (error.code === 'refused') return new EngineError('bad-request', `the model's chat template refused these messages: ${message}`, { cause: error, detail: error.code });
    return new EngineError(error.code, `the model's chat template: ${message}`, { cause: error, detail: error.code });
  }
  if (error instanceof ModelError) {
    return new EngineError(error.code === 'context-overflow' ? 'context-overflow' : 'bad-model', message, { cause: error, detail: error.code });
  }
  return new EngineError('internal', `the engine failed unexpectedly: ${message}`, { cause: error });
}

/**
 * What a saved cache must match to be used: the file (its size, tensor layout and samples of its
 * weights), the cache type and the kernel build (whose rounding the rows carry).
 */
async function modelKey(model: Qwen3Model, source: ByteSource): Promise<string> {
  const hash = new Sha256();
  const layout = model.gguf.tensors.map((t) => `${t.name}:${t.type}:${t.dims.join('x')}@${t.offset}`).join(',');
  hash.update(new TextEncoder().encode(`${source.size}|${model.kvCache}|${model.kernels.build}|${layout}`));
  const sample = new Uint8Array(4096);
  for (let i = 1; i <= 8; i++) {
    const offset = Math.floor((source.size - sample.length) * (i / 9));
    await source.readInto(offset, sample);
    hash.update(sample);
  }
  return hash.hex();
}

/** llama_ftype names (llama.h) for general.file_type. */
const FILE_TYPE_NAMES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 7: 'Q8_0', 8: 'Q5_0', 9: 'Q5_1', 10: 'Q2_K', 11: 'Q3_K_S', 12: 'Q3_K_M',
  13: 'Q3_K_L', 14: 'Q4_K_S', 15: 'Q4_K_M', 16: 'Q5_K_S', 17: 'Q5_K_M', 18: 'Q6_K', 32: 'BF16',
};

/** The file's declared quantization, else the tensor type holding the most bytes. */
function quantName(model: Qwen3Model): string {
  const declared = model.config.fileType === undefined ? undefined : FILE_TYPE_NAMES[model.config.fileType];
  if (declared) return declared;
  const bytesByType = new Map<number, number>();
  for (const t of model.gguf.tensors) bytesByType.set(t.type, (bytesByType.get(t.type) ?? 0) + t.byteSize);
  const [dominant] = [...bytesByType].sort((a, b) => b[1] - a[1])[0];
  return ggmlTypeName(dominant);
}

function loadError(error: unknown, signal: AbortSignal | undefined): Error {
  if (error instanceof EngineError) return error;
  if (signal?.aborted) return new EngineError('aborted', 'loading the model was cancelled', { cause: error });
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return new EngineError('load-failed', typeof message === 'string' ? message : error == null ? 'the browser failed without saying why' : String(error),
    { cause: error, detail: typeof code === 'string' ? code : undefined });
}

function randomId(): string {
  return Math.floor(Math.random() * 2 ** 48).toString(36);
}
