// The Engine API: what the UI and any embedding page talk to. Shaped like OpenAI's chat
// completions and WebLLM's engine (snake_case wire fields, `create()` narrowed by `stream`), so
// code written for either ports over. Two implementations share it: the CPU engine (our wasm
// runtime, in-process in Node or in a Worker through comlink) and the optional WebGPU engine
// (@mlc-ai/web-llm).
import type { KvCacheType } from '../model/kernels.ts';
import type { KernelBuild } from '../model/kernel-platform.ts';
import type { Addressing } from '../model/qwen3.ts';
import type { DownloadRetry } from '../storage/download.ts';

/** Where a model comes from. */
export type ModelSpec =
  /** Any HTTP(S) GGUF URL (Hugging Face `resolve/main`, or a local server): cached in IndexedDB on first load. */
  | { kind: 'url'; url: string; /** Keep a copy in IndexedDB (default true in the browser). */ cache?: boolean }
  /** A model already downloaded into IndexedDB (its storage id). */
  | { kind: 'cached'; id: string }
  /** A local file the user picked or dropped; read in place, not copied. */
  | { kind: 'blob'; blob: Blob; name?: string }
  /** A file path (Node only: tests, CLI, benchmarks). */
  | { kind: 'path'; path: string }
  /** A web-llm model id (WebGPU engine only), e.g. `Qwen3-4B-q4f16_1-MLC`. */
  | { kind: 'mlc'; modelId: string };

export type Backend = 'cpu' | 'webgpu';

export interface LoadProgress {
  /** 'download': bytes arriving from the network into storage; 'load': bytes placed into (wasm or GPU) memory. */
  phase: 'download' | 'load';
  loadedBytes: number;
  totalBytes: number;
  /** Download rate, bytes per second (download phase). */
  bytesPerSecond?: number;
  /** Seconds left at the current rate (download phase). */
  etaSeconds?: number;
  /** A human-readable line (web-llm reports text only). */
  text?: string;
  /** Download phase: set while waiting to retry after a failed attempt. */
  retry?: DownloadRetry;
}

export interface LoadOptions {
  onProgress?: (progress: LoadProgress) => void;
  /**
   * KV cache size in tokens: default the smallest of 8,192, the model's trained context and what
   * fits in memory; `info().maxContextLength` is the most a load can ask for.
   */
  contextLength?: number;
  /**
   * How the KV cache holds keys and values (CPU engine): 'f16' (default) or 'q8_0', half the
   * memory (twice the context in the same room), as llama.cpp's `--cache-type-k/v q8_0`.
   */
  kvCache?: KvCacheType;
  /**
   * Use and keep the caches of answered prompts (CPU engine with a store: OPFS in the worker), so a
   * conversation continued after a reload is not read again from the start. Default true.
   */
  promptCache?: boolean;
  /** Kernel threads (CPU engine; default: the machine's cores when cross-origin isolated, else 1). */
  threads?: number;
  /** Kernel build (CPU engine): 'auto' (default) picks relaxed SIMD where it works, else SIMD128. */
  build?: 'auto' | KernelBuild;
  /**
   * Memory addressing (CPU engine): 'auto' (default) runs wasm32 where the model and its context fit
   * in 4 GiB and the memory64 kernels (up to 16 GiB) where they do not and the browser has memory64.
   */
  addressing?: 'auto' | Addressing;
  signal?: AbortSignal;
}

export interface ModelInfo {
  backend: Backend;
  /** File or model id. */
  name: string;
  /** e.g. 'Q4_K_M', 'Q4_0', 'q4f16_1'. */
  quant: string;
  /** Tokens of context this load holds (prompt and answer together). */
  contextLength: number;
  /** The largest context this model can be loaded with here (its trained length, and memory on the CPU engine). */
  maxContextLength: number;
  /** The KV cache's type (CPU engine). */
  kvCache?: KvCacheType;
  /** Memory the model holds (wasm memory or GPU buffers), bytes. */
  memoryBytes: number;
  /** Kernel threads in use (CPU engine). */
  threads?: number;
  /** Kernel build in use (CPU engine). */
  build?: KernelBuild;
  /** Memory addressing in use (CPU engine): memory64 only where a context needs more than 4 GiB. */
  addressing?: Addressing;
  /** The chat template can think (`enable_thinking` changes the prompt). */
  supportsThinking: boolean;
  loadMs: number;
}

/** A message as the engines run it (see request.ts normalizeRequest for what callers may send). */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  /** Thinking text of an earlier assistant turn (not sent back to the model by Qwen3's template). */
  reasoning_content?: string;
  /** The functions an assistant turn called. */
  tool_calls?: ToolCall[];
  /** A tool turn: the call it answers. */
  tool_call_id?: string;
}

/** A function the model may call (OpenAI's tools[]). `parameters` is a JSON Schema of its arguments. */
export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean | null };
}

/** 'auto': the model decides; 'none': it answers in text; 'required' or a named function: it calls one. */
export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

/** A call the model made: `arguments` is JSON text, as OpenAI gives it. */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A tool call as streamed: the first delta of a call carries its id, type and name (ours carry it whole). */
export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function?: { name?: string; arguments?: string };
}

/** A part of an OpenAI array content; only text parts exist for a text model. */
export interface ChatContentPart {
  type: 'text';
  text: string;
}

/**
 * A message as OpenAI's API accepts it: role 'developer' (taken as system), content as text parts,
 * null content on an assistant message, and `name` / `tool_call_id` (accepted, not sent to the model).
 */
export interface ChatMessageInput {
  role: ChatMessage['role'] | 'developer';
  content: string | ChatContentPart[] | null;
  reasoning_content?: string;
  name?: string;
  tool_call_id?: string;
  tool_calls?: ToolCall[];
}

export interface ChatCompletionRequest {
  messages: ChatMessageInput[];
  stream?: boolean;
  /** 0 is greedy. */
  temperature?: number;
  /** 0 is greedy (only the most likely token is kept). */
  top_p?: number;
  top_k?: number;
  min_p?: number;
  /** Subtracted once from the logit of every token the answer already holds. */
  presence_penalty?: number;
  /** Subtracted from a token's logit for each time the answer already holds it. */
  frequency_penalty?: number;
  repetition_penalty?: number;
  max_tokens?: number;
  /** OpenAI's newer name for max_tokens (give one of the two). */
  max_completion_tokens?: number;
  stop?: string | string[] | null;
  seed?: number;
  /** Hybrid Qwen3 models: think before answering (template switch). */
  enable_thinking?: boolean;
  /**
   * Let control-token text in message contents (e.g. "<|im_start|>") act as control tokens. Off by
   * default: contents are text, so a message cannot forge a turn of another role.
   */
  special_tokens_in_content?: boolean;
  /**
   * Continue the last message, which must be the assistant's (e.g. an answer cut by max_tokens):
   * the prompt ends inside that message instead of opening a new one, and the completion is the
   * text that follows it. The name is vLLM's and transformers' (`continue_final_message`).
   */
  continue_final_message?: boolean;
  /** Stops generation like interrupt(). In-process only; across a worker, use interrupt(). */
  signal?: AbortSignal;
  /**
   * Stream a progress-only chunk (empty delta, `prompt_progress`) as the prompt is read, batch by
   * batch: llama.cpp server's field of the same name. Engines that cannot report (WebGPU) send none.
   */
  return_progress?: boolean;
  /** Called as the prompt is read (the same figures as `prompt_progress`); any request, streamed or not. */
  onProgress?: (progress: PromptProgress) => void;
  /**
   * Prompt-lookup decoding (CPU engine): draft the next tokens from the prompt and the answer so far
   * and check them in one pass. The answer is the same token for token (the same seed gives the same
   * text); only its speed changes: faster where the answer repeats its context (rewriting, quoting,
   * editing code). 'prompt-lookup' drafts whenever the context offers a guess. Unset (the default,
   * with the relaxed-SIMD kernels): drafts only where they are expected to pay (how often guesses
   * turn out right against what a drafted token costs; src/engine/prompt-lookup.ts), so writing that
   * does not repeat its context runs at the plain speed. 'off': never.
   */
  speculative?: 'prompt-lookup' | 'off';
  /** Return the log-probability of each generated token (OpenAI's `logprobs`). */
  logprobs?: boolean | null;
  /** With logprobs: also the 0–20 most likely tokens at each position. */
  top_logprobs?: number | null;
  // OpenAI fields accepted only at values that ask for nothing this engine lacks (request.ts).
  n?: number | null;
  /** Functions the model may call; its calls come back as `tool_calls` (finish_reason 'tool_calls'). */
  tools?: ToolDefinition[] | null;
  tool_choice?: ToolChoice | null;
  /** Several calls in one answer (default true); false keeps the first. */
  parallel_tool_calls?: boolean | null;
  /**
   * Structured output: `{ type: 'json_object' }` (any JSON object) or `{ type: 'json_schema',
   * json_schema: { name, schema, strict } }`; the answer is constrained token by token to parse
   * (and match the schema). `{ type: 'text' }` is the default.
   */
  response_format?: ResponseFormat | { type: 'text' } | null;
  logit_bias?: Record<string, number> | null;
  stream_options?: { include_usage?: boolean } | null;
  user?: string;
}

/** The structured formats an answer can be held to (OpenAI's response_format). */
export type ResponseFormat =
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name: string; description?: string; schema?: Record<string, unknown> | boolean; strict?: boolean | null } };

/** A request checked and brought to one form (request.ts): what engines run. */
export interface NormalizedRequest {
  messages: ChatMessage[];
  stream: boolean;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  repetition_penalty?: number;
  max_tokens?: number;
  stop: string[];
  seed?: number;
  enable_thinking?: boolean;
  special_tokens_in_content: boolean;
  continue_final_message: boolean;
  /** Log-probabilities of the generated tokens, with top_logprobs (0–20) alternatives each. */
  logprobs: boolean;
  top_logprobs?: number;
  /** Structured output; undefined for free text. */
  response_format?: ResponseFormat;
  /** Tools the model may call (none unless some were given and tool_choice is not 'none'). */
  tools?: ToolDefinition[];
  tool_choice?: ToolChoice;
  parallel_tool_calls?: boolean;
  signal?: AbortSignal;
  return_progress: boolean;
  onProgress?: (progress: PromptProgress) => void;
  speculative?: 'prompt-lookup' | 'off';
}

/**
 * How far reading the prompt has got (llama.cpp server's `prompt_progress`): `processed` of
 * `total` prompt tokens are in the KV cache, `cache` of them were there already (reused from the
 * previous turn); `time_ms` since reading began. Reading progress is (processed − cache) / (total − cache).
 */
export interface PromptProgress {
  total: number;
  cache: number;
  processed: number;
  time_ms: number;
}

/**
 * 'stop': end-of-generation token or a stop string; 'length': max_tokens or the context is full;
 * 'abort': interrupt() / signal; 'tool_calls': the answer called tools (message.tool_calls).
 */
export type FinishReason = 'stop' | 'length' | 'abort' | 'tool_calls';

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  extra: {
    /** Prompt tokens found in the KV cache from the previous turn (not recomputed). */
    cached_prompt_tokens: number;
    /** Prompt tokens actually run through the model. */
    prefilled_tokens: number;
    /** Messages dropped from the start of the conversation (after the system prompt) to fit the context. */
    dropped_messages: number;
    time_to_first_token_s: number;
    prefill_tokens_per_s: number;
    decode_tokens_per_s: number;
    /** Prompt-lookup decoding (CPU engine): tokens drafted, and how many of them the answer kept. */
    draft_tokens?: number;
    accepted_draft_tokens?: number;
  };
}

/** A token as OpenAI's logprobs show it: its text, its UTF-8 bytes, its natural-log probability. */
export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
}

export interface ChatCompletionTokenLogprob extends TokenLogprob {
  /** The most likely tokens at this position, best first (as many as top_logprobs asked). */
  top_logprobs: TokenLogprob[];
}

/**
 * Per generated token, in order, under the model's own distribution (before temperature and the
 * other sampling settings), as OpenAI returns them. A chunk carries the tokens generated since
 * the previous one (text may lag behind its tokens: it waits for whole characters and stop strings).
 */
export interface ChoiceLogprobs {
  content: ChatCompletionTokenLogprob[] | null;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{
    index: 0;
    delta: { role?: 'assistant'; content?: string; reasoning_content?: string; tool_calls?: ToolCallDelta[] };
    finish_reason: FinishReason | null;
    logprobs?: ChoiceLogprobs | null;
  }>;
  /** On the last chunk only. */
  usage?: CompletionUsage;
  /** On progress-only chunks (empty delta) while the prompt is read, with `return_progress`. */
  prompt_progress?: PromptProgress;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{
    index: 0;
    message: { role: 'assistant'; content: string; reasoning_content?: string; tool_calls?: ToolCall[] };
    finish_reason: FinishReason;
    logprobs?: ChoiceLogprobs | null;
  }>;
  usage: CompletionUsage;
}

export interface ChatCompletions {
  create(request: ChatCompletionRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(request: ChatCompletionRequest & { stream?: false }): Promise<ChatCompletion>;
  create(request: ChatCompletionRequest): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion>;
}

export interface Engine {
  readonly backend: Backend;
  load(model: ModelSpec, options?: LoadOptions): Promise<ModelInfo>;
  readonly chat: { readonly completions: ChatCompletions };
  /** Stops the running generation within one token; the engine stays usable. */
  interrupt(): void;
  /** Frees the model (wasm memory / GPU buffers). */
  unload(): Promise<void>;
  /** The loaded model, or undefined. */
  info(): ModelInfo | undefined;
  /**
   * The prompt tokens `request` would take, as it would be run (template rendered, old turns
   * dropped to fit). Engines that cannot count (WebGPU) leave it out.
   */
  countPromptTokens?(request: ChatCompletionRequest): Promise<number>;
}
