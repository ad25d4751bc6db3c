// Node host for the kernels: wasm bytes from wasm/build/, pool threads on
// worker_threads. Node allows blocking waits on the main thread, so the caller
// thread can be the main thread.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { KernelFile, KernelPlatform, KernelWorkerHandle, KernelWorkerInit } from './kernel-platform.ts';

const WASM_FILES: Record<KernelFile, URL> = {
  simd128: new URL('../../wasm/build/qwen-simd128.wasm', import.meta.url),
  relaxed: new URL('../../wasm/build/qwen-relaxed.wasm', import.meta.url),
  relaxed64: new URL('../../wasm/build/qwen-relaxed64.wasm', import.meta.url),
};

// Plain JS (worker_threads cannot load TypeScript by itself): join the pool and
// stay in pool_worker_main until pool_shutdown(). A memory64 module's stack pointer is an i64.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory, threadIndex, stackTop } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory } });
const sp = instance.exports.__stack_pointer;
sp.value = typeof sp.value === 'bigint' ? BigInt(stackTop) : stackTop;
parentPort.postMessage('ready');
instance.exports.pool_worker_main(threadIndex);
`;

export const nodePlatform: KernelPlatform = {
  sharedMemory: true,
  canBlock: true,

  hardwareThreads(): number {
    return availableParallelism();
  },

  async wasmBytes(file: KernelFile): Promise<Uint8Array> {
    return new Uint8Array(await readFile(fileURLToPath(WASM_FILES[file])));
  },

  startWorker(init: KernelWorkerInit): KernelWorkerHandle {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: init });
    worker.unref();  // a pool thread must never keep the process alive
    const ready = new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', (e) => reject(new Error(`kernel worker ${init.threadIndex} failed: ${e.message}`)));
      worker.once('exit', (code) => reject(new Error(`kernel worker ${init.threadIndex} exited with code ${code}`)));
    });
    return { ready, terminate: () => void worker.terminate() };
  },
};
