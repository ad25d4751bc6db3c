// What the page (webgpu-engine.ts) and workers/webllm-worker.ts say to each other through
// comlink. Like the CPU engine's worker-protocol.ts, every method answers a Result instead of
// throwing: comlink would carry only an error's name and message, and code/detail must survive.
import type * as WebLlm from '@mlc-ai/web-llm';
import type { WebGpuAdapterSummary } from './webgpu-detect.ts';
import type { ChatCompletionChunk, LoadProgress, NormalizedRequest } from './types.ts';
import type { Result } from './worker-protocol.ts';

export type { Result } from './worker-protocol.ts';

export interface WorkerLoadRequest {
  modelId: string;
  /** web-llm's model list; default: its prebuilt list. The cache backend is always IndexedDB. */
  appConfig?: WebLlm.AppConfig;
  /** KV cache size in tokens (web-llm's context_window_size); default: the model record's. */
  contextLength?: number;
}

export interface WorkerLoadResult {
  modelId: string;
  contextLength: number;
  /** web-llm's estimate of the GPU memory the model needs (its record's vram_required_MB). */
  memoryBytes: number;
  adapter: WebGpuAdapterSummary;
}

export interface WorkerChatStart {
  streamId: number;
  /** Request fields web-llm cannot honour (e.g. top_k, min_p). */
  ignored: string[];
}

export interface WebLlmWorkerApi {
  load(request: WorkerLoadRequest, onProgress?: (progress: LoadProgress) => void): Promise<Result<WorkerLoadResult>>;
  startChat(request: Omit<NormalizedRequest, 'signal'>): Promise<Result<WorkerChatStart>>;
  /** The next chunk of a stream, or null at its end. */
  nextChunk(streamId: number): Promise<Result<ChatCompletionChunk | null>>;
  /** Stops a stream the page no longer reads (interrupts web-llm and drains it). */
  cancelChat(streamId: number): Promise<void>;
  interrupt(): void;
  /** Frees the model and aborts a running load. */
  unload(): Promise<Result<void>>;
}
