// Messages between a test or benchmark page and tests/support/model-worker.ts. Every request
// carries an `id`; the worker answers it with exactly one final message of the same id (a result
// or an `error`), after any number of `progress` messages.
import type { ErrorInfo } from '../../src/engine/errors.ts';
import type { ModelSpec } from '../../src/engine/types.ts';
import type { KernelBuild, KvCacheType } from '../../src/model/kernels.ts';
import type { Addressing, LoadTimings } from '../../src/model/qwen3.ts';

/** A ModelSpec (a URL with `cache: false` is read range by range), or a complete model in the
 * IndexedDB ModelStore named `store`. */
export type ModelSource = ModelSpec | { kind: 'cached'; id: string; store?: string };

export type ModelRequest =
  | {
      type: 'load';
      id: number;
      source: ModelSource;
      threads?: number;
      build?: 'auto' | KernelBuild;
      contextLength?: number;
      maxBatch?: number;
      kvCache?: KvCacheType;
      addressing?: 'auto' | Addressing;
      /** Report where the load's time went (and build the tokenizer and chat template, as the engine does). */
      timings?: boolean;
    }
  | {
      /**
       * Benchmarks: the cache is filled to `position` with copies of the rows it holds, not
       * computed (decode time depends on how many rows the cache holds, not on their values).
       */
      type: 'seek';
      id: number;
      position: number;
    }
  | {
      /** Runs `tokens` at positions startPos.. (later cached positions are forgotten). */
      type: 'forward';
      id: number;
      tokens: number[];
      startPos: number;
      /** Logits for every token instead of the last only. */
      allLogits: boolean;
      /** The k best tokens per returned row (default 8). */
      topK?: number;
      /** Also send the raw logits ([rows][vocab] f32, transferred). */
      returnLogits?: boolean;
    }
  | {
      /** Greedy: runs `tokens` at startPos, then appends the argmax `maxTokens` times. */
      type: 'generate';
      id: number;
      tokens: number[];
      startPos: number;
      maxTokens: number;
      /** Stop after producing one of these (it is included in the output). */
      stopTokens?: number[];
    }
  | {
      /**
       * Benchmarks: `answer` as if the model had picked it, its first token already sampled from
       * the prompt's logits and the prompt in the cache up to startPos. Plain: one decode step per
       * token. Speculative: the engine's prompt-lookup passes, drafts looked up in `context` (the
       * prompt) and the answer so far, kept while they match the answer. Random weights never
       * copy a passage; replaying the answer gives the passes a model that does would run.
       */
      type: 'replay';
      id: number;
      context: number[];
      answer: number[];
      startPos: number;
      /** Drafts as the engine makes them by default (PromptLookup 'when-it-pays'), or none. */
      speculative: boolean;
    }
  | { type: 'dispose'; id: number };

export interface TopK {
  ids: number[];
  logits: number[];
}

export interface LoadedInfo {
  /** With `timings`: the load's parts (ms), and the tokenizer and chat template's. */
  timings?: LoadTimings & { tokenizer?: number };
  build: KernelBuild;
  addressing: Addressing;
  threads: number;
  crossOriginIsolated: boolean;
  vocabSize: number;
  contextLength: number;
  nLayers: number;
  fileBytes: number;
  /** Wasm memory the model reserved. */
  memoryBytes: number;
  loadMs: number;
}

/** An error as it crosses the worker boundary (name, message, code, HTTP status). */
export type ModelErrorInfo = ErrorInfo;

export type ModelResponse =
  | { type: 'progress'; id: number; loadedBytes: number; totalBytes: number }
  | ({ type: 'loaded'; id: number } & LoadedInfo)
  | { type: 'forward-result'; id: number; rows: number; vocabSize: number; topK: TopK[]; logits?: Float32Array; ms: number }
  | { type: 'generate-result'; id: number; tokens: number[]; firstStepMs: number; restMs: number }
  | { type: 'replay-result'; id: number; ms: number; passes: number; drafted: number; accepted: number }
  | { type: 'sought'; id: number; position: number }
  | { type: 'disposed'; id: number }
  | { type: 'error'; id: number; error: ModelErrorInfo };

/** The final reply to a request, by request type. */
export type ModelReply<T extends ModelRequest['type']> = Extract<
  ModelResponse,
  { type: { load: 'loaded'; forward: 'forward-result'; seek: 'sought'; generate: 'generate-result'; replay: 'replay-result'; dispose: 'disposed' }[T] }
>;
