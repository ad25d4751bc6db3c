// Math in answers, in headless Chromium: TeX between $…$, $$…$$, \(…\) and \[…\] becomes MathML
// the browser lays out (KaTeX's MathML output, src/ui/math.ts), never inside code, not for
// currency; a formula KaTeX cannot parse shows as its source; formulas written half-way never show
// an error while they stream; hostile TeX (links, images, HTML, macro bombs) gives no script, no
// handler, no request. The oracle for what each formula says is its TeX annotation, which KaTeX
// keeps inside the MathML. Screenshots of a streamed answer in both themes go to test-results/.
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
const describe = (root) => ({
  formulas: [...root.querySelectorAll('math')].map((m) => ({
    tex: m.querySelector('annotation')?.textContent ?? '',
    display: m.getAttribute('display') === 'block',
    namespace: m.namespaceURI,
    cssDisplay: getComputedStyle(m).display,
    height: m.getBoundingClientRect().height,
  })),
  sources: [...root.querySelectorAll('.math-source')].map((e) => e.textContent),
  text: root.textContent,
  elements: [...root.querySelectorAll('*')].map((e) => e.localName),
  attributes: [...root.querySelectorAll('*')].flatMap((e) => [...e.attributes].map((a) => a.name + '=' + a.value)),
});
const sandbox = document.getElementById('sandbox');
window.render = (text) => {
  const div = document.createElement('div');
  div.className = 'markdown';
  div.append(renderMarkdown(text, labels));
  sandbox.replaceChildren(div); // in the document, so layout and any load would happen
  return describe(div);
};
window.stream = (text, step) => {
  const div = document.createElement('div');
  sandbox.replaceChildren(div);
  const streaming = new StreamingMarkdown(div, labels);
  const steps = [];
  for (let end = step; end < text.length + step; end += step) {
    streaming.update(text.slice(0, end));
    const d = describe(div);
    steps.push({ end, sources: d.sources, formulas: d.formulas.map((f) => f.tex) });
  }
  streaming.finish(text);
  return { steps, final: describe(div) };
};
const chat = document.querySelector('qwen-chat');
window.engine = createScriptedEngine();
chat.engine = window.engine;
window.harnessReady = true;
`;

const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>math</title><link rel="icon" href="data:,"></head>
<body style="margin:0;height:100vh"><div id="sandbox"></div><qwen-chat theme="light" style="height:600px"></qwen-chat>
<script type="module" src="/__ui-math/harness.js"></script></body></html>`;

interface Shown {
  formulas: { tex: string; display: boolean; namespace: string; cssDisplay: string; height: number }[];
  sources: string[];
  text: string;
  elements: string[];
  attributes: string[];
}

let vite: ViteDevServer;
let chromium: LaunchedChromium;
let page: Page;
let pagesUrl: string;
const requests: string[] = [];

const render = (text: string) => page.evaluate((t) => (window as unknown as { render(t: string): Shown }).render(t), text);

beforeAll(async () => {
  const pages = await startVitePages({
    '/__ui-math/harness.js': { type: 'text/javascript', body: HARNESS_JS },
    '/__ui-math/index.html': { type: 'text/html', body: PAGE_HTML },
  });
  vite = pages.server;
  pagesUrl = pages.url;
  chromium = await launchChromium();
  page = await chromium.newPage();
  await page.setViewportSize({ width: 900, height: 700 });
  await page.goto(`${pages.url}/__ui-math/index.html`);
  await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
  page.on('request', (r) => requests.push(r.url()));
  page.on('dialog', (d) => { requests.push(`dialog:${d.message()}`); void d.dismiss(); });
  mkdirSync('test-results', { recursive: true });
}, 120_000);

afterAll(async () => {
  await chromium?.close();
  await vite?.close();
});

describe('math in answers', () => {
  it('renders the four delimiter forms as MathML the browser lays out, keeping the TeX', async () => {
    const shown = await render([
      'Inline $E = mc^2$ and \\(a^2 + b^2 = c^2\\) in a sentence.',
      '',
      '$$',
      '\\int_0^1 x^2\\,dx = \\frac{1}{3}',
      '$$',
      '',
      'Also \\[\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}\\] and $$\\sqrt{2}$$ inline-display.',
    ].join('\n'));
    expect(shown.formulas.map((f) => [f.tex, f.display])).toEqual([
      ['E = mc^2', false],
      ['a^2 + b^2 = c^2', false],
      ['\\int_0^1 x^2\\,dx = \\frac{1}{3}', true],
      ['\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}', true],
      ['\\sqrt{2}', true],
    ]);
    for (const f of shown.formulas) {
      expect(f.namespace).toBe('http://www.w3.org/1998/Math/MathML');
      expect(f.cssDisplay).toMatch(/math/); // laid out as MathML, not as unknown inline elements
      expect(f.height).toBeGreaterThan(8);
    }
    expect(shown.elements).toEqual(expect.arrayContaining(['msup', 'mfrac', 'msubsup', 'msqrt', 'munderover']));
    expect(shown.sources).toEqual([]);
    // No delimiter is left as text outside the formulas' own annotations.
    expect(shown.text.replace(/\\\\[a-z]+|[^$\\\\]/g, '')).not.toMatch(/\$|\\\(|\\\[/);
  });

  it('leaves code, currency and escaped dollars alone', async () => {
    const shown = await render([
      'It costs $5 and $10 today; a price of $ 3 $ is not math either.',
      '',
      'Code: `$x^2$` and \\$y\\$ escaped.',
      '',
      '```latex',
      '$$\\frac{a}{b}$$',
      '```',
    ].join('\n'));
    expect(shown.formulas).toEqual([]);
    expect(shown.text).toContain('It costs $5 and $10 today');
    expect(shown.text).toContain('$x^2$');
    expect(shown.text).toContain('$y$ escaped');
    expect(shown.text).toContain('$$\\frac{a}{b}$$');
  });

  it('shows a formula KaTeX cannot parse as its source, and stops a self-expanding macro', async () => {
    const started = Date.now();
    const shown = await render('Broken $\\frac{a}$ here, $x^{2$ there, and $\\def\\a{\\a\\a}\\a$ last.\n\n$$\\begin{matrix} a & b$$');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(shown.sources).toEqual(['$\\frac{a}$', '$x^{2$', '$\\def\\a{\\a\\a}\\a$', '$$\\begin{matrix} a & b$$']);
    expect(shown.formulas).toEqual([]);
    expect(chromium.consoleErrors).toEqual([]);
  });

  it('never shows an error for a formula while it is being written, and ends as the whole text renders', async () => {
    const answers = [
      'Euler: $e^{i\\pi} + 1 = 0$, the famous one.\n\n$$\n\\frac{d}{dx} \\sin x = \\cos x\n$$\n\nAnd \\(\\alpha_1\\) too.',
      '设 $f(x) = x^2$，则\n\\[ f\'(x) = 2x \\]\n最后 $$\\lim_{n\\to\\infty} \\left(1+\\frac{1}{n}\\right)^n = e$$ 完。',
    ];
    for (const text of answers) {
      for (const step of [1, 4]) {
        const result = await page.evaluate(([t, s]) => (window as unknown as { stream(t: string, s: number): { steps: { end: number; sources: string[]; formulas: string[] }[]; final: Shown } })
          .stream(t as string, s as number), [text, step] as const);
        expect(result.steps.filter((s) => s.sources.length > 0)).toEqual([]);
        const whole = await render(text);
        expect(result.final.formulas.map((f) => f.tex)).toEqual(whole.formulas.map((f) => f.tex));
        expect(whole.formulas.length).toBe(3);
        // Every formula appears once complete and stays.
        const last = result.steps[result.steps.length - 1]!;
        expect(last.formulas).toEqual(whole.formulas.map((f) => f.tex));
      }
    }
  });

  it('gives hostile TeX no script, no handler, no link, no image and no request', async () => {
    const before = requests.length;
    const hostile = [
      '$\\href{javascript:alert(1)}{click}$',
      '$\\url{javascript:alert(2)}$',
      '$\\includegraphics{http://127.0.0.1:9/leak.png}$',
      '$\\htmlClass{x}{y} \\htmlStyle{color:red}{z} \\htmlId{i}{j} \\htmlData{a=b}{c}$',
      '$\\text{<img src=x onerror=alert(3)>}$',
      '$<script>alert(4)</script>$',
      '$$\\text{</math><img src=x onerror=alert(5)>}$$',
      '\\(\\unicode{x3c}script\\)',
      '$\\color{javascript:alert(6)}{x}$',
      '$$\\begin{array}{c}\\text{<iframe src=javascript:alert(7)>}\\end{array}$$',
    ].join('\n\n');
    const shown = await render(hostile);
    await page.waitForTimeout(300);
    expect(shown.elements.filter((e) => ['script', 'img', 'iframe', 'a', 'style', 'annotation-xml', 'foreignobject'].includes(e))).toEqual([]);
    expect(shown.attributes.filter((a) => /^on|^href=|^src=|^style=|javascript:/i.test(a))).toEqual([]);
    expect(requests.slice(before)).toEqual([]);
    expect(chromium.consoleErrors).toEqual([]);
  });

  it('keeps attribute values that are not URLs (list start, table alignment) and still drops unsafe ones', async () => {
    const shown = await render('3. third\n4. fourth\n\n| left | centre | right |\n|:---|:---:|---:|\n| a | b | c |\n\n[x](javascript:alert(1)) [y](https://example.com/)');
    expect(shown.attributes).toEqual(expect.arrayContaining(['start=3', 'align=left', 'align=center', 'align=right', 'href=https://example.com/']));
    expect(shown.attributes.filter((a) => a.includes('javascript'))).toEqual([]);
  });

  it('streams math through the chat and draws it in both themes (screenshots)', async () => {
    await page.evaluate(() => {
      document.getElementById('sandbox')!.replaceChildren();
      const w = window as unknown as { engine: { answers: string[]; chunkChars: number }; answered: Promise<unknown> };
      w.engine.chunkChars = 5;
      w.engine.answers.push('The roots of $ax^2 + bx + c = 0$ are\n\n$$\nx = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}\n$$\n\nand their sum is $-\\tfrac{b}{a}$.');
      const chat = document.querySelector('qwen-chat')!;
      w.answered = new Promise((resolve) => chat.addEventListener('message', resolve, { once: true }));
      void chat.send('Solve the quadratic');
    });
    await page.evaluate(() => (window as unknown as { answered: Promise<unknown> }).answered);
    const answer = page.locator('qwen-message').last().locator('.markdown');
    await expect.poll(() => answer.locator('math').count(), { timeout: 10_000 }).toBe(3);
    expect(await answer.locator('.math-source').count()).toBe(0);
    for (const theme of ['light', 'dark']) {
      await page.locator('qwen-chat').evaluate((el, t) => el.setAttribute('theme', t), theme);
      await page.waitForTimeout(100);
      await page.locator('qwen-chat').screenshot({ path: `test-results/math-${theme}.png` });
    }
    expect(chromium.consoleErrors).toEqual([]);
    expect(pagesUrl).toMatch(/^http:\/\/127\.0\.0\.1:/);
  });
});
