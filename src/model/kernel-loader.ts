// Finding and compiling the kernel module: which build this host can run (the relaxed one
// only after its known-answer probe passes; its memory64 variant only where the host has
// memory64), the module's memory import, rewritten to a non-shared memory for hosts without
// SharedArrayBuffer, and, for memory64, its exports adapted to take and give plain numbers.
// kernels.ts instantiates what this gives.
import { importCode } from '../lazy-code.ts';
import { KERNEL_BUILDS, type KernelBuild, type KernelPlatform } from './kernel-platform.ts';

/** Bytes of a wasm memory page, and the most pages wasm32 can address (4 GiB). */
export const PAGE = 65536;
export const MAX_PAGES = 65536;
/** The most pages of a memory64 memory: 16 GiB, the limit browsers put on one (the JS API's). */
export const MAX_PAGES_64 = 262144;

// Module bytes: the memory import's limits, and a non-shared variant

export interface MemoryImport {
  minPages: number;
  /** Offset of the limits flag byte (0x03 = shared with maximum; | 0x04 for a 64-bit address). */
  flagOffset: number;
  shared: boolean;
  memory64: boolean;
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

/** The module's sections after the header (magic + version): id and where its content lies. */
function* sections(bytes: Uint8Array): Generator<{ id: number; start: number; end: number }> {
  let pos = 8;
  while (pos < bytes.length) {
    const id = bytes[pos++]!;
    let size: number;
    [size, pos] = readLeb(bytes, pos);
    yield { id, start: pos, end: pos + size };
    pos += size;
  }
}

/** The import-section entry at `pos`: its kind, a function's type index, where a memory's limits
 * start, and where the next entry starts. */
function readImport(bytes: Uint8Array, pos: number): { kind: number; typeIndex: number; limitsAt: number; next: number } {
  let len: number;
  [len, pos] = readLeb(bytes, pos);
  pos += len;  // module name
  [len, pos] = readLeb(bytes, pos);
  pos += len;  // field name
  const kind = bytes[pos++]!;
  const limitsAt = pos;
  let typeIndex = -1;
  if (kind === 0) [typeIndex, pos] = readLeb(bytes, pos);   // function: type index
  else if (kind === 1) pos = skipLimits(bytes, pos + 1);    // table: reftype + limits
  else if (kind === 2) pos = skipLimits(bytes, pos);        // memory: limits
  else if (kind === 3) pos += 2;                            // global: type + mutability
  else throw new Error(`unexpected import kind ${kind}`);
  return { kind, typeIndex, limitsAt, next: pos };
}

/** Finds `env.memory` in the import section. */
export function findMemoryImport(bytes: Uint8Array): MemoryImport {
  for (const { id, start } of sections(bytes)) {
    if (id !== 2) continue;
    let [count, pos] = readLeb(bytes, start);
    for (; count > 0; count--) {
      const entry = readImport(bytes, pos);
      if (entry.kind === 2) {
        const flags = bytes[entry.limitsAt]!;
        const [minPages] = readLeb(bytes, entry.limitsAt + 1);
        return { minPages, flagOffset: entry.limitsAt, shared: (flags & 2) !== 0, memory64: (flags & 4) !== 0 };
      }
      pos = entry.next;
    }
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
// memory64: the memory, and exports adapted to plain numbers

/** A memory for the module: memory64 ones take their sizes as BigInt (the JS API's `address: 'i64'`). */
export function createMemory(initialPages: number, shared: boolean, memory64: boolean): WebAssembly.Memory {
  if (!memory64) return new WebAssembly.Memory({ initial: initialPages, maximum: MAX_PAGES, shared });
  const descriptor = { initial: BigInt(initialPages), maximum: BigInt(MAX_PAGES_64), shared, address: 'i64' };
  return new WebAssembly.Memory(descriptor as unknown as WebAssembly.MemoryDescriptor);
}

/** Grows `memory` by `pages` (a memory64 memory counts them in BigInt). */
export function growMemory(memory: WebAssembly.Memory, pages: number, memory64: boolean): void {
  (memory.grow as (delta: number | bigint) => unknown)(memory64 ? BigInt(pages) : pages);
}

/** `(module (memory i64 1))`: validates only where the host has memory64. */
const MEMORY64_MODULE = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 3, 1, 4, 1]);

/** True when this host runs memory64 modules and its JS API makes their memories (`address: 'i64'`). */
export function hasMemory64(): boolean {
  try {
    if (!WebAssembly.validate(MEMORY64_MODULE)) return false;
    return createMemory(1, false, true).buffer.byteLength === PAGE;
  } catch {
    return false;  // an older API (`index: 'i64'`, number sizes) or none
  }
}

const I64 = 0x7e;

/** Per exported function of a module: its parameter and result value types. */
export function exportSignatures(bytes: Uint8Array): Map<string, { params: number[]; results: number[] }> {
  const types: { params: number[]; results: number[] }[] = [];
  const functionTypes: number[] = [];  // imported functions first, then defined ones
  const exported = new Map<string, number>();
  let pos = 0;
  const leb = (): number => {
    let value: number;
    [value, pos] = readLeb(bytes, pos);
    return value;
  };
  const vector = (): number[] => {
    const count = leb();
    pos += count;
    return Array.from(bytes.subarray(pos - count, pos));
  };
  for (const { id, start } of sections(bytes)) {
    pos = start;
    if (id === 1) {        // types
      for (let n = leb(); n > 0; n--) {
        if (bytes[pos++] !== 0x60) throw new Error('unexpected type form in the kernel module');
        types.push({ params: vector(), results: vector() });
      }
    } else if (id === 2) { // imports
      for (let n = leb(); n > 0; n--) {
        const entry = readImport(bytes, pos);
        if (entry.kind === 0) functionTypes.push(entry.typeIndex);
        pos = entry.next;
      }
    } else if (id === 3) { // functions
      for (let n = leb(); n > 0; n--) functionTypes.push(leb());
    } else if (id === 7) { // exports
      for (let n = leb(); n > 0; n--) {
        const name = new TextDecoder().decode(Uint8Array.from(vector()));
        const kind = bytes[pos++];
        const index = leb();
        if (kind === 0) exported.set(name, index);
      }
    }
  }
  const signatures = new Map<string, { params: number[]; results: number[] }>();
  for (const [name, index] of exported) signatures.set(name, types[functionTypes[index]!]!);
  return signatures;
}

/**
 * The module's exports with i64 parameters and results (memory64's pointers and sizes) taken and
 * given as plain numbers, so one binding serves both address widths; globals pass through (an
 * i64 global's value is a BigInt).
 */
export function numberExports(exports: WebAssembly.Exports, bytes: Uint8Array): Record<string, unknown> {
  const adapted: Record<string, unknown> = { ...exports };
  for (const [name, { params, results }] of exportSignatures(bytes)) {
    const fn = exports[name] as (...args: unknown[]) => unknown;
    const wide = params.map((t) => t === I64);
    const wideResult = results[0] === I64;
    if (!wide.includes(true) && !wideResult) continue;
    adapted[name] = (...args: number[]) => {
      const result = fn(...args.map((a, i) => (wide[i] ? BigInt(a) : a)));
      return wideResult ? Number(result) : result;
    };
  }
  return adapted;
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

/** Compiles a relaxed build (wasm32 or memory64) and runs its probe; returns why not when it cannot be used. */
async function probeRelaxed(platform: KernelPlatform, file: 'relaxed' | 'relaxed64'): Promise<KernelModule | string> {
  let bytes: Uint8Array;
  let module: WebAssembly.Module;
  try {
    bytes = await platform.wasmBytes(file);
    if (!platform.sharedMemory) bytes = withUnsharedMemory(bytes);
    module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (e) {
    return `${file} build does not compile here (${e instanceof Error ? e.message : String(e)})`;
  }
  const { minPages, memory64 } = findMemoryImport(bytes);
  const memory = createMemory(minPages, platform.sharedMemory, memory64);
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const probe = (instance.exports as { relaxed_probe?: (seed: number) => number }).relaxed_probe;
  if (!probe) return 'relaxed build has no relaxed_probe export';
  for (const seed of PROBE_SEEDS) {
    const got = probe(seed);
    const want = expectedRelaxedProbe(seed);
    if (got !== want) return `relaxed SIMD computes wrong results here (probe(${seed}) = ${got}, expected ${want})`;
  }
  return { build: 'relaxed', module, bytes, minPages, memory64 };
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
  return (await importCode('The kernels\' host', () => import('./kernel-platform-browser.ts'))).browserPlatform;
}

export interface KernelModule {
  build: KernelBuild;
  module: WebAssembly.Module;
  /** The module's bytes as compiled (its export signatures are read from them). */
  bytes: Uint8Array;
  /** The pages the module's memory import asks for at least. */
  minPages: number;
  /** A memory64 (wasm64) module: 8-byte pointers, a memory of up to 16 GiB. */
  memory64: boolean;
}

const memory64Probes = new WeakMap<KernelPlatform, Promise<KernelModule | string>>();

/** The memory64 module if this host can run it (memory64, and its relaxed probe passing), else why not. Probed once per platform. */
function memory64Module(platform: KernelPlatform): Promise<KernelModule | string> {
  let probe = memory64Probes.get(platform);
  if (!probe) {
    probe = hasMemory64() ? probeRelaxed(platform, 'relaxed64') : Promise.resolve('this browser has no WebAssembly memory64');
    memory64Probes.set(platform, probe);
  }
  return probe;
}

/** The build to run here: relaxed when requested or 'auto' and its probe passes, else SIMD128.
 * With `memory64`, the memory64 module (relaxed only), or an error saying why it cannot run. */
export async function loadKernelModule(platform: KernelPlatform, requested: 'auto' | KernelBuild, memory64 = false): Promise<KernelModule> {
  if (requested !== 'auto' && !KERNEL_BUILDS.includes(requested)) {
    throw new RangeError(`unknown kernel build ${JSON.stringify(requested)}: use 'auto', ${KERNEL_BUILDS.map((b) => `'${b}'`).join(' or ')}`);
  }
  if (memory64) {
    if (requested === 'simd128') throw new Error('memory64 kernels exist only as the relaxed-SIMD build');
    const probed = await memory64Module(platform);
    if (typeof probed === 'string') throw new Error(`memory64 kernels requested but unusable: ${probed}`);
    return probed;
  }
  if (requested !== 'simd128') {
    const probed = await probeRelaxed(platform, 'relaxed');
    if (typeof probed !== 'string') return probed;
    if (requested === 'relaxed') throw new Error(`build 'relaxed' requested but unusable: ${probed}`);
  }
  let bytes = await platform.wasmBytes('simd128');
  if (!platform.sharedMemory) bytes = withUnsharedMemory(bytes);
  try {
    const module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
    return { build: 'simd128', module, bytes, minPages: findMemoryImport(bytes).minPages, memory64: false };
  } catch (e) {
    throw new Error(`the kernels need WebAssembly SIMD128 and threads support: ${e instanceof Error ? e.message : String(e)}`);
  }
}
