// The CPU engine's worker dying or hanging mid-answer, in headless Chromium: every pending call
// ends with EngineError 'worker-failed' (no hang), the text streamed so far was delivered, and the
// switching engine the app uses starts a fresh worker on the next load and answers as Node does.
// The worker is the real one with scripted faults (tests/support/faulty-engine-worker.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { CpuEngine } from '../../src/engine/cpu-engine.ts';
import type { ChatCompletionRequest } from '../../src/engine/types.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { launchChromium, type LaunchedChromium } from '../support/chromium.ts';
import { startStaticServer, type StaticServer } from '../support/static-server.ts';
import { startVitePages } from '../support/vite-pages.ts';

const FIXTURE = 'tiny-f32';
const CONTEXT = 512;
const HANG_MS = 4000;
const STOP_MS = 1500;

const PAGE_HTML = `<!doctype html><meta charset="utf-8"><title>watchdog</title><link rel="icon" href="data:,">
<script type="module">
  import { createWorkerEngine } from '/src/engine/worker-engine.ts';
  import { createEngine } from '/src/engine/backend.ts';
  let workers = 0;
  const makeEngine = () => createWorkerEngine({
    threads: 2, hangTimeoutMs: ${HANG_MS}, stopTimeoutMs: ${STOP_MS},
    createWorker: () => { workers++; return (window.worker = new Worker('/tests/support/faulty-engine-worker.ts', { type: 'module' })); },
  });
  const engine = await createEngine({ backend: 'cpu', engines: { cpu: makeEngine } });
  const describe = (e) => ({ name: e.name, code: e.code, detail: e.detail, message: e.message });
  window.api = {
    async load(url) {
      try { return { info: await engine.load({ kind: 'url', url, cache: false }, { contextLength: ${CONTEXT}, build: 'simd128' }), workers }; }
      catch (e) { return { error: describe(e) }; }
    },
    // Streams a request; after 'after' content chunks injects the fault (and maybe interrupts).
    async streamWithFault(request, fault, after, interrupt) {
      const t0 = performance.now();
      let text = '', chunks = 0, faultAt = 0;
      try {
        for await (const chunk of await engine.chat.completions.create({ ...request, stream: true })) {
          text += chunk.choices[0].delta.content ?? '';
          if (chunk.choices[0].delta.content && ++chunks === after) {
            window.worker.postMessage({ qwenTestFault: fault });
            faultAt = performance.now();
            if (interrupt) setTimeout(() => engine.interrupt(), 200);
          }
        }
        return { text, ended: 'normally' };
      } catch (e) {
        return { text, error: describe(e), afterFaultMs: performance.now() - faultAt, totalMs: performance.now() - t0, info: engine.info() ?? null };
      }
    },
    async complete(request) {
      try { return { completion: await engine.chat.completions.create(request) }; } catch (e) { return { error: describe(e) }; }
    },
  };
  window.ready = true;
</script>`;

interface Outcome {
  text: string;
  ended?: string;
  error?: { name: string; code?: string; detail?: string; message: string };
  afterFaultMs?: number;
  info?: unknown;
}

let vite: ViteDevServer;
let files: StaticServer;
let chromium: LaunchedChromium;
let page: Page;
let node: CpuEngine;
let modelUrl: string;

const api = <T>(method: string, ...args: unknown[]): Promise<T> =>
  page.evaluate(([m, a]) => (window as unknown as { api: Record<string, (...x: unknown[]) => Promise<T>> }).api[m as string](...(a as unknown[])), [method, args] as const);

const request: ChatCompletionRequest = { messages: [{ role: 'user', content: 'Tell me a long story about the sea.' }], temperature: 0, max_tokens: 400 };

beforeAll(async () => {
  const path = await ensureFixture(FIXTURE);
  files = await startStaticServer({ files: { [`/${FIXTURE}.gguf`]: path } });
  modelUrl = `${files.url}/${FIXTURE}.gguf`;
  const pages = await startVitePages({ '/__watchdog/index.html': { type: 'text/html', body: PAGE_HTML } });
  vite = pages.server;
  chromium = await launchChromium();
  page = await chromium.newPage();
  await page.goto(`${pages.url}/__watchdog/index.html`);
  await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
  node = new CpuEngine();
  await node.load({ kind: 'path', path }, { threads: 2, build: 'simd128', contextLength: CONTEXT });
}, 300_000);

afterAll(async () => {
  await node?.unload();
  await chromium?.close();
  await vite?.close();
  await files?.close();
});

describe('a dead or hung engine worker (Chromium)', () => {
  const expected = async (maxTokens: number) =>
    (await node.chat.completions.create({ ...request, max_tokens: maxTokens, stream: false })).choices[0].message.content;

  it.each([
    ['closes itself mid-answer', 'close', false, HANG_MS],
    ['hangs in a busy loop mid-answer, then is stopped', 'hang', true, STOP_MS],
    ['hangs in a busy loop mid-answer, never stopped', 'hang', false, HANG_MS],
    ['dies of an uncaught error mid-answer', 'throw', false, 0],
  ] as const)('ends the stream with worker-failed when the worker %s, keeping the text so far, and recovers', async (_, fault, interrupt, limitMs) => {
    const loaded = await api<{ info?: unknown; error?: unknown }>('load', modelUrl);
    expect(loaded.error).toBeUndefined();
    const outcome = await api<Outcome>('streamWithFault', request, fault, 5, interrupt);
    expect(outcome.error).toMatchObject({ name: 'EngineError', code: 'worker-failed' });
    // Detected within the timeout (plus a ping interval), not left hanging.
    expect(outcome.afterFaultMs!).toBeLessThan(limitMs + 2500);
    // The text streamed before the fault was delivered: a prefix of the full answer, 5 chunks or more.
    const full = await expected(400);
    expect(full.startsWith(outcome.text)).toBe(true);
    expect(outcome.text.length).toBeGreaterThan(0);
    expect(outcome.info).toBeNull(); // the engine no longer claims a model
    // The next load starts a fresh worker, and it answers as Node does.
    const reloaded = await api<{ workers: number; error?: unknown }>('load', modelUrl);
    expect(reloaded.error).toBeUndefined();
    const { completion } = await api<{ completion: { choices: { message: { content: string } }[] } }>('complete', { ...request, max_tokens: 12 });
    expect(completion.choices[0].message.content).toBe(await expected(12));
    console.log(`${fault}${interrupt ? ' + stop' : ''}: worker-failed ${Math.round(outcome.afterFaultMs!)} ms after the fault (${outcome.error!.message})`);
  }, 120_000);

  it('does not stop a busy worker that keeps answering (a long prefill is not a hang)', async () => {
    await api('load', modelUrl);
    // A long prompt: prefill takes several batches, each long enough to span pings.
    const long = { messages: [{ role: 'user', content: 'sea and salt and wind '.repeat(80) }], temperature: 0, max_tokens: 24 };
    const { completion, error } = await api<{ completion?: { choices: { message: { content: string } }[] }; error?: unknown }>('complete', long);
    expect(error).toBeUndefined();
    expect(completion!.choices[0].message.content).toBe((await node.chat.completions.create({ ...(long as ChatCompletionRequest), stream: false })).choices[0].message.content);
  }, 120_000);
});
