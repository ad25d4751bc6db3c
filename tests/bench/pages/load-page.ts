// The load bench page's module (load.html, for tests/bench/load.ts):
//   bench.download(url): downloads the model into the IndexedDB ModelStore 'bench'; resolves to
//     { ms, id, complete };
//   bench.load({ source, threads }): loads `source` in a fresh tests/support/model-worker.ts,
//     terminated afterwards (only one model's wasm memory at a time); resolves to the time from
//     posting the load request to the 'loaded' reply and the worker's own figures;
//   bench.rawRead(id): reads the stored model's bytes in 64 MiB pieces into one reused buffer
//     (no wasm, no model): what IndexedDB gives here; resolves to { ms, bytes };
//   bench.engineLoad({ id, threads }): loads the stored model through the engine the app uses
//     (the tabs' shared engine: in the first tab it starts a worker engine, in a later tab it joins
//     the first's); resolves to the time of the load() call, the time since the tab opened
//     (navigation start) and this tab's role;
//   bench.engineClose(): leaves the shared engine (an owner stops its worker);
//   bench.remove(id): deletes the model from the store.
import { createTabSharedEngine, type TabSharedEngine } from '../../../src/engine/tab-shared-engine.ts';
import { createWorkerEngine } from '../../../src/engine/worker-engine.ts';
import { ModelStore } from '../../../src/storage/model-store.ts';
import type { LoadedInfo, ModelRequest, ModelResponse, ModelSource } from '../../support/model-protocol.ts';

export interface DownloadResult {
  ms: number;
  id: string;
  complete: boolean;
}

export interface LoadRequest {
  source: ModelSource;
  threads: number;
}

export interface LoadResult {
  /** From posting the load request to the 'loaded' reply (the page's view). */
  ms: number;
  /** The worker's own figure, which excludes the worker's start-up. */
  loadMs: number;
  build: string;
  threads: number;
  fileBytes: number;
  memoryBytes: number;
  timings: NonNullable<LoadedInfo['timings']>;
}

export interface EngineLoadResult {
  /** The load() call, until ready. */
  ms: number;
  /** From the tab's navigation start until ready. */
  sinceOpen: number;
  role: string;
}

/** The app's own store, where the engine's { kind: 'cached' } spec looks. */
const STORE = 'qwen-web';
const CONTEXT = 4096;

async function download(url: string): Promise<DownloadResult> {
  const store = ModelStore.open(STORE);
  const started = performance.now();
  const model = await store.download(url, { retries: 0 });
  return { ms: performance.now() - started, id: model.id, complete: model.complete };
}

function load({ source, threads }: LoadRequest): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('../../support/model-worker.ts', import.meta.url), { type: 'module' });
    const started = performance.now();
    worker.onmessage = (event: MessageEvent<ModelResponse>) => {
      const m = event.data;
      if (m.type === 'progress') return;
      const ms = performance.now() - started;
      worker.terminate();
      if (m.type === 'loaded') {
        resolve({ ms, loadMs: m.loadMs, build: m.build, threads: m.threads, fileBytes: m.fileBytes, memoryBytes: m.memoryBytes, timings: m.timings ?? {} });
      }
      else if (m.type === 'error') reject(new Error(`${m.error.name}: ${m.error.message}`));
      else reject(new Error(`unexpected reply ${m.type}`));
    };
    worker.onerror = (event) => {
      worker.terminate();
      reject(new Error(`model worker failed: ${event.message}`));
    };
    const request: ModelRequest = { type: 'load', id: 1, source, threads, contextLength: CONTEXT, timings: true };
    worker.postMessage(request);
  });
}

async function rawRead(id: string): Promise<{ ms: number; bytes: number }> {
  const source = await ModelStore.open(STORE).openSource(id);
  const buffer = new Uint8Array(64 * 1024 * 1024);
  const started = performance.now();
  for (let offset = 0; offset < source.size; offset += buffer.length) {
    await source.readInto(offset, buffer.subarray(0, Math.min(buffer.length, source.size - offset)));
  }
  return { ms: performance.now() - started, bytes: source.size };
}

let engine: TabSharedEngine | undefined;

async function engineLoad({ id, threads }: { id: string; threads: number }): Promise<EngineLoadResult> {
  engine ??= createTabSharedEngine({ name: 'bench-load', createEngine: () => createWorkerEngine({ threads }) });
  const started = performance.now();
  await engine.load({ kind: 'cached', id }, { contextLength: CONTEXT, threads });
  const now = performance.now();
  return { ms: now - started, sinceOpen: now, role: engine.role() };
}

Object.assign(window, {
  bench: {
    download,
    load,
    rawRead,
    engineLoad,
    engineClose: () => {
      engine?.terminate();
      engine = undefined;
    },
    remove: (id: string): Promise<void> => ModelStore.open(STORE).delete(id),
  },
});
