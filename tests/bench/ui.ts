// Main-thread cost of a streamed answer in <qwen-chat>, per chunk, once the answer is long: the
// engine waits for the page between tokens, so this is generation speed as well as smoothness.
//
//   npm run bench:ui [-- --rounds 3]
//
// A scripted engine (tests/support/scripted-engine.ts) streams a ~20 KB answer: its first 18 KB
// in large pieces, then the last 2 KB four characters at a time (about a token). Chromium's own
// counter of main-thread task time (CDP Performance.getMetrics, TaskDuration) is read before and
// after those last 500 chunks: the difference over 500 is the cost per chunk at 18–20 KB, layout
// and style included. Two answers: mixed Markdown (paragraphs, lists, code, a table) and a
// paragraph of dense emphasis (the inline parser's worst case). Goal from the app issue: ≤ 4 ms.
import { parseArgs } from 'node:util';
import { launchChromium } from '../support/chromium.ts';
import { startVitePages } from '../support/vite-pages.ts';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '3' } } });
const rounds = Number(args.rounds);

const HARNESS_JS = `
import '/src/ui/qwen-chat.ts';
import { createScriptedEngine } from '/tests/support/scripted-engine.ts';
const chat = document.querySelector('qwen-chat');
const engine = createScriptedEngine();
chat.engine = engine;
let release;
// The answer: 'head' in 2,000-character pieces, a pause the driver ends, then 'tail' in 4s.
window.stream = (head, tail) => {
  const gate = new Promise((resolve) => (release = resolve));
  engine.chat.completions.create = async () => (async function* () {
    const chunk = (content, finish) => ({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'bench', choices: [{ index: 0, delta: content ? { content } : {}, finish_reason: finish }],
      usage: finish ? { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, extra: { cached_prompt_tokens: 0, prefilled_tokens: 1, dropped_messages: 0, time_to_first_token_s: 0, prefill_tokens_per_s: 0, decode_tokens_per_s: 0 } } : undefined });
    for (let i = 0; i < head.length; i += 2000) { yield chunk(head.slice(i, i + 2000), null); await new Promise((r) => setTimeout(r)); }
    window.atTail = true;
    await gate;
    for (let i = 0; i < tail.length; i += 4) { yield chunk(tail.slice(i, i + 4), null); await new Promise((r) => setTimeout(r)); }
    yield chunk('', 'stop');
  })();
  window.atTail = false;
  window.done = new Promise((resolve) => chat.addEventListener('message', resolve, { once: true }));
  void chat.send('benchmark');
};
window.release = () => release();
window.ready = true;
`;

const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>bench-ui</title><link rel="icon" href="data:,"></head>
<body style="margin:0;height:100vh"><qwen-chat></qwen-chat><script type="module" src="/__bench-ui/harness.js"></script></body></html>`;

function mixedMarkdown(length: number): string {
  const parts: string[] = [];
  for (let i = 0; parts.join('').length < length; i++) {
    parts.push(
      `## Section ${i}\n\nA paragraph with **bold**, _emphasis_, \`inline code\` and a [link](https://example.com/${i}). ` +
        'The assistant writes at length about the subject, sentence after sentence, as a writer would.\n\n' +
        `- point one of ${i}\n- point two with *stress*\n  - a nested point\n\n` +
        '```ts\n' + `function step${i}(x: number): number {\n  return x * ${i} + 1;\n}\n` + '```\n\n' +
        '| column | value |\n|---|---|\n' + `| a | ${i} |\n| b | ${i * 2} |\n\n`,
    );
  }
  return parts.join('').slice(0, length);
}

const denseEmphasis = (length: number): string => '*a* **b** _c_ `d` '.repeat(Math.ceil(length / 18)).slice(0, length);

const pages = await startVitePages({
  '/__bench-ui/harness.js': { type: 'text/javascript', body: HARNESS_JS },
  '/__bench-ui/index.html': { type: 'text/html', body: PAGE_HTML },
});
const chromium = await launchChromium();
try {
  const rows: string[] = [];
  for (const [name, make] of [['mixed Markdown', mixedMarkdown], ['dense emphasis', denseEmphasis]] as const) {
    const perChunk: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const page = await chromium.newPage();
      await page.setViewportSize({ width: 1200, height: 800 });
      await page.goto(`${pages.url}/__bench-ui/index.html`);
      await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Performance.enable');
      const text = make(20_000);
      const head = text.slice(0, 18_000);
      const tail = text.slice(18_000);
      await page.evaluate(([h, t]) => (window as unknown as { stream(h: string, t: string): void }).stream(h!, t!), [head, tail]);
      await page.waitForFunction(() => (window as unknown as { atTail?: boolean }).atTail === true);
      await page.waitForTimeout(300); // the head's last render lands
      const metrics = async () => new Map((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
      const before = await metrics();
      await page.evaluate(() => (window as unknown as { release(): void }).release());
      await page.evaluate(() => (window as unknown as { done: Promise<unknown> }).done);
      const after = await metrics();
      const chunks = Math.ceil(tail.length / 4);
      const per = (name: string) => ((after.get(name)! - before.get(name)!) * 1000) / chunks;
      perChunk.push(per('TaskDuration'));
      if (process.env.BENCH_UI_DETAIL) console.log(name, ['TaskDuration', 'ScriptDuration', 'LayoutDuration', 'RecalcStyleDuration'].map((m) => `${m} ${per(m).toFixed(2)}`).join(' '));
      await page.close();
    }
    perChunk.sort((a, b) => a - b);
    const median = perChunk[Math.floor(perChunk.length / 2)]!;
    rows.push(`| ${name} | ${median.toFixed(2)} | ${perChunk[0]!.toFixed(2)}–${perChunk.at(-1)!.toFixed(2)} |`);
  }
  console.log(`\nMain-thread time per streamed chunk (4 characters) at 18–20 KB, ${rounds} rounds`);
  console.log('| answer | median ms/chunk | range |\n|---|---|---|');
  for (const row of rows) console.log(row);
} finally {
  await chromium.close();
  await pages.server.close();
}
