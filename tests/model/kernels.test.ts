// The wasm kernels (SIMD128 build, run in Node) against
//   - their scalar reference kernels (same quantized activations: only float
//     rounding may differ), and
//   - straightforward f64 TypeScript references written from the formats and
//     formulas (weights decoded by tests/fixtures/quantize.ts).
// Tolerances are named and derived next to each check. The relaxed build cannot
// run correctly in Node 20; tests/browser/kernels.test.ts runs it in Chromium.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKernels, type Kernels, MAX_MEMORY_BYTES, WeightType } from '../../src/model/kernels.ts';
import { expectedRelaxedProbe, findMemoryImport, withUnsharedMemory } from '../../src/model/kernel-loader.ts';
import { nodePlatform } from '../../src/model/kernel-platform-node.ts';
import { f16BitsToF32, f32ToF16Bits } from '../fixtures/quantize.ts';
import { attentionMismatch, type AttentionShape } from '../support/attention-reference.ts';
import { Rng } from '../fixtures/random.ts';
import { layoutTableProblems } from '../support/weight-layouts.ts';

const EPS32 = 2 ** -24;  // unit roundoff of float32

// ---------------------------------------------------------------------------
// helpers

function put(k: Kernels, data: Float32Array | Uint8Array | Int32Array | Uint16Array): number {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const ptr = k.alloc(bytes.length, 64);
  k.bytes().set(bytes, ptr);
  return ptr;
}

function readF32(k: Kernels, ptr: number, n: number): Float32Array {
  return k.f32().slice(ptr / 4, ptr / 4 + n);
}

const TYPE_INFO: Record<WeightType, { name: string; elems: number; bytes: number }> = {
  [WeightType.F32]: { name: 'F32', elems: 1, bytes: 4 },
  [WeightType.F16]: { name: 'F16', elems: 1, bytes: 2 },
  [WeightType.Q4_0]: { name: 'Q4_0', elems: 32, bytes: 18 },
  [WeightType.Q8_0]: { name: 'Q8_0', elems: 32, bytes: 34 },
  [WeightType.Q4_K]: { name: 'Q4_K', elems: 256, bytes: 144 },
  [WeightType.Q6_K]: { name: 'Q6_K', elems: 256, bytes: 210 },
  [WeightType.Q4_0x4]: { name: 'Q4_0x4', elems: 128, bytes: 72 },
  [WeightType.Q4_Kx]: { name: 'Q4_Kx', elems: 256, bytes: 144 },
  [WeightType.Q6_Kx]: { name: 'Q6_Kx', elems: 256, bytes: 210 },
};

/** Elements per activation quantization block (the activation format the kernels pick). */
function activationBlock(t: WeightType): number {
  return t === WeightType.Q4_K || t === WeightType.Q6_K ? 256 : t === WeightType.F32 || t === WeightType.F16 ? 0 : 32;
}

function writeU16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 255;
  b[o + 1] = v >>> 8;
}

/** Random raw blocks with sane scales. Quants take every value, extremes included
 * (Q8_0 -128, Q6_K scale -128, all nibbles); scales get both signs where the format allows. */
function randomWeights(type: WeightType, rows: number, cols: number, rng: Rng): Uint8Array {
  const info = TYPE_INFO[type];
  const out = new Uint8Array((rows * cols / info.elems) * info.bytes);
  if (type === WeightType.F32) {
    const f = new Float32Array(out.buffer);
    for (let i = 0; i < f.length; i++) f[i] = rng.nextGaussian() * 0.5;
    return out;
  }
  if (type === WeightType.F16) {
    for (let i = 0; i < rows * cols; i++) writeU16(out, 2 * i, f32ToF16Bits(rng.nextGaussian() * 0.5));
    return out;
  }
  rng.fillBytes(out);
  const sign = () => (rng.nextFloat() < 0.5 ? -1 : 1);
  const scale = (base: number) => base * (0.25 + rng.nextFloat());
  for (let o = 0; o < out.length; o += info.bytes) {
    switch (type) {
      case WeightType.Q4_0: writeU16(out, o, f32ToF16Bits(sign() * scale(0.05))); break;
      case WeightType.Q8_0: writeU16(out, o, f32ToF16Bits(sign() * scale(0.004))); break;
      case WeightType.Q4_K:
        writeU16(out, o, f32ToF16Bits(scale(0.003)));
        writeU16(out, o + 2, f32ToF16Bits(scale(0.01)));
        break;
      case WeightType.Q6_K: writeU16(out, o + 208, f32ToF16Bits(sign() * scale(0.0005))); break;
    }
  }
  return out;
}

/** Per element: the largest magnitude of the parts that make up the weight (|d*sc*q| + |dmin*m|
 * for Q4_K, |w| otherwise): float rounding in the kernels scales with these, not with |w|. */
function weightMagnitudes(type: WeightType, raw: Uint8Array, rows: number, cols: number, w: Float64Array): Float64Array {
  const mag = Float64Array.from(w, Math.abs);
  if (type !== WeightType.Q4_K) return mag;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < cols / 256; b++) {
      const o = (r * cols / 256 + b) * 144;
      const dmin = Math.abs(f16BitsToF32(raw[o + 2]! | (raw[o + 3]! << 8)));
      for (let j = 0; j < 8; j++) {
        const m = q4KScaleMin(raw, o + 4, j)[1];
        for (let i = 0; i < 32; i++) mag[r * cols + b * 256 + j * 32 + i]! += 2 * dmin * m;
      }
    }
  }
  return mag;
}

// ---------------------------------------------------------------------------
// From-spec decoders (ggml-common.h block layouts), in f64, independent of the C code.

function half(b: Uint8Array, o: number): number {
  return f16BitsToF32(b[o]! | (b[o + 1]! << 8));
}

/** Q4_K's 6-bit scale and min of sub-block j from the 12 bytes at s[o]. */
function q4KScaleMin(s: Uint8Array, o: number, j: number): [scale: number, min: number] {
  if (j < 4) return [s[o + j]! & 63, s[o + j + 4]! & 63];
  return [(s[o + j + 4]! & 15) | ((s[o + j - 4]! >> 6) << 4), (s[o + j + 4]! >> 4) | ((s[o + j]! >> 6) << 4)];
}

function dequantizeBlock(type: WeightType, b: Uint8Array, o: number, y: Float64Array, t: number): void {
  switch (type) {
    case WeightType.Q4_0: {
      const d = half(b, o);
      for (let j = 0; j < 16; j++) {
        y[t + j] = d * ((b[o + 2 + j]! & 15) - 8);
        y[t + j + 16] = d * ((b[o + 2 + j]! >> 4) - 8);
      }
      return;
    }
    case WeightType.Q8_0: {
      const d = half(b, o);
      for (let j = 0; j < 32; j++) y[t + j] = d * ((b[o + 2 + j]! << 24) >> 24);
      return;
    }
    case WeightType.Q4_K: {
      const d = half(b, o), dmin = half(b, o + 2);
      for (let i = 0; i < 256; i++) {
        const j = i >> 5;                       // sub-block
        const byte = b[o + 16 + 32 * (j >> 1) + (i & 31)]!;
        const q = j & 1 ? byte >> 4 : byte & 15; // odd sub-blocks are the high nibbles
        const [sc, m] = q4KScaleMin(b, o + 4, j);
        y[t + i] = d * sc * q - dmin * m;
      }
      return;
    }
    case WeightType.Q6_K: {
      const d = half(b, o + 208);
      for (let i = 0; i < 256; i++) {
        const h = i >> 7, k = (i >> 5) & 3, l = i & 31;   // half, group of 32, index
        const qlByte = b[o + 64 * h + 32 * (k & 1) + l]!;
        const low = k >= 2 ? qlByte >> 4 : qlByte & 15;
        const high = (b[o + 128 + 32 * h + l]! >> (2 * k)) & 3;
        const scale = (b[o + 192 + (i >> 4)]! << 24) >> 24;
        y[t + i] = d * scale * ((low | (high << 4)) - 32);
      }
      return;
    }
  }
}

function dequantizeWeights(type: WeightType, raw: Uint8Array, rows: number, cols: number): Float64Array {
  const y = new Float64Array(rows * cols);
  if (type === WeightType.F32) {
    y.set(new Float32Array(raw.buffer, raw.byteOffset, rows * cols));
    return y;
  }
  if (type === WeightType.F16) {
    for (let i = 0; i < rows * cols; i++) y[i] = half(raw, 2 * i);
    return y;
  }
  const info = TYPE_INFO[type];
  for (let b = 0; b < (rows * cols) / info.elems; b++) dequantizeBlock(type, raw, b * info.bytes, y, b * info.elems);
  return y;
}

/** Activations whose 8-bit quantization is exact: per quantization block, integers in
 * [-127, 127] (one of them +-127) times a power of two, so d = max/127 is that power of two. */
function exactlyQuantizableActivations(n: number, block: number, rng: Rng): Float32Array {
  const x = new Float32Array(n);
  for (let b = 0; b < n / block; b++) {
    const d = 2 ** (rng.nextInt(12) - 10);
    for (let i = 0; i < block; i++) x[b * block + i] = (rng.nextInt(255) - 127) * d;
    x[b * block + rng.nextInt(block)] = (rng.nextFloat() < 0.5 ? -127 : 127) * d;
  }
  return x;
}

/** Gaussian activations with some blocks zero, tiny or huge (scale extremes). */
function randomActivations(n: number, rng: Rng): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.nextGaussian();
  for (let b = 0; b + 32 <= n; b += 32) {
    const pick = rng.nextInt(10);
    const factor = pick === 0 ? 0 : pick === 1 ? 1e-6 : pick === 2 ? 1e4 : 1;
    for (let i = 0; i < 32; i++) x[b + i] *= factor;
  }
  return x;
}

/** What the dot products multiply: F16 weights see activations rounded to f16, as in llama.cpp
 * (it converts activations to f16 for f16 weights); other types see the activations as given. */
function activationsSeenBy(type: WeightType, x: Float32Array): Float32Array {
  return type === WeightType.F16 ? x.map((v) => f16BitsToF32(f32ToF16Bits(v))) : x;
}

interface MatmulCase {
  type: WeightType;
  rows: number;
  cols: number;
  nTokens: number;
}

// ---------------------------------------------------------------------------

let k2: Kernels;  // 2 threads
let k1: Kernels;  // 1 thread

beforeAll(async () => {
  k2 = await createKernels({ threads: 2, build: 'simd128' });
  k1 = await createKernels({ threads: 1, build: 'simd128' });
});

afterAll(() => {
  k2?.dispose();
  k1?.dispose();
});

describe('kernel module', () => {
  it("reads its weight layouts from the module's table, which agrees with GGUF's block sizes", () => {
    expect(layoutTableProblems(k1.weightLayouts)).toEqual([]);
    expect(k1.weightLayouts.get(WeightType.Q4_0)?.packedType).toBe(WeightType.Q4_0x4);
    expect(k1.weightLayouts.get(WeightType.Q4_K)?.packedType).toBe(WeightType.Q4_Kx);
    expect(k1.weightLayouts.has(WeightType.Q6_Kx)).toBe(false);  // the relaxed build's
    expect(() => k1.rowBytes(WeightType.Q6_Kx, 256)).toThrow(/Q6_Kx is not one the simd128 kernels read/);
  });

  it('imports a shared 4 GiB-max memory and can be rewritten to a non-shared one', async () => {
    const bytes = await nodePlatform.wasmBytes('simd128');
    const imp = findMemoryImport(bytes);
    expect(imp.shared).toBe(true);
    expect(imp.minPages).toBeGreaterThan(0);
    const unshared = withUnsharedMemory(bytes);
    expect(findMemoryImport(unshared).shared).toBe(false);
    expect(bytes[imp.flagOffset]).toBe(0x03);  // the original is untouched
  });

  it('picks SIMD128 in Node 20 (relaxed SIMD is missing or computes wrongly there)', async () => {
    const auto = await createKernels({ threads: 1 });
    try {
      if (auto.build === 'relaxed') {
        // An engine whose relaxed dot passed the probe: it must then agree with the reference.
        const rng = new Rng(7);
        const raw = randomWeights(WeightType.Q4_K, 8, 256, rng);
        const x = randomActivations(256, rng);
        const w = put(auto, raw), src = put(auto, x), a = auto.alloc(32), b = auto.alloc(32);
        auto.matmul(a, w, WeightType.Q4_K, 8, 256, src, 1);
        auto.matmulRef(b, w, WeightType.Q4_K, 8, 256, src, 1);
        const got = readF32(auto, a, 8), ref = readF32(auto, b, 8);
        for (let i = 0; i < 8; i++) expect(Math.abs(got[i]! - ref[i]!)).toBeLessThanOrEqual(1e-4 * Math.abs(ref[i]!) + 1e-6);
      } else {
        expect(auto.build).toBe('simd128');
      }
    } finally {
      auto.dispose();
    }
  });

  it("build: 'relaxed' either passes the probe or fails with the reason", async () => {
    try {
      const relaxed = await createKernels({ threads: 1, build: 'relaxed' });
      expect(relaxed.build).toBe('relaxed');
      relaxed.dispose();
    } catch (e) {
      expect(String(e)).toMatch(/relaxed.*(does not compile|computes wrong|no relaxed_probe)/);
    }
  });

  it('refuses a build name it does not know instead of treating it as auto', async () => {
    await expect(createKernels({ threads: 1, build: 'simd256' as 'auto' })).rejects.toThrow(/unknown kernel build "simd256": use 'auto', 'simd128' or 'relaxed'/);
  });

  it('computes the relaxed probe answer from the spec', () => {
    // seed 0: a[i] = 13i - 100 (int8), b[i] = 37i mod 128, acc = [1000, -2000, 3000, 0];
    // checksum = sum_k (2k+1) * (acc[k] + sum_{i in 4k..4k+3} a[i] b[i])   (i32x4 dot)
    //          + sum_k (2k+9) * sum_{i in 2k, 2k+1} a[i] b[i]                 (i16x8 dot)
    const a = (i: number) => (((13 * i - 100) % 256) + 256 + 128) % 256 - 128;
    const b = (i: number) => (37 * i) % 128;
    let want = 1000 - 3 * 2000 + 5 * 3000;
    for (let i = 0; i < 16; i++) want += (2 * (i >> 2) + 1) * a(i) * b(i) + (2 * (i >> 1) + 9) * a(i) * b(i);
    expect(expectedRelaxedProbe(0)).toBe(want);
  });

  it('runs single-threaded on a non-shared memory (pages without cross-origin isolation)', async () => {
    const k = await createKernels({ threads: 4 }, { ...nodePlatform, sharedMemory: false });
    try {
      expect(k.threads).toBe(1);
      expect(k.memory.buffer instanceof SharedArrayBuffer).toBe(false);
      const rng = new Rng(11);
      const raw = randomWeights(WeightType.Q4_0, 5, 64, rng);
      const x = randomActivations(64 * 2, rng);
      const w = put(k, raw), src = put(k, x), dst = k.alloc(40);
      k.matmul(dst, w, WeightType.Q4_0, 5, 64, src, 2);
      const wk = put(k2, raw), srck = put(k2, x), dstk = k2.alloc(40);
      k2.matmul(dstk, wk, WeightType.Q4_0, 5, 64, srck, 2);
      expect(readF32(k, dst, 10)).toEqual(readF32(k2, dstk, 10));
    } finally {
      k.dispose();
    }
  });
});

describe('lifecycle', () => {
  it('uses one thread where the caller may not block (a page main thread)', async () => {
    const k = await createKernels({ threads: 4 }, { ...nodePlatform, canBlock: false });
    try {
      expect(k.threads).toBe(1);
    } finally {
      k.dispose();
    }
  });

  // More threads than this machine has cores: workers are often late for a job or preempted
  // in it, so jobs complete both with and without them (the pool's roster). Thousands of
  // back-to-back jobs, each checked, catch a job rewritten while a worker still runs it.
  it('gives every job of a long run of small jobs the single-thread result with 3 threads', async () => {
    const k3 = await createKernels({ threads: 3, build: 'simd128' });
    try {
      const c = { type: WeightType.Q4_0, rows: 320, cols: 4096, nTokens: 1 };
      const rng = new Rng(77);
      const raw = randomWeights(c.type, c.rows, c.cols, rng);
      const inputs = [randomActivations(c.cols, rng), randomActivations(c.cols, rng)];
      const want = inputs.map((x) => runMatmul(k1, c, raw, x));
      const w = put(k3, raw), src = inputs.map((x) => put(k3, x)), dst = k3.alloc(c.rows * 4);
      k3.poolStats();
      for (let i = 0; i < 3000; i++) {
        k3.f32().fill(Number.NaN, dst / 4, dst / 4 + c.rows);
        k3.matmul(dst, w, c.type, c.rows, c.cols, src[i % 2]!, 1);
        const got = readF32(k3, dst, c.rows);
        if (!got.every((v, r) => v === want[i % 2]![r])) throw new Error(`job ${i}: result differs from one thread's`);
      }
      // the workers did take part (items run by threads 1 and 2)
      expect(k3.poolStats().slice(1).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    } finally {
      k3.dispose();
    }
  });

  it('stops its pool threads on dispose and refuses further calls', async () => {
    const k = await createKernels({ threads: 3 });
    expect(k.threads).toBe(3);
    const a = k.alloc(16);
    k.add(a, a, 4);
    k.dispose();
    expect(() => k.add(a, a, 4)).toThrow(/after dispose/);
    k.dispose();  // twice is harmless
  });
});

describe('alloc and views', () => {
  it('aligns, grows the memory and keeps views valid after growth', () => {
    const a = k1.alloc(3, 1);
    const b = k1.alloc(10, 256);
    expect(b % 256).toBe(0);
    expect(b).toBeGreaterThanOrEqual(a + 3);
    const before = k1.memory.buffer.byteLength;
    const big = k1.alloc(before + 65536 * 3);
    expect(k1.memory.buffer.byteLength).toBeGreaterThanOrEqual(big + before + 65536 * 3);
    const f = k1.f32();
    expect(f.length * 4).toBe(k1.memory.buffer.byteLength);
    f[(big + before) / 4] = 42;  // inside the new pages
    expect(k1.bytes().length).toBe(k1.memory.buffer.byteLength);
  });

  it('throws a clear error past 4 GiB, naming the sizes', () => {
    const top = k1.allocatedBytes;
    expect(() => k1.alloc(MAX_MEMORY_BYTES)).toThrow(/4 GiB.*4294967296 bytes.*already allocated/);
    expect(() => k1.alloc(MAX_MEMORY_BYTES - top + 1, 1)).toThrow(RangeError);
    expect(k1.allocatedBytes).toBe(top);  // nothing was taken
  });

  it('rejects bad arguments with named errors', () => {
    expect(() => k1.alloc(-1)).toThrow(/non-negative/);
    expect(() => k1.alloc(8, 3)).toThrow(/power of two/);
    expect(() => k1.rowBytes(WeightType.Q4_K, 100)).toThrow(/Q4_K.*256/);
    expect(() => k1.rowBytes(3 as WeightType, 32)).toThrow(/weight type 3 is not one the simd128 kernels read/);
    expect(() => k1.matmul(0, k1.memory.buffer.byteLength - 4, WeightType.F32, 4, 4, 0, 1)).toThrow(/outside/);
  });
});

// ---------------------------------------------------------------------------
// matmul

const TYPES: WeightType[] = [WeightType.F32, WeightType.F16, WeightType.Q4_0, WeightType.Q8_0, WeightType.Q4_K, WeightType.Q6_K];

function colsFor(type: WeightType): number[] {
  switch (type) {
    case WeightType.F32: return [37];             // not a multiple of 4: scalar tail
    case WeightType.F16: return [45];             // not a multiple of 8
    case WeightType.Q4_0: return [160, 384];  // 384: whole groups of 4 blocks, repacked into Q4_0x4
    case WeightType.Q8_0: return [160];
    default: return [512];
  }
}

const CASES: MatmulCase[] = [];
for (const type of TYPES) {
  for (const cols of colsFor(type)) {
    // rows: not multiples of the thread count or of the 32 / 16 row chunks;
    // tokens: decode, a partial tile, tiles plus a remainder, and past one 64-token chunk
    for (const [rows, nTokens] of [[37, 1], [67, 3], [37, 17], [19, 70]] as const) CASES.push({ type, rows, cols, nTokens });
  }
}

/**
 * 'simd': the GGUF layout; 'repacked': after `repack` (this SIMD128 build turns Q4_K into Q4_Kx,
 * and Q4_0 into Q4_0x4 where rows hold whole groups of 4 blocks).
 */
type Layout = 'simd' | 'repacked';
const layoutsOf = (type: WeightType): Layout[] =>
  type === WeightType.Q4_K || type === WeightType.Q4_0 ? ['simd', 'repacked'] : ['simd'];

function runMatmul(k: Kernels, c: MatmulCase, raw: Uint8Array, x: Float32Array, how: Layout | 'ref' = 'simd'): Float32Array {
  const w = put(k, raw), src = put(k, x), dst = k.alloc(c.rows * c.nTokens * 4);
  if (how === 'ref') k.matmulRef(dst, w, c.type, c.rows, c.cols, src, c.nTokens);
  else k.matmul(dst, w, how === 'repacked' ? k.repack(w, c.type, c.rows, c.cols) : c.type, c.rows, c.cols, src, c.nTokens);
  return readF32(k, dst, c.rows * c.nTokens);
}

describe('a few tokens in one call (a speculative draft verified at once)', () => {
  // Up to 8 tokens, each token gets the bits it gets alone: decoding a draft's tokens in one call
  // gives the logits of decoding them one by one, so speculative decoding changes no answer.
  const types = [WeightType.F32, WeightType.F16, WeightType.Q4_0, WeightType.Q8_0, WeightType.Q4_K, WeightType.Q6_K];
  it.each(types.flatMap((type) => [2, 3, 5, 8].map((nTokens) => ({ type, nTokens }))))('$type x $nTokens tokens', ({ type, nTokens }) => {
    const rng = new Rng(900 + type * 10 + nTokens);
    const cols = type === WeightType.Q4_K || type === WeightType.Q6_K ? 512 : 256;
    const c = { type, rows: 37, cols, nTokens };
    const raw = randomWeights(type, c.rows, cols, rng);
    const x = new Float32Array(cols * nTokens).map(() => rng.nextGaussian());
    const layouts: Layout[] = type === WeightType.Q4_0 || type === WeightType.Q6_K ? ['simd', 'repacked'] : ['simd'];
    for (const layout of layouts) {
      const together = runMatmul(k2, c, raw, x, layout);
      for (let t = 0; t < nTokens; t++) {
        const alone = runMatmul(k2, { ...c, nTokens: 1 }, raw, x.subarray(t * cols, (t + 1) * cols), layout);
        expect(together.subarray(t * c.rows, (t + 1) * c.rows), `${layout} token ${t}`).toEqual(alone);
      }
    }
  });
});

describe.each(CASES)('matmul $type rows=$rows cols=$cols nTokens=$nTokens', (c) => {
  const name = TYPE_INFO[c.type].name;
  const block = activationBlock(c.type);
  // Float rounding of a dot product accumulated over the blocks: each per-block term
  // and each of the ~(blocks/4 + lanes) additions adds at most one unit roundoff of the
  // running magnitude; bound it by (blocks + 8) * eps * sum |w_i x_i| and allow twice that
  // (kernel and reference each contribute).
  const blocks = block ? c.cols / TYPE_INFO[c.type].elems : c.cols;
  const ACCUMULATION = 2 * (blocks + 8) * EPS32;

  it(`${name}: SIMD equals the f64 dequantize-then-dot when activations quantize exactly`, () => {
    const rng = new Rng(1000 + c.type * 31 + c.rows + c.nTokens);
    const raw = randomWeights(c.type, c.rows, c.cols, rng);
    const x = block ? exactlyQuantizableActivations(c.cols * c.nTokens, block, rng) : randomActivations(c.cols * c.nTokens, rng);
    const xSeen = activationsSeenBy(c.type, x);
    const w = dequantizeWeights(c.type, raw, c.rows, c.cols);
    const mag = weightMagnitudes(c.type, raw, c.rows, c.cols, w);
    for (const how of layoutsOf(c.type)) {
      const got = runMatmul(k2, c, raw, x, how);
      for (let t = 0; t < c.nTokens; t++) {
        for (let r = 0; r < c.rows; r++) {
          let want = 0, size = 0;
          for (let i = 0; i < c.cols; i++) {
            want += w[r * c.cols + i]! * xSeen[t * c.cols + i]!;
            size += mag[r * c.cols + i]! * Math.abs(xSeen[t * c.cols + i]!);
          }
          const err = Math.abs(got[t * c.rows + r]! - want);
          if (!(err <= ACCUMULATION * size + 1e-30)) {
            throw new Error(`${how} token ${t} row ${r}: got ${got[t * c.rows + r]}, want ${want} (error ${err}, allowed ${ACCUMULATION * size})`);
          }
        }
      }
    }
  });

  it(`${name}: SIMD vs scalar reference vs f64 on random activations`, () => {
    const rng = new Rng(2000 + c.type * 31 + c.rows + c.nTokens);
    const raw = randomWeights(c.type, c.rows, c.cols, rng);
    const x = randomActivations(c.cols * c.nTokens, rng);
    const xSeen = activationsSeenBy(c.type, x);
    const w = dequantizeWeights(c.type, raw, c.rows, c.cols);
    const mag = weightMagnitudes(c.type, raw, c.rows, c.cols, w);
    const ref = runMatmul(k2, c, raw, x, 'ref');
    for (const how of layoutsOf(c.type)) {
    const got = runMatmul(k2, c, raw, x, how);
    for (let t = 0; t < c.nTokens; t++) {
      // amax of each activation's quantization block: round(x/d) is off by at most
      // d/2 = amax/254 (plus a few units of roundoff in x/d, hence 1.001).
      const halfStep = new Float64Array(c.cols);
      if (block) {
        for (let b = 0; b < c.cols; b += block) {
          let amax = 0;
          for (let i = 0; i < block; i++) amax = Math.max(amax, Math.abs(x[t * c.cols + b + i]!));
          // blocks of 32 store their scale in f16 (as llama.cpp's Q8_0): off by <= 2^-11 * d per unit of |q| <= 127
          halfStep.fill((amax / 254) * 1.001 + (block === 32 ? amax * 2 ** -11 : 0), b, b + block);
        }
      }
      for (let r = 0; r < c.rows; r++) {
        let want = 0, size = 0, quantization = 0;
        for (let i = 0; i < c.cols; i++) {
          const xi = xSeen[t * c.cols + i]!;
          want += w[r * c.cols + i]! * xi;
          size += mag[r * c.cols + i]! * (Math.abs(xi) + halfStep[i]!);
          quantization += Math.abs(w[r * c.cols + i]!) * halfStep[i]!;
        }
        const g = got[t * c.rows + r]!, rf = ref[t * c.rows + r]!;
        // same integers on both sides: only accumulation rounding differs
        const simdVsRef = Math.abs(g - rf);
        if (!(simdVsRef <= ACCUMULATION * size + 1e-30)) {
          throw new Error(`${how} token ${t} row ${r}: SIMD ${g} vs reference ${rf} (allowed ${ACCUMULATION * size})`);
        }
        // worst case of activation quantization error, plus accumulation
        const vsF64 = Math.abs(g - want);
        if (!(vsF64 <= quantization + ACCUMULATION * size + 1e-30)) {
          throw new Error(`${how} token ${t} row ${r}: SIMD ${g} vs f64 ${want} (allowed ${quantization + ACCUMULATION * size})`);
        }
      }
    }
    }
  });

  it(`${name}: 1 and 2 threads give identical bits`, () => {
    const rng = new Rng(3000 + c.type * 31 + c.rows + c.nTokens);
    const raw = randomWeights(c.type, c.rows, c.cols, rng);
    const x = randomActivations(c.cols * c.nTokens, rng);
    for (const how of layoutsOf(c.type)) expect(runMatmul(k1, c, raw, x, how), how).toEqual(runMatmul(k2, c, raw, x, how));
  });
});

// One input against several matrices as one job: each product must be exactly what its own
// matmul gives, whether the matrices share an activation format (quantized once) or not
// (run one by one), for decode and for prefill, on 1 and 2 threads.
describe('matmulMulti', () => {
  const SETS: { name: string; types: WeightType[]; rows: number[] }[] = [
    { name: 'Q4_0 x3 (Q, K, V)', types: [WeightType.Q4_0, WeightType.Q4_0, WeightType.Q4_0], rows: [96, 32, 40] },
    { name: 'Q4_K + Q6_K', types: [WeightType.Q4_K, WeightType.Q6_K], rows: [70, 33] },
    { name: 'Q4_0 + Q8_0 + F32 + Q4_K (mixed formats)', types: [WeightType.Q4_0, WeightType.Q8_0, WeightType.F32, WeightType.Q4_K], rows: [17, 48, 5, 64] },
  ];
  const cols = 512;
  describe.each(SETS)('$name', ({ types, rows }) => {
    it.each([1, 3, 13, 70])('%i token(s): each product equals its own matmul, on 1 and 2 threads', (nTokens) => {
      const rng = new Rng(nTokens * 7 + types.length);
      const raws = types.map((type, i) => randomWeights(type, rows[i]!, cols, rng));
      const x = randomActivations(cols * nTokens, rng);
      for (const k of [k1, k2]) {
        const src = put(k, x);
        const targets = types.map((type, i) => ({ dst: k.alloc(rows[i]! * nTokens * 4), w: put(k, raws[i]!), type, rows: rows[i]! }));
        for (const t of targets) k.f32().fill(Number.NaN, t.dst / 4, t.dst / 4 + t.rows * nTokens);
        k.matmulMulti(targets, cols, src, nTokens);
        targets.forEach((t, i) => {
          const c = { type: t.type, rows: t.rows, cols, nTokens };
          expect(readF32(k, t.dst, t.rows * nTokens)).toEqual(runMatmul(k1, c, raws[i]!, x));
        });
      }
    });
  });

  it('refuses no matrices, more than 4, and a width that is not a whole number of blocks', () => {
    const src = k1.alloc(256 * 4), w = k1.alloc(256 * 8), dst = k1.alloc(256 * 4);
    const t = { dst, w, type: WeightType.Q4_0, rows: 1 };
    expect(() => k1.matmulMulti([], 256, src)).toThrow(RangeError);
    expect(() => k1.matmulMulti([t, t, t, t, t], 256, src)).toThrow(RangeError);
    expect(() => k1.matmulMulti([t], 100, src)).toThrow(RangeError);
  });
});

// Largest integer products each format allows (all quants and scales at their extremes,
// activations at +-127 of one sign per row): the SIMD kernels' integer intermediates
// (int16 scaled weights, i32 sums) must not overflow. Tokens: one full tile plus a remainder.
describe('matmul at the integer extremes', () => {
  function extremeWeights(type: WeightType, rows: number, cols: number): Uint8Array {
    const info = TYPE_INFO[type];
    const raw = new Uint8Array((rows * cols / info.elems) * info.bytes);
    for (let o = 0; o < raw.length; o += info.bytes) {
      switch (type) {
        case WeightType.Q4_0: raw.fill(0x00, o + 2, o + 18); writeU16(raw, o, f32ToF16Bits(2 ** -6)); break;  // q - 8 = -8
        case WeightType.Q8_0: raw.fill(0x80, o + 2, o + 34); writeU16(raw, o, f32ToF16Bits(2 ** -6)); break;  // -128
        case WeightType.Q4_K:  // nibbles 15, scales and mins 63
          raw.fill(0xff, o + 4, o + 144);
          writeU16(raw, o, f32ToF16Bits(2 ** -10)); writeU16(raw, o + 2, f32ToF16Bits(2 ** -12));
          break;
        default:  // Q6_K: q = 63 (63 - 32 = 31) or 0 (-32), scales -128 / 127
          raw.fill(0xff, o, o + 192);
          for (let j = 0; j < 16; j++) raw[o + 192 + j] = j % 3 === 0 ? 127 : 0x80;
          raw.fill(0x00, o + 64, o + 128);
          writeU16(raw, o + 208, f32ToF16Bits(2 ** -10));
      }
    }
    return raw;
  }
  for (const type of [WeightType.Q4_0, WeightType.Q8_0, WeightType.Q4_K, WeightType.Q6_K]) {
    it(`${TYPE_INFO[type].name}: SIMD vs scalar reference`, () => {
      const c: MatmulCase = { type, rows: 5, cols: 512, nTokens: 6 };
      const raw = extremeWeights(type, c.rows, c.cols);
      const x = new Float32Array(c.cols * c.nTokens).map((_, i) => (Math.floor(i / c.cols) % 2 ? -1 : 1) * (i % 7 === 0 ? 3 : 3 - 3 / 255));
      const ref = runMatmul(k2, c, raw, x, 'ref');
      const w = dequantizeWeights(type, raw, c.rows, c.cols);
      const blocks = c.cols / TYPE_INFO[type].elems;
      for (const how of layoutsOf(type)) {
        const got = runMatmul(k2, c, raw, x, how);
        for (let t = 0; t < c.nTokens; t++) {
          for (let r = 0; r < c.rows; r++) {
            let size = 0;
            for (let i = 0; i < c.cols; i++) size += Math.abs(w[r * c.cols + i]! * x[t * c.cols + i]!);
            const g = got[t * c.rows + r]!, rf = ref[t * c.rows + r]!;
            expect(Math.abs(rf)).toBeGreaterThan(0.05 * size);  // the products do not cancel
            if (!(Math.abs(g - rf) <= 2 * (blocks + 8) * EPS32 * size)) throw new Error(`${how} token ${t} row ${r}: SIMD ${g} vs reference ${rf}`);
          }
        }
      }
    });
  }
});

describe('getRow', () => {
  it.each(TYPES)('type %i dequantizes rows like the from-spec decoder', (type) => {
    const cols = type === WeightType.Q4_K || type === WeightType.Q6_K ? 512 : type === WeightType.Q4_0 ? 256 : type <= 1 ? 40 : 96;
    const rows = 5;
    const raw = randomWeights(type, rows, cols, new Rng(40 + type));
    const want = dequantizeWeights(type, raw, rows, cols);
    const mag = weightMagnitudes(type, raw, rows, cols, want);
    for (const how of layoutsOf(type)) {
      const w = put(k1, raw), dst = k1.alloc(cols * 4);
      const wtype = how === 'repacked' ? k1.repack(w, type, rows, cols) : type;
      for (const row of [0, 3, 4]) {
        k1.getRow(dst, w, wtype, cols, row);
        const got = readF32(k1, dst, cols);
        for (let i = 0; i < cols; i++) {
          // a float product of at most three factors and one subtraction (Q4_K): four
          // roundings relative to the parts' magnitude
          const e = row * cols + i;
          expect(Math.abs(got[i]! - want[e]!)).toBeLessThanOrEqual(4 * EPS32 * mag[e]!);
        }
      }
    }
  });
});

describe('repack', () => {
  it('turns Q4_K into Q4_Kx and Q4_0 into Q4_0x4 on the SIMD128 build and keeps the other layouts (no Q6_Kx kernel here)', () => {
    const packed: Partial<Record<WeightType, WeightType>> = { [WeightType.Q4_K]: WeightType.Q4_Kx, [WeightType.Q4_0]: WeightType.Q4_0x4 };
    for (const type of TYPES) {
      const raw = randomWeights(type, 3, 256, new Rng(77));
      const w = put(k1, raw);
      expect(k1.repack(w, type, 3, 256), TYPE_INFO[type].name).toBe(packed[type] ?? type);
      if (packed[type] === undefined) expect(k1.bytes().slice(w, w + raw.length)).toEqual(raw);
      else expect(k1.bytes().slice(w, w + raw.length)).not.toEqual(raw);
    }
    const raw = randomWeights(WeightType.Q4_0, 3, 256, new Rng(77));
    // Q4_0 stays as it is where a row is not whole groups of 4 blocks or a scale is not finite
    const short = put(k1, raw.subarray(0, 3 * 5 * 18));
    expect(k1.repack(short, WeightType.Q4_0, 3, 160)).toBe(WeightType.Q4_0);
    const infinite = raw.slice();
    writeU16(infinite, 18 * 7, 0x7c00);
    const wInf = put(k1, infinite);
    expect(k1.repack(wInf, WeightType.Q4_0, 3, 256)).toBe(WeightType.Q4_0);
    expect(k1.bytes().slice(wInf, wInf + infinite.length)).toEqual(infinite);
    // ...wherever the scale lies: a NaN in row 130 of 200 (the rows are checked in pieces of 64)
    const tall = randomWeights(WeightType.Q4_0, 200, 256, new Rng(78));
    writeU16(tall, 18 * (8 * 130 + 5), 0x7e00);
    const wTall = put(k1, tall);
    expect(k1.repack(wTall, WeightType.Q4_0, 200, 256)).toBe(WeightType.Q4_0);
    expect(k1.bytes().slice(wTall, wTall + tall.length)).toEqual(tall);
    const w = put(k1, raw);
    const src = k1.alloc(256 * 4), dst = k1.alloc(3 * 4);
    expect(() => k1.matmul(dst, w, WeightType.Q6_Kx, 3, 256, src)).toThrow(/Q6_Kx is not one the simd128 kernels read/);
    expect(() => k1.repack(w, WeightType.Q4_0, 3, 100)).toThrow(/multiple of 32/);
    expect(() => k1.matmulRef(dst, w, WeightType.Q4_Kx, 1, 256, src)).toThrow(/matmul_ref rejected/);
    expect(() => k1.matmulRef(dst, w, WeightType.Q4_0x4, 1, 256, src)).toThrow(/matmul_ref rejected/);
  });
});

// ---------------------------------------------------------------------------
// element-wise kernels

function ulpDistance(a: number, b: number): number {
  const buf = new Float32Array([a, b]);
  const i = new Int32Array(buf.buffer);
  const ia = i[0]! < 0 ? 0x80000000 - i[0]! : i[0]!;
  const ib = i[1]! < 0 ? 0x80000000 - i[1]! : i[1]!;
  return Math.abs(ia - ib);
}

describe('expf', () => {
  it('is within 1 ulp of exp over the float range, and the SIMD version matches bit for bit', () => {
    const rng = new Rng(5);
    const xs = new Float32Array(20000);
    for (let i = 0; i < xs.length; i++) xs[i] = -104 + rng.nextFloat() * 193;
    xs.set([0, -0, 1, -1, 1e-8, -1e-8, 88.72283172607422, 88.72283935546875, -87.33654, -103.97207, -103.9721, 0.5, 20, -20], 0);
    const src = put(k1, xs), dst = k1.alloc(xs.length * 4);
    k1.expfVec(dst, src, xs.length);
    const vec = readF32(k1, dst, xs.length);
    let worst = 0;
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!;
      const got = k1.expf(x);
      expect(Object.is(vec[i], got) || vec[i] === got).toBe(true);
      const want = Math.fround(Math.exp(x));
      // subnormal results carry fewer bits: compare them in absolute terms (half a subnormal step)
      if (Math.exp(x) < 2 ** -126) expect(Math.abs(got - Math.exp(x))).toBeLessThanOrEqual(2 ** -149);
      else worst = Math.max(worst, ulpDistance(got, want));
    }
    expect(worst).toBeLessThanOrEqual(1);
    expect(k1.expf(89)).toBe(Infinity);
    expect(k1.expf(-105)).toBe(0);
    expect(k1.expf(Number.NEGATIVE_INFINITY)).toBe(0);
    expect(k1.expf(Number.POSITIVE_INFINITY)).toBe(Infinity);
    expect(k1.expf(NaN)).toBeNaN();
  });
});

describe('rmsnorm', () => {
  it.each([[128, 12], [100, 3], [2560, 2]])('n=%i rows=%i matches the f64 formula (in place too)', (n, nRows) => {
    const rng = new Rng(n + nRows);
    const x = new Float32Array(n * nRows).map(() => rng.nextGaussian() * 3);
    const weight = new Float32Array(n).map(() => 0.5 + rng.nextFloat());
    const eps = 1e-6;
    const src = put(k1, x), wp = put(k1, weight), dst = k1.alloc(n * nRows * 4);
    k1.rmsnorm(dst, src, wp, n, nRows, eps);
    const out = readF32(k1, dst, n * nRows);
    k1.rmsnorm(src, src, wp, n, nRows, eps);
    expect(readF32(k1, src, n * nRows)).toEqual(out);
    for (let r = 0; r < nRows; r++) {
      let ss = 0;
      for (let i = 0; i < n; i++) ss += x[r * n + i]! ** 2;
      const scale = 1 / Math.sqrt(ss / n + eps);
      for (let i = 0; i < n; i++) {
        const want = x[r * n + i]! * scale * weight[i]!;
        // mean (1 rounding), +eps, sqrt, division, two products: <= 6 roundings
        expect(Math.abs(out[r * n + i]! - want)).toBeLessThanOrEqual(6 * EPS32 * Math.abs(want) + 1e-30);
      }
    }
  });
});

describe('rope_neox', () => {
  // theta_i = pos * base^(-2i/headDim), rotating pairs (i, i + headDim/2).
  const configs = [
    { nHeads: 3, headDim: 128, base: 1e6, positions: [0, 1, 7, 100, 4095, 30000] },
    { nHeads: 2, headDim: 10, base: 10000, positions: [3, 250000] },
  ];
  it.each(configs)('headDim=$headDim base=$base', ({ nHeads, headDim, base, positions }) => {
    const rng = new Rng(headDim);
    const nTokens = positions.length;
    const x = new Float32Array(nTokens * nHeads * headDim).map(() => rng.nextGaussian());
    const xp = put(k1, x), pp = put(k1, Int32Array.from(positions));
    k1.ropeNeox(xp, nTokens, nHeads, headDim, pp, base);
    const got = readF32(k1, xp, x.length);
    const half = headDim / 2;
    const thetaScale = Math.fround(Math.pow(base, Math.fround(-2 / headDim)));
    for (let t = 0; t < nTokens; t++) {
      // llama.cpp's float recurrence theta_{i+1} = theta_i * theta_scale; our kernel follows it,
      // so against that theta the only error is the rotation's own rounding.
      let thetaF = Math.fround(positions[t]!);
      for (let i = 0; i < half; i++) {
        const exact = positions[t]! * Math.pow(base, (-2 * i) / headDim);
        for (let h = 0; h < nHeads; h++) {
          const o = (t * nHeads + h) * headDim;
          const x0 = x[o + i]!, x1 = x[o + half + i]!;
          const size = Math.abs(x0) + Math.abs(x1);
          // vs the float-theta rotation: cos/sin rounded to float (1 ulp each), two products, one sum
          const c = Math.cos(thetaF), s = Math.sin(thetaF);
          expect(Math.abs(got[o + i]! - (x0 * c - x1 * s))).toBeLessThanOrEqual(4 * EPS32 * size + 1e-30);
          expect(Math.abs(got[o + half + i]! - (x0 * s + x1 * c))).toBeLessThanOrEqual(4 * EPS32 * size + 1e-30);
          // vs exact math: theta carries i + 1 float roundings (each <= eps relative) plus
          // theta_scale's own rounding compounded i times
          const angleError = Math.abs(exact) * (2 * i + 2) * EPS32;
          const ce = Math.cos(exact), se = Math.sin(exact);
          expect(Math.abs(got[o + i]! - (x0 * ce - x1 * se))).toBeLessThanOrEqual((angleError + 4 * EPS32) * size + 1e-30);
          expect(Math.abs(got[o + half + i]! - (x0 * se + x1 * ce))).toBeLessThanOrEqual((angleError + 4 * EPS32) * size + 1e-30);
        }
        thetaF = Math.fround(thetaF * thetaScale);
      }
    }
  });
});

describe('silu_mul and add', () => {
  it('silu(gate) * up within 4 ulp-sized errors of f64', () => {
    const rng = new Rng(9);
    const n = 1003;
    const gate = new Float32Array(n).map(() => rng.nextGaussian() * 6);
    gate.set([0, -100, 100, -20, 20, 1e-7], 0);
    const up = new Float32Array(n).map(() => rng.nextGaussian());
    const gp = put(k1, gate), upp = put(k1, up);
    k1.siluMul(gp, upp, n);
    const got = readF32(k1, gp, n);
    for (let i = 0; i < n; i++) {
      const g = gate[i]!;
      const want = (g / (1 + Math.exp(-g))) * up[i]!;
      // expf (1 ulp), 1 + e, division, product: 4 roundings of relative size eps
      expect(Math.abs(got[i]! - want)).toBeLessThanOrEqual(5 * EPS32 * Math.abs(want) + 1e-37);
    }
  });

  it('add', () => {
    const rng = new Rng(10);
    const a = new Float32Array(37).map(() => rng.nextGaussian());
    const b = new Float32Array(37).map(() => rng.nextGaussian());
    const ap = put(k1, a), bp = put(k1, b);
    k1.add(ap, bp, 37);
    expect(readF32(k1, ap, 37)).toEqual(a.map((v, i) => Math.fround(v + b[i]!)));
  });
});

// ---------------------------------------------------------------------------
// KV cache and attention

describe('kv_store', () => {
  it('rounds f32 to f16 to nearest even, like the from-spec encoder', () => {
    const values = new Float32Array([0, -0, 1, -1, 65504, 65519.99, 65520, 1e6, -1e6, 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8,
      1e-9, 1.00048828125, 1.000244140625, 1.000732421875, 0.1, -0.3333, Infinity, -Infinity, NaN, 3.14159]);
    const kvDim = values.length;
    const cacheK = k1.alloc(kvDim * 2 * 3), cacheV = k1.alloc(kvDim * 2 * 3);
    const kp = put(k1, values), vp = put(k1, values.map((v) => -v));
    k1.kvStore(cacheK, cacheV, kp, vp, 1, 2, kvDim);
    const u16 = k1.u16();
    for (let i = 0; i < kvDim; i++) {
      const want = f32ToF16Bits(values[i]!);
      const gotK = u16[cacheK / 2 + 2 * kvDim + i]!;
      if (Number.isNaN(values[i])) {
        expect(gotK & 0x7c00).toBe(0x7c00);
        expect(gotK & 0x3ff).not.toBe(0);
      } else {
        expect(gotK).toBe(want);
        expect(u16[cacheV / 2 + 2 * kvDim + i]).toBe(f32ToF16Bits(-values[i]!));
      }
    }
  });

  it('rounds random bit patterns of every magnitude as the from-spec encoder does (SIMD and tail)', () => {
    const rng = new Rng(4242);
    const n = 65536 + 5;  // 8-lane SIMD body and a scalar tail
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      // exponents concentrated around the half range (subnormal, normal, overflow edges)
      const exponent = 96 + Math.floor(rng.nextFloat() * 64);
      bits[i] = (rng.nextFloat() < 0.5 ? 0x80000000 : 0) | (exponent << 23) | Math.floor(rng.nextFloat() * 0x800000);
    }
    bits.set([0x7f800000, 0xff800000, 0x7fc00001, 0x477ff000, 0x477fefff, 0x38800000, 0x387fffff, 0x33000000, 0x33000001], 0);
    const values = new Float32Array(bits.buffer);
    const cacheK = k1.alloc(n * 2), cacheV = k1.alloc(n * 2);
    k1.kvStore(cacheK, cacheV, put(k1, values), put(k1, values), 1, 0, n);
    const got = k1.u16().slice(cacheK / 2, cacheK / 2 + n);
    for (let i = 0; i < n; i++) {
      const want = Number.isNaN(values[i]) ? 0x7e00 | ((bits[i]! >>> 16) & 0x8000) : f32ToF16Bits(values[i]!);
      if (got[i] !== want) throw new Error(`0x${bits[i]!.toString(16)}: got 0x${got[i]!.toString(16)}, want 0x${want.toString(16)}`);
    }
  });
});

const ATTENTION_CASES: AttentionShape[] = [
  { nTokens: 3, startPos: 5, nHeads: 8, nKvHeads: 2, headDim: 128 },   // GQA 4:1, prefill after a prefix
  { nTokens: 1, startPos: 40, nHeads: 8, nKvHeads: 2, headDim: 128 },  // decode
  { nTokens: 7, startPos: 0, nHeads: 3, nKvHeads: 3, headDim: 16 },   // MHA, fresh prompt
  { nTokens: 2, startPos: 9, nHeads: 4, nKvHeads: 1, headDim: 24 },   // all heads share one KV head
  { nTokens: 2, startPos: 70, nHeads: 14, nKvHeads: 2, headDim: 8 },  // 7 heads per KV head: batches of 4 + 3; > 64 positions
  { nTokens: 37, startPos: 13, nHeads: 8, nKvHeads: 2, headDim: 64 }, // items of 16 + 16 + 5 tokens; K tiles cut mid-prompt
  { nTokens: 1, startPos: 130, nHeads: 2, nKvHeads: 1, headDim: 32 }, // decode: 2 heads of a batch of 4, a partial last tile
  { nTokens: 11, startPos: 4090, nHeads: 4, nKvHeads: 1, headDim: 8 }, // past 4,096 positions: items of 8 tokens
  { nTokens: 9, startPos: 8190, nHeads: 4, nKvHeads: 1, headDim: 8 },  // a long context: items of 4 tokens
];

/** Keys and values of every position (f32, before the cache rounds them). */
interface AttentionRows { kAll: Float32Array; vAll: Float32Array }

/** One attention call of case c on seeded inputs, or on the given queries and the first
 * startPos + nTokens positions of the given rows. */
function runAttention(k: Kernels, c: AttentionShape, seed: number, givenQ?: Float32Array, given?: AttentionRows) {
  const rng = new Rng(seed);
  const kvDim = c.nKvHeads * c.headDim;
  const nCtx = c.startPos + c.nTokens;
  const capacity = nCtx + 4;  // extra positions after the last: masked out, filled with poison
  const cacheK = k.alloc(capacity * kvDim * 2), cacheV = k.alloc(capacity * kvDim * 2);
  const u16 = k.u16();
  // Poison: huge keys would dominate any softmax that reads them, huge values any output.
  u16.fill(f32ToF16Bits(30000), cacheK / 2, cacheK / 2 + capacity * kvDim);
  u16.fill(f32ToF16Bits(30000), cacheV / 2, cacheV / 2 + capacity * kvDim);
  const kAll = given ? given.kAll.subarray(0, nCtx * kvDim) : new Float32Array(nCtx * kvDim).map(() => rng.nextGaussian());
  const vAll = given ? given.vAll.subarray(0, nCtx * kvDim) : new Float32Array(nCtx * kvDim).map(() => rng.nextGaussian());
  // the prefix in one store, then this step's tokens
  if (c.startPos > 0) k.kvStore(cacheK, cacheV, put(k, kAll.subarray(0, c.startPos * kvDim)), put(k, vAll.subarray(0, c.startPos * kvDim)), c.startPos, 0, kvDim);
  k.kvStore(cacheK, cacheV, put(k, kAll.subarray(c.startPos * kvDim)), put(k, vAll.subarray(c.startPos * kvDim)), c.nTokens, c.startPos, kvDim);
  const q = givenQ ?? new Float32Array(c.nTokens * c.nHeads * c.headDim).map(() => rng.nextGaussian() * 2);
  const qp = put(k, q), out = k.alloc(q.length * 4);
  k.attention(out, qp, cacheK, cacheV, c.nTokens, c.startPos, c.nHeads, c.nKvHeads, c.headDim);
  const kh = Float64Array.from(k.u16().slice(cacheK / 2, cacheK / 2 + nCtx * kvDim), f16BitsToF32);
  const vh = Float64Array.from(k.u16().slice(cacheV / 2, cacheV / 2 + nCtx * kvDim), f16BitsToF32);
  return { got: readF32(k, out, q.length), q, kh, vh, rows: { kAll, vAll } };
}

describe.each(ATTENTION_CASES)('attention nTokens=$nTokens startPos=$startPos heads=$nHeads/$nKvHeads headDim=$headDim', (c) => {
  it('matches a causal f64 softmax attention over the stored f16 K/V, with q and the probabilities at f16 precision', () => {
    const { got, q, kh, vh } = runAttention(k2, c, 77 + c.startPos);
    expect(attentionMismatch(got, q, kh, vh, c)).toBeUndefined();
  });

  it('gives identical bits on 1 and 2 threads', () => {
    expect(runAttention(k1, c, 5).got).toEqual(runAttention(k2, c, 5).got);
  });

  it('gives each token the bits of a call with that token alone (speculative decoding verifies drafts so)', () => {
    const all = runAttention(k2, c, 9);
    const width = c.nHeads * c.headDim;
    for (let t = 0; t < c.nTokens; t++) {
      const alone = runAttention(k2, { ...c, nTokens: 1, startPos: c.startPos + t }, 9, all.q.subarray(t * width, (t + 1) * width), all.rows);
      expect(alone.got, `token ${t}`).toEqual(all.got.subarray(t * width, (t + 1) * width));
    }
  });
});

describe('reserveAttention', () => {
  it('sizes the scratch once for a context: no attention call within it allocates afterwards', async () => {
    // A fresh memory of its own, so the check sees only this test's allocations.
    const k = await createKernels({ threads: 2, build: 'simd128' });
    try {
      const positions = 8200, nHeads = 4, nKvHeads = 1, headDim = 8, kvDim = nKvHeads * headDim;
      const f16K = k.alloc(positions * kvDim * 2), f16V = k.alloc(positions * kvDim * 2);
      const q = k.alloc(16 * nHeads * headDim * 4), out = k.alloc(16 * nHeads * headDim * 4);
      expect(k.reserveAttention('f16', positions, nHeads, nKvHeads, headDim)).toBeGreaterThan(0);
      const top = k.alloc(0);
      // Calls before, at and past the ends of the 16- and 8-token items (4,096 and 8,192
      // positions): the largest scratch is not the longest context's.
      for (const [nTokens, startPos] of [[16, 4080], [16, 4064], [8, 4090], [8, 8184], [8, 8176], [1, 8199], [8, 8192], [3, 100]]) {
        k.attention(out, q, f16K, f16V, nTokens, startPos, nHeads, nKvHeads, headDim);
      }
      expect(k.alloc(0)).toBe(top);
      const q8 = await createKernels({ threads: 2, build: 'simd128' });
      try {
        const headDim32 = 32, kq = q8.alloc(64 * headDim32 * 34 / 32), vq = q8.alloc(64 * headDim32 * 34 / 32);
        const qq = q8.alloc(8 * nHeads * headDim32 * 4), oq = q8.alloc(8 * nHeads * headDim32 * 4);
        q8.reserveAttention('q8_0', 64, nHeads, nKvHeads, headDim32);
        const top8 = q8.alloc(0);
        q8.attentionQ8_0(oq, qq, kq, vq, 8, 56, nHeads, nKvHeads, headDim32);
        expect(q8.alloc(0)).toBe(top8);
      } finally {
        q8.dispose();
      }
    } finally {
      k.dispose();
    }
  });
});

// ---------------------------------------------------------------------------
// q8_0 KV cache: llama.cpp's block_q8_0 rows, read as its flash attention reads them

/** llama.cpp's quantize_row_q8_0 (x86): d = f16(amax / 127), q = round-half-even(x * (127 / amax)) in f32. */
function q8_0Reference(values: Float32Array): { d: number[]; q: Int8Array } {
  const d: number[] = [];
  const q = new Int8Array(values.length);
  for (let b = 0; b < values.length / 32; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(values[b * 32 + i]!));
    const multiplier = amax === 0 ? 0 : Math.fround(127 / amax);
    d.push(f16BitsToF32(f32ToF16Bits(Math.fround(amax / 127))));
    for (let i = 0; i < 32; i++) {
      const x = Math.fround(values[b * 32 + i]! * multiplier);
      const r = Math.round(x);
      q[b * 32 + i] = Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r; // ties to even
    }
  }
  return { d, q };
}

/** Reads n values' blocks (34 bytes each) at ptr: scales and quants. */
function readQ8_0(k: Kernels, ptr: number, n: number): { d: number[]; q: Int8Array } {
  const bytes = k.bytes();
  const d: number[] = [];
  const q = new Int8Array(n);
  for (let b = 0; b < n / 32; b++) {
    const o = ptr + b * 34;
    d.push(f16BitsToF32(bytes[o]! | (bytes[o + 1]! << 8)));
    q.set(new Int8Array(bytes.buffer, bytes.byteOffset + o + 2, 32), b * 32);
  }
  return { d, q };
}

describe('q8_0 KV cache', () => {
  it('stores rows as llama.cpp quantizes a q8_0 tensor: the same scales and integers', () => {
    const rng = new Rng(808);
    const kvDim = 256, nTokens = 3, startPos = 2;
    const values = new Float32Array(nTokens * kvDim).map((_, i) => (i % 97 === 0 ? 0 : rng.nextGaussian() * (1 + (i % 7))));
    values.fill(0, kvDim, kvDim + 32); // an all-zero block: scale 0, quants 0
    values[5] = 2.5; // exact ties after scaling land on even integers
    const rowBytes = (kvDim / 32) * 34;
    const cacheK = k1.alloc((startPos + nTokens) * rowBytes), cacheV = k1.alloc((startPos + nTokens) * rowBytes);
    k1.kvStoreQ8_0(cacheK, cacheV, put(k1, values), put(k1, values.map((v) => -v)), nTokens, startPos, kvDim);
    const want = q8_0Reference(values);
    const gotK = readQ8_0(k1, cacheK + startPos * rowBytes, values.length);
    expect(gotK.d).toEqual(want.d);
    expect([...gotK.q]).toEqual([...want.q]);
    const gotV = readQ8_0(k1, cacheV + startPos * rowBytes, values.length);
    expect([...gotV.q]).toEqual([...want.q].map((x) => (x === 0 ? 0 : -x)));
  });

  const CASES: AttentionShape[] = [
    { nTokens: 3, startPos: 5, nHeads: 8, nKvHeads: 2, headDim: 128 },    // GQA 4:1 after a prefix
    { nTokens: 1, startPos: 300, nHeads: 8, nKvHeads: 2, headDim: 128 },  // decode over ten tiles
    { nTokens: 2, startPos: 40, nHeads: 14, nKvHeads: 2, headDim: 64 },   // 7 heads per KV head: batches of 4 + 3
    { nTokens: 5, startPos: 0, nHeads: 2, nKvHeads: 2, headDim: 32 },     // MHA, fresh prompt
    { nTokens: 37, startPos: 37, nHeads: 8, nKvHeads: 2, headDim: 64 },   // items of 16 + 16 + 5 tokens, tiles cut mid-prompt
  ];

  describe.each(CASES)('attention nTokens=$nTokens startPos=$startPos heads=$nHeads/$nKvHeads headDim=$headDim', (c) => {
    function run(k: Kernels, seed: number) {
      const rng = new Rng(seed);
      const kvDim = c.nKvHeads * c.headDim;
      const nCtx = c.startPos + c.nTokens;
      const rowBytes = (kvDim / 32) * 34;
      const capacity = nCtx + 40;
      const cacheK = k.alloc(capacity * rowBytes), cacheV = k.alloc(capacity * rowBytes);
      // Poison past the end: large keys and values would show in any output that read them.
      const poison = new Float32Array(capacity * kvDim).fill(1000);
      k.kvStoreQ8_0(cacheK, cacheV, put(k, poison), put(k, poison), capacity, 0, kvDim);
      // Keys drift (an outlier position late in the context tests the running max's rescale).
      const kAll = new Float32Array(nCtx * kvDim).map((_, i) => rng.nextGaussian() * (Math.floor(i / kvDim) === nCtx - 2 ? 4 : 1));
      const vAll = new Float32Array(nCtx * kvDim).map(() => rng.nextGaussian());
      if (c.startPos > 0) k.kvStoreQ8_0(cacheK, cacheV, put(k, kAll.subarray(0, c.startPos * kvDim)), put(k, vAll.subarray(0, c.startPos * kvDim)), c.startPos, 0, kvDim);
      k.kvStoreQ8_0(cacheK, cacheV, put(k, kAll.subarray(c.startPos * kvDim)), put(k, vAll.subarray(c.startPos * kvDim)), c.nTokens, c.startPos, kvDim);
      const q = new Float32Array(c.nTokens * c.nHeads * c.headDim).map(() => rng.nextGaussian() * 2);
      const qp = put(k, q), out = k.alloc(q.length * 4);
      k.attentionQ8_0(out, qp, cacheK, cacheV, c.nTokens, c.startPos, c.nHeads, c.nKvHeads, c.headDim);
      expect(readF32(k, qp, q.length)).toEqual(q); // q is left as it was
      return { got: readF32(k, out, q.length), q, kq: q8_0Reference(kAll), vq: q8_0Reference(vAll), cacheK, cacheV, qp };
    }

    it('matches an f64 softmax over the stored q8_0 K/V with q quantized to Q8_0 (llama.cpp flash attention)', () => {
      const { got, q, kq, vq } = run(k2, 91 + c.startPos);
      const kvDim = c.nKvHeads * c.headDim;
      const group = c.nHeads / c.nKvHeads;
      const scale = 1 / Math.sqrt(c.headDim);
      for (let t = 0; t < c.nTokens; t++) {
        const nPos = c.startPos + t + 1;
        for (let h = 0; h < c.nHeads; h++) {
          const kvh = Math.floor(h / group);
          const qo = (t * c.nHeads + h) * c.headDim;
          const qq = q8_0Reference(q.subarray(qo, qo + c.headDim));
          const scores: number[] = [];
          for (let p = 0; p < nPos; p++) {
            let s = 0;
            for (let b = 0; b < c.headDim / 32; b++) {
              let isum = 0;
              const ko = p * kvDim + kvh * c.headDim + b * 32;
              for (let i = 0; i < 32; i++) isum += qq.q[b * 32 + i]! * kq.q[ko + i]!;
              s += isum * kq.d[ko / 32]! * qq.d[b]!;
            }
            scores.push(s * scale);
          }
          const mx = Math.max(...scores);
          const e = scores.map((s) => Math.exp(s - mx));
          const sum = e.reduce((a, b) => a + b, 0);
          for (let d = 0; d < c.headDim; d++) {
            let want = 0, size = 0;
            for (let p = 0; p < nPos; p++) {
              const vo = p * kvDim + kvh * c.headDim + d;
              const value = vq.q[vo]! * vq.d[Math.floor(vo / 32)]!;
              want += (e[p]! / sum) * value;
              size += (e[p]! / sum) * Math.abs(value);
            }
            // Scores to ~1e-6 (f32 products of exact integer sums), exp and sums to a few ulps per term.
            const allowed = 1e-5 * Math.max(size, 1e-3) + 4 * nPos * EPS32 * size;
            const g = got[qo + d]!;
            if (!(Math.abs(g - want) <= allowed)) throw new Error(`token ${t} head ${h} dim ${d}: got ${g}, want ${want} (allowed ${allowed})`);
          }
        }
      }
    });

    it('gives identical bits on 1 and 2 threads', () => {
      expect(run(k1, 5).got).toEqual(run(k2, 5).got);
    });

    it('gives each token the bits of a call with that token alone', () => {
      const { got, cacheK, cacheV, qp } = run(k2, 13);
      const width = c.nHeads * c.headDim, out = k2.alloc(width * 4);
      for (let t = 0; t < c.nTokens; t++) {
        k2.attentionQ8_0(out, qp + t * width * 4, cacheK, cacheV, 1, c.startPos + t, c.nHeads, c.nKvHeads, c.headDim);
        expect(readF32(k2, out, width), `token ${t}`).toEqual(got.subarray(t * width, (t + 1) * width));
      }
    });
  });
});

describe('hadamard_rotate', () => {
  const popcount = (x: number) => { let n = 0; for (; x; x &= x - 1) n++; return n; };
  it.each([8, 64, 128])('multiplies each block of %i by the normalized Sylvester matrix, and twice gives the input back', (block) => {
    const rng = new Rng(block);
    const rows = 3, width = 256;
    const x = new Float32Array(rows * width).map(() => rng.nextGaussian());
    const ptr = put(k1, x);
    k1.hadamardRotate(ptr, rows, width, block);
    const got = readF32(k1, ptr, x.length);
    for (let c = 0; c < x.length; c += block) {
      for (let i = 0; i < block; i++) {
        let want = 0, size = 0;
        for (let j = 0; j < block; j++) {
          want += (popcount(i & j) % 2 ? -1 : 1) * x[c + j]!;
          size += Math.abs(x[c + j]!);
        }
        want /= Math.sqrt(block);
        expect(Math.abs(got[c + i]! - want)).toBeLessThanOrEqual((Math.log2(block) + 2) * EPS32 * size);
      }
    }
    k1.hadamardRotate(ptr, rows, width, block);
    const back = readF32(k1, ptr, x.length);
    for (let i = 0; i < x.length; i++) expect(Math.abs(back[i]! - x[i]!)).toBeLessThan(1e-5 * (1 + Math.abs(x[i]!)));
  });

  it('refuses a block that is not a power of two dividing the row', () => {
    const ptr = k1.alloc(96 * 4);
    expect(() => k1.hadamardRotate(ptr, 1, 96, 64)).toThrow();
    expect(() => k1.hadamardRotate(ptr, 1, 96, 48)).toThrow();
  });
});
