// Where <qwen-chat> gets an engine when the page passes none. Loaded with import() on first use,
// so an element given its own engine never pulls in the engine code.
import { createEngine, detectWebGPU, type BackendChoice as EngineBackendChoice, type WebGpuSupport } from '../engine/backend.ts';
import type { Engine } from '../engine/types.ts';
import type { BackendChoice } from './settings.ts';

export interface CreatedEngine {
  engine: Engine;
  /** Frees the engine for good (terminates its workers). */
  dispose(): void;
}

/**
 * The backend-switching engine: each load() runs the model on WebGPU when chosen (or, with
 * 'auto', when a real adapter with shader-f16 is there and the model has a web-llm build) and on
 * the CPU engine otherwise; `onFallback` hears why WebGPU was not used when it was asked for.
 */
export async function createChatEngine(backend: BackendChoice, onFallback: (reason: string, choice: EngineBackendChoice) => void): Promise<CreatedEngine> {
  const engine = await createEngine({ backend, onFallback });
  return { engine, dispose: () => engine.terminate() };
}

export function detectWebGpu(): Promise<WebGpuSupport> {
  return detectWebGPU();
}
