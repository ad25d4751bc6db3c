// Prompt-cache snapshots in a directory (Node: the CLI, tests and benchmarks), the same files
// the browser keeps in OPFS (see prompt-cache.ts).
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotFiles, SnapshotMeta } from './prompt-cache.ts';

export function nodeSnapshotFiles(dir: string): SnapshotFiles {
  const ready = mkdir(dir, { recursive: true });
  const read = async (name: string): Promise<Uint8Array | undefined> => {
    await ready;
    try {
      return new Uint8Array(await readFile(join(dir, name)));
    } catch {
      return undefined;
    }
  };
  const write = async (name: string, bytes: Uint8Array): Promise<void> => {
    await ready;
    await writeFile(join(dir, name), bytes);
  };
  return {
    async readIndex() {
      const bytes = await read('index.json');
      return bytes ? (JSON.parse(new TextDecoder().decode(bytes)) as SnapshotMeta[]) : undefined;
    },
    writeIndex: (entries) => write('index.json', new TextEncoder().encode(JSON.stringify(entries))),
    read: (id) => read(`${id}.kv`),
    write: (id, bytes) => write(`${id}.kv`, bytes),
    remove: async (id) => {
      await rm(join(dir, `${id}.kv`), { force: true });
    },
  };
}
