// Finding and compiling the kernel module: which build this host can run (the relaxed one
// only after its known-answer probe passes), and the module's memory import, rewritten to a
// non-shared memory for hosts without SharedArrayBuffer. kernels.ts instantiates what this gives.
import { KERNEL_BUILDS, type KernelBuild, type KernelPlatform } from './kernel-platform.ts';

/** Bytes of a wasm memory page, and the most pages wasm32 can address (4 GiB). */
export const PAGE = 65536;
export const MAX_PAGES = 65536;

// Module bytes: the memory import's limits, and a non-shared variant

export interface MemoryImport {
  minPages: number;
  /** Offset of the limits flag byte (0x03 = shared with maximum). */
  flagOffset: number;
  shared: boolean;
}

function readLeb(bytes: Uint8Array, pos: number): [value: number, next: number] {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[pos++];
    if (b === undefined) throw new Error('truncated wasm module');
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [value, pos];
    shift += 7;
  }
}

/** Finds `env.memory` in the import section. */
export function findMemoryImport(bytes: Uint8Array): MemoryImport {
  let pos = 8;  // magic + version
  while (pos < bytes.length) {
    const id = bytes[pos++];
    let size: number;
    [size, pos] = readLeb(bytes, pos);
    const end = pos + size;
    if (id === 2) {
      let count: number;
      [count, pos] = readLeb(bytes, pos);
      for (let i = 0; i < count; i++) {
        let len: number;
        [len, pos] = readLeb(bytes, pos);
        pos += len;  // module name
        [len, pos] = readLeb(bytes, pos);
        pos += len;  // field name
        const kind = bytes[pos++];
        if (kind === 0) [, pos] = readLeb(bytes, pos);                   // function: type index
        else if (kind === 1) { pos++; pos = skipLimits(bytes, pos); }    // table: reftype + limits
        else if (kind === 3) pos += 2;                                    // global: type + mutability
        else if (kind === 2) {
          const flagOffset = pos;
          const flags = bytes[pos++];
          const [minPages] = readLeb(bytes, pos);
          return { minPages, flagOffset, shared: (flags & 2) !== 0 };
        } else throw new Error(`unexpected import kind ${kind}`);
      }
    }
    pos = end;
  }
  throw new Error('the kernel module imports no memory');
}

function skipLimits(bytes: Uint8Array, pos: number): number {
  const flags = bytes[pos++];
  [, pos] = readLeb(bytes, pos);
  if (flags & 1) [, pos] = readLeb(bytes, pos);
  return pos;
}

/** The same module importing a non-shared memory (hosts without SharedArrayBuffer).
 * Atomic instructions stay valid on unshared memory; the pool never waits with one thread. */
export function withUnsharedMemory(bytes: Uint8Array): Uint8Array {
  const imp = findMemoryImport(bytes);
  if (!imp.shared) return bytes;
  const copy = bytes.slice();
  copy[imp.flagOffset] = copy[imp.flagOffset]! & ~2;
  return copy;
}

// ---------------------------------------------------------------------------
// Relaxed-SIMD probe

/** What `relaxed_probe(seed)` in wasm/matmul.c must return, computed from the spec: the i32x4
 * dot's lane k = acc[k] + sum over i in 4k..4k+3 of a[i] * b[i], weighted 1, 3, 5, 7, plus the
 * i16x8 dot's lane k = sum over i in 2k, 2k+1, weighted 9, 11, .., 23. */
export function expectedRelaxedProbe(seed: number): number {
  const lanes = [1000 + seed, -2000, 3000, seed];  // the i32x4 dot's accumulator
  const pairs = new Array<number>(8).fill(0);     // the i16x8 dot
  for (let i = 0; i < 16; i++) {
    const a = ((seed * (i + 1) - 100 + 13 * i) << 24) >> 24;  // int8 wrap
    const b = (seed + 37 * i) & 127;
    lanes[i >> 2]! += a * b;
    pairs[i >> 1]! += a * b;
  }
  const pairSum = pairs.reduce((sum, p, k) => sum + (2 * k + 9) * p, 0);
  return (lanes[0]! + 3 * lanes[1]! + 5 * lanes[2]! + 7 * lanes[3]! + pairSum) | 0;
}

const PROBE_SEEDS = [1, 5, 77, -3];

/** Compiles the relaxed build and runs its probe; returns why not when it cannot be used. */
async function probeRelaxed(platform: KernelPlatform): Promise<{ module: WebAssembly.Module; bytes: Uint8Array } | string> {
  let bytes: Uint8Array;
  let module: WebAssembly.Module;
  try {
    bytes = await platform.wasmBytes('relaxed');
    if (!platform.sharedMemory) bytes = withUnsharedMemory(bytes);
    module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (e) {
    return `relaxed build does not compile here (${e instanceof Error ? e.message : String(e)})`;
  }
  const { minPages } = findMemoryImport(bytes);
  const memory = new WebAssembly.Memory({ initial: minPages, maximum: MAX_PAGES, shared: platform.sharedMemory });
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const probe = (instance.exports as { relaxed_probe?: (seed: number) => number }).relaxed_probe;
  if (!probe) return 'relaxed build has no relaxed_probe export';
  for (const seed of PROBE_SEEDS) {
    const got = probe(seed);
    const want = expectedRelaxedProbe(seed);
    if (got !== want) return `relaxed SIMD computes wrong results here (probe(${seed}) = ${got}, expected ${want})`;
  }
  return { module, bytes };
}

export async function loadPlatform(): Promise<KernelPlatform> {
  const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string' &&
    typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === 'undefined';
  if (isNode) {
    // Hidden from bundlers: browser builds never include the Node host.
    const nodeHost = './kernel-platform-node.ts';
    const mod = (await import(/* @vite-ignore */ nodeHost)) as typeof import('./kernel-platform-node.ts');
    return mod.nodePlatform;
  }
  return (await import('./kernel-platform-browser.ts')).browserPlatform;
}

export interface KernelModule {
  build: KernelBuild;
  module: WebAssembly.Module;
  /** The pages the module's memory import asks for at least. */
  minPages: number;
}

/** The build to run here: relaxed when requested or 'auto' and its probe passes, else SIMD128. */
export async function loadKernelModule(platform: KernelPlatform, requested: 'auto' | KernelBuild): Promise<KernelModule> {
  if (requested !== 'auto' && !KERNEL_BUILDS.includes(requested)) {
    throw new RangeError(`unknown kernel build ${JSON.stringify(requested)}: use 'auto', ${KERNEL_BUILDS.map((b) => `'${b}'`).join(' or ')}`);
  }
  if (requested !== 'simd128') {
    const probed = await probeRelaxed(platform);
    if (typeof probed !== 'string') return { build: 'relaxed', module: probed.module, minPages: findMemoryImport(probed.bytes).minPages };
    if (requested === 'relaxed') throw new Error(`build 'relaxed' requested but unusable: ${probed}`);
  }
  let bytes = await platform.wasmBytes('simd128');
  if (!platform.sharedMemory) bytes = withUnsharedMemory(bytes);
  try {
    const module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
    return { build: 'simd128', module, minPages: findMemoryImport(bytes).minPages };
  } catch (e) {
    throw new Error(`the kernels need WebAssembly SIMD128 and threads support: ${e instanceof Error ? e.message : String(e)}`);
  }
}
