// The page side of the CPU engine: the same Engine interface, with the model running in
// workers/engine-worker.ts (a module Worker) reached through comlink. Nothing here blocks the
// page. Errors keep their name, code and message across the boundary. A worker that dies (out of
// memory, an uncaught error) or stops answering (it closed itself, or a step never returns) fails
// every pending call with EngineError 'worker-failed' instead of hanging: while a call is pending
// the page pings the worker, whose event loop turns between every token and prefill batch; no
// sign of life for `hangTimeoutMs` (or `stopTimeoutMs` after interrupt()) ends the worker.
import * as Comlink from 'comlink';
import { EngineError, errorFromInfo } from './errors.ts';
import { collectCompletion, reportPromptProgress } from './completion.ts';
import { normalizeRequest } from './request.ts';
import type {
  ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatCompletions, Engine, LoadOptions, ModelInfo, ModelSpec,
} from './types.ts';
import type { EngineWorkerApi, Result } from './worker-protocol.ts';
import { hostKernelThreads } from '../model/kernel-threads.ts';

export interface WorkerEngine extends Engine {
  /** Stops the worker at once (frees its memory); the engine cannot be used afterwards. */
  terminate(): void;
  /** Why the worker is gone ('worker-failed'), once it is: the engine then refuses every call. */
  failure(): EngineError | undefined;
}

export interface WorkerEngineOptions {
  /** Default kernel threads for load() (default: the machine's cores when cross-origin isolated). */
  threads?: number;
  /** The engine worker (default workers/engine-worker.ts as a module worker). */
  createWorker?: () => Worker;
  /** No sign of life from a busy worker for this long means it hangs (default 60 s: a prefill batch of a large model on a slow device). */
  hangTimeoutMs?: number;
  /** After interrupt(), a worker that shows no sign of life for this long is stopped (default 10 s). */
  stopTimeoutMs?: number;
}

const DEFAULT_HANG_TIMEOUT_MS = 60_000;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;
const PING_INTERVAL_MS = 1_000;

export function createWorkerEngine(options: WorkerEngineOptions = {}): WorkerEngine {
  const worker = options.createWorker?.() ??
    new Worker(new URL('../../workers/engine-worker.ts', import.meta.url), { type: 'module', name: 'qwen-engine' });
  // Before anything else is posted to it: the page starts the worker's kernel threads.
  const kernelThreads = hostKernelThreads(worker);
  const remote = Comlink.wrap<EngineWorkerApi>(worker);
  let info: ModelInfo | undefined;
  let failure: EngineError | undefined;
  const failed = new Set<(error: EngineError) => void>();

  const fail = (error: EngineError) => {
    failure ??= error;
    info = undefined;
    watchdog.stop();
    for (const reject of failed) reject(failure);
    failed.clear();
  };
  const stopWorker = (error: EngineError) => {
    worker.terminate();
    kernelThreads.terminate();
    fail(error);
  };
  worker.addEventListener('error', (event) => {
    fail(new EngineError('worker-failed', `the engine worker failed: ${event.message || 'it could not start or crashed'}`));
  });
  worker.addEventListener('messageerror', () => fail(new EngineError('worker-failed', 'a message from the engine worker could not be read')));

  const watchdog = new Watchdog(
    () => remote.ping(),
    options.hangTimeoutMs ?? DEFAULT_HANG_TIMEOUT_MS,
    options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS,
    (silentMs) => stopWorker(new EngineError('worker-failed',
      `the engine stopped responding (no sign of life for ${Math.round(silentMs / 1000)} s) and was stopped`, { detail: 'hung' })),
  );

  /** Awaits a worker call, rethrowing its error here; rejects if the worker dies or hangs meanwhile. */
  const call = <T>(pending: Promise<Result<T>>): Promise<T> => {
    if (failure) return Promise.reject(failure);
    watchdog.callStarted();
    return new Promise<T>((resolve, reject) => {
      failed.add(reject);
      pending.then(
        (result) => (result.ok ? resolve(result.value) : reject(errorFromInfo(result.error))),
        (error: unknown) => reject(error),
      ).finally(() => {
        failed.delete(reject);
        watchdog.callEnded();
      });
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
    const { signal, onProgress, ...cloneable } = request;
    if (signal?.aborted) throw new EngineError('bad-request', 'the request signal is already aborted');
    if (onProgress) {
      // A function cannot cross to the worker: its progress chunks come back on a stream instead.
      const reply = await call(remote.create({ ...cloneable, stream: true, return_progress: true }));
      const chunks = reportPromptProgress(pullStream((reply as { stream: number }).stream, signal), request);
      return request.stream ? chunks : collectCompletion(chunks);
    }
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
      if (failure) return;
      watchdog.stopRequested();
      void remote.interrupt();
    },

    async unload(): Promise<void> {
      info = undefined;
      if (!failure) await call(remote.unload());
    },

    info: () => info,

    async countPromptTokens(raw: ChatCompletionRequest): Promise<number> {
      const { signal: _signal, ...cloneable } = normalizeRequest(raw);
      return call(remote.countPromptTokens(cloneable));
    },

    terminate(): void {
      stopWorker(new EngineError('worker-failed', 'the engine was terminated'));
    },

    failure: () => failure,
  };
}

/**
 * Watches a worker while calls to it are pending: pings it every second and counts any answer as
 * a sign of life; calls `onHang` after `hangMs` of silence (`stopMs` once a stop was asked for).
 */
class Watchdog {
  private pending = 0;
  private lastAlive = 0;
  private stopAskedAt: number | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private pinging = false;

  constructor(
    private readonly ping: () => Promise<unknown>,
    private readonly hangMs: number,
    private readonly stopMs: number,
    private readonly onHang: (silentMs: number) => void,
  ) {}

  callStarted(): void {
    if (this.pending++ === 0) {
      this.lastAlive = performance.now();
      this.stopAskedAt = undefined;
      this.timer = setInterval(() => this.tick(), Math.min(PING_INTERVAL_MS, this.stopMs / 2));
    }
  }

  callEnded(): void {
    this.lastAlive = performance.now();
    if (--this.pending === 0) this.stop();
  }

  /** A stop was asked for: a call still pending must now end soon. */
  stopRequested(): void {
    if (this.pending > 0) this.stopAskedAt ??= performance.now();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.pending = 0;
    this.stopAskedAt = undefined;
  }

  private tick(): void {
    const now = performance.now();
    const silent = now - this.lastAlive;
    const sinceStop = this.stopAskedAt === undefined ? 0 : now - Math.max(this.stopAskedAt, this.lastAlive);
    if (silent > this.hangMs || sinceStop > this.stopMs) {
      this.onHang(silent);
      return;
    }
    if (this.pinging) return;
    this.pinging = true;
    this.ping().then(
      () => (this.lastAlive = performance.now()),
      () => undefined,
    ).finally(() => (this.pinging = false));
  }
}
