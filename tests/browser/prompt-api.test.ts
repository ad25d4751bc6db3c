// Chrome's Prompt API on qwen-web (src/engine/prompt-api.ts), in headless Chromium: the page
// installs `LanguageModel` (this Chromium has no built-in one) over a worker engine, then runs
// code written for Chrome's API alone. Node's in-process engine answers the same conversation
// greedily as the oracle (same SIMD128 kernels and threads: equal answers), counts its tokens,
// and Ajv checks the constrained answer against its schema.
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ViteDevServer } from 'vite';
import { CpuEngine } from '../../src/engine/cpu-engine.ts';
import type { ChatMessage } from '../../src/engine/types.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { launchChromium, type LaunchedChromium } from '../support/chromium.ts';
import { startStaticServer, type StaticServer } from '../support/static-server.ts';
import { startVitePages } from '../support/vite-pages.ts';

const FIXTURE = 'tiny-f32';
const SCHEMA = { type: 'object', properties: { colour: { enum: ['red', 'green', 'blue'] }, shade: { type: 'integer', minimum: 1, maximum: 9 } }, required: ['colour', 'shade'], additionalProperties: false };

// The qwen-web part: one call that gives the page a LanguageModel where it has none.
const installJs = (modelUrl: string) => `
import { createWorkerEngine } from '/src/engine/worker-engine.ts';
import { installLanguageModel } from '/src/engine/prompt-api.ts';
// This Chromium defines LanguageModel but has no model: availability() says 'unavailable'.
window.builtIn = 'LanguageModel' in globalThis ? await LanguageModel.availability() : 'none';
await installLanguageModel({
  engine: createWorkerEngine({ threads: 2 }),
  model: { kind: 'url', url: ${JSON.stringify(modelUrl)}, cache: false },
  loadOptions: { threads: 2, build: 'simd128', contextLength: 512 },
  maxAnswerTokens: 48,
});
window.installed = true;
`;

// A page written for Chrome's built-in model: it only knows the LanguageModel global.
const CHROME_PAGE_JS = `
window.runChromeDemo = async (schema) => {
  const log = {};
  log.before = await LanguageModel.availability();
  log.params = await LanguageModel.params();
  const progress = [];
  const session = await LanguageModel.create({
    initialPrompts: [{ role: 'system', content: 'You are brief.' }],
    temperature: 0, topK: 1,
    monitor(m) { m.addEventListener('downloadprogress', (e) => progress.push(e.loaded)); },
  });
  log.progress = progress;
  log.after = await LanguageModel.availability();
  log.quota = session.inputQuota;
  log.usageAtStart = session.inputUsage;
  log.first = await session.prompt('Name a colour.');
  log.usageAfterFirst = session.inputUsage;
  let streamed = '';
  const pieces = [];
  for await (const piece of session.promptStreaming([{ role: 'user', content: [{ type: 'text', value: 'And another one?' }] }])) { streamed += piece; pieces.push(piece); }
  log.second = streamed;
  log.pieces = pieces.length;
  log.measured = await session.measureInputUsage('How long is this question?');
  const copy = await session.clone();
  log.cloneAnswer = await copy.prompt('A third?');
  log.json = await session.prompt('Describe a colour as JSON.', { responseConstraint: schema });
  await session.append([{ role: 'user', content: 'Remember: the answer is blue.' }]);
  log.usageAfterAppend = session.inputUsage;
  const controller = new AbortController();
  const aborted = session.prompt('Count to a thousand.', { signal: controller.signal });
  controller.abort();
  try { await aborted; log.abort = 'no error'; } catch (e) { log.abort = e.name; }
  session.destroy();
  try { await session.prompt('Still there?'); log.destroyed = 'no error'; } catch (e) { log.destroyed = e.name; }
  try { await LanguageModel.create({ expectedInputs: [{ type: 'image' }] }); log.image = 'no error'; } catch (e) { log.image = e.name; }
  return log;
};
`;

const PAGE_HTML = `<!doctype html><meta charset="utf-8"><title>prompt api</title><link rel="icon" href="data:,">
<script type="module" src="/__prompt-api/install.js"></script>
<script type="module" src="/__prompt-api/chrome-page.js"></script>`;

let vite: ViteDevServer;
let files: StaticServer;
let chromium: LaunchedChromium;
let node: CpuEngine;
let pageUrl: string;

beforeAll(async () => {
  const path = await ensureFixture(FIXTURE);
  files = await startStaticServer({ files: { [`/${FIXTURE}.gguf`]: path } });
  const pages = await startVitePages({
    '/__prompt-api/index.html': { type: 'text/html', body: PAGE_HTML },
    '/__prompt-api/install.js': { type: 'text/javascript', body: installJs(`${files.url}/${FIXTURE}.gguf`) },
    '/__prompt-api/chrome-page.js': { type: 'text/javascript', body: CHROME_PAGE_JS },
  });
  vite = pages.server;
  pageUrl = `${pages.url}/__prompt-api/index.html`;
  chromium = await launchChromium();
  node = new CpuEngine();
  await node.load({ kind: 'path', path }, { threads: 2, build: 'simd128', contextLength: 512 });
}, 300_000);

afterAll(async () => {
  await node?.unload();
  await chromium?.close();
  await vite?.close();
  await files?.close();
});

describe("Chrome's Prompt API on qwen-web", () => {
  it('runs a page written for Chrome: availability, create with progress, prompt, streaming, measure, clone, JSON, append, abort, destroy', async () => {
    const page = await chromium.newPage();
    await page.goto(pageUrl);
    await page.waitForFunction(() => (window as unknown as { installed?: boolean }).installed === true);
    expect(['none', 'unavailable']).toContain(await page.evaluate(() => (window as unknown as { builtIn: string }).builtIn));
    const log = await page.evaluate((schema) => (window as unknown as { runChromeDemo(s: unknown): Promise<Record<string, unknown>> }).runChromeDemo(schema), SCHEMA);

    expect(log.before).toBe('downloadable');
    expect(log.after).toBe('available');
    expect(log.params).toMatchObject({ defaultTopK: expect.any(Number), maxTemperature: 2 });
    const progress = log.progress as number[];
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toBe(1);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
    expect(log.quota).toBe(512);

    // The same conversation, greedily, in Node.
    const greedy = async (messages: ChatMessage[]) =>
      (await node.chat.completions.create({ messages, temperature: 0, top_k: 1, max_tokens: 48 })).choices[0].message.content;
    const system: ChatMessage = { role: 'system', content: 'You are brief.' };
    const history: ChatMessage[] = [system, { role: 'user', content: 'Name a colour.' }];
    expect(log.first).toBe(await greedy(history));
    expect(log.usageAtStart).toBe(await node.countPromptTokens({ messages: [system], max_tokens: 1 }));
    history.push({ role: 'assistant', content: log.first as string }, { role: 'user', content: 'And another one?' });
    expect(log.usageAfterFirst).toBe(await node.countPromptTokens({ messages: history.slice(0, 3), max_tokens: 1 }));
    expect(log.second).toBe(await greedy(history));
    expect(log.pieces).toBeGreaterThan(1); // streamed in pieces
    history.push({ role: 'assistant', content: log.second as string });
    const usage = await node.countPromptTokens({ messages: history, max_tokens: 1 });
    expect(log.measured).toBe(await node.countPromptTokens({ messages: [...history, { role: 'user', content: 'How long is this question?' }], max_tokens: 1 }) - usage);
    expect(log.cloneAnswer).toBe(await greedy([...history, { role: 'user', content: 'A third?' }]));

    const json = JSON.parse(log.json as string) as unknown;
    expect(new Ajv2020().validate(SCHEMA, json)).toBe(true);
    expect(log.usageAfterAppend as number).toBeGreaterThan(usage);
    expect(log.abort).toBe('AbortError');
    expect(log.destroyed).toBe('InvalidStateError');
    expect(log.image).toBe('NotSupportedError');
    expect(chromium.consoleErrors).toEqual([]);
  }, 180_000);
});
