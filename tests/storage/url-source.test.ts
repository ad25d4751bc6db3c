// UrlSource against the static test server in Node: exact bytes through Range requests, and a
// typed UrlSourceError (never wrong bytes, never a hang) for every way a server can misbehave.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GGUFError } from '../../src/gguf/errors.ts';
import { UrlSource, UrlSourceError } from '../../src/storage/url-source.ts';
import { Rng } from '../fixtures/random.ts';
import { startStaticServer, type StaticServer } from '../support/static-server.ts';

const SIZE = 300_000;
const data = new Uint8Array(SIZE);
new Rng(7).fillBytes(data);

let server: StaticServer;
const url = (path = '/blob.bin') => `${server.url}${path}`;

beforeAll(async () => {
  server = await startStaticServer({ inline: { '/blob.bin': { body: data, type: 'application/octet-stream' } } });
});
afterAll(async () => {
  await server?.close();
});
beforeEach(() => {
  server.setFault('/blob.bin', undefined);
  server.requests.length = 0;
});

/** The UrlSourceError a promise rejects with (fails the test if it resolves or throws another type). */
async function urlError(promise: Promise<unknown>): Promise<UrlSourceError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(UrlSourceError);
  return error as UrlSourceError;
}

describe('UrlSource', () => {
  it('learns the size from a one-byte range request and reads exact ranges', async () => {
    const source = await UrlSource.open(url());
    expect(source.size).toBe(SIZE);
    expect(server.requests).toEqual([{ method: 'GET', path: '/blob.bin', range: 'bytes=0-0', status: 206 }]);
    for (const [offset, length] of [[0, 1], [0, 4096], [12_345, 100_000], [SIZE - 7, 7], [SIZE - 1, 1]] as const) {
      expect(await source.read(offset, length)).toEqual(data.subarray(offset, offset + length));
    }
    // readInto fills a view in place (as with wasm memory), leaving the bytes around it alone.
    const target = new Uint8Array(1000).fill(0xee);
    await source.readInto(500, target.subarray(100, 900));
    expect(target.subarray(100, 900)).toEqual(data.subarray(500, 1300));
    expect(target[99]).toBe(0xee);
    expect(target[900]).toBe(0xee);
    // Every request was a range request answered 206.
    expect(server.requests.every((r) => r.range !== undefined && r.status === 206)).toBe(true);
    expect(server.requests.map((r) => r.range).slice(1, 3)).toEqual(['bytes=0-0', 'bytes=0-4095']);
  });

  it('makes no request for an empty read and refuses ranges past the end', async () => {
    const source = await UrlSource.open(url());
    const before = server.requests.length;
    expect(await source.read(SIZE, 0)).toEqual(new Uint8Array(0));
    await expect(source.read(SIZE - 10, 11)).rejects.toSatisfy((e) => e instanceof GGUFError && e.code === 'truncated');
    expect(server.requests.length).toBe(before);
  });

  it('reports a server that ignores Range as no-range-support', async () => {
    server.setFault('/blob.bin', { ignoreRange: true });
    const error = await urlError(UrlSource.open(url()));
    expect(error.code).toBe('no-range-support');
    expect(error.status).toBe(200);
  });

  it('reports 404 and 5xx as http-status with the status, on open and on a later read', async () => {
    expect(await urlError(UrlSource.open(url('/missing.bin')))).toMatchObject({ code: 'http-status', status: 404 });
    const source = await UrlSource.open(url());
    server.setFault('/blob.bin', { status: 503 });
    const error = await urlError(source.read(1000, 5000));
    expect(error).toMatchObject({ code: 'http-status', status: 503 });
    expect(error.message).toContain('bytes 1000-5999');
  });

  it('reports a connection cut mid-body as truncated', async () => {
    const source = await UrlSource.open(url());
    server.setFault('/blob.bin', { cutAfterBytes: 10_000 });
    expect((await urlError(source.read(0, 200_000))).code).toBe('truncated');
  });

  it('reports a body shorter than the range (lying Content-Length) as truncated', async () => {
    const source = await UrlSource.open(url());
    server.setFault('/blob.bin', { contentLength: 1000 });
    const error = await urlError(source.read(0, 50_000));
    expect(error.code).toBe('truncated');
    expect(error.message).toContain('after 1000 of 50000 bytes');
  });

  it('checks Content-Range: the range asked for and an unchanged total size', async () => {
    // A fetch that answers every request from `data`, with a Content-Range chosen by the test.
    let lie: ((start: number, end: number) => string) | undefined;
    const fakeFetch = (async (_input: unknown, init?: RequestInit) => {
      const [, a, b] = /bytes=(\d+)-(\d+)/.exec(new Headers(init?.headers).get('Range') ?? '')!;
      const start = Number(a), end = Number(b);
      const contentRange = lie?.(start, end) ?? `bytes ${start}-${end}/${SIZE}`;
      return new Response(data.slice(start, end + 1), { status: 206, headers: { 'Content-Range': contentRange } });
    }) as typeof fetch;
    const source = await UrlSource.open('http://example.invalid/m.gguf', { fetch: fakeFetch });
    expect(source.size).toBe(SIZE);
    expect(await source.read(10, 20)).toEqual(data.subarray(10, 30));
    lie = (start, end) => `bytes ${start + 1}-${end + 1}/${SIZE}`;
    expect((await urlError(source.read(10, 20))).code).toBe('bad-content-range');
    lie = () => 'bytes */300000';
    expect((await urlError(source.read(10, 20))).code).toBe('bad-content-range');
    lie = (start, end) => `bytes ${start}-${end}/${SIZE + 1}`;
    expect((await urlError(source.read(10, 20))).code).toBe('changed');
  });

  it('reads byte-stream bodies and plain streamed bodies alike, and refuses bytes past the range (too-long)', async () => {
    // Answers from `data`; `extra` bytes are appended past the range; `plain` wraps the body in a
    // stream that is not a byte stream (no BYOB reads: the default-reader path).
    let extra = 0, plain = false;
    const fakeFetch = (async (_input: unknown, init?: RequestInit) => {
      const [, a, b] = /bytes=(\d+)-(\d+)/.exec(new Headers(init?.headers).get('Range') ?? '')!;
      const start = Number(a), end = Number(b);
      const bytes = data.slice(start, end + 1 + extra);
      let body: BodyInit = bytes;
      if (plain) {
        let sent = 0;
        body = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent >= bytes.length) return controller.close();
            controller.enqueue(bytes.slice(sent, sent + 7000)); // odd-sized chunks
            sent += 7000;
          },
        });
      }
      return new Response(body, { status: 206, headers: { 'Content-Range': `bytes ${start}-${end}/${SIZE}` } });
    }) as typeof fetch;
    const source = await UrlSource.open('http://example.invalid/m.gguf', { fetch: fakeFetch });
    for (plain of [false, true]) {
      extra = 0;
      // Longer than one staging buffer, several reads in a row and two at once.
      // (Buffer.compare: toEqual walks 300 KB element by element for seconds.)
      expect(Buffer.compare(await source.read(3, SIZE - 3), data.subarray(3))).toBe(0);
      const [x, y] = await Promise.all([source.read(0, 150_000), source.read(100_000, 200_000)]);
      expect(Buffer.compare(x, data.subarray(0, 150_000))).toBe(0);
      expect(Buffer.compare(y, data.subarray(100_000))).toBe(0);
      extra = 1;
      const error = await urlError(source.read(1000, 5000));
      expect(error.code).toBe('too-long');
      expect((await urlError(source.read(0, 200_000))).code).toBe('too-long');
    }
  });

  it('reports a refused connection as network', async () => {
    const closed = await startStaticServer({});
    const deadUrl = `${closed.url}/x.bin`;
    await closed.close();
    expect((await urlError(UrlSource.open(deadUrl))).code).toBe('network');
  });
});
