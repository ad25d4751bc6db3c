// Loading weights: pieces read ahead (two at a time, straight into wasm memory), matrices repacked
// as they arrive, and a load that stops (aborted, or a read failing) leaves no read still writing.
import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { ArrayBufferSource, type ByteSource } from '../../src/gguf/byte-source.ts';
import { GGUFError } from '../../src/gguf/errors.ts';
import { Qwen3Model, type LoadTimings } from '../../src/model/qwen3.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';

/** A source whose reads take a while and are counted: how many were in flight at once, and now. */
class SlowSource implements ByteSource {
  inFlight = 0;
  maxInFlight = 0;
  reads = 0;
  constructor(private readonly inner: ByteSource, private readonly onRead: (n: number) => void = () => {}) {}
  get size(): number {
    return this.inner.size;
  }
  read(offset: number, length: number): Promise<Uint8Array> {
    return this.inner.read(offset, length);
  }
  async readInto(offset: number, target: Uint8Array): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      this.onRead(++this.reads);
      await new Promise((resolve) => setTimeout(resolve, 5));
      await this.inner.readInto(offset, target);
    } finally {
      this.inFlight--;
    }
  }
}

let file: ArrayBufferSource;
let plain: Float32Array;
const tokens = [1, 200, 3000, 45, 6];

beforeAll(async () => {
  const bytes = await readFile(await ensureFixture('small-q4_0'));
  file = new ArrayBufferSource(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const model = await Qwen3Model.load(file, { threads: 1, contextLength: 64 });
  plain = model.forward(tokens, 0, true);
  model.dispose();
});


describe('loading weights', () => {
  it('reads two pieces at a time, reports every byte in order, and computes what a plain load does', async () => {
    const source = new SlowSource(file);
    const progress: number[] = [];
    let total = 0;
    const timings: LoadTimings = {};
    const model = await Qwen3Model.load(source, { threads: 1, contextLength: 64, timings, onProgress: (loaded, of) => { progress.push(loaded); total = of; } });
    try {
      expect(source.maxInFlight).toBe(2);
      expect(source.inFlight).toBe(0);
      expect(progress).toEqual([...progress].sort((a, b) => a - b));
      expect(progress.at(-1)).toBe(total);
      expect(total).toBeGreaterThan(file.size * 0.8);  // all but the header (the vocabulary)
      const logits = model.forward(tokens, 0, true);
      expect(logits.every((v, i) => Object.is(v, plain[i]))).toBe(true);
      for (const part of ['read', 'copy', 'touch', 'repack'] as const) expect(timings[part]).toBeGreaterThanOrEqual(0);
    } finally {
      model.dispose();
    }
  });

  it('stops when aborted mid-load, with no read left writing into memory', async () => {
    const controller = new AbortController();
    const source = new SlowSource(file, (n) => { if (n === 4) controller.abort(); });
    const error = await Qwen3Model.load(source, { threads: 1, contextLength: 64, signal: controller.signal }).catch((e: unknown) => e);
    expect((error as Error).name).toBe('AbortError');
    expect(source.inFlight).toBe(0);
    expect(source.reads).toBeLessThanOrEqual(5);
  });

  it('passes on a failing read (a stored chunk gone) as its typed error, with no read left writing', async () => {
    class FailingSource extends SlowSource {
      override async readInto(offset: number, target: Uint8Array): Promise<void> {
        if (this.reads === 3) {
          this.reads++;
          throw new GGUFError('truncated', 'chunk 3 is missing');
        }
        return super.readInto(offset, target);
      }
    }
    const source = new FailingSource(file);
    const error = await Qwen3Model.load(source, { threads: 1, contextLength: 64 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GGUFError);
    expect((error as GGUFError).message).toMatch(/chunk 3 is missing/);
    expect(source.inFlight).toBe(0);
  });
});
