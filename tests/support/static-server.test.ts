import { request as httpRequest } from 'node:http';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRange, startStaticServer, type StaticServer } from './static-server.ts';
import { CHROMIUM_PATH, isCrossOriginIsolated, launchChromium } from './chromium.ts';

// 3 MiB + 7: several 1 MiB read chunks and an odd tail.
const DATA_SIZE = 3 * 1024 * 1024 + 7;
// Past 2^31 and 2^32: offsets must not go through 32-bit arithmetic anywhere.
const SPARSE_SIZE = 5 * 1024 ** 3;

let dir: string;
let data: Uint8Array;
let server: StaticServer;

function patterned(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = 0x12345678;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

async function bodyBytes(response: Response): Promise<Uint8Array> {
  return new Uint8Array(await response.arrayBuffer());
}

/** Byte equality as a boolean: vitest's deep equality crawls megabytes element by element. */
function sameBytes(actual: Uint8Array, expected: Uint8Array): boolean {
  return Buffer.compare(actual, expected) === 0;
}

/** Reads a body chunk by chunk; returns how many bytes arrived and whether it ended in an error. */
async function drain(response: Response): Promise<{ received: number; failed: boolean }> {
  const reader = response.body!.getReader();
  let received = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { received, failed: false };
      received += value.length;
    }
  } catch {
    return { received, failed: true };
  }
}

/** A raw request that fetch would refuse or normalise (odd paths). */
function rawGet(url: string, path: string): Promise<number> {
  return new Promise((resolveStatus, reject) => {
    const req = httpRequest(`${url}${path}`, { method: 'GET', path }, (res) => {
      res.resume();
      res.on('end', () => resolveStatus(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'static-server-test-'));
  data = patterned(DATA_SIZE);
  await writeFile(join(dir, 'model.gguf'), data);
  await writeFile(join(dir, 'kernels.wasm'), new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  await writeFile(join(dir, 'main.js'), 'export const x = 1;\n');
  await writeFile(join(dir, 'worker.mjs'), 'export {};\n');
  await writeFile(join(dir, 'page.html'), '<!doctype html><title>t</title>');
  await writeFile(join(dir, 'info.json'), '{"a":1}');
  await writeFile(join(dir, 'empty.bin'), new Uint8Array(0));
  // A sparse file: 5 GiB on paper, nothing on disk.
  const sparse = await open(join(dir, 'big.gguf'), 'w');
  await sparse.truncate(SPARSE_SIZE);
  await sparse.write(new Uint8Array([1, 2, 3, 4]), 0, 4, SPARSE_SIZE - 4);
  await sparse.close();
  await writeFile(join(dir, '..secret'), 'x');
  server = await startStaticServer({
    root: dir,
    files: { '/resolve/main/model.gguf': join(dir, 'model.gguf') },
    inline: { '/inline.html': { body: '<!doctype html><p>inline</p>' } },
  });
});

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('parseRange', () => {
  it('parses the three single-range forms and clamps the end', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-500', 100)).toEqual({ start: 0, end: 99 });
    expect(parseRange('bytes=95-1000', 100)).toEqual({ start: 95, end: 99 });
  });

  it('reports unsatisfiable ranges and ignores malformed or multiple ones', () => {
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-', 0)).toBe('unsatisfiable');
    expect(parseRange(undefined, 100)).toBeUndefined();
    expect(parseRange('bytes=9-2', 100)).toBeUndefined();
    expect(parseRange('bytes=0-1,5-6', 100)).toBeUndefined();
    expect(parseRange('items=0-1', 100)).toBeUndefined();
    expect(parseRange('bytes=-', 100)).toBeUndefined();
  });
});

describe('static server', () => {
  it('serves a whole file with HF-like headers, isolation and CORS', async () => {
    const response = await fetch(`${server.url}/model.gguf`);
    expect(response.status).toBe(200);
    const h = response.headers;
    expect(h.get('content-type')).toBe('application/octet-stream');
    expect(h.get('content-length')).toBe(String(DATA_SIZE));
    expect(h.get('accept-ranges')).toBe('bytes');
    expect(h.get('etag')).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(Date.parse(h.get('last-modified') ?? '')).not.toBeNaN();
    expect(h.get('access-control-allow-origin')).toBe('*');
    const exposed = (h.get('access-control-expose-headers') ?? '').toLowerCase();
    for (const name of ['content-length', 'content-range', 'etag', 'accept-ranges']) expect(exposed).toContain(name);
    expect(h.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(h.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(h.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(sameBytes(await bodyBytes(response), data)).toBe(true);
  });

  it('serves the same file under an explicit files mapping, with the same ETag', async () => {
    const viaRoot = await fetch(`${server.url}/model.gguf`, { method: 'HEAD' });
    const viaMap = await fetch(`${server.url}/resolve/main/model.gguf`);
    expect(viaMap.status).toBe(200);
    expect(viaMap.headers.get('etag')).toBe(viaRoot.headers.get('etag'));
    expect(sameBytes(await bodyBytes(viaMap), data)).toBe(true);
  });

  it('gives each extension its content type', async () => {
    const expected: Record<string, string> = {
      '/kernels.wasm': 'application/wasm',
      '/main.js': 'text/javascript',
      '/worker.mjs': 'text/javascript',
      '/page.html': 'text/html',
      '/info.json': 'application/json',
      '/inline.html': 'text/html',
    };
    for (const [path, type] of Object.entries(expected)) {
      const response = await fetch(`${server.url}${path}`);
      await response.arrayBuffer();
      expect(response.status, path).toBe(200);
      expect(response.headers.get('content-type')?.split(';')[0], path).toBe(type);
    }
    const inline = await fetch(`${server.url}/inline.html`);
    expect(inline.headers.get('etag')).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(await inline.text()).toBe('<!doctype html><p>inline</p>');
  });

  it('answers HEAD with the headers and no body', async () => {
    const response = await fetch(`${server.url}/model.gguf`, { method: 'HEAD' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe(String(DATA_SIZE));
    expect((await bodyBytes(response)).length).toBe(0);
    const ranged = await fetch(`${server.url}/model.gguf`, { method: 'HEAD', headers: { Range: 'bytes=10-19' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 10-19/${DATA_SIZE}`);
    expect(ranged.headers.get('content-length')).toBe('10');
  });

  it('answers single ranges with 206 and Content-Range', async () => {
    const cases: Array<[string, number, number]> = [
      ['bytes=0-0', 0, 0],
      ['bytes=1000-1048675', 1000, 1048675], // crosses a read-chunk boundary
      [`bytes=${DATA_SIZE - 100}-`, DATA_SIZE - 100, DATA_SIZE - 1],
      ['bytes=-33', DATA_SIZE - 33, DATA_SIZE - 1],
      [`bytes=${DATA_SIZE - 5}-${DATA_SIZE + 100}`, DATA_SIZE - 5, DATA_SIZE - 1],
    ];
    for (const [range, start, end] of cases) {
      const response = await fetch(`${server.url}/model.gguf`, { headers: { Range: range } });
      expect(response.status, range).toBe(206);
      expect(response.headers.get('content-range'), range).toBe(`bytes ${start}-${end}/${DATA_SIZE}`);
      expect(response.headers.get('content-length'), range).toBe(String(end - start + 1));
      expect(sameBytes(await bodyBytes(response), data.subarray(start, end + 1)), range).toBe(true);
    }
  });

  it('answers 416 with the size for unsatisfiable ranges', async () => {
    for (const range of [`bytes=${DATA_SIZE}-`, 'bytes=-0']) {
      const response = await fetch(`${server.url}/model.gguf`, { headers: { Range: range } });
      await response.arrayBuffer();
      expect(response.status, range).toBe(416);
      expect(response.headers.get('content-range'), range).toBe(`bytes */${DATA_SIZE}`);
    }
    const empty = await fetch(`${server.url}/empty.bin`, { headers: { Range: 'bytes=0-' } });
    await empty.arrayBuffer();
    expect(empty.status).toBe(416);
  });

  it('answers a multi-range request with the whole file', async () => {
    const response = await fetch(`${server.url}/model.gguf`, { headers: { Range: 'bytes=0-1,4-5' } });
    expect(response.status).toBe(200);
    expect((await bodyBytes(response)).length).toBe(DATA_SIZE);
  });

  it('serves ranges past 4 GiB of a large file', async () => {
    const response = await fetch(`${server.url}/big.gguf`, { headers: { Range: `bytes=${SPARSE_SIZE - 8}-` } });
    expect(response.status).toBe(206);
    expect(response.headers.get('content-range')).toBe(`bytes ${SPARSE_SIZE - 8}-${SPARSE_SIZE - 1}/${SPARSE_SIZE}`);
    expect(Array.from(await bodyBytes(response))).toEqual([0, 0, 0, 0, 1, 2, 3, 4]);
    const head = await fetch(`${server.url}/big.gguf`, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(SPARSE_SIZE));
  });

  it('records requests with their range and status', async () => {
    const before = server.requests.length;
    await (await fetch(`${server.url}/main.js`, { headers: { Range: 'bytes=0-3' } })).arrayBuffer();
    await (await fetch(`${server.url}/missing.bin`)).arrayBuffer();
    expect(server.requests.slice(before)).toEqual([
      { method: 'GET', path: '/main.js', range: 'bytes=0-3', status: 206 },
      { method: 'GET', path: '/missing.bin', status: 404 },
    ]);
  });

  it('answers CORS preflights, 404s, and refuses paths outside the root', async () => {
    const preflight = await fetch(`${server.url}/model.gguf`, {
      method: 'OPTIONS',
      headers: { 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'range' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('range');
    expect((await fetch(`${server.url}/nope.gguf`)).status).toBe(404);
    expect(await rawGet(server.url, '/../static-server.test.ts')).toBe(404);
    expect(await rawGet(server.url, '/..%2F..%2Fetc%2Fpasswd')).toBe(404);
    expect(await rawGet(server.url, '/..secret')).toBe(200); // a name starting with '..' is fine
    expect(await rawGet(server.url, '/%E0%A4%A')).toBe(400);
  });

  it('leaves out COOP/COEP/CORP without isolation but keeps CORS', async () => {
    const plain = await startStaticServer({ root: dir, isolation: false });
    try {
      const response = await fetch(`${plain.url}/main.js`);
      await response.arrayBuffer();
      expect(response.headers.get('cross-origin-opener-policy')).toBeNull();
      expect(response.headers.get('cross-origin-embedder-policy')).toBeNull();
      expect(response.headers.get('cross-origin-resource-policy')).toBeNull();
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
    } finally {
      await plain.close();
    }
  });
});

describe('static server faults', () => {
  it('answers an injected 5xx, only `times` times when asked', async () => {
    server.setFault('/main.js', { status: 503, times: 2 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const response = await fetch(`${server.url}/main.js`);
        await response.arrayBuffer();
        statuses.push(response.status);
      }
      expect(statuses).toEqual([503, 503, 200]);
    } finally {
      server.setFault('/main.js', undefined);
    }
  });

  it('cuts the response after N bytes, whole or ranged', async () => {
    server.setFault('/model.gguf', { cutAfterBytes: 1_500_000 });
    try {
      const whole = await fetch(`${server.url}/model.gguf`);
      expect(whole.status).toBe(200);
      expect(await drain(whole)).toEqual({ received: 1_500_000, failed: true });

      const ranged = await fetch(`${server.url}/model.gguf`, { headers: { Range: 'bytes=100-' } });
      expect(ranged.status).toBe(206);
      expect(await drain(ranged)).toEqual({ received: 1_500_000, failed: true });

      // A range shorter than the cut arrives complete.
      const short = await fetch(`${server.url}/model.gguf`, { headers: { Range: 'bytes=0-99' } });
      expect(sameBytes(await bodyBytes(short), data.subarray(0, 100))).toBe(true);
    } finally {
      server.setFault('/model.gguf', undefined);
    }
    // The server is fine afterwards.
    expect((await bodyBytes(await fetch(`${server.url}/model.gguf`))).length).toBe(DATA_SIZE);
  });

  it('cuts inline bodies too', async () => {
    server.setFault('/inline.html', { cutAfterBytes: 5 });
    try {
      expect(await drain(await fetch(`${server.url}/inline.html`))).toEqual({ received: 5, failed: true });
    } finally {
      server.setFault('/inline.html', undefined);
    }
  });

  it('ignores Range when told to, answering 200 with everything', async () => {
    server.setFault('/model.gguf', { ignoreRange: true });
    try {
      const response = await fetch(`${server.url}/model.gguf`, { headers: { Range: 'bytes=10-19' } });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-range')).toBeNull();
      expect(sameBytes(await bodyBytes(response), data)).toBe(true);
    } finally {
      server.setFault('/model.gguf', undefined);
    }
  });

  it('lies in Content-Length: too long fails the body, too short truncates it', async () => {
    server.setFault('/model.gguf', { contentLength: DATA_SIZE + 1000 });
    try {
      const tooLong = await fetch(`${server.url}/model.gguf`);
      expect(tooLong.headers.get('content-length')).toBe(String(DATA_SIZE + 1000));
      expect(await drain(tooLong)).toEqual({ received: DATA_SIZE, failed: true });

      server.setFault('/model.gguf', { contentLength: 1000 });
      const tooShort = await fetch(`${server.url}/model.gguf`);
      expect(tooShort.headers.get('content-length')).toBe('1000');
      expect(sameBytes(await bodyBytes(tooShort), data.subarray(0, 1000))).toBe(true);
    } finally {
      server.setFault('/model.gguf', undefined);
    }
  });
});

describe.skipIf(!existsSync(CHROMIUM_PATH))('chromium with the static server', () => {
  it('is crossOriginIsolated only with isolation headers, and collects console errors', async () => {
    const page = '<!doctype html><script>console.error("boom from page")</script>';
    const workerPage =
      '<!doctype html><script>const w = new Worker("/worker.js"); w.onmessage = () => { window.workerDone = true; };</script>';
    const inline = {
      '/': { body: page, type: 'text/html' },
      '/with-worker.html': { body: workerPage },
      '/worker.js': { body: 'console.error("boom from worker"); postMessage(1);' },
    };
    const isolated = await startStaticServer({ inline });
    const plain = await startStaticServer({ inline, isolation: false });
    const browser = await launchChromium();
    try {
      expect(await isCrossOriginIsolated(browser, `${isolated.url}/`)).toBe(true);
      expect(await isCrossOriginIsolated(browser, `${plain.url}/`)).toBe(false);

      const tab = await browser.newPage();
      await tab.goto(`${isolated.url}/with-worker.html`);
      await tab.waitForFunction('window.workerDone === true');
      await tab.close();
      // The worker's console event travels on its own CDP session: let it arrive.
      for (let i = 0; i < 50 && !browser.consoleErrors.some((line) => line.includes('boom from worker')); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }

      const errors = browser.consoleErrors;
      expect(errors.filter((line) => line.includes('boom from page'))).toHaveLength(2);
      // once: the context reports workers' messages too, nothing may add them a second time
      expect(errors.filter((line) => line.includes('boom from worker'))).toHaveLength(1);
      expect(errors.filter((line) => line.includes('favicon'))).toEqual([]);

      const memory = await browser.processMemory();
      // A helper process may be exiting while /proc is read (a zombie has no VmRSS): judge the live ones.
      const live = memory.filter((p) => p.rssBytes > 0);
      expect(live.some((p) => p.type === 'browser')).toBe(true);
      expect(live.some((p) => p.type === 'renderer')).toBe(true);
      expect(live.every((p) => p.peakRssBytes >= p.rssBytes)).toBe(true);
    } finally {
      await browser.close();
      await isolated.close();
      await plain.close();
    }
  });
});
