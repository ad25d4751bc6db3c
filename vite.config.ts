import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, normalizePath, type Plugin, type ResolvedConfig } from 'vite';

// Cross-origin isolation lets the kernels share one WebAssembly.Memory across worker threads.
// The dev server sends the headers; a built site gets them from its service worker.
const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/**
 * The built site's Content-Security-Policy: no inline or evaluated script (model output is
 * untrusted), wasm compilation allowed, network only to this origin and Hugging Face (model files
 * redirect to CDN hosts under huggingface.co and hf.co, e.g. cas-bridge.xethub.hf.co);
 * raw.githubusercontent.com serves web-llm's model libraries for the WebGPU backend.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "connect-src 'self' https://huggingface.co https://*.huggingface.co https://*.hf.co https://raw.githubusercontent.com",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "manifest-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'none'",
].join('; ');

/**
 * How workers are split into chunks (the site's and the benchmark's builds): what a worker's
 * entry loads at once, the entry module itself aside, goes into a chunk of its own. Otherwise it
 * lands in the entry's chunk, and the chunks the worker imports later import the entry back:
 * WebKit then evaluated the worker's script a second time, and two copies of the engine answered
 * each call, the wrong one now and then. Worker entries are the `*-worker.ts` files.
 */
export const WORKER_OUTPUT = {
  codeSplitting: { groups: [{ name: 'worker-shared', tags: ['$initial' as const], test: (id: string) => !/-worker\.ts$/.test(id) }] },
};

const ROOT = dirname(fileURLToPath(import.meta.url));
const SERVICE_WORKER_SOURCE = resolve(ROOT, 'src/sw/service-worker.ts');
const SERVICE_WORKER_FILE = 'sw.js';
const STANDALONE_ENTRY = 'qwen-chat';
const PRECACHE_PLACEHOLDER = '__QWEN_WEB_PRECACHE__';
/**
 * Files above this size are cached when first used instead of at install: web-llm (6 MB) is
 * only fetched by pages that pick the WebGPU backend.
 */
const LAZY_FILE_BYTES = 1024 * 1024;

function listFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...listFiles(path));
    else if (entry.isFile()) files.push(path);
  }
  return files;
}

/**
 * The static site's extras: the CSP <meta> in every page, and the service worker built from
 * src/sw/service-worker.ts with the list of files to cache for offline use (every file of this
 * build and of public/, source maps excepted; large ones at first use) and a version hashed
 * from their bytes.
 */
function staticSite(): Plugin {
  let config: ResolvedConfig;
  return {
    name: 'qwen-web-static-site',
    apply: 'build',
    enforce: 'post',
    configResolved(resolved) {
      config = resolved;
    },
    buildStart() {
      this.emitFile({ type: 'chunk', id: SERVICE_WORKER_SOURCE, fileName: SERVICE_WORKER_FILE });
    },
    transformIndexHtml: {
      order: 'pre',
      handler(html, context) {
        // Right after the charset and before any script or style, so that it governs them all.
        const charset = /<meta charset="utf-8"\s*\/?>/i;
        if (!charset.test(html)) throw new Error(`${context.filename}: <meta charset="utf-8"> is missing`);
        const csp = CONTENT_SECURITY_POLICY.replaceAll("'", '&#39;');
        return html.replace(charset, (tag) => `${tag}\n    <meta http-equiv="Content-Security-Policy" content="${csp}" />`);
      },
    },
    generateBundle: {
      order: 'post',
      handler(_options, bundle) {
        const files = new Map<string, Uint8Array | string>();
        for (const [name, output] of Object.entries(bundle)) {
          if (name === SERVICE_WORKER_FILE || name.endsWith('.map')) continue;
          files.set(name, output.type === 'chunk' ? output.code : output.source);
        }
        if (config.publicDir && config.build.copyPublicDir) {
          for (const path of listFiles(config.publicDir)) {
            files.set(normalizePath(relative(config.publicDir, path)), readFileSync(path));
          }
        }
        const names = [...files.keys()].sort();
        const hash = createHash('sha256');
        for (const name of names) hash.update(name).update('\0').update(files.get(name)!).update('\0');
        const size = (name: string) => {
          const content = files.get(name)!;
          return typeof content === 'string' ? Buffer.byteLength(content) : content.byteLength;
        };
        const manifest = {
          version: hash.digest('hex').slice(0, 16),
          files: names.filter((name) => size(name) <= LAZY_FILE_BYTES),
          lazy: names.filter((name) => size(name) > LAZY_FILE_BYTES),
        };

        const worker = bundle[SERVICE_WORKER_FILE];
        if (worker?.type !== 'chunk') this.error(`${SERVICE_WORKER_FILE} was not built`);
        const uses = worker.code.split(PRECACHE_PLACEHOLDER).length - 1;
        if (uses !== 1) this.error(`${SERVICE_WORKER_FILE}: expected one ${PRECACHE_PLACEHOLDER}, found ${uses}`);
        worker.code = worker.code.replace(PRECACHE_PLACEHOLDER, JSON.stringify(manifest));
      },
    },
  };
}

export default defineConfig(({ command }) => ({
  // Relative URLs: the site works from any directory of any static host.
  base: './',
  define: {
    __QWEN_WEB_CSP__: JSON.stringify(CONTENT_SECURITY_POLICY),
    // Only a built site registers the service worker (the dev server sends the headers itself).
    __QWEN_WEB_SERVICE_WORKER__: JSON.stringify(command === 'build'),
  },
  server: { headers: isolationHeaders, host: '127.0.0.1' },
  preview: { headers: isolationHeaders, host: '127.0.0.1' },
  worker: {
    format: 'es',
    rolldownOptions: {
      checks: { bundlerTimings: false },
      output: WORKER_OUTPUT,
    },
  },
  plugins: [staticSite()],
  build: {
    target: 'es2022',
    rolldownOptions: {
      checks: { bundlerTimings: false },
      input: {
        index: resolve(ROOT, 'index.html'),
        inspector: resolve(ROOT, 'inspector.html'),
        embed: resolve(ROOT, 'examples/embed.html'),
        // The element as one file at a fixed name, for pages that are not built with Vite:
        // <script type="module" src="…/qwen-chat.js"></script>
        [STANDALONE_ENTRY]: resolve(ROOT, 'src/lib.ts'),
      },
      output: {
        entryFileNames: (chunk) => (chunk.name === STANDALONE_ENTRY ? `${STANDALONE_ENTRY}.js` : 'assets/[name]-[hash].js'),
      },
    },
  },
}));
