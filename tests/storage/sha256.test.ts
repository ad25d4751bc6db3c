// The store's incremental SHA-256 against node:crypto (the oracle), including every padding edge
// (lengths around 55/56/64 bytes), arbitrary split points, and a state saved at a block boundary
// and restored in a fresh object — what a download resumed after a reload relies on.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Sha256, sha256FromHeader } from '../../src/storage/sha256.ts';
import { Rng } from '../fixtures/random.ts';

function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  new Rng(seed).fillBytes(out);
  return out;
}

const nodeSha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe('Sha256', () => {
  it('matches node:crypto for the standard vectors and every length up to 300 bytes', () => {
    expect(new Sha256().hex()).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(new Sha256().update(new TextEncoder().encode('abc')).hex()).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    for (let n = 0; n <= 300; n++) {
      const data = bytes(n, n + 1);
      expect(new Sha256().update(data).hex(), `length ${n}`).toBe(nodeSha(data));
    }
  });

  it('gives the same digest however the input is split', () => {
    const data = bytes(200_003, 9);
    const expected = nodeSha(data);
    const rng = new Rng(5);
    for (let round = 0; round < 20; round++) {
      const hasher = new Sha256();
      for (let at = 0; at < data.length; ) {
        const step = 1 + Math.floor(rng.nextFloat() * 5000);
        hasher.update(data.subarray(at, at + step));
        at += step;
      }
      expect(hasher.hex()).toBe(expected);
    }
  });

  it('resumes from a saved state in a new object, and refuses to save mid-block', () => {
    const data = bytes(3 * 65_536 + 77, 11);
    const first = new Sha256().update(data.subarray(0, 2 * 65_536));
    const state = JSON.parse(JSON.stringify(first.save())) as ReturnType<Sha256['save']>;
    expect(state.bytes).toBe(2 * 65_536);
    expect(new Sha256(state).update(data.subarray(2 * 65_536)).hex()).toBe(nodeSha(data));
    expect(() => new Sha256().update(data.subarray(0, 100)).save()).toThrow(RangeError);
    expect(() => new Sha256({ h: [1, 2, 3], bytes: 64 })).toThrow(RangeError);
    expect(() => new Sha256({ h: state.h, bytes: 65 })).toThrow(RangeError);
  });

  it('reads a SHA-256 out of ETag-style headers only when it is one', () => {
    const hex = 'ab'.repeat(32);
    expect(sha256FromHeader(`"${hex}"`)).toBe(hex);
    expect(sha256FromHeader(`W/"${hex.toUpperCase()}"`)).toBe(hex);
    expect(sha256FromHeader(hex)).toBe(hex);
    expect(sha256FromHeader('"2b0e5-18c7a"')).toBeUndefined(); // an ordinary ETag
    expect(sha256FromHeader(`"${hex}0"`)).toBeUndefined();
    expect(sha256FromHeader(null)).toBeUndefined();
  });
});
