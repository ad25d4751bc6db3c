// TypeScript binding of the wasm kernels (wasm/*.c).
//
// One WebAssembly.Memory (shared when the host allows it, at most 4 GiB) holds
// everything: weights, KV cache, activations, scratch. Every pointer below is a
// byte offset into it, handed out by `alloc`. The caller thread (this one) runs
// its share of each threaded kernel and waits on atomics for the pool threads,
// so in a browser the kernels must only be used inside a Worker.
import { GGML_TYPE_INFO } from '../gguf/ggml-types.ts';
import type { KernelBuild, KernelPlatform, KernelWorkerHandle } from './kernel-platform.ts';

export type { KernelBuild } from './kernel-platform.ts';

/**
 * Weight formats `matmul` and `getRow` accept: ggml type ids, and the in-memory layouts
 * `repack` gives: Q4_0x4 (Q4_0 matrices) on both builds, Q6_Kx (Q6_K) on the relaxed build,
 * Q4_Kx (Q4_K) on the SIMD128 build; see wasm/quants.h.
 */
export const WeightType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q8_0: 8,
  Q4_K: 12,
  Q6_K: 14,
  Q4_0x4: 1002,
  Q4_Kx: 1012,
  Q6_Kx: 1014,
} as const;
export type WeightType = (typeof WeightType)[keyof typeof WeightType];

interface WeightLayout { name: string; blockSize: number; blockBytes: number }
/** The layouts only `repack` makes (Q4_0x4: 4 Q4_0 blocks; Q4_Kx, Q6_Kx: a Q4_K, Q6_K block). */
const REPACKED_LAYOUTS: ReadonlyMap<number, WeightLayout> = new Map([
  [WeightType.Q4_0x4, { name: 'Q4_0x4', blockSize: 128, blockBytes: 72 }],
  [WeightType.Q4_Kx, { name: 'Q4_Kx', blockSize: 256, blockBytes: 144 }],
  [WeightType.Q6_Kx, { name: 'Q6_Kx', blockSize: 256, blockBytes: 210 }],
]);
/** The weight types a GGUF file may hold for the kernels (every WeightType but the repacked ones). */
export const GGUF_WEIGHT_TYPES: ReadonlySet<number> = new Set(Object.values(WeightType).filter((t) => !REPACKED_LAYOUTS.has(t)));
/** Elements and bytes per block of each weight format. */
const WEIGHT_LAYOUTS: ReadonlyMap<number, WeightLayout> = new Map(
  Object.values(WeightType).map((t) => [t, REPACKED_LAYOUTS.get(t) ?? GGML_TYPE_INFO[t as keyof typeof GGML_TYPE_INFO]]),
);

export interface KernelOptions {
  /** Pool threads including the calling one; default: all cores. Forced to 1 without shared
   * memory (no cross-origin isolation) and on a page's main thread (it may not block). */
  threads?: number;
  /** 'auto' (default) uses relaxed SIMD when a known-answer probe passes, else SIMD128. */
  build?: 'auto' | KernelBuild;
  /** Initial memory size; it grows on demand up to 4 GiB. Default 16 MiB. */
  initialBytes?: number;
}

/** One matrix of a `matmulMulti`: dst[t*rows + r] = sum_c W[r, c] * src[t*cols + c]. */
export interface MatmulTarget {
  dst: number;
  w: number;
  type: WeightType;
  rows: number;
}

export interface Kernels {
  readonly memory: WebAssembly.Memory;
  readonly build: KernelBuild;
  readonly threads: number;
  /** First byte after the module's own data; `alloc` starts here. */
  readonly heapBase: number;
  /** End of the last allocation. */
  readonly allocatedBytes: number;

  /** Bump allocation of `bytes` aligned to `align` (a power of two); grows the memory. Never freed. */
  alloc(bytes: number, align?: number): number;
  /** Views of the whole memory, re-created after growth (take a fresh one after any alloc). */
  bytes(): Uint8Array;
  f32(): Float32Array;
  i32(): Int32Array;
  u16(): Uint16Array;

  /** Bytes of one weight row of `cols` elements. */
  rowBytes(wtype: WeightType, cols: number): number;
  /**
   * Rewrites a matrix in place into the layout this build's kernels read fastest and returns
   * the type to use for it from then on (`wtype` when nothing changed). Both builds turn Q4_0
   * into Q4_0x4 (rows of a multiple of 128 columns, finite scales); the relaxed build Q6_K into
   * Q6_Kx, the SIMD128 build Q4_K into Q4_Kx.
   */
  repack(w: number, wtype: WeightType, rows: number, cols: number): WeightType;
  /** dst[t*rows + r] = sum_c W[r, c] * src[t*cols + c]; W in GGUF layout or as `repack` left it (rows contiguous). */
  matmul(dst: number, w: number, wtype: WeightType, rows: number, cols: number, src: number, nTokens?: number): void;
  /**
   * The products of one input `src` ([nTokens][cols]) with up to 4 matrices (e.g. Q, K and V),
   * each exactly as `matmul` gives it: the input is quantized once and all run as one job.
   */
  matmulMulti(targets: readonly MatmulTarget[], cols: number, src: number, nTokens?: number): void;
  /** Same result through the scalar reference kernels, single-threaded (tests); GGUF types only. */
  matmulRef(dst: number, w: number, wtype: WeightType, rows: number, cols: number, src: number, nTokens?: number): void;
  /** dst[0..cols) = dequantized row `row` of W. */
  getRow(dst: number, w: number, wtype: WeightType, cols: number, row: number): void;
  /** Per row of n: dst = src / sqrt(mean(src^2) + eps) * weight. dst may equal src. */
  rmsnorm(dst: number, src: number, weight: number, n: number, nRows: number, eps: number): void;
  /** NEOX RoPE in place on x [nTokens][nHeads][headDim]; positions: int32[nTokens]. */
  ropeNeox(x: number, nTokens: number, nHeads: number, headDim: number, positions: number, thetaBase: number): void;
  /** gate = silu(gate) * up. */
  siluMul(gate: number, up: number, n: number): void;
  /** dst += src. */
  add(dst: number, src: number, n: number): void;
  /** f16 cache [pos][kvDim] (kvDim = nKvHeads*headDim): rows k, v [nTokens][kvDim] go to positions startPos... */
  kvStore(cacheK: number, cacheV: number, k: number, v: number, nTokens: number, startPos: number, kvDim: number): void;
  /** Causal GQA over the f16 cache: out, q [nTokens][nHeads][headDim]; token t sees positions 0..startPos+t.
   * headDim a multiple of 8; scale defaults to 1/sqrt(headDim). Rounds q to f16 in place. */
  attention(out: number, q: number, cacheK: number, cacheV: number, nTokens: number, startPos: number,
    nHeads: number, nKvHeads: number, headDim: number, scale?: number): void;
  /** The kernels' expf (scalar) and its f32x4 version over an array (tests). */
  expf(x: number): number;
  expfVec(dst: number, src: number, n: number): void;

  /** Work items each pool thread ran since the previous call (index 0 = the calling thread). */
  poolStats(): number[];

  /** Stops the pool threads. The memory stays readable. */
  dispose(): void;
}

interface KernelExports {
  __stack_pointer: WebAssembly.Global;
  __heap_base: WebAssembly.Global;
  kernels_init(): void;
  kernels_build_is_relaxed(): number;
  relaxed_probe?: (seed: number) => number;
  pool_init(threads: number): void;
  pool_shutdown(): void;
  pool_items_taken(thread: number): number;
  row_bytes(wtype: number, cols: number): number;
  matmul_scratch_bytes(wtype: number, cols: number, nTokens: number): number;
  matmul(dst: number, w: number, wtype: number, rows: number, cols: number, src: number, nTokens: number, scratch: number): number;
  matmul_ref(dst: number, w: number, wtype: number, rows: number, cols: number, src: number, nTokens: number, scratch: number): number;
  matmul_multi(targets: number, nTargets: number, cols: number, src: number, nTokens: number, scratch: number): number;
  get_row(dst: number, w: number, wtype: number, cols: number, row: number): number;
  repack_weights(w: number, wtype: number, rows: number, cols: number): number;
  rmsnorm(dst: number, src: number, weight: number, n: number, nRows: number, eps: number): void;
  rope_neox(x: number, nTokens: number, nHeads: number, headDim: number, positions: number, thetaScale: number, scratch: number): number;
  silu_mul(gate: number, up: number, n: number): void;
  add(dst: number, src: number, n: number): void;
  kv_store(cacheK: number, cacheV: number, k: number, v: number, nTokens: number, startPos: number, kvDim: number): void;
  attention_scratch_bytes(nTokens: number, startPos: number, nHeads: number, nKvHeads: number, headDim: number): number;
  attention(out: number, q: number, cacheK: number, cacheV: number, nTokens: number, startPos: number, nHeads: number,
    nKvHeads: number, headDim: number, scale: number, scratch: number): number;
  kernel_expf(x: number): number;
  expf_vec(dst: number, src: number, n: number): void;
}

/** MAX_TARGETS in wasm/matmul.c. */
const MAX_MATMUL_TARGETS = 4;
const PAGE = 65536;
const MAX_PAGES = 65536;
/** wasm32 addresses: 4 GiB. */
export const MAX_MEMORY_BYTES = PAGE * MAX_PAGES;
const WORKER_STACK_BYTES = 256 * 1024;
const DEFAULT_INITIAL_BYTES = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Module bytes: the memory import's limits, and a non-shared variant

interface MemoryImport {
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
  const probe = (instance.exports as unknown as KernelExports).relaxed_probe;
  if (!probe) return 'relaxed build has no relaxed_probe export';
  for (const seed of PROBE_SEEDS) {
    const got = probe(seed);
    const want = expectedRelaxedProbe(seed);
    if (got !== want) return `relaxed SIMD computes wrong results here (probe(${seed}) = ${got}, expected ${want})`;
  }
  return { module, bytes };
}

async function loadPlatform(): Promise<KernelPlatform> {
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

// ---------------------------------------------------------------------------

export async function createKernels(options: KernelOptions = {}, platformOverride?: KernelPlatform): Promise<Kernels> {
  const platform = platformOverride ?? (await loadPlatform());
  const requested = options.build ?? 'auto';

  let build: KernelBuild = 'simd128';
  let bytes: Uint8Array | undefined;
  let module: WebAssembly.Module | undefined;
  if (requested !== 'simd128') {
    const probed = await probeRelaxed(platform);
    if (typeof probed !== 'string') {
      build = 'relaxed';
      ({ bytes, module } = probed);
    } else if (requested === 'relaxed') {
      throw new Error(`build 'relaxed' requested but unusable: ${probed}`);
    }
  }
  if (!module || !bytes) {
    bytes = await platform.wasmBytes('simd128');
    if (!platform.sharedMemory) bytes = withUnsharedMemory(bytes);
    try {
      module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
    } catch (e) {
      throw new Error(`the kernels need WebAssembly SIMD128 and threads support: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  // The pool needs shared memory, and a caller thread that may wait for its workers.
  const threads = platform.sharedMemory && platform.canBlock
    ? Math.max(1, Math.min(Math.floor(options.threads ?? platform.hardwareThreads()), 256))
    : 1;

  const { minPages } = findMemoryImport(bytes);
  const initialBytes = options.initialBytes ?? DEFAULT_INITIAL_BYTES;
  if (!(initialBytes >= 0 && initialBytes <= MAX_MEMORY_BYTES)) {
    throw new RangeError(`initialBytes must be between 0 and ${MAX_MEMORY_BYTES}, got ${initialBytes}`);
  }
  const memory = new WebAssembly.Memory({
    initial: Math.max(minPages, Math.ceil(initialBytes / PAGE)),
    maximum: MAX_PAGES,
    shared: platform.sharedMemory,
  });
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const exports = instance.exports as unknown as KernelExports;
  exports.kernels_init();
  exports.pool_init(threads);

  const kernels = new WasmKernels(memory, exports, build, threads);
  const workers: KernelWorkerHandle[] = [];
  try {
    for (let i = 1; i < threads; i++) {
      const stackBase = kernels.alloc(WORKER_STACK_BYTES, 16);
      workers.push(platform.startWorker({ module, memory, threadIndex: i, stackTop: stackBase + WORKER_STACK_BYTES }));
    }
    await Promise.all(workers.map((w) => w.ready));
  } catch (e) {
    for (const w of workers) w.terminate();
    throw e;
  }
  kernels.attachWorkers(workers);
  return kernels;
}

// ---------------------------------------------------------------------------

class WasmKernels implements Kernels {
  readonly heapBase: number;
  private top: number;
  private workers: KernelWorkerHandle[] = [];
  private disposed = false;
  private views: { length: number; u8: Uint8Array; f32: Float32Array; i32: Int32Array; u16: Uint16Array } | undefined;
  // Scratch areas, re-allocated larger when a call needs more.
  private scratch = { ptr: 0, bytes: 0 };
  private targetsArea = { ptr: 0, bytes: 0 };
  private attnScratch = { ptr: 0, bytes: 0 };
  private ropeScratch = { ptr: 0, bytes: 0 };

  constructor(
    readonly memory: WebAssembly.Memory,
    private readonly x: KernelExports,
    readonly build: KernelBuild,
    readonly threads: number,
  ) {
    this.heapBase = alignUp(x.__heap_base.value as number, 64);
    this.top = this.heapBase;
  }

  attachWorkers(workers: KernelWorkerHandle[]): void {
    this.workers = workers;
  }

  get allocatedBytes(): number {
    return this.top;
  }

  alloc(bytes: number, align = 64): number {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`alloc: bytes must be a non-negative integer, got ${bytes}`);
    if (!Number.isSafeInteger(align) || align <= 0 || (align & (align - 1)) !== 0) {
      throw new RangeError(`alloc: align must be a power of two, got ${align}`);
    }
    const start = alignUp(this.top, align);
    const end = start + bytes;
    if (end > MAX_MEMORY_BYTES) {
      throw new RangeError(
        `alloc(${bytes}) does not fit: it would end at byte ${end}, past the 4 GiB (${MAX_MEMORY_BYTES} bytes) ` +
          `limit of wasm32 memory; ${this.top} bytes are already allocated, ${MAX_MEMORY_BYTES - start} remain`);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE);
      try {
        this.memory.grow(pages);
      } catch (e) {
        throw new RangeError(
          `alloc(${bytes}): could not grow wasm memory from ${have} to ${have + pages * PAGE} bytes ` +
            `(${e instanceof Error ? e.message : String(e)})`);
      }
    }
    this.top = end;
    return start;
  }

  private view() {
    const buffer = this.memory.buffer;
    if (!this.views || this.views.length !== buffer.byteLength) {
      this.views = {
        length: buffer.byteLength,
        u8: new Uint8Array(buffer),
        f32: new Float32Array(buffer),
        i32: new Int32Array(buffer),
        u16: new Uint16Array(buffer),
      };
    }
    return this.views;
  }

  bytes(): Uint8Array { return this.view().u8; }
  f32(): Float32Array { return this.view().f32; }
  i32(): Int32Array { return this.view().i32; }
  u16(): Uint16Array { return this.view().u16; }

  rowBytes(wtype: WeightType, cols: number): number {
    const layout = WEIGHT_LAYOUTS.get(wtype);
    if (!layout) throw new RangeError(`unsupported weight type ${wtype}`);
    const { name, blockSize, blockBytes } = layout;
    if (!Number.isInteger(cols) || cols <= 0 || cols % blockSize !== 0) {
      throw new RangeError(`${name} rows need a positive multiple of ${blockSize} columns, got ${cols}`);
    }
    return (cols / blockSize) * blockBytes;
  }

  repack(w: number, wtype: WeightType, rows: number, cols: number): WeightType {
    this.live();
    positive('rows', rows);
    this.range('repack weights', w, rows * this.rowBytes(wtype, cols));
    const type = this.x.repack_weights(w, wtype, rows, cols);
    check(type, 'repack_weights');
    return type as WeightType;
  }

  matmul(dst: number, w: number, wtype: WeightType, rows: number, cols: number, src: number, nTokens = 1): void {
    this.runMatmul('matmul', dst, w, wtype, rows, cols, src, nTokens);
  }

  matmulMulti(targets: readonly MatmulTarget[], cols: number, src: number, nTokens = 1): void {
    this.live();
    if (targets.length < 1 || targets.length > MAX_MATMUL_TARGETS) {
      throw new RangeError(`matmulMulti takes 1 to ${MAX_MATMUL_TARGETS} matrices, got ${targets.length}`);
    }
    positive('nTokens', nTokens);
    this.range('matmul src', src, nTokens * cols * 4);
    const need = Math.max(...targets.map((t) => this.checkMatmulTarget(t, cols, nTokens)));
    const scratch = this.ensure(this.scratch, need);
    // struct matmul_target { float *dst; const uint8_t *w; int wtype, rows; } in wasm memory
    const area = this.ensure(this.targetsArea, MAX_MATMUL_TARGETS * 16);
    const i32 = this.i32();
    targets.forEach((t, i) => i32.set([t.dst, t.w, t.type, t.rows], area / 4 + 4 * i));
    check(this.x.matmul_multi(area, targets.length, cols, src, nTokens, scratch), 'matmul_multi');
  }

  matmulRef(dst: number, w: number, wtype: WeightType, rows: number, cols: number, src: number, nTokens = 1): void {
    this.runMatmul('matmul_ref', dst, w, wtype, rows, cols, src, nTokens);
  }

  private runMatmul(fn: 'matmul' | 'matmul_ref', dst: number, w: number, wtype: WeightType, rows: number, cols: number,
    src: number, nTokens: number): void {
    this.live();
    positive('nTokens', nTokens);
    this.range('matmul src', src, nTokens * cols * 4);
    const scratch = this.ensure(this.scratch, this.checkMatmulTarget({ dst, w, type: wtype, rows }, cols, nTokens));
    check(this.x[fn](dst, w, wtype, rows, cols, src, nTokens, scratch), fn);
  }

  /** Checks one matrix and its output against the memory; returns the scratch its product needs. */
  private checkMatmulTarget(t: MatmulTarget, cols: number, nTokens: number): number {
    const rb = this.rowBytes(t.type, cols);
    positive('rows', t.rows);
    this.range('matmul weights', t.w, t.rows * rb);
    this.range('matmul dst', t.dst, nTokens * t.rows * 4);
    const need = this.x.matmul_scratch_bytes(t.type, cols, nTokens);
    check(need, 'matmul_scratch_bytes');
    return need;
  }

  getRow(dst: number, w: number, wtype: WeightType, cols: number, row: number): void {
    this.live();
    const rb = this.rowBytes(wtype, cols);
    if (!Number.isInteger(row) || row < 0) throw new RangeError(`getRow: row must be a non-negative integer, got ${row}`);
    this.range('getRow weights', w, (row + 1) * rb);
    this.range('getRow dst', dst, cols * 4);
    check(this.x.get_row(dst, w, wtype, cols, row), 'get_row');
  }

  rmsnorm(dst: number, src: number, weight: number, n: number, nRows: number, eps: number): void {
    this.live();
    positive('n', n);
    positive('nRows', nRows);
    this.range('rmsnorm src', src, n * nRows * 4);
    this.range('rmsnorm dst', dst, n * nRows * 4);
    this.range('rmsnorm weight', weight, n * 4);
    this.x.rmsnorm(dst, src, weight, n, nRows, eps);
  }

  ropeNeox(x: number, nTokens: number, nHeads: number, headDim: number, positions: number, thetaBase: number): void {
    this.live();
    positive('nTokens', nTokens);
    positive('nHeads', nHeads);
    if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) throw new RangeError(`headDim must be a positive even integer, got ${headDim}`);
    this.range('rope x', x, nTokens * nHeads * headDim * 4);
    this.range('rope positions', positions, nTokens * 4);
    // llama.cpp: theta_scale = powf(freq_base, -2.0f / n_dims), in float.
    const thetaScale = Math.fround(Math.pow(thetaBase, Math.fround(-2 / headDim)));
    const scratch = this.ensure(this.ropeScratch, headDim * 4);
    check(this.x.rope_neox(x, nTokens, nHeads, headDim, positions, thetaScale, scratch), 'rope_neox');
  }

  siluMul(gate: number, up: number, n: number): void {
    this.live();
    this.range('siluMul gate', gate, n * 4);
    this.range('siluMul up', up, n * 4);
    this.x.silu_mul(gate, up, n);
  }

  add(dst: number, src: number, n: number): void {
    this.live();
    this.range('add dst', dst, n * 4);
    this.range('add src', src, n * 4);
    this.x.add(dst, src, n);
  }

  kvStore(cacheK: number, cacheV: number, k: number, v: number, nTokens: number, startPos: number, kvDim: number): void {
    this.live();
    positive('nTokens', nTokens);
    positive('kvDim', kvDim);
    if (!Number.isInteger(startPos) || startPos < 0) throw new RangeError(`startPos must be a non-negative integer, got ${startPos}`);
    this.range('kvStore cacheK', cacheK, (startPos + nTokens) * kvDim * 2);
    this.range('kvStore cacheV', cacheV, (startPos + nTokens) * kvDim * 2);
    this.range('kvStore k', k, nTokens * kvDim * 4);
    this.range('kvStore v', v, nTokens * kvDim * 4);
    this.x.kv_store(cacheK, cacheV, k, v, nTokens, startPos, kvDim);
  }

  attention(out: number, q: number, cacheK: number, cacheV: number, nTokens: number, startPos: number,
    nHeads: number, nKvHeads: number, headDim: number, scale = 1 / Math.sqrt(headDim)): void {
    this.live();
    positive('nTokens', nTokens);
    positive('nHeads', nHeads);
    positive('nKvHeads', nKvHeads);
    if (nHeads % nKvHeads !== 0) throw new RangeError(`nHeads (${nHeads}) must be a multiple of nKvHeads (${nKvHeads})`);
    if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 8 !== 0) throw new RangeError(`headDim must be a positive multiple of 8, got ${headDim}`);
    if (!Number.isInteger(startPos) || startPos < 0) throw new RangeError(`startPos must be a non-negative integer, got ${startPos}`);
    const kvBytes = (startPos + nTokens) * nKvHeads * headDim * 2;
    this.range('attention cacheK', cacheK, kvBytes);
    this.range('attention cacheV', cacheV, kvBytes);
    this.range('attention q', q, nTokens * nHeads * headDim * 4);
    this.range('attention out', out, nTokens * nHeads * headDim * 4);
    const need = this.x.attention_scratch_bytes(nTokens, startPos, nHeads, nKvHeads, headDim);
    check(need, 'attention_scratch_bytes');
    const scratch = this.ensure(this.attnScratch, need);
    check(this.x.attention(out, q, cacheK, cacheV, nTokens, startPos, nHeads, nKvHeads, headDim, scale, scratch), 'attention');
  }

  expf(x: number): number {
    return this.x.kernel_expf(x);
  }

  expfVec(dst: number, src: number, n: number): void {
    this.live();
    this.range('expfVec src', src, n * 4);
    this.range('expfVec dst', dst, n * 4);
    this.x.expf_vec(dst, src, n);
  }

  poolStats(): number[] {
    return Array.from({ length: this.threads }, (_, i) => this.x.pool_items_taken(i));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.x.pool_shutdown();
    for (const w of this.workers) w.terminate();
    this.workers = [];
  }

  private live(): void {
    if (this.disposed) throw new Error('kernels used after dispose()');
  }

  private range(what: string, ptr: number, bytes: number): void {
    if (!Number.isInteger(ptr) || ptr < 0 || ptr + bytes > this.memory.buffer.byteLength) {
      throw new RangeError(`${what}: [${ptr}, ${ptr + bytes}) is outside the ${this.memory.buffer.byteLength}-byte memory`);
    }
  }

  private ensure(area: { ptr: number; bytes: number }, bytes: number): number {
    if (bytes > area.bytes) {
      // Grow geometrically: a bump allocator cannot free the old area.
      const size = Math.max(bytes, area.bytes * 2, 64 * 1024);
      area.ptr = this.alloc(size, 64);
      area.bytes = size;
    }
    return area.ptr;
  }
}

function alignUp(value: number, align: number): number {
  return Math.ceil(value / align) * align;
}

function positive(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}

function check(status: number, fn: string): void {
  if (status < 0) throw new RangeError(`${fn} rejected its arguments (status ${status})`);
}
