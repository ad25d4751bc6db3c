// What the kernel binding needs from its host (Node or a browser Worker).
// One small implementation per platform: kernel-platform-node.ts,
// kernel-platform-browser.ts.

/** The two wasm builds: SIMD128 runs everywhere; relaxed SIMD is faster where it computes right. */
export const KERNEL_BUILDS = ['simd128', 'relaxed'] as const;
export type KernelBuild = (typeof KERNEL_BUILDS)[number];
/** The module files: the two builds, and the relaxed one compiled for memory64 (wasm64: 8-byte
 * pointers, memories past 4 GiB; only where the host has memory64, and only when a model needs it). */
export type KernelFile = KernelBuild | 'relaxed64';

/** Everything a pool thread needs to join: it instantiates `module` on `memory`,
 * moves its stack pointer to `stackTop` and calls `pool_worker_main(threadIndex)`. */
export interface KernelWorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  threadIndex: number;
  stackTop: number;
}

/** What a kernel worker started by the page tells the page once it has closed itself. */
export const KERNEL_THREAD_CLOSED = 'kernel-thread-closed';

export interface KernelWorkerHandle {
  /** Resolves once the worker has instantiated the module and is entering the pool. */
  ready: Promise<void>;
  terminate(): void;
}

export interface KernelPlatform {
  /** True when SharedArrayBuffer / shared wasm memory is usable. */
  readonly sharedMemory: boolean;
  /** True when this thread may block on atomics (Node, Workers; never a page's main thread). */
  readonly canBlock: boolean;
  /** Logical cores the host reports. */
  hardwareThreads(): number;
  /** The raw bytes of one module file. */
  wasmBytes(file: KernelFile): Promise<Uint8Array>;
  startWorker(init: KernelWorkerInit): KernelWorkerHandle;
}
