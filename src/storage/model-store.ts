// Models kept in the browser's own storage: downloaded once (with progress and resume), then
// loaded from IndexedDB on every later visit, online or offline. Works on a page and in a Worker.
//
// This file is the facade: ModelStore composes the download side (download.ts: HTTP answers,
// resume decisions, stalls, retries, progress) and the chunk store (chunk-store.ts: the IndexedDB
// records and chunk Blobs, storage space, the ByteSource over stored chunks), and holds the
// public types. Neither of those two imports this file or the other.
//
// Chunk size: 16 MiB. Big enough that a 2.4 GB model is ~150 records (per-record IndexedDB
// overhead and transaction count stay negligible), small enough that an interrupted download
// loses at most 16 MiB and holds one 16 MiB buffer in memory. It is a multiple of 64, so the
// SHA-256 state at a chunk boundary has no partial block and can be stored with the chunk.
import type { ByteSource } from '../gguf/byte-source.ts';
import { findCatalogueEntryByUrl } from './catalogue.ts';
import { formatBytes } from '../format.ts';
import { StorageError } from './errors.ts';
import { Sha256 } from './sha256.ts';
import {
  askPersistence, checkSpace, ChunkStore, publicView, storageManager, type CachedModel, type ModelRecord,
} from './chunk-store.ts';
import {
  abortError, DEFAULT_RETRIES, DEFAULT_STALL_TIMEOUT_MS, discardBody, fetchFrom, isOffline, isRetryable, lookupHuggingFaceSha256,
  mustRestart, ProgressMeter, readBody, readResponse, retryDelayMs, sleep, type DownloadProgress,
} from './download.ts';

export { StorageError, type StorageErrorCode } from './errors.ts';
export type { CachedModel } from './chunk-store.ts';
export type { DownloadProgress, DownloadRetry } from './download.ts';

export const DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024;

export interface DownloadOptions {
  onProgress?(progress: DownloadProgress): void;
  signal?: AbortSignal;
  /** Ask navigator.storage.persist() as the download starts (not waiting for the answer) so the browser does not evict the model (default true; pages only). */
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

/** Downloads/imports running in this context (any ModelStore instance), by store name and id, so delete() can stop them. */
const active = new Map<string, AbortController>();

export class ModelStore {
  private constructor(
    private readonly chunks: ChunkStore,
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
    return new ModelStore(new ChunkStore(name), name, chunkBytes, fetchImpl);
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
    const records = await this.chunks.records();
    return records.map(publicView).sort((a, b) => b.updatedAt - a.updatedAt);
  }

  async get(id: string): Promise<CachedModel | undefined> {
    const record = await this.chunks.record(id);
    return record && publicView(record);
  }

  /** Removes a model and all its chunks (stopping its download if one runs in this context). */
  async delete(id: string): Promise<void> {
    active.get(`${this.name}\n${id}`)?.abort(new StorageError('aborted', `${id} was deleted`));
    await this.chunks.remove(id);
  }

  async usage(): Promise<StoreUsage> {
    const storage = storageManager();
    const estimate = (await storage?.estimate?.().catch(() => undefined)) ?? {};
    const persisted = (await storage?.persisted?.().catch(() => false)) ?? false;
    return { usage: estimate.usage ?? 0, quota: estimate.quota ?? 0, persisted };
  }

  /**
   * Downloads `url` into the store, resuming a partial download from its last complete chunk.
   * Resolves with the complete model (at once if it already is); rejects with a StorageError
   * ('unsupported', with no record left, where the browser keeps no downloaded data).
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
          // Storage that keeps no data (WebKit's private windows): a record it can never complete
          // would only sit in the list.
          if (error instanceof StorageError && error.code === 'unsupported') await this.chunks.remove(id).catch(() => undefined);
          if (!isRetryable(error) || attempt >= retries || signal.aborted) throw error;
          const delayMs = retryDelayMs(attempt);
          const record = await this.chunks.record(id);
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
    const record = await this.chunks.record(id);
    if (!record) throw new StorageError('not-found', `no cached model ${id}`);
    if (!record.complete) {
      throw new StorageError('incomplete',
        `${record.name} is only partly downloaded (${formatBytes(record.storedBytes)} of ${formatBytes(record.totalBytes)}): resume the download first`);
    }
    return this.chunks.chunkSource(record);
  }

  /**
   * Keeps a local file (from a file picker or a drop) in the store, chunk by chunk, so it loads
   * without the picker next time. Resumes an interrupted import of the same file.
   */
  async importFile(file: Blob & { name?: string; lastModified?: number }, options: ImportOptions = {}): Promise<CachedModel> {
    const fileName = options.name ?? file.name ?? 'model.gguf';
    const id = `file:${fileName}:${file.size}:${file.lastModified ?? 0}`;
    return this.exclusive(id, options.signal, async (signal) => {
      let record = await this.chunks.record(id);
      if (record?.complete) return publicView(record);
      record ??= this.newRecord(id, '', fileName, file.size, 'file');
      await checkSpace(record.totalBytes - record.storedBytes);
      if (options.persist !== false) await askPersistence();
      if (record.storedBytes === 0) await this.chunks.saveRecord(record); // listed (as partial) from now on
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
        await this.chunks.writeChunk(record, start / record.chunkBytes, new Blob([bytes]), next);
        record = next;
        meter.update(end);
      }
      meter.update(record.totalBytes, true);
      return publicView(await this.finish(record));
    });
  }

  // ---- internals ----

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

  /** Checks the stored size and hash, then marks the model complete. */
  private async finish(record: ModelRecord): Promise<ModelRecord> {
    if (record.storedBytes !== record.totalBytes) {
      throw new StorageError('size-mismatch', `${record.name}: stored ${record.storedBytes} of ${record.totalBytes} bytes`);
    }
    // The chunk count and each chunk's length (checked as they were written) add up to the size.
    const chunkCount = await this.chunks.chunkCount(record.id);
    const expectedChunks = Math.ceil(record.totalBytes / record.chunkBytes);
    if (chunkCount !== expectedChunks) {
      throw new StorageError('corrupt', `${record.name}: ${chunkCount} chunks stored, ${expectedChunks} expected`);
    }
    // Hash whatever lies after the last saved hash state (normally just the final short chunk).
    const hasher = new Sha256(record.hashState);
    if (hasher.bytesHashed < record.totalBytes) {
      const source = await this.chunks.chunkSource(record);
      for (let at = hasher.bytesHashed; at < record.totalBytes; at += record.chunkBytes) {
        hasher.update(await source.read(at, Math.min(record.chunkBytes, record.totalBytes - at)));
      }
    }
    const sha256 = hasher.hex();
    if (record.expectedSha256 !== undefined && record.expectedSha256 !== sha256) {
      await this.chunks.wipe(record, undefined);
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
    await this.chunks.saveRecord(done);
    return done;
  }

  private async downloadOnce(id: string, url: string, options: DownloadOptions, signal: AbortSignal): Promise<CachedModel> {
    let record = await this.chunks.record(id);
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
    const response = await fetchFrom(this.fetchImpl, url, start, options, signal, request);
    const discard = (): void => discardBody(response);
    const fail = (error: StorageError): never => {
      discard();
      throw error;
    };

    // What the response says about the file.
    const answer = readResponse(response, url, start, options.expectedBytes);
    const { total, bodyStart, etag, lastModified, linkedSha256 } = answer;

    if (record && mustRestart(record, start, answer)) {
      await this.chunks.wipe(record, undefined);
      record = undefined;
      if (bodyStart !== 0) {
        // The body continues the old file's offsets: ask again from byte 0.
        discard();
        return this.downloadOnce(id, url, options, signal);
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
    if (record.storedBytes === 0) await this.chunks.saveRecord(record); // listed (as partial) from now on

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
        const result = await readBody(reader, record.url, position + fill, total, stallMs, signal, request);
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
            pendingWrite = this.chunks.writeChunk(record, position / chunkBytes, blob, next);
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
