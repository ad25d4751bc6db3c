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

/** Milliseconds spent copying stream chunks into their targets since the page started: how much
 * of a read is the copy (`npm run bench:load` splits a model load with it). */
export const streamCopyClock = { ms: 0 };

// Buffers the BYOB reads below lend to a stream and get back (one per concurrent read).
const BYOB_BUFFER_BYTES = 4 * 1024 * 1024;
const spareBuffers: ArrayBuffer[] = [];

// Chromium now and then leaves a Blob's stream waiting forever on its first read (seen under CPU
// load, for stored chunks and picked files alike), while a fresh stream of the same bytes reads at
// once: a Blob read that gives nothing for this long is restarted where it stopped.
const BLOB_STALL_MS = 5_000;
const BLOB_READ_TRIES = 4;

/** readStreamInto gave up on a stream that delivered nothing for `stallMs`; `filled` bytes had arrived. */
class StreamStalled extends Error {
  constructor(readonly filled: number) {
    super('the stream stalled');
  }
}

/**
 * Copies `stream` into `target` and returns how many bytes it gave; more than target.length
 * when it had more (reading stops at the first chunk past the end). A byte stream (a Blob's, or
 * a fetch body in Chromium, Firefox and Node) is read through a BYOB reader into a reused
 * buffer: no allocation per chunk (a 2.3 GB model streamed through fresh chunks left hundreds of
 * MiB for the GC), and Chromium delivers a Blob faster this way than through
 * blob.arrayBuffer() (docs/perf-log.md, "Storage choices"). Other streams use the default reader. A
 * failed read rejects with the stream's error; with `stallMs`, a read that gets nothing for that
 * long rejects with StreamStalled. The stream is cancelled unless read to its end.
 */
export async function readStreamInto(stream: ReadableStream<Uint8Array>, target: Uint8Array, stallMs?: number): Promise<number> {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = stream.getReader({ mode: 'byob' });
  } catch {
    // not a byte stream: the default reader below
  }
  const plain = byob ? undefined : stream.getReader();
  let buffer = byob ? spareBuffers.pop() ?? new ArrayBuffer(BYOB_BUFFER_BYTES) : undefined;
  let filled = 0, ended = false;
  try {
    for (;;) {
      let pending: Promise<ReadableStreamReadResult<Uint8Array>>;
      if (byob) {
        const room = Math.max(1, Math.min(buffer!.byteLength, target.length - filled));
        pending = byob.read(new Uint8Array(buffer!, 0, room));
        buffer = undefined; // lent to the stream until the read gives it back
      } else {
        pending = plain!.read();
      }
      const result = stallMs === undefined ? await pending : await withinTime(pending, stallMs, () => new StreamStalled(filled));
      if (byob) buffer = result.value?.buffer as ArrayBuffer | undefined; // the (transferred) buffer handed back
      if (result.done) {
        ended = true;
        return filled;
      }
      if (filled + result.value.length > target.length) return filled + result.value.length;  // more than asked for
      const copyStarted = performance.now();
      target.set(result.value, filled);
      streamCopyClock.ms += performance.now() - copyStarted;
      filled += result.value.length;
    }
  } finally {
    const reader = byob ?? plain!;
    if (ended) reader.releaseLock();
    else await reader.cancel().catch(() => undefined);
    if (buffer?.byteLength === BYOB_BUFFER_BYTES) spareBuffers.push(buffer);
  }
}

/**
 * Copies `blob` into `target` (up to its length) and returns how many bytes the blob gave. A
 * read that stalls is restarted from where it stopped, on a fresh stream; one that stalls
 * BLOB_READ_TRIES times fails with GGUFError 'read-stalled' instead of waiting forever.
 */
export async function readBlobInto(blob: Blob, target: Uint8Array, stallMs = BLOB_STALL_MS): Promise<number> {
  let filled = 0;
  for (let tries = 1; ; tries++) {
    const rest = filled === 0 ? blob : blob.slice(filled);
    try {
      return filled + await readStreamInto(rest.stream(), target.subarray(filled), stallMs);
    } catch (error) {
      if (!(error instanceof StreamStalled)) throw error;
      filled += error.filled;
      if (tries === BLOB_READ_TRIES) {
        throw new GGUFError('read-stalled', `the browser stopped giving the bytes of a file (${filled} of ${blob.size} read, ` +
          `${tries} tries of ${Math.round(stallMs / 1000)} s each without a byte): reload the page and try again`);
      }
    }
  }
}

/** `pending`, or a rejection with `timeout()` when it has not settled after `ms`. */
function withinTime<T>(pending: Promise<T>, ms: number, timeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(timeout()), ms)));
  return Promise.race([pending, late]).finally(() => clearTimeout(timer));
}
