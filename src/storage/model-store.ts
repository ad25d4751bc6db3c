// Models kept in the browser's own storage: downloaded once (with progress and resume), then
// loaded from IndexedDB on every later visit, online or offline. Works on a page and in a Worker.
//
// Layout: one idb-keyval custom store (one object store), two kinds of keys:
//   ['m', id]         → ModelRecord (what the UI lists, plus what resuming needs)
//   ['c', id, index]  → Blob, bytes [index·chunkBytes, (index+1)·chunkBytes) of the file
// A chunk and the record that counts it are written in ONE transaction, so after a crash, a
// closed tab or a full disk the record never claims a chunk that is not there.
//
// Chunks are Blobs, not ArrayBuffers: Chromium keeps Blob values as plain files beside its
// database and hands back a cheap handle, where an ArrayBuffer value is serialized, compressed
// and copied through IPC on every get (several times slower to read: docs/perf-log.md). Loading takes all chunk
// handles once and reads the ranges the model asks for straight from those files.
//
// Chunk size: 16 MiB. Big enough that a 2.4 GB model is ~150 records (per-record IndexedDB
// overhead and transaction count stay negligible), small enough that an interrupted download
// loses at most 16 MiB and holds one 16 MiB buffer in memory. It is a multiple of 64, so the
// SHA-256 state at a chunk boundary has no partial block and can be stored with the chunk.
import { createStore, promisifyRequest, type UseStore } from 'idb-keyval';
import { checkRange, readBlobInto, type ByteSource } from '../gguf/byte-source.ts';
import { findCatalogueEntryByUrl } from './catalogue.ts';
import { formatBytes } from '../format.ts';
import { StorageError } from './errors.ts';
import { Sha256, sha256FromHeader, type Sha256State } from './sha256.ts';
import { parseContentRange } from './url-source.ts';

export { StorageError, type StorageErrorCode } from './errors.ts';

export const DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024;
const DEFAULT_RETRIES = 3;
/** No byte for this long (headers or body) means the connection stalled: drop it and resume. */
const DEFAULT_STALL_TIMEOUT_MS = 30_000;
const PROGRESS_INTERVAL_MS = 100;
const RATE_WINDOW_MS = 5000;

export interface CachedModel {
  id: string;
  /** Where it was downloaded from ('' for an imported local file). */
  url: string;
  name: string;
  totalBytes: number;
  /** Bytes safely stored (whole chunks); equals totalBytes once complete. */
  storedBytes: number;
  /** True only after the size (and the SHA-256, where one was known) checked out. */
  complete: boolean;
  /** ms since the epoch. */
  updatedAt: number;
  /** 'url' for downloads, 'file' for imported local files. */
  kind: 'url' | 'file';
  /** SHA-256 of the stored bytes (set once complete). */
  sha256?: string;
  /** True when sha256 matched a hash the server or caller named in advance. */
  hashVerified?: boolean;
}

export interface DownloadProgress {
  /** Bytes of the file received so far (including what earlier sessions stored). */
  loadedBytes: number;
  totalBytes: number;
  /** Recent transfer rate (last few seconds of this session). */
  bytesPerSecond: number;
  /** Seconds left at that rate; Infinity before any rate is known. */
  etaSeconds: number;
  /** Set while waiting to retry after a failed attempt: which attempt comes next and why. */
  retry?: DownloadRetry;
}

export interface DownloadRetry {
  /** The attempt about to start (2 = the first retry). */
  attempt: number;
  /** Attempts in all. */
  attempts: number;
  /** Seconds until it starts. */
  inSeconds: number;
  /** 'stalled' | 'network' | 'http-status': what went wrong. */
  code: string;
  /** The failure, in words. */
  reason: string;
  /** The browser says it is offline. */
  offline: boolean;
}

export interface DownloadOptions {
  onProgress?(progress: DownloadProgress): void;
  signal?: AbortSignal;
  /** Ask navigator.storage.persist() first so the browser does not evict the model (default true; pages only). */
  persist?: boolean;
  /** Display name (default: the catalogue name, else the file name from the URL). */
  name?: string;
  /** Expected SHA-256 (hex). Otherwise taken from an X-Linked-ETag header or the Hugging Face API when available. */
  sha256?: string;
  /** Expected size; a server announcing another size is refused. */
  expectedBytes?: number;
  /** Automatic resumes after a network error, a stall or HTTP 5xx before giving up (default 3). */
  retries?: number;
  /** No byte for this many ms (while waiting for headers or body) counts as a stall (default 30 s). */
  stallTimeoutMs?: number;
  /** Ask huggingface.co's API for the file's SHA-256 when the URL is a Hugging Face one (default true). */
  lookupHash?: boolean;
  /** Extra request headers (e.g. Authorization for a gated repo). */
  headers?: Record<string, string>;
}

export interface ImportOptions {
  onProgress?(progress: DownloadProgress): void;
  signal?: AbortSignal;
  persist?: boolean;
  name?: string;
}

export interface StoreUsage {
  /** Bytes this origin uses (all storage, not only models), per navigator.storage.estimate(). */
  usage: number;
  quota: number;
  persisted: boolean;
}

export interface ModelStoreOptions {
  /** Chunk size for new models (a positive multiple of 64). Stored per model, so changing it later is safe. */
  chunkBytes?: number;
  /** fetch to use (default the global one). */
  fetch?: typeof fetch;
}

/** What is kept per model. */
interface ModelRecord extends CachedModel {
  chunkBytes: number;
  etag?: string;
  lastModified?: string;
  /** SHA-256 known in advance (header, API or caller), checked before `complete` is set. */
  expectedSha256?: string;
  /** Hash state after the first hashState.bytes bytes (a chunk boundary ≤ storedBytes). */
  hashState?: Sha256State;
}

type Key = IDBValidKey;
const metaKey = (id: string): Key => ['m', id];
const chunkKey = (id: string, index: number): Key => ['c', id, index];
const allMeta = (): IDBKeyRange => IDBKeyRange.bound(['m'], ['m', []]);
const chunksOf = (id: string): IDBKeyRange => IDBKeyRange.bound(['c', id], ['c', id, []]);

function publicView(record: ModelRecord): CachedModel {
  const view: CachedModel = {
    id: record.id,
    url: record.url,
    name: record.name,
    totalBytes: record.totalBytes,
    storedBytes: record.storedBytes,
    complete: record.complete,
    updatedAt: record.updatedAt,
    kind: record.kind,
  };
  if (record.sha256 !== undefined) view.sha256 = record.sha256;
  if (record.hashVerified !== undefined) view.hashVerified = record.hashVerified;
  return view;
}

function isOffline(): boolean {
  return typeof navigator !== 'undefined' && navigator.onLine === false;
}

/** A failed request in words a person can act on: offline, or the server out of reach. */
function networkError(url: string, what: string, cause: unknown): StorageError {
  const host = (() => {
    try {
      return new URL(url).host;
    } catch {
      return url;
    }
  })();
  const lead = isOffline()
    ? 'You are offline, so the model cannot be downloaded now'
    : `The server ${host} cannot be reached`;
  return new StorageError('network', `${lead} (${what}). What was downloaded is kept; try again when the connection is back, or open a GGUF file from this device.`, { cause });
}

function isQuotaError(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'QuotaExceededError';
}

function abortError(signal: AbortSignal | undefined): StorageError {
  return new StorageError('aborted', `download aborted${signal?.reason ? `: ${String(signal.reason)}` : ''}`, { cause: signal?.reason });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function parseLength(header: string | null): number | undefined {
  if (header === null || !/^\s*\d+\s*$/.test(header)) return undefined;
  const n = Number(header);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Turns bytes-so-far into the rate and ETA of the last few seconds, calling back at most every 100 ms. */
class ProgressMeter {
  private readonly samples: { time: number; bytes: number }[] = [];
  private lastReport = -Infinity;

  constructor(
    private readonly totalBytes: number,
    private readonly report: ((p: DownloadProgress) => void) | undefined,
  ) {}

  update(loadedBytes: number, force = false): void {
    if (!this.report) return;
    const now = performance.now();
    this.samples.push({ time: now, bytes: loadedBytes });
    while (this.samples.length > 2 && now - this.samples[0]!.time > RATE_WINDOW_MS) this.samples.shift();
    if (!force && now - this.lastReport < PROGRESS_INTERVAL_MS) return;
    this.lastReport = now;
    const first = this.samples[0]!;
    const seconds = (now - first.time) / 1000;
    const bytesPerSecond = seconds > 0 ? (loadedBytes - first.bytes) / seconds : 0;
    const remaining = this.totalBytes - loadedBytes;
    const etaSeconds = remaining <= 0 ? 0 : bytesPerSecond > 0 ? remaining / bytesPerSecond : Infinity;
    this.report({ loadedBytes, totalBytes: this.totalBytes, bytesPerSecond, etaSeconds });
  }
}

function storageManager(): StorageManager | undefined {
  return typeof navigator === 'undefined' ? undefined : navigator.storage;
}

/** Free bytes for this origin per navigator.storage.estimate(), or undefined when unknown. */
async function availableBytes(): Promise<number | undefined> {
  const estimate = await storageManager()?.estimate?.().catch(() => undefined);
  if (!estimate || estimate.quota === undefined || estimate.usage === undefined) return undefined;
  return Math.max(0, estimate.quota - estimate.usage);
}

async function quotaError(neededBytes: number, cause?: unknown): Promise<StorageError> {
  const available = await availableBytes();
  const detail = available === undefined ? '' : ` (${formatBytes(available)} available)`;
  return new StorageError(
    'quota',
    `not enough storage space: the model needs ${formatBytes(neededBytes)} more${detail}. ` +
      'Free some space (delete cached models or other site data) and try again; what was downloaded so far is kept.',
    { neededBytes, ...(available === undefined ? {} : { availableBytes: available }), cause },
  );
}

async function checkSpace(neededBytes: number): Promise<void> {
  const available = await availableBytes();
  if (available !== undefined && neededBytes > available) throw await quotaError(neededBytes);
}

async function askPersistence(): Promise<void> {
  const storage = storageManager();
  // persist() exists on pages only (not in Workers); it may show a prompt or quietly say no.
  if (!storage || typeof storage.persist !== 'function') return;
  try {
    if (!(await storage.persisted())) await storage.persist();
  } catch {
    // Persistence is a request, not a requirement.
  }
}

/**
 * The SHA-256 Hugging Face publishes for an LFS/Xet file (its `lfs.oid`), from the tree API, or
 * undefined if the URL is not a huggingface.co resolve URL or the API does not answer in time.
 */
async function lookupHuggingFaceSha256(url: string, size: number, fetchImpl: typeof fetch, headers: Record<string, string>): Promise<string | undefined> {
  const match = /^https:\/\/huggingface\.co\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/([^?#]+)$/.exec(url);
  if (!match) return undefined;
  const [, repo, revision, filePath] = match as unknown as [string, string, string, string];
  const path = decodeURIComponent(filePath);
  const slash = path.lastIndexOf('/');
  const folder = slash < 0 ? '' : `/${path.slice(0, slash)}`;
  try {
    const response = await fetchImpl(`https://huggingface.co/api/models/${repo}/tree/${revision}${folder}`, {
      headers,
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) return undefined;
    const entries: unknown = await response.json();
    if (!Array.isArray(entries)) return undefined;
    for (const entry of entries as { path?: unknown; lfs?: { oid?: unknown; size?: unknown } }[]) {
      if (entry?.path !== path) continue;
      const oid = typeof entry.lfs?.oid === 'string' ? sha256FromHeader(entry.lfs.oid) : undefined;
      // Only a hash of this very file: same size as the download announces.
      return oid !== undefined && entry.lfs?.size === size ? oid : undefined;
    }
  } catch {
    // Offline, CORS, timeout: no hash to check against, the size check still applies.
  }
  return undefined;
}

/** Downloads/imports running in this context (any ModelStore instance), by store name and id, so delete() can stop them. */
const active = new Map<string, AbortController>();

export class ModelStore {
  private constructor(
    private readonly idb: UseStore,
    readonly name: string,
    readonly chunkBytes: number,
    private readonly fetchImpl: typeof fetch,
  ) {}

  /** The store named `name` (one IndexedDB database). Throws StorageError 'unsupported' without IndexedDB. */
  static open(name = 'qwen-web', options: ModelStoreOptions = {}): ModelStore {
    if (typeof indexedDB === 'undefined') {
      throw new StorageError('unsupported', 'IndexedDB is not available here, so models cannot be kept in the browser');
    }
    const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0 || chunkBytes % 64 !== 0) {
      throw new RangeError(`chunkBytes must be a positive multiple of 64, got ${chunkBytes}`);
    }
    const fetchImpl = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init));
    return new ModelStore(createStore(`${name}-models`, 'models'), name, chunkBytes, fetchImpl);
  }

  /** The id a model downloaded from `url` is kept under (the absolute URL without its #fragment). */
  idForUrl(url: string): string {
    const base = typeof location === 'undefined' ? undefined : location.href;
    const parsed = new URL(url, base);
    parsed.hash = '';
    return parsed.href;
  }

  /** Every cached model, complete or not, most recently changed first. */
  async list(): Promise<CachedModel[]> {
    const records = await this.idb('readonly', (store) => promisifyRequest(store.getAll(allMeta()) as IDBRequest<ModelRecord[]>));
    return records.map(publicView).sort((a, b) => b.updatedAt - a.updatedAt);
  }

  async get(id: string): Promise<CachedModel | undefined> {
    const record = await this.record(id);
    return record && publicView(record);
  }

  /** Removes a model and all its chunks (stopping its download if one runs in this context). */
  async delete(id: string): Promise<void> {
    active.get(`${this.name}\n${id}`)?.abort(new StorageError('aborted', `${id} was deleted`));
    await this.idb('readwrite', (store) => {
      store.delete(metaKey(id));
      store.delete(chunksOf(id));
      return promisifyRequest(store.transaction);
    });
  }

  async usage(): Promise<StoreUsage> {
    const storage = storageManager();
    const estimate = (await storage?.estimate?.().catch(() => undefined)) ?? {};
    const persisted = (await storage?.persisted?.().catch(() => false)) ?? false;
    return { usage: estimate.usage ?? 0, quota: estimate.quota ?? 0, persisted };
  }

  /**
   * Downloads `url` into the store, resuming a partial download from its last complete chunk.
   * Resolves with the complete model (at once if it already is); rejects with a StorageError.
   */
  async download(url: string, options: DownloadOptions = {}): Promise<CachedModel> {
    const id = this.idForUrl(url);
    return this.exclusive(id, options.signal, async (signal) => {
      const retries = options.retries ?? DEFAULT_RETRIES;
      let stored = 0;
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.downloadOnce(id, url, options, signal);
        } catch (error) {
          const retryable = error instanceof StorageError &&
            (error.code === 'network' || error.code === 'stalled' ||
              (error.code === 'http-status' && (error.status! >= 500 || error.status === 408 || error.status === 429)));
          if (!retryable || attempt >= retries || signal.aborted) throw error;
          const delayMs = Math.min(1000 * 2 ** attempt, 10_000);
          const record = await this.record(id);
          stored = record?.storedBytes ?? stored;
          // Said while waiting, so a person sees why nothing arrives, and that it is being dealt with.
          options.onProgress?.({
            loadedBytes: stored, totalBytes: record?.totalBytes ?? 0, bytesPerSecond: 0, etaSeconds: Infinity,
            retry: { attempt: attempt + 2, attempts: retries + 1, inSeconds: delayMs / 1000, code: error.code, reason: error.message, offline: isOffline() },
          });
          await sleep(delayMs, signal);
        }
      }
    });
  }

  /**
   * A ByteSource over a complete model: each read fetches only the requested bytes from the
   * stored chunk files into the caller's buffer (e.g. a view of wasm memory). Reads may span chunks.
   */
  async openSource(id: string): Promise<ByteSource> {
    const record = await this.record(id);
    if (!record) throw new StorageError('not-found', `no cached model ${id}`);
    if (!record.complete) {
      throw new StorageError('incomplete',
        `${record.name} is only partly downloaded (${formatBytes(record.storedBytes)} of ${formatBytes(record.totalBytes)}): resume the download first`);
    }
    return this.chunkSource(record);
  }

  /**
   * Keeps a local file (from a file picker or a drop) in the store, chunk by chunk, so it loads
   * without the picker next time. Resumes an interrupted import of the same file.
   */
  async importFile(file: Blob & { name?: string; lastModified?: number }, options: ImportOptions = {}): Promise<CachedModel> {
    const fileName = options.name ?? file.name ?? 'model.gguf';
    const id = `file:${fileName}:${file.size}:${file.lastModified ?? 0}`;
    return this.exclusive(id, options.signal, async (signal) => {
      let record = await this.record(id);
      if (record?.complete) return publicView(record);
      record ??= this.newRecord(id, '', fileName, file.size, 'file');
      await checkSpace(record.totalBytes - record.storedBytes);
      if (options.persist !== false) await askPersistence();
      if (record.storedBytes === 0) await this.saveRecord(record); // listed (as partial) from now on
      const meter = new ProgressMeter(record.totalBytes, options.onProgress);
      const hasher = new Sha256(record.hashState);
      while (record.storedBytes < record.totalBytes) {
        if (signal.aborted) throw abortError(signal);
        const start = record.storedBytes;
        const end = Math.min(start + record.chunkBytes, record.totalBytes);
        const bytes = new Uint8Array(await file.slice(start, end).arrayBuffer());
        if (bytes.length !== end - start) {
          throw new StorageError('size-mismatch', `${fileName} returned ${bytes.length} of ${end - start} bytes at byte ${start} (was it changed on disk?)`);
        }
        hasher.update(bytes);
        const next: ModelRecord = { ...record, storedBytes: end, updatedAt: Date.now() };
        if (end % 64 === 0) next.hashState = hasher.save();
        // Store a copy of exactly the bytes hashed (the picked file may change on disk later).
        await this.writeChunk(record, start / record.chunkBytes, new Blob([bytes]), next);
        record = next;
        meter.update(end);
      }
      meter.update(record.totalBytes, true);
      return publicView(await this.finish(record));
    });
  }

  // ---- internals ----

  /** All chunk handles of a model, checked for count and sizes, as one ByteSource. */
  private async chunkSource(record: ModelRecord): Promise<ByteSource> {
    const values = await this.idb('readonly', (store) => promisifyRequest(store.getAll(chunksOf(record.id)) as IDBRequest<unknown[]>));
    const count = Math.ceil(record.storedBytes / record.chunkBytes);
    if (values.length !== count) {
      throw new StorageError('corrupt', `${record.name}: ${values.length} chunks stored, ${count} expected: delete the model and download it again`);
    }
    values.forEach((value, index) => {
      const expected = Math.min(record.chunkBytes, record.storedBytes - index * record.chunkBytes);
      if (!(value instanceof Blob) || value.size !== expected) {
        throw new StorageError('corrupt',
          `chunk ${index} of ${record.name} is ${value instanceof Blob ? `${value.size} bytes, ${expected} expected` : 'not stored data'}: delete the model and download it again`);
      }
    });
    return new StoredModelSource(record.name, values as Blob[], record.chunkBytes);
  }

  private async record(id: string): Promise<ModelRecord | undefined> {
    return this.idb('readonly', (store) => promisifyRequest(store.get(metaKey(id)) as IDBRequest<ModelRecord | undefined>));
  }

  private newRecord(id: string, url: string, name: string, totalBytes: number, kind: 'url' | 'file'): ModelRecord {
    return { id, url, name, totalBytes, storedBytes: 0, complete: false, updatedAt: Date.now(), kind, chunkBytes: this.chunkBytes };
  }

  /** One download or import per model at a time, across tabs and workers (Web Locks), abortable by delete(). */
  private async exclusive<T>(id: string, outer: AbortSignal | undefined, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const body = async (): Promise<T> => {
      const controller = new AbortController();
      const onOuterAbort = (): void => controller.abort(outer?.reason);
      if (outer?.aborted) throw abortError(outer);
      outer?.addEventListener('abort', onOuterAbort, { once: true });
      const key = `${this.name}\n${id}`;
      active.set(key, controller);
      try {
        return await run(controller.signal);
      } catch (error) {
        if (controller.signal.aborted && !(error instanceof StorageError && error.code === 'aborted')) {
          throw controller.signal.reason instanceof StorageError ? controller.signal.reason : abortError(controller.signal);
        }
        throw error;
      } finally {
        outer?.removeEventListener('abort', onOuterAbort);
        if (active.get(key) === controller) active.delete(key);
      }
    };
    const locks = typeof navigator === 'undefined' ? undefined : navigator.locks;
    if (!locks) return body();
    return locks.request(`${this.name}-models:${id}`, body) as Promise<T>;
  }

  /** Writes chunk `index` and the record that counts it, atomically; refuses if the model was deleted meanwhile. */
  private async writeChunk(previous: ModelRecord, index: number, bytes: Blob, next: ModelRecord): Promise<void> {
    let gone = false;
    try {
      await this.idb('readwrite', (store) => {
        const check = store.get(metaKey(previous.id));
        check.onsuccess = () => {
          // Deleted (or restarted) by someone else since we last looked: do not resurrect it.
          const current = check.result as ModelRecord | undefined;
          if (!current || current.storedBytes !== previous.storedBytes) {
            gone = true;
            store.transaction.abort();
            return;
          }
          store.put(bytes, chunkKey(previous.id, index));
          store.put(next, metaKey(previous.id));
        };
        return promisifyRequest(store.transaction);
      });
    } catch (error) {
      if (isQuotaError(error)) throw await quotaError(next.totalBytes - previous.storedBytes, error);
      if (gone) {
        throw new StorageError('aborted', `${previous.name} was deleted or restarted elsewhere while downloading`, { cause: error });
      }
      throw error;
    }
  }

  private async saveRecord(record: ModelRecord): Promise<void> {
    try {
      await this.idb('readwrite', (store) => {
        store.put(record, metaKey(record.id));
        return promisifyRequest(store.transaction);
      });
    } catch (error) {
      if (isQuotaError(error)) throw await quotaError(record.totalBytes - record.storedBytes, error);
      throw error;
    }
  }

  /** Drops every chunk and starts the record over (the file changed, or its bytes were wrong). */
  private async wipe(record: ModelRecord, fresh: ModelRecord | undefined): Promise<void> {
    await this.idb('readwrite', (store) => {
      store.delete(chunksOf(record.id));
      if (fresh) store.put(fresh, metaKey(record.id));
      else store.delete(metaKey(record.id));
      return promisifyRequest(store.transaction);
    });
  }

  /** Checks the stored size and hash, then marks the model complete. */
  private async finish(record: ModelRecord): Promise<ModelRecord> {
    if (record.storedBytes !== record.totalBytes) {
      throw new StorageError('size-mismatch', `${record.name}: stored ${record.storedBytes} of ${record.totalBytes} bytes`);
    }
    // The chunk count and each chunk's length (checked as they were written) add up to the size.
    const chunkCount = await this.idb('readonly', (store) => promisifyRequest(store.count(chunksOf(record.id))));
    const expectedChunks = Math.ceil(record.totalBytes / record.chunkBytes);
    if (chunkCount !== expectedChunks) {
      throw new StorageError('corrupt', `${record.name}: ${chunkCount} chunks stored, ${expectedChunks} expected`);
    }
    // Hash whatever lies after the last saved hash state (normally just the final short chunk).
    const hasher = new Sha256(record.hashState);
    if (hasher.bytesHashed < record.totalBytes) {
      const source = await this.chunkSource(record);
      for (let at = hasher.bytesHashed; at < record.totalBytes; at += record.chunkBytes) {
        hasher.update(await source.read(at, Math.min(record.chunkBytes, record.totalBytes - at)));
      }
    }
    const sha256 = hasher.hex();
    if (record.expectedSha256 !== undefined && record.expectedSha256 !== sha256) {
      await this.wipe(record, undefined);
      throw new StorageError('hash-mismatch',
        `${record.name}: the downloaded bytes have SHA-256 ${sha256}, the server named ${record.expectedSha256}; the download was discarded`);
    }
    const done: ModelRecord = {
      ...record,
      complete: true,
      sha256,
      hashVerified: record.expectedSha256 !== undefined,
      updatedAt: Date.now(),
    };
    delete done.hashState;
    await this.saveRecord(done);
    return done;
  }

  private async fetchFrom(url: string, start: number, options: DownloadOptions, signal: AbortSignal, request: AbortController): Promise<Response> {
    const stallMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    let stalled = false;
    const timer = setTimeout(() => {
      stalled = true;
      request.abort();
    }, stallMs);
    try {
      return await this.fetchImpl(url, {
        headers: { ...options.headers, Range: `bytes=${start}-` },
        signal: request.signal,
        // The browser's HTTP cache would keep a second copy of a multi-GB file.
        cache: 'no-store',
      });
    } catch (error) {
      if (signal.aborted) throw abortError(signal);
      if (stalled) throw new StorageError('stalled', `${url} sent no answer for ${stallMs / 1000} s`, { cause: error });
      throw networkError(url, `the request from byte ${start} failed: ${String(error)}`, error);
    } finally {
      clearTimeout(timer);
    }
  }

  private async downloadOnce(id: string, url: string, options: DownloadOptions, signal: AbortSignal): Promise<CachedModel> {
    let record = await this.record(id);
    if (record?.complete) return publicView(record);
    if (record && record.storedBytes === record.totalBytes) return publicView(await this.finish(record));

    const start = record?.storedBytes ?? 0;
    // One controller per request: the caller's abort and a stall both end it.
    const request = new AbortController();
    const onAbort = () => request.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.downloadFrom(id, url, record, start, options, signal, request);
    } finally {
      signal.removeEventListener('abort', onAbort);
      request.abort();
    }
  }

  private async downloadFrom(
    id: string, url: string, found: ModelRecord | undefined, start: number, options: DownloadOptions, signal: AbortSignal, request: AbortController,
  ): Promise<CachedModel> {
    let record = found;
    const response = await this.fetchFrom(url, start, options, signal, request);
    const discard = (): void => void response.body?.cancel().catch(() => undefined);
    const fail = (error: StorageError): never => {
      discard();
      throw error;
    };

    // What the response says about the file.
    let total: number;
    let bodyStart: number;
    const contentLength = parseLength(response.headers.get('Content-Length'));
    if (response.status === 206) {
      const range = parseContentRange(response.headers.get('Content-Range'));
      if (!range || range.start !== start || range.end !== range.size - 1) {
        fail(new StorageError('bad-response', `asked ${url} for bytes ${start}- and got Content-Range ${JSON.stringify(response.headers.get('Content-Range'))}`, { status: 206 }));
      }
      total = range!.size;
      bodyStart = start;
      if (contentLength !== undefined && contentLength !== total - start) {
        fail(new StorageError('size-mismatch',
          `${url}: Content-Length ${contentLength} does not match the ${total - start} bytes of Content-Range ${response.headers.get('Content-Range')}`, { status: 206 }));
      }
    } else if (response.status === 200) {
      // No range support (or the server chose to ignore it): the body is the whole file.
      if (contentLength === undefined) {
        fail(new StorageError('bad-response', `${url} did not say how large it is (no Content-Length or Content-Range)`, { status: 200 }));
      }
      total = contentLength!;
      bodyStart = 0;
    } else {
      fail(new StorageError('http-status', `HTTP ${response.status} ${response.statusText} for ${url}`, { status: response.status }));
    }
    total = total!;
    bodyStart = bodyStart!;
    if (options.expectedBytes !== undefined && total !== options.expectedBytes) {
      fail(new StorageError('size-mismatch', `${url} is ${total} bytes, ${options.expectedBytes} were expected`, { status: response.status }));
    }
    const etag = response.headers.get('ETag') ?? undefined;
    const lastModified = response.headers.get('Last-Modified') ?? undefined;
    const linkedSha256 = sha256FromHeader(response.headers.get('X-Linked-ETag'));

    if (record) {
      const changed = total !== record.totalBytes ||
        (record.etag !== undefined && etag !== undefined && etag !== record.etag) ||
        (record.etag === undefined && record.lastModified !== undefined && lastModified !== undefined && lastModified !== record.lastModified) ||
        (record.expectedSha256 !== undefined && linkedSha256 !== undefined && linkedSha256 !== record.expectedSha256);
      // Without a validator (ETag, Last-Modified) nor a known hash, nothing proves that the bytes
      // after the stored ones belong to the same file: start over rather than store a mix.
      const unprovable = start > 0 && record.etag === undefined && record.lastModified === undefined && record.expectedSha256 === undefined;
      if (changed || unprovable) {
        await this.wipe(record, undefined);
        record = undefined;
        if (bodyStart !== 0) {
          // The body continues the old file's offsets: ask again from byte 0.
          discard();
          return this.downloadOnce(id, url, options, signal);
        }
      }
    }
    if (!record) {
      const name = options.name ?? findCatalogueEntryByUrl(url)?.name ?? decodeURIComponent(new URL(id).pathname.split('/').pop() || id);
      record = this.newRecord(id, url, name, total, 'url');
      if (etag !== undefined) record.etag = etag;
      if (lastModified !== undefined) record.lastModified = lastModified;
      const expected = options.sha256?.toLowerCase() ?? linkedSha256 ??
        (options.lookupHash === false ? undefined : await lookupHuggingFaceSha256(url, total, this.fetchImpl, options.headers ?? {}));
      if (expected !== undefined) record.expectedSha256 = expected;
    }

    try {
      await checkSpace(total - record.storedBytes);
    } catch (error) {
      discard();
      throw error;
    }
    if (options.persist !== false) await askPersistence();
    if (record.storedBytes === 0) await this.saveRecord(record); // listed (as partial) from now on

    if (!response.body) fail(new StorageError('bad-response', `${url} sent no body`, { status: response.status }));
    return publicView(await this.receive(record, response.body!, bodyStart, options, signal, request));
  }

  /** Streams the body into chunks, each written with its record; returns the finished record. */
  private async receive(
    initial: ModelRecord, body: ReadableStream<Uint8Array>, bodyStart: number, options: DownloadOptions, signal: AbortSignal, request: AbortController,
  ): Promise<ModelRecord> {
    const stallMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    let record = initial;
    const total = record.totalBytes;
    const chunkBytes = record.chunkBytes;
    const hasher = new Sha256(record.hashState);
    const meter = new ProgressMeter(total, options.onProgress);
    // One buffer: a full chunk is copied into a Blob at once, so it can refill while the Blob is written.
    const buffer = new Uint8Array(Math.min(chunkBytes, total));
    let fill = 0;
    let skip = record.storedBytes - bodyStart; // a 200 answer to a resume: its first bytes are stored already
    let position = record.storedBytes; // file offset of buffer[0]
    let pendingWrite: Promise<void> = Promise.resolve();
    const reader = body.getReader();
    const chunkLength = (offset: number): number => Math.min(chunkBytes, total - offset);

    meter.update(position, true);
    try {
      for (;;) {
        let result: ReadableStreamReadResult<Uint8Array>;
        let stalled = false;
        const timer = setTimeout(() => {
          stalled = true;
          request.abort();
        }, stallMs);
        try {
          result = await reader.read();
        } catch (error) {
          if (signal.aborted) throw abortError(signal);
          if (stalled) throw new StorageError('stalled', `${record.url} stopped sending after byte ${position + fill} of ${total} (nothing for ${stallMs / 1000} s)`, { cause: error });
          throw networkError(record.url, `the connection dropped after byte ${position + fill} of ${total}: ${String(error)}`, error);
        } finally {
          clearTimeout(timer);
        }
        if (result.done) break;
        let piece = result.value;
        if (skip > 0) {
          const dropped = Math.min(skip, piece.length);
          skip -= dropped;
          piece = piece.subarray(dropped);
        }
        while (piece.length > 0) {
          const wanted = chunkLength(position) - fill;
          if (wanted <= 0) {
            throw new StorageError('size-mismatch', `${record.url} sent more than the ${total} bytes it announced`);
          }
          const take = Math.min(wanted, piece.length);
          buffer.set(piece.subarray(0, take), fill);
          fill += take;
          piece = piece.subarray(take);
          if (fill === chunkLength(position)) {
            const bytes = buffer.subarray(0, fill);
            const blob = new Blob([bytes]);
            hasher.update(bytes);
            const end = position + fill;
            const next: ModelRecord = { ...record, storedBytes: end, updatedAt: Date.now() };
            if (end % 64 === 0) next.hashState = hasher.save();
            await pendingWrite; // one write in flight at a time: the disk sets the pace
            pendingWrite = this.writeChunk(record, position / chunkBytes, blob, next);
            pendingWrite.catch(() => undefined); // observed below
            record = next;
            position = end;
            fill = 0;
          }
        }
        meter.update(position + fill);
        if (signal.aborted) throw abortError(signal);
      }
      await pendingWrite;
    } catch (error) {
      await reader.cancel().catch(() => undefined);
      // Chunks already handed to IndexedDB stay (a later call resumes after them); a failed
      // write (full disk) is the better explanation than whatever stopped the loop.
      const writeError = await pendingWrite.then(() => undefined, (e: unknown) => e);
      throw writeError instanceof StorageError && writeError.code === 'quota' ? writeError : error;
    }
    if (position + fill !== total || skip > 0) {
      throw new StorageError('size-mismatch', `${record.url} ended after ${position + fill} of the ${total} bytes it announced`);
    }
    meter.update(total, true);
    return this.finish(record);
  }
}

/**
 * A complete model in IndexedDB as a ByteSource over its chunk Blobs: a read is split at chunk
 * boundaries and each piece is read from its chunk's file into the caller's buffer. (Reading the
 * pieces concurrently was no faster: Chromium's Blob reads top out at one rate whatever the piece
 * size or count; docs/perf-log.md.)
 */
class StoredModelSource implements ByteSource {
  readonly size: number;

  constructor(
    private readonly name: string,
    private readonly chunks: Blob[],
    private readonly chunkBytes: number,
  ) {
    this.size = chunks.reduce((sum, chunk) => sum + chunk.size, 0);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const target = new Uint8Array(length);
    await this.readInto(offset, target);
    return target;
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    checkRange(this.size, offset, target.length);
    const end = offset + target.length;
    try {
      for (let at = offset; at < end; ) {
        const index = Math.floor(at / this.chunkBytes);
        const chunkStart = index * this.chunkBytes;
        const to = Math.min(end, chunkStart + this.chunkBytes);
        const got = await readBlobInto(this.chunks[index]!.slice(at - chunkStart, to - chunkStart), target.subarray(at - offset, to - offset));
        if (got !== to - at) {
          throw new StorageError('corrupt', `${this.name}: chunk ${index} gave ${got} of ${to - at} bytes`);
        }
        at = to;
      }
    } catch (error) {
      // The stored files went away under us (model deleted, site data cleared).
      if (error instanceof DOMException) {
        throw new StorageError('corrupt', `${this.name} can no longer be read from storage (${error.name}): download it again`, { cause: error });
      }
      throw error;
    }
  }
}
