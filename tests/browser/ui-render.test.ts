// How answers are drawn, in headless Chromium: the streaming Markdown renderer against the plain
// one (the oracle: rendering the whole text at once), text Markdown cannot render, and the view
// following a growing answer. The engine is a scripted stand-in (tests/support/scripted-engine.ts):
// rendering is under test, not the model.
import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { launchChromium, type LaunchedChromium } from '../support/chromium.ts';
import { startVitePages } from '../support/vite-pages.ts';

const HARNESS_JS = `
import '/src/ui/qwen-chat.ts';
import { renderMarkdown, StreamingMarkdown } from '/src/ui/markdown.ts';
import { createScriptedEngine } from '/tests/support/scripted-engine.ts';
const labels = { copy: 'Copy code', copied: 'Copied' };
// The shape of rendered Markdown: elements in document order (highlighting spans aside) and the text.
const shape = (root) => ({
  tags: [...root.querySelectorAll('*')].filter((e) => e.tagName !== 'SPAN').map((e) => e.tagName + (e.className && e.tagName !== 'CODE' ? '.' + e.className : '')).join(' '),
  text: root.textContent,
});
window.streamAndCompare = (text, step) => {
  const container = document.createElement('div');
  const streaming = new StreamingMarkdown(container, labels);
  const mismatches = [];
  for (let end = step; end < text.length + step; end += step) {
    const prefix = text.slice(0, end);
    streaming.update(prefix);
    const whole = document.createElement('div');
    whole.append(renderMarkdown(prefix, labels, { highlight: false }));
    const a = shape(container), b = shape(whole);
    if (a.tags !== b.tags || a.text !== b.text) { mismatches.push({ end, streamed: a, whole: b }); if (mismatches.length > 2) break; }
  }
  streaming.finish(text);
  const final = document.createElement('div');
  final.append(renderMarkdown(text, labels));
  return { mismatches, finalEqual: container.innerHTML === final.innerHTML };
};
window.renderText = (text) => {
  const div = document.createElement('div');
  div.append(renderMarkdown(text, labels));
  return { text: div.textContent, plain: div.querySelector('.plain-text') !== null };
};
const chat = document.querySelector('qwen-chat');
window.engine = createScriptedEngine();
chat.engine = window.engine;
window.list = () => chat.shadowRoot.querySelector('qwen-message-list');
window.harnessReady = true;
`;

const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>render</title><link rel="icon" href="data:,"></head>
<body style="margin:0;height:100vh"><qwen-chat></qwen-chat><script type="module" src="/__ui-render/harness.js"></script></body></html>`;

// Answers shaped like a writing assistant's: every block kind, blocks that change meaning as they
// grow (a paragraph turning into a setext heading, a list growing loose, a fence left open).
const DOCUMENTS = [
  '# Title\n\nA paragraph with **bold**, _emphasis_, `code` and a [link](https://example.com).\n\nSecond paragraph\nwith a soft break.\n',
  'Intro line\n===\n\nSub heading\n---\n\nText after.',
  '- one\n- two\n  - nested\n- three\n\n1. first\n2. second\n\n   continued item\n\n3. third\n\nAfter the list.',
  '> quoted\n> more\n>\n> > nested quote\n\nplain',
  '```python\ndef f(x):\n    return x * 2\n```\n\nThen text.\n\n```\nno language\n```\n',
  '| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\nTable done.',
  'Paragraph\n\n    indented code\n    block\n\n***\n\nafter a rule',
  '- [ ] task\n- [x] done\n\nEnd with `inline` and a trailing fence:\n\n```js\nconst open = true;',
  'Line one  \nhard break and <b>html as text</b> &amp; entities.\n\n1) paren list\n2) again',
];

let vite: ViteDevServer;
let chromium: LaunchedChromium;
let page: Page;

beforeAll(async () => {
  const pages = await startVitePages({
    '/__ui-render/harness.js': { type: 'text/javascript', body: HARNESS_JS },
    '/__ui-render/index.html': { type: 'text/html', body: PAGE_HTML },
  });
  vite = pages.server;
  chromium = await launchChromium();
  page = await chromium.newPage();
  await page.setViewportSize({ width: 1000, height: 700 });
  await page.goto(`${pages.url}/__ui-render/index.html`);
  await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
  mkdirSync('test-results', { recursive: true });
});

afterAll(async () => {
  await chromium?.close();
  await vite?.close();
});

describe('streaming Markdown', () => {
  it('shows at every step what rendering the whole text so far shows, and the final render exactly', async () => {
    for (const [index, text] of DOCUMENTS.entries()) {
      for (const step of [1, 3, 7]) {
        const result = await page.evaluate(([t, s]) => (window as unknown as { streamAndCompare(t: string, s: number): { mismatches: unknown[]; finalEqual: boolean } })
          .streamAndCompare(t as string, s as number), [text, step] as const);
        expect(result.mismatches, `document ${index}, ${step} characters a step`).toEqual([]);
        expect(result.finalEqual, `document ${index}`).toBe(true);
      }
    }
  });

  it('shows text Markdown cannot render (thousands of nested quotes or list items) as plain text, never blank', async () => {
    for (const text of ['>'.repeat(3000) + ' deep', '- '.repeat(3000) + 'deep', `${'> '.repeat(2500)}x\n${'  - '.repeat(2500)}y`]) {
      const shown = await page.evaluate((t) => (window as unknown as { renderText(t: string): { text: string; plain: boolean } }).renderText(t), text);
      expect(shown.text).toContain(text.endsWith('deep') ? 'deep' : 'y');
      if (shown.plain) expect(shown.text).toBe(text); // the fallback shows the text exactly
    }
    // Through the chat: the streamed answer shows, and nothing was thrown.
    await page.evaluate((t) => {
      const w = window as unknown as { engine: { answers: string[]; chunkChars: number } };
      w.engine.chunkChars = 400;
      w.engine.answers.push(t);
      void document.querySelector('qwen-chat')!.send('nest');
    }, '>'.repeat(3000) + ' deep');
    const message = page.locator('qwen-message').last();
    await expect.poll(() => message.locator('.markdown').textContent()).toContain('deep');
    expect(chromium.consoleErrors).toEqual([]);
  });
});

describe('following the answer', () => {
  const distanceFromEnd = () => page.evaluate(() => {
    const list = (window as unknown as { list(): HTMLElement }).list();
    return list.scrollHeight - list.scrollTop - list.clientHeight;
  });

  it('stays at the end of an answer that grows in big jumps, stops when the reader scrolls up, and jumps back', async () => {
    const paragraphs = Array.from({ length: 60 }, (_, i) => `Paragraph ${i}: ${'words that fill the line '.repeat(12)}`).join('\n\n');
    await page.evaluate((text) => {
      const w = window as unknown as { engine: { answers: string[]; chunkChars: number; delayMs: number } };
      w.engine.chunkChars = 700; // about 300 px of text per chunk
      w.engine.delayMs = 40;
      w.engine.answers.push(text);
      void document.querySelector('qwen-chat')!.send('long answer please');
    }, paragraphs);
    // While it streams, the end stays in view.
    for (let i = 0; i < 5; i++) {
      await page.waitForTimeout(150);
      expect(await distanceFromEnd()).toBeLessThan(4);
    }
    // The reader scrolls up: the view stays where they put it, and offers the way back.
    await page.locator('qwen-message-list').hover();
    await page.mouse.wheel(0, -600);
    await expect.poll(() => page.locator('qwen-message-list button.jump').count()).toBe(1);
    const readerAt = await page.evaluate(() => (window as unknown as { list(): HTMLElement }).list().scrollTop);
    await page.waitForTimeout(400);
    expect(await page.evaluate(() => (window as unknown as { list(): HTMLElement }).list().scrollTop)).toBe(readerAt);
    expect(await distanceFromEnd()).toBeGreaterThan(200);
    await page.screenshot({ path: 'test-results/ui-render-jump-to-latest.png' });
    await page.locator('qwen-message-list button.jump').click();
    await page.waitForTimeout(300);
    expect(await distanceFromEnd()).toBeLessThan(4);
    expect(await page.locator('qwen-message-list button.jump').count()).toBe(0);
    await expect.poll(() => page.locator('qwen-composer button.send').count(), { timeout: 30_000 }).toBe(1);
    expect(await distanceFromEnd()).toBeLessThan(4);
  });
});
