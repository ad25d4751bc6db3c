// The kernel bench's Worker (started by kernels-page.ts): the kernels' calling thread blocks on
// atomics, which only a Worker may do. It runs the cases of ../kernel-cases.ts on the kernels it
// is asked for and posts each result line, then `done` (with the batches of a --cpu run) or the
// error.
import { browserPlatform } from '../../../src/model/kernel-platform-browser.ts';
import { createKernels, type Kernels } from '../../../src/model/kernels.ts';
import { runAb, runAbBatches, runKernelBench, type KernelWorkerReply, type KernelWorkerRequest } from '../kernel-cases.ts';

const post = (reply: KernelWorkerReply) => self.postMessage(reply);
const log = (line: string) => post({ line });
const unbase64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

async function run(request: KernelWorkerRequest): Promise<KernelWorkerReply> {
  if (request.kind === 'speeds') {
    for (const threads of request.threadList) {
      const k = await createKernels({ threads, build: 'auto' });
      try {
        runKernelBench(k, request.options, log);
      } finally {
        k.dispose();
      }
    }
    return { done: true };
  }
  // A/B: each variant's bytes handed to createKernels through a platform that returns them.
  const kernels: Kernels[] = [];
  try {
    for (const base64 of request.wasm) {
      const bytes = unbase64(base64);
      kernels.push(await createKernels({ threads: request.threads, build: 'relaxed' }, { ...browserPlatform, wasmBytes: async () => bytes }));
    }
    if (request.batchSeconds > 0) return { done: true, batches: runAbBatches(kernels, { ...request.options, batchSeconds: request.batchSeconds }) };
    runAb(kernels, request.options, log);
    return { done: true };
  } finally {
    for (const k of kernels) k.dispose();
  }
}

self.onmessage = (event: MessageEvent<KernelWorkerRequest>) => {
  run(event.data).then(post, (error: unknown) => post({ error: String((error instanceof Error && error.stack) || error) }));
};
