// Benchmarks of decode deep into a context: the KV cache is filled to `depth` with copies of the
// rows it holds (the prompt's), without computing them. Decode time depends on how many rows
// attention reads, not on their values, but the rows must be written: wasm pages never written
// are all one zero page to the CPU, and reading them costs almost nothing.
import type { Qwen3Model } from '../../src/model/qwen3.ts';

export function fillCacheTo(model: Qwen3Model, depth: number): void {
  const held = model.position;
  if (depth <= held) return;
  if (held === 0) throw new RangeError('fillCacheTo: the cache holds no rows to copy');
  if (depth > model.contextLength) throw new RangeError(`fillCacheTo(${depth}): the context holds ${model.contextLength} tokens`);
  const layers = model.config.nLayers;
  const row = model.cacheBytesPerToken / (2 * layers); // one position's keys (or values) in one layer
  const saved = model.saveCache(0, held); // per layer: `held` key rows, then `held` value rows
  const filled = new Uint8Array(depth * row * 2 * layers);
  for (let l = 0, o = 0; l < layers; l++) {
    for (const part of [0, 1]) {
      const rows = saved.subarray((2 * l + part) * held * row, (2 * l + part + 1) * held * row);
      for (let p = 0; p < depth; p += held) filled.set(rows.subarray(0, Math.min(held, depth - p) * row), o + p * row);
      o += depth * row;
    }
  }
  model.restoreCache(filled, depth);
}
