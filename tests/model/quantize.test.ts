// Reference quantizers: half-precision rounding against brute force, dequantization of
// hand-built blocks against the format formulas, quantization error within each format's bound,
// and (the strong oracle) llama.cpp reading our blocks: llama.cpp's logits on a fixture of each
// type match those on an F32 file of the values our dequantizer decodes from it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGMLType, GGML_TYPE_INFO } from '../../src/gguf/ggml-types.ts';
import {
  bf16BitsToF32,
  dequantize,
  f16BitsToF32,
  fillRandomBlocks,
  f32ToBF16Bits,
  f32ToF16Bits,
  quantize,
  unpackQ4_KScale,
} from '../fixtures/quantize.ts';
import { Rng } from '../fixtures/random.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { logitDistance, openOracle } from '../oracle/llama-oracle.ts';

// ---------------------------------------------------------------------------------------------
// half precision

// Every finite binary16 value, ascending, with its bits: the brute-force oracle for rounding.
function sortedFiniteHalves(): { values: Float64Array; bits: Uint16Array } {
  const entries: Array<[number, number]> = [];
  for (let h = 0; h < 0x10000; h++) {
    const exponent = (h >> 10) & 31;
    if (exponent === 31) continue;
    if (h === 0x8000) continue; // -0 equals +0: keep one zero
    const sign = h & 0x8000 ? -1 : 1;
    const mantissa = h & 1023;
    const value = exponent === 0 ? sign * mantissa * 2 ** -24 : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
    entries.push([value, h]);
  }
  entries.sort((a, b) => a[0] - b[0]);
  return { values: Float64Array.from(entries, (e) => e[0]), bits: Uint16Array.from(entries, (e) => e[1]) };
}

/** Round-to-nearest-even by search: the expected bits for x (finite, |x| <= 65504). */
function nearestHalfBits(x: number, table: { values: Float64Array; bits: Uint16Array }): number {
  const { values, bits } = table;
  let lo = 0;
  let hi = values.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (values[mid] <= x) lo = mid;
    else hi = mid;
  }
  const below = Math.abs(x - values[lo]);
  const above = Math.abs(values[hi] - x);
  if (below < above) return bits[lo];
  if (above < below) return bits[hi];
  return (bits[lo] & 1) === 0 ? bits[lo] : bits[hi]; // tie: even mantissa
}

describe('f16', () => {
  it('decodes known bit patterns', () => {
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0xc000)).toBe(-2);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0x0400)).toBe(2 ** -14);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(f16BitsToF32(0x7c00)).toBe(Infinity);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    expect(f16BitsToF32(0x3555)).toBeCloseTo(0.333251953125, 12);
  });

  it('encodes with round-to-nearest-even, subnormals, overflow and NaN', () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65519)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // tie between 65504 and 2^16 -> even = inf
    expect(f32ToF16Bits(-1e6)).toBe(0xfc00);
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000); // tie -> even (zero)
    expect(f32ToF16Bits(1.5 * 2 ** -25)).toBe(0x0001);
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002); // 1.5 ulp: tie -> even
    expect(f32ToF16Bits(1023.5 * 2 ** -24)).toBe(0x0400); // tie -> carries into the smallest normal
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(1e-10)).toBe(0x0000);
    const nan = f32ToF16Bits(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
  });

  it('matches a brute-force nearest-even search on every half and on random floats', () => {
    const table = sortedFiniteHalves();
    // every finite half round-trips
    for (let i = 0; i < table.bits.length; i++) {
      expect(f32ToF16Bits(table.values[i])).toBe(table.bits[i]);
    }
    // midpoints between neighbours are exact ties: nearest-even decides
    for (let i = 0; i + 1 < table.values.length; i += 7) {
      const mid = (table.values[i] + table.values[i + 1]) / 2;
      if (Math.fround(mid) !== mid) continue; // only midpoints a float32 can hold
      expect(f32ToF16Bits(mid)).toBe(nearestHalfBits(mid, table));
    }
    const rng = new Rng(1234);
    const f32 = new Float32Array(1);
    for (let i = 0; i < 20000; i++) {
      // log-uniform magnitudes from 2^-27 to 2^16, both signs, as float32 values
      f32[0] = (rng.nextFloat() < 0.5 ? -1 : 1) * 2 ** (-27 + 43 * rng.nextFloat());
      const x = f32[0];
      if (Math.abs(x) > 65504) continue;
      let expected = nearestHalfBits(x, table);
      if (expected === 0 && x < 0) expected = 0x8000; // a negative value rounding to zero keeps its sign
      expect(f32ToF16Bits(x)).toBe(expected);
    }
  });
});

describe('bf16', () => {
  it('rounds the float32 top half to nearest even', () => {
    expect(f32ToBF16Bits(1)).toBe(0x3f80);
    expect(f32ToBF16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(f32ToBF16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie -> even (up)
    expect(f32ToBF16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(f32ToBF16Bits(-2)).toBe(0xc000);
    expect(f32ToBF16Bits(Infinity)).toBe(0x7f80);
    expect(bf16BitsToF32(f32ToBF16Bits(NaN))).toBeNaN();
    expect(bf16BitsToF32(0x3f81)).toBe(1 + 2 ** -7);
    expect(bf16BitsToF32(0x0001)).toBe(2 ** -133);
  });
});

// ---------------------------------------------------------------------------------------------
// dequantization of hand-built blocks

function halfBytes(bits: number): number[] {
  return [bits & 255, bits >> 8];
}

const int8 = (byte: number): number => (byte << 24) >> 24;

describe('dequantize hand-built blocks', () => {
  it('Q8_0: x = d * qs[j]', () => {
    const qs = Array.from({ length: 32 }, (_, j) => (j * 37 + 128) & 255); // covers -128..127
    const block = Uint8Array.from([...halfBytes(0x3800), ...qs]); // d = 0.5
    const values = dequantize(GGMLType.Q8_0, block, 32);
    for (let j = 0; j < 32; j++) expect(values[j]).toBe(0.5 * int8(qs[j]));
  });

  it('Q4_0: low nibbles are elements 0..15, high nibbles 16..31, minus 8', () => {
    const qs = Array.from({ length: 16 }, (_, j) => (j & 15) | (((15 - j) & 15) << 4));
    const block = Uint8Array.from([...halfBytes(0xc000), ...qs]); // d = -2
    const values = dequantize(GGMLType.Q4_0, block, 32);
    for (let j = 0; j < 16; j++) {
      expect(values[j]).toBe(-2 * (j - 8));
      expect(values[j + 16]).toBe(-2 * (15 - j - 8));
    }
    // two blocks in a row: the second starts at byte 18
    const two = Uint8Array.from([...block, ...halfBytes(0x3c00), ...new Array<number>(16).fill(0x9f)]);
    const both = dequantize(GGMLType.Q4_0, two, 64);
    for (let j = 0; j < 16; j++) {
      expect(both[32 + j]).toBe(15 - 8);
      expect(both[48 + j]).toBe(9 - 8);
    }
  });

  it('Q4_K: 6-bit scales and mins packed in 12 bytes, x = d * sc * q - dmin * m', () => {
    // scales [1, 2, 3, 63, 17, 33, 48, 5], mins [0, 7, 63, 1, 60, 20, 16, 31], packed by hand:
    // bytes 0-3 = sc[j] | (sc[j+4] >> 4) << 6, bytes 4-7 = m[j] | (m[j+4] >> 4) << 6,
    // bytes 8-11 = (sc[j+4] & 15) | (m[j+4] & 15) << 4
    const scales = [1, 2, 3, 63, 17, 33, 48, 5];
    const mins = [0, 7, 63, 1, 60, 20, 16, 31];
    const packed = [65, 130, 195, 63, 192, 71, 127, 65, 193, 65, 0, 245];
    for (let j = 0; j < 8; j++) {
      expect(unpackQ4_KScale(Uint8Array.from(packed), 0, j)).toEqual({ scale: scales[j], min: mins[j] });
    }
    const qs = Array.from({ length: 128 }, (_, i) => (i * 7 + 3) & 255);
    const block = Uint8Array.from([...halfBytes(0x3c00), ...halfBytes(0x3800), ...packed, ...qs]); // d 1, dmin 0.5
    expect(block.length).toBe(144);
    const values = dequantize(GGMLType.Q4_K, block, 256);
    for (let e = 0; e < 256; e++) {
      const chunk = e >> 6; // 64 values per 32 bytes of qs
      const upper = (e & 63) >= 32; // second half of a chunk: high nibbles, odd sub-block
      const byte = qs[32 * chunk + (e & 31)];
      const q = upper ? byte >> 4 : byte & 15;
      const sub = 2 * chunk + (upper ? 1 : 0);
      expect(values[e]).toBe(1 * scales[sub] * q - 0.5 * mins[sub]);
    }
  });

  it('Q6_K: ql low bits, qh high bits, int8 scales per 16, d last', () => {
    const ql = Array.from({ length: 128 }, (_, i) => (i * 13 + 5) & 255);
    const qh = Array.from({ length: 64 }, (_, i) => (i * 29 + 3) & 255);
    const scaleValues = [-128, 127, -1, 1, 5, -7, 64, -64, 3, 2, 100, -100, 33, 0, -20, 20];
    const block = Uint8Array.from([...ql, ...qh, ...scaleValues.map((s) => s & 255), ...halfBytes(0x3400)]); // d 0.25
    expect(block.length).toBe(210);
    const values = dequantize(GGMLType.Q6_K, block, 256);
    // The reference loop of the format: two halves of 128; in each, for l in 0..31 the four
    // values l, l+32, l+64, l+96 come from ql[l] / ql[l+32] (low, then high nibbles) and the
    // 2-bit fields of qh[l]; scale index l/16 + 0, 2, 4, 6; then ql += 64, qh += 32, sc += 8.
    const expected = new Array<number>(256);
    for (let half = 0; half < 2; half++) {
      const qlBase = 64 * half;
      const qhBase = 32 * half;
      const scBase = 8 * half;
      for (let l = 0; l < 32; l++) {
        const is = Math.floor(l / 16);
        const q1 = ((ql[qlBase + l] & 15) | (((qh[qhBase + l] >> 0) & 3) << 4)) - 32;
        const q2 = ((ql[qlBase + l + 32] & 15) | (((qh[qhBase + l] >> 2) & 3) << 4)) - 32;
        const q3 = ((ql[qlBase + l] >> 4) | (((qh[qhBase + l] >> 4) & 3) << 4)) - 32;
        const q4 = ((ql[qlBase + l + 32] >> 4) | (((qh[qhBase + l] >> 6) & 3) << 4)) - 32;
        expected[128 * half + l] = 0.25 * scaleValues[scBase + is] * q1;
        expected[128 * half + l + 32] = 0.25 * scaleValues[scBase + is + 2] * q2;
        expected[128 * half + l + 64] = 0.25 * scaleValues[scBase + is + 4] * q3;
        expected[128 * half + l + 96] = 0.25 * scaleValues[scBase + is + 6] * q4;
      }
    }
    for (let e = 0; e < 256; e++) expect(values[e]).toBe(expected[e]);
  });

  it('F16 and BF16 rows decode element by element', () => {
    const f16 = Uint8Array.from([...halfBytes(0x3c00), ...halfBytes(0xc000), ...halfBytes(0x0001)]);
    expect(Array.from(dequantize(GGMLType.F16, f16, 3))).toEqual([1, -2, 2 ** -24]);
    const bf16 = Uint8Array.from([...halfBytes(0x3f80), ...halfBytes(0xc040)]);
    expect(Array.from(dequantize(GGMLType.BF16, bf16, 2))).toEqual([1, -3]);
  });
});

// ---------------------------------------------------------------------------------------------
// quantize -> dequantize error bounds, stated from the data alone

function testData(seed: number, count: number): Float32Array {
  const rng = new Rng(seed);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const r = rng.nextFloat();
    // gaussian, with some blocks shifted, scaled, all-positive, and sparse outliers and zeros
    const blockKind = Math.floor(i / 256) % 4;
    let x = rng.nextGaussian();
    if (blockKind === 1) x = x * 0.001 + 0.004;
    if (blockKind === 2) x = Math.abs(x) * 30;
    if (blockKind === 3 && Math.floor(i / 32) % 2 === 0) x = 0;
    if (r < 0.003) x *= 40;
    data[i] = x;
  }
  return data;
}

const HALF_ULP = 2 ** -10; // relative rounding of an f16 scale, with room

function maxAbs(x: Float32Array, start: number, length: number): number {
  let m = 0;
  for (let i = start; i < start + length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

describe('quantize -> dequantize stays within the format bound', () => {
  const data = testData(99, 256 * 64);

  it('F16 and BF16 round to nearest', () => {
    const viaF16 = dequantize(GGMLType.F16, quantize(GGMLType.F16, data), data.length);
    const viaBF16 = dequantize(GGMLType.BF16, quantize(GGMLType.BF16, data), data.length);
    for (let i = 0; i < data.length; i++) {
      const x = data[i];
      expect(Math.abs(viaF16[i] - x)).toBeLessThanOrEqual(Math.max(Math.abs(x) * 2 ** -11, 2 ** -25));
      expect(Math.abs(viaBF16[i] - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -8);
    }
  });

  it('Q8_0: |error| <= amax / 254 per block', () => {
    const back = dequantize(GGMLType.Q8_0, quantize(GGMLType.Q8_0, data), data.length);
    for (let b = 0; b < data.length; b += 32) {
      const bound = (maxAbs(data, b, 32) / 254) * (1 + HALF_ULP) + 1e-12;
      for (let i = b; i < b + 32; i++) expect(Math.abs(back[i] - data[i])).toBeLessThanOrEqual(bound);
    }
  });

  it('Q4_0: |error| <= amax / 8 per block (amax / 16 unless clamped at +8)', () => {
    const back = dequantize(GGMLType.Q4_0, quantize(GGMLType.Q4_0, data), data.length);
    let sumSquares = 0;
    let sumErrorSquares = 0;
    for (let b = 0; b < data.length; b += 32) {
      const step = (maxAbs(data, b, 32) / 8) * (1 + HALF_ULP);
      for (let i = b; i < b + 32; i++) {
        const error = Math.abs(back[i] - data[i]);
        expect(error).toBeLessThanOrEqual(step + 1e-12);
        sumErrorSquares += error * error;
        sumSquares += (step / 2) ** 2;
      }
    }
    // half-step bound holds for all but the rare clamp: the mean squared error respects it
    expect(sumErrorSquares).toBeLessThanOrEqual(sumSquares);
  });

  it('Q4_K: per sub-block, |error| <= step / 2 + dmin / 2 with steps no coarser than needed', () => {
    const back = dequantize(GGMLType.Q4_K, quantize(GGMLType.Q4_K, data), data.length);
    for (let b = 0; b < data.length; b += 256) {
      const low: number[] = [];
      const high: number[] = [];
      for (let j = 0; j < 8; j++) {
        let lo = 0;
        let hi = -Infinity;
        for (let i = b + 32 * j; i < b + 32 * j + 32; i++) {
          lo = Math.min(lo, data[i]);
          hi = Math.max(hi, data[i]);
        }
        low.push(lo);
        high.push(hi);
      }
      const maxRange = Math.max(...high.map((h, j) => (h - low[j]) / 15));
      const dmin = (Math.max(...low.map((l) => -l)) / 63) * (1 + HALF_ULP);
      const d = ((maxRange + dmin / 30) / 63) * (1 + HALF_ULP);
      for (let j = 0; j < 8; j++) {
        const step = (high[j] - low[j] + dmin / 2) / 15 + d;
        const bound = step / 2 + dmin / 2 + 1e-9;
        for (let i = b + 32 * j; i < b + 32 * j + 32; i++) {
          expect(Math.abs(back[i] - data[i])).toBeLessThanOrEqual(bound);
        }
      }
    }
  });

  it('Q6_K: per 16 values, |error| <= amax16 / 32 + d', () => {
    const back = dequantize(GGMLType.Q6_K, quantize(GGMLType.Q6_K, data), data.length);
    for (let b = 0; b < data.length; b += 256) {
      const d = (maxAbs(data, b, 256) / 32 / 127) * (1 + HALF_ULP);
      for (let s = b; s < b + 256; s += 16) {
        const bound = maxAbs(data, s, 16) / 32 + d + 1e-12;
        for (let i = s; i < s + 16; i++) expect(Math.abs(back[i] - data[i])).toBeLessThanOrEqual(bound);
      }
    }
  });

  it('all-zero blocks stay zero', () => {
    const zeros = new Float32Array(256);
    for (const type of [GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K, GGMLType.Q6_K]) {
      expect(Array.from(dequantize(type, quantize(type, zeros), 256))).toEqual(Array.from(zeros));
    }
  });

  it('rejects lengths that are not whole blocks', () => {
    expect(() => quantize(GGMLType.Q4_K, new Float32Array(128))).toThrow(/block size/);
    expect(() => quantize(GGMLType.Q4_0, new Float32Array(48))).toThrow(/block size/);
  });
});

describe('random blocks (the full-size benchmark model)', () => {
  for (const type of [GGMLType.Q4_0, GGMLType.Q8_0, GGMLType.Q4_K, GGMLType.Q6_K]) {
    it(`${GGMLType[type]}: finite values, mean ~0, std ~target`, () => {
      const blockSize = type === GGMLType.Q4_0 || type === GGMLType.Q8_0 ? 32 : 256;
      const count = 1 << 20;
      const bytes = new Uint8Array((count / blockSize) * GGML_TYPE_INFO[type].blockBytes);
      fillRandomBlocks(type, new Rng(5), bytes, 0.02);
      const values = dequantize(type, bytes, count);
      let sum = 0;
      let sumSquares = 0;
      let nonFinite = 0;
      for (const v of values) {
        if (!Number.isFinite(v)) nonFinite++;
        sum += v;
        sumSquares += v * v;
      }
      expect(nonFinite).toBe(0);
      const mean = sum / values.length;
      const std = Math.sqrt(sumSquares / values.length - mean * mean);
      expect(Math.abs(mean)).toBeLessThan(0.002); // a tenth of the std: no shared bias
      expect(std).toBeGreaterThan(0.015);
      expect(std).toBeLessThan(0.027);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// llama.cpp reads our blocks as we meant them
//
// For each type, llama.cpp evaluates the quantized fixture and its `-dequant` twin: an F32 file
// holding exactly the values our dequantizer decodes from it. If llama.cpp decoded any field
// differently (a scale bit, a nibble order, the Q6_K high bits), the two would be unrelated
// models: logit distance ~1-1.4. What remains is llama.cpp's own rounding of the activations
// (to f16 or bf16 for those weights, to Q8_0 blocks of 32 for Q8_0/Q4_0, to Q8_K blocks of 256
// for Q4_K/Q6_K), which these networks pass to the logits with a gain of ~6-10: the bound is 25x
// that rounding's relative RMS error (a step of amax/127 rounds with RMS step/√12; amax ≈ 2.1σ
// over 32 values, ≈ 2.9σ over 256). For the 4-bit types there is a second, scale-free check:
// llama.cpp's logits are far closer to our decoding than to the original float weights, so the
// quantization error it sees is the one we encoded.

const PROMPT = [
  '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n',
  'The quick brown fox jumps over the lazy dog. Once upon a time, in a land far away, there lived ',
  'a king who had three daughters, and each of them was more curious than the last. ',
  'Tell me what happened next, in a few sentences.<|im_end|>\n<|im_start|>assistant\n',
].join('');
// full-vocabulary comparisons at these positions of a 64-token prompt + 64 greedy tokens
const POSITIONS = [7, 23, 39, 55, 71, 87, 103, 119];

const ACTIVATION_ERROR = {
  f16: 2 ** -11 / Math.sqrt(3),
  bf16: 2 ** -8 / Math.sqrt(3),
  q8_0Blocks: 2.1 / 127 / Math.sqrt(12),
  q8_KBlocks: 2.9 / 127 / Math.sqrt(12),
};
const GAIN_BOUND = 25;

interface TwinCase {
  fixture: string;
  activationError: number;
  /** 4-bit: llama.cpp on the file is much closer to the twin than to the F32 original */
  lossy: boolean;
}

const TWIN_CASES: TwinCase[] = [
  { fixture: 'tiny-f16', activationError: ACTIVATION_ERROR.f16, lossy: false },
  { fixture: 'tiny-bf16', activationError: ACTIVATION_ERROR.bf16, lossy: false },
  { fixture: 'tiny-q8_0', activationError: ACTIVATION_ERROR.q8_0Blocks, lossy: false },
  { fixture: 'tiny-q4_0', activationError: ACTIVATION_ERROR.q8_0Blocks, lossy: true },
  // token_embd, output, attn_v/ffn_down of layer 2: Q6_K; every other matrix Q4_K
  { fixture: 'small-q4_k_m', activationError: ACTIVATION_ERROR.q8_KBlocks, lossy: true },
];

async function fullLogProbsOf(fixture: string, tokens: number[]): Promise<Float32Array[]> {
  const oracle = await openOracle(await ensureFixture(fixture), { contextSize: 256 });
  try {
    return await oracle.logProbs(tokens, POSITIONS);
  } finally {
    await oracle.close();
  }
}

function meanDistance(reference: Float32Array[], candidate: Float32Array[]): number {
  const distances = reference.map((r, i) => logitDistance(r, candidate[i]));
  return distances.reduce((a, b) => a + b, 0) / distances.length;
}

describe('llama.cpp decodes our blocks as our dequantizer does', () => {
  // per shape: the F32 model's prompt + greedy continuation, and its logits at POSITIONS
  const sequences = new Map<string, { tokens: number[]; f32: Float32Array[] }>();

  beforeAll(async () => {
    for (const shape of ['tiny', 'small']) {
      const oracle = await openOracle(await ensureFixture(`${shape}-f32`), { contextSize: 256 });
      try {
        const prompt = oracle.tokenize(PROMPT, true).slice(0, 64);
        const { tokens: generated } = await oracle.greedy(prompt, 64);
        const tokens = [...prompt, ...generated];
        sequences.set(shape, { tokens, f32: await oracle.logProbs(tokens, POSITIONS) });
      } finally {
        await oracle.close();
      }
    }
  });

  afterAll(() => sequences.clear());

  for (const c of TWIN_CASES) {
    it(`${c.fixture}: llama.cpp on the file matches its F32 twin`, async () => {
      const shape = c.fixture.split('-')[0];
      const sequence = sequences.get(shape);
      if (!sequence) throw new Error(`no reference sequence for ${shape}`);
      const quantized = await fullLogProbsOf(c.fixture, sequence.tokens);
      const twin = await fullLogProbsOf(`${c.fixture}-dequant`, sequence.tokens);
      const toTwin = meanDistance(twin, quantized);
      const toOriginal = meanDistance(sequence.f32, quantized);
      const bound = GAIN_BOUND * c.activationError;
      console.log(`${c.fixture}: logit distance to its twin ${toTwin.toFixed(4)} (bound ${bound.toFixed(4)}), to f32 ${toOriginal.toFixed(4)}`);
      expect(toTwin).toBeLessThanOrEqual(bound);
      if (c.lossy) expect(toTwin).toBeLessThan(0.25 * toOriginal);
    });
  }
});
