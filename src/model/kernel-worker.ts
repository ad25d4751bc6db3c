// Browser pool thread: instantiate the kernels on the shared memory, take our
// own stack, and serve jobs in pool_worker_main until pool_shutdown().
//
// Started by the engine's worker itself, its first message is the init. Started by the page for
// that worker (kernel-threads.ts), its first message is a port to the engine worker, on which the
// init then arrives; when the pool shuts down it closes itself and tells the page.
import { KERNEL_THREAD_CLOSED, type KernelWorkerInit } from './kernel-platform.ts';

interface PoolWorkerExports {
  __stack_pointer: WebAssembly.Global;
  pool_worker_main(threadIndex: number): void;
}

/** Joins the pool; returns once pool_shutdown() let this thread go. */
function runPoolThread(init: KernelWorkerInit, reply: (message: string) => void): void {
  const { module, memory, threadIndex, stackTop } = init;
  try {
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    const exports = instance.exports as unknown as PoolWorkerExports;
    // A memory64 module's stack pointer is an i64.
    const sp = exports.__stack_pointer;
    sp.value = typeof sp.value === 'bigint' ? BigInt(stackTop) : stackTop;
    reply('ready');
    exports.pool_worker_main(threadIndex);
  } catch (err) {
    reply(err instanceof Error ? err.message : String(err));
  }
}

self.onmessage = (e: MessageEvent<KernelWorkerInit | MessagePort>) => {
  const first = e.data;
  if (!(first instanceof MessagePort)) {
    runPoolThread(first, (message) => self.postMessage(message));
    return;
  }
  first.onmessage = (init: MessageEvent<KernelWorkerInit>) => {
    runPoolThread(init.data, (message) => first.postMessage(message));
    first.close();
    self.postMessage(KERNEL_THREAD_CLOSED);
    self.close();
  };
};
