// A local HTTP server for browser tests, download tests and the benchmark: it serves files the
// way Hugging Face's resolve/main URLs do (byte ranges, ETag, CORS) and can be told to misbehave
// on chosen paths so that the storage code can be tested against cut and lying responses.
//
// Files are streamed from disk, never read whole: fixtures are 2.4 GB.
import { createReadStream, type ReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';

/** How a path misbehaves. `status` replaces the response; the other fields combine. */
export interface ServerFault {
  /** Answer with this status (e.g. 500, 503) and a short text body instead of the file. */
  status?: number;
  /** Send this many body bytes, then destroy the socket (the client sees a premature close). */
  cutAfterBytes?: number;
  /** Answer 200 with the whole file even when the request carries a Range header. */
  ignoreRange?: boolean;
  /**
   * Declare this Content-Length while sending the real body. The connection closes after the
   * response: a client told more bytes than sent sees a premature close, a client told fewer
   * reads a short body that looks complete.
   */
  contentLength?: number;
  /** Send this many body bytes (0: headers only), then send nothing more, keeping the connection open (a stalled server). */
  stallAfterBytes?: number;
  /** Send neither ETag nor Last-Modified (a server without validators). */
  noValidators?: boolean;
  /** Apply to the first `times` requests of the path only (default: every request). */
  times?: number;
}

export interface StaticServerOptions {
  /** Directory served under `/` (path traversal is refused). */
  root?: string;
  /** Exact URL path → absolute file path; wins over `root`. */
  files?: Record<string, string>;
  /** Exact URL path → in-memory body (e.g. a test page); wins over `files` and `root`. */
  inline?: Record<string, { body: string | Uint8Array; type?: string }>;
  /**
   * Send COOP same-origin + COEP require-corp + CORP cross-origin, which makes pages
   * `crossOriginIsolated` (SharedArrayBuffer, wasm threads). Default true.
   */
  isolation?: boolean;
  /** URL path → fault. Change later with `setFault`. */
  faults?: Record<string, ServerFault>;
  /**
   * URL path → extra headers on its file/inline responses (e.g. Hugging Face's `X-Linked-ETag`),
   * also named in Access-Control-Expose-Headers so a page can read them.
   */
  headers?: Record<string, Record<string, string>>;
}

export interface RequestRecord {
  method: string;
  path: string;
  range?: string;
  status: number;
}

export interface StaticServer {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  url: string;
  /** Every request answered so far, in order. */
  requests: RequestRecord[];
  /** Set (or with `undefined`, clear) the fault of a path; resets its `times` count. */
  setFault(path: string, fault: ServerFault | undefined): void;
  /** Serve another file at `path` from now on (a file replaced on the server). */
  setFile(path: string, filePath: string): void;
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.ts': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.gguf': 'application/octet-stream',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

const EXPOSED_HEADERS = 'Content-Length, Content-Range, ETag, Accept-Ranges, Last-Modified, Content-Type';

export function contentTypeFor(path: string): string {
  return CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

/** A parsed single range, both ends inclusive, already clamped to the file. */
interface ByteRange {
  start: number;
  end: number;
}

/**
 * RFC 9110 single byte range. Returns a range, 'unsatisfiable' (answer 416), or undefined when
 * the header is absent, malformed or asks for several ranges (answer 200 with everything, as
 * the RFC allows a server to ignore Range).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, first, last] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    // Suffix range: the last n bytes.
    const n = Number(last);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
}

/** What a request resolves to: a file on disk or an in-memory body. */
type Resource =
  | { kind: 'file'; path: string; size: number; mtimeMs: number; type: string }
  | { kind: 'inline'; body: Uint8Array; type: string; etag: string };

/** An in-memory body with a strong ETag from its length and an FNV-1a hash of its bytes. */
function inlineEntry(body: Uint8Array, type: string): { body: Uint8Array; type: string; etag: string } {
  let hash = 0x811c9dc5;
  for (const byte of body) hash = Math.imul(hash ^ byte, 0x01000193);
  return { body, type, etag: `"${body.length.toString(16)}-${(hash >>> 0).toString(16)}"` };
}

export async function startStaticServer(options: StaticServerOptions = {}): Promise<StaticServer> {
  const isolation = options.isolation ?? true;
  const root = options.root === undefined ? undefined : resolve(options.root);
  const files = new Map(Object.entries(options.files ?? {}));
  const inline = new Map(
    Object.entries(options.inline ?? {}).map(([path, { body, type }]) => [
      path,
      inlineEntry(typeof body === 'string' ? new TextEncoder().encode(body) : body, type ?? contentTypeFor(path)),
    ]),
  );
  const faults = new Map<string, { fault: ServerFault; used: number }>();
  for (const [path, fault] of Object.entries(options.faults ?? {})) faults.set(path, { fault, used: 0 });
  const requests: RequestRecord[] = [];

  async function findResource(urlPath: string): Promise<Resource | undefined> {
    const inlined = inline.get(urlPath);
    if (inlined) return { kind: 'inline', ...inlined };
    let filePath = files.get(urlPath);
    if (filePath === undefined && root !== undefined) {
      const candidate = resolve(join(root, urlPath));
      if (candidate !== root && !candidate.startsWith(root + sep)) return undefined;
      filePath = candidate;
    }
    if (filePath === undefined) return undefined;
    try {
      let info = await stat(filePath);
      if (info.isDirectory()) {
        filePath = join(filePath, 'index.html');
        info = await stat(filePath);
      }
      if (!info.isFile()) return undefined;
      return { kind: 'file', path: filePath, size: info.size, mtimeMs: info.mtimeMs, type: contentTypeFor(filePath) };
    } catch {
      return undefined;
    }
  }

  /** The fault to apply to this request, counting it against `times`. */
  function takeFault(urlPath: string): ServerFault | undefined {
    const entry = faults.get(urlPath);
    if (!entry) return undefined;
    if (entry.fault.times !== undefined && entry.used >= entry.fault.times) return undefined;
    entry.used++;
    return entry.fault;
  }

  function setCommonHeaders(res: ServerResponse): void {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
    if (isolation) {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
      res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
    }
    // A browser's HTTP cache would keep a second copy of a 2.4 GB model and skew repeated loads.
    res.setHeader('Cache-Control', 'no-store');
  }

  function sendText(res: ServerResponse, record: RequestRecord, status: number, text: string, head: boolean): void {
    record.status = status;
    const body = Buffer.from(text);
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length });
    res.end(head ? undefined : body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const rawPath = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    let urlPath: string | undefined;
    try {
      urlPath = decodeURIComponent(rawPath);
    } catch {
      urlPath = undefined; // malformed percent-encoding
    }
    const rangeHeader = req.headers.range;
    const record: RequestRecord = { method, path: urlPath ?? rawPath, status: 0 };
    if (rangeHeader !== undefined) record.range = rangeHeader;
    requests.push(record);
    setCommonHeaders(res);
    if (urlPath === undefined) {
      sendText(res, record, 400, 'bad request path\n', method === 'HEAD');
      return;
    }

    if (method === 'OPTIONS') {
      // CORS preflight (e.g. a Range header a browser does not treat as safelisted).
      record.status = 204;
      res.writeHead(204, {
        'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
        'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] ?? 'Range',
        'Access-Control-Max-Age': '600',
      });
      res.end();
      return;
    }
    const head = method === 'HEAD';
    if (method !== 'GET' && !head) {
      res.setHeader('Allow', 'GET, HEAD, OPTIONS');
      sendText(res, record, 405, 'method not allowed\n', false);
      return;
    }

    // Taken before anything is awaited: a test that sees this request in `requests` and then
    // changes the fault must not change what this request gets.
    const fault = takeFault(urlPath);
    const resource = await findResource(urlPath);
    if (!resource && urlPath === '/favicon.ico') {
      // Chromium asks on every page; a 404 would land in the console errors tests check.
      record.status = 204;
      res.writeHead(204);
      res.end();
      return;
    }
    if (!resource) {
      sendText(res, record, 404, `not found: ${urlPath}\n`, head);
      return;
    }
    if (fault?.status !== undefined) {
      sendText(res, record, fault.status, `injected fault: ${fault.status}\n`, head);
      return;
    }

    const size = resource.kind === 'file' ? resource.size : resource.body.length;
    const extra = options.headers?.[urlPath];
    if (extra) {
      for (const [name, value] of Object.entries(extra)) res.setHeader(name, value);
      res.setHeader('Access-Control-Expose-Headers', [EXPOSED_HEADERS, ...Object.keys(extra)].join(', '));
    }
    res.setHeader('Content-Type', resource.type);
    res.setHeader('Accept-Ranges', 'bytes');
    if (fault?.noValidators) {
      // neither ETag nor Last-Modified
    } else if (resource.kind === 'file') {
      res.setHeader('ETag', `"${size.toString(16)}-${Math.floor(resource.mtimeMs).toString(16)}"`);
      res.setHeader('Last-Modified', new Date(resource.mtimeMs).toUTCString());
    } else {
      res.setHeader('ETag', resource.etag);
    }

    const range = fault?.ignoreRange ? undefined : parseRange(rangeHeader, size);
    if (range === 'unsatisfiable') {
      res.setHeader('Content-Range', `bytes */${size}`);
      sendText(res, record, 416, 'range not satisfiable\n', head);
      return;
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1; // inclusive; -1 for an empty file
    const length = end - start + 1;
    const status = range ? 206 : 200;
    if (range) res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    if (fault?.contentLength !== undefined) {
      res.setHeader('Content-Length', fault.contentLength);
      // The real body no longer matches the framing: never reuse this connection.
      res.setHeader('Connection', 'close');
    } else {
      res.setHeader('Content-Length', length);
    }
    record.status = status;
    res.writeHead(status);
    if (head || length === 0) {
      res.end();
      return;
    }

    const stall = fault?.stallAfterBytes;
    const cut = fault?.cutAfterBytes ?? stall;
    const bytesToSend = cut === undefined ? length : Math.min(cut, length);
    if (resource.kind === 'inline') {
      const body = resource.body.subarray(start, start + bytesToSend);
      if (cut === undefined) {
        res.end(body);
      } else if (stall !== undefined) {
        res.write(body);
      } else {
        res.write(body, () => res.socket?.destroy());
      }
      return;
    }
    const completed = bytesToSend === 0 || (await streamFile(res, resource.path, start, bytesToSend));
    if (!completed || stall !== undefined) return; // a stall: the response stays open, silent
    if (cut === undefined) res.end();
    else res.socket?.destroy();
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`server error: ${String(error)}\n`);
      } else {
        res.destroy();
      }
    });
  });
  // Longer than Node's 5 s: a client whose event loop was busy must not reuse a socket we closed.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolveListen, rejectListen) => {
    server.once('error', rejectListen);
    server.listen(0, '127.0.0.1', () => resolveListen());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setFault(path, fault) {
      if (fault === undefined) faults.delete(path);
      else faults.set(path, { fault, used: 0 });
    },
    setFile(path, filePath) {
      files.set(path, filePath);
    },
    close() {
      return new Promise<void>((resolveClose) => {
        server.close(() => resolveClose());
        // Keep-alive connections (fetch, Chromium) would hold close() open.
        server.closeAllConnections();
      });
    },
  };
}

/**
 * Writes `count` bytes of the file from `start` into the response, honouring backpressure, and
 * resolves once the last byte is handed to the socket (so a cut that follows drops nothing).
 * False when the client went away first.
 */
async function streamFile(res: ServerResponse, path: string, start: number, count: number): Promise<boolean> {
  const source: ReadStream = createReadStream(path, { start, end: start + count - 1, highWaterMark: 1 << 20 });
  let clientGone = false;
  const onClose = (): void => {
    clientGone = true;
  };
  res.on('close', onClose);
  try {
    // Socket writes complete in order: waiting for the last one waits for all of them.
    let lastWrite: Promise<void> = Promise.resolve();
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (clientGone || res.destroyed) return false;
      let flushed = true;
      lastWrite = new Promise<void>((done) => {
        flushed = res.write(chunk, () => done());
      });
      if (!flushed) await drainOrClose(res);
    }
    if (clientGone || res.destroyed) return false;
    await Promise.race([lastWrite, new Promise<void>((done) => res.once('close', done))]);
    return !clientGone;
  } finally {
    res.off('close', onClose);
    source.destroy();
  }
}

function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((done) => {
    const finish = (): void => {
      res.off('drain', finish);
      res.off('close', finish);
      done();
    };
    res.on('drain', finish);
    res.on('close', finish);
  });
}
