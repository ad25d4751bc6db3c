// Module Web Worker hosting the CPU engine, reached from the page through comlink
// (src/engine/worker-engine.ts). The kernels block this thread while they compute, but the
// engine yields to the event loop after every token, so interrupt() and pulls get through.
//
// Streams are pulled: each pull from the page runs the generation until its next chunk. The page
// sees every token as soon as it exists, a slow reader slows generation instead of piling up
// chunks, and an interrupt() sent after the page saw token k ends the answer at token k (+ the
// one in progress, if the pull was already on its way).
import * as Comlink from 'comlink';
import { CpuEngine } from '../src/engine/cpu-engine.ts';
import { EngineError } from '../src/engine/errors.ts';
import type { ChatCompletionChunk, LoadProgress } from '../src/engine/types.ts';
import { PromptCache, deferredSnapshotFiles, opfsSnapshotFiles } from '../src/storage/prompt-cache.ts';
import { settle, type EngineWorkerApi, type StreamBatch } from '../src/engine/worker-protocol.ts';

// Conversations continued after a reload start from their saved caches (OPFS, where there is one).
const engine = new CpuEngine({ promptCache: new PromptCache(deferredSnapshotFiles(opfsSnapshotFiles())) });
let loadController: AbortController | undefined;
let runningLoad: Promise<unknown> | undefined;
let loadCount = 0;

interface Stream {
  chunks: AsyncIterator<ChatCompletionChunk>;
  controller: AbortController;
}

const streams = new Map<number, Stream>();
let nextStreamId = 1;

const api: EngineWorkerApi = {
  load(spec, options, onProgress) {
    return settle(async () => {
      // A newer load replaces one still running (the page changed its mind): stop it, let it unwind.
      const mine = ++loadCount;
      loadController?.abort();
      await runningLoad?.catch(() => undefined);
      if (mine !== loadCount) throw new EngineError('aborted', 'a newer load() replaced this one');
      const controller = new AbortController();
      loadController = controller;
      try {
        return await (runningLoad = engine.load(spec, {
          ...options,
          signal: controller.signal,
          // Not awaited: progress is a notice, the load does not wait for the page.
          onProgress: onProgress && ((progress: LoadProgress) => void onProgress(progress)),
        }));
      } finally {
        if (loadController === controller) loadController = undefined;
        (onProgress as Partial<Comlink.ProxyMethods> | undefined)?.[Comlink.releaseProxy]?.();
      }
    });
  },

  abortLoad() {
    loadController?.abort();
  },

  create(request) {
    return settle(async () => {
      if (!request.stream) return { completion: await engine.chat.completions.create({ ...request, stream: false }) };
      const controller = new AbortController();
      const chunks = await engine.chat.completions.create({ ...request, stream: true, signal: controller.signal });
      const id = nextStreamId++;
      streams.set(id, { chunks: chunks[Symbol.asyncIterator](), controller });
      return { stream: id };
    });
  },

  pull(id) {
    return settle(async () => {
      const stream = streams.get(id);
      if (!stream) throw new EngineError('bad-request', `no stream ${id} (it ended or was cancelled)`);
      const next = await stream.chunks.next();
      const batch: StreamBatch = next.done ? { chunks: [], done: true } : { chunks: [next.value], done: next.value.choices[0].finish_reason !== null };
      if (batch.done) streams.delete(id);
      return batch;
    }).then((result) => {
      if (!result.ok) streams.delete(id);
      return result;
    });
  },

  cancel(id) {
    const stream = streams.get(id);
    streams.delete(id);
    stream?.controller.abort();
    void stream?.chunks.return?.();
  },

  countPromptTokens(request) {
    return settle(() => engine.countPromptTokens(request));
  },

  interrupt() {
    engine.interrupt();
  },

  unload() {
    return settle(() => engine.unload());
  },

  ping() {
    return Date.now();
  },
};

Comlink.expose(api);
