// Model output is untrusted: an XSS corpus streamed as model output through <qwen-chat> must
// execute nothing and leave no dangerous markup in the DOM, in every browser engine (each parses
// HTML, and so runs the sanitizer, its own way): Chromium, Firefox and WebKit
// (tests/support/browsers.ts, $QWEN_WEB_BROWSERS).
//
// The thing under test is the element's real rendering path (marked → highlight.js → DOMPurify →
// copy buttons), fed while streaming, 3 characters per delta, so half-written tags are rendered
// too. The engine here is a scripted stand-in that replays the corpus as chat chunks: the engine
// is not under test, and a real model cannot be made to write these strings on demand.
//
// Two pages: one without any Content-Security-Policy, so a payload that slipped through the
// sanitizer would really run (it would set window.__pwned or call alert, which the page counts the
// same way); and one with a strict CSP, where even a blocked attempt would show up as a
// securitypolicyviolation event.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ViteDevServer } from 'vite';
import type { Page } from 'playwright-core';
import { launchBrowser, testBrowsers, type TestBrowser, type TestPage } from '../support/browsers.ts';
import { launchChromium, type LaunchedChromium } from '../support/chromium.ts';
import { startVitePages } from '../support/vite-pages.ts';

const PWN = 'window.__pwned=(window.__pwned||0)+1';

/** Each string is one whole model answer. */
const XSS_CORPUS: string[] = [
  `<script>${PWN}</script>`,
  `Hello <script>${PWN}</script> world`,
  `<img src=x onerror="${PWN}">`,
  `<img src=x onerror=alert(1)>`,
  `<svg onload="${PWN}"></svg>`,
  `<svg><script>${PWN}</script></svg>`,
  `[click](javascript:${PWN})`,
  `[click](JaVaScRiPt:${PWN})`,
  `[click](&#106;avascript:${PWN})`,
  `[click](javascript&colon;${PWN})`,
  `![img](x" onerror="${PWN})`,
  `![pic](javascript:${PWN})`,
  `[ref]\n\n[ref]: javascript:${PWN}`,
  `<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>`,
  `<iframe src="javascript:parent.__pwned=1"></iframe>`,
  `<div style="background:url(javascript:${PWN})">styled</div>`,
  `<div style="width: expression(${PWN})">expr</div>`,
  `<style>@import 'javascript:${PWN}'; body{background:red}</style>`,
  `<object data="javascript:${PWN}"></object>`,
  `<embed src="javascript:${PWN}">`,
  `<a href="javascript:${PWN}">plain link</a>`,
  `<a href="data:text/html,<script>${PWN}</script>">data link</a>`,
  `<a href="vbscript:msgbox(1)">vb link</a>`,
  `<form action="javascript:${PWN}"><button formaction="javascript:${PWN}">go</button></form>`,
  `<details open ontoggle="${PWN}"><summary>s</summary>x</details>`,
  `<body onload="${PWN}">`,
  `<input autofocus onfocus="${PWN}">`,
  `<video><source onerror="${PWN}"></video>`,
  `<marquee onstart="${PWN}">x</marquee>`,
  `<math><mtext><table><mglyph><style><img src=x onerror="${PWN}">`,
  `<noscript><p title="</noscript><img src=x onerror=${PWN}>">`,
  `<meta http-equiv="refresh" content="0;url=javascript:${PWN}">`,
  `<base href="javascript:/">[rel](x)`,
  `<link rel="stylesheet" href="javascript:${PWN}">`,
  `<template><img src=x onerror="${PWN}"></template>`,
  `<a href="https://example.com" onmouseover="${PWN}" style="position:fixed;inset:0">overlay</a>`,
  '```html\n<script>window.__pwned=1</script>\n<img src=x onerror=alert(1)>\n```',
  '`<img src=x onerror=alert(1)>` inline code',
];

const CODE_ANSWER = 'Here is code:\n\n```python\ndef greet(name):\n    return f"hi {name}" # <b>not bold</b>\n```\n\nDone.';
const CODE_TEXT = 'def greet(name):\n    return f"hi {name}" # <b>not bold</b>';

// The page script: the element, and a scripted engine (tests/support/scripted-engine.ts) that
// answers each request with the next queued answer, streamed 3 characters per chunk.
const HARNESS_JS = `
import '/src/ui/qwen-chat.ts';
import { createScriptedEngine } from '/tests/support/scripted-engine.ts';
window.__pwned = 0;
// A dialog is a payload that ran (and one left open would block a WebDriver-driven page).
for (const name of ['alert', 'confirm', 'prompt', 'print']) window[name] = () => { window.__pwned++; };
window.violations = [];
document.addEventListener('securitypolicyviolation', (e) => window.violations.push([e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber, e.sample].join(' ')));
window.scriptedEngine = createScriptedEngine();
const chat = document.querySelector('qwen-chat');
chat.engine = window.scriptedEngine;
window.ask = (question, answer) => new Promise((resolve) => {
  window.scriptedEngine.answers.push(answer);
  chat.addEventListener('message', (e) => resolve(e.detail.message.content), { once: true });
  chat.send(question);
});
`;

const pageHtml = (csp: string) => `<!doctype html><html><head><meta charset="utf-8"><title>xss</title>
<link rel="icon" href="data:,">${csp ? `<meta http-equiv="Content-Security-Policy" content="${csp}">` : ''}</head>
<body style="margin:0;height:100vh"><qwen-chat></qwen-chat><script type="module" src="/__ui-xss/harness.js"></script></body></html>`;

// The app's kind of policy: scripts only from the origin, no plugins, frames, forms or base.
const STRICT_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; frame-src 'none'; base-uri 'none'; form-action 'none'";

interface DomReport {
  messages: number;
  badElements: string[];
  eventAttributes: string[];
  badUrls: string[];
  linksWithoutNoopener: string[];
}

/** Walks every shadow root under <qwen-chat> and reports anything that could run or load script. */
async function inspectDom(page: TestPage): Promise<DomReport> {
  return page.evaluate(() => {
    const all: Element[] = [];
    const walk = (root: ParentNode) => {
      for (const element of root.querySelectorAll('*')) {
        all.push(element);
        if (element.shadowRoot) walk(element.shadowRoot);
      }
    };
    walk(document.querySelector('qwen-chat')!.shadowRoot!);
    const inMessages = all.filter((e) => e.closest('.markdown'));
    const dangerous = new Set(['SCRIPT', 'IFRAME', 'FRAME', 'OBJECT', 'EMBED', 'FORM', 'BASE', 'META', 'LINK', 'STYLE', 'SVG', 'MATH', 'IMG', 'VIDEO', 'AUDIO', 'SOURCE', 'INPUT', 'TEMPLATE', 'NOSCRIPT', 'MARQUEE', 'BODY']);
    const urlAttributes = ['href', 'src', 'action', 'formaction', 'data', 'xlink:href', 'srcdoc', 'style'];
    const report = {
      messages: all.filter((e) => e.tagName === 'QWEN-MESSAGE').length,
      badElements: inMessages.filter((e) => dangerous.has(e.tagName.toUpperCase())).map((e) => e.outerHTML),
      eventAttributes: all.flatMap((e) => [...e.attributes].filter((a) => /^on/i.test(a.name)).map((a) => `${e.tagName} ${a.name}`)),
      badUrls: [] as string[],
      linksWithoutNoopener: [] as string[],
    };
    for (const element of inMessages) {
      for (const name of urlAttributes) {
        const value = element.getAttribute(name);
        if (value === null) continue;
        if (name !== 'href' || !/^(https?:\/\/|mailto:)/i.test(value)) report.badUrls.push(`${element.tagName} ${name}=${value}`);
      }
      if (element.tagName === 'A' && element.hasAttribute('href')) {
        if (element.getAttribute('target') !== '_blank' || !/\bnoopener\b/.test(element.getAttribute('rel') ?? '')) {
          report.linksWithoutNoopener.push(element.outerHTML);
        }
      }
    }
    return report;
  });
}

let vite: ViteDevServer;
let url: string;

beforeAll(async () => {
  const pages = await startVitePages({
    '/__ui-xss/harness.js': { type: 'text/javascript', body: HARNESS_JS },
    '/__ui-xss/open.html': { type: 'text/html', body: pageHtml('') },
    '/__ui-xss/csp.html': { type: 'text/html', body: pageHtml(STRICT_CSP) },
  });
  vite = pages.server;
  url = pages.url;
});

afterAll(() => vite?.close());

describe.each(testBrowsers())('<qwen-chat> renders untrusted model output safely in %s', (browserName) => {
  let browser: TestBrowser;

  beforeAll(async () => {
    browser = await launchBrowser(browserName);
  }, 120_000);

  afterAll(() => browser?.close());

  async function openPage(path: string): Promise<TestPage> {
    const page = await browser.newPage();
    await page.goto(`${url}${path}`);
    await page.waitForFunction(() => (window as unknown as { ask?: unknown }).ask !== undefined);
    return page;
  }

  async function streamCorpus(page: TestPage): Promise<void> {
    for (const [index, payload] of XSS_CORPUS.entries()) {
      const shown = await page.evaluate(([q, a]) => (window as unknown as { ask(q: string, a: string): Promise<string> }).ask(q, a), [`payload ${index}`, payload]);
      expect(shown).toBe(payload); // the whole answer arrived, delta by delta
    }
    // Give payloads that fire later (image errors, autofocus, meta refresh, timers) their chance.
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 1000)));
  }

  it('executes nothing from a 38-payload XSS corpus and leaves no dangerous markup (no CSP)', async () => {
    const page = await openPage('/__ui-xss/open.html');
    await streamCorpus(page);
    expect(await page.evaluate(() => (window as unknown as { __pwned: number }).__pwned)).toBe(0);
    const report = await inspectDom(page);
    expect(report.messages).toBe(XSS_CORPUS.length * 2);
    expect(report.badElements).toEqual([]);
    expect(report.eventAttributes).toEqual([]);
    expect(report.badUrls).toEqual([]);
    expect(report.linksWithoutNoopener).toEqual([]);
    // Still on our page: no navigation by meta refresh or base tricks.
    expect(await page.evaluate(() => location.href)).toBe(`${url}/__ui-xss/open.html`);

    // Markup inside code is shown as text, not parsed.
    const codeTexts = await page.evaluate(() => {
      const texts: string[] = [];
      const list = document.querySelector('qwen-chat')!.shadowRoot!.querySelector('qwen-message-list')!.shadowRoot!;
      for (const message of list.querySelectorAll('qwen-message')) {
        for (const code of message.shadowRoot!.querySelectorAll('.markdown code')) texts.push(code.textContent ?? '');
      }
      return texts;
    });
    expect(codeTexts).toContain('<script>window.__pwned=1</script>\n<img src=x onerror=alert(1)>');
    expect(codeTexts).toContain('<img src=x onerror=alert(1)>');
    expect(browser.consoleErrors, browser.consoleErrors.join('\n')).toEqual([]);
    await page.close();
  }, 180_000);

  it('triggers no Content-Security-Policy violation under a strict policy', async () => {
    const page = await openPage('/__ui-xss/csp.html');
    await streamCorpus(page);
    expect(await page.evaluate(() => (window as unknown as { violations: string[] }).violations)).toEqual([]);
    expect(await page.evaluate(() => (window as unknown as { __pwned: number }).__pwned)).toBe(0);
    await page.close();
  }, 180_000);
});

describe('<qwen-chat> reasoning and code blocks', () => {
  let chromium: LaunchedChromium;

  beforeAll(async () => {
    chromium = await launchChromium();
  });

  afterAll(() => chromium?.close());

  async function openPage(path: string): Promise<{ page: Page }> {
    const page = await chromium.newPage();
    await page.goto(`${url}${path}`);
    await page.waitForFunction(() => (window as unknown as { ask?: unknown }).ask !== undefined);
    return { page };
  }

  it('shows reasoning as plain text in a collapsible block', async () => {
    const { page } = await openPage('/__ui-xss/open.html');
    const reasoning = 'First <img src=x onerror="window.__pwned=1"> think **hard**.';
    await page.evaluate(
      ([q, a]) => (window as unknown as { ask(q: string, a: unknown): Promise<string> }).ask(q, a),
      ['think', { reasoning, text: 'The answer.' }] as const,
    );
    const message = page.locator('qwen-message').last();
    await expect.poll(() => message.locator('details.reasoning').count()).toBe(1);
    expect(await message.locator('details.reasoning').evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    expect((await message.locator('details.reasoning summary').textContent())?.trim()).toBe('Reasoning');
    expect(await message.locator('.reasoning-text').textContent()).toBe(reasoning);
    expect(await message.locator('.reasoning-text img').count()).toBe(0);
    expect((await message.locator('.markdown').textContent())?.trim()).toBe('The answer.');
    await message.locator('details.reasoning summary').click();
    expect(await message.locator('details.reasoning').evaluate((d) => (d as HTMLDetailsElement).open)).toBe(true);
    expect(await page.evaluate(() => (window as unknown as { __pwned: number }).__pwned)).toBe(0);
    await page.close();
  });

  it('highlights code blocks and copies the exact code with the copy button', async () => {
    const { page } = await openPage('/__ui-xss/open.html');
    await chromium.browser.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: url });
    await page.evaluate(([q, a]) => (window as unknown as { ask(q: string, a: string): Promise<string> }).ask(q, a), ['code please', CODE_ANSWER]);
    const block = page.locator('qwen-message .code-block').last();
    await expect.poll(() => block.locator('code.hljs.language-python').count()).toBe(1);
    // highlight.js marked the keyword and the string; the HTML in the comment stayed text.
    expect(await block.locator('.hljs-keyword').first().textContent()).toBe('def');
    expect(await block.locator('.hljs-string').count()).toBeGreaterThan(0);
    expect(await block.locator('b').count()).toBe(0);
    expect(await block.locator('code').textContent()).toBe(CODE_TEXT);

    await page.bringToFront();
    await block.locator('button.copy-code').click();
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe(CODE_TEXT);
    await expect.poll(() => block.locator('button.copy-code').textContent()).toBe('Copied');
    await page.close();
  });
});
