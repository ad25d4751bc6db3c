// The chunk store: models kept in IndexedDB as a record and chunk Blobs, the storage space they
// need, and a ByteSource over a stored model. No HTTP here: model-store.ts feeds it.
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
import { createStore, promisifyRequest, type UseStore } from 'idb-keyval';
import { checkRange, readBlobInto, type ByteSource } from '../gguf/byte-source.ts';
import { formatBytes } from '../format.ts';
import { StorageError } from './errors.ts';
import type { Sha256State } from './sha256.ts';

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

/** What is kept per model. */
export interface ModelRecord extends CachedModel {
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

export function publicView(record: ModelRecord): CachedModel {
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

function isQuotaError(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'QuotaExceededError';
}

export function storageManager(): StorageManager | undefined {
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

export async function checkSpace(neededBytes: number): Promise<void> {
  const available = await availableBytes();
  if (available !== undefined && neededBytes > available) throw await quotaError(neededBytes);
}

export async function askPersistence(): Promise<void> {
  const storage = storageManager();
  // persist() exists on pages only (not in Workers); it may show a prompt or quietly say no.
  // Not awaited: Firefox answers only once the person has answered its prompt, and a download
  // must not wait for that (persistence is a request, not a requirement).
  if (!storage || typeof storage.persist !== 'function') return;
  try {
    if (!(await storage.persisted())) storage.persist().catch(() => undefined);
  } catch {
    // persisted() failed: ask nothing.
  }
}

/** The records and chunks of one store (one IndexedDB database, `${name}-models`). */
export class ChunkStore {
  private readonly idb: UseStore;

  constructor(name: string) {
    this.idb = createStore(`${name}-models`, 'models');
  }

  /** Every model's record, in key order. */
  async records(): Promise<ModelRecord[]> {
    return this.idb('readonly', (store) => promisifyRequest(store.getAll(allMeta()) as IDBRequest<ModelRecord[]>));
  }

  async record(id: string): Promise<ModelRecord | undefined> {
    return this.idb('readonly', (store) => promisifyRequest(store.get(metaKey(id)) as IDBRequest<ModelRecord | undefined>));
  }

  /** Removes a model's record and all its chunks in one transaction. */
  async remove(id: string): Promise<void> {
    await this.idb('readwrite', (store) => {
      store.delete(metaKey(id));
      store.delete(chunksOf(id));
      return promisifyRequest(store.transaction);
    });
  }

  /** How many chunks of model `id` are stored. */
  async chunkCount(id: string): Promise<number> {
    return this.idb('readonly', (store) => promisifyRequest(store.count(chunksOf(id))));
  }

  /** All chunk handles of a model, checked for count and sizes, as one ByteSource. */
  async chunkSource(record: ModelRecord): Promise<ByteSource> {
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

  /** Writes chunk `index` and the record that counts it, atomically; refuses if the model was deleted meanwhile. */
  async writeChunk(previous: ModelRecord, index: number, bytes: Blob, next: ModelRecord): Promise<void> {
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
      // Aborted by the browser without a reason: WebKit does so for data it will not keep
      // (a private window's IndexedDB takes no Blobs).
      if (error === null) {
        throw new StorageError('unsupported', 'this browser will not keep downloaded data in IndexedDB (a private window?)');
      }
      throw error;
    }
  }

  async saveRecord(record: ModelRecord): Promise<void> {
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
  async wipe(record: ModelRecord, fresh: ModelRecord | undefined): Promise<void> {
    await this.idb('readwrite', (store) => {
      store.delete(chunksOf(record.id));
      if (fresh) store.put(fresh, metaKey(record.id));
      else store.delete(metaKey(record.id));
      return promisifyRequest(store.transaction);
    });
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
