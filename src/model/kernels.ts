// TypeScript binding of the wasm kernels (wasm/*.c).
//
// One WebAssembly.Memory (shared when the host allows it, at most 4 GiB; 16 GiB
// with the memory64 build) holds everything: weights, KV cache, activations,
// scratch. Every pointer below is a byte offset into it, handed out by `alloc`,
// a plain number for both address widths. The caller thread (this one) runs
// its share of each threaded kernel and waits on atomics for the pool threads,
// so in a browser the kernels must only be used inside a Worker.
import {
  createMemory, growMemory, loadKernelModule, loadPlatform, MAX_PAGES, MAX_PAGES_64, numberExports, PAGE,
} from './kernel-loader.ts';
import type { KernelBuild, KernelPlatform, KernelWorkerHandle } from './kernel-platform.ts';
// In a browser worker: from its first moment, listen for the page offering to start our threads.
import './kernel-threads.ts';

export { KERNEL_BUILDS, type KernelBuild } from './kernel-platform.ts';

/**
 * Weight formats: ggml type ids, and the in-memory layouts `repack` makes (ids of
 * wasm/quants.h). Which of them a build reads, and what it repacks into what, is the build's own
 * table (`Kernels.weightLayouts`).
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

/** The layouts only `repack` makes; a GGUF file holds the other types. */
const REPACKED_TYPES: ReadonlySet<number> = new Set([WeightType.Q4_0x4, WeightType.Q4_Kx, WeightType.Q6_Kx]);
/** The weight types a GGUF file may hold for the kernels (every WeightType but the repacked ones). */
export const GGUF_WEIGHT_TYPES: ReadonlySet<number> = new Set(Object.values(WeightType).filter((t) => !REPACKED_TYPES.has(t)));
const WEIGHT_TYPE_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(WeightType).map(([name, t]) => [t, name]));

/** One entry of a build's weight-layout table (build_layouts in wasm/dot_*.c). */
export interface WeightLayout {
  name: string;
  /** Elements and bytes of one block; a row holds a whole number of blocks. */
  blockSize: number;
  blockBytes: number;
  /** The layout `repack` turns this one into on this build (itself when it keeps it). */
  packedType: WeightType;
}

export interface KernelOptions {
  /** Pool threads including the calling one; default: all cores. Forced to 1 without shared
   * memory (no cross-origin isolation) and on a page's main thread (it may not block). */
  threads?: number;
  /** 'auto' (default) uses relaxed SIMD when a known-answer probe passes, else SIMD128. */
  build?: 'auto' | KernelBuild;
  /** Initial memory size; it grows on demand up to 4 GiB (16 GiB with memory64). Default 16 MiB. */
  initialBytes?: number;
  /** The memory64 (wasm64) module, for memories past 4 GiB: relaxed SIMD only, where the host has
   * memory64 (hasMemory64) and the build's probe passes; default false (wasm32 runs faster where it fits). */
  memory64?: boolean;
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
  /** The memory64 module (8-byte pointers, up to 16 GiB) rather than wasm32's. */
  readonly memory64: boolean;
  /** The most bytes the memory can hold: 4 GiB, or 16 GiB with memory64. */
  readonly maxBytes: number;
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

  /** The weight layouts this build's kernels read, from the module's own table. */
  readonly weightLayouts: ReadonlyMap<WeightType, WeightLayout>;
  /** Bytes of one weight row of `cols` elements. */
  rowBytes(wtype: WeightType, cols: number): number;
  /**
   * Rewrites a matrix in place into the layout this build's kernels read fastest and returns
   * the type to use for it from then on: `weightLayouts.get(wtype).packedType`, or `wtype`
   * when the matrix does not qualify (Q4_0x4 needs rows of a multiple of 128 columns and finite
   * scales).
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
  /** q8_0 cache [pos][kvDim / 32] block_q8_0 (llama.cpp's layout, 34 bytes a block); kvDim a multiple of 32. */
  kvStoreQ8_0(cacheK: number, cacheV: number, k: number, v: number, nTokens: number, startPos: number, kvDim: number): void;
  /** Causal GQA over the q8_0 cache, as llama.cpp's flash attention reads one (q quantized to Q8_0, an
   * online softmax); headDim a multiple of 32. Leaves q as it is. */
  attentionQ8_0(out: number, q: number, cacheK: number, cacheV: number, nTokens: number, startPos: number,
    nHeads: number, nKvHeads: number, headDim: number, scale?: number): void;
  /**
   * Allocates now the scratch every attention call over a cache of up to `positions` positions
   * needs (the f16 kernel's rows of scores grow with the context), so that no later call allocates;
   * returns its bytes.
   */
  reserveAttention(cache: 'f16' | 'q8_0', positions: number, nHeads: number, nKvHeads: number, headDim: number): number;
  /** Each `block` values of nRows rows of `width` floats times the normalized Sylvester Hadamard matrix, in place. */
  hadamardRotate(x: number, nRows: number, width: number, block: number): void;
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
  pool_init(threads: number): void;
  pool_shutdown(): void;
  pool_items_taken(thread: number): number;
  layout_count(): number;
  layout_field(i: number, field: number): number;
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
  kv_store_q8_0(cacheK: number, cacheV: number, k: number, v: number, nTokens: number, startPos: number, kvDim: number): number;
  attention_q8_0_scratch_bytes(headDim: number): number;
  hadamard_rotate(x: number, nRows: number, width: number, block: number): number;
  attention_q8_0(out: number, q: number, cacheK: number, cacheV: number, nTokens: number, startPos: number, nHeads: number,
    nKvHeads: number, headDim: number, scale: number, scratch: number): number;
  attention(out: number, q: number, cacheK: number, cacheV: number, nTokens: number, startPos: number, nHeads: number,
    nKvHeads: number, headDim: number, scale: number, scratch: number): number;
  kernel_expf(x: number): number;
  expf_vec(dst: number, src: number, n: number): void;
}

/** MAX_TARGETS in wasm/matmul.c. */
const MAX_MATMUL_TARGETS = 4;
/** wasm32 addresses: 4 GiB. */
export const MAX_MEMORY_BYTES = PAGE * MAX_PAGES;
/** A memory64 memory: 16 GiB. */
export const MAX_MEMORY64_BYTES = PAGE * MAX_PAGES_64;

export { hasMemory64 } from './kernel-loader.ts';

/** How the KV cache holds keys and values: f16 (llama.cpp's default) or q8_0 (half the bytes). */
export type KvCacheType = 'f16' | 'q8_0';
export const KV_CACHE_TYPES: readonly KvCacheType[] = ['f16', 'q8_0'];

/** Bytes of one cache row of `kvDim` values (q8_0: blocks of 32 values and an f16 scale, 34 bytes). */
export function kvCacheRowBytes(type: KvCacheType, kvDim: number): number {
  return type === 'f16' ? kvDim * 2 : (kvDim / 32) * 34;
}
/**
 * The host would not give the kernels a memory of `bytes` (a phone's browser, a 32-bit one, or
 * one that limits WebAssembly memory): nothing is wrong with the model, the device has too little.
 */
export class MemoryAllocationError extends RangeError {
  override readonly name = 'MemoryAllocationError';

  constructor(readonly bytes: number, cause: unknown) {
    super(`could not get ${bytes} bytes of WebAssembly memory (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
  }
}

const WORKER_STACK_BYTES = 256 * 1024;
const DEFAULT_INITIAL_BYTES = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------

/** The pool needs shared memory, and a caller thread that may wait for its workers. */
function threadCount(platform: KernelPlatform, options: KernelOptions): number {
  return platform.sharedMemory && platform.canBlock
    ? Math.max(1, Math.min(Math.floor(options.threads ?? platform.hardwareThreads()), 256))
    : 1;
}

/** The pool threads (the calling one included) createKernels would start here with these options. */
export async function kernelThreadCount(options: KernelOptions = {}, platformOverride?: KernelPlatform): Promise<number> {
  return threadCount(platformOverride ?? (await loadPlatform()), options);
}

export async function createKernels(options: KernelOptions = {}, platformOverride?: KernelPlatform): Promise<Kernels> {
  const platform = platformOverride ?? (await loadPlatform());
  const requested = options.build ?? 'auto';

  const memory64 = options.memory64 ?? false;
  const kernelModule = await loadKernelModule(platform, requested, memory64);
  const { build, module, minPages } = kernelModule;
  const maxBytes = memory64 ? MAX_MEMORY64_BYTES : MAX_MEMORY_BYTES;

  const threads = threadCount(platform, options);

  const initialBytes = options.initialBytes ?? DEFAULT_INITIAL_BYTES;
  if (!(initialBytes >= 0 && initialBytes <= maxBytes)) {
    throw new RangeError(`initialBytes must be between 0 and ${maxBytes}, got ${initialBytes}`);
  }
  const initialPages = Math.max(minPages, Math.ceil(initialBytes / PAGE));
  let memory: WebAssembly.Memory;
  try {
    memory = createMemory(initialPages, platform.sharedMemory, memory64);
  } catch (e) {
    throw new MemoryAllocationError(initialPages * PAGE, e);
  }
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const exports = (memory64 ? numberExports(instance.exports, kernelModule.bytes) : instance.exports) as unknown as KernelExports;
  exports.kernels_init();
  exports.pool_init(threads);

  const kernels = new WasmKernels(memory, exports, build, threads, memory64);
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

/** The module's layout table; a type id this binding does not know means the two drifted apart. */
function readLayoutTable(x: KernelExports): Map<WeightType, WeightLayout> {
  const layouts = new Map<WeightType, WeightLayout>();
  for (let i = 0; i < x.layout_count(); i++) {
    const [type, blockSize, blockBytes, packedType] = [0, 1, 2, 3].map((f) => x.layout_field(i, f)) as [number, number, number, number];
    const name = WEIGHT_TYPE_NAMES.get(type);
    if (name === undefined || !WEIGHT_TYPE_NAMES.has(packedType)) {
      throw new Error(`the kernel module's layout table has type ${type} -> ${packedType}, unknown to WeightType: rebuild the wasm or update kernels.ts`);
    }
    layouts.set(type as WeightType, { name, blockSize, blockBytes, packedType: packedType as WeightType });
  }
  return layouts;
}

class WasmKernels implements Kernels {
  readonly heapBase: number;
  readonly weightLayouts: ReadonlyMap<WeightType, WeightLayout>;
  private top: number;
  private workers: KernelWorkerHandle[] = [];
  private disposed = false;
  private views: { length: number; u8: Uint8Array; f32: Float32Array; i32: Int32Array; u16: Uint16Array } | undefined;
  // Scratch areas, re-allocated larger when a call needs more.
  private scratch = { ptr: 0, bytes: 0 };
  private targetsArea = { ptr: 0, bytes: 0 };
  private attnScratch = { ptr: 0, bytes: 0 };
  private ropeScratch = { ptr: 0, bytes: 0 };

  readonly maxBytes: number;

  constructor(
    readonly memory: WebAssembly.Memory,
    private readonly x: KernelExports,
    readonly build: KernelBuild,
    readonly threads: number,
    readonly memory64: boolean,
  ) {
    this.maxBytes = memory64 ? MAX_MEMORY64_BYTES : MAX_MEMORY_BYTES;
    this.heapBase = alignUp(Number(x.__heap_base.value), 64);
    this.top = this.heapBase;
    this.weightLayouts = readLayoutTable(x);
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
    if (end > this.maxBytes) {
      throw new RangeError(
        `alloc(${bytes}) does not fit: it would end at byte ${end}, past the ${this.maxBytes / 2 ** 30} GiB (${this.maxBytes} bytes) ` +
          `limit of ${this.memory64 ? 'a memory64' : 'wasm32'} memory; ${this.top} bytes are already allocated, ${this.maxBytes - start} remain`);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE);
      try {
        growMemory(this.memory, pages, this.memory64);
      } catch (e) {
        throw new MemoryAllocationError(have + pages * PAGE, e);
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
    const layout = this.weightLayouts.get(wtype);
    if (!layout) throw new RangeError(`weight type ${WEIGHT_TYPE_NAMES.get(wtype) ?? wtype} is not one the ${this.build} kernels read`);
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
    // struct matmul_target { float *dst; const uint8_t *w; int wtype, rows; } in wasm memory:
    // 16 bytes, or 24 with memory64's 8-byte pointers (little-endian halves).
    const words = this.memory64 ? 6 : 4;
    const area = this.ensure(this.targetsArea, MAX_MATMUL_TARGETS * words * 4);
    const i32 = this.i32();
    targets.forEach((t, i) => {
      const fields = this.memory64
        ? [t.dst % 2 ** 32, Math.floor(t.dst / 2 ** 32), t.w % 2 ** 32, Math.floor(t.w / 2 ** 32), t.type, t.rows]
        : [t.dst, t.w, t.type, t.rows];
      i32.set(fields.map((f) => f | 0), area / 4 + words * i);
    });
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
    this.checkKvStore('kvStore', 'f16', cacheK, cacheV, k, v, nTokens, startPos, kvDim);
    this.x.kv_store(cacheK, cacheV, k, v, nTokens, startPos, kvDim);
  }

  attention(out: number, q: number, cacheK: number, cacheV: number, nTokens: number, startPos: number,
    nHeads: number, nKvHeads: number, headDim: number, scale = 1 / Math.sqrt(headDim)): void {
    this.checkAttention('attention', 8, out, q, nTokens, startPos, nHeads, nKvHeads, headDim);
    const kvBytes = (startPos + nTokens) * kvCacheRowBytes('f16', nKvHeads * headDim);
    this.range('attention cacheK', cacheK, kvBytes);
    this.range('attention cacheV', cacheV, kvBytes);
    const need = this.x.attention_scratch_bytes(nTokens, startPos, nHeads, nKvHeads, headDim);
    check(need, 'attention_scratch_bytes');
    const scratch = this.ensure(this.attnScratch, need);
    check(this.x.attention(out, q, cacheK, cacheV, nTokens, startPos, nHeads, nKvHeads, headDim, scale, scratch), 'attention');
  }

  reserveAttention(cache: 'f16' | 'q8_0', positions: number, nHeads: number, nKvHeads: number, headDim: number): number {
    positive('positions', positions);
    const need = cache === 'f16'
      ? this.x.attention_scratch_bytes(1, positions - 1, nHeads, nKvHeads, headDim)
      : this.x.attention_q8_0_scratch_bytes(headDim);
    check(need, cache === 'f16' ? 'attention_scratch_bytes' : 'attention_q8_0_scratch_bytes');
    this.ensure(this.attnScratch, need);
    return need;
  }

  kvStoreQ8_0(cacheK: number, cacheV: number, k: number, v: number, nTokens: number, startPos: number, kvDim: number): void {
    this.checkKvStore('kvStoreQ8_0', 'q8_0', cacheK, cacheV, k, v, nTokens, startPos, kvDim);
    check(this.x.kv_store_q8_0(cacheK, cacheV, k, v, nTokens, startPos, kvDim), 'kv_store_q8_0');
  }

  attentionQ8_0(out: number, q: number, cacheK: number, cacheV: number, nTokens: number, startPos: number,
    nHeads: number, nKvHeads: number, headDim: number, scale = 1 / Math.sqrt(headDim)): void {
    this.checkAttention('attentionQ8_0', 32, out, q, nTokens, startPos, nHeads, nKvHeads, headDim);
    const kvBytes = (startPos + nTokens) * kvCacheRowBytes('q8_0', nKvHeads * headDim);
    this.range('attentionQ8_0 cacheK', cacheK, kvBytes);
    this.range('attentionQ8_0 cacheV', cacheV, kvBytes);
    const need = this.x.attention_q8_0_scratch_bytes(headDim);
    check(need, 'attention_q8_0_scratch_bytes');
    const scratch = this.ensure(this.attnScratch, need);
    check(this.x.attention_q8_0(out, q, cacheK, cacheV, nTokens, startPos, nHeads, nKvHeads, headDim, scale, scratch), 'attention_q8_0');
  }

  hadamardRotate(x: number, nRows: number, width: number, block: number): void {
    this.live();
    positive('nRows', nRows);
    positive('width', width);
    this.range('hadamardRotate x', x, nRows * width * 4);
    check(this.x.hadamard_rotate(x, nRows, width, block), 'hadamard_rotate');
  }

  private checkKvStore(name: string, type: KvCacheType, cacheK: number, cacheV: number, k: number, v: number,
    nTokens: number, startPos: number, kvDim: number): void {
    this.live();
    positive('nTokens', nTokens);
    if (type === 'f16') positive('kvDim', kvDim);
    else if (!Number.isInteger(kvDim) || kvDim <= 0 || kvDim % 32 !== 0) throw new RangeError(`kvDim must be a positive multiple of 32, got ${kvDim}`);
    if (!Number.isInteger(startPos) || startPos < 0) throw new RangeError(`startPos must be a non-negative integer, got ${startPos}`);
    this.range(`${name} cacheK`, cacheK, (startPos + nTokens) * kvCacheRowBytes(type, kvDim));
    this.range(`${name} cacheV`, cacheV, (startPos + nTokens) * kvCacheRowBytes(type, kvDim));
    this.range(`${name} k`, k, nTokens * kvDim * 4);
    this.range(`${name} v`, v, nTokens * kvDim * 4);
  }

  private checkAttention(name: string, headMultiple: number, out: number, q: number, nTokens: number, startPos: number,
    nHeads: number, nKvHeads: number, headDim: number): void {
    this.live();
    positive('nTokens', nTokens);
    positive('nHeads', nHeads);
    positive('nKvHeads', nKvHeads);
    if (nHeads % nKvHeads !== 0) throw new RangeError(`nHeads (${nHeads}) must be a multiple of nKvHeads (${nKvHeads})`);
    if (!Number.isInteger(headDim) || headDim <= 0 || headDim % headMultiple !== 0) throw new RangeError(`headDim must be a positive multiple of ${headMultiple}, got ${headDim}`);
    if (!Number.isInteger(startPos) || startPos < 0) throw new RangeError(`startPos must be a non-negative integer, got ${startPos}`);
    this.range(`${name} q`, q, nTokens * nHeads * headDim * 4);
    this.range(`${name} out`, out, nTokens * nHeads * headDim * 4);
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
