// Kernel pool threads started by the page instead of by the worker that runs the kernels.
//
// In Firefox (153 ESR) a Worker that creates a nested module Worker sometimes blocks in the
// constructor for good: about 1 in 50 of a fresh worker's first nested worker, and within a few
// dozen when one is created soon after terminate() of another. The engine's worker then never
// answers again. Workers started by a page never did. So the page that creates an engine worker
// hosts its kernel threads: `hostKernelThreads(worker)` hands the worker a port on which it asks
// for a thread, the page starts the kernel worker and connects the two with a MessageChannel;
// the module and shared memory then go from the engine worker to the thread over that channel.
// A worker nobody hosts starts its threads itself, as before (Chromium and Node never blocked).
import { KERNEL_THREAD_CLOSED } from './kernel-platform.ts';

/** Key of the one message by which a page hands a worker its thread-host port. */
const HOST_MESSAGE_KEY = 'qwenKernelThreadHost';

interface ThreadRequest {
  id: number;
  /** The kernel worker's end of its channel to the engine worker. */
  port: MessagePort;
  name: string;
}
interface ThreadFailure {
  id: number;
  error: string;
}

let hostPort: MessagePort | undefined;
let nextRequestId = 1;
const failureListeners = new Map<number, (error: string) => void>();

// The host's message arrives before any request of the page (it is posted first), so listening
// from the moment this module is evaluated (it is imported statically by kernels.ts) catches it.
// It stops there: comlink's listener in the engine worker must not take it for a call.
if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined') {
  globalThis.addEventListener('message', (event: Event) => {
    const data = (event as MessageEvent).data as Record<string, unknown> | null;
    const port = data && typeof data === 'object' ? data[HOST_MESSAGE_KEY] : undefined;
    if (!(port instanceof MessagePort)) return;
    hostPort = port;
    hostPort.onmessage = (failure: MessageEvent<ThreadFailure>) => failureListeners.get(failure.data.id)?.(failure.data.error);
    event.stopImmediatePropagation();
  });
}

/**
 * This worker's way to start a kernel thread through its page, when the page hosts them: sends
 * the request and returns this side's port of the new thread's channel (undefined when no page
 * hosts this worker's threads). `onFailure` hears of a thread that could not start.
 */
export function requestHostedThread(name: string, onFailure: (error: string) => void): { port: MessagePort; done(): void } | undefined {
  if (!hostPort) return undefined;
  const { port1, port2 } = new MessageChannel();
  const id = nextRequestId++;
  failureListeners.set(id, onFailure);
  const request: ThreadRequest = { id, port: port2, name };
  hostPort.postMessage(request, [port2]);
  return { port: port1, done: () => failureListeners.delete(id) };
}

export interface KernelThreadHost {
  /** Kernel threads running for this worker now. */
  readonly threads: number;
  /** Stops every kernel thread of this worker (when the worker itself is terminated). */
  terminate(): void;
}

/**
 * Starts the kernel threads `worker` asks for, from this (the page's) thread. Call it right
 * after creating the worker, before posting it anything else.
 */
export function hostKernelThreads(worker: Worker): KernelThreadHost {
  const { port1, port2 } = new MessageChannel();
  const running = new Set<Worker>();
  port1.onmessage = (event: MessageEvent<ThreadRequest>) => {
    const { id, port, name } = event.data;
    const thread = new Worker(new URL('./kernel-worker.ts', import.meta.url), { type: 'module', name });
    running.add(thread);
    thread.onmessage = (message: MessageEvent) => {
      if (message.data === KERNEL_THREAD_CLOSED) running.delete(thread);
    };
    // A thread that cannot start: the engine worker hears it (it waits for the thread's word).
    thread.onerror = (error: ErrorEvent) => {
      running.delete(thread);
      const failure: ThreadFailure = { id, error: error.message || 'the kernel worker script did not load' };
      port1.postMessage(failure);
    };
    thread.postMessage(port, [port]);
  };
  worker.postMessage({ [HOST_MESSAGE_KEY]: port2 }, [port2]);
  return {
    get threads() {
      return running.size;
    },
    terminate() {
      for (const thread of running) thread.terminate();
      running.clear();
      port1.close();
    },
  };
}
