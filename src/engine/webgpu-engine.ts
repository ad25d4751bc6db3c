// The WebGPU implementation of our Engine: @mlc-ai/web-llm's MLCEngine in its own module Worker
// (workers/webllm-worker.ts), reached through comlink. This page-side module has no run-time
// dependency on web-llm (type imports only): the worker, and with it web-llm, starts on the first
// load(). Models are web-llm's MLC builds ({ kind: 'mlc', modelId }), cached by web-llm in
// IndexedDB. Use createEngine() (backend.ts) to get CPU fallback; this engine alone just fails.
import * as Comlink from 'comlink';
import type * as WebLlm from '@mlc-ai/web-llm';
import type { Result, WebLlmWorkerApi } from './webllm-protocol.ts';
import { EngineError, errorFromInfo } from './errors.ts';
import { normalizeRequest } from './request.ts';
import type {
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletions,
  Engine,
  LoadOptions,
  ModelInfo,
  ModelSpec,
} from './types.ts';
import { collectCompletion } from './completion.ts';
import { mlcModelSupportsThinking, quantOfMlcModel } from './webllm-mapping.ts';
import type { WebGpuAdapterSummary } from './webgpu-detect.ts';

export interface WebGpuEngineOptions {
  /** web-llm's model list (model, model_id, model_lib, …); default: web-llm's prebuilt list. */
  appConfig?: WebLlm.AppConfig;
  /** Told which set request fields web-llm cannot honour (top_k, min_p), once per request. */
  onIgnoredFields?(fields: string[]): void;
}

export interface WebGpuEngine extends Engine {
  /** The adapter the loaded model runs on. */
  adapter(): WebGpuAdapterSummary | undefined;
  /** Stops the worker (and frees the GPU memory with it); the engine is unusable afterwards. */
  terminate(): void;
}

class WebLlmWorkerEngine implements WebGpuEngine {
  readonly backend = 'webgpu' as const;
  readonly chat: { readonly completions: ChatCompletions };

  private worker: Worker | undefined;
  private remote: Comlink.Remote<WebLlmWorkerApi> | undefined;
  /** Rejects (once) when the worker dies; every call races it so nothing waits forever. */
  private death: Promise<never> | undefined;
  private failure: EngineError | undefined;
  private loaded: ModelInfo | undefined;
  private loadedAdapter: WebGpuAdapterSummary | undefined;

  constructor(private readonly options: WebGpuEngineOptions) {
    const create = async (request: ChatCompletionRequest) => {
      const stream = await this.openStream(request);
      return request.stream ? stream : collectCompletion(stream);
    };
    this.chat = { completions: { create: create as ChatCompletions['create'] } };
  }

  private start(): Comlink.Remote<WebLlmWorkerApi> {
    if (this.failure) throw this.failure;
    if (this.remote) return this.remote;
    const worker = new Worker(new URL('../../workers/webllm-worker.ts', import.meta.url), { type: 'module', name: 'webllm' });
    this.death = new Promise<never>((_, reject) => {
      worker.addEventListener('error', (event) => {
        event.preventDefault();
        this.fail(new EngineError('worker-failed', `the WebGPU worker failed: ${event.message || 'it could not start'}`));
        reject(this.failure);
      });
      worker.addEventListener('messageerror', () => {
        this.fail(new EngineError('worker-failed', 'the WebGPU worker sent a message that could not be read'));
        reject(this.failure);
      });
    });
    this.death.catch(() => {}); // observed by the calls that race it
    this.worker = worker;
    this.remote = Comlink.wrap<WebLlmWorkerApi>(worker);
    return this.remote;
  }

  private fail(error: EngineError): void {
    this.failure ??= error;
    this.loaded = undefined;
    this.worker?.terminate();
  }

  /** A worker call, its Result unwrapped into a value or our typed error. */
  private async call<T>(invoke: (remote: Comlink.Remote<WebLlmWorkerApi>) => Promise<Result<T>>): Promise<T> {
    const remote = this.start();
    const result = await Promise.race([invoke(remote), this.death!]);
    if (!result.ok) throw errorFromInfo(result.error);
    return result.value;
  }

  async load(model: ModelSpec, options: LoadOptions = {}): Promise<ModelInfo> {
    if (model.kind !== 'mlc') {
      throw new EngineError('unsupported', `the WebGPU engine loads web-llm models ({ kind: 'mlc' }), not '${model.kind}'`);
    }
    const { signal, onProgress } = options;
    if (signal?.aborted) throw new EngineError('aborted', 'the load was cancelled');
    const started = performance.now();
    this.loaded = undefined;
    this.loadedAdapter = undefined;
    const onAbort = () => void this.remote?.unload();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const result = await this.call((remote) =>
        remote.load(
          { modelId: model.modelId, appConfig: this.options.appConfig, contextLength: options.contextLength },
          onProgress ? Comlink.proxy(onProgress) : undefined,
        ),
      );
      if (signal?.aborted) throw new EngineError('aborted', 'the load was cancelled');
      this.loadedAdapter = result.adapter;
      this.loaded = {
        backend: 'webgpu',
        name: result.modelId,
        quant: quantOfMlcModel(result.modelId),
        contextLength: result.contextLength,
        // web-llm sizes its context by the model record; no larger one is known to fit.
        maxContextLength: result.contextLength,
        memoryBytes: result.memoryBytes,
        supportsThinking: mlcModelSupportsThinking(result.modelId),
        loadMs: performance.now() - started,
      };
      return this.loaded;
    } catch (error) {
      if (signal?.aborted) throw new EngineError('aborted', 'the load was cancelled', { cause: error });
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Starts the generation now (so create() itself fails on a bad request or a lost device). */
  private async openStream(request: ChatCompletionRequest): Promise<AsyncGenerator<ChatCompletionChunk, void, undefined>> {
    // onProgress is never called: web-llm does not report reading the prompt.
    const { signal, onProgress: _onProgress, ...wire } = normalizeRequest(request);
    if (signal?.aborted) throw new EngineError('aborted', 'the request was cancelled before it started');
    const { streamId, ignored } = await this.call((remote) => remote.startChat(wire));
    if (ignored.length > 0) this.options.onIgnoredFields?.(ignored);
    return this.pull(streamId, signal);
  }

  private async *pull(streamId: number, signal: AbortSignal | undefined): AsyncGenerator<ChatCompletionChunk, void, undefined> {
    const onAbort = () => this.interrupt();
    signal?.addEventListener('abort', onAbort, { once: true });
    // Aborted between create() and the first read: the worker repeats the interrupt until it holds.
    if (signal?.aborted) this.interrupt();
    let finished = false;
    try {
      for (;;) {
        const chunk = await this.call((remote) => remote.nextChunk(streamId));
        if (chunk === null) break;
        yield chunk;
      }
      finished = true;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      // The reader stopped early (break / return) or failed: stop the generation behind it.
      if (!finished && !this.failure) void this.remote?.cancelChat(streamId);
    }
  }

  interrupt(): void {
    if (!this.failure) void this.remote?.interrupt();
  }

  async unload(): Promise<void> {
    this.loaded = undefined;
    this.loadedAdapter = undefined;
    if (!this.remote || this.failure) return;
    await this.call((remote) => remote.unload());
  }

  info(): ModelInfo | undefined {
    return this.loaded;
  }

  adapter(): WebGpuAdapterSummary | undefined {
    return this.loadedAdapter;
  }

  terminate(): void {
    this.fail(new EngineError('worker-failed', 'the WebGPU engine was terminated'));
  }
}

/** A WebGPU engine; its worker (and web-llm) starts on the first load(). */
export function createWebGpuEngine(options: WebGpuEngineOptions = {}): WebGpuEngine {
  return new WebLlmWorkerEngine(options);
}
