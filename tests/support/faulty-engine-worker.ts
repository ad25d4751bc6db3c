// The real engine worker with faults a browser test can trigger by posting
// { qwenTestFault: 'close' | 'hang' | 'throw' } to it: it closes itself (no event reaches the
// page), spins forever in a busy loop, or dies of an uncaught error. Posted mid-stream, the fault
// happens between two tokens, when the worker's event loop turns.
import '../../workers/engine-worker.ts';

self.addEventListener('message', (event: MessageEvent) => {
  const fault = (event.data as { qwenTestFault?: string } | null)?.qwenTestFault;
  if (fault === 'close') self.close();
  if (fault === 'hang') {
    for (;;) {
      // a step that never returns
    }
  }
  if (fault === 'throw') {
    setTimeout(() => {
      throw new Error('scripted crash of the engine worker');
    });
  }
});
