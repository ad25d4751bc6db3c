// Module Worker hosting @mlc-ai/web-llm's MLCEngine for the WebGPU backend, reached through
// comlink from src/engine/webgpu-engine.ts. web-llm (≈ 6.8 MB of JavaScript) is imported here
// only, and only when a model is loaded, so the CPU path never downloads it.
//
// Its API is src/engine/webllm-protocol.ts.
import * as Comlink from 'comlink';
import type * as WebLlm from '@mlc-ai/web-llm';
import { EngineError, errorInfo } from '../src/engine/errors.ts';
import type { ChatCompletionChunk } from '../src/engine/types.ts';
import type { Result, WebLlmWorkerApi } from '../src/engine/webllm-protocol.ts';
import {
  classifyWebLlmError,
  fromWebLlmProgress,
  fromWebLlmStream,
  mlcModelNeedsShaderF16,
  toWebLlmRequest,
} from '../src/engine/webllm-mapping.ts';
import { gpuOfThisContext, requestWebLlmAdapter, summarizeAdapter } from '../src/engine/webgpu-detect.ts';
import { importCode } from '../src/lazy-code.ts';

type WebLlmModule = typeof import('@mlc-ai/web-llm');

let webllmModule: Promise<WebLlmModule> | undefined;
let engine: WebLlm.MLCEngine | undefined;
let loadedModelId: string | undefined;
/** Set when the GPU device web-llm uses is lost for a reason other than our own unload. */
let deviceLostMessage: string | undefined;
/** interrupt() was called during the current request (see interruptible). */
let interruptRequested = false;
let nextStreamId = 1;
const streams = new Map<number, AsyncGenerator<ChatCompletionChunk, void, undefined>>();

// web-llm clears its interrupt flag when a generation starts (at the stream's first read), so an
// interrupt that arrives before that would be lost: repeat it after each chunk until it holds.
async function* interruptible(
  source: AsyncIterable<WebLlm.ChatCompletionChunk>,
): AsyncGenerator<WebLlm.ChatCompletionChunk, void, undefined> {
  for await (const chunk of source) {
    yield chunk;
    if (interruptRequested) void engine?.interruptGenerate();
  }
}

function importWebLlm(): Promise<WebLlmModule> {
  // A failed fetch is not kept: the next load tries again (in a fresh worker where it has to).
  return (webllmModule ??= importCode('WebLLM', () => import('@mlc-ai/web-llm')).catch((error: unknown) => {
    webllmModule = undefined;
    throw error;
  }));
}

// web-llm logs a lost device and unloads, but tells its caller nothing until the next request
// fails with "model not loaded". Watching the devices it creates lets us say why.
interface DeviceLike {
  lost: Promise<{ reason?: string; message?: string }>;
}
function watchDeviceLoss(): void {
  const adapterClass = (globalThis as { GPUAdapter?: { prototype: { requestDevice: (...args: unknown[]) => Promise<DeviceLike> } } }).GPUAdapter;
  if (!adapterClass) return;
  const original = adapterClass.prototype.requestDevice;
  adapterClass.prototype.requestDevice = async function (this: unknown, ...args: unknown[]) {
    const device = await original.apply(this, args);
    void device.lost.then((info) => {
      // 'destroyed': web-llm's own unload destroys the device on purpose.
      if (info.reason !== 'destroyed') deviceLostMessage = info.message || 'unknown reason';
    });
    return device;
  };
}
watchDeviceLoss();

// The app runs under a strict CSP (no 'unsafe-eval'). web-llm 0.2.86's bundle has no eval or
// new Function; should a later version add one, say so plainly instead of failing vaguely.
globalThis.addEventListener('securitypolicyviolation', (event) => {
  const { blockedURI, violatedDirective } = event as SecurityPolicyViolationEvent;
  console.error(`Content Security Policy refused ${blockedURI} (${violatedDirective}) in the WebGPU worker`);
});

async function outcome<T>(work: () => Promise<T>, phase: 'load' | 'chat'): Promise<Result<T>> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    return { ok: false, error: errorInfo(classifyWebLlmError(error, phase, deviceLostMessage !== undefined)) };
  }
}

async function unloadEngine(): Promise<void> {
  for (const stream of streams.values()) void stream.return(undefined);
  streams.clear();
  loadedModelId = undefined;
  const current = engine;
  engine = undefined;
  if (current) await current.unload();
}

const api: WebLlmWorkerApi = {
  load(request, onProgress) {
    return outcome(async () => {
      await unloadEngine();
      deviceLostMessage = undefined;
      const gpu = gpuOfThisContext();
      if (!gpu) {
        throw new EngineError('load-failed', 'this browser has no WebGPU (navigator.gpu is missing)', { detail: 'no-webgpu' });
      }
      const adapter = await requestWebLlmAdapter(gpu);
      if (!adapter) {
        throw new EngineError('load-failed', 'no WebGPU adapter: no usable GPU, or WebGPU is switched off', { detail: 'no-adapter' });
      }
      const webllm = await importWebLlm();
      const appConfig: WebLlm.AppConfig = { ...(request.appConfig ?? webllm.prebuiltAppConfig), cacheBackend: 'indexeddb' };
      const record = appConfig.model_list.find((model) => model.model_id === request.modelId);
      if (!record) {
        throw new EngineError('load-failed', `web-llm has no model ${JSON.stringify(request.modelId)}`, { detail: 'unknown-model' });
      }
      // Checked here because web-llm's Qwen3 q4f16 records do not list shader-f16 as required:
      // without it, loading would fail later in shader compilation, less clearly.
      if (mlcModelNeedsShaderF16(record.model_id, record) && !adapter.features.has('shader-f16')) {
        throw new EngineError('load-failed', `${record.model_id} needs the WebGPU feature shader-f16, which this adapter lacks`, {
          detail: 'no-shader-f16',
        });
      }
      const created = new webllm.MLCEngine({
        appConfig,
        initProgressCallback: onProgress ? (report) => onProgress(fromWebLlmProgress(report)) : undefined,
      });
      engine = created;
      const chatOptions: WebLlm.ChatOptions = {};
      if (request.contextLength !== undefined) chatOptions.context_window_size = request.contextLength;
      await created.reload(record.model_id, chatOptions);
      if (engine !== created) {
        throw new EngineError('aborted', 'the load was cancelled');
      }
      loadedModelId = record.model_id;
      return {
        modelId: record.model_id,
        contextLength: request.contextLength ?? record.overrides?.context_window_size ?? 4096,
        memoryBytes: Math.round((record.vram_required_MB ?? 0) * 1024 * 1024),
        adapter: summarizeAdapter(adapter),
      };
    }, 'load');
  },

  startChat(request) {
    return outcome(async () => {
      if (deviceLostMessage !== undefined) {
        throw new EngineError('no-model', `the WebGPU device was lost: ${deviceLostMessage}`, { detail: 'device-lost' });
      }
      if (!engine || loadedModelId === undefined) throw new EngineError('no-model', 'no model is loaded on the WebGPU engine');
      if (streams.size > 0) throw new EngineError('busy', 'a generation is already running');
      const { request: mapped, ignored } = toWebLlmRequest(request);
      interruptRequested = false;
      const source = await engine.chat.completions.create(mapped);
      const streamId = nextStreamId++;
      streams.set(streamId, fromWebLlmStream(interruptible(source)));
      return { streamId, ignored };
    }, 'chat');
  },

  nextChunk(streamId) {
    return outcome(async () => {
      const stream = streams.get(streamId);
      if (!stream) return null;
      try {
        const next = await stream.next();
        if (next.done) {
          streams.delete(streamId);
          return null;
        }
        return next.value;
      } catch (error) {
        streams.delete(streamId);
        throw error;
      }
    }, 'chat');
  },

  async cancelChat(streamId) {
    const stream = streams.get(streamId);
    if (!stream) return;
    streams.delete(streamId);
    interruptRequested = true;
    await engine?.interruptGenerate();
    try {
      await stream.return(undefined);
    } catch {
      // The stream's own error no longer has a reader.
    }
  },

  interrupt() {
    if (streams.size > 0) interruptRequested = true;
    void engine?.interruptGenerate();
  },

  unload() {
    return outcome(unloadEngine, 'load');
  },
};

Comlink.expose(api);
