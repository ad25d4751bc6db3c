// Browser pool thread: instantiate the kernels on the shared memory, take our
// own stack, and serve jobs in pool_worker_main until pool_shutdown().
import type { KernelWorkerInit } from './kernel-platform.ts';

interface PoolWorkerExports {
  __stack_pointer: WebAssembly.Global;
  pool_worker_main(threadIndex: number): void;
}

self.onmessage = (e: MessageEvent<KernelWorkerInit>) => {
  const { module, memory, threadIndex, stackTop } = e.data;
  try {
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    const exports = instance.exports as unknown as PoolWorkerExports;
    // A memory64 module's stack pointer is an i64.
    const sp = exports.__stack_pointer;
    sp.value = typeof sp.value === 'bigint' ? BigInt(stackTop) : stackTop;
    self.postMessage('ready');
    exports.pool_worker_main(threadIndex);
  } catch (err) {
    self.postMessage(err instanceof Error ? err.message : String(err));
  }
};
