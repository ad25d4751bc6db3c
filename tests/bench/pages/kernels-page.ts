// The kernel bench page's module (kernels.html): `window.bench.speeds(request)` and
// `window.bench.ab(request)` hand the request to a fresh Worker (kernels-worker.ts), log each
// result line it posts (the harness relays console.log to the terminal) and resolve when it is
// done: to nothing, or to the batches of an A/B run with batchSeconds (--cpu).
import type { AbBatch, AbRequest, KernelWorkerReply, KernelWorkerRequest, SpeedsRequest } from '../kernel-cases.ts';

function runInWorker(request: KernelWorkerRequest): Promise<AbBatch[] | undefined> {
  const worker = new Worker(new URL('./kernels-worker.ts', import.meta.url), { type: 'module', name: 'kernel-bench' });
  return new Promise<AbBatch[] | undefined>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<KernelWorkerReply>) => {
      const reply = event.data;
      if ('line' in reply) console.log(reply.line);
      else if ('error' in reply) reject(new Error(reply.error));
      else resolve(reply.batches);
    };
    worker.onerror = (event) => reject(new Error(`kernel bench worker failed: ${event.message}`));
    worker.postMessage(request);
  }).finally(() => worker.terminate());
}

Object.assign(window, {
  bench: {
    speeds: async (request: SpeedsRequest): Promise<void> => {
      await runInWorker({ kind: 'speeds', ...request });
    },
    ab: (request: AbRequest): Promise<AbBatch[] | undefined> => runInWorker({ kind: 'ab', ...request }),
  },
});
