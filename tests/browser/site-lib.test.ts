// The library build (`npm run build:lib`) as another project would use it: a throwaway Vite app
// in a temp directory has qwen-web in its node_modules (the built package: package.json with
// the repository's `exports`/`types`, and dist-lib/), imports it by name, type-checks against
// its declarations, and builds with Vite's defaults. The built app then runs in Chromium: the
// engine's worker, the kernels' pool workers and the wasm files must all have been found through
// the package's `new URL(..., import.meta.url)` references, since the element loads a fixture
// model and answers. The same app also runs from Vite's dev server (dependency pre-bundling and
// all), with default settings.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import { build, createServer } from 'vite';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { launchChromium, type LaunchedChromium } from '../support/chromium.ts';
import { startStaticServer, type StaticServer } from '../support/static-server.ts';

const REPO = resolve('.');
const MODEL_PATH = '/models/tiny-f32.gguf';

const CONSUMER_HTML = `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><title>consumer</title><link rel="icon" href="data:," /></head>
  <body>
    <qwen-chat theme="light" max-tokens="12"></qwen-chat>
    <script type="module" src="./main.ts"></script>
  </body>
</html>
`;

// Uses the element, the engine API and the types through the package name only.
const CONSUMER_MAIN = `import { CATALOGUE, EngineError, ModelStore, QwenChat, createEngine, type ModelInfo } from 'qwen-web';

const chat = document.querySelector('qwen-chat');
if (!(chat instanceof QwenChat)) throw new Error('<qwen-chat> is not the package element');
const ready = new Promise<ModelInfo>((resolve, reject) => {
  chat.addEventListener('ready', (e) => resolve((e as CustomEvent<{ info: ModelInfo }>).detail.info));
  chat.addEventListener('error', (e) => reject(new Error(JSON.stringify((e as unknown as CustomEvent).detail))));
});
Object.assign(window, {
  consumer: { chat, ready, catalogueSize: CATALOGUE.length, engineErrorName: new EngineError('busy', 'x').name },
});

// The README's engine example, type-checked here (not run).
export async function readmeExample(): Promise<void> {
  const engine = await createEngine({ backend: 'auto' });
  await engine.load({ kind: 'url', url: 'https://huggingface.co/…/model.gguf' });
  for await (const chunk of await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], stream: true })) {
    console.log(chunk.choices[0]?.delta.content ?? '');
  }
  const store: ModelStore = ModelStore.open();
  void store;
}
`;

const CONSUMER_TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'ESNext',
    moduleResolution: 'Bundler',
    lib: ['ES2022', 'DOM', 'DOM.Iterable'],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  },
  include: ['main.ts'],
};

let consumer: string;
let server: StaticServer;
let chromium: LaunchedChromium;

function run(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

beforeAll(async () => {
  consumer = mkdtempSync(join(tmpdir(), 'qwen-web-consumer-'));
  const modules = join(consumer, 'node_modules');
  const pkg = join(modules, 'qwen-web');
  mkdirSync(pkg, { recursive: true });
  // The package as npm would lay it out: its package.json and its files.
  run(process.execPath, [join(REPO, 'node_modules/tsx/dist/cli.mjs'), join(REPO, 'scripts/build-lib.ts'), '--out-dir', join(pkg, 'dist-lib')], REPO);
  const repoPackage = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as Record<string, unknown>;
  const { name, version, type, exports, types, dependencies } = repoPackage;
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name, version, type, exports, types, dependencies }, null, 2));
  // Its dependencies (and Vite's) installed beside it.
  for (const entry of readdirSync(join(REPO, 'node_modules'))) {
    if (entry.startsWith('.') || entry === 'qwen-web') continue;
    symlinkSync(join(REPO, 'node_modules', entry), join(modules, entry));
  }
  writeFileSync(join(consumer, 'index.html'), CONSUMER_HTML);
  writeFileSync(join(consumer, 'main.ts'), CONSUMER_MAIN);
  writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify(CONSUMER_TSCONFIG, null, 2));

  server = await startStaticServer({
    root: join(consumer, 'dist'),
    files: { [MODEL_PATH]: await ensureFixture('tiny-f32') },
  });
  chromium = await launchChromium();
}, 600_000);

afterAll(async () => {
  await chromium?.close();
  await server?.close();
  if (consumer) rmSync(consumer, { recursive: true, force: true });
});

describe('qwen-web as a package in another Vite app', () => {
  it('type-checks against the package declarations', () => {
    run(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', consumer], consumer);
  });

  it("builds with Vite's defaults and emits the package's workers and wasm", async () => {
    const nodeEnv = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      // Vite's defaults (worker format and all); only the build-time report is turned off.
      await build({
        root: consumer,
        configFile: false,
        logLevel: 'warn',
        mode: 'production',
        build: { rolldownOptions: { checks: { bundlerTimings: false } } },
        worker: { rolldownOptions: { checks: { bundlerTimings: false } } },
      });
    } finally {
      process.env.NODE_ENV = nodeEnv;
    }
    const assets = readdirSync(join(consumer, 'dist/assets'));
    // the SIMD128, relaxed and memory64 kernel builds
    expect(assets.filter((f) => f.endsWith('.wasm')).map((f) => f.replace(/-[\w-]{8}\.wasm$/, '')).sort())
      .toEqual(['qwen-relaxed', 'qwen-relaxed64', 'qwen-simd128']);
    expect(assets.some((f) => f.startsWith('engine-worker'))).toBe(true);
    expect(assets.some((f) => f.startsWith('kernel-worker'))).toBe(true);
  }, 300_000);

  it("runs from the consumer's Vite dev server too (default settings)", async () => {
    const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
    const dev = await createServer({
      root: consumer,
      configFile: false,
      logLevel: 'error',
      server: { host: '127.0.0.1', port: 0, headers: isolation, hmr: false },
    });
    await dev.listen();
    const page = await chromium.newPage();
    try {
      await page.goto(`http://127.0.0.1:${(dev.httpServer!.address() as AddressInfo).port}/`);
      await page.waitForFunction(() => 'consumer' in window, null, { timeout: 120_000 });
      const info = await page.evaluate(async (url) => {
        const { chat, ready } = (window as unknown as { consumer: { chat: HTMLElement; ready: Promise<unknown> } }).consumer;
        chat.setAttribute('model', url);
        return ready;
      }, `${server.url}${MODEL_PATH}`);
      expect(info).toMatchObject({ backend: 'cpu', name: expect.stringContaining('tiny-f32') });
      expect((info as { threads: number }).threads).toBeGreaterThan(1);
    } finally {
      await page.close();
      await dev.close();
    }
    expect(chromium.consoleErrors, chromium.consoleErrors.join('\n')).toEqual([]);
  }, 300_000);

  it('renders the element, loads a fixture model by URL and answers', async () => {
    const page = await chromium.newPage();
    await page.goto(`${server.url}/`);
    await page.waitForFunction(() => 'consumer' in window);
    expect(await page.evaluate(() => {
      const { catalogueSize, engineErrorName } = (window as unknown as { consumer: { catalogueSize: number; engineErrorName: string } }).consumer;
      return { catalogueSize, engineErrorName, rendered: document.querySelector('qwen-chat')!.shadowRoot !== null };
    })).toEqual({ catalogueSize: expect.any(Number), engineErrorName: 'EngineError', rendered: true });

    const info = await page.evaluate(async (url) => {
      const { chat, ready } = (window as unknown as { consumer: { chat: HTMLElement; ready: Promise<unknown> } }).consumer;
      chat.setAttribute('model', url);
      return ready;
    }, `${server.url}${MODEL_PATH}`);
    expect(info).toMatchObject({ backend: 'cpu', name: expect.stringContaining('tiny-f32') });
    // The static server sends COOP/COEP here: the package's kernels ran on more than one thread.
    expect((info as { threads: number }).threads).toBeGreaterThan(1);

    const answer = await page.evaluate(async () => {
      const chat = document.querySelector('qwen-chat') as HTMLElement & { send(text: string): Promise<void> };
      const message = new Promise<{ role: string; content: string }>((resolve) =>
        chat.addEventListener('message', (e) => {
          const detail = (e as CustomEvent<{ message: { role: string; content: string } }>).detail;
          if (detail.message.role === 'assistant') resolve(detail.message);
        }),
      );
      await chat.send('Hello');
      return message;
    });
    expect(answer.role).toBe('assistant');
    expect(chromium.consoleErrors, chromium.consoleErrors.join('\n')).toEqual([]);
  }, 300_000);
});
