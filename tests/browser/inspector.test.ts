// The first page a user sees (`npm run dev`): pick a GGUF, see its model config and tensors, and
// tokenize text with the file's own tokenizer — in headless Chromium against the vite dev server.
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type ViteDevServer } from 'vite';
import { NodeFileSource } from '../../src/gguf/node-file-source.ts';
import { readTokenizerData } from '../../src/gguf/metadata.ts';
import { readGGUF } from '../../src/gguf/reader.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { launchChromium, type LaunchedChromium } from '../support/chromium.ts';

describe('GGUF inspector page', () => {
  let server: ViteDevServer;
  let chromium: LaunchedChromium;
  let url: string;

  beforeAll(async () => {
    server = await createServer({ configFile: 'vite.config.ts', server: { port: 0, host: '127.0.0.1' }, logLevel: 'error' });
    await server.listen();
    url = `http://127.0.0.1:${(server.httpServer!.address() as AddressInfo).port}/inspector.html`;
    chromium = await launchChromium();
  });

  afterAll(async () => {
    await chromium?.close();
    await server?.close();
  });

  it('shows the model config and tokenizes like the runtime tokenizer', async () => {
    const path = await ensureFixture('small-q4_k_m');
    const page = await chromium.newPage();
    await page.goto(url);
    await page.setInputFiles('#file', path);
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('GGUF v'), null, { timeout: 60_000 });

    const config = Object.fromEntries(
      await page.$$eval('#config tr', (rows) => rows.slice(1).map((r) => [r.children[0].textContent, r.children[1].textContent])),
    );
    expect(config).toMatchObject({ architecture: 'qwen3', nLayers: '3', hiddenSize: '256', nHeads: '8', nKvHeads: '2', headDim: '64', tiedEmbeddings: 'false' });
    const tensorRows = await page.$$eval('#tensors tr', (rows) => rows.length - 1);

    // The same file read in Node gives the reference tensor count and token ids.
    const source = await NodeFileSource.open(path);
    const gguf = await readGGUF(source);
    await source.close();
    expect(tensorRows).toBe(gguf.tensors.length);
    const tokenizer = Tokenizer.fromData(readTokenizerData(gguf));
    for (const [text, special] of [['<|im_start|>user\nHello, 世界! 👋<|im_end|>', true], ['<|im_start|> as plain text', false]] as const) {
      await page.fill('#text', text);
      await page.setChecked('#special', special);
      const shown = await page.$$eval('#ids .piece', (pieces) => pieces.map((p) => Number((p as HTMLElement).title)));
      expect(shown, text).toEqual(tokenizer.encode(text, { parseSpecial: special }));
    }
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/inspector.png', fullPage: false });
    expect(chromium.consoleErrors, chromium.consoleErrors.join("\n")).toEqual([]);
  });

  it('shows a clear error for a file that is not GGUF', async () => {
    const page = await chromium.newPage();
    await page.goto(url);
    await page.setInputFiles('#file', { name: 'notes.gguf', mimeType: 'application/octet-stream', buffer: Buffer.from('hello, this is not a model file') });
    await page.waitForFunction(() => document.getElementById('status')?.className === 'error', null, { timeout: 30_000 });
    expect(await page.textContent('#status')).toMatch(/not a GGUF file/);
  });
});
