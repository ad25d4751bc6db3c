// One thread of the ceiling bench: instantiates the module (tests/bench/ceiling.c) and, on 'go',
// times one call of the asked kernel.

export interface CeilingRequest {
  /** The module, base64. */
  wasm: string;
  kind: 'relaxed' | 'simd128' | 'stream';
  /** Loop iterations of the dot kernels. */
  iterations: number;
  /** Stream: the buffer's size and how many passes over it. */
  bytes: number;
  passes: number;
}

export type CeilingWorkerReply = { ready: true; seconds?: undefined } | { seconds: number } | { error: string };

interface CeilingExports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  relaxed_dots(iterations: number, seed: number): number;
  simd128_dots(iterations: number, seed: number): number;
  stream_read(p: number, bytes: number, passes: number): number;
  set_operands(seed: number): void;
}

let prepared: { x: CeilingExports; request: CeilingRequest; base: number } | undefined;

/** One call of the asked kernel: `iterations` dot-loop turns, or `passes` over `bytes` of the buffer at `base`. */
function runKernel(x: CeilingExports, kind: CeilingRequest['kind'], iterations: number, base: number, bytes: number, passes: number): void {
  if (kind === 'relaxed') x.relaxed_dots(iterations, 3);
  else if (kind === 'simd128') x.simd128_dots(iterations, 3);
  else x.stream_read(base, bytes, passes);
}

self.onmessage = async (event: MessageEvent<(CeilingRequest & { step: 'prepare' }) | { step: 'go' }>) => {
  try {
    if (event.data.step === 'prepare') {
      const request = event.data;
      const bytes = Uint8Array.from(atob(request.wasm), (c) => c.charCodeAt(0));
      const { instance } = await WebAssembly.instantiate(bytes, {});
      const x = instance.exports as unknown as CeilingExports;
      const base = Math.ceil(Number(x.__heap_base.value) / 64) * 64;
      x.set_operands(11);
      if (request.kind === 'stream') {
        const need = base + request.bytes - x.memory.buffer.byteLength;
        if (need > 0) x.memory.grow(Math.ceil(need / 65536));
        new Uint8Array(x.memory.buffer, base, request.bytes).fill(7);
      }
      // Warm-up: V8 runs a function in its baseline compiler first and swaps in the optimized
      // code for later calls (not within a running loop), so the timed call must not be the first.
      for (let i = 0; i < 6; i++) {
        runKernel(x, request.kind, request.iterations / 100, base, Math.min(request.bytes, 2 ** 20), 1);
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
      prepared = { x, request, base };
      self.postMessage({ ready: true } satisfies CeilingWorkerReply);
      return;
    }
    const { x, request, base } = prepared!;
    const started = performance.now();
    runKernel(x, request.kind, request.iterations, base, request.bytes, request.passes);
    self.postMessage({ seconds: (performance.now() - started) / 1000 } satisfies CeilingWorkerReply);
  } catch (error) {
    self.postMessage({ error: String(error instanceof Error ? error.stack ?? error.message : error) } satisfies CeilingWorkerReply);
  }
};
