// A vite dev server over the repository for browser tests and the benchmarks' pages
// (tests/bench/pages): it compiles src/ and workers/ on the fly, serves a few test pages of the
// test's own, and sends the cross-origin isolation headers that shared wasm memory (the kernels'
// threads) needs.
import type { AddressInfo } from 'node:net';
import { createServer, type Plugin, type ViteDevServer } from 'vite';

export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export interface TestPage {
  type: string;
  body: string;
}

export interface VitePages {
  /** http://127.0.0.1:PORT */
  url: string;
  server: ViteDevServer;
}

/**
 * Serves `pages` (URL path → content) beside the repository's own modules. `options.headers`
 * are sent with every response besides the isolation headers (e.g. a Content-Security-Policy,
 * which must come with the worker scripts too, not only with the page). `options.root` is the
 * directory served (default: the current directory, the repository root under npm and vitest).
 */
export async function startVitePages(
  pages: Record<string, TestPage>,
  options: { headers?: Record<string, string>; root?: string } = {},
): Promise<VitePages> {
  const headers = { ...ISOLATION_HEADERS, ...options.headers };
  const plugin: Plugin = {
    name: 'test-pages',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const page = req.url ? pages[req.url] : undefined;
        if (!page) return next();
        res.writeHead(200, { 'Content-Type': page.type, ...headers });
        res.end(page.body);
      });
    },
  };
  const server = await createServer({
    configFile: false,
    root: options.root ?? process.cwd(),
    logLevel: 'silent',
    plugins: [plugin],
    server: { host: '127.0.0.1', port: 0, headers, hmr: false },
    // highlight.js ships its core as CommonJS only (es/core.js re-exports lib/core.js): pre-bundle it.
    optimizeDeps: { noDiscovery: true, include: ['highlight.js/lib/core'] },
    worker: { format: 'es' },
  });
  await server.listen();
  return { url: `http://127.0.0.1:${(server.httpServer!.address() as AddressInfo).port}`, server };
}
