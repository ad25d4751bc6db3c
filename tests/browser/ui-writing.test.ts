// The writing features of <qwen-chat> in headless Chromium: task presets beside the composer
// (each sets the system prompt and sampling the request carries; edited by hand it lets go;
// the user's own saved, used, deleted, kept across a reload), an outline's "Expand section N",
// the JSON setting, and tool calls shown as blocks, answered by the page through the 'tool-call'
// event and carried back to the model. The engine is the scripted stand-in: what is under test
// is what the element asks of it (its requests are recorded) and what it shows. Screenshots of
// presets, an outline and tool calls in both themes go to test-results/.
import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import type { ChatCompletionRequest, ChatMessageInput } from '../../src/engine/types.ts';
import { builtInPresets, expandSectionPrompt } from '../../src/ui/presets.ts';
import { launchChromium, type LaunchedChromium } from '../support/chromium.ts';
import { startVitePages } from '../support/vite-pages.ts';

const HARNESS_JS = `
import '/src/ui/qwen-chat.ts';
import { createScriptedEngine } from '/tests/support/scripted-engine.ts';
const chat = document.querySelector('qwen-chat');
window.engine = createScriptedEngine();
chat.engine = window.engine;
window.events = [];
chat.addEventListener('message', (e) => window.events.push({ type: 'message', content: e.detail.message.content }));
chat.addEventListener('tool-call', (e) => {
  window.events.push({ type: 'tool-call', call: e.detail.call });
  // The page's own function: it answers a moment later, as a fetch would.
  setTimeout(() => e.detail.respond({ city: JSON.parse(e.detail.call.function.arguments).city, temp: 21 }), 50);
});
window.harnessReady = true;
`;

const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>writing</title><link rel="icon" href="data:,"></head>
<body style="margin:0;height:100vh"><qwen-chat theme="light"></qwen-chat><script type="module" src="/__ui-writing/harness.js"></script></body></html>`;

let vite: ViteDevServer;
let chromium: LaunchedChromium;
let page: Page;
let pageUrl: string;

const requests = () => page.evaluate(() => (window as unknown as { engine: { requests: ChatCompletionRequest[] } }).engine.requests);
const lastRequest = async () => (await requests()).at(-1)!;
const answerNext = (answer: unknown) => page.evaluate((a) => (window as unknown as { engine: { answers: unknown[] } }).engine.answers.push(a), answer);
const messageCount = () => page.evaluate(() => (window as unknown as { events: { type: string }[] }).events.filter((e) => e.type === 'message').length);

async function ask(text: string): Promise<void> {
  const before = await messageCount();
  await page.locator('qwen-composer textarea').fill(text);
  await page.locator('qwen-composer textarea').press('Enter');
  await expect.poll(messageCount, { timeout: 10_000 }).toBe(before + 1);
}

async function openPage(): Promise<void> {
  await page.goto(pageUrl);
  await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
}

beforeAll(async () => {
  const pages = await startVitePages({
    '/__ui-writing/harness.js': { type: 'text/javascript', body: HARNESS_JS },
    '/__ui-writing/index.html': { type: 'text/html', body: PAGE_HTML },
  });
  vite = pages.server;
  pageUrl = `${pages.url}/__ui-writing/index.html`;
  chromium = await launchChromium();
  page = await chromium.newPage();
  await page.setViewportSize({ width: 1000, height: 720 });
  await openPage();
  mkdirSync('test-results', { recursive: true });
}, 120_000);

afterAll(async () => {
  await chromium?.close();
  await vite?.close();
});

const presetButton = (id: string) => page.locator(`qwen-composer button.preset[data-preset="${id}"]`);
const systemOf = (request: ChatCompletionRequest) => (request.messages[0] as ChatMessageInput).role === 'system' ? request.messages[0]!.content : undefined;

describe('task presets', () => {
  it('offers the six tasks beside the composer; one sets the system prompt and sampling of the next request', async () => {
    const labels = await page.locator('qwen-composer button.preset').allTextContents();
    expect(labels.map((l) => l.trim())).toEqual(builtInPresets('en').map((p) => p.label));
    await presetButton('translate').click();
    expect(await presetButton('translate').getAttribute('aria-pressed')).toBe('true');
    await answerNext('Bonjour.');
    await ask('Hello.');
    const translate = builtInPresets('en').find((p) => p.id === 'translate')!;
    const request = await lastRequest();
    expect(systemOf(request)).toBe(translate.systemPrompt);
    expect(request).toMatchObject({ temperature: translate.temperature, top_p: translate.topP });
  });

  it('lets go of the preset when the sampling is changed by hand, and keeps a preset of the user\'s own', async () => {
    await page.locator('qwen-chat button.open-settings').click();
    const temperature = page.locator('qwen-settings-panel #temperature');
    await temperature.fill('0.95');
    await temperature.blur();
    expect(await presetButton('translate').getAttribute('aria-pressed')).toBe('false');
    await page.locator('qwen-settings-panel #system-prompt').fill('Answer like a pirate.');
    await page.locator('qwen-settings-panel #system-prompt').blur();
    await page.locator('qwen-settings-panel #preset-name').fill('Pirate');
    await page.locator('qwen-settings-panel button.save-preset-button').click();
    await page.locator('qwen-chat button.close-panel').click();
    const mine = page.locator('qwen-composer button.preset', { hasText: 'Pirate' });
    expect(await mine.getAttribute('aria-pressed')).toBe('true');
    // Another preset, then the user's own again: its prompt and temperature come back.
    await presetButton('code').click();
    await mine.click();
    await answerNext('Arr.');
    await ask('Hi');
    expect(systemOf(await lastRequest())).toBe('Answer like a pirate.');
    expect((await lastRequest()).temperature).toBe(0.95);
    // Kept across a reload; in Chinese the built-in ones change language, the user's stays.
    await openPage();
    expect(await page.locator('qwen-composer button.preset', { hasText: 'Pirate' }).count()).toBe(1);
    await page.locator('qwen-chat').evaluate((el) => el.setAttribute('lang', 'zh'));
    await expect.poll(() => page.locator('qwen-composer button.preset').allTextContents()).toEqual([...builtInPresets('zh').map((p) => p.label), 'Pirate']);
    await page.locator('qwen-chat').evaluate((el) => el.setAttribute('lang', 'en'));
    // Deleted from the settings panel.
    await page.locator('qwen-chat button.open-settings').click();
    await page.locator('qwen-settings-panel button.delete-preset').click();
    await page.locator('qwen-chat button.close-panel').click();
    expect(await page.locator('qwen-composer button.preset', { hasText: 'Pirate' }).count()).toBe(0);
  });
});

describe('outline and expand', () => {
  it('offers "Expand section N" under an outline; one asks for that section in the Write preset', async () => {
    await presetButton('outline').click();
    await answerNext('# Lighthouses\n\n## History\n- first lights\n\n## How they `work`\n- lenses\n\n```md\n## not a heading\n```\n\n## Keepers\n- lives');
    await ask('Lighthouses');
    const expand = page.locator('qwen-message').last().locator('button.expand');
    expect(await expand.allTextContents()).toEqual(['Expand section 1', 'Expand section 2', 'Expand section 3']);
    await page.screenshot({ path: 'test-results/writing-outline-light.png' });
    await page.locator('qwen-chat').evaluate((el) => el.setAttribute('theme', 'dark'));
    await page.screenshot({ path: 'test-results/writing-outline-dark.png' });
    await page.locator('qwen-chat').evaluate((el) => el.setAttribute('theme', 'light'));
    await answerNext('Lenses gather the light of a lamp…');
    const before = await messageCount();
    await expand.nth(1).click();
    await expect.poll(messageCount).toBe(before + 1);
    const request = await lastRequest();
    expect(request.messages.at(-1)).toEqual({ role: 'user', content: expandSectionPrompt('en', 2, 'How they work') });
    expect(systemOf(request)).toBe(builtInPresets('en').find((p) => p.id === 'write')!.systemPrompt);
    expect(await presetButton('write').getAttribute('aria-pressed')).toBe('true');
    // Only outline answers offer it.
    expect(await page.locator('qwen-message').last().locator('button.expand').count()).toBe(0);
  });
});

describe('JSON answers', () => {
  it('asks for a JSON object when the setting is on, and not when it is off', async () => {
    await page.locator('qwen-chat button.open-settings').click();
    await page.locator('qwen-settings-panel #json').check();
    await page.locator('qwen-chat button.close-panel').click();
    await answerNext('{"ok": true}');
    await ask('Status?');
    expect((await lastRequest()).response_format).toEqual({ type: 'json_object' });
    await page.locator('qwen-chat button.open-settings').click();
    await page.locator('qwen-settings-panel #json').uncheck();
    await page.locator('qwen-chat button.close-panel').click();
    await answerNext('fine');
    await ask('Status again?');
    expect((await lastRequest()).response_format).toBeUndefined();
  });
});

describe('tool calls', () => {
  it('shows calls as blocks, lets the page answer them, carries the results back and answers from them', async () => {
    await page.locator('qwen-chat').evaluate((el) => {
      (el as unknown as { tools: unknown[] }).tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    });
    await answerNext({ text: 'Let me check.', toolCalls: [{ id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] });
    await answerNext('It is 21° in Paris.');
    const before = await messageCount();
    await page.locator('qwen-composer textarea').fill('Weather in Paris? <img src=x onerror=alert(1)>');
    await page.locator('qwen-composer textarea').press('Enter');
    await expect.poll(messageCount, { timeout: 10_000 }).toBe(before + 2); // the call, then the answer from its result
    expect((await requests()).at(-2)!.tools).toHaveLength(1);
    const final = await lastRequest();
    expect(final.messages.slice(-3)).toEqual([
      { role: 'user', content: 'Weather in Paris? <img src=x onerror=alert(1)>' },
      { role: 'assistant', content: 'Let me check.', tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', content: '{"city":"Paris","temp":21}', tool_call_id: 'call_a' },
    ]);
    const calls = page.locator('qwen-message details.tool-call');
    expect(await calls.locator('summary').last().textContent()).toBe('Called get_weather');
    await calls.last().locator('summary').click();
    expect(JSON.parse((await calls.last().locator('pre').textContent())!)).toEqual({ city: 'Paris' });
    const result = page.locator('qwen-message details.tool-result').last();
    expect(await result.locator('summary').textContent()).toBe('Result of get_weather');
    expect((await page.locator('qwen-message').last().locator('.markdown').textContent())!.trim()).toBe('It is 21° in Paris.');
    for (const theme of ['light', 'dark']) {
      await page.locator('qwen-chat').evaluate((el, t) => el.setAttribute('theme', t), theme);
      await result.locator('summary').click();
      await page.screenshot({ path: `test-results/writing-tools-${theme}.png` });
      await result.locator('summary').click();
    }
    expect(chromium.consoleErrors).toEqual([]);
  });
});

describe('long prompts', () => {
  it('shows reading progress before the first token, and Stop ends the answer while the prompt is read', async () => {
    await page.evaluate(() => ((window as unknown as { engine: { delayMs: number } }).engine.delayMs = 150));
    try {
      await answerNext({ text: 'Never shown.', promptTokens: 4000 });
      const before = await messageCount();
      await page.locator('qwen-composer textarea').fill('A long article to polish…');
      await page.locator('qwen-composer textarea').press('Enter');
      const reading = page.locator('qwen-message[streaming] .reading');
      await expect.poll(() => reading.textContent(), { timeout: 10_000 }).toMatch(/Reading (64|128|192|256) \/ 4,000 tokens/);
      expect(await reading.getAttribute('role')).toBe('status');
      expect(Number(await reading.locator('progress').getAttribute('max'))).toBe(4000);
      expect((await lastRequest()).return_progress).toBe(true);
      await page.screenshot({ path: 'test-results/ui-reading.png' });
      await page.locator('qwen-composer button.stop').click();
      await expect.poll(messageCount, { timeout: 10_000 }).toBe(before + 1);
      expect(await page.locator('qwen-message .reading').count()).toBe(0);
      const last = page.locator('qwen-message').last();
      expect((await last.locator('.markdown').textContent())?.trim()).toBe('');
      expect(await last.locator('.status').textContent()).toMatch(/stopped/i);
      await page.screenshot({ path: 'test-results/ui-reading-stopped.png' });
    } finally {
      await page.evaluate(() => ((window as unknown as { engine: { delayMs: number } }).engine.delayMs = 0));
    }
  });
});
