// Main-thread cost of a streamed answer in <qwen-chat>, per chunk, once the answer is long: the
// engine waits for the page between tokens, so this is generation speed as well as smoothness.
//
//   npm run bench:ui [-- --rounds 3]
//
// The page is tests/bench/pages/ui.html (ui-page.ts): a scripted engine
// (tests/support/scripted-engine.ts) streams a ~20 KB answer: its first 18 KB in large pieces,
// then the last 2 KB four characters at a time (about a token). Chromium's own counter of main-thread task time (CDP Performance.getMetrics, TaskDuration) is read before and
// after those last 500 chunks: the difference over 500 is the cost per chunk at 18–20 KB, layout
// and style included. Two answers: mixed Markdown (paragraphs, lists, code, a table) and a
// paragraph of dense emphasis (the inline parser's worst case). Goal from the app issue: ≤ 4 ms.
import { parseArgs } from 'node:util';
import { withBenchBrowser } from './browser.ts';
import type { StreamRequest } from './pages/ui-page.ts';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '3' } } });
const rounds = Number(args.rounds);

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

await withBenchBrowser({}, async (browser) => {
  const rows: string[] = [];
  for (const [name, make] of [['mixed Markdown', mixedMarkdown], ['dense emphasis', denseEmphasis]] as const) {
    const perChunk: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const { page, call } = await browser.open('ui.html', { viewport: { width: 1200, height: 800 } });
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Performance.enable');
      const text = make(20_000);
      const tail = text.slice(18_000);
      await call('streamHead', { head: text.slice(0, 18_000), tail } satisfies StreamRequest);
      await page.waitForTimeout(300); // the head's last render lands
      const metrics = async () => new Map((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
      const before = await metrics();
      await call('streamTail');
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
});
