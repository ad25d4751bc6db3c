// Random-access byte sources. A model file is larger than any single ArrayBuffer a browser will
// give us, so everything above this layer asks for byte ranges, never for the whole file.

import { GGUFError } from './errors.ts';

export interface ByteSource {
  /** Total bytes. */
  readonly size: number;
  /** Exactly `length` bytes starting at `offset`, or GGUFError('truncated'). May share memory with the source: do not write into it. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Fills `target` with the bytes starting at `offset` (e.g. straight into a view of wasm memory). */
  readInto(offset: number, target: Uint8Array): Promise<void>;
}

/** Throws unless [offset, offset + length) is a valid range inside a source of `size` bytes. */
export function checkRange(size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new GGUFError('invalid-value', `bad byte range: offset ${offset}, length ${length}`);
  }
  if (offset + length > size) {
    throw new GGUFError(
      'truncated',
      `read of ${length} bytes at byte ${offset} runs past the end of the source (${size} bytes)`,
    );
  }
}

/** Bytes already in memory. `read` returns views into them without copying. */
export class ArrayBufferSource implements ByteSource {
  readonly size: number;
  private readonly bytes: Uint8Array;

  constructor(data: ArrayBuffer | Uint8Array) {
    this.bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    this.size = this.bytes.length;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.size, offset, length);
    return this.bytes.subarray(offset, offset + length);
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    checkRange(this.size, offset, target.length);
    target.set(this.bytes.subarray(offset, offset + target.length));
  }
}

/** A File or Blob: each read slices only the requested range, never the whole blob. */
export class BlobSource implements ByteSource {
  readonly size: number;
  private readonly blob: Blob;

  constructor(blob: Blob) {
    this.blob = blob;
    this.size = blob.size;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.size, offset, length);
    if (length === 0) return new Uint8Array(0);
    const buffer = await this.blob.slice(offset, offset + length).arrayBuffer();
    // A blob can shrink under us (a File edited on disk): never hand back fewer bytes than asked.
    if (buffer.byteLength !== length) {
      throw new GGUFError(
        'truncated',
        `blob returned ${buffer.byteLength} of ${length} bytes at byte ${offset}`,
      );
    }
    return new Uint8Array(buffer);
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    target.set(await this.read(offset, target.length));
  }
}
