// GGUF reader under corruption: every prefix of a small valid file, and thousands of seeded
// random mutations. Each case must parse or throw a GGUFError (nothing else), within 100 ms,
// asking the source for no more bytes than a bounded multiple of the file size.

import { describe, expect, it } from 'vitest';
import { ArrayBufferSource, type ByteSource } from '../../src/gguf/byte-source.ts';
import { GGUFError } from '../../src/gguf/errors.ts';
import { GGMLType } from '../../src/gguf/ggml-types.ts';
import { GGUFValueType as T, readGGUF, type GGUFFile } from '../../src/gguf/reader.ts';
import { arr, bool, encodeGGUF, f32, f64, i16, i64, str, u32, u64, u8 } from '../fixtures/gguf-writer.ts';

/** Seeded PRNG (mulberry32): the same cases on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class CountingSource implements ByteSource {
  requested = 0;
  largest = 0;
  constructor(private readonly inner: ByteSource) {}
  get size(): number {
    return this.inner.size;
  }
  read(offset: number, length: number): Promise<Uint8Array> {
    this.note(length);
    return this.inner.read(offset, length);
  }
  readInto(offset: number, target: Uint8Array): Promise<void> {
    this.note(target.length);
    return this.inner.readInto(offset, target);
  }
  private note(length: number): void {
    this.requested += length;
    this.largest = Math.max(this.largest, length);
  }
}

function smallFile(): { bytes: Uint8Array; dataEnd: number } {
  const tensors = [
    { name: 'token_embd.weight', dims: [32, 4], type: GGMLType.Q8_0, data: new Uint8Array(4 * 34).fill(3) },
    { name: 'blk.0.attn_norm.weight', dims: [8], type: GGMLType.F32, data: new Uint8Array(32).fill(1) },
    { name: 'blk.0.ffn_down.weight', dims: [256, 1], type: GGMLType.Q4_K, data: new Uint8Array(144).fill(2) },
  ];
  const bytes = encodeGGUF({
    alignment: 64,
    metadata: [
      ['general.architecture', str('qwen3')],
      ['qwen3.block_count', u32(1)],
      ['qwen3.rope.freq_base', f32(1e6)],
      ['general.flag', bool(true)],
      ['general.small', u8(7)],
      ['general.neg', i16(-300)],
      ['general.big', u64(1n << 60n)],
      ['general.signed', i64(-2)],
      ['general.pi', f64(Math.PI)],
      ['tokenizer.ggml.tokens', arr(T.STRING, ['a', 'Ġb', '<|im_end|>', '日本', ''])],
      ['tokenizer.ggml.token_type', arr(T.INT32, [1, 1, 3, 1, 1])],
      ['tokenizer.ggml.scores', arr(T.FLOAT32, [0, -1, -2, -3, -4])],
      ['general.nested', arr(T.ARRAY, [arr(T.UINT8, [1, 2, 3]), arr(T.ARRAY, [arr(T.BOOL, [true, false])])])],
    ],
    tensors,
  });
  // End of the last tensor's data (the file after it is padding).
  const dataEnd = bytes.length - (64 - (144 % 64));
  return { bytes, dataEnd };
}

type Outcome = { file: GGUFFile } | { error: GGUFError };

/** Parses one case, failing the test on anything but a GGUFError, a slow parse or an outsized read. */
async function parseCase(bytes: Uint8Array, chunkSize: number, label: string): Promise<Outcome> {
  const source = new CountingSource(new ArrayBufferSource(bytes));
  const start = performance.now();
  let outcome: Outcome;
  try {
    outcome = { file: await readGGUF(source, { chunkSize }) };
  } catch (e) {
    if (!(e instanceof GGUFError)) {
      throw new Error(`${label}: threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)} instead of a GGUFError`);
    }
    outcome = { error: e };
  }
  const ms = performance.now() - start;
  if (ms > 100) throw new Error(`${label}: took ${ms.toFixed(1)} ms`);
  // Each refill reads at most max(chunk, need) and keeps the unread tail: bounded by a few file sizes.
  if (source.largest > bytes.length || source.requested > 4 * bytes.length + 2 * chunkSize) {
    throw new Error(`${label}: asked the source for ${source.requested} bytes (largest ${source.largest}) of a ${bytes.length}-byte file`);
  }
  if ('file' in outcome) {
    for (const t of outcome.file.tensors) {
      if (t.offset + t.byteSize > bytes.length || t.offset % outcome.file.alignment !== 0) {
        throw new Error(`${label}: parsed a tensor outside the file`);
      }
    }
  }
  return outcome;
}

describe('GGUF fuzz', () => {
  const { bytes, dataEnd } = smallFile();

  it('the base file parses', async () => {
    const outcome = await parseCase(bytes, 1 << 20, 'base');
    expect('file' in outcome).toBe(true);
  });

  it('every prefix fails with a GGUFError until the last tensor is complete', async () => {
    const codes = new Map<string, number>();
    for (let length = 0; length < bytes.length; length++) {
      const prefix = bytes.slice(0, length);
      for (const chunkSize of [1 << 20, 16]) {
        const outcome = await parseCase(prefix, chunkSize, `prefix ${length}, chunk ${chunkSize}`);
        if (length < dataEnd) {
          if ('file' in outcome) throw new Error(`prefix ${length} of ${bytes.length} parsed`);
          codes.set(outcome.error.code, (codes.get(outcome.error.code) ?? 0) + 1);
          // Cut before the data section: the reader must say so (not invent another defect).
          const expected = length < 4 ? 'truncated' : undefined;
          if (expected) expect(outcome.error.code).toBe(expected);
        } else {
          expect('file' in outcome, `prefix ${length}`).toBe(true); // only padding is missing
        }
      }
    }
    expect([...codes.keys()].sort()).toEqual(['tensor-out-of-bounds', 'truncated']);
  });

  it('5,000+ random mutations give a file or a GGUFError', async () => {
    const random = prng(0x5eed);
    const codes = new Map<string, number>();
    let parsed = 0;
    const cases = 6000;
    // Header, metadata and tensor infos: where mutations matter.
    const headerEnd = (await readGGUF(new ArrayBufferSource(bytes))).dataOffset;
    for (let n = 0; n < cases; n++) {
      const mutated = bytes.slice();
      const edits = 1 + Math.floor(random() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(random() * (random() < 0.9 ? headerEnd : mutated.length));
        const kind = random();
        if (kind < 0.4) {
          mutated[at] ^= 1 << Math.floor(random() * 8); // bit flip
        } else if (kind < 0.7) {
          mutated[at] = Math.floor(random() * 256); // random byte
        } else if (kind < 0.85) {
          mutated.fill(random() < 0.5 ? 0xff : 0, at, at + 1 + Math.floor(random() * 8)); // a count gone to 0 or huge
        } else {
          const v = new DataView(mutated.buffer); // a plausible little number where a count might be
          if (at + 4 <= mutated.length) v.setUint32(at, Math.floor(random() * 1000), true);
        }
      }
      const chunkSize = random() < 0.5 ? 1 << 20 : 1 + Math.floor(random() * 64);
      const outcome = await parseCase(mutated, chunkSize, `mutation case ${n}`);
      if ('file' in outcome) parsed++;
      else codes.set(outcome.error.code, (codes.get(outcome.error.code) ?? 0) + 1);
    }
    // The mutations reach many different checks, and some leave a valid file.
    expect(parsed).toBeGreaterThan(0);
    expect(codes.size).toBeGreaterThanOrEqual(8);
    console.log(`fuzz: ${parsed} parsed; errors by code: ${JSON.stringify(Object.fromEntries(codes))}`);
  }, 120_000);
});
