// The ceiling bench page's module (ceiling.html): `window.bench.run(request)` starts
// `request.threads` Workers (ceiling-worker.ts), lets each instantiate the module and prepare
// (the stream buffer is written once, so its pages are touched), then starts them together and
// resolves to each one's seconds for the timed call.
import type { CeilingRequest, CeilingWorkerReply } from './ceiling-worker.ts';

async function run(request: CeilingRequest & { threads: number }): Promise<number[]> {
  const workers = Array.from({ length: request.threads }, () => new Worker(new URL('./ceiling-worker.ts', import.meta.url), { type: 'module' }));
  try {
    const next = (worker: Worker) => new Promise<CeilingWorkerReply>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<CeilingWorkerReply>) => resolve(event.data);
      worker.onerror = (event) => reject(new Error(`ceiling worker failed: ${event.message}`));
    });
    const ready = workers.map(next);
    for (const worker of workers) worker.postMessage({ ...request, step: 'prepare' });
    for (const reply of await Promise.all(ready)) if ('error' in reply) throw new Error(reply.error);
    const done = workers.map(next);
    for (const worker of workers) worker.postMessage({ step: 'go' });
    return (await Promise.all(done)).map((reply) => {
      if ('error' in reply) throw new Error(reply.error);
      return reply.seconds!;
    });
  } finally {
    for (const worker of workers) worker.terminate();
  }
}

Object.assign(window, { bench: { run } });
