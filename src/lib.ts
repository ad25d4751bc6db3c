// qwen-web as a library: importing it defines <qwen-chat>; the engine API is exported for pages
// that drive a model themselves. Built to dist-lib/ by `npm run build:lib` (ESM + .d.ts); the
// engine's workers and wasm kernels resolve next to these modules through
// `new URL(..., import.meta.url)`, which a consumer's bundler (Vite, webpack 5, …) follows.
export { QwenChat, type ErrorDetail } from './ui/qwen-chat.ts';

export type * from './engine/types.ts';
export { EngineError, isEngineError, type EngineErrorCode } from './engine/errors.ts';
export {
  createEngine,
  detectWebGPU,
  type BackendPreference,
  type CreateEngineOptions,
  type SwitchingEngine,
  type WebGpuSupport,
} from './engine/backend.ts';
export { createWorkerEngine, type WorkerEngine, type WorkerEngineOptions } from './engine/worker-engine.ts';
export {
  createLanguageModel,
  installLanguageModel,
  type Availability,
  type LanguageModelConfig,
  type LanguageModelCreateOptions,
  type LanguageModelMessage,
  type LanguageModelPrompt,
  type LanguageModelPromptOptions,
  type LanguageModelSession,
  type LanguageModelStatic,
} from './engine/prompt-api.ts';

export {
  CATALOGUE,
  DEFAULT_MODEL_ID,
  findCatalogueEntry,
  type CatalogueEntry,
} from './storage/catalogue.ts';
export {
  ModelStore,
  StorageError,
  type CachedModel,
  type DownloadProgress,
  type StorageErrorCode,
  type StoreUsage,
} from './storage/model-store.ts';
