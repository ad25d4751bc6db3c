// One engine for every tab of an origin. The tab holding the Web Lock `name` owns the engine (a
// worker engine of its own, made by `createEngine`); every other tab — and every other element in
// the same page — reaches it over a BroadcastChannel of the same name, through the same Engine API.
// So a second tab neither loads a second copy of the weights nor waits for one.
//
// The owner runs one job at a time in arrival order, whichever tab asked: generations from two tabs
// queue. A load of the model already loaded (or loading) with the same options joins it; a load of
// anything else replaces the model for every tab when its turn comes, and unload() frees it for all.
// interrupt() stops the calling tab's own generations only.
//
// When the owner tab closes, the lock passes to the tab that has waited longest: it starts an engine,
// announces itself and loads the model the old owner had. Calls still pending on the old owner fail
// with EngineError 'worker-failed' (detail 'owner-closed'), as when a worker dies, so callers recover
// the same way: keep what streamed, load again (which joins the new owner's load).
//
// A SharedWorker would be the natural home, but Chromium's is not cross-origin isolated (no
// SharedArrayBuffer, so no kernel threads) and cannot start workers of its own.
import { collectCompletion, reportPromptProgress } from './completion.ts';
import { EngineError, errorFromInfo, errorInfo } from './errors.ts';
import { normalizeRequest } from './request.ts';
import type {
  Backend, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatCompletions, Engine, LoadOptions, LoadProgress, ModelInfo, ModelSpec,
} from './types.ts';
import { settle, type Result, type WorkerLoadOptions, type WorkerRequest } from './worker-protocol.ts';

/** The default lock and channel name: every qwen-web page and element of an origin shares it (the number is the protocol's). */
export const SHARED_ENGINE_NAME = 'qwen-web-engine/1';

/** An engine its owner can stop for good (frees its workers). */
export type OwnedEngine = Engine & { terminate(): void };

/** The model the owner holds, as every tab sees it. */
export interface SharedModel {
  spec: ModelSpec;
  options: WorkerLoadOptions;
  info: ModelInfo;
}

export type TabRole = 'owner' | 'follower';

export interface TabSharedEngine extends Engine {
  /** 'owner' once this tab runs the engine; 'follower' while another tab does (or none does yet). */
  role(): TabRole;
  /** The model every tab shares, or undefined. */
  model(): SharedModel | undefined;
  /** Called when the shared model changes (any tab's load or unload, a handover); returns the unsubscriber. */
  onModelChange(listener: (model: SharedModel | undefined) => void): () => void;
  /** Leaves: an owner stops its engine and hands the lock on; pending calls fail with 'worker-failed'. */
  terminate(): void;
}

export interface TabSharedEngineOptions {
  /** Makes the engine when this tab becomes the owner. */
  createEngine: () => OwnedEngine | Promise<OwnedEngine>;
  /** Lock and channel name: engines with the same name share (default SHARED_ENGINE_NAME). */
  name?: string;
  /** A follower with calls pending fails them after this long without word from the owner (default 30 s). */
  ownerTimeoutMs?: number;
}

/** Web Locks and BroadcastChannel, both needed to share. */
export function canShareEngine(): boolean {
  return typeof BroadcastChannel === 'function' && typeof navigator !== 'undefined' && typeof navigator.locks?.request === 'function';
}

/** Some tab of this origin owns an engine under `name` now (so a new tab has one to join). */
export async function sharedEngineRunning(name = SHARED_ENGINE_NAME): Promise<boolean> {
  if (!canShareEngine()) return false;
  const { held = [] } = await navigator.locks.query();
  return held.some((lock) => lock.name === name);
}

export function createTabSharedEngine(options: TabSharedEngineOptions): TabSharedEngine {
  return new SharedEngineTab(options);
}

// ---- what the tabs say to each other -------------------------------------------------------------

type Operation =
  | { op: 'load'; spec: ModelSpec; options: WorkerLoadOptions }
  | { op: 'create'; request: WorkerRequest }
  | { op: 'count'; request: WorkerRequest }
  | { op: 'unload' };

type Message =
  // to the owner
  | { kind: 'hello'; from: string }
  | ({ kind: 'call'; from: string; to: string; id: number } & Operation)
  | { kind: 'cancel'; from: string; to: string; id: number }
  | { kind: 'interrupt'; from: string; to: string }
  | { kind: 'ping'; from: string; to: string }
  | { kind: 'bye'; from: string; to: string }
  // from the owner
  | { kind: 'owner'; owner: string; model: SharedModel | undefined }
  | { kind: 'model'; owner: string; model: SharedModel | undefined }
  | { kind: 'progress'; to: string; id: number; progress: LoadProgress }
  | { kind: 'chunk'; to: string; id: number; chunk: ChatCompletionChunk }
  | { kind: 'result'; to: string; id: number; result: Result<unknown> }
  | { kind: 'pong'; to: string };

/** Where a call's answer goes: straight to the caller in the owner tab, or over the channel. */
interface Reply {
  progress(progress: LoadProgress): void;
  chunk(chunk: ChatCompletionChunk): void;
  result(result: Result<unknown>): void;
}

const PING_INTERVAL_MS = 1_000;
/** A load asked again after its owner tab closed, up to this many times in all. */
const MAX_LOAD_ATTEMPTS = 3;
const DEFAULT_OWNER_TIMEOUT_MS = 30_000;

const ownerClosed = () => new EngineError('worker-failed', 'the tab that ran the model was closed; another tab takes it over', { detail: 'owner-closed' });

// ---- the owner's side: one job at a time -------------------------------------------------------

interface Job {
  from: string;
  id: number;
  kind: 'load' | 'generate' | 'unload';
  /** Set when its caller stopped it: a queued job then ends without running. */
  stopped: boolean;
  run(): Promise<void>;
}

/** A load and every caller waiting for it (a load of the same model and options joins). */
interface LoadJob extends Job {
  kind: 'load';
  key: string | undefined;
  controller: AbortController;
  waiters: Map<string, Reply>;
}

/** Runs the owner tab's engine for every tab. */
class EngineHost {
  private readonly queue: Job[] = [];
  private running: Job | undefined;
  private shared: (SharedModel & { key: string | undefined }) | undefined;

  constructor(
    private readonly engine: OwnedEngine,
    private readonly announce: (model: SharedModel | undefined) => void,
  ) {}

  model(): SharedModel | undefined {
    if (!this.shared) return undefined;
    const { key: _key, ...model } = this.shared;
    return model;
  }

  call(from: string, id: number, operation: Operation, reply: Reply): void {
    switch (operation.op) {
      case 'load': return this.load(from, id, operation.spec, operation.options, reply);
      case 'create': return this.enqueue({ from, id, kind: 'generate', stopped: false, run: () => this.generate(operation.request, reply, from, id) });
      case 'count': return void settle(() => this.countPromptTokens(operation.request)).then((result) => reply.result(result));
      case 'unload': return this.enqueue({ from, id, kind: 'unload', stopped: false, run: () => this.unload(reply) });
    }
  }

  /** The caller gave up on call `id`: a waiting load forgets it, a generation stops. */
  cancel(from: string, id: number): void {
    for (const job of this.jobs()) {
      if (job.kind === 'load') this.leaveLoad(job as LoadJob, waiterKey(from, id));
      else if (job.from === from && job.id === id) this.stop(job);
    }
  }

  /** Stops `from`'s generations, running or queued. */
  interrupt(from: string): void {
    for (const job of this.jobs()) if (job.kind === 'generate' && job.from === from) this.stop(job);
  }

  /** A tab left: nothing it asked for is worth finishing. */
  forget(from: string): void {
    for (const job of this.jobs()) {
      if (job.kind === 'load') for (const key of [...(job as LoadJob).waiters.keys()]) if (key.startsWith(`${from}/`)) this.leaveLoad(job as LoadJob, key);
      if (job.kind === 'generate' && job.from === from) this.stop(job);
    }
  }

  terminate(): void {
    this.engine.terminate();
  }

  private jobs(): Job[] {
    return this.running ? [this.running, ...this.queue] : [...this.queue];
  }

  private stop(job: Job): void {
    job.stopped = true;
    if (job === this.running && job.kind === 'generate') this.engine.interrupt();
  }

  private enqueue(job: Job): void {
    this.queue.push(job);
    this.pump();
  }

  private pump(): void {
    if (this.running) return;
    const job = this.queue.shift();
    if (!job) return;
    this.running = job;
    // run() reports its own failures to its callers; the queue goes on whatever happened.
    void job.run().catch(() => undefined).finally(() => {
      this.running = undefined;
      this.pump();
    });
  }

  private load(from: string, id: number, spec: ModelSpec, options: WorkerLoadOptions, reply: Reply): void {
    const key = modelKey(spec, options);
    // The model that will be there when this load's turn comes: the last load or unload queued, else the current one.
    const last = [...this.jobs()].reverse().find((job) => job.kind !== 'generate' && !job.stopped);
    if (last?.kind === 'load' && key !== undefined && (last as LoadJob).key === key) {
      (last as LoadJob).waiters.set(waiterKey(from, id), reply);
      return;
    }
    if (!last && key !== undefined && this.shared?.key === key && this.engine.info()) {
      reply.result({ ok: true, value: this.shared.info });
      return;
    }
    const job: LoadJob = {
      from, id, kind: 'load', stopped: false, key,
      controller: new AbortController(),
      waiters: new Map([[waiterKey(from, id), reply]]),
      run: () => this.runLoad(job, spec, options),
    };
    this.enqueue(job);
  }

  private async runLoad(job: LoadJob, spec: ModelSpec, options: WorkerLoadOptions): Promise<void> {
    const replyAll = (result: Result<unknown>) => {
      for (const waiter of job.waiters.values()) waiter.result(result);
      job.waiters.clear();
    };
    if (job.stopped) return replyAll({ ok: false, error: errorInfo(new EngineError('aborted', 'the load was cancelled')) });
    const result = await settle(() => this.engine.load(spec, {
      ...options,
      signal: job.controller.signal,
      onProgress: (progress) => {
        for (const waiter of job.waiters.values()) waiter.progress(progress);
      },
    }));
    // Whatever happened, the old model is gone: every tab learns what is there now.
    this.setModel(result.ok ? { spec, options, info: result.value, key: job.key } : undefined);
    replyAll(result);
  }

  /** A waiter of a load gave up; a load nobody waits for any more is cancelled. */
  private leaveLoad(job: LoadJob, waiter: string): void {
    const reply = job.waiters.get(waiter);
    if (!reply) return;
    job.waiters.delete(waiter);
    reply.result({ ok: false, error: errorInfo(new EngineError('aborted', 'the load was cancelled')) });
    if (job.waiters.size === 0) {
      job.stopped = true;
      job.controller.abort();
    }
  }

  private async generate(request: WorkerRequest, reply: Reply, from: string, id: number): Promise<void> {
    const job = this.running!;
    const result = await settle(async () => {
      if (job.stopped) {
        // Stopped while it waited for its turn: it ends as an interrupted answer, with nothing said.
        reply.chunk(stoppedChunk(this.engine.info()?.name ?? '', `${from}-${id}`));
        return;
      }
      const chunks = await this.engine.chat.completions.create({ ...request, stream: true });
      for await (const chunk of chunks) reply.chunk(chunk);
    });
    if (!result.ok && result.error.code === 'worker-failed') this.setModel(undefined); // the model died with its worker
    reply.result(result);
  }

  private async unload(reply: Reply): Promise<void> {
    const result = await settle(() => this.engine.unload());
    this.setModel(undefined);
    reply.result(result);
  }

  private countPromptTokens(request: WorkerRequest): Promise<number> {
    if (!this.engine.countPromptTokens) throw new EngineError('unsupported', `the ${this.engine.backend} engine cannot count prompt tokens`);
    return this.engine.countPromptTokens(request);
  }

  private setModel(model: (SharedModel & { key: string | undefined }) | undefined): void {
    this.shared = model;
    this.announce(this.model());
  }
}

// ---- every tab's side ----------------------------------------------------------------------------

/** A call this tab sent to another tab's engine, waiting for its answer. */
interface Pending extends Reply {
  fail(error: EngineError): void;
}

class SharedEngineTab implements TabSharedEngine {
  readonly chat: { readonly completions: ChatCompletions };
  private readonly name: string;
  private readonly tabId = crypto.randomUUID();
  private readonly channel: BroadcastChannel;
  private readonly leaving = new AbortController();
  private host: EngineHost | undefined;
  /** The owner's tab id, once known (this tab's own when it owns). */
  private owner: string | undefined;
  private ownerKnown!: () => void;
  private readonly ownerFound = new Promise<void>((resolve) => (this.ownerKnown = resolve));
  private shared: SharedModel | undefined;
  private readonly listeners = new Set<(model: SharedModel | undefined) => void>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private lastHeard = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private ended = false;
  /** Set when this tab's turn came and its engine could not be made. */
  private startFailure: EngineError | undefined;

  constructor(private readonly options: TabSharedEngineOptions) {
    this.name = options.name ?? SHARED_ENGINE_NAME;
    this.channel = new BroadcastChannel(this.name);
    this.channel.onmessage = (event: MessageEvent<Message>) => this.receive(event.data);
    const create = (request: ChatCompletionRequest) => this.create(request);
    this.chat = { completions: { create: create as ChatCompletions['create'] } };
    this.post({ kind: 'hello', from: this.tabId });
    // Waits in the lock's queue for as long as this tab lives; holds it from its turn until it leaves.
    navigator.locks.request(this.name, { signal: this.leaving.signal }, () => this.own()).catch(() => undefined);
  }

  get backend(): Backend {
    return this.shared?.info.backend ?? 'cpu';
  }

  role(): TabRole {
    return this.host ? 'owner' : 'follower';
  }

  model(): SharedModel | undefined {
    return this.shared;
  }

  info(): ModelInfo | undefined {
    return this.shared?.info;
  }

  onModelChange(listener: (model: SharedModel | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async load(spec: ModelSpec, loadOptions: LoadOptions = {}): Promise<ModelInfo> {
    const { signal, onProgress, ...options } = loadOptions;
    signal?.throwIfAborted();
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.call({ op: 'load', spec, options }, { signal, onProgress })) as ModelInfo;
      } catch (error) {
        // The owner tab closed under the load: loading is safe to ask again, of the next owner.
        if ((error as EngineError).detail !== 'owner-closed' || attempt === MAX_LOAD_ATTEMPTS) throw error;
      }
    }
  }

  private async create(raw: ChatCompletionRequest): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion> {
    // Checked here, so a malformed request fails in this tab with its typed error and never meets structured cloning.
    const request = normalizeRequest(raw);
    const { signal, onProgress, ...cloneable } = request;
    if (signal?.aborted) throw new EngineError('bad-request', 'the request signal is already aborted');
    // Stopped by the caller's signal, or by its reader leaving the stream early.
    const stop = new AbortController();
    signal?.addEventListener('abort', () => stop.abort(), { once: true });
    const chunks = new ChunkQueue(() => stop.abort());
    this.call(
      { op: 'create', request: { ...cloneable, stream: true, return_progress: request.return_progress || Boolean(onProgress) } },
      { signal: stop.signal, onChunk: (chunk) => chunks.push(chunk) },
    ).then(() => chunks.end(), (error: unknown) => chunks.fail(error));
    const stream = reportPromptProgress(chunks, request);
    return request.stream ? stream : collectCompletion(stream);
  }

  interrupt(): void {
    if (this.host) this.host.interrupt(this.tabId);
    else if (this.owner) this.post({ kind: 'interrupt', from: this.tabId, to: this.owner });
  }

  async unload(): Promise<void> {
    await this.call({ op: 'unload' });
  }

  async countPromptTokens(raw: ChatCompletionRequest): Promise<number> {
    const { signal: _signal, onProgress: _onProgress, ...cloneable } = normalizeRequest(raw);
    return (await this.call({ op: 'count', request: cloneable })) as number;
  }

  terminate(): void {
    if (this.ended) return;
    this.ended = true;
    this.failPending(new EngineError('worker-failed', 'the engine was terminated'));
    if (this.host) {
      this.host.terminate();
      this.host = undefined;
    } else if (this.owner) {
      this.post({ kind: 'bye', from: this.tabId, to: this.owner });
    }
    this.leaving.abort(); // releases the lock (or leaves its queue): the next tab takes over
    this.channel.close();
    clearInterval(this.timer);
  }

  // ---- calls ------------------------------------------------------------------------------------

  /** Sends one operation to the owner (this tab or another) and waits for its result; `signal` cancels it. */
  private async call(
    operation: Operation,
    handlers: { signal?: AbortSignal; onProgress?: (progress: LoadProgress) => void; onChunk?: (chunk: ChatCompletionChunk) => void } = {},
  ): Promise<unknown> {
    if (this.ended) throw new EngineError('worker-failed', 'the engine was terminated');
    await this.ownerFound;
    if (this.startFailure) throw this.startFailure;
    const id = this.nextId++;
    const owner = this.owner!;
    const host = this.host;
    return new Promise((resolve, reject) => {
      const cancel = () => {
        if (host) host.cancel(this.tabId, id);
        else this.post({ kind: 'cancel', from: this.tabId, to: owner, id });
      };
      const finish = () => {
        this.pending.delete(id);
        handlers.signal?.removeEventListener('abort', cancel);
        if (this.pending.size === 0) this.stopWatching();
      };
      const pending: Pending = {
        progress: (progress) => handlers.onProgress?.(progress),
        chunk: (chunk) => handlers.onChunk?.(chunk),
        result: (result) => {
          finish();
          if (result.ok) resolve(result.value);
          else reject(errorFromInfo(result.error));
        },
        fail: (error) => {
          finish();
          reject(error);
        },
      };
      this.pending.set(id, pending);
      if (host) {
        host.call(this.tabId, id, operation, pending);
      } else {
        this.watchOwner();
        this.post({ kind: 'call', from: this.tabId, to: owner, id, ...operation });
      }
      if (handlers.signal?.aborted) cancel();
      else handlers.signal?.addEventListener('abort', cancel, { once: true });
    });
  }

  private failPending(error: EngineError): void {
    for (const pending of [...this.pending.values()]) pending.fail(error);
  }

  // ---- ownership --------------------------------------------------------------------------------

  /** This tab's turn with the lock: run the engine until the tab leaves. */
  private async own(): Promise<void> {
    if (this.ended) return;
    let engine: OwnedEngine;
    try {
      engine = await this.options.createEngine();
    } catch (error) {
      // No engine here: this tab's calls fail with why (the lock passes on to the next tab).
      this.startFailure = new EngineError('worker-failed', `the engine could not start: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      this.failPending(this.startFailure);
      this.ownerKnown();
      return;
    }
    if (this.ended) {
      engine.terminate();
      return;
    }
    const inherited = this.shared;
    this.host = new EngineHost(engine, (model) => {
      this.setShared(model);
      this.post({ kind: 'model', owner: this.tabId, model });
    });
    const previous = this.owner;
    this.owner = this.tabId;
    this.stopWatching();
    // Calls sent to the tab that left will never be answered.
    if (previous !== undefined) this.failPending(ownerClosed());
    this.setShared(undefined);
    this.post({ kind: 'owner', owner: this.tabId, model: undefined });
    this.ownerKnown();
    // Bring back what the last owner had; the tabs that lost their calls load again and join this.
    if (inherited) this.host.call(this.tabId, 0, { op: 'load', spec: inherited.spec, options: inherited.options }, ignoredReply);
    await new Promise((resolve) => this.leaving.signal.addEventListener('abort', resolve, { once: true }));
  }

  private receive(message: Message): void {
    if (this.ended) return;
    if ('to' in message && message.to !== this.tabId) return;
    const host = this.host;
    switch (message.kind) {
      case 'hello':
        if (host) this.post({ kind: 'owner', owner: this.tabId, model: this.shared });
        return;
      case 'call': {
        if (!host) return;
        const { kind: _kind, from, to: _to, id, ...operation } = message;
        return host.call(from, id, operation as Operation, this.replyTo(from, id));
      }
      case 'cancel': return host?.cancel(message.from, message.id);
      case 'interrupt': return host?.interrupt(message.from);
      case 'bye': return host?.forget(message.from);
      case 'ping':
        if (host) this.post({ kind: 'pong', to: message.from });
        return;
      case 'owner':
        if (host) return;
        if (this.owner !== undefined && this.owner !== message.owner) this.failPending(ownerClosed());
        this.owner = message.owner;
        this.lastHeard = Date.now();
        this.setShared(message.model);
        this.ownerKnown();
        return;
      case 'model':
        if (host || message.owner !== this.owner) return;
        this.lastHeard = Date.now();
        return this.setShared(message.model);
      case 'progress':
      case 'chunk':
      case 'result':
      case 'pong': {
        this.lastHeard = Date.now();
        if (message.kind === 'pong') return;
        const pending = this.pending.get(message.id);
        if (message.kind === 'progress') pending?.progress(message.progress);
        else if (message.kind === 'chunk') pending?.chunk(message.chunk);
        else pending?.result(message.result);
      }
    }
  }

  /** Answers for a call from another tab, sent back over the channel. */
  private replyTo(to: string, id: number): Reply {
    return {
      progress: (progress) => this.post({ kind: 'progress', to, id, progress }),
      chunk: (chunk) => this.post({ kind: 'chunk', to, id, chunk }),
      result: (result) => this.post({ kind: 'result', to, id, result }),
    };
  }

  private setShared(model: SharedModel | undefined): void {
    this.shared = model;
    for (const listener of this.listeners) {
      try {
        listener(model);
      } catch {
        // A failing listener must not stop the others.
      }
    }
  }

  private post(message: Message): void {
    if (!this.ended || message.kind === 'bye') this.channel.postMessage(message);
  }

  /** While calls wait on another tab, ping it: a tab that stopped answering fails them instead of hanging them. */
  private watchOwner(): void {
    if (this.timer !== undefined) return;
    this.lastHeard = Date.now();
    const timeout = this.options.ownerTimeoutMs ?? DEFAULT_OWNER_TIMEOUT_MS;
    this.timer = setInterval(() => {
      if (this.host || !this.owner) return;
      const silent = Date.now() - this.lastHeard;
      if (silent > timeout) {
        this.failPending(new EngineError('worker-failed', `the tab that runs the model stopped answering (${Math.round(silent / 1000)} s)`, { detail: 'owner-silent' }));
        return;
      }
      this.post({ kind: 'ping', from: this.tabId, to: this.owner });
    }, Math.min(PING_INTERVAL_MS, timeout / 2));
  }

  private stopWatching(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

// ---- small pieces ---------------------------------------------------------------------------------

const ignoredReply: Reply = { progress: () => undefined, chunk: () => undefined, result: () => undefined };

const waiterKey = (from: string, id: number) => `${from}/${id}`;

/** What makes two loads the same: the spec and the options, fields in a fixed order; a picked file never matches. */
function modelKey(spec: ModelSpec, options: WorkerLoadOptions): string | undefined {
  if (spec.kind === 'blob') return undefined;
  const sorted = (value: object) => Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
  return JSON.stringify([sorted(spec), sorted(options)]);
}

/** The whole answer of a generation stopped before its turn came. */
function stoppedChunk(model: string, id: string): ChatCompletionChunk {
  return {
    id: `chatcmpl-${id}`,
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, delta: {}, finish_reason: 'abort' }],
    usage: {
      prompt_tokens: 0, completion_tokens: 0, total_tokens: 0,
      extra: { cached_prompt_tokens: 0, prefilled_tokens: 0, dropped_messages: 0, time_to_first_token_s: 0, prefill_tokens_per_s: 0, decode_tokens_per_s: 0 },
    },
  };
}

/** Chunks pushed as they arrive, read once as an async iterable; a reader leaving early calls `onLeave`. */
class ChunkQueue implements AsyncIterable<ChatCompletionChunk> {
  private readonly chunks: ChatCompletionChunk[] = [];
  private ended = false;
  private failure: { error: unknown } | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly onLeave: () => void) {}

  push(chunk: ChatCompletionChunk): void {
    this.chunks.push(chunk);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  fail(error: unknown): void {
    this.failure = { error };
    this.end();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ChatCompletionChunk> {
    let finished = false;
    try {
      for (;;) {
        const chunk = this.chunks.shift();
        if (chunk) {
          yield chunk;
          continue;
        }
        if (this.failure) throw this.failure.error;
        if (this.ended) break;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
      finished = true;
    } finally {
      if (!finished && !this.failure) this.onLeave();
    }
  }
}
