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
}

/** Where snapshots are kept: an index and one file per snapshot. */
export interface SnapshotFiles {
  readIndex(): Promise<SnapshotMeta[] | undefined>;
  writeIndex(entries: SnapshotMeta[]): Promise<void>;
  read(id: string): Promise<Uint8Array | undefined>;
  write(id: string, bytes: Uint8Array): Promise<void>;
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

  /** The rows of `meta` (undefined if its file is gone); marks it used. */
  read(meta: SnapshotMeta): Promise<Uint8Array | undefined> {
    return this.serial(async () => {
      const bytes = await this.files.read(meta.id);
      const entries = await this.index();
      const entry = entries.find((e) => e.id === meta.id);
      if (!bytes || bytes.length !== meta.bytes) {
        await this.drop(entries, meta.id);
        return undefined;
      }
      if (entry) {
        entry.lastUsed = Date.now();
        await this.files.writeIndex(entries);
      }
      return bytes;
    });
  }

  /**
   * Keeps `bytes` as the rows of `tokens`. Snapshots of the same model that this one extends (their
   * tokens a prefix of these) are replaced; the least recently used go while over the budget.
   */
  save(modelKey: string, tokens: readonly number[], bytes: Uint8Array): Promise<void> {
    return this.serial(async () => {
      if (bytes.length > this.maxBytes) return;
      let entries = await this.index();
      for (const old of entries.filter((e) => e.modelKey === modelKey && sharedPrefix(e.tokens, tokens) === e.tokens.length)) {
        entries = await this.drop(entries, old.id);
      }
      const meta: SnapshotMeta = { id: randomId(), modelKey, tokens: [...tokens], bytes: bytes.length, lastUsed: Date.now() };
      await this.files.write(meta.id, bytes);
      entries.push(meta);
      entries.sort((a, b) => a.lastUsed - b.lastUsed);
      let total = entries.reduce((sum, e) => sum + e.bytes, 0);
      while (total > this.maxBytes && entries.length > 1) {
        const oldest = entries[0]!;
        total -= oldest.bytes;
        entries = await this.drop(entries, oldest.id);
      }
      await this.files.writeIndex(entries);
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
    Array.isArray(m.tokens) && Number.isSafeInteger(m.bytes) && typeof m.lastUsed === 'number';
}

function randomId(): string {
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
  const writeFile = async (name: string, bytes: Uint8Array): Promise<void> => {
    const writable = await (await dir.getFileHandle(name, { create: true })).createWritable();
    try {
      await writable.write(bytes as Uint8Array<ArrayBuffer>);
      await writable.close();
    } catch (error) {
      await writable.abort().catch(() => undefined);
      throw error;
    }
  };
  return snapshotFilesOver({ read: readFile, write: writeFile, remove: (name) => dir.removeEntry(name) });
}

/** Named files of a folder, the little a snapshot store needs. */
export interface FileOps {
  /** The file's bytes, or undefined if there is none. */
  read(name: string): Promise<Uint8Array | undefined>;
  write(name: string, bytes: Uint8Array): Promise<void>;
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
    remove: (id) => files.remove(`${id}.kv`),
  };
}
