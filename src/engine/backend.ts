// Backend choice and the one engine factory the UI uses. createEngine() returns an Engine that,
// on load(), runs the model on WebGPU (web-llm) when that is chosen and works, and otherwise on
// our CPU engine, telling the caller why it fell back. Nothing WebGPU does can leave the page
// without an engine: no adapter, no shader-f16, a failing download of web-llm's files, any
// web-llm error, or a device lost after loading all end on the CPU engine with a message.
import { EngineError, isEngineError } from './errors.ts';
import type {
  Backend,
  ChatCompletionRequest,
  ChatCompletions,
  Engine,
  LoadOptions,
  ModelInfo,
  ModelSpec,
} from './types.ts';
import { detectWebGPU, type WebGpuSupport } from './webgpu-detect.ts';
import { createWebGpuEngine, type WebGpuEngine, type WebGpuEngineOptions } from './webgpu-engine.ts';
import { mlcModelNeedsShaderF16 } from './webllm-mapping.ts';
import { createWorkerEngine, type WorkerEngineOptions } from './worker-engine.ts';
import { isCodeUnavailable } from '../lazy-code.ts';
import { CATALOGUE } from '../storage/catalogue.ts';

export { detectWebGPU, type WebGpuSupport, type WebGpuAdapterSummary } from './webgpu-detect.ts';

export type BackendPreference = 'auto' | 'cpu' | 'webgpu';

export interface BackendChoice {
  backend: Backend;
  /** Why, in a sentence a user can read (English). */
  reason: string;
  /** The same as a code, for a UI to put in its own words; `detail` carries an error text. */
  code: BackendReasonCode;
  detail?: string;
  /** WebGPU was asked for explicitly but cannot be used: the caller should say so. */
  fallback: boolean;
}

export type BackendReasonCode =
  | 'cpu-chosen' | 'no-mlc-build' | 'webgpu-unavailable' | 'no-shader-f16' | 'software-adapter'
  | 'webgpu-chosen' | 'webgpu-ok' | 'webgpu-failed' | 'gpu-lost';

/** What chooseBackend needs to know of a model. */
export interface BackendModel {
  /** web-llm's id of the model's MLC build, when it has one. */
  mlcModelId?: string;
}

/**
 * Pure decision. 'cpu' is always honoured. 'auto' picks WebGPU only for a model with an MLC
 * build on a real (non-fallback) adapter with shader-f16: a software adapter, or one without
 * f16 shaders, is slower than our wasm kernels. 'webgpu' (the user's override) takes any adapter
 * that can run the model's build.
 */
export function chooseBackend(preference: BackendPreference, support: WebGpuSupport, model?: BackendModel): BackendChoice {
  if (preference === 'cpu') return { backend: 'cpu', reason: 'the CPU engine was chosen', code: 'cpu-chosen', fallback: false };
  const forced = preference === 'webgpu';
  const cpu = (code: BackendReasonCode, reason: string, detail?: string): BackendChoice =>
    ({ backend: 'cpu', reason, code, ...(detail === undefined ? {} : { detail }), fallback: forced });
  const mlcModelId = model?.mlcModelId;
  if (!mlcModelId) return cpu('no-mlc-build', 'this model has no WebGPU (MLC) build; using the CPU engine');
  if (!support.available) {
    return cpu('webgpu-unavailable', `WebGPU is not available (${support.reason ?? 'no adapter'}); using the CPU engine`, support.reasonCode);
  }
  const adapterName = support.adapter?.description || support.adapter?.vendor || 'unnamed adapter';
  if (mlcModelNeedsShaderF16(mlcModelId) && !support.shaderF16) {
    return cpu('no-shader-f16', `the WebGPU adapter (${adapterName}) lacks shader-f16, which ${mlcModelId} needs; using the CPU engine`);
  }
  if (forced) return { backend: 'webgpu', reason: `WebGPU was chosen (${adapterName})`, code: 'webgpu-chosen', fallback: false };
  if (support.adapter?.isFallbackAdapter) {
    return cpu('software-adapter', `only a software WebGPU adapter (${adapterName}) is available, slower than the CPU engine`);
  }
  if (!support.shaderF16) {
    return cpu('no-shader-f16', `the WebGPU adapter (${adapterName}) lacks shader-f16, so WebGPU would be slow; using the CPU engine`);
  }
  return { backend: 'webgpu', reason: `WebGPU adapter ${adapterName} with shader-f16`, code: 'webgpu-ok', fallback: false };
}

/** A model known in both forms: the GGUF the CPU engine runs and, optionally, web-llm's MLC build. */
export interface ModelPair {
  url: string;
  mlcModelId?: string;
  /** The GGUF model's mode; an MLC build of a hybrid model is asked not to think when false. */
  thinking?: boolean;
}

export interface CreateEngineOptions {
  backend?: BackendPreference;
  /** Told why the engine runs on the CPU although WebGPU was asked for or tried (the choice has a code for UIs). */
  onFallback?(reason: string, choice: BackendChoice): void;
  /** GGUF URL ↔ MLC build pairs (default: the catalogue). */
  models?: readonly ModelPair[];
  /** Options of the WebGPU engine (e.g. web-llm's appConfig). */
  webgpu?: WebGpuEngineOptions;
  /** Options of the CPU engine. */
  cpu?: WorkerEngineOptions;
  /** The probe result to decide with (default: detectWebGPU() once, here). */
  support?: WebGpuSupport;
  /**
   * Engine factories (default: createWorkerEngine / createWebGpuEngine). For embedders with
   * their own engines, and for tests of the switching on a machine whose GPU cannot be lost.
   */
  engines?: { cpu?: () => TerminableEngine; webgpu?: () => WebGpuEngine };
}

export type TerminableEngine = Engine & {
  terminate(): void;
  /** Set once the engine's worker is gone for good (see WorkerEngine.failure). */
  failure?(): EngineError | undefined;
};

export interface SwitchingEngine extends Engine {
  /** The last decision taken by load(), with its reason. */
  choice(): BackendChoice | undefined;
  /** What detectWebGPU() found. */
  readonly support: WebGpuSupport;
  /** Stops both engines' workers. */
  terminate(): void;
}

/** Why a WebGPU load failed, for the fallback message. */
function failureText(error: unknown): string {
  if (isEngineError(error)) return error.detail ? `${error.message} [${error.detail}]` : error.message;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

class BackendSwitchingEngine implements SwitchingEngine {
  readonly chat: { readonly completions: ChatCompletions };
  private readonly models: readonly ModelPair[];
  private cpuEngine: TerminableEngine | undefined;
  private gpuEngine: WebGpuEngine | undefined;
  private active: Engine | undefined;
  private lastChoice: BackendChoice | undefined;
  /** What to reload on the CPU if the GPU goes away after loading. */
  private loadedSpec: { model: ModelSpec; options: LoadOptions } | undefined;
  /** Default enable_thinking for the loaded MLC build (see ModelPair.thinking). */
  private thinkingDefault: boolean | undefined;
  /** The WebGPU engine failed after loading: switch on the next request. */
  private gpuLost: string | undefined;

  constructor(
    readonly support: WebGpuSupport,
    private readonly options: CreateEngineOptions,
  ) {
    this.models = options.models ?? CATALOGUE;
    const create = (request: ChatCompletionRequest) => this.create(request);
    this.chat = { completions: { create: create as ChatCompletions['create'] } };
  }

  get backend(): Backend {
    return this.active?.backend ?? this.lastChoice?.backend ?? 'cpu';
  }

  choice(): BackendChoice | undefined {
    return this.lastChoice;
  }

  /** The CPU engine; a fresh one (a new worker) when the last one died or hung. */
  private cpu(): TerminableEngine {
    if (this.cpuEngine?.failure?.()) {
      if (this.active === this.cpuEngine) this.active = undefined;
      this.cpuEngine = undefined;
    }
    return (this.cpuEngine ??= this.options.engines?.cpu?.() ?? createWorkerEngine(this.options.cpu));
  }

  private gpu(): WebGpuEngine {
    return (this.gpuEngine ??= this.options.engines?.webgpu?.() ?? createWebGpuEngine(this.options.webgpu));
  }

  private pairFor(model: ModelSpec): ModelPair | undefined {
    if (model.kind === 'url') return this.models.find((pair) => pair.url === model.url);
    if (model.kind === 'mlc') return this.models.find((pair) => pair.mlcModelId === model.modelId);
    return undefined;
  }

  /** The spec the CPU engine can load for `model`. */
  private cpuSpecFor(model: ModelSpec): ModelSpec {
    if (model.kind !== 'mlc') return model;
    const url = this.pairFor(model)?.url;
    if (!url) {
      throw new EngineError('unsupported', `${model.modelId} has no GGUF counterpart, so it cannot run on the CPU engine`);
    }
    return { kind: 'url', url };
  }

  private notify(choice: BackendChoice): void {
    try {
      this.options.onFallback?.(choice.reason, choice);
    } catch {
      // A failing listener must not stop the fallback.
    }
  }

  private dropGpu(): void {
    this.gpuEngine?.terminate(); // frees GPU memory at once; a fresh worker is made if needed
    this.gpuEngine = undefined;
  }

  async load(model: ModelSpec, options: LoadOptions = {}): Promise<ModelInfo> {
    await this.unload();
    const pair = this.pairFor(model);
    const mlcModelId = model.kind === 'mlc' ? model.modelId : pair?.mlcModelId;
    const choice = chooseBackend(this.options.backend ?? 'auto', this.support, { mlcModelId });
    this.lastChoice = choice;
    this.loadedSpec = { model, options: { ...options, signal: undefined } };
    if (choice.backend === 'webgpu' && mlcModelId) {
      try {
        const info = await this.gpu().load({ kind: 'mlc', modelId: mlcModelId }, options);
        this.active = this.gpuEngine;
        this.thinkingDefault = pair?.thinking === false ? false : undefined;
        return info;
      } catch (error) {
        if (options.signal?.aborted || isEngineError(error, 'aborted')) throw error;
        this.dropGpu();
        // An MLC model without a GGUF counterpart has nowhere to fall back to: say why WebGPU failed.
        if (model.kind === 'mlc' && !pair?.url) throw error;
        const detail = failureText(error);
        this.lastChoice = { backend: 'cpu', reason: `WebGPU failed: ${detail}. Using the CPU engine.`, code: 'webgpu-failed', detail, fallback: true };
        this.notify(this.lastChoice);
      }
    } else if (choice.fallback) {
      this.cpuSpecFor(model); // throws 'unsupported' before announcing a fallback that cannot happen
      this.notify(choice);
    }
    const cpu = this.cpu();
    try {
      const info = await cpu.load(this.cpuSpecFor(model), options);
      this.active = cpu;
      this.thinkingDefault = undefined;
      return info;
    } catch (error) {
      // A worker that could not fetch part of its code keeps that failure (Firefox): the next
      // load gets a fresh worker.
      if (isCodeUnavailable(error) && this.cpuEngine === cpu) {
        cpu.terminate();
        this.cpuEngine = undefined;
      }
      throw error;
    }
  }

  /** After a lost GPU: the same model on the CPU engine. */
  private async switchToCpu(detail: string): Promise<void> {
    const loaded = this.loadedSpec;
    this.gpuLost = undefined;
    this.active = undefined;
    this.dropGpu();
    this.lastChoice = { backend: 'cpu', reason: `The WebGPU engine stopped working (${detail}). Switching to the CPU engine.`, code: 'gpu-lost', detail, fallback: true };
    this.notify(this.lastChoice);
    if (!loaded) throw new EngineError('no-model', 'no model is loaded');
    await this.cpu().load(this.cpuSpecFor(loaded.model), loaded.options);
    this.active = this.cpuEngine;
    this.thinkingDefault = undefined;
  }

  private async create(request: ChatCompletionRequest): Promise<unknown> {
    if (this.gpuLost !== undefined) await this.switchToCpu(this.gpuLost);
    const engine = this.active;
    if (!engine) throw new EngineError('no-model', 'no model is loaded: call load() first');
    if (engine !== this.gpuEngine) return engine.chat.completions.create(request);

    const gpuRequest =
      request.enable_thinking === undefined && this.thinkingDefault !== undefined
        ? { ...request, enable_thinking: this.thinkingDefault }
        : request;
    try {
      const result = await engine.chat.completions.create(gpuRequest);
      return request.stream ? this.watchStream(result as AsyncIterable<never>) : result;
    } catch (error) {
      if (!this.isGpuGone(error)) throw error;
      await this.switchToCpu(failureText(error));
      return this.cpuEngine!.chat.completions.create(request);
    }
  }

  /** A lost device or a dead worker: the GPU engine cannot serve anything any more. */
  private isGpuGone(error: unknown): boolean {
    return isEngineError(error) && (error.detail === 'device-lost' || error.code === 'worker-failed');
  }

  /** A stream that fails mid-way cannot be retried (its text was shown): switch before the next request. */
  private async *watchStream<T>(stream: AsyncIterable<T>): AsyncGenerator<T, void, undefined> {
    try {
      yield* stream;
    } catch (error) {
      if (this.isGpuGone(error)) this.gpuLost = failureText(error);
      throw error;
    }
  }

  interrupt(): void {
    this.active?.interrupt();
  }

  async unload(): Promise<void> {
    const engine = this.active;
    this.active = undefined;
    this.loadedSpec = undefined;
    this.gpuLost = undefined;
    if (engine) await engine.unload();
  }

  info(): ModelInfo | undefined {
    return this.active?.info();
  }

  async countPromptTokens(request: ChatCompletionRequest): Promise<number> {
    const engine = this.active;
    if (!engine) throw new EngineError('no-model', 'no model loaded: call load() first');
    if (!engine.countPromptTokens) throw new EngineError('unsupported', `the ${engine.backend} engine cannot count prompt tokens`);
    return engine.countPromptTokens(request);
  }

  terminate(): void {
    this.active = undefined;
    this.gpuEngine?.terminate();
    this.cpuEngine?.terminate();
  }
}

/**
 * The engine the UI uses. Detects WebGPU once; each load() then chooses the backend for that
 * model (see chooseBackend) and falls back to the CPU engine, calling onFallback, whenever
 * WebGPU was asked for or tried and cannot serve.
 */
export async function createEngine(options: CreateEngineOptions = {}): Promise<SwitchingEngine> {
  const preference = options.backend ?? 'auto';
  const support = options.support ?? (preference === 'cpu' ? noProbe() : await detectWebGPU());
  return new BackendSwitchingEngine(support, options);
}

/** 'cpu' needs no probe (and should not wake a GPU). */
function noProbe(): WebGpuSupport {
  return { available: false, reason: 'not probed (the CPU engine was chosen)', reasonCode: 'not-probed', shaderF16: false, maxBufferSize: 0, maxStorageBufferBindingSize: 0 };
}
