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
    checkRange(this.size, offset, target.length);
    const got = await readBlobInto(this.blob.slice(offset, offset + target.length), target);
    if (got !== target.length) {
      throw new GGUFError('truncated', `blob returned ${got} of ${target.length} bytes at byte ${offset}`);
    }
  }
}

// A buffer the BYOB reads below lend to the stream and get back (one per concurrent read).
const BYOB_BUFFER_BYTES = 4 * 1024 * 1024;
const spareBuffers: ArrayBuffer[] = [];

/**
 * Copies `blob` into `target` (up to its length) and returns how many bytes the blob gave.
 * Reads through a BYOB stream reader where the browser has one: Chromium delivers a Blob
 * (an IndexedDB value or a File) this way at about 1.6x the speed of blob.arrayBuffer()
 * (measured 150-190 MB/s vs 110-118 MB/s), and no blob-sized ArrayBuffer is allocated.
 */
export async function readBlobInto(blob: Blob, target: Uint8Array): Promise<number> {
  let reader: ReadableStreamBYOBReader | undefined;
  try {
    reader = blob.stream().getReader({ mode: 'byob' });
  } catch {
    // No byte stream here: one ArrayBuffer of the blob's size.
    const bytes = new Uint8Array(await blob.arrayBuffer());
    target.set(bytes.subarray(0, Math.min(bytes.length, target.length)));
    return bytes.length;
  }
  let buffer = spareBuffers.pop() ?? new ArrayBuffer(BYOB_BUFFER_BYTES);
  let filled = 0;
  try {
    for (;;) {
      const room = Math.max(1, Math.min(buffer.byteLength, target.length - filled));
      const { done, value } = await reader.read(new Uint8Array(buffer, 0, room));
      if (value) buffer = value.buffer;  // the stream hands the (transferred) buffer back
      if (done || !value) break;
      if (filled + value.length > target.length) return filled + value.length;  // more than asked for
      target.set(value, filled);
      filled += value.length;
    }
    return filled;
  } finally {
    reader.releaseLock();
    if (buffer.byteLength === BYOB_BUFFER_BYTES) spareBuffers.push(buffer);
  }
}
