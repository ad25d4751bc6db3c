// Where <qwen-chat> gets an engine when the page passes none. Loaded with import() on first use,
// so an element given its own engine never pulls in the engine code.
import { createEngine, detectWebGPU, type BackendChoice as EngineBackendChoice, type WebGpuSupport } from '../engine/backend.ts';
import { canShareEngine, createTabSharedEngine, sharedEngineRunning, type SharedModel, type TabRole } from '../engine/tab-shared-engine.ts';
import type { Engine } from '../engine/types.ts';
import type { BackendChoice } from './settings.ts';

export interface CreatedEngine {
  engine: Engine;
  /** Frees the engine for good (terminates its workers, or leaves the tabs' shared engine). */
  dispose(): void;
  /** Where the engine is shared by the origin's tabs: hears when any of them changes the model. */
  onModelChange?(listener: (model: SharedModel | undefined) => void): void;
  /** Where the engine is shared: whether this tab runs it ('owner') or another tab does. */
  role?(): TabRole;
}

/**
 * The backend-switching engine: each load() runs the model on WebGPU when chosen (or, with
 * 'auto', when a real adapter with shader-f16 is there and the model has a web-llm build) and on
 * the CPU engine otherwise; `onFallback` hears why WebGPU was not used when it was asked for.
 * Where the browser has Web Locks and BroadcastChannel, one such engine serves every tab of the
 * origin (tab-shared-engine.ts): the first tab runs it, the others use it.
 */
export async function createChatEngine(backend: BackendChoice, onFallback: (reason: string, choice: EngineBackendChoice) => void): Promise<CreatedEngine> {
  const create = () => createEngine({ backend, onFallback });
  if (canShareEngine()) {
    const engine = createTabSharedEngine({ createEngine: create });
    return { engine, dispose: () => engine.terminate(), onModelChange: (listener) => engine.onModelChange(listener), role: () => engine.role() };
  }
  const engine = await create();
  return { engine, dispose: () => engine.terminate() };
}

/** Another tab of this origin runs the shared engine now (so this one can use its model at once). */
export function otherTabRunsEngine(): Promise<boolean> {
  return sharedEngineRunning();
}

export function detectWebGpu(): Promise<WebGpuSupport> {
  return detectWebGPU();
}
