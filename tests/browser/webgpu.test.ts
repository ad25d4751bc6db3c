// The WebGPU backend in headless Chromium, as far as this machine allows (no GPU, no network):
//  - detection: by default Chromium gives no adapter; with --enable-unsafe-webgpu it gives
//    SwiftShader's software adapter (fallback adapter, no shader-f16);
//  - web-llm really starts in its worker on that adapter and fails loading, with typed errors
//    and without hanging: a q4f16 build is refused for lack of shader-f16, an unknown id is
//    refused, and a q4f32 build whose files are on 127.0.0.1 and answer 404 fails its download
//    (the static server sees web-llm's request; its IndexedDB cache store was opened);
//  - a load whose files never arrive is cancelled through its signal, and the engine stays usable;
//  - createEngine() then falls back to the CPU engine (the real engine worker), calls onFallback
//    with the reason, and answers on a fixture model: the same answer as an in-process CpuEngine
//    in Node (same kernels, greedy);
//  - the CPU path never downloads web-llm's code (and the WebGPU path does: the check can fail);
//  - everything runs under the app's strict CSP, sent with the page and the worker scripts: no
//    'unsafe-eval', only 'wasm-unsafe-eval' (web-llm's bundle has no eval / new Function).
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { CpuEngine } from '../../src/engine/cpu-engine.ts';
import type { BackendChoice, ModelPair } from '../../src/engine/backend.ts';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ModelInfo } from '../../src/engine/types.ts';
import type { WebGpuSupport } from '../../src/engine/webgpu-detect.ts';
import Ajv2020 from 'ajv/dist/2020.js';
import { JSON_SCHEMAS } from '../engine/json-schemas.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { launchChromium, type LaunchedChromium } from '../support/chromium.ts';
import { startStaticServer, type StaticServer } from '../support/static-server.ts';
import { startVitePages } from '../support/vite-pages.ts';

const FIXTURE = 'tiny-f32';
const THREADS = 2;
const CONTEXT = 256;
/** A page-side guard: a call still pending after this long is reported as hung. */
const HANG_MS = 90_000;
const F32_BUILD = 'Qwen3-0.6B-q4f32_1-MLC';
const F16_BUILD = 'Qwen3-0.6B-q4f16_1-MLC';
const OTHER_F32_BUILD = 'Qwen3-1.7B-q4f32_1-MLC';

// The app's strict CSP (no eval, no inline script; wasm allowed), sent with the page and with
// every module and worker script, so web-llm's code runs under it in its worker.
const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; " +
  "connect-src 'self' http://127.0.0.1:*; img-src 'self' data:; style-src 'self'";

const PAGE_HTML = `<!doctype html><meta charset="utf-8"><title>webgpu</title><link rel="icon" href="data:,">
<script type="module" src="/__webgpu-test/page.js"></script>`;

const PAGE_JS = `
  import { createEngine, detectWebGPU } from '/src/engine/backend.ts';
  import { createWebGpuEngine } from '/src/engine/webgpu-engine.ts';
  const describeError = (e) => ({ name: e.name, code: e.code, detail: e.detail, message: e.message });
  const guard = (promise) => Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve({ hung: true }), ${HANG_MS}))]);
  // Positive controls for the CSP, taken at load time (code run by page.evaluate itself may eval:
  // DevTools allows it during the call): the page and a worker both refuse eval.
  const evalRefused = () => { try { (0, eval)('1'); return false; } catch (e) { return e instanceof EvalError; } };
  const pageRefusesEval = evalRefused();
  const violations = [];
  document.addEventListener('securitypolicyviolation', (e) => violations.push(e.violatedDirective + ' ' + e.blockedURI));
  const probe = new Worker('/__webgpu-test/eval-worker.js', { type: 'module' });
  const workerRefusesEval = new Promise((resolve) => { probe.onmessage = (e) => resolve(e.data); });
  window.gpuApi = {
    async csp() {
      return { pageRefusesEval, workerRefusesEval: await workerRefusesEval, violations };
    },
    detect: () => detectWebGPU(),
    async storage() {
      return { indexedDB: (await indexedDB.databases()).map((db) => db.name), cacheApi: await caches.keys() };
    },
    loadWebGpu: (modelId, appConfig) => guard((async () => {
      const engine = createWebGpuEngine({ appConfig });
      const progress = [];
      try {
        const info = await engine.load({ kind: 'mlc', modelId }, { onProgress: (p) => progress.push(p) });
        return { info, progress };
      } catch (e) {
        return { error: describeError(e), progress, info: engine.info() ?? null };
      } finally {
        engine.terminate();
      }
    })()),
    // A load whose files never arrive, cancelled through its signal once the server holds the request.
    startHangingLoad(modelId, appConfig) {
      const engine = createWebGpuEngine({ appConfig });
      const controller = new AbortController();
      const result = engine.load({ kind: 'mlc', modelId }, { signal: controller.signal })
        .then((info) => ({ info }), (e) => ({ error: describeError(e) }));
      window.hanging = { engine, controller, result };
    },
    abortHangingLoad: (nextModelId) => guard((async () => {
      const { engine, controller, result } = window.hanging;
      controller.abort();
      const aborted = await result;
      // The same engine still answers: the next load runs (and fails on its 404).
      const next = await engine.load({ kind: 'mlc', modelId: nextModelId }).then((info) => ({ info }), (e) => ({ error: describeError(e) }));
      engine.terminate();
      return { aborted, next };
    })()),
    run: ({ backend, models, appConfig, url, loadOptions, request }) => guard((async () => {
      const reasons = [];
      const engine = await createEngine({ backend, models, webgpu: { appConfig }, cpu: { threads: ${THREADS} }, onFallback: (r) => reasons.push(r) });
      try {
        const info = await engine.load({ kind: 'url', url }, loadOptions);
        const completion = await engine.chat.completions.create({ ...request, stream: false });
        const chunks = [];
        for await (const chunk of await engine.chat.completions.create({ ...request, stream: true })) chunks.push(chunk);
        return { info, reasons, choice: engine.choice(), backend: engine.backend, support: engine.support, completion, chunks };
      } catch (e) {
        return { error: describeError(e), reasons, choice: engine.choice() };
      } finally {
        engine.terminate();
      }
    })()),
  };
`;

interface ErrorReport { name: string; code?: string; detail?: string; message: string }
interface LoadReport { info?: ModelInfo | null; progress?: unknown[]; error?: ErrorReport; hung?: true }
interface RunReport {
  info?: ModelInfo;
  reasons: string[];
  choice?: BackendChoice;
  backend?: string;
  support?: WebGpuSupport;
  completion?: ChatCompletion;
  chunks?: ChatCompletionChunk[];
  error?: ErrorReport;
  hung?: true;
}

let vite: ViteDevServer;
let viteUrl: string;
let files: StaticServer;
let fixturePath: string;
let modelUrl: string;
let node: CpuEngine;

/** web-llm's model list pointing at our static server, where nothing of it exists. */
function localAppConfig() {
  const base = `${files.url}/mlc`;
  return {
    model_list: [F32_BUILD, F16_BUILD].map((id) => ({ model: `${base}/${id}`, model_id: id, model_lib: `${base}/${id}-webgpu.wasm` })),
  };
}

const request: ChatCompletionRequest = {
  messages: [{ role: 'user', content: 'Tell me about lighthouses.' }],
  temperature: 0,
  max_tokens: 12,
};

async function openPage(chromium: LaunchedChromium): Promise<Page> {
  const page = await chromium.newPage();
  await page.goto(`${viteUrl}/__webgpu-test/index.html`);
  await page.waitForFunction(() => typeof (window as unknown as { gpuApi?: unknown }).gpuApi === 'object');
  return page;
}

function api<T>(page: Page, method: string, ...args: unknown[]): Promise<T> {
  return page.evaluate(([m, a]) => (window as unknown as { gpuApi: Record<string, (...x: unknown[]) => Promise<T>> })
    .gpuApi[m as string]!(...(a as unknown[])), [method, args] as const);
}

/** Every URL the browser (pages and workers) requested. */
function recordRequests(chromium: LaunchedChromium): string[] {
  const urls: string[] = [];
  chromium.browser.on('request', (request) => urls.push(request.url()));
  return urls;
}

/** The CSP each worker script arrived with (URL path → header). */
function recordWorkerCsp(chromium: LaunchedChromium): Map<string, string | undefined> {
  const seen = new Map<string, string | undefined>();
  chromium.browser.on('response', (response) => {
    const path = new URL(response.url()).pathname;
    if (path.startsWith('/workers/')) seen.set(path, response.headers()['content-security-policy']);
  });
  return seen;
}

/** The page's and the probe worker's own refused eval, and no other violation on the page. */
const CSP_PROBES_ONLY = { pageRefusesEval: true, workerRefusesEval: true, violations: ['script-src eval'] };
/**
 * CSP refusals reported by workers (as console errors), other than the probe's own, after
 * checking that the probe's own report did arrive.
 */
function cspErrors(chromium: LaunchedChromium): string[] {
  expect(chromium.consoleErrors.some((e) => e.startsWith('probe: Content Security Policy refused eval'))).toBe(true);
  return chromium.consoleErrors.filter((e) => /Content Security Policy/i.test(e) && !e.startsWith('probe: '));
}

const isWebLlmCode = (url: string) => /@mlc-ai[/_]web-llm/.test(url);
const text = (chunks: ChatCompletionChunk[]) => chunks.map((chunk) => chunk.choices[0]!.delta.content ?? '').join('');

beforeAll(async () => {
  fixturePath = await ensureFixture(FIXTURE);
  files = await startStaticServer({ files: { [`/${FIXTURE}.gguf`]: fixturePath } });
  modelUrl = `${files.url}/${FIXTURE}.gguf`;
  const pages = await startVitePages({
    '/__webgpu-test/index.html': { type: 'text/html', body: PAGE_HTML },
    '/__webgpu-test/page.js': { type: 'text/javascript', body: PAGE_JS },
    '/__webgpu-test/eval-worker.js': {
      type: 'text/javascript',
      // Reports violations as the WebGPU worker does, so the test sees that such reports arrive.
      body: "addEventListener('securitypolicyviolation', (e) => console.error('probe: Content Security Policy refused ' + e.blockedURI));" +
        "postMessage((() => { try { (0, eval)('1'); return false; } catch (e) { return e instanceof EvalError; } })());",
    },
  }, { headers: { 'Content-Security-Policy': CSP } });
  vite = pages.server;
  viteUrl = pages.url;
  node = new CpuEngine();
  await node.load({ kind: 'path', path: fixturePath }, { threads: THREADS, build: 'simd128', contextLength: CONTEXT } as never);
}, 300_000);

afterAll(async () => {
  await node?.unload();
  await vite?.close();
  await files?.close();
});

describe('without WebGPU (Chromium default: no adapter)', () => {
  let chromium: LaunchedChromium;
  let page: Page;
  let requested: string[];
  let workerCsp: Map<string, string | undefined>;
  beforeAll(async () => {
    chromium = await launchChromium();
    requested = recordRequests(chromium);
    workerCsp = recordWorkerCsp(chromium);
    page = await openPage(chromium);
  }, 120_000);
  afterAll(async () => chromium?.close());

  it('detects no adapter and says why', async () => {
    const support = await api<WebGpuSupport>(page, 'detect');
    expect(support).toMatchObject({ available: false, shaderF16: false, maxBufferSize: 0 });
    expect(support.reason).toMatch(/no WebGPU adapter/);
  });

  it("'webgpu' falls back to the CPU engine with a message and answers like Node; web-llm is never fetched", async () => {
    const models: ModelPair[] = [{ url: modelUrl, mlcModelId: F32_BUILD }];
    const report = await api<RunReport>(page, 'run', {
      backend: 'webgpu', models, appConfig: localAppConfig(), url: modelUrl,
      loadOptions: { threads: THREADS, build: 'simd128', contextLength: CONTEXT }, request,
    });
    expect(report.hung).toBeUndefined();
    expect(report.error).toBeUndefined();
    expect(report.info?.backend).toBe('cpu');
    expect(report.backend).toBe('cpu');
    expect(report.reasons).toHaveLength(1);
    expect(report.reasons[0]).toMatch(/WebGPU is not available \(no WebGPU adapter/);
    expect(report.choice).toMatchObject({ backend: 'cpu', fallback: true });
    const expected = (await node.chat.completions.create({ ...request, stream: false })).choices[0]!.message.content;
    expect(report.completion!.choices[0]!.message.content).toBe(expected);
    expect(text(report.chunks!)).toBe(expected);
    // Decided on the page before any WebGPU worker started: web-llm's code was never requested.
    expect(requested.filter(isWebLlmCode)).toEqual([]);
    expect(requested.some((url) => url.includes('/workers/engine-worker.ts'))).toBe(true);
    // All of it under the strict CSP: the page refuses eval, the worker came with the policy, nothing was refused.
    expect(await api(page, 'csp')).toEqual(CSP_PROBES_ONLY);
    expect(workerCsp.get('/workers/engine-worker.ts')).toBe(CSP);
    expect(cspErrors(chromium)).toEqual([]);
  }, 180_000);

  it('holds an answer to a JSON Schema under the strict CSP: the grammar engine (XGrammar) runs in the worker without eval', async () => {
    const schemaRequest: ChatCompletionRequest = { ...request, response_format: { type: 'json_schema', json_schema: { name: 'person', schema: JSON_SCHEMAS.person, strict: true } }, max_tokens: 200 };
    const report = await api<RunReport>(page, 'run', {
      backend: 'cpu', models: [], appConfig: localAppConfig(), url: modelUrl,
      loadOptions: { threads: THREADS, build: 'simd128', contextLength: CONTEXT }, request: schemaRequest,
    });
    expect(report.error).toBeUndefined();
    const answer = report.completion!.choices[0]!.message.content;
    expect(new Ajv2020({ strict: false }).validate(JSON_SCHEMAS.person!, JSON.parse(answer))).toBe(true);
    expect(answer).toBe((await node.chat.completions.create({ ...schemaRequest, stream: false })).choices[0]!.message.content);
    expect(await api(page, 'csp')).toEqual(CSP_PROBES_ONLY);
    expect(cspErrors(chromium)).toEqual([]);
  }, 180_000);
});

describe('with SwiftShader (--enable-unsafe-webgpu)', () => {
  let chromium: LaunchedChromium;
  let page: Page;
  let requested: string[];
  let workerCsp: Map<string, string | undefined>;
  beforeAll(async () => {
    chromium = await launchChromium({ extraArgs: ['--enable-unsafe-webgpu'] });
    requested = recordRequests(chromium);
    workerCsp = recordWorkerCsp(chromium);
    page = await openPage(chromium);
  }, 120_000);
  afterAll(async () => chromium?.close());

  it('detects the software fallback adapter without shader-f16', async () => {
    const support = await api<WebGpuSupport>(page, 'detect');
    expect(support.available).toBe(true);
    expect(support.reason).toBeUndefined();
    expect(support.adapter?.isFallbackAdapter).toBe(true);
    expect(support.shaderF16).toBe(false);
    expect(support.maxBufferSize).toBeGreaterThan(0);
    expect(support.maxStorageBufferBindingSize).toBeGreaterThan(0);
  });

  it('web-llm starts in its worker and fails a q4f32 load whose files 404, with a typed error', async () => {
    const before = files.requests.length;
    const report = await api<LoadReport>(page, 'loadWebGpu', F32_BUILD, localAppConfig());
    expect(report.hung).toBeUndefined();
    expect(report.error).toMatchObject({ name: 'EngineError', code: 'load-failed', detail: 'fetch-failed' });
    expect(report.info).toBeNull();
    // web-llm itself asked our server for the model's chat config (its first download).
    const asked = files.requests.slice(before).map((r) => `${r.status} ${r.path}`);
    expect(asked).toContain(`404 /mlc/${F32_BUILD}/resolve/main/mlc-chat-config.json`);
    expect(requested.some(isWebLlmCode)).toBe(true);
    // web-llm used its IndexedDB cache backend (its config store), not the Cache API.
    const storage = await api<{ indexedDB: string[]; cacheApi: string[] }>(page, 'storage');
    expect(storage.indexedDB).toContain('webllm/config');
    expect(storage.cacheApi.filter((name) => name.startsWith('webllm'))).toEqual([]);
    // web-llm's whole bundle was evaluated in a worker under the strict CSP without a refusal.
    expect(workerCsp.get('/workers/webllm-worker.ts')).toBe(CSP);
    expect(await api(page, 'csp')).toEqual(CSP_PROBES_ONLY);
    expect(cspErrors(chromium)).toEqual([]);
  }, 120_000);

  it('cancels a load whose files never arrive, and the engine stays usable', async () => {
    const held: Socket[] = [];
    const silent = createServer((socket) => held.push(socket)); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/mlc/${F32_BUILD}`;
      const appConfig = {
        model_list: [
          { model: silentUrl, model_id: F32_BUILD, model_lib: `${silentUrl}-webgpu.wasm` },
          { model: `${files.url}/mlc/${OTHER_F32_BUILD}`, model_id: OTHER_F32_BUILD, model_lib: `${files.url}/mlc/${OTHER_F32_BUILD}.wasm` },
        ],
      };
      await api(page, 'startHangingLoad', F32_BUILD, appConfig);
      await expect.poll(() => held.length, { timeout: 60_000 }).toBeGreaterThan(0);
      const report = await api<{ aborted: LoadReport; next: LoadReport; hung?: true }>(page, 'abortHangingLoad', OTHER_F32_BUILD);
      expect(report.hung).toBeUndefined();
      expect(report.aborted.error).toMatchObject({ name: 'EngineError', code: 'aborted' });
      expect(report.next.error).toMatchObject({ name: 'EngineError', code: 'load-failed', detail: 'fetch-failed' });
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  }, 120_000);

  it('refuses a q4f16 build on an adapter without shader-f16, and an unknown model id', async () => {
    const f16 = await api<LoadReport>(page, 'loadWebGpu', F16_BUILD, localAppConfig());
    expect(f16.error).toMatchObject({ name: 'EngineError', code: 'load-failed', detail: 'no-shader-f16' });
    const unknown = await api<LoadReport>(page, 'loadWebGpu', 'Qwen3-99B-q4f32_1-MLC', localAppConfig());
    expect(unknown.error).toMatchObject({ name: 'EngineError', code: 'load-failed', detail: 'unknown-model' });
  }, 120_000);

  it("createEngine('webgpu') tries web-llm, falls back to the CPU engine with the reason, and answers like Node", async () => {
    const models: ModelPair[] = [{ url: modelUrl, mlcModelId: F32_BUILD }];
    const report = await api<RunReport>(page, 'run', {
      backend: 'webgpu', models, appConfig: localAppConfig(), url: modelUrl,
      loadOptions: { threads: THREADS, build: 'simd128', contextLength: CONTEXT }, request,
    });
    expect(report.hung).toBeUndefined();
    expect(report.error).toBeUndefined();
    expect(report.support?.adapter?.isFallbackAdapter).toBe(true);
    expect(report.info?.backend).toBe('cpu');
    expect(report.reasons).toHaveLength(1);
    expect(report.reasons[0]).toMatch(/^WebGPU failed: .*\[fetch-failed\]\. Using the CPU engine\.$/);
    expect(report.choice).toMatchObject({ backend: 'cpu', fallback: true });
    const expected = (await node.chat.completions.create({ ...request, stream: false })).choices[0]!.message.content;
    expect(report.completion!.choices[0]!.message.content).toBe(expected);
    expect(text(report.chunks!)).toBe(expected);
    expect(report.chunks!.at(-1)!.choices[0]!.finish_reason).toBe('length');
  }, 180_000);

  it("'auto' keeps a software adapter off and runs on the CPU without a fallback message", async () => {
    const models: ModelPair[] = [{ url: modelUrl, mlcModelId: F32_BUILD }];
    const report = await api<RunReport>(page, 'run', {
      backend: 'auto', models, appConfig: localAppConfig(), url: modelUrl,
      loadOptions: { threads: THREADS, build: 'simd128', contextLength: CONTEXT }, request,
    });
    expect(report.error).toBeUndefined();
    expect(report.info?.backend).toBe('cpu');
    expect(report.reasons).toEqual([]);
    expect(report.choice).toMatchObject({ backend: 'cpu', fallback: false });
    expect(report.choice!.reason).toMatch(/software WebGPU adapter/);
    expect(cspErrors(chromium)).toEqual([]);
  }, 180_000);
});
