// Browser host for the kernels (used inside a Worker: the caller thread blocks
// on atomics, which a page's main thread may not). Wasm bytes come from URLs
// vite resolves and bundles; pool threads are module Workers, started by the page where it hosts
// them (kernel-threads.ts), else by this worker.
import type { KernelFile, KernelPlatform, KernelWorkerHandle, KernelWorkerInit } from './kernel-platform.ts';
import { requestHostedThread } from './kernel-threads.ts';

function wasmUrl(file: KernelFile): URL {
  // Literal `new URL(..., import.meta.url)` expressions, so vite emits the assets.
  switch (file) {
    case 'relaxed': return new URL('../../wasm/build/qwen-relaxed.wasm', import.meta.url);
    case 'relaxed64': return new URL('../../wasm/build/qwen-relaxed64.wasm', import.meta.url);
    case 'simd128': return new URL('../../wasm/build/qwen-simd128.wasm', import.meta.url);
  }
}

export const browserPlatform: KernelPlatform = {
  // Without cross-origin isolation there is no SharedArrayBuffer: one thread,
  // non-shared memory.
  sharedMemory: globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer !== 'undefined',
  // A page's main thread may not wait on atomics: only a Worker can run the pool's caller.
  canBlock: typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined',

  hardwareThreads(): number {
    return globalThis.navigator?.hardwareConcurrency ?? 1;
  },

  async wasmBytes(file: KernelFile): Promise<Uint8Array> {
    const url = wasmUrl(file);
    const response = await fetch(url);
    if (!response.ok) throw new Error(`cannot load ${url.href}: HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  },

  startWorker(init: KernelWorkerInit): KernelWorkerHandle {
    const name = `kernel-${init.threadIndex}`;
    let waiting: ThreadStart | undefined;
    const hosted = requestHostedThread(name, (reason) => waiting?.fail(reason));
    if (hosted) {
      // Started by the page (kernel-threads.ts): it closes itself when the pool shuts down.
      waiting = waitForReady(hosted.port, init.threadIndex);
      hosted.port.postMessage(init);
      return { ready: waiting.ready.finally(() => hosted.done()), terminate: () => hosted.port.close() };
    }
    const worker = new Worker(new URL('./kernel-worker.ts', import.meta.url), { type: 'module', name });
    const { ready, fail } = waitForReady(worker, init.threadIndex);
    worker.onerror = (e: ErrorEvent) => fail(e.message);
    worker.postMessage(init);
    return { ready, terminate: () => worker.terminate() };
  },
};

interface ThreadStart {
  ready: Promise<void>;
  /** The thread could not start, for `reason`. */
  fail(reason: string): void;
}

/** Resolves on the thread's 'ready'; anything else it says is why it could not join the pool. */
function waitForReady(channel: MessagePort | Worker, threadIndex: number): ThreadStart {
  let fail: (reason: string) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    fail = (reason) => reject(new Error(`kernel worker ${threadIndex} failed: ${reason}`));
    channel.onmessage = (e: MessageEvent) => {
      if (e.data === 'ready') resolve();
      else reject(new Error(`kernel worker ${threadIndex}: ${String(e.data)}`));
    };
  });
  return { ready, fail };
}
