// <qwen-chat> with the real engine (createWorkerEngine: the wasm runtime in a module Worker) in
// headless Chromium, driven like a user: load a fixture by URL from the model manager, set
// sampling in the settings panel, type with the keyboard, watch the answer stream, stop it with
// Esc, regenerate, edit and resend, reload the page, switch theme and language.
//
// Oracle for the answers: the same engine class in Node (CpuEngine, in-process) answering the same
// messages greedily. At temperature 0 the answer is the argmax path, which depends only on the
// prompt the UI built and the sampling it sent; the forward pass gives the same logits in Node
// and Chromium (tests/browser/model.test.ts), so the texts must be equal. That checks the request
// the engine got (messages, system prompt, temperature, max_tokens, thinking off) and that every
// streamed delta reached the page.
import { readFile } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ViteDevServer } from 'vite';
import type { Page } from 'playwright-core';
import { CpuEngine } from '../../src/engine/cpu-engine.ts';
import type { ChatMessage, CompletionUsage, FinishReason, ModelInfo } from '../../src/engine/types.ts';
import { STRINGS } from '../../src/ui/i18n.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { launchChromium, type LaunchedChromium } from '../support/chromium.ts';
import { startStaticServer, type StaticServer } from '../support/static-server.ts';
import { startVitePages } from '../support/vite-pages.ts';

const FIXTURE = 'tiny-f32';
const MODEL_PATH = '/models/tiny.gguf';

// The page: the element plus a record of its events and of every text the streaming live region
// and the load progress line showed (with how many answers had completed at that moment).
const HARNESS_JS = `
import '/src/ui/qwen-chat.ts';
const chat = document.querySelector('qwen-chat');
window.log = [];
window.live = [];
window.progressTexts = [];
let completed = 0;
for (const type of ['ready', 'token', 'message', 'error']) {
  chat.addEventListener(type, (event) => {
    if (type === 'message') completed++;
    window.log.push({ type, detail: JSON.parse(JSON.stringify(event.detail ?? null)) });
  });
}
await chat.updateComplete;
const list = chat.shadowRoot.querySelector('qwen-message-list');
await list.updateComplete;
const live = list.shadowRoot.querySelector('[aria-live]');
new MutationObserver(() => window.live.push({ text: live.textContent, completed }))
  .observe(live, { characterData: true, childList: true, subtree: true });
new MutationObserver(() => {
  const text = chat.shadowRoot.querySelector('.progress-text')?.textContent;
  if (text && window.progressTexts.at(-1) !== text) window.progressTexts.push(text);
}).observe(chat.shadowRoot, { characterData: true, childList: true, subtree: true });
window.harnessReady = true;
`;

const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>chat</title><link rel="icon" href="data:,"></head>
<body style="margin:0;height:100vh"><qwen-chat></qwen-chat><script type="module" src="/__ui-chat/harness.js"></script></body></html>`;

interface LoggedEvent {
  type: 'ready' | 'token' | 'message' | 'error';
  detail: {
    info?: ModelInfo;
    content?: string;
    message?: { role: string; content: string; usage?: CompletionUsage; finishReason?: FinishReason };
    error?: { message: string };
  };
}

let vite: ViteDevServer;
let files: StaticServer;
let chromium: LaunchedChromium;
let page: Page;
let pageUrl: string;
let oracle: CpuEngine;

/** The answer the engine gives greedily in Node. */
async function greedyAnswer(messages: ChatMessage[], maxTokens: number): Promise<{ content: string; tokens: number }> {
  const completion = await oracle.chat.completions.create({ messages, temperature: 0, max_tokens: maxTokens, enable_thinking: false });
  return { content: completion.choices[0].message.content, tokens: completion.usage.completion_tokens };
}

async function events(type: LoggedEvent['type']): Promise<LoggedEvent[]> {
  return page.evaluate((t) => (window as unknown as { log: LoggedEvent[] }).log.filter((e) => e.type === t), type);
}

async function waitForEvents(type: LoggedEvent['type'], count: number): Promise<LoggedEvent[]> {
  await page.waitForFunction(
    ([t, n]) => {
      const log = (window as unknown as { log: LoggedEvent[] }).log;
      if (log.some((e) => e.type === 'error')) return true; // fail fast below
      return log.filter((e) => e.type === t).length >= (n as number);
    },
    [type, count] as const,
    { timeout: 120_000 },
  );
  expect(await events('error')).toEqual([]);
  return events(type);
}

/** The conversation as shown: role and text of every message. */
async function shownMessages(): Promise<Array<{ role: string; text: string }>> {
  return page.evaluate(() => {
    const list = document.querySelector('qwen-chat')!.shadowRoot!.querySelector('qwen-message-list')!.shadowRoot!;
    return [...list.querySelectorAll('qwen-message')].map((m) => {
      const root = m.shadowRoot!;
      const article = root.querySelector('article')!;
      const text = article.classList.contains('user') ? root.querySelector('.user-text')!.textContent! : root.querySelector('.markdown')!.textContent!;
      return { role: article.className, text };
    });
  });
}

async function setNumber(id: string, value: number): Promise<void> {
  const input = page.locator(`qwen-settings-panel #${id}`);
  await input.fill(String(value));
  await input.blur();
}

async function openPanel(which: 'settings' | 'models'): Promise<void> {
  if ((await page.locator(`qwen-chat aside.panel.${which}`).count()) === 0) await page.locator(`qwen-chat button.open-${which}`).click();
}

async function closePanel(): Promise<void> {
  await page.locator('qwen-chat button.close-panel').click();
}

async function sendByKeyboard(text: string): Promise<void> {
  const textarea = page.locator('qwen-composer textarea');
  await textarea.click();
  const lines = text.split('\n');
  for (const [i, line] of lines.entries()) {
    if (i > 0) await page.keyboard.press('Shift+Enter');
    await page.keyboard.type(line);
  }
  expect(await textarea.inputValue()).toBe(text); // Shift+Enter made a newline, nothing was sent
  await page.keyboard.press('Enter');
}

async function lastMessage(count: number) {
  const messages = await waitForEvents('message', count);
  return messages[count - 1].detail.message!;
}

beforeAll(async () => {
  const path = await ensureFixture(FIXTURE);
  oracle = new CpuEngine();
  await oracle.load({ kind: 'path', path });
  files = await startStaticServer({ files: { [MODEL_PATH]: path } });
  const pages = await startVitePages({
    '/__ui-chat/harness.js': { type: 'text/javascript', body: HARNESS_JS },
    '/__ui-chat/index.html': { type: 'text/html', body: PAGE_HTML },
  });
  vite = pages.server;
  pageUrl = `${pages.url}/__ui-chat/index.html`;
  chromium = await launchChromium();
  page = await chromium.newPage();
  await page.setViewportSize({ width: 1200, height: 800 });
  await page.goto(pageUrl);
  await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
});

afterAll(async () => {
  await chromium?.close();
  await vite?.close();
  await files?.close();
  await oracle?.unload();
});

describe('<qwen-chat> with the real engine', () => {
  it('downloads a model by URL with progress, is cancelled part-way, and resumes from the stored part', async () => {
    // The connection breaks after 20 MB, twice: the download pauses to retry, and is cancelled then.
    files.setFault(MODEL_PATH, { cutAfterBytes: 20_000_000, times: 2 });
    await openPanel('models');
    await page.locator('qwen-model-manager #model-url').fill(`${files.url}${MODEL_PATH}`);
    await page.locator('qwen-model-manager button.load-url').click();
    await page.waitForFunction(() =>
      (window as unknown as { progressTexts: string[] }).progressTexts.some((text) => Number(/: ([\d.]+) MB of 45 MB/.exec(text)?.[1]) >= 17),
    );
    await page.locator('qwen-chat button.cancel-load').click();
    const progress = await page.evaluate(() => (window as unknown as { progressTexts: string[] }).progressTexts);
    expect(progress.some((text) => /^Downloading tiny\.gguf: .* of 45 MB · .*\/s · .* left$/.test(text)), progress.join('\n')).toBe(true);
    expect(await events('ready')).toEqual([]);
    expect(await events('error')).toEqual([]); // a cancel is not an error

    // The part that arrived is kept and offered for resuming.
    const cached = page.locator('qwen-model-manager ul.cached li');
    await expect.poll(() => cached.locator('.meta').textContent()).toMatch(/^[\d.]+ MB \/ 45 MB · partial$/);
    expect((await cached.locator('button.load').textContent())?.trim()).toBe('Resume');
    files.setFault(MODEL_PATH, undefined);
    const requestsBefore = files.requests.length;
    await cached.locator('button.load').click();
    const [ready] = await waitForEvents('ready', 1);
    expect(ready.detail.info).toMatchObject({ backend: 'cpu', name: 'tiny.gguf', quant: 'F32' });
    const resumed = files.requests.slice(requestsBefore).filter((r) => r.path === MODEL_PATH && r.method === 'GET');
    const firstByte = Number(/^bytes=(\d+)-/.exec(resumed[0]?.range ?? '')?.[1]);
    expect(firstByte, JSON.stringify(resumed)).toBeGreaterThan(0); // not from the start

    expect(await page.locator('qwen-chat .model-status').textContent()).toBe('tiny.gguf · F32 · cpu');
    await expect.poll(() => cached.count()).toBe(1);
    // The static server names no hash for the file: only its size was checked, and the list says so.
    expect(await cached.locator('.name').textContent()).toMatch(/tiny\.gguf\s*not verified\s*45 MB$/);
    expect((await cached.locator('button.load').textContent())?.trim()).toBe('Load');
    expect(await page.locator('qwen-model-manager .usage').textContent()).toMatch(/Storage: .* of .* used/);
    await closePanel();
  });

  it('sends with Enter (Shift+Enter is a newline), streams into the live region, and answers as the engine does greedily', async () => {
    await openPanel('settings');
    await setNumber('temperature', 0);
    await setNumber('max-tokens', 24);
    // The fixture's template can think: the toggle shows, and stays off.
    expect(await page.locator('qwen-settings-panel #thinking').isChecked()).toBe(false);
    expect(await page.locator('qwen-settings-panel .threads').textContent()).toBe(String((await events('ready'))[0].detail.info!.threads));
    expect(await page.locator('qwen-settings-panel .isolated').textContent()).toBe('yes');
    expect(await page.locator('qwen-settings-panel .addressing').textContent()).toBe((await events('ready'))[0].detail.info!.addressing);
    expect(await page.locator('qwen-settings-panel .addressing').textContent()).toBe('wasm32');
    await page.locator('qwen-settings-panel #temperature').focus();
    await page.keyboard.press('Escape'); // closes the panel (nothing is streaming)
    expect(await page.locator('qwen-chat aside.panel').count()).toBe(0);

    const question = 'Hello\nworld';
    await sendByKeyboard(question);
    const answer = await lastMessage(1);
    expect(await page.locator('qwen-composer textarea').inputValue()).toBe('');
    const expected = await greedyAnswer([{ role: 'user', content: question }], 24);
    expect(answer.content).toBe(expected.content);
    expect(answer.usage!.completion_tokens).toBe(expected.tokens);

    // Streaming: the live region said the answer piece by piece, in order, each piece once, the
    // first ones before the answer completed.
    const live = await page.evaluate(() => (window as unknown as { live: Array<{ text: string; completed: number }> }).live);
    const pieces = live.filter((s, i) => s.text.length > 0 && s.text !== live[i - 1]?.text);
    expect(pieces.map((s) => s.text).join('')).toBe(answer.content);
    expect(pieces.filter((s) => s.completed === 0).length).toBeGreaterThanOrEqual(1);
    const tokenEvents = await events('token');
    expect(tokenEvents.map((e) => e.detail.content ?? '').join('')).toBe(answer.content);

    expect(await shownMessages()).toEqual([
      { role: 'user', text: question },
      { role: 'assistant', text: expect.any(String) },
    ]);
    const status = await page.locator('qwen-message').last().locator('.status').textContent();
    expect(status).toMatch(new RegExp(`^${expected.tokens} tokens · [\\d.]+ tok/s · first token [\\d.]+ s`));
  });

  it('regenerates: the same greedy answer at temperature 0, another one at temperature 1.5', async () => {
    const question = 'Hello\nworld';
    const greedy = await greedyAnswer([{ role: 'user', content: question }], 24);
    await page.locator('qwen-message .regenerate').click();
    expect((await lastMessage(2)).content).toBe(greedy.content);
    expect((await shownMessages()).length).toBe(2); // replaced, not appended

    await openPanel('settings');
    await setNumber('temperature', 1.5);
    await closePanel();
    await page.locator('qwen-message .regenerate').click();
    const sampled = await lastMessage(3);
    expect(sampled.content).not.toBe(greedy.content);
    expect((await shownMessages()).length).toBe(2);
  });

  it('edits a question and resends it', async () => {
    await openPanel('settings');
    await setNumber('temperature', 0);
    await closePanel();
    await page.locator('qwen-message .edit').first().click();
    const editor = page.locator('qwen-message textarea#edit');
    await editor.fill('Tell me a story');
    await editor.press('Enter');
    const answer = await lastMessage(4);
    expect(answer.content).toBe((await greedyAnswer([{ role: 'user', content: 'Tell me a story' }], 24)).content);
    const shown = await shownMessages();
    expect(shown.length).toBe(2);
    expect(shown[0]).toEqual({ role: 'user', text: 'Tell me a story' });
  });

  it('continues an answer cut at the token limit with the text the engine continues it with', async () => {
    const question = 'Tell me a story';
    const first = await greedyAnswer([{ role: 'user', content: question }], 24);
    expect(first.tokens).toBe(24); // cut by max_tokens, so the answer offers Continue
    const shown = page.locator('qwen-message').last();
    expect(await shown.locator('.status').textContent()).toContain('length limit');
    await shown.locator('.continue').click();
    const continued = await lastMessage(5);
    const rest = await oracle.chat.completions.create({
      messages: [{ role: 'user', content: question }, { role: 'assistant', content: first.content }],
      continue_final_message: true, temperature: 0, max_tokens: 24, enable_thinking: false,
    });
    expect(continued.content).toBe(first.content + rest.choices[0].message.content);
    expect(continued.usage!.completion_tokens).toBe(rest.usage.completion_tokens);
    const messages = await shownMessages();
    expect(messages.length).toBe(2); // the same answer, longer
    expect(messages[1]!.text.replace(/\s+/g, ' ')).toContain(rest.choices[0].message.content.trim().replace(/\s+/g, ' ').slice(0, 20));
  });

  it('stops a long answer with Esc', async () => {
    await openPanel('settings');
    await setNumber('max-tokens', 3000);
    await closePanel();
    const tokensBefore = (await events('token')).length;
    await sendByKeyboard('Count to a thousand');
    await page.waitForFunction((n) => (window as unknown as { log: LoggedEvent[] }).log.filter((e) => e.type === 'token').length >= n + 3, tokensBefore);
    expect(await page.locator('qwen-composer button.stop').count()).toBe(1);
    // The page stays usable while the worker generates: the next question can be typed, and
    // Enter does not send it over the running answer.
    await page.keyboard.type('draft');
    await page.keyboard.press('Enter');
    expect(await page.locator('qwen-composer textarea').inputValue()).toBe('draft');
    await page.keyboard.press('Escape');
    const answer = await lastMessage(6);
    expect(answer.finishReason).toBe('abort');
    expect(answer.usage!.completion_tokens).toBeLessThan(3000);
    expect(await page.locator('qwen-message').last().locator('.status').textContent()).toMatch(/stopped$/);
    expect(await page.locator('qwen-composer button.send').count()).toBe(1);
    expect((await shownMessages()).length).toBe(4);
    await page.locator('qwen-composer textarea').fill('');
  });

  it('keeps conversations across a reload, renames and exports them, and loads the model again from the cache', async () => {
    // Rename in place.
    await page.locator('qwen-conversation-list li.current button.rename').click();
    const input = page.locator('qwen-conversation-list input.rename-input');
    await input.fill('My chat');
    await input.press('Enter');
    await expect.poll(() => page.locator('qwen-conversation-list li.current button.title').textContent()).toMatch(/^\s*My chat\s*$/);
    const before = await shownMessages();
    expect(before.length).toBe(4);

    await page.reload();
    await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
    await expect.poll(() => shownMessages()).toEqual(before);
    expect((await page.locator('qwen-conversation-list li.current button.title').textContent())?.trim()).toBe('My chat');
    expect(await page.locator('qwen-chat .model-status').textContent()).toBe('No model loaded');

    // Export as JSON and Markdown (downloads through a Blob URL).
    const [jsonDownload] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('qwen-conversation-list li.current button.export-json').click(),
    ]);
    expect(jsonDownload.suggestedFilename()).toBe('My-chat.json');
    const exported = JSON.parse(await readFile((await jsonDownload.path())!, 'utf8')) as { title: string; messages: Array<{ role: string; content: string }> };
    expect(exported.title).toBe('My chat');
    expect(exported.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(exported.messages[2].content).toBe('Count to a thousand');
    const [mdDownload] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('qwen-conversation-list li.current button.export-md').click(),
    ]);
    const markdown = await readFile((await mdDownload.path())!, 'utf8');
    expect(markdown.startsWith('# My chat\n')).toBe(true);
    expect(markdown).toContain('## User\n\nCount to a thousand\n');
    expect(markdown).toContain(exported.messages[1].content);

    // The downloaded model loads from IndexedDB: no new request for the file.
    const fileRequests = files.requests.filter((r) => r.path === MODEL_PATH).length;
    await openPanel('models');
    await page.locator('qwen-model-manager ul.cached li button.load').click();
    await waitForEvents('ready', 1);
    await closePanel();
    expect(files.requests.filter((r) => r.path === MODEL_PATH).length).toBe(fileRequests);

    // And the conversation goes on with its history (multi-turn): a greedy answer to all of it.
    await openPanel('settings');
    // Settings changed in the panel were kept across the reload.
    expect(await page.locator('qwen-settings-panel #temperature').inputValue()).toBe('0');
    expect(await page.locator('qwen-settings-panel #max-tokens').inputValue()).toBe('3000');
    await setNumber('temperature', 0);
    await setNumber('max-tokens', 16);
    await closePanel();
    await sendByKeyboard('And then?');
    const answer = await lastMessage(1);
    const history: ChatMessage[] = exported.messages.map((m) => ({ role: m.role as 'user' | 'assistant', content: m.content }));
    expect(answer.content).toBe((await greedyAnswer([...history, { role: 'user', content: 'And then?' }], 16)).content);
  });

  it('sizes the context in the settings: the model loads again with it, and says what fits', async () => {
    await openPanel('settings');
    const inUse = page.locator('qwen-settings-panel .context-in-use');
    // tiny-f32 was trained for 4,096 tokens: that is its default and its most.
    await expect.poll(() => inUse.textContent()).toMatch(/In use: 4,096 tokens; this model fits up to 4,096/);
    const offered = await page.locator('qwen-settings-panel #context-length option').evaluateAll((options) => options.map((o) => (o as HTMLOptionElement).value));
    expect(offered).toEqual(['0', '2048', '4096']);
    const ready = (await events('ready')).length;
    await page.locator('qwen-settings-panel #context-length').selectOption('2048');
    const reloaded = await waitForEvents('ready', ready + 1);
    // Far below 4 GiB: wasm32, and no word of 64-bit memory.
    expect(reloaded.at(-1)!.detail.info).toMatchObject({ contextLength: 2048, maxContextLength: 4096, addressing: 'wasm32' });
    await expect.poll(() => inUse.textContent()).toMatch(/In use: 2,048 tokens/);
    expect(await inUse.textContent()).not.toMatch(/64-bit/);
    // Back to the model's default (kept across visits like every setting).
    await page.locator('qwen-settings-panel #context-length').selectOption('0');
    const back = await waitForEvents('ready', ready + 2);
    expect(back.at(-1)!.detail.info).toMatchObject({ contextLength: 4096 });
    expect(await page.evaluate(() => JSON.parse(localStorage.getItem('qwen-web:settings') ?? '{}').contextLength)).toBe(0);

    // The compact (q8_0) cache: tiny-f32's heads of 16 values are not whole blocks of 32, so the
    // load says so; unticked, the model loads again.
    await page.locator('qwen-settings-panel #compact-cache').check();
    await page.waitForFunction(() => (window as unknown as { log: LoggedEvent[] }).log.some((e) => e.type === 'error'));
    const [failed] = await events('error');
    expect(failed!.detail.error!.message).toMatch(/q8_0 KV cache .*f16 cache/);
    await page.evaluate(() => {
      const w = window as unknown as { log: LoggedEvent[] };
      w.log = w.log.filter((e) => e.type !== 'error');
    });
    await page.locator('qwen-settings-panel #compact-cache').uncheck();
    const recovered = await waitForEvents('ready', ready + 3);
    expect(recovered.at(-1)!.detail.info).toMatchObject({ contextLength: 4096, kvCache: 'f16' });

    // Keeping conversations' caches across visits is on unless the user turns it off (kept like every setting).
    expect(await page.locator('qwen-settings-panel #keep-contexts').isChecked()).toBe(true);
    await page.locator('qwen-settings-panel #keep-contexts').uncheck();
    expect(await page.evaluate(() => JSON.parse(localStorage.getItem('qwen-web:settings') ?? '{}').keepContexts)).toBe(false);
    await page.locator('qwen-settings-panel #keep-contexts').check();
    await closePanel();
  });

  it('switches to the light theme and to Chinese', async () => {
    mkdirSync('test-results', { recursive: true });
    const chat = page.locator('qwen-chat');
    expect(await chat.getAttribute('theme')).toBe('dark');
    expect(await chat.evaluate((el) => getComputedStyle(el).backgroundColor)).toBe('rgb(21, 23, 28)');
    await page.screenshot({ path: 'test-results/ui-chat-dark.png' });

    await openPanel('settings');
    await page.locator('qwen-settings-panel #theme').selectOption('light');
    expect(await chat.getAttribute('theme')).toBe('light');
    expect(await chat.evaluate((el) => getComputedStyle(el).backgroundColor)).toBe('rgb(247, 248, 250)');
    await closePanel();
    await page.screenshot({ path: 'test-results/ui-chat-light.png' });

    await openPanel('settings');
    await page.locator('qwen-settings-panel #lang').selectOption('zh');
    expect(await chat.getAttribute('lang')).toBe('zh');
    const zh = STRINGS.zh;
    expect(await page.locator('qwen-settings-panel label[for=temperature]').textContent()).toBe(zh.temperature);
    await closePanel();
    expect(await page.locator('qwen-composer textarea').getAttribute('placeholder')).toBe(zh.composerPlaceholder);
    expect((await page.locator('qwen-composer button.send').textContent())?.trim()).toBe(zh.send);
    expect((await page.locator('qwen-chat button.open-models').textContent())?.trim()).toBe(zh.models);
    expect((await page.locator('qwen-conversation-list button.new').textContent())?.trim()).toBe(zh.newChat);
    await page.screenshot({ path: 'test-results/ui-chat-light-zh.png' });
  });

  it('deletes a conversation and a cached model, each on a second click that confirms', async () => {
    const conversations = page.locator('qwen-conversation-list li');
    const count = await conversations.count();
    const remove = page.locator('qwen-conversation-list li.current button.delete');
    await remove.click();
    expect(await conversations.count()).toBe(count); // first click only asks
    await remove.click();
    await expect.poll(() => conversations.count()).toBe(count - 1);

    await openPanel('models');
    const deleteModel = page.locator('qwen-model-manager ul.cached li button.delete');
    await deleteModel.click();
    // A model is gigabytes downloaded once: the first click only asks, naming the size.
    expect((await deleteModel.textContent())?.trim()).toBe(STRINGS.zh.confirmDeleteModel.replace('{size}', '45 MB')); // the UI is in Chinese by now
    expect(await page.locator('qwen-model-manager ul.cached li').count()).toBe(1);
    await deleteModel.click();
    await expect.poll(() => page.locator('qwen-model-manager ul.cached li').count()).toBe(0);
    expect(chromium.consoleErrors, chromium.consoleErrors.join('\n')).toEqual([]);
  });

  it('loads a local file picked or dropped in the model manager, read in place', async () => {
    const readyBefore = (await events('ready')).length;
    await openPanel('models');
    await page.locator('qwen-model-manager #model-file').setInputFiles(await ensureFixture(FIXTURE));
    const ready = await waitForEvents('ready', readyBefore + 1);
    expect(ready.at(-1)!.detail.info).toMatchObject({ name: `${FIXTURE}.gguf`, quant: 'F32' });
    // Read in place, not copied into storage.
    expect(await page.locator('qwen-model-manager ul.cached li').count()).toBe(0);

    // A file dropped on the drop zone loads the same way.
    const dataTransfer = await page.evaluateHandle(async (url) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([await (await fetch(url)).blob()], 'dropped.gguf'));
      return transfer;
    }, `${files.url}${MODEL_PATH}`);
    await page.locator('qwen-model-manager label.drop').dispatchEvent('drop', { dataTransfer });
    const dropped = await waitForEvents('ready', readyBefore + 2);
    expect(dropped.at(-1)!.detail.info).toMatchObject({ name: 'dropped.gguf', quant: 'F32' });
    await closePanel();
  });

  it('shows a clear error, and emits it, for a model URL that does not exist', async () => {
    await openPanel('models');
    await page.locator('qwen-model-manager #model-url').fill(`${files.url}/models/missing.gguf`);
    await page.locator('qwen-model-manager button.load-url').click();
    await page.waitForFunction(() => (window as unknown as { log: LoggedEvent[] }).log.some((e) => e.type === 'error'));
    const [error] = await events('error');
    expect(error.detail.error!.message).toMatch(/404/);
    const banner = page.locator('qwen-chat .banner.error[role=alert]');
    expect(await banner.textContent()).toContain(error.detail.error!.message);
    await banner.locator('button.dismiss').click();
    expect(await banner.count()).toBe(0);
  });
});
