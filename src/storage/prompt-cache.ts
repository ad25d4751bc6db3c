// Saved KV caches of past prompts, so that a conversation opened again (after a reload, or the
// next visit) continues without reading its whole prompt again. Each snapshot is the token ids a
// cache holds and the cache's rows for them; a new prompt may use the rows of the longest prefix
// it shares with a snapshot of the same model (rows of position p depend only on tokens 0..p, so
// a shared prefix is exactly right, and nothing past it is ever used). Snapshots live in files
// (OPFS in a browser, a directory in Node), least recently used first out beyond a byte budget.

/** One saved cache: which model, which tokens, how big, when last used. */
export interface SnapshotMeta {
  id: string;
  /** Identifies the model file and cache layout the rows belong to (see CpuEngine). */
  modelKey: string;
  tokens: number[];
  bytes: number;
  lastUsed: number;
  /** The file holds parts saved one after another, ending at these positions (absent: one part). */
  partEnds?: number[];
}

/** Where snapshots are kept: an index and one file per snapshot. */
export interface SnapshotFiles {
  readIndex(): Promise<SnapshotMeta[] | undefined>;
  writeIndex(entries: SnapshotMeta[]): Promise<void>;
  read(id: string): Promise<Uint8Array | undefined>;
  write(id: string, bytes: Uint8Array): Promise<void>;
  /** Adds `bytes` at the end of the snapshot's file. */
  append(id: string, bytes: Uint8Array): Promise<void>;
  remove(id: string): Promise<void>;
}

export interface PromptCacheOptions {
  /** Most bytes all snapshots may take together (default 1 GiB). */
  maxBytes?: number;
}

export const DEFAULT_PROMPT_CACHE_BYTES = 2 ** 30;

export class PromptCache {
  /** Most bytes all snapshots take together. */
  readonly maxBytes: number;
  /** Operations run one at a time, so the index is never read and written by two at once. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly files: SnapshotFiles, options: PromptCacheOptions = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_PROMPT_CACHE_BYTES;
  }

  /** The snapshot of `modelKey` sharing the longest prefix with `tokens`, and how long that prefix is. */
  find(modelKey: string, tokens: readonly number[]): Promise<{ meta: SnapshotMeta; shared: number } | undefined> {
    return this.serial(async () => {
      let best: { meta: SnapshotMeta; shared: number } | undefined;
      for (const meta of await this.index()) {
        if (meta.modelKey !== modelKey) continue;
        const shared = sharedPrefix(meta.tokens, tokens);
        if (shared > (best?.shared ?? 0)) best = { meta, shared };
      }
      return best;
    });
  }

  /**
   * The rows of the snapshot `meta` names and where its parts end, as it stands now (it may have
   * grown since it was found: its first tokens stay the same); undefined if its file is gone or
   * cut short. Marks it used.
   */
  read(meta: SnapshotMeta): Promise<{ rows: Uint8Array; partEnds: number[] } | undefined> {
    return this.serial(async () => {
      const bytes = await this.files.read(meta.id);
      const entries = await this.index();
      const entry = entries.find((e) => e.id === meta.id);
      if (!entry) return undefined;
      if (!bytes || bytes.length !== entry.bytes) {
        await this.drop(entries, meta.id);
        return undefined;
      }
      entry.lastUsed = Date.now();
      await this.files.writeIndex(entries);
      return { rows: bytes, partEnds: entry.partEnds ?? [entry.tokens.length] };
    });
  }

  /**
   * Keeps `bytes` as the rows of `tokens` under `id` (a fresh one by default: operations queue in
   * order, so an extend(id) asked for right after this save finds it). Resolves to false when the
   * rows are larger than the whole budget. Snapshots of the same model that this one extends
   * (their tokens a prefix of these) are replaced; the least recently used go while over the budget.
   */
  save(modelKey: string, tokens: readonly number[], bytes: Uint8Array, id = newSnapshotId()): Promise<boolean> {
    return this.serial(async () => {
      if (bytes.length > this.maxBytes) return false;
      const meta: SnapshotMeta = { id, modelKey, tokens: [...tokens], bytes: bytes.length, lastUsed: Date.now() };
      let entries = await this.dropPrefixesOf(meta, await this.index());
      await this.files.write(meta.id, bytes);
      entries.push(meta);
      entries = await this.keepWithinBudget(entries);
      await this.files.writeIndex(entries);
      return true;
    });
  }

  /**
   * Grows snapshot `id` to hold `tokens`, given the rows of the positions past its own tokens
   * (which must be a prefix of `tokens`): only the new rows are written. Resolves to false, and
   * changes nothing, when the snapshot is gone, holds other tokens, or would outgrow the budget.
   */
  extend(id: string, tokens: readonly number[], bytes: Uint8Array): Promise<boolean> {
    return this.serial(async () => {
      let entries = await this.index();
      const meta = entries.find((e) => e.id === id);
      if (!meta || sharedPrefix(meta.tokens, tokens) !== meta.tokens.length || meta.bytes + bytes.length > this.maxBytes) return false;
      if (tokens.length === meta.tokens.length) return true;
      await this.files.append(id, bytes);
      meta.partEnds = [...(meta.partEnds ?? [meta.tokens.length]), tokens.length];
      meta.tokens = [...tokens];
      meta.bytes += bytes.length;
      meta.lastUsed = Date.now();
      entries = await this.keepWithinBudget(await this.dropPrefixesOf(meta, entries));
      await this.files.writeIndex(entries);
      return true;
    });
  }

  /** Every snapshot (for tests and a storage overview). */
  entries(): Promise<SnapshotMeta[]> {
    return this.serial(() => this.index());
  }

  private async index(): Promise<SnapshotMeta[]> {
    const entries = await this.files.readIndex().catch(() => undefined);
    return Array.isArray(entries) ? entries.filter(isMeta) : [];
  }

  /** `entries` less the other snapshots of the same model whose tokens `meta`'s begin with. */
  private async dropPrefixesOf(meta: SnapshotMeta, entries: SnapshotMeta[]): Promise<SnapshotMeta[]> {
    for (const old of entries.filter((e) => e.id !== meta.id && e.modelKey === meta.modelKey && sharedPrefix(e.tokens, meta.tokens) === e.tokens.length)) {
      entries = await this.drop(entries, old.id);
    }
    return entries;
  }

  /** `entries` less the least recently used while they take more than the budget (the newest always stays). */
  private async keepWithinBudget(entries: SnapshotMeta[]): Promise<SnapshotMeta[]> {
    entries.sort((a, b) => a.lastUsed - b.lastUsed);
    let total = entries.reduce((sum, e) => sum + e.bytes, 0);
    while (total > this.maxBytes && entries.length > 1) {
      total -= entries[0]!.bytes;
      entries = await this.drop(entries, entries[0]!.id);
    }
    return entries;
  }

  private async drop(entries: SnapshotMeta[], id: string): Promise<SnapshotMeta[]> {
    await this.files.remove(id).catch(() => undefined);
    const rest = entries.filter((e) => e.id !== id);
    await this.files.writeIndex(rest);
    return rest;
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** How many leading token ids two sequences share. */
export function sharedPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function isMeta(value: unknown): value is SnapshotMeta {
  const m = value as SnapshotMeta;
  return typeof m === 'object' && m !== null && typeof m.id === 'string' && /^[a-z0-9]+$/.test(m.id) && typeof m.modelKey === 'string' &&
    Array.isArray(m.tokens) && Number.isSafeInteger(m.bytes) && typeof m.lastUsed === 'number' &&
    (m.partEnds === undefined || (Array.isArray(m.partEnds) && m.partEnds.at(-1) === m.tokens.length &&
      m.partEnds.every((end, i) => Number.isSafeInteger(end) && end > (i === 0 ? 0 : m.partEnds![i - 1]!))));
}

/** A name for a new snapshot (its file's name, too). */
export function newSnapshotId(): string {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 2 ** 40).toString(36)}`;
}

/** Files that become available later (OPFS opens asynchronously); none at all if they never do. */
export function deferredSnapshotFiles(files: Promise<SnapshotFiles | undefined>): SnapshotFiles {
  const get = async (): Promise<SnapshotFiles> => {
    const ready = await files.catch(() => undefined);
    if (!ready) throw new Error('no storage for saved prompt caches here');
    return ready;
  };
  return {
    readIndex: async () => (await files.catch(() => undefined))?.readIndex(),
    writeIndex: async (entries) => (await get()).writeIndex(entries),
    read: async (id) => (await files.catch(() => undefined))?.read(id),
    write: async (id, bytes) => (await get()).write(id, bytes),
    append: async (id, bytes) => (await get()).append(id, bytes),
    remove: async (id) => (await get()).remove(id),
  };
}

/** Snapshots in the origin private file system (a folder of its own); undefined where there is none. */
export async function opfsSnapshotFiles(folder = 'qwen-web-prompt-cache'): Promise<SnapshotFiles | undefined> {
  const storage = (globalThis.navigator as Navigator | undefined)?.storage;
  if (typeof storage?.getDirectory !== 'function') return undefined;
  let dir: FileSystemDirectoryHandle;
  try {
    dir = await (await storage.getDirectory()).getDirectoryHandle(folder, { create: true });
  } catch {
    return undefined; // no OPFS here (private browsing in some engines)
  }
  const readFile = async (name: string): Promise<Uint8Array | undefined> => {
    try {
      const file = await (await dir.getFileHandle(name)).getFile();
      return new Uint8Array(await file.arrayBuffer());
    } catch {
      return undefined;
    }
  };
  /** Writes `bytes` at `at` (the start by default) through a writable stream: all of them, or the file as it was. */
  const writeThrough = async (handle: FileSystemFileHandle, bytes: Uint8Array, at?: number): Promise<void> => {
    const writable = await handle.createWritable({ keepExistingData: at !== undefined });
    try {
      if (at !== undefined) await writable.seek(at);
      await writable.write(bytes as Uint8Array<ArrayBuffer>);
      await writable.close();
    } catch (error) {
      await writable.abort().catch(() => undefined);
      throw error;
    }
  };
  const writeFile = async (name: string, bytes: Uint8Array): Promise<void> =>
    writeThrough(await dir.getFileHandle(name, { create: true }), bytes);
  const appendFile = async (name: string, bytes: Uint8Array): Promise<void> => {
    const handle = await dir.getFileHandle(name);
    // In a worker, a sync access handle writes in place; a writable stream would first copy the whole file.
    if ('createSyncAccessHandle' in handle && typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined') {
      const access = await handle.createSyncAccessHandle();
      try {
        const at = access.getSize();
        if (access.write(bytes as Uint8Array<ArrayBuffer>, { at }) !== bytes.length) throw new Error(`${name}: short write`);
        access.flush();
      } finally {
        access.close();
      }
      return;
    }
    await writeThrough(handle, bytes, (await handle.getFile()).size);
  };
  return snapshotFilesOver({ read: readFile, write: writeFile, append: appendFile, remove: (name) => dir.removeEntry(name) });
}

/** Named files of a folder, the little a snapshot store needs. */
export interface FileOps {
  /** The file's bytes, or undefined if there is none. */
  read(name: string): Promise<Uint8Array | undefined>;
  write(name: string, bytes: Uint8Array): Promise<void>;
  append(name: string, bytes: Uint8Array): Promise<void>;
  remove(name: string): Promise<void>;
}

/** Snapshot files over a folder: the index as `index.json`, each snapshot's rows as `<id>.kv`. */
export function snapshotFilesOver(files: FileOps): SnapshotFiles {
  return {
    async readIndex() {
      const bytes = await files.read('index.json');
      return bytes ? (JSON.parse(new TextDecoder().decode(bytes)) as SnapshotMeta[]) : undefined;
    },
    writeIndex: (entries) => files.write('index.json', new TextEncoder().encode(JSON.stringify(entries))),
    read: (id) => files.read(`${id}.kv`),
    write: (id, bytes) => files.write(`${id}.kv`, bytes),
    append: (id, bytes) => files.append(`${id}.kv`, bytes),
    remove: (id) => files.remove(`${id}.kv`),
  };
}
