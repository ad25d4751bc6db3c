// A device whose browser will not give WebAssembly that much memory (a phone, a 32-bit browser):
// the load fails with a typed error that names the numbers and what needs less. V8's
// --wasm-max-mem-pages limits a Node process the way such a device limits its browser: the
// same RangeError from the same WebAssembly.Memory call.
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureFixture } from '../fixtures/fixtures.ts';

const run = promisify(execFile);
const MIB = 1024 * 1024;

interface ChildResult {
  info?: { contextLength: number };
  error?: { name: string; code?: string; detail?: string; message: string };
}

async function loadWithLimit(path: string, contextLength: number, maxMiB?: number): Promise<ChildResult> {
  const flags = maxMiB === undefined ? [] : [`--wasm-max-mem-pages=${(maxMiB * MIB) / 65536}`];
  const { stdout } = await run(process.execPath, [...flags, '--import', 'tsx', 'tests/support/load-model-child.ts', path, String(contextLength)],
    { timeout: 120_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildResult;
}

describe('a device with too little memory for the model', () => {
  let path: string;
  beforeAll(async () => {
    path = await ensureFixture('tiny-f32');
  }, 300_000);

  it('fails the load with model-too-large, the numbers, and what needs less; loads where memory allows', async () => {
    const weightsMiB = statSync(path).size / MIB;
    // Room for the kernels, not for the weights: the browser refuses the memory.
    const refused = await loadWithLimit(path, 4096, Math.floor(weightsMiB / 2));
    expect(refused.error).toMatchObject({ name: 'EngineError', code: 'load-failed', detail: 'model-too-large' });
    const message = refused.error!.message;
    expect(message).toMatch(/this model needs [\d.]+ [GM]iB of memory \(weights [\d.]+ [GM]iB, KV cache [\d.]+ [GM]iB for 4,096 tokens/);
    expect(message).toMatch(/could not get \d+ bytes of WebAssembly memory/);
    expect(message).toMatch(/With 2,048 tokens of context it needs [\d.]+ [GM]iB; a smaller model needs less/);
    // The same file in the same kind of process, without the limit: the limit was the reason.
    const allowed = await loadWithLimit(path, 4096);
    expect(allowed).toEqual({ info: { contextLength: 4096 } });
  }, 300_000);
});
