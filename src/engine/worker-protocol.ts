// What the page and workers/engine-worker.ts say to each other through comlink. Errors come back
// as values (comlink's own error transfer keeps only name and message, losing `code`), and a
// stream is pulled chunk batch by chunk batch: async iterables do not cross comlink.
import { errorInfo, type ErrorInfo } from './errors.ts';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, LoadOptions, LoadProgress, ModelInfo, ModelSpec } from './types.ts';

export type Result<T> = { ok: true; value: T } | { ok: false; error: ErrorInfo };

/** Runs `work`, its failure returned as a value (with the error's code) instead of thrown. */
export async function settle<T>(work: () => Promise<T> | T): Promise<Result<T>> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    return { ok: false, error: errorInfo(error) };
  }
}

/** LoadOptions without what cannot be cloned (the signal and the callback travel separately). */
export type WorkerLoadOptions = Omit<LoadOptions, 'signal' | 'onProgress'>;

export type WorkerRequest = Omit<ChatCompletionRequest, 'signal'>;

export interface StreamBatch {
  /** Every chunk produced since the previous pull (at least one unless `done`). */
  chunks: ChatCompletionChunk[];
  /** The last chunk (with finish_reason and usage) is in this batch or an earlier one. */
  done: boolean;
}

export interface EngineWorkerApi {
  load(spec: ModelSpec, options: WorkerLoadOptions, onProgress?: (progress: LoadProgress) => void): Promise<Result<ModelInfo>>;
  /** Cancels the running load (its signal, on the worker side). */
  abortLoad(): void;
  /** A completion, or the id of a stream to pull. */
  create(request: WorkerRequest): Promise<Result<{ completion: ChatCompletion } | { stream: number }>>;
  /** Waits until the stream has at least one new chunk (or ended), then returns all of them. */
  pull(stream: number): Promise<Result<StreamBatch>>;
  /** Stops a stream's generation and forgets it (the page stopped reading). */
  cancel(stream: number): void;
  /** The prompt tokens the request would take (Engine.countPromptTokens). */
  countPromptTokens(request: WorkerRequest): Promise<Result<number>>;
  interrupt(): void;
  unload(): Promise<Result<void>>;
  /** Answers as soon as the worker's event loop turns: the page's sign that the worker is alive. */
  ping(): number;
}
