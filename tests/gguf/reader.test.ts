// GGUF reader: ggml type sizes against the format's facts, round trips through our writer (checked
// against node-llama-cpp's independent GGUF parser), a hand-computed layout, a corpus of
// enumerated defects, and the three byte sources (including a sparse file beyond 2 GiB).

import { access, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArrayBufferSource, BlobSource, readBlobInto, type ByteSource } from '../../src/gguf/byte-source.ts';
import { GGUFError, type GGUFErrorCode } from '../../src/gguf/errors.ts';
import { GGML_TYPE_INFO, GGMLType, rowBytes, tensorBytes } from '../../src/gguf/ggml-types.ts';
import { NodeFileSource } from '../../src/gguf/node-file-source.ts';
import {
  decodeNumberArrayPortable,
  decodeUtf8,
  GGUFValueType as T,
  MAX_ARRAY_DEPTH,
  readGGUF,
  type GGUFFile,
  type GGUFValue,
} from '../../src/gguf/reader.ts';
import {
  arr,
  bool,
  ByteWriter,
  encodeGGUF,
  encodeGGUFHeader,
  f32,
  f64,
  i16,
  i32,
  i64,
  i8,
  str,
  u16,
  u32,
  u64,
  u8,
  writeGGUF,
  type ArrayValue,
  type InMemoryTensorSpec,
  type TypedValue,
} from '../fixtures/gguf-writer.ts';

let tmpDir = '';
beforeAll(async () => {
  await mkdir('.cache', { recursive: true });
  tmpDir = await mkdtemp(join('.cache', 'gguf-reader-'));
});
afterAll(async () => {
  if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
});

/** Deterministic bytes (xorshift32), so failures reproduce. */
function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

async function expectGGUFError(p: Promise<unknown>, code: GGUFErrorCode, messagePart?: string): Promise<GGUFError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected GGUFError '${code}'`).toBeInstanceOf(GGUFError);
  const err = caught as GGUFError;
  expect(err.code, err.message).toBe(code);
  if (messagePart !== undefined) expect(err.message).toContain(messagePart);
  return err;
}

// -------------------------------------------------------------------------------------------------

describe('ggml types', () => {
  it('ids match the GGUF format', () => {
    // From qwen3-gguf.md / ggml.h (enum ggml_type).
    const ids: [GGMLType, number][] = [
      [GGMLType.F32, 0], [GGMLType.F16, 1], [GGMLType.Q4_0, 2], [GGMLType.Q4_1, 3], [GGMLType.Q5_0, 6],
      [GGMLType.Q5_1, 7], [GGMLType.Q8_0, 8], [GGMLType.Q8_1, 9], [GGMLType.Q2_K, 10], [GGMLType.Q3_K, 11],
      [GGMLType.Q4_K, 12], [GGMLType.Q5_K, 13], [GGMLType.Q6_K, 14], [GGMLType.Q8_K, 15], [GGMLType.BF16, 30],
    ];
    for (const [type, id] of ids) expect(type).toBe(id);
    expect(Object.keys(GGML_TYPE_INFO).map(Number).sort((a, b) => a - b)).toEqual(ids.map(([, id]) => id));
  });

  it('block sizes match the block structs of ggml-common.h', () => {
    // sizeof each block_* struct, spelled out from its fields (ggml_half = 2 bytes, QK_K = 256,
    // K_SCALE_SIZE = 12), plus the four facts stated in qwen3-gguf.md.
    const half = 2;
    const QK_K = 256;
    const expected: Record<string, [number, number]> = {
      F32: [1, 4],
      F16: [1, 2],
      BF16: [1, 2],
      Q4_0: [32, half + 32 / 2],
      Q4_1: [32, 2 * half + 32 / 2],
      Q5_0: [32, half + 4 + 32 / 2],
      Q5_1: [32, 2 * half + 4 + 32 / 2],
      Q8_0: [32, half + 32],
      Q8_1: [32, 2 * half + 32],
      Q2_K: [QK_K, 2 * half + QK_K / 16 + QK_K / 4],
      Q3_K: [QK_K, half + QK_K / 4 + QK_K / 8 + 12],
      Q4_K: [QK_K, 2 * half + 12 + QK_K / 2],
      Q5_K: [QK_K, 2 * half + 12 + QK_K / 2 + QK_K / 8],
      Q6_K: [QK_K, half + QK_K / 16 + (3 * QK_K) / 4],
      Q8_K: [QK_K, 4 + QK_K + (QK_K / 16) * 2],
    };
    const facts: Record<string, [number, number]> = { Q4_0: [32, 18], Q8_0: [32, 34], Q4_K: [256, 144], Q6_K: [256, 210] };
    for (const info of Object.values(GGML_TYPE_INFO)) {
      expect([info.blockSize, info.blockBytes], info.name).toEqual(expected[info.name]);
      if (facts[info.name]) expect([info.blockSize, info.blockBytes], info.name).toEqual(facts[info.name]);
    }
  });

  it('rowBytes and tensorBytes', () => {
    expect(rowBytes(GGMLType.Q4_K, 2560)).toBe(10 * 144);
    expect(rowBytes(GGMLType.F32, 7)).toBe(28);
    expect(tensorBytes(GGMLType.Q4_K, [2560, 4096])).toBe(10 * 144 * 4096);
    expect(tensorBytes(GGMLType.Q6_K, [2560, 151936])).toBe(10 * 210 * 151936);
    expect(tensorBytes(GGMLType.Q8_0, [64, 3, 2, 5])).toBe(2 * 34 * 30);
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return e instanceof GGUFError ? e.code : 'other';
      }
      return undefined;
    };
    expect(code(() => rowBytes(GGMLType.Q4_0, 48))).toBe('bad-tensor');
    expect(code(() => rowBytes(GGMLType.Q4_K, 0))).toBe('bad-tensor');
    expect(code(() => tensorBytes(GGMLType.F32, []))).toBe('bad-tensor');
    expect(code(() => tensorBytes(GGMLType.F32, [4, 0]))).toBe('bad-tensor');
    expect(code(() => tensorBytes(GGMLType.F32, [2 ** 30, 2 ** 30, 2 ** 30]))).toBe('limit-exceeded');
    expect(code(() => rowBytes(4 as GGMLType, 32))).toBe('unsupported-type');
  });
});

// -------------------------------------------------------------------------------------------------
// Round trip

/** The value the reader must return for a written TypedValue, derived from the format's rules. */
function expectedValue(v: TypedValue): GGUFValue {
  const safe = (x: number | bigint): number | bigint => {
    const b = BigInt(x);
    return b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
  };
  if (v.kind === 'scalar') {
    if (v.type === T.FLOAT32) return Math.fround(v.value as number);
    if (v.type === T.UINT64 || v.type === T.INT64) return safe(v.value as number | bigint);
    return v.value;
  }
  const items = Array.from(v.values as ArrayLike<number | bigint | boolean | string | ArrayValue>);
  switch (v.elemType) {
    case T.UINT8: return Uint8Array.from(items as number[]);
    case T.INT8: return Int8Array.from(items as number[]);
    case T.UINT16: return Uint16Array.from(items as number[]);
    case T.INT16: return Int16Array.from(items as number[]);
    case T.UINT32: return Uint32Array.from(items as number[]);
    case T.INT32: return Int32Array.from(items as number[]);
    case T.FLOAT32: return Float32Array.from(items as number[]);
    case T.FLOAT64: return Float64Array.from(items as number[]);
    case T.UINT64: return BigUint64Array.from(items.map((x) => BigInt(x as number | bigint)));
    case T.INT64: return BigInt64Array.from(items.map((x) => BigInt(x as number | bigint)));
    case T.STRING: return items as string[];
    case T.BOOL: return items as boolean[];
    case T.ARRAY: return items.map((x) => expectedValue(x as ArrayValue)) as GGUFValue as never;
    default: throw new Error('bad element type');
  }
}

const TYPE_NAMES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'];
function expectedTypeName(v: TypedValue): string {
  return v.kind === 'scalar' ? TYPE_NAMES[v.type] : `array<${TYPE_NAMES[v.elemType]}>`;
}

const ALL_VALUES: Array<[string, TypedValue]> = [
  ['general.architecture', str('test')],
  ['t.u8', u8(255)],
  ['t.i8', i8(-128)],
  ['t.u16', u16(65535)],
  ['t.i16', i16(-32768)],
  ['t.u32', u32(4294967295)],
  ['t.i32', i32(-2147483648)],
  ['t.f32.pos', f32(0.1)],
  ['t.f32.neg', f32(-3.4e38)],
  ['t.bool.true', bool(true)],
  ['t.bool.false', bool(false)],
  ['t.str.text', str('héllo wörld ✓ 🌍 \u0000 tab\t')],
  ['t.str.empty', str('')],
  ['t.u64.small', u64(12345678901)],
  ['t.u64.max', u64((1n << 64n) - 1n)],
  ['t.u64.safe', u64(Number.MAX_SAFE_INTEGER)],
  ['t.u64.unsafe', u64(BigInt(Number.MAX_SAFE_INTEGER) + 1n)],
  ['t.i64.neg', i64(-5)],
  ['t.i64.min', i64(-(1n << 63n))],
  ['t.f64.pi', f64(Math.PI)],
  ['t.f64.nan', f64(Number.NaN)],
  ['', str('an empty key is legal')],
  ['t.arr.u8', arr(T.UINT8, [0, 1, 255])],
  ['t.arr.i8', arr(T.INT8, [-128, 0, 127])],
  ['t.arr.u16', arr(T.UINT16, [0, 65535])],
  ['t.arr.i16', arr(T.INT16, [-32768, 32767])],
  ['t.arr.u32', arr(T.UINT32, [0, 4294967295, 7])],
  ['t.arr.i32', arr(T.INT32, new Int32Array([-1, 2, -3, 2147483647]))],
  ['t.arr.f32', arr(T.FLOAT32, [0.5, -1e-7, 3e38])],
  ['t.arr.f64', arr(T.FLOAT64, [Math.E, -0, 1e308])],
  ['t.arr.u64', arr(T.UINT64, [0, 1n << 63n, (1n << 64n) - 1n])],
  ['t.arr.i64', arr(T.INT64, [-(1n << 63n), -1, 42])],
  ['t.arr.bool', arr(T.BOOL, [true, false, true])],
  ['t.arr.str', arr(T.STRING, ['a', '', 'Ġthe', '日本語', 'x'.repeat(300)])],
  ['t.arr.empty.u32', arr(T.UINT32, [])],
  ['t.arr.empty.str', arr(T.STRING, [])],
  [
    't.arr.nested',
    arr(T.ARRAY, [
      arr(T.UINT8, [1, 2]),
      arr(T.STRING, ['in', 'ner']),
      arr(T.ARRAY, [arr(T.INT64, [-1]), arr(T.BOOL, [])]),
      arr(T.FLOAT32, []),
    ]),
  ],
];

interface TensorCase {
  name: string;
  dims: number[];
  type: GGMLType;
  /** Worked out by hand from the block sizes. */
  bytes: number;
  elements: number;
}

const TENSOR_CASES: TensorCase[] = [
  { name: 'f32', dims: [4, 3], type: GGMLType.F32, bytes: 48, elements: 12 },
  { name: 'f16', dims: [7], type: GGMLType.F16, bytes: 14, elements: 7 },
  { name: 'bf16', dims: [3, 1, 1, 2], type: GGMLType.BF16, bytes: 12, elements: 6 },
  { name: 'q4_0', dims: [64, 2], type: GGMLType.Q4_0, bytes: 4 * 18, elements: 128 },
  { name: 'q8_0', dims: [32, 2, 2], type: GGMLType.Q8_0, bytes: 4 * 34, elements: 128 },
  { name: 'blk.0.attn_q.weight', dims: [256, 1], type: GGMLType.Q4_K, bytes: 144, elements: 256 },
  { name: 'q6_k', dims: [512], type: GGMLType.Q6_K, bytes: 2 * 210, elements: 512 },
  { name: 'q5_1', dims: [32, 3], type: GGMLType.Q5_1, bytes: 3 * 24, elements: 96 },
];

function sampleSpec(version: 2 | 3, alignment: number | undefined, seed: number) {
  const tensors: InMemoryTensorSpec[] = TENSOR_CASES.map((t, i) => ({
    name: t.name,
    dims: t.dims,
    type: t.type,
    data: pseudoRandomBytes(t.bytes, seed + i),
  }));
  return { version, alignment, metadata: ALL_VALUES, tensors };
}

function checkFile(file: GGUFFile, spec: ReturnType<typeof sampleSpec>, expectedAlignment: number): void {
  expect(file.version).toBe(spec.version);
  expect(file.alignment).toBe(expectedAlignment);
  for (const [key, value] of spec.metadata) {
    expect(file.metadata.get(key), key).toEqual(expectedValue(value));
    expect(file.typeOf(key), key).toBe(expectedTypeName(value));
  }
  const extraKeys = expectedAlignment !== 32 ? 1 : 0; // the writer adds general.alignment
  expect(file.metadata.size).toBe(spec.metadata.length + extraKeys);
  expect(file.dataOffset % expectedAlignment).toBe(0);
  expect(file.tensors.map((t) => t.name)).toEqual(TENSOR_CASES.map((t) => t.name));
  for (const c of TENSOR_CASES) {
    const t = file.tensor(c.name)!;
    expect(t.dims).toEqual(c.dims);
    expect(t.type).toBe(c.type);
    expect(t.byteSize).toBe(c.bytes);
    expect(t.nElements).toBe(c.elements);
    expect(t.offset % expectedAlignment).toBe(0);
    expect(t.offset).toBeGreaterThanOrEqual(file.dataOffset);
  }
  expect(file.tensor('absent')).toBeUndefined();
}

async function checkTensorData(file: GGUFFile, spec: ReturnType<typeof sampleSpec>): Promise<void> {
  for (const s of spec.tensors) {
    const t = file.tensor(s.name)!;
    expect(await file.source.read(t.offset, t.byteSize)).toEqual(s.data);
  }
}

describe('round trip', () => {
  for (const version of [2, 3] as const) {
    for (const alignment of [undefined, 64, 1]) {
      it(`v${version}, alignment ${alignment ?? 'default'}`, async () => {
        const spec = sampleSpec(version, alignment, 1000 * version + (alignment ?? 0));
        const bytes = encodeGGUF(spec);
        for (const chunkSize of [undefined, 13, 4096]) {
          const file = await readGGUF(new ArrayBufferSource(bytes), { chunkSize });
          checkFile(file, spec, alignment ?? 32);
          await checkTensorData(file, spec);
        }
      });
    }
  }

  it('writeGGUF streams exactly the bytes encodeGGUF builds', async () => {
    const spec = sampleSpec(3, 64, 7);
    const path = join(tmpDir, 'stream.gguf');
    const streamed = {
      ...spec,
      tensors: spec.tensors.map((t) => ({
        name: t.name,
        dims: t.dims,
        type: t.type,
        // Odd chunk sizes, to cross the writer's buffer boundaries.
        async writeData(sink: (chunk: Uint8Array) => Promise<void>) {
          for (let i = 0; i < t.data.length; i += 5) await sink(t.data.subarray(i, i + 5));
        },
      })),
    };
    const layout = await writeGGUF(path, streamed);
    const onDisk = new Uint8Array(await readFile(path));
    expect(onDisk).toEqual(encodeGGUF(spec));
    expect(onDisk.length).toBe(layout.fileSize);
  });

  it('writeGGUF rejects a tensor that writes the wrong number of bytes, and removes the file', async () => {
    const path = join(tmpDir, 'short.gguf');
    const spec = {
      metadata: [],
      tensors: [{ name: 'x', dims: [4], type: GGMLType.F32, writeData: async (sink: (c: Uint8Array) => Promise<void>) => sink(new Uint8Array(15)) }],
    };
    await expect(writeGGUF(path, spec)).rejects.toThrow(/15 bytes, expected 16/);
    await expect(access(path)).rejects.toThrow();
    const tooLong = { ...spec, tensors: [{ ...spec.tensors[0], writeData: async (sink: (c: Uint8Array) => Promise<void>) => sink(new Uint8Array(17)) }] };
    await expect(writeGGUF(path, tooLong)).rejects.toThrow(/more than the 16 bytes/);
  });

  it('agrees with node-llama-cpp’s GGUF parser (an independent implementation)', async () => {
    const spec = sampleSpec(3, 64, 99);
    const path = join(tmpDir, 'oracle.gguf');
    await writeFile(path, encodeGGUF(spec));
    const { readGgufFileInfo } = await import('node-llama-cpp');
    const info = await readGgufFileInfo(path, { logWarnings: false, sourceType: 'filesystem' });
    const ours = await readGGUF(new ArrayBufferSource(encodeGGUF(spec)));

    expect(info.version).toBe(3);
    // node-llama-cpp nests keys by their dots: walk the path.
    const lookup = (key: string): unknown => key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], info.metadata);
    const plain = (v: unknown): unknown =>
      ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<unknown>, plain) : Array.isArray(v) ? v.map(plain) : typeof v === 'bigint' ? v : v;
    const asBig = (v: unknown): unknown => (typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : Array.isArray(v) ? v.map(asBig) : v);
    for (const [key, value] of spec.metadata) {
      if (key === '' || key === 't.arr.nested') continue; // its dotted nesting cannot hold an empty key; it reads nested arrays differently
      const theirs = lookup(key);
      const mine = plain(ours.metadata.get(key));
      if (value.kind === 'array' && (value.elemType === T.UINT64 || value.elemType === T.INT64)) {
        expect(asBig(theirs), key).toEqual(asBig(mine));
      } else if (typeof theirs === 'bigint' || typeof mine === 'bigint') {
        expect(BigInt(theirs as bigint), key).toBe(BigInt(mine as bigint));
      } else {
        expect(theirs, key).toEqual(mine);
      }
    }
    expect(info.tensorInfo!.map((t) => t.name)).toEqual(ours.tensors.map((t) => t.name));
    info.tensorInfo!.forEach((t, i) => {
      const mine = ours.tensors[i];
      expect(t.dimensions.map(Number)).toEqual(mine.dims);
      expect(Number(t.ggmlType)).toBe(mine.type);
      expect(Number(t.fileOffset)).toBe(mine.offset);
    });
    expect(info.infoEndOffset).toBe(ours.dataOffset);
  }, 60_000);

  it('a hand-laid-out file has the data offset worked out by hand', async () => {
    // header 24 + kv ("a": 8+1, type 4, u8 1) 14 + tensor info ("x": 8+1, n_dims 4, dim 8, type 4, offset 8) 33 = 71 -> 96.
    const w = new ByteWriter();
    w.bytes(new TextEncoder().encode('GGUF')).u32(3).u64(1).u64(1);
    w.str('a').u32(T.UINT8).u8(7);
    w.str('x').u32(1).u64(4).u32(GGMLType.F32).u64(0);
    expect(w.length).toBe(71);
    w.pad(32);
    w.f32(1).f32(2).f32(3).f32(4);
    const file = await readGGUF(new ArrayBufferSource(w.finish()));
    expect(file.dataOffset).toBe(96);
    expect(file.tensor('x')).toEqual({ name: 'x', dims: [4], type: GGMLType.F32, offset: 96, byteSize: 16, nElements: 4 });
    expect(file.metadata.get('a')).toBe(7);
    expect(file.size).toBe(112);
  });

  it('invalid UTF-8 in keys and strings becomes U+FFFD, never an error', async () => {
    const w = new ByteWriter();
    w.bytes(new TextEncoder().encode('GGUF')).u32(3).u64(0).u64(2);
    const invalid = new Uint8Array([0xff, 0x61, 0xed, 0xa0, 0x80, 0x62, 0xc3]); // bad byte, 'a', a surrogate, 'b', a cut sequence
    w.u64(invalid.length).bytes(invalid).u32(T.STRING).u64(invalid.length).bytes(invalid);
    w.str('ok').u32(T.ARRAY).u32(T.STRING).u64(1).u64(invalid.length).bytes(invalid);
    const file = await readGGUF(new ArrayBufferSource(w.finish()));
    // WHATWG decoding: each maximal invalid subpart is one U+FFFD (the surrogate's three bytes are three).
    const expected = '\uFFFDa\uFFFD\uFFFD\uFFFDb\uFFFD';
    expect([...file.metadata.keys()]).toEqual([expected, 'ok']);
    expect(file.metadata.get(expected)).toBe(expected);
    expect(file.metadata.get('ok')).toEqual([expected]);
  });

  it("decodes strings as the WHATWG decoder does (TextDecoder), short ones by its own path included", () => {
    const oracle = new TextDecoder('utf-8');
    const texts = ['', 'a', 'Ġthe', 'ĠĠĠĠ', 'é', '中文', '€', '\u07ff', '\u0800', '\ud7ff', '\ue000', '\uffff', '😀', 'a😀b', 'x'.repeat(40)];
    const samples = texts.map((t) => new TextEncoder().encode(t));
    // a surrogate, overlong forms, a 4-byte one past U+10FFFF, cut sequences, a lone continuation
    for (const bytes of [[0xed, 0xa0, 0x80], [0x61, 0xed, 0xbf, 0xbf], [0xe0, 0x80, 0x80], [0xe0, 0x9f, 0xbf], [0xc0, 0xaf], [0xc1, 0xbf],
      [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xc3], [0x80], [0x62, 0xe2, 0x82, 0x63]]) samples.push(new Uint8Array(bytes));
    // Random bytes, biased to the lead and continuation bytes where UTF-8 goes wrong: cut, overlong,
    // surrogate and 4-byte sequences, lone continuations, 0xc0/0xc1/0xf5..0xff.
    const edges = [0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x9f, 0xa0];
    const raw = pseudoRandomBytes(20_000, 9);
    for (let at = 0; at < raw.length;) {
      const n = raw[at]! % 36;
      const bytes = raw.slice(at + 1, at + 1 + n).map((b, i) => (i % 3 === 0 ? edges[b % edges.length]! : b));
      samples.push(bytes);
      at += n + 1;
    }
    for (const bytes of samples) {
      const padded = new Uint8Array(bytes.length + 6);
      padded.set(bytes, 3);
      expect(decodeUtf8(padded, 3, 3 + bytes.length), [...bytes].map((b) => b.toString(16)).join(' ')).toBe(oracle.decode(bytes));
    }
  });

  it('the big-endian-host decoder gives the same arrays as the fast path', () => {
    const raw = pseudoRandomBytes(64, 5);
    const cases: [T, new (b: ArrayBuffer) => ArrayLike<number | bigint>][] = [
      [T.INT8, Int8Array], [T.UINT16, Uint16Array], [T.INT16, Int16Array], [T.UINT32, Uint32Array],
      [T.INT32, Int32Array], [T.FLOAT32, Float32Array], [T.FLOAT64, Float64Array],
      [T.UINT64, BigUint64Array], [T.INT64, BigInt64Array],
    ];
    for (const [type, Ctor] of cases) {
      const fast = new Ctor(raw.slice().buffer); // this host is little-endian
      const portable = decodeNumberArrayPortable(raw, type, fast.length);
      expect(Array.from(portable as ArrayLike<number | bigint>), T[type]).toEqual(Array.from(fast));
    }
  });
});

// -------------------------------------------------------------------------------------------------
// Typed getters

describe('typed getters', () => {
  it('return values, undefined when absent, and name the key and the type found', async () => {
    const file = await readGGUF(new ArrayBufferSource(encodeGGUF(sampleSpec(3, undefined, 1))));
    expect(file.getString('general.architecture')).toBe('test');
    expect(file.requireString('general.architecture')).toBe('test');
    expect(file.requireNumber('t.u32')).toBe(4294967295);
    expect(file.getNumber('t.i64.neg')).toBe(-5);
    expect(file.getNumber('t.f32.pos')).toBe(Math.fround(0.1));
    expect(file.getBool('t.bool.false')).toBe(false);
    expect(file.requireBool('t.bool.true')).toBe(true);
    expect(file.requireStringArray('t.arr.str')[2]).toBe('Ġthe');
    expect(file.getStringArray('t.arr.empty.str')).toEqual([]);
    expect(file.requireNumberArray('t.arr.i32')).toEqual(new Int32Array([-1, 2, -3, 2147483647]));

    const getters = [(k: string) => file.getString(k), (k: string) => file.getNumber(k), (k: string) => file.getBool(k), (k: string) => file.getStringArray(k), (k: string) => file.getNumberArray(k)];
    for (const get of getters) expect(get('no.such.key')).toBeUndefined();
    await expectGGUFError(Promise.resolve().then(() => file.requireString('no.such.key')), 'missing-key', "'no.such.key'");
    await expectGGUFError(Promise.resolve().then(() => file.requireNumberArray('no.such.key')), 'missing-key', "'no.such.key'");
    await expectGGUFError(Promise.resolve().then(() => file.getString('t.u32')), 'invalid-value', "'t.u32' is u32");
    await expectGGUFError(Promise.resolve().then(() => file.getNumber('t.str.text')), 'invalid-value', "'t.str.text' is string");
    await expectGGUFError(Promise.resolve().then(() => file.getBool('t.u8')), 'invalid-value', "'t.u8' is u8");
    await expectGGUFError(Promise.resolve().then(() => file.getStringArray('t.arr.u8')), 'invalid-value', 'array<u8>');
    await expectGGUFError(Promise.resolve().then(() => file.getNumberArray('t.arr.str')), 'invalid-value', 'array<string>');
    await expectGGUFError(Promise.resolve().then(() => file.getStringArray('t.arr.nested')), 'invalid-value', 'array<array>');
    // A u64 beyond 2^53 cannot be a JS number: an error, not a silently rounded value.
    await expectGGUFError(Promise.resolve().then(() => file.getNumber('t.u64.max')), 'invalid-value', '18446744073709551615');
    expect(file.metadata.get('t.u64.max')).toBe((1n << 64n) - 1n);
    // u64/i64 arrays become Float64Array only when every element is safe.
    await expectGGUFError(Promise.resolve().then(() => file.getNumberArray('t.arr.i64')), 'invalid-value', 'element 0');
  });

  it('u64 arrays of safe values read as Float64Array', async () => {
    const bytes = encodeGGUF({ metadata: [['ids', arr(T.UINT64, [1, 2, 2 ** 40])]], tensors: [] });
    const file = await readGGUF(new ArrayBufferSource(bytes));
    expect(file.getNumberArray('ids')).toEqual(new Float64Array([1, 2, 2 ** 40]));
  });
});

// -------------------------------------------------------------------------------------------------
// Corrupt corpus: each defect alone, applied to a base that parses.

interface RawTensor {
  name: string;
  nDims?: number;
  dims: (number | bigint)[];
  type: number;
  offset: number | bigint;
}

interface RawFile {
  magic: string;
  version: number;
  /** Override the counts written in the header. */
  tensorCount?: number | bigint;
  kvCount?: number | bigint;
  kv: Array<[string, TypedValue]>;
  /** Entries written after `kv` with full control of the bytes. */
  rawKv: Array<(w: ByteWriter) => void>;
  tensors: RawTensor[];
  /** Padding of the data section (the file's declared alignment may be invalid). */
  pad: number;
  dataBytes: number;
}

const BASE: RawFile = {
  magic: 'GGUF',
  version: 3,
  kv: [
    ['general.architecture', str('test')],
    ['general.alignment', u32(32)],
    ['tokens', arr(T.STRING, ['a', 'b', 'c'])],
  ],
  rawKv: [],
  tensors: [
    { name: 'a', dims: [8, 2], type: GGMLType.F32, offset: 0 }, // 64 bytes
    { name: 'b', dims: [32], type: GGMLType.Q4_0, offset: 64 }, // 18 bytes
  ],
  pad: 32,
  dataBytes: 96,
};

function craft(f: RawFile): Uint8Array {
  const w = new ByteWriter();
  w.bytes(new TextEncoder().encode(f.magic));
  w.u32(f.version);
  w.u64(f.tensorCount ?? f.tensors.length);
  w.u64(f.kvCount ?? f.kv.length + f.rawKv.length);
  for (const [key, value] of f.kv) {
    w.str(key).u32(value.kind === 'scalar' ? value.type : T.ARRAY).value(value);
  }
  for (const write of f.rawKv) write(w);
  for (const t of f.tensors) {
    w.str(t.name).u32(t.nDims ?? t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type).u64(t.offset);
  }
  w.pad(f.pad);
  w.bytes(new Uint8Array(f.dataBytes));
  return w.finish();
}

const withTensor = (i: number, change: Partial<RawTensor>): Partial<RawFile> => ({
  tensors: BASE.tensors.map((t, j) => (j === i ? { ...t, ...change } : t)),
});

/** A nested array `depth` levels deep: array<array<…<u8>>>. */
function nestedArray(depth: number): (w: ByteWriter) => void {
  return (w) => {
    w.str('bomb').u32(T.ARRAY);
    for (let d = 1; d < depth; d++) w.u32(T.ARRAY).u64(1);
    w.u32(T.UINT8).u64(1).u8(1);
  };
}

const DEFECTS: Array<{ name: string; change: Partial<RawFile> | ((bytes: Uint8Array) => Uint8Array); code: GGUFErrorCode; message?: string }> = [
  { name: 'bad magic', change: { magic: 'GGUX' }, code: 'bad-magic' },
  { name: 'legacy GGML magic', change: { magic: 'lmgg' }, code: 'bad-magic' },
  { name: 'empty file', change: () => new Uint8Array(0), code: 'truncated' },
  { name: 'three bytes of another format', change: () => new Uint8Array([1, 2, 3]), code: 'bad-magic' },
  { name: 'version 1', change: { version: 1 }, code: 'unsupported-version', message: 'v1' },
  { name: 'version 4', change: { version: 4 }, code: 'unsupported-version', message: 'version 4' },
  { name: 'big-endian v3', change: { version: 0x03000000 }, code: 'unsupported-version', message: 'big-endian' },
  { name: 'tensor count 2^63', change: { tensorCount: 1n << 63n }, code: 'limit-exceeded', message: 'tensor count' },
  { name: 'metadata count 2^63', change: { kvCount: 1n << 63n }, code: 'limit-exceeded', message: 'metadata count' },
  { name: 'metadata count beyond the file', change: { kvCount: 1_000_000 }, code: 'truncated' },
  { name: 'tensor count beyond the file', change: { tensorCount: 1_000_000 }, code: 'truncated' },
  { name: 'string length beyond the file', change: { rawKv: [(w) => w.u64(5000).bytes(new Uint8Array(4))] }, code: 'truncated', message: 'string length 5000' },
  { name: 'string length 2^40', change: { rawKv: [(w) => w.u64(2 ** 40)] }, code: 'limit-exceeded', message: 'string length' },
  { name: 'string length 2^63', change: { rawKv: [(w) => w.u64(1n << 63n)] }, code: 'limit-exceeded' },
  { name: 'array count 2^62', change: { rawKv: [(w) => w.str('x').u32(T.ARRAY).u32(T.UINT32).u64(1n << 62n)] }, code: 'limit-exceeded', message: "'x'" },
  { name: 'array count beyond the file', change: { rawKv: [(w) => w.str('x').u32(T.ARRAY).u32(T.UINT32).u64(1_000_000)] }, code: 'truncated', message: "metadata key 'x'" },
  { name: 'string array count beyond the file', change: { rawKv: [(w) => w.str('x').u32(T.ARRAY).u32(T.STRING).u64(100_000)] }, code: 'truncated' },
  { name: 'nested depth bomb', change: { rawKv: [nestedArray(10_000)] }, code: 'limit-exceeded', message: 'nested' },
  { name: 'nested one level too deep', change: { rawKv: [nestedArray(MAX_ARRAY_DEPTH + 1)] }, code: 'limit-exceeded', message: 'nested' },
  { name: 'unknown value type', change: { rawKv: [(w) => w.str('x').u32(13).u32(0)] }, code: 'unsupported-type', message: 'value type 13' },
  { name: 'unknown array element type', change: { rawKv: [(w) => w.str('x').u32(T.ARRAY).u32(99).u64(0)] }, code: 'unsupported-type', message: 'element type 99' },
  { name: 'bool value 2', change: { rawKv: [(w) => w.str('x').u32(T.BOOL).u8(2)] }, code: 'invalid-value', message: "'x'" },
  { name: 'bool array value 7', change: { rawKv: [(w) => w.str('x').u32(T.ARRAY).u32(T.BOOL).u64(2).u8(1).u8(7)] }, code: 'invalid-value' },
  { name: 'unknown ggml type', change: withTensor(1, { type: 4 }), code: 'unsupported-type', message: "tensor 'b' [32] has unknown ggml type id 4" },
  { name: 'ggml type 2^31', change: withTensor(0, { type: 0x80000000 }), code: 'unsupported-type', message: "'a'" },
  { name: 'n_dims 0', change: withTensor(0, { dims: [] }), code: 'bad-tensor', message: "'a'" },
  { name: 'n_dims 5', change: withTensor(0, { dims: [8, 1, 1, 1, 1] }), code: 'bad-tensor', message: '5 dimensions' },
  { name: 'n_dims 2^32-1', change: withTensor(0, { nDims: 0xffffffff, dims: [8] }), code: 'bad-tensor' },
  { name: 'dim 0', change: withTensor(0, { dims: [8, 0] }), code: 'bad-tensor', message: 'dimension 1 is 0' },
  { name: 'dim 2^63', change: withTensor(0, { dims: [8, 1n << 63n] }), code: 'limit-exceeded' },
  { name: 'element count overflow', change: withTensor(0, { dims: [2 ** 26, 2 ** 26, 2 ** 26] }), code: 'limit-exceeded', message: 'element count' },
  { name: 'byte size overflow', change: withTensor(0, { dims: [2 ** 26, 2 ** 26] }), code: 'limit-exceeded', message: 'byte size' },
  { name: 'row not divisible by the block', change: withTensor(1, { dims: [48] }), code: 'bad-tensor', message: 'block size 32' },
  { name: 'misaligned offset', change: withTensor(1, { offset: 68 }), code: 'bad-tensor', message: 'multiple of the alignment 32' },
  { name: 'offset beyond the file', change: withTensor(1, { offset: 2 ** 40 }), code: 'tensor-out-of-bounds', message: "tensor 'b' [32] Q4_0: data ends at byte" },
  { name: 'offset 2^63', change: withTensor(1, { offset: 1n << 63n }), code: 'limit-exceeded' },
  { name: 'data cut short', change: { dataBytes: 80 }, code: 'tensor-out-of-bounds', message: 'beyond the file size' },
  { name: 'overlap', change: withTensor(1, { offset: 32 }), code: 'tensor-overlap', message: "'a'" },
  { name: 'same offset', change: withTensor(1, { offset: 0 }), code: 'tensor-overlap' },
  { name: 'duplicate key', change: { kv: [...BASE.kv, ['tokens', u8(1)]] }, code: 'duplicate-key', message: "'tokens'" },
  { name: 'duplicate tensor', change: withTensor(1, { name: 'a' }), code: 'duplicate-tensor', message: "'a'" },
  { name: 'alignment 0', change: { kv: [['general.alignment', u32(0)]] }, code: 'invalid-value', message: 'general.alignment' },
  { name: 'alignment 3', change: { kv: [['general.alignment', u32(3)]] }, code: 'invalid-value', message: 'power of two' },
  { name: 'alignment as u64', change: { kv: [['general.alignment', u64(32)]] }, code: 'invalid-value', message: 'u64' },
  { name: 'cut inside the header', change: (b) => b.subarray(0, 20), code: 'truncated' },
  // 'tokens' runs from byte 101 to 158 (header 24, architecture 44, alignment 33).
  { name: 'cut inside a string array', change: (b) => b.subarray(0, 140), code: 'truncated', message: "'tokens'" },
];

describe('corrupt corpus', () => {
  it('the base file parses', async () => {
    const file = await readGGUF(new ArrayBufferSource(craft(BASE)));
    expect(file.tensors.map((t) => [t.name, t.offset - file.dataOffset, t.byteSize])).toEqual([['a', 0, 64], ['b', 64, 18]]);
    expect(file.getStringArray('tokens')).toEqual(['a', 'b', 'c']);
  });

  it('arrays nested exactly to the depth limit parse', async () => {
    const file = await readGGUF(new ArrayBufferSource(craft({ ...BASE, rawKv: [nestedArray(MAX_ARRAY_DEPTH)] })));
    let v = file.metadata.get('bomb');
    for (let d = 1; d < MAX_ARRAY_DEPTH; d++) v = (v as GGUFValue[])[0];
    expect(v).toEqual(new Uint8Array([1]));
  });

  for (const defect of DEFECTS) {
    it(`${defect.name} -> ${defect.code}`, async () => {
      const bytes = typeof defect.change === 'function' ? defect.change(craft(BASE)) : craft({ ...BASE, ...defect.change });
      for (const chunkSize of [undefined, 16]) {
        await expectGGUFError(readGGUF(new ArrayBufferSource(bytes), { chunkSize }), defect.code, defect.message);
      }
    });
  }

  it('the truncation message names the byte and the key', async () => {
    const bytes = craft(BASE).subarray(0, 140);
    const err = await expectGGUFError(readGGUF(new ArrayBufferSource(bytes)), 'truncated');
    expect(err.message).toMatch(/^truncated at byte 140 while reading metadata key 'tokens'/);
  });

  it('a string cut inside an array is named by its index', async () => {
    const bytes = encodeGGUF({ metadata: [['tokenizer.ggml.tokens', arr(T.STRING, ['x'.repeat(40), 'y'.repeat(40), 'z'.repeat(40)])]], tensors: [] });
    // header 24, key 8 + 21, type 4, element type 4, count 8 = 69; each string 8 + 40.
    const cut = 69 + 48 + 20;
    const err = await expectGGUFError(readGGUF(new ArrayBufferSource(bytes.subarray(0, cut)), { chunkSize: 8 }), 'truncated');
    expect(err.message).toMatch(new RegExp(`^truncated at byte ${cut} while reading metadata key 'tokenizer.ggml.tokens'\\[1\\]`));
  });
});

// -------------------------------------------------------------------------------------------------
// Byte sources

/** Counts what a source is asked for. */
class CountingSource implements ByteSource {
  requests: [number, number][] = [];
  constructor(private readonly inner: ByteSource) {}
  get size(): number {
    return this.inner.size;
  }
  read(offset: number, length: number): Promise<Uint8Array> {
    this.requests.push([offset, length]);
    return this.inner.read(offset, length);
  }
  readInto(offset: number, target: Uint8Array): Promise<void> {
    this.requests.push([offset, target.length]);
    return this.inner.readInto(offset, target);
  }
}

/** A Blob that records the size of every slice taken from it. */
class RecordingBlob extends Blob {
  slices: number[] = [];
  override slice(start?: number, end?: number, contentType?: string): Blob {
    this.slices.push((end ?? this.size) - (start ?? 0));
    return super.slice(start, end, contentType);
  }
}

function snapshot(file: GGUFFile): unknown {
  return {
    version: file.version,
    alignment: file.alignment,
    dataOffset: file.dataOffset,
    size: file.size,
    metadata: [...file.metadata].map(([k, v]) => [k, file.typeOf(k), v]),
    tensors: file.tensors,
  };
}

describe('byte sources', () => {
  // Blob reads go through a stream reader with a 4 MiB buffer lent back and forth: sizes around
  // and across that buffer, and blobs shorter or longer than the target.
  it('readBlobInto copies every byte of blobs of any size and reports how many there were', async () => {
    const MiB = 1024 * 1024;
    const data = new Uint8Array(9 * MiB + 5);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    for (const size of [0, 1, 4 * MiB - 1, 4 * MiB, 4 * MiB + 1, 9 * MiB + 5]) {
      const target = new Uint8Array(size).fill(0xee);
      expect(await readBlobInto(new Blob([data.subarray(0, size)]), target)).toBe(size);
      expect(Buffer.compare(target, data.subarray(0, size))).toBe(0);  // (toEqual is slow on 9 MB)
    }
    const short = new Uint8Array(10).fill(0xee);
    expect(await readBlobInto(new Blob([data.subarray(0, 6)]), short)).toBe(6);
    expect(short.subarray(0, 6)).toEqual(data.subarray(0, 6));
    expect(await readBlobInto(new Blob([data.subarray(0, 12)]), new Uint8Array(10))).toBeGreaterThan(10);
  });

  // Chromium sometimes leaves a Blob's stream waiting forever; a fresh stream of the same bytes
  // reads at once. A Blob whose streams stall after some bytes stands in for that browser.
  class StallingBlob extends Blob {
    streams = 0;
    constructor(private readonly data: Uint8Array<ArrayBuffer>, private readonly stalls: number, private readonly byteStream: boolean) {
      super([data]);
    }

    override slice(start = 0): Blob {
      return Object.assign(new Blob([this.data.subarray(start)]), { stream: () => this.stallingStream(start) });
    }

    override stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
      return this.stallingStream(0);
    }

    private stallingStream(start: number): ReadableStream<Uint8Array<ArrayBuffer>> {
      const stalls = this.streams++ < this.stalls;
      const data = this.data.slice(start);
      let at = 0;
      const piece = 1000; // a few pieces arrive, then (for a stalling stream) nothing more
      const pull = (controller: ReadableStreamDefaultController<Uint8Array> | ReadableByteStreamController) => {
        if (stalls && at >= 2 * piece) return new Promise<void>(() => undefined);
        if (at >= data.length) {
          controller.close();
          // A byte stream's pending BYOB read ends only once answered (with no bytes).
          if ('byobRequest' in controller) controller.byobRequest?.respond(0);
          return;
        }
        (controller as ReadableStreamDefaultController<Uint8Array>).enqueue(data.slice(at, at + piece)); // the same call on both kinds
        at += piece;
      };
      return (this.byteStream
        ? new ReadableStream({ type: 'bytes', pull })
        : new ReadableStream<Uint8Array>({ pull })) as ReadableStream<Uint8Array<ArrayBuffer>>;
    }
  }

  for (const byteStream of [true, false]) {
    it(`restarts a Blob read that stalls where it stopped, and fails with 'read-stalled' when it keeps stalling (${byteStream ? 'byte' : 'plain'} stream)`, async () => {
      const data = new Uint8Array(10_000);
      for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
      const twice = new StallingBlob(data, 2, byteStream);
      const target = new Uint8Array(data.length);
      expect(await readBlobInto(twice, target, 50)).toBe(data.length);
      expect(twice.streams).toBe(3);
      expect(Buffer.compare(target, data)).toBe(0);

      const always = new StallingBlob(data, Infinity, byteStream);
      const started = performance.now();
      const failure = await readBlobInto(always, new Uint8Array(data.length), 50).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(GGUFError);
      expect(failure).toMatchObject({ code: 'read-stalled', message: expect.stringMatching(/8000 of 10000 read, 4 tries/) });
      expect(always.streams).toBe(4);
      expect(performance.now() - started).toBeLessThan(5_000);
    });
  }

  it('ArrayBuffer, Uint8Array view, Blob and file give identical results', async () => {
    const spec = sampleSpec(3, undefined, 42);
    const bytes = encodeGGUF(spec);
    const path = join(tmpDir, 'sources.gguf');
    await writeFile(path, bytes);

    // A view with a non-zero byteOffset into a larger buffer.
    const padded = new Uint8Array(bytes.length + 10);
    padded.set(bytes, 7);
    const blob = new RecordingBlob([bytes]);
    const nodeSource = await NodeFileSource.open(path);
    try {
      const sources: ByteSource[] = [
        new ArrayBufferSource(bytes.slice().buffer),
        new ArrayBufferSource(padded.subarray(7, 7 + bytes.length)),
        new BlobSource(blob),
        nodeSource,
      ];
      const expected = snapshot(await readGGUF(new ArrayBufferSource(bytes)));
      for (const source of sources) {
        expect(source.size).toBe(bytes.length);
        const file = await readGGUF(source, { chunkSize: 100 });
        expect(snapshot(file)).toEqual(expected);
        await checkTensorData(file, spec);
        // Ranges, readInto, and reads past the end.
        for (const [offset, length] of [[0, 0], [0, 17], [bytes.length - 5, 5], [123, 456]]) {
          expect(await source.read(offset, length)).toEqual(bytes.subarray(offset, offset + length));
          const target = new Uint8Array(length);
          await source.readInto(offset, target);
          expect(target).toEqual(bytes.subarray(offset, offset + length));
        }
        await expectGGUFError(source.read(bytes.length - 4, 5), 'truncated');
        await expectGGUFError(source.readInto(bytes.length + 1, new Uint8Array(1)), 'truncated');
        await expectGGUFError(source.read(-1, 2), 'invalid-value');
        await expectGGUFError(source.read(0.5, 2), 'invalid-value');
      }
      expect(Math.max(...blob.slices)).toBeLessThanOrEqual(456);
    } finally {
      await nodeSource.close();
    }
  });

  it('the reader fetches the header in chunks and never the tensor data', async () => {
    // 4 MiB of tensor data behind a small header.
    const bigSpec = { metadata: [['general.architecture', str('x')] as [string, TypedValue]], tensors: [{ name: 'w', dims: [1024, 1024], type: GGMLType.F32, data: new Uint8Array(4 << 20) }] };
    const bytes = encodeGGUF(bigSpec);
    const blob = new RecordingBlob([bytes]);
    const counting = new CountingSource(new BlobSource(blob));
    const file = await readGGUF(counting, { chunkSize: 4096 });
    expect(file.tensor('w')!.byteSize).toBe(4 << 20);
    const requested = counting.requests.reduce((s, [, n]) => s + n, 0);
    expect(requested).toBeLessThanOrEqual(4096);
    expect(Math.max(...blob.slices)).toBeLessThanOrEqual(4096);
  });

  it('NodeFileSource reads a sparse file larger than 2 GiB', async () => {
    const path = join(tmpDir, 'sparse.gguf');
    const farOffset = 2.5 * 2 ** 30; // relative to the data section; aligned to 32
    const farData = pseudoRandomBytes(34 * 2, 3);
    const layout = encodeGGUFHeader(
      {
        metadata: [['general.architecture', str('sparse')]],
        tensors: [
          { name: 'near', dims: [8], type: GGMLType.F32 },
          { name: 'far', dims: [32, 2], type: GGMLType.Q8_0 },
        ],
      },
      [0, farOffset],
    );
    const handle = await open(path, 'w');
    try {
      await handle.write(layout.header, 0, layout.header.length, 0);
      await handle.write(farData, 0, farData.length, layout.dataOffset + farOffset);
      await handle.truncate(layout.fileSize); // sparse: the gap takes no disk space
    } finally {
      await handle.close();
    }
    const source = await NodeFileSource.open(path);
    try {
      expect(source.size).toBeGreaterThan(2 ** 31);
      const file = await readGGUF(source);
      const far = file.tensor('far')!;
      expect(far.offset).toBe(layout.dataOffset + farOffset);
      expect(far.offset).toBeGreaterThan(2 ** 31);
      expect(await source.read(far.offset, far.byteSize)).toEqual(farData);
      const into = new Uint8Array(far.byteSize);
      await source.readInto(far.offset, into);
      expect(into).toEqual(farData);
      await expectGGUFError(source.read(source.size - 1, 2), 'truncated');
    } finally {
      await source.close();
      await rm(path, { force: true });
    }
  });
});
