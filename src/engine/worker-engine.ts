// The page side of the CPU engine: the same Engine interface, with the model running in
// workers/engine-worker.ts (a module Worker) reached through comlink. Nothing here blocks the
// page. Errors keep their name, code and message across the boundary; a worker that dies
// (e.g. out of memory) fails every pending call with EngineError 'worker-failed' instead of hanging.
import * as Comlink from 'comlink';
import { EngineError, errorFromInfo } from './errors.ts';
import { normalizeRequest } from './request.ts';
import type {
  ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatCompletions, Engine, LoadOptions, ModelInfo, ModelSpec,
} from './types.ts';
import type { EngineWorkerApi, Result } from './worker-protocol.ts';

export interface WorkerEngine extends Engine {
  /** Stops the worker at once (frees its memory); the engine cannot be used afterwards. */
  terminate(): void;
}

export interface WorkerEngineOptions {
  /** Default kernel threads for load() (default: the machine's cores when cross-origin isolated). */
  threads?: number;
}

export function createWorkerEngine(options: WorkerEngineOptions = {}): WorkerEngine {
  const worker = new Worker(new URL('../../workers/engine-worker.ts', import.meta.url), { type: 'module', name: 'qwen-engine' });
  const remote = Comlink.wrap<EngineWorkerApi>(worker);
  let info: ModelInfo | undefined;
  let failure: EngineError | undefined;
  const failed = new Set<(error: EngineError) => void>();

  const fail = (error: EngineError) => {
    failure ??= error;
    info = undefined;
    for (const reject of failed) reject(failure);
    failed.clear();
  };
  worker.addEventListener('error', (event) => {
    fail(new EngineError('worker-failed', `the engine worker failed: ${event.message || 'it could not start or crashed'}`));
  });
  worker.addEventListener('messageerror', () => fail(new EngineError('worker-failed', 'a message from the engine worker could not be read')));

  /** Awaits a worker call, rethrowing its error here; rejects if the worker dies meanwhile. */
  const call = <T>(pending: Promise<Result<T>>): Promise<T> => {
    if (failure) return Promise.reject(failure);
    return new Promise<T>((resolve, reject) => {
      failed.add(reject);
      pending.then(
        (result) => (result.ok ? resolve(result.value) : reject(errorFromInfo(result.error))),
        (error: unknown) => reject(error),
      ).finally(() => failed.delete(reject));
    });
  };

  async function* pullStream(id: number, signal: AbortSignal | undefined): AsyncGenerator<ChatCompletionChunk> {
    let finished = false;
    const cancel = () => void remote.cancel(id);
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      while (!finished) {
        const batch = await call(remote.pull(id));
        finished = batch.done;
        yield* batch.chunks;
      }
    } finally {
      signal?.removeEventListener('abort', cancel);
      // The reader stopped early (break, throw): stop generating for nobody.
      if (!finished && !failure) cancel();
    }
  }

  async function create(raw: ChatCompletionRequest): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion> {
    // Checked here too, so a malformed request fails on the page with the same typed error and
    // never reaches structured cloning (which would throw its own, untyped one).
    const request = normalizeRequest(raw);
    const { signal, ...cloneable } = request;
    if (signal?.aborted) throw new EngineError('bad-request', 'the request signal is already aborted');
    if (!request.stream) {
      const interrupt = () => void remote.interrupt();
      signal?.addEventListener('abort', interrupt, { once: true });
      try {
        const reply = await call(remote.create(cloneable));
        return (reply as { completion: ChatCompletion }).completion;
      } finally {
        signal?.removeEventListener('abort', interrupt);
      }
    }
    const reply = await call(remote.create(cloneable));
    return pullStream((reply as { stream: number }).stream, signal);
  }

  return {
    backend: 'cpu',
    chat: { completions: { create } as ChatCompletions },

    async load(spec: ModelSpec, loadOptions: LoadOptions = {}): Promise<ModelInfo> {
      const { signal, onProgress, ...rest } = loadOptions;
      signal?.throwIfAborted();
      const abort = () => void remote.abortLoad();
      signal?.addEventListener('abort', abort, { once: true });
      info = undefined;
      try {
        info = await call(remote.load(spec, { threads: options.threads, ...rest }, onProgress && Comlink.proxy(onProgress)));
        return info;
      } finally {
        signal?.removeEventListener('abort', abort);
      }
    },

    interrupt(): void {
      if (!failure) void remote.interrupt();
    },

    async unload(): Promise<void> {
      info = undefined;
      if (!failure) await call(remote.unload());
    },

    info: () => info,

    terminate(): void {
      worker.terminate();
      fail(new EngineError('worker-failed', 'the engine was terminated'));
    },
  };
}
