// createEngine()'s switching between backends, in Node. The CPU side is the real CpuEngine on a
// fixture model (served by URL); the WebGPU side is a scripted stand-in, because a model cannot
// be loaded on WebGPU here (no GPU, no network for web-llm's files) and so a device can never be
// lost after a load. The stand-in fails exactly as our web-llm worker does (EngineError 'no-model'
// with detail 'device-lost', see classifyWebLlmError and tests/engine/webgpu-mapping.test.ts); the real
// worker's load failures and the fallback they cause run in Chromium (tests/browser/webgpu.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type ModelPair, type SwitchingEngine } from '../../src/engine/backend.ts';
import { CpuEngine } from '../../src/engine/cpu-engine.ts';
import { EngineError } from '../../src/engine/errors.ts';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletions,
  LoadOptions,
  ModelInfo,
  ModelSpec,
} from '../../src/engine/types.ts';
import type { WebGpuEngine } from '../../src/engine/webgpu-engine.ts';
import type { WebGpuSupport } from '../../src/engine/webgpu-detect.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { startStaticServer, type StaticServer } from '../support/static-server.ts';

const FIXTURE = 'tiny-f32';
const CPU_LOAD = { threads: 2, build: 'simd128', contextLength: 256 } as LoadOptions;
const MLC_ID = 'Qwen3-0.6B-q4f16_1-MLC';
const GPU_ANSWER = 'answer from the GPU';
const REAL_GPU: WebGpuSupport = {
  available: true,
  adapter: { vendor: 'test', architecture: 'test', description: 'test GPU', isFallbackAdapter: false },
  shaderF16: true,
  maxBufferSize: 2 ** 32,
  maxStorageBufferBindingSize: 2 ** 31,
};
const NO_GPU: WebGpuSupport = { available: false, reason: 'no WebGPU adapter', shaderF16: false, maxBufferSize: 0, maxStorageBufferBindingSize: 0 };

const lostError = () => new EngineError('no-model', 'the WebGPU device was lost: scripted', { detail: 'device-lost' });

/** Loads (or fails to, as told), answers GPU_ANSWER, and loses its device when told. */
class ScriptedGpuEngine implements WebGpuEngine {
  readonly backend = 'webgpu' as const;
  readonly chat: { readonly completions: ChatCompletions };
  readonly requests: ChatCompletionRequest[] = [];
  loads: ModelSpec[] = [];
  loadError: Error | undefined;
  /** 'create': the next create() fails; 'mid-stream': the next stream fails after one chunk. */
  lose: 'create' | 'mid-stream' | undefined;
  terminated = false;
  private loaded: ModelInfo | undefined;

  constructor() {
    const create = async (request: ChatCompletionRequest) => {
      this.requests.push(request);
      if (this.lose === 'create') throw lostError();
      const chunk = (content: string, finish: 'stop' | null): ChatCompletionChunk => ({
        id: 'gpu', object: 'chat.completion.chunk', created: 0, model: MLC_ID,
        choices: [{ index: 0, delta: { content }, finish_reason: finish }],
      });
      if (request.stream) {
        const lose = this.lose === 'mid-stream';
        return (async function* () {
          yield chunk('answer ', null);
          if (lose) throw lostError();
          yield chunk('from the GPU', 'stop');
        })();
      }
      const completion: ChatCompletion = {
        id: 'gpu', object: 'chat.completion', created: 0, model: MLC_ID,
        choices: [{ index: 0, message: { role: 'assistant', content: GPU_ANSWER }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, extra: {
          cached_prompt_tokens: 0, prefilled_tokens: 1, dropped_messages: 0, time_to_first_token_s: 0, prefill_tokens_per_s: 0, decode_tokens_per_s: 0 } },
      };
      return completion;
    };
    this.chat = { completions: { create: create as ChatCompletions['create'] } };
  }

  async load(model: ModelSpec, options: LoadOptions = {}): Promise<ModelInfo> {
    this.loads.push(model);
    if (options.signal?.aborted) throw new EngineError('aborted', 'the load was cancelled');
    if (this.loadError) throw this.loadError;
    this.loaded = { backend: 'webgpu', name: MLC_ID, quant: 'q4f16_1', contextLength: 4096, maxContextLength: 4096, memoryBytes: 1, supportsThinking: true, loadMs: 0 };
    return this.loaded;
  }
  interrupt(): void {}
  async unload(): Promise<void> {
    this.loaded = undefined;
  }
  info(): ModelInfo | undefined {
    return this.loaded;
  }
  adapter() {
    return REAL_GPU.adapter;
  }
  terminate(): void {
    this.terminated = true;
  }
}

let files: StaticServer;
let modelUrl: string;
let reference: CpuEngine;
const cpuEngines: CpuEngine[] = [];

beforeAll(async () => {
  const path = await ensureFixture(FIXTURE);
  files = await startStaticServer({ files: { [`/${FIXTURE}.gguf`]: path } });
  modelUrl = `${files.url}/${FIXTURE}.gguf`;
  reference = new CpuEngine();
  await reference.load({ kind: 'path', path }, CPU_LOAD);
}, 300_000);

afterAll(async () => {
  await reference?.unload();
  for (const engine of cpuEngines) await engine.unload();
  await files?.close();
});

async function setUp(backend: 'auto' | 'webgpu', support: WebGpuSupport, pair: Partial<ModelPair> = {}) {
  const gpu = new ScriptedGpuEngine();
  const reasons: string[] = [];
  let gpuCreated = 0;
  const models: ModelPair[] = [{ url: modelUrl, mlcModelId: MLC_ID, thinking: false, ...pair }];
  const engine: SwitchingEngine = await createEngine({
    backend,
    support,
    models,
    onFallback: (reason) => reasons.push(reason),
    engines: {
      cpu: () => {
        const cpu = new CpuEngine();
        cpuEngines.push(cpu);
        return Object.assign(cpu, { terminate: () => void cpu.unload() });
      },
      webgpu: () => {
        gpuCreated++;
        return gpu;
      },
    },
  });
  return { engine, gpu, reasons, gpuCreated: () => gpuCreated };
}

const ask: ChatCompletionRequest = { messages: [{ role: 'user', content: 'Tell me about lighthouses.' }], temperature: 0, max_tokens: 10 };

async function referenceAnswer(): Promise<string> {
  return (await reference.chat.completions.create({ ...ask, stream: false })).choices[0]!.message.content;
}

async function drain(stream: AsyncIterable<ChatCompletionChunk>): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  return text;
}

describe('createEngine: switching between backends', () => {
  it('runs on WebGPU when chosen, asking a hybrid build not to think for a non-thinking model', async () => {
    const { engine, gpu, reasons } = await setUp('auto', REAL_GPU);
    const info = await engine.load({ kind: 'url', url: modelUrl }, CPU_LOAD);
    expect(info.backend).toBe('webgpu');
    expect(gpu.loads).toEqual([{ kind: 'mlc', modelId: MLC_ID }]);
    expect(engine.backend).toBe('webgpu');
    const answer = await engine.chat.completions.create({ ...ask, stream: false });
    expect(answer.choices[0]!.message.content).toBe(GPU_ANSWER);
    await engine.chat.completions.create({ ...ask, enable_thinking: true });
    expect(gpu.requests.map((r) => r.enable_thinking)).toEqual([false, true]);
    expect(reasons).toEqual([]);
  });

  it('after a lost device, the next request runs on the CPU engine, with a message', async () => {
    const { engine, gpu, reasons } = await setUp('auto', REAL_GPU);
    await engine.load({ kind: 'url', url: modelUrl }, CPU_LOAD);
    gpu.lose = 'create';
    const answer = await engine.chat.completions.create({ ...ask, stream: false });
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/device was lost.*Switching to the CPU engine/);
    expect(engine.backend).toBe('cpu');
    expect(engine.info()?.backend).toBe('cpu');
    expect(engine.choice()).toMatchObject({ backend: 'cpu', fallback: true });
    expect(gpu.terminated).toBe(true);
    expect(answer.choices[0]!.message.content).toBe(await referenceAnswer());
    // The CPU request is the caller's own: no thinking default added.
    expect(gpu.requests).toHaveLength(1);
  }, 120_000);

  it('a stream cut by a lost device fails; the next request switches to the CPU engine', async () => {
    const { engine, gpu, reasons } = await setUp('auto', REAL_GPU);
    await engine.load({ kind: 'url', url: modelUrl }, CPU_LOAD);
    gpu.lose = 'mid-stream';
    const failed = await drain(await engine.chat.completions.create({ ...ask, stream: true })).catch((e: unknown) => e);
    expect(failed).toMatchObject({ name: 'EngineError', code: 'no-model', detail: 'device-lost' });
    expect(reasons).toEqual([]);
    const text = await drain(await engine.chat.completions.create({ ...ask, stream: true }));
    expect(reasons).toHaveLength(1);
    expect(engine.backend).toBe('cpu');
    expect(text).toBe(await referenceAnswer());
  }, 120_000);

  it('a failing WebGPU load falls back to the CPU engine with the reason', async () => {
    const { engine, gpu, reasons } = await setUp('webgpu', REAL_GPU);
    gpu.loadError = new EngineError('load-failed', 'Failed to store http://x/mlc-chat-config.json', { detail: 'fetch-failed' });
    const info = await engine.load({ kind: 'url', url: modelUrl }, CPU_LOAD);
    expect(info.backend).toBe('cpu');
    expect(reasons).toEqual(['WebGPU failed: Failed to store http://x/mlc-chat-config.json [fetch-failed]. Using the CPU engine.']);
    expect(gpu.terminated).toBe(true);
    expect((await engine.chat.completions.create({ ...ask, stream: false })).choices[0]!.message.content).toBe(await referenceAnswer());
  }, 120_000);

  it('a cancelled load stays cancelled: no fallback, no CPU load', async () => {
    const { engine, reasons } = await setUp('auto', REAL_GPU);
    const controller = new AbortController();
    controller.abort();
    const error = await engine.load({ kind: 'url', url: modelUrl }, { ...CPU_LOAD, signal: controller.signal }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'EngineError', code: 'aborted' });
    expect(reasons).toEqual([]);
    expect(engine.info()).toBeUndefined();
    await expect(engine.chat.completions.create(ask)).rejects.toMatchObject({ code: 'no-model' });
  });

  it("'webgpu' without an adapter says why and never starts the WebGPU engine", async () => {
    const { engine, reasons, gpuCreated } = await setUp('webgpu', NO_GPU);
    const info = await engine.load({ kind: 'url', url: modelUrl }, CPU_LOAD);
    expect(info.backend).toBe('cpu');
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/WebGPU is not available \(no WebGPU adapter\)/);
    expect(gpuCreated()).toBe(0);
  }, 120_000);

  it('an MLC model named directly falls back to its GGUF counterpart, and fails clearly without one', async () => {
    const { engine, gpu } = await setUp('webgpu', REAL_GPU);
    gpu.loadError = lostError();
    expect((await engine.load({ kind: 'mlc', modelId: MLC_ID }, CPU_LOAD)).backend).toBe('cpu');
    const other = await setUp('webgpu', REAL_GPU);
    other.gpu.loadError = new EngineError('load-failed', 'scripted failure', { detail: 'webllm' });
    // Nothing to fall back to: the caller learns why WebGPU failed, and no fallback is announced.
    await expect(other.engine.load({ kind: 'mlc', modelId: 'Qwen3-1.7B-q4f16_1-MLC' }, CPU_LOAD))
      .rejects.toMatchObject({ name: 'EngineError', code: 'load-failed', detail: 'webllm' });
    expect(other.reasons).toEqual([]);
    // Without an adapter it never reaches WebGPU, and the CPU engine cannot take an MLC id.
    const none = await setUp('webgpu', NO_GPU);
    await expect(none.engine.load({ kind: 'mlc', modelId: 'Qwen3-1.7B-q4f16_1-MLC' }, CPU_LOAD))
      .rejects.toMatchObject({ name: 'EngineError', code: 'unsupported' });
  }, 120_000);
});
