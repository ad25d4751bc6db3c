// For tests and benchmarks only: a module Web Worker with a bare Qwen3Model (no engine, no
// tokenizer) that answers forward and greedy-generate requests by token id, so logits and raw
// speed can be checked in a browser. It opens models as the engine does (openModelSource). The
// kernels' calling thread blocks on atomics, which only a Worker may do.
// Requests run one at a time in arrival order: the model (its KV cache) is a single state.
import { openModelSource, type OpenedSource } from '../../src/engine/model-source.ts';
import { MAX_DRAFT_TOKENS, PromptLookup } from '../../src/engine/prompt-lookup.ts';
import { argmax, topCandidates } from '../../src/engine/sampler.ts';
import { readChatTemplate, readTokenizerData } from '../../src/gguf/metadata.ts';
import { Qwen3Model, type LoadTimings } from '../../src/model/qwen3.ts';
import { ChatTemplate } from '../../src/tokenizer/chat-template.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { replayAnswer } from './replay-answer.ts';
import { ModelStore } from '../../src/storage/model-store.ts';
import { errorInfo } from '../../src/engine/errors.ts';
import { fillCacheTo } from './fill-cache.ts';
import type { ModelRequest, ModelResponse, TopK } from './model-protocol.ts';

interface WorkerScope {
  onmessage: ((event: MessageEvent<ModelRequest>) => void) | null;
  postMessage(message: ModelResponse, transfer?: Transferable[]): void;
  crossOriginIsolated?: boolean;
}
const scope = globalThis as unknown as WorkerScope;

let model: Qwen3Model | undefined;
let opened: OpenedSource | undefined;
let queue: Promise<void> = Promise.resolve();

scope.onmessage = (event) => {
  const request = event.data;
  queue = queue.then(() => handle(request)).catch((error: unknown) => {
    scope.postMessage({ type: 'error', id: typeof request?.id === 'number' ? request.id : -1, error: errorInfo(error) });
  });
};

async function unload(): Promise<void> {
  model?.dispose();
  model = undefined;
  await opened?.close();
  opened = undefined;
}

function requireModel(): Qwen3Model {
  if (!model) throw new Error('no model loaded: send a load request first');
  return model;
}

/** The k largest logits of one row, best first (ties: lower id first). */
function topK(logits: Float32Array, from: number, n: number, k: number): TopK {
  const row = logits.subarray(from, from + n);
  const ids = topCandidates(row, k);
  return { ids, logits: ids.map((id) => row[id]!) };
}

async function handle(request: ModelRequest): Promise<void> {
  switch (request.type) {
    case 'load': {
      const started = performance.now();
      await unload();
      const spec = request.source;
      opened = spec.kind === 'cached' && 'store' in spec && spec.store !== undefined
        ? { source: await ModelStore.open(spec.store).openSource(spec.id), name: spec.id, close: async () => {} }
        : await openModelSource(spec, undefined, undefined);
      const source = opened.source;
      const timings: LoadTimings | undefined = request.timings ? {} : undefined;
      const loaded = await Qwen3Model.load(source, {
        timings,
        threads: request.threads,
        build: request.build,
        contextLength: request.contextLength,
        maxBatch: request.maxBatch,
        kvCache: request.kvCache,
        addressing: request.addressing,
        onProgress: (loadedBytes, totalBytes) => scope.postMessage({ type: 'progress', id: request.id, loadedBytes, totalBytes }),
      });
      model = loaded;
      let tokenizerMs: number | undefined;
      if (timings) {
        // What the engine also does before it is ready: the tokenizer and the chat template.
        const tokenizerStarted = performance.now();
        Tokenizer.fromData(readTokenizerData(loaded.gguf));
        ChatTemplate.parse(readChatTemplate(loaded.gguf));
        tokenizerMs = performance.now() - tokenizerStarted;
      }
      scope.postMessage({
        ...(timings ? { timings: { ...timings, tokenizer: tokenizerMs } } : {}),
        type: 'loaded',
        id: request.id,
        build: loaded.kernels.build,
        addressing: loaded.kernels.memory64 ? 'memory64' : 'wasm32',
        threads: loaded.kernels.threads,
        crossOriginIsolated: scope.crossOriginIsolated === true,
        vocabSize: loaded.config.vocabSize,
        contextLength: loaded.contextLength,
        nLayers: loaded.config.nLayers,
        fileBytes: source.size,
        memoryBytes: loaded.memoryBytes,
        loadMs: performance.now() - started,
      });
      return;
    }
    case 'forward': {
      const m = requireModel();
      const started = performance.now();
      if (request.startPos < m.position) m.truncate(request.startPos);
      const logits = m.forward(request.tokens, request.startPos, request.allLogits);
      const ms = performance.now() - started;
      const vocab = m.config.vocabSize;
      const rows = logits.length / vocab;
      const k = Math.min(request.topK ?? 8, vocab);
      const top: TopK[] = [];
      for (let r = 0; r < rows; r++) top.push(topK(logits, r * vocab, vocab, k));
      const reply: ModelResponse = { type: 'forward-result', id: request.id, rows, vocabSize: vocab, topK: top, ms };
      if (request.returnLogits) {
        reply.logits = logits; // a fresh copy from forward(): safe to transfer
        scope.postMessage(reply, [logits.buffer]);
      } else {
        scope.postMessage(reply);
      }
      return;
    }
    case 'seek': {
      const m = requireModel();
      fillCacheTo(m, request.position);
      scope.postMessage({ type: 'sought', id: request.id, position: m.position });
      return;
    }
    case 'generate': {
      const m = requireModel();
      const stop = new Set(request.stopTokens ?? []);
      const out: number[] = [];
      let started = performance.now();
      if (request.startPos < m.position) m.truncate(request.startPos);
      let logits = m.forward(request.tokens, request.startPos, false);
      const firstStepMs = performance.now() - started;
      started = performance.now();
      while (out.length < request.maxTokens) {
        const next = argmax(logits);
        out.push(next);
        if (stop.has(next) || out.length === request.maxTokens) break;
        logits = m.decode(next);
      }
      scope.postMessage({ type: 'generate-result', id: request.id, tokens: out, firstStepMs, restMs: performance.now() - started });
      return;
    }
    case 'replay': {
      const m = requireModel();
      m.truncate(request.startPos);
      const { answer } = request;
      const lookup = request.speculative ? new PromptLookup('when-it-pays') : undefined;  // the engine's default
      const context = request.context.slice();
      const started = performance.now();
      const counts = replayAnswer(lookup, context, answer,
        (i) => Math.min(MAX_DRAFT_TOKENS, m.contextLength - m.position - 1, answer.length - i - 2),
        (token, draft) => {
          const passStart = performance.now();
          m.forward([token, ...draft], m.position, draft.length > 0);
          return performance.now() - passStart;
        },
        (answered) => m.truncate(request.startPos + answered));
      scope.postMessage({ type: 'replay-result', id: request.id, ms: performance.now() - started, ...counts });
      return;
    }
    case 'dispose': {
      await unload();
      scope.postMessage({ type: 'disposed', id: request.id });
      return;
    }
    default: {
      const unknown = request as { type?: unknown; id?: unknown };
      throw new Error(`unknown request type ${JSON.stringify(unknown.type)}`);
    }
  }
}
