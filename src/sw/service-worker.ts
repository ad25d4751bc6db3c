// The site's service worker (built to `sw.js` beside index.html by vite.config.ts).
//
// 1. Offline app shell: at install it caches every file of the build (the list and a version
//    are written into this file at build time); later visits load from that cache, so the app
//    opens with the network gone. A new build has a new version: its worker caches the new
//    files and takes over at once; the previous version's cache stays (for tabs still running
//    it) until the version after.
// 2. Cross-origin isolation on hosts that cannot send headers (GitHub Pages and the like): the
//    pages and worker scripts it serves get COOP/COEP, so `crossOriginIsolated` is true once it
//    controls the page and the kernels can share memory between threads. Worker scripts also get
//    the site's CSP, which a <meta> tag cannot give them.
// 3. It leaves model bytes alone: cross-origin requests, Range requests and anything not in the
//    build go to the network untouched and are never cached (models live in IndexedDB).
export {};

declare const self: ServiceWorkerGlobalScope;

interface PrecacheManifest {
  /** Hash of every file's name and bytes. */
  version: string;
  /** Paths relative to this worker's directory, cached at install. */
  files: string[];
  /** Large files (web-llm), cached the first time a page asks for them. */
  lazy: string[];
}

// Replaced by vite.config.ts: the manifest after bundling, the CSP at transform time.
declare const __QWEN_WEB_PRECACHE__: PrecacheManifest;
declare const __QWEN_WEB_CSP__: string;

const PRECACHE = __QWEN_WEB_PRECACHE__;
const CACHE_PREFIX = 'qwen-web-shell-';
const CACHE_NAME = `${CACHE_PREFIX}${PRECACHE.version}`;
const BASE = new URL('./', self.location.href);
const SHELL_URLS = new Set(PRECACHE.files.map((file) => new URL(file, BASE).href));
const LAZY_URLS = new Set(PRECACHE.lazy.map((file) => new URL(file, BASE).href));
/** Where the build's hashed files live. */
const ASSETS = new URL('assets/', BASE).href;

const ISOLATION_HEADERS: Record<string, string> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE_NAME);
      // 'reload': fill the cache from the network, not from a stale HTTP cache entry.
      await cache.addAll([...SHELL_URLS].map((url) => new Request(url, { cache: 'reload' })));
      // A new version takes over at once; tabs still running the previous one keep finding its
      // files in its cache (kept until the next version), even after the host dropped them.
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      // keys() lists caches in creation order: keep this version's and the one before it.
      const older = (await caches.keys()).filter((name) => name.startsWith(CACHE_PREFIX) && name !== CACHE_NAME);
      for (const name of older.slice(0, -1)) await caches.delete(name);
      await self.clients.claim();
    })(),
  );
});

// A page that was loaded bypassing the worker (e.g. a hard reload) asks to be taken over.
self.addEventListener('message', (event) => {
  if (event.data === 'claim') event.waitUntil(self.clients.claim());
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin || request.headers.has('range')) return;
  if (request.mode === 'navigate') {
    event.respondWith(navigate(request));
  } else if (SHELL_URLS.has(stripSearch(url)) || LAZY_URLS.has(stripSearch(url))) {
    event.respondWith(fromShell(request));
  } else if (url.href.startsWith(ASSETS)) {
    event.respondWith(fromPreviousVersion(request));
  } else if (needsHeaders(request)) {
    event.respondWith(fromNetwork(request));
  }
  // Anything else (a model file hosted beside the app, …) is not intercepted.
});

function stripSearch(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** Documents and worker scripts are where COOP/COEP/CSP take effect. */
function needsHeaders(request: Request): boolean {
  return ['document', 'iframe', 'worker', 'sharedworker'].includes(request.destination);
}

/** Pages: the network first (a new deployment shows up), the cached copy when offline. */
async function navigate(request: Request): Promise<Response> {
  try {
    const response = await fetch(request);
    if (response.ok) return withHeaders(response, request);
    const cached = await cachedPage(request);
    return cached ? withHeaders(cached, request) : withHeaders(response, request);
  } catch (error) {
    const cached = await cachedPage(request);
    if (cached) return withHeaders(cached, request);
    throw error;
  }
}

async function cachedPage(request: Request): Promise<Response | undefined> {
  const url = new URL(request.url);
  const cache = await caches.open(CACHE_NAME);
  const exact = await cache.match(stripSearch(url));
  if (exact) return exact;
  if (url.pathname.endsWith('/')) return cache.match(new URL('index.html', url).href);
  return undefined;
}

/** Build files: names carry content hashes, so the cached copy is the right one. */
async function fromShell(request: Request): Promise<Response> {
  const key = stripSearch(new URL(request.url));
  const cache = await caches.open(CACHE_NAME);
  const cached = await cache.match(key);
  if (cached) return withHeaders(cached, request);
  const response = await fetch(request);
  if (response.ok && LAZY_URLS.has(key)) await cache.put(key, response.clone());
  return withHeaders(response, request);
}

/** A build file this version does not have: a tab of the previous version still asks for it. */
async function fromPreviousVersion(request: Request): Promise<Response> {
  const cached = await caches.match(stripSearch(new URL(request.url)));
  return withHeaders(cached ?? (await fetch(request)), request);
}

async function fromNetwork(request: Request): Promise<Response> {
  return withHeaders(await fetch(request), request);
}

function withHeaders(response: Response, request: Request): Response {
  // Opaque and error responses cannot be rebuilt; they are passed on as they are.
  if (response.status === 0 || response.type === 'opaque' || response.type === 'opaqueredirect') return response;
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(ISOLATION_HEADERS)) {
    if (!headers.has(name)) headers.set(name, value);
  }
  if (needsHeaders(request) || request.mode === 'navigate') {
    if (!headers.has('Content-Security-Policy')) headers.set('Content-Security-Policy', __QWEN_WEB_CSP__);
  }
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
