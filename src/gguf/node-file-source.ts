// A ByteSource over a file on disk (Node only). Kept apart from byte-source.ts so that browser
// bundles never import node:fs.

import { open, type FileHandle } from 'node:fs/promises';
import { checkRange, type ByteSource } from './byte-source.ts';
import { GGUFError } from './errors.ts';

/** Node's largest single read; bigger requests are split. */
const MAX_READ_BYTES = 1 << 30;

export class NodeFileSource implements ByteSource {
  readonly size: number;
  readonly path: string;
  private handle: FileHandle | undefined;

  private constructor(path: string, handle: FileHandle, size: number) {
    this.path = path;
    this.handle = handle;
    this.size = size;
  }

  static async open(path: string): Promise<NodeFileSource> {
    const handle = await open(path, 'r');
    try {
      const stat = await handle.stat();
      return new NodeFileSource(path, handle, stat.size);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    if (handle) await handle.close();
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.size, offset, length);
    const target = new Uint8Array(length);
    await this.fill(offset, target);
    return target;
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    checkRange(this.size, offset, target.length);
    await this.fill(offset, target);
  }

  private async fill(offset: number, target: Uint8Array): Promise<void> {
    const handle = this.handle;
    if (!handle) throw new Error(`NodeFileSource: '${this.path}' is closed`);
    // read() may return fewer bytes than asked: loop until the target is full.
    let done = 0;
    while (done < target.length) {
      const want = Math.min(target.length - done, MAX_READ_BYTES);
      const { bytesRead } = await handle.read(target, done, want, offset + done);
      if (bytesRead === 0) {
        throw new GGUFError(
          'truncated',
          `file '${this.path}' ended at byte ${offset + done} while reading ${target.length} bytes at byte ${offset}`,
        );
      }
      done += bytesRead;
    }
  }
}
