// Prompt-cache snapshots in a directory (Node: the CLI, tests and benchmarks), the same files
// the browser keeps in OPFS (see prompt-cache.ts).
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { snapshotFilesOver, type SnapshotFiles } from './prompt-cache.ts';

export function nodeSnapshotFiles(dir: string): SnapshotFiles {
  const ready = mkdir(dir, { recursive: true });
  return snapshotFilesOver({
    async read(name) {
      await ready;
      try {
        return new Uint8Array(await readFile(join(dir, name)));
      } catch {
        return undefined;
      }
    },
    async write(name, bytes) {
      await ready;
      await writeFile(join(dir, name), bytes);
    },
    async append(name, bytes) {
      await ready;
      await appendFile(join(dir, name), bytes);
    },
    async remove(name) {
      await rm(join(dir, name), { force: true });
    },
  });
}
