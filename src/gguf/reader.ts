// GGUF reader (v2 and v3, little-endian).
//
// Layout: "GGUF", u32 version, u64 tensor_count, u64 kv_count, kv_count × (string key, u32 value
// type, value), tensor_count × (string name, u32 n_dims, u64 dims[n_dims], u32 ggml type,
// u64 offset relative to the data section), padding to `general.alignment`, tensor data.
// A string is a u64 byte length and UTF-8 bytes (no NUL); an array is a u32 element type, a u64
// count and the items.
//
// The header is parsed through a buffered cursor over a ByteSource: bytes are fetched in chunks
// as the parse reaches them, so the file is never needed whole. Every count and length is
// checked against the bytes left in the file before anything is allocated, so a corrupt count
// can only produce a GGUFError, never a huge allocation.

import type { ByteSource } from './byte-source.ts';
import { GGUFError, type GGUFErrorCode } from './errors.ts';
import { GGML_TYPE_INFO, GGMLType, isGGMLType } from './ggml-types.ts';

export enum GGUFValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

const VALUE_TYPE_NAMES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'];

/** Bytes of a scalar value, or the smallest encoding of a string (its length) / array (type + count). */
const VALUE_MIN_BYTES = [1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8];

export function isGGUFValueType(id: number): id is GGUFValueType {
  return Number.isInteger(id) && id >= 0 && id <= GGUFValueType.FLOAT64;
}

export function valueTypeName(id: number): string {
  return isGGUFValueType(id) ? VALUE_TYPE_NAMES[id] : `type ${id}`;
}

export type GGUFNumberArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array;
export type GGUFBigIntArray = BigUint64Array | BigInt64Array;
export type GGUFArrayValue = GGUFNumberArray | GGUFBigIntArray | string[] | boolean[] | GGUFArrayValue[];
/** u64/i64 are numbers when |v| <= MAX_SAFE_INTEGER, else bigints; u64/i64 arrays are bigint typed arrays. */
export type GGUFValue = number | bigint | boolean | string | GGUFArrayValue;

export interface GGUFTensorInfo {
  readonly name: string;
  /** Shape, ne0 (the contiguous row, along which quant blocks run) first. */
  readonly dims: readonly number[];
  readonly type: GGMLType;
  /** Absolute byte offset of the data in the file. */
  readonly offset: number;
  readonly byteSize: number;
  readonly nElements: number;
}

export interface ReadGGUFOptions {
  /** Bytes fetched from the source per refill of the parse buffer (default 1 MiB). */
  chunkSize?: number;
}

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const DEFAULT_ALIGNMENT = 32;
/** No single string (key, name, value) may exceed this. */
export const MAX_STRING_BYTES = 64 * 1024 * 1024;
/** Arrays nested deeper than this are rejected (real files nest one level at most). */
export const MAX_ARRAY_DEPTH = 8;
/** No metadata array may hold more elements than this. */
export const MAX_ARRAY_LENGTH = 1 << 28;
export const MAX_DIMS = 4;
const DEFAULT_CHUNK_SIZE = 1 << 20;
/** Smallest tensor info: name length, n_dims, one dim, type, offset. */
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8;
/** Smallest metadata entry: key length, value type, a one-byte value. */
const MIN_KV_BYTES = 8 + 4 + 1;
const TWO_POW_32 = 4294967296;
const MAX_SAFE_BIGINT = BigInt(Number.MAX_SAFE_INTEGER);
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const utf8Decoder = new TextDecoder('utf-8'); // not fatal: invalid bytes become U+FFFD

/** Strings up to this many bytes are decoded here when they are plain 1- to 3-byte UTF-8. */
const SHORT_STRING_BYTES = 32;
const shortCodes: number[] = [];

/** UTF-8 bytes [start, end) to a string; invalid sequences become U+FFFD, never an exception. */
export function decodeUtf8(bytes: Uint8Array, start: number, end: number): string {
  if (start === end) return '';
  // A vocabulary is 150,000 short strings: a call of TextDecoder (and the view it needs) costs
  // more than decoding them here, in a browser worker more than in Node (docs/perf-log.md).
  if (end - start <= SHORT_STRING_BYTES) {
    const short = decodeShortUtf8(bytes, start, end);
    if (short !== undefined) return short;
  }
  // TextDecoder refuses views of shared memory (a source over a wasm memory): copy those.
  const shared = typeof SharedArrayBuffer !== 'undefined' && bytes.buffer instanceof SharedArrayBuffer;
  return utf8Decoder.decode(shared ? bytes.slice(start, end) : bytes.subarray(start, end));
}

/** Well-formed UTF-8 of 1- to 3-byte sequences (the Basic Multilingual Plane); else undefined. */
function decodeShortUtf8(bytes: Uint8Array, start: number, end: number): string | undefined {
  shortCodes.length = 0;
  for (let i = start; i < end;) {
    const b = bytes[i]!;
    if (b < 0x80) {
      shortCodes.push(b);
      i += 1;
    } else if (b >= 0xc2 && b < 0xe0) {
      const b1 = bytes[i + 1]!;
      if (i + 1 >= end || (b1 & 0xc0) !== 0x80) return undefined;
      shortCodes.push(((b & 0x1f) << 6) | (b1 & 0x3f));
      i += 2;
    } else if (b >= 0xe0 && b < 0xf0) {
      const b1 = bytes[i + 1]!, b2 = bytes[i + 2]!;
      if (i + 2 >= end || (b1 & 0xc0) !== 0x80 || (b2 & 0xc0) !== 0x80) return undefined;
      if ((b === 0xe0 && b1 < 0xa0) || (b === 0xed && b1 >= 0xa0)) return undefined;  // overlong; a surrogate
      shortCodes.push(((b & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f));
      i += 3;
    } else {
      return undefined;  // 4-byte sequences and invalid bytes: TextDecoder's rules
    }
  }
  return String.fromCharCode.apply(null, shortCodes);
}

// ---------------------------------------------------------------------------------------------
// Buffered cursor

class Cursor {
  private buf: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(this.buf.buffer);
  /** Read position inside `buf`. */
  private p = 0;
  /** File offset of buf[0]. */
  private base = 0;
  /** What is being read, for error messages ("metadata key 'x'"). */
  context = 'the header';
  /** Indices of the array elements being read, innermost last. */
  readonly elementPath: number[] = [];

  constructor(
    private readonly source: ByteSource,
    private readonly chunkSize: number,
  ) {}

  get size(): number {
    return this.source.size;
  }
  /** Absolute file offset of the next byte to read. */
  get pos(): number {
    return this.base + this.p;
  }
  /** Bytes buffered and not yet consumed. */
  avail(): number {
    return this.buf.length - this.p;
  }
  /** Bytes left in the file from the read position. */
  remaining(): number {
    return this.source.size - this.pos;
  }

  where(): string {
    let path = '';
    for (const i of this.elementPath) path += `[${i}]`;
    return `${this.context}${path}`;
  }

  fail(code: GGUFErrorCode, message: string): never {
    throw new GGUFError(code, `${message} (at byte ${this.pos}, while reading ${this.where()})`);
  }

  /** The file ends before what is being read: "truncated at byte <size> while reading <what>: <detail>". */
  truncated(detail: string): never {
    throw new GGUFError('truncated', `truncated at byte ${this.size} while reading ${this.where()}: ${detail}`);
  }

  /** Makes `n` bytes available. Callers test avail() first, so the common path never awaits. */
  async need(n: number): Promise<void> {
    if (this.avail() >= n) return;
    const start = this.pos;
    if (n > this.remaining()) this.truncated(`${n} bytes needed at byte ${start}`);
    const kept = this.buf.subarray(this.p);
    const length = Math.min(Math.max(n, this.chunkSize), this.size - start);
    const fresh = await this.source.read(start + kept.length, length - kept.length);
    let next: Uint8Array;
    if (kept.length === 0) {
      next = fresh;
    } else {
      next = new Uint8Array(length);
      next.set(kept);
      next.set(fresh, kept.length);
    }
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
    this.p = 0;
    this.base = start;
  }

  // Synchronous reads: the caller has made the bytes available.
  u8(): number {
    return this.buf[this.p++];
  }
  i8(): number {
    return this.view.getInt8(this.p++);
  }
  u16(): number {
    const v = this.view.getUint16(this.p, true);
    this.p += 2;
    return v;
  }
  i16(): number {
    const v = this.view.getInt16(this.p, true);
    this.p += 2;
    return v;
  }
  u32(): number {
    const v = this.view.getUint32(this.p, true);
    this.p += 4;
    return v;
  }
  i32(): number {
    const v = this.view.getInt32(this.p, true);
    this.p += 4;
    return v;
  }
  f32(): number {
    const v = this.view.getFloat32(this.p, true);
    this.p += 4;
    return v;
  }
  f64(): number {
    const v = this.view.getFloat64(this.p, true);
    this.p += 8;
    return v;
  }
  u64(): number | bigint {
    const v = this.view.getBigUint64(this.p, true);
    this.p += 8;
    return v <= MAX_SAFE_BIGINT ? Number(v) : v;
  }
  i64(): number | bigint {
    const v = this.view.getBigInt64(this.p, true);
    this.p += 8;
    return v <= MAX_SAFE_BIGINT && v >= -MAX_SAFE_BIGINT ? Number(v) : v;
  }

  /** A u64 count or size as a number; beyond MAX_SAFE_INTEGER it is limit-exceeded. */
  u64Number(what: string): number {
    const lo = this.view.getUint32(this.p, true);
    const hi = this.view.getUint32(this.p + 4, true);
    if (hi > 0x1fffff) {
      const value = (BigInt(hi) << 32n) | BigInt(lo);
      this.fail('limit-exceeded', `${what} ${value} is beyond 2^53`);
    }
    this.p += 8;
    return hi * TWO_POW_32 + lo;
  }

  /** Decodes `n` available bytes as UTF-8 (invalid sequences become U+FFFD). */
  utf8(n: number): string {
    const s = decodeUtf8(this.buf, this.p, this.p + n);
    this.p += n;
    return s;
  }

  /** A fresh copy (byteOffset 0) of the next `n` bytes; bytes past the buffer come straight from the source. */
  async bytes(n: number): Promise<Uint8Array> {
    if (n > this.remaining()) await this.need(n); // throws truncated
    const out = new Uint8Array(n);
    const fromBuffer = Math.min(n, this.avail());
    out.set(this.buf.subarray(this.p, this.p + fromBuffer));
    this.p += fromBuffer;
    if (fromBuffer < n) {
      const start = this.pos;
      await this.source.readInto(start, out.subarray(fromBuffer));
      this.buf = new Uint8Array(0);
      this.view = new DataView(this.buf.buffer);
      this.p = 0;
      this.base = start + (n - fromBuffer);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Values

/** Reads a string's length and checks it against the cap and the bytes left, before reading it. */
function stringLength(c: Cursor): number {
  const n = c.u64Number('string length');
  if (n > MAX_STRING_BYTES) c.fail('limit-exceeded', `string length ${n} exceeds the ${MAX_STRING_BYTES}-byte limit`);
  if (n > c.remaining()) c.truncated(`string length ${n} at byte ${c.pos - 8}, but only ${c.remaining()} bytes are left`);
  return n;
}

async function readString(c: Cursor): Promise<string> {
  if (c.avail() < 8) await c.need(8);
  const n = stringLength(c);
  if (c.avail() < n) await c.need(n);
  return c.utf8(n);
}

async function readScalar(c: Cursor, type: GGUFValueType): Promise<number | bigint | boolean | string> {
  if (type === GGUFValueType.STRING) return readString(c);
  const n = VALUE_MIN_BYTES[type];
  if (c.avail() < n) await c.need(n);
  switch (type) {
    case GGUFValueType.UINT8:
      return c.u8();
    case GGUFValueType.INT8:
      return c.i8();
    case GGUFValueType.UINT16:
      return c.u16();
    case GGUFValueType.INT16:
      return c.i16();
    case GGUFValueType.UINT32:
      return c.u32();
    case GGUFValueType.INT32:
      return c.i32();
    case GGUFValueType.FLOAT32:
      return c.f32();
    case GGUFValueType.BOOL:
      return readBool(c);
    case GGUFValueType.UINT64:
      return c.u64();
    case GGUFValueType.INT64:
      return c.i64();
    case GGUFValueType.FLOAT64:
      return c.f64();
    default:
      return c.fail('unsupported-type', `value type ${type} is not a scalar`);
  }
}

function readBool(c: Cursor): boolean {
  const b = c.u8();
  if (b > 1) c.fail('invalid-value', `bool byte is ${b}, not 0 or 1`);
  return b === 1;
}

/**
 * Reads a top-level metadata value of a type id read from the file and returns it with its type
 * as stored ('u32', 'array<string>', …).
 */
async function readValue(c: Cursor, typeId: number): Promise<[GGUFValue, string]> {
  if (!isGGUFValueType(typeId)) c.fail('unsupported-type', `unknown metadata value type ${typeId}`);
  if (typeId === GGUFValueType.ARRAY) {
    const elem = { type: 0 };
    const value = await readArray(c, 1, elem);
    return [value, `array<${VALUE_TYPE_NAMES[elem.type]}>`];
  }
  return [await readScalar(c, typeId), VALUE_TYPE_NAMES[typeId]];
}

/** Reads an array (element type, count, items); `depth` counts it and its enclosing arrays. */
async function readArray(c: Cursor, depth: number, elem?: { type: number }): Promise<GGUFArrayValue> {
  if (depth > MAX_ARRAY_DEPTH) c.fail('limit-exceeded', `arrays nested deeper than ${MAX_ARRAY_DEPTH} levels`);
  if (c.avail() < 12) await c.need(12);
  const elemType = c.u32();
  if (!isGGUFValueType(elemType)) c.fail('unsupported-type', `unknown array element type ${elemType}`);
  if (elem) elem.type = elemType;
  const count = c.u64Number('array length');
  if (count > MAX_ARRAY_LENGTH) c.fail('limit-exceeded', `array length ${count} exceeds the limit ${MAX_ARRAY_LENGTH}`);
  const minBytes = VALUE_MIN_BYTES[elemType];
  if (count > Math.floor(c.remaining() / minBytes)) {
    c.truncated(`an array of ${count} ${valueTypeName(elemType)} needs at least ${count * minBytes} bytes, but only ${c.remaining()} are left`);
  }

  switch (elemType) {
    case GGUFValueType.STRING:
      return readStringArray(c, count);
    case GGUFValueType.ARRAY: {
      const items: GGUFArrayValue[] = new Array(count);
      c.elementPath.push(0);
      for (let i = 0; i < count; i++) {
        c.elementPath[c.elementPath.length - 1] = i;
        items[i] = await readArray(c, depth + 1);
      }
      c.elementPath.pop();
      return items;
    }
    case GGUFValueType.BOOL: {
      const raw = await c.bytes(count);
      const items: boolean[] = new Array(count);
      for (let i = 0; i < count; i++) {
        if (raw[i] > 1) {
          c.fail('invalid-value', `bool array element ${i} is ${raw[i]}, not 0 or 1`);
        }
        items[i] = raw[i] === 1;
      }
      return items;
    }
    default:
      return readNumberArray(c, elemType, count);
  }
}

async function readStringArray(c: Cursor, count: number): Promise<string[]> {
  const items: string[] = new Array(count);
  const path = c.elementPath;
  path.push(0);
  const last = path.length - 1;
  // The hot loop of a vocabulary: await only when the buffer runs dry.
  for (let i = 0; i < count; i++) {
    path[last] = i;
    if (c.avail() < 8) await c.need(8);
    const n = stringLength(c);
    if (c.avail() < n) await c.need(n);
    items[i] = c.utf8(n);
  }
  path.pop();
  return items;
}

async function readNumberArray(c: Cursor, elemType: GGUFValueType, count: number): Promise<GGUFNumberArray | GGUFBigIntArray> {
  const width = VALUE_MIN_BYTES[elemType];
  const raw = await c.bytes(count * width);
  if (LITTLE_ENDIAN_HOST) {
    const b = raw.buffer;
    switch (elemType) {
      case GGUFValueType.UINT8:
        return raw;
      case GGUFValueType.INT8:
        return new Int8Array(b, 0, count);
      case GGUFValueType.UINT16:
        return new Uint16Array(b, 0, count);
      case GGUFValueType.INT16:
        return new Int16Array(b, 0, count);
      case GGUFValueType.UINT32:
        return new Uint32Array(b, 0, count);
      case GGUFValueType.INT32:
        return new Int32Array(b, 0, count);
      case GGUFValueType.FLOAT32:
        return new Float32Array(b, 0, count);
      case GGUFValueType.UINT64:
        return new BigUint64Array(b, 0, count);
      case GGUFValueType.INT64:
        return new BigInt64Array(b, 0, count);
      case GGUFValueType.FLOAT64:
        return new Float64Array(b, 0, count);
    }
  }
  return decodeNumberArrayPortable(raw, elemType, count);
}

/** Element-wise little-endian decode, the path for big-endian hosts (exported for its test). */
export function decodeNumberArrayPortable(raw: Uint8Array, elemType: GGUFValueType, count: number): GGUFNumberArray | GGUFBigIntArray {
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const fill = <T extends { [i: number]: number | bigint }>(out: T, get: (i: number) => number | bigint): T => {
    for (let i = 0; i < count; i++) out[i] = get(i);
    return out;
  };
  switch (elemType) {
    case GGUFValueType.UINT8:
      return raw;
    case GGUFValueType.INT8:
      return fill(new Int8Array(count), (i) => v.getInt8(i));
    case GGUFValueType.UINT16:
      return fill(new Uint16Array(count), (i) => v.getUint16(2 * i, true));
    case GGUFValueType.INT16:
      return fill(new Int16Array(count), (i) => v.getInt16(2 * i, true));
    case GGUFValueType.UINT32:
      return fill(new Uint32Array(count), (i) => v.getUint32(4 * i, true));
    case GGUFValueType.INT32:
      return fill(new Int32Array(count), (i) => v.getInt32(4 * i, true));
    case GGUFValueType.FLOAT32:
      return fill(new Float32Array(count), (i) => v.getFloat32(4 * i, true));
    case GGUFValueType.UINT64:
      return fill(new BigUint64Array(count), (i) => v.getBigUint64(8 * i, true));
    case GGUFValueType.INT64:
      return fill(new BigInt64Array(count), (i) => v.getBigInt64(8 * i, true));
    case GGUFValueType.FLOAT64:
      return fill(new Float64Array(count), (i) => v.getFloat64(8 * i, true));
    default:
      throw new GGUFError('unsupported-type', `value type ${elemType} is not numeric`);
  }
}

// ---------------------------------------------------------------------------------------------
// The file

export class GGUFFile {
  readonly version: number;
  readonly metadata: Map<string, GGUFValue>;
  readonly tensors: readonly GGUFTensorInfo[];
  readonly alignment: number;
  /** Absolute offset of the data section (a multiple of `alignment`). */
  readonly dataOffset: number;
  /** File size in bytes. */
  readonly size: number;
  /** Where the tensor data is read from. */
  readonly source: ByteSource;
  private readonly valueTypes: Map<string, string>;
  private readonly tensorsByName: Map<string, GGUFTensorInfo>;

  constructor(fields: {
    version: number;
    metadata: Map<string, GGUFValue>;
    valueTypes: Map<string, string>;
    tensors: GGUFTensorInfo[];
    alignment: number;
    dataOffset: number;
    source: ByteSource;
  }) {
    this.version = fields.version;
    this.metadata = fields.metadata;
    this.valueTypes = fields.valueTypes;
    this.tensors = fields.tensors;
    this.alignment = fields.alignment;
    this.dataOffset = fields.dataOffset;
    this.source = fields.source;
    this.size = fields.source.size;
    this.tensorsByName = new Map(fields.tensors.map((t) => [t.name, t]));
  }

  tensor(name: string): GGUFTensorInfo | undefined {
    return this.tensorsByName.get(name);
  }

  has(key: string): boolean {
    return this.metadata.has(key);
  }

  /** The stored type of a key: 'u32', 'f32', 'string', 'array<i32>', 'array<array>', … */
  typeOf(key: string): string | undefined {
    return this.valueTypes.get(key);
  }

  // Typed getters: get* returns undefined when the key is absent, require* throws missing-key.
  // Both throw invalid-value, naming the key and the stored type, when the value has another type.

  getString(key: string): string | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') this.wrongType(key, 'a string');
    return v;
  }
  requireString(key: string): string {
    return this.getString(key) ?? this.missing(key, 'a string');
  }

  /** Any numeric scalar (u8…f64); a u64/i64 beyond MAX_SAFE_INTEGER is invalid-value. */
  getNumber(key: string): number | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (typeof v === 'bigint') {
      throw new GGUFError('invalid-value', `metadata key '${key}' is ${this.typeOf(key)} ${v}, beyond the safe integer range`);
    }
    if (typeof v !== 'number') this.wrongType(key, 'a number');
    return v;
  }
  requireNumber(key: string): number {
    return this.getNumber(key) ?? this.missing(key, 'a number');
  }

  getBool(key: string): boolean | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') this.wrongType(key, 'a bool');
    return v;
  }
  requireBool(key: string): boolean {
    return this.getBool(key) ?? this.missing(key, 'a bool');
  }

  getStringArray(key: string): string[] | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) this.wrongType(key, 'an array of strings');
    return v as string[];
  }
  requireStringArray(key: string): string[] {
    return this.getStringArray(key) ?? this.missing(key, 'an array of strings');
  }

  /** A numeric array as stored; u64/i64 arrays become Float64Array when every value is a safe integer. */
  getNumberArray(key: string): GGUFNumberArray | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (v instanceof BigUint64Array || v instanceof BigInt64Array) {
      const out = new Float64Array(v.length);
      for (let i = 0; i < v.length; i++) {
        const x = v[i];
        if (x > MAX_SAFE_BIGINT || x < -MAX_SAFE_BIGINT) {
          throw new GGUFError('invalid-value', `metadata key '${key}' element ${i} is ${x}, beyond the safe integer range`);
        }
        out[i] = Number(x);
      }
      return out;
    }
    if (!ArrayBuffer.isView(v) || v instanceof DataView) this.wrongType(key, 'a numeric array');
    return v as GGUFNumberArray;
  }
  requireNumberArray(key: string): GGUFNumberArray {
    return this.getNumberArray(key) ?? this.missing(key, 'a numeric array');
  }

  private wrongType(key: string, expected: string): never {
    throw new GGUFError('invalid-value', `metadata key '${key}' is ${this.typeOf(key)}, expected ${expected}`);
  }
  private missing(key: string, expected: string): never {
    throw new GGUFError('missing-key', `metadata key '${key}' (${expected}) is missing`);
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing

export async function readGGUF(source: ByteSource, options: ReadGGUFOptions = {}): Promise<GGUFFile> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) throw new RangeError(`bad chunkSize ${chunkSize}`);
  const c = new Cursor(source, chunkSize);

  // Header. Check the magic on whatever is there, so a short non-GGUF file is bad-magic, not truncated.
  const head = Math.min(source.size, 24);
  await c.need(head);
  const magic = [0x47, 0x47, 0x55, 0x46];
  for (let i = 0; i < Math.min(head, 4); i++) {
    if (c.u8() !== magic[i]) {
      throw new GGUFError('bad-magic', 'not a GGUF file: it does not start with "GGUF"');
    }
  }
  await c.need(20);
  const version = c.u32();
  if (version !== 2 && version !== 3) {
    const swapped = ((version & 0xff) << 24) | ((version & 0xff00) << 8) | ((version >>> 8) & 0xff00) | (version >>> 24);
    const why =
      version === 1
        ? 'GGUF v1 (32-bit counts) is not supported'
        : swapped === 2 || swapped === 3
          ? `this looks like a big-endian GGUF v${swapped}, only little-endian files are supported`
          : `GGUF version ${version} is not supported (expected 2 or 3)`;
    throw new GGUFError('unsupported-version', why);
  }
  const tensorCount = c.u64Number('tensor count');
  const kvCount = c.u64Number('metadata count');
  if (kvCount > Math.floor(c.remaining() / MIN_KV_BYTES)) {
    c.truncated(`${kvCount} metadata entries need at least ${kvCount * MIN_KV_BYTES} bytes, but only ${c.remaining()} are left`);
  }
  if (tensorCount > Math.floor(c.remaining() / MIN_TENSOR_INFO_BYTES)) {
    c.truncated(`${tensorCount} tensor infos need at least ${tensorCount * MIN_TENSOR_INFO_BYTES} bytes, but only ${c.remaining()} are left`);
  }

  // Metadata.
  const metadata = new Map<string, GGUFValue>();
  const valueTypes = new Map<string, string>();
  for (let i = 0; i < kvCount; i++) {
    c.context = `metadata entry #${i}`;
    const key = await readString(c);
    c.context = `metadata key '${key}'`;
    if (metadata.has(key)) c.fail('duplicate-key', `duplicate metadata key '${key}'`);
    if (c.avail() < 4) await c.need(4);
    const type = c.u32();
    const [value, typeName] = await readValue(c, type);
    metadata.set(key, value);
    valueTypes.set(key, typeName);
  }

  const alignment = readAlignment(metadata, valueTypes);

  // Tensor infos.
  if (tensorCount > Math.floor(c.remaining() / MIN_TENSOR_INFO_BYTES)) {
    c.context = 'the tensor infos';
    c.truncated(`${tensorCount} tensor infos need at least ${tensorCount * MIN_TENSOR_INFO_BYTES} bytes, but only ${c.remaining()} are left`);
  }
  const infos: { name: string; dims: number[]; type: GGMLType; relOffset: number; byteSize: number; nElements: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    c.context = `tensor info #${i}`;
    const name = await readString(c);
    c.context = `tensor '${name}'`;
    if (names.has(name)) c.fail('duplicate-tensor', `duplicate tensor name '${name}'`);
    names.add(name);
    if (c.avail() < 4) await c.need(4);
    const nDims = c.u32();
    if (nDims < 1 || nDims > MAX_DIMS) c.fail('bad-tensor', `tensor '${name}' has ${nDims} dimensions, expected 1 to ${MAX_DIMS}`);
    if (c.avail() < 8 * nDims + 12) await c.need(8 * nDims + 12);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const ne = c.u64Number(`tensor '${name}' dimension ${d}`);
      if (ne < 1) c.fail('bad-tensor', `tensor '${name}' dimension ${d} is 0`);
      dims.push(ne);
    }
    const typeId = c.u32();
    if (!isGGMLType(typeId)) {
      c.fail('unsupported-type', `tensor '${name}' [${dims.join(',')}] has unknown ggml type id ${typeId}`);
    }
    const relOffset = c.u64Number(`tensor '${name}' offset`);
    const { nElements, byteSize } = tensorSize(c, name, dims, typeId);
    infos.push({ name, dims, type: typeId, relOffset, byteSize, nElements });
  }

  // Data section: aligned start, every tensor aligned, inside the file, and no two overlapping.
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const tensors: GGUFTensorInfo[] = infos.map((t) => {
    const label = `tensor '${t.name}' [${t.dims.join(',')}] ${GGML_TYPE_INFO[t.type].name}`;
    if (t.relOffset % alignment !== 0) {
      throw new GGUFError('bad-tensor', `${label}: offset ${t.relOffset} is not a multiple of the alignment ${alignment}`);
    }
    const offset = dataOffset + t.relOffset;
    const end = offset + t.byteSize;
    if (end > source.size) {
      throw new GGUFError('tensor-out-of-bounds', `${label}: data ends at byte ${end}, beyond the file size ${source.size}`);
    }
    return { name: t.name, dims: t.dims, type: t.type, offset, byteSize: t.byteSize, nElements: t.nElements };
  });
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1];
    const cur = byOffset[i];
    if (cur.offset < prev.offset + prev.byteSize) {
      throw new GGUFError(
        'tensor-overlap',
        `tensor '${cur.name}' (bytes ${cur.offset}..${cur.offset + cur.byteSize}) overlaps tensor '${prev.name}' (bytes ${prev.offset}..${prev.offset + prev.byteSize})`,
      );
    }
  }

  return new GGUFFile({ version, metadata, valueTypes, tensors, alignment, dataOffset, source });
}

function readAlignment(metadata: Map<string, GGUFValue>, valueTypes: Map<string, string>): number {
  const value = metadata.get('general.alignment');
  if (value === undefined) return DEFAULT_ALIGNMENT;
  const type = valueTypes.get('general.alignment');
  if (type !== 'u32') {
    throw new GGUFError('invalid-value', `metadata key 'general.alignment' is ${type}, expected u32`);
  }
  const a = value as number;
  if (a === 0 || (a & (a - 1)) !== 0) {
    throw new GGUFError('invalid-value', `metadata key 'general.alignment' is ${a}, not a power of two`);
  }
  return a;
}

/** Element count and byte size, with every product checked for overflow by division first. */
function tensorSize(c: Cursor, name: string, dims: number[], type: GGMLType): { nElements: number; byteSize: number } {
  const info = GGML_TYPE_INFO[type];
  const label = `tensor '${name}' [${dims.join(',')}] ${info.name}`;
  let nElements = 1;
  for (const d of dims) {
    if (nElements > Math.floor(Number.MAX_SAFE_INTEGER / d)) c.fail('limit-exceeded', `${label}: element count overflows 2^53`);
    nElements *= d;
  }
  if (dims[0] % info.blockSize !== 0) {
    c.fail('bad-tensor', `${label}: row length ${dims[0]} is not a multiple of the block size ${info.blockSize}`);
  }
  const blocks = nElements / info.blockSize;
  if (blocks > Math.floor(Number.MAX_SAFE_INTEGER / info.blockBytes)) c.fail('limit-exceeded', `${label}: byte size overflows 2^53`);
  return { nElements, byteSize: blocks * info.blockBytes };
}
