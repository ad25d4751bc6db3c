// A ByteSource over an HTTP(S) URL: every read is one `Range: bytes=a-b` request, so a 2.4 GB
// model is never held in one ArrayBuffer. The server must answer ranges (206 with a matching
// Content-Range); anything else is a typed UrlSourceError rather than silently wrong bytes.
import { checkRange, readStreamInto, type ByteSource } from '../gguf/byte-source.ts';

export type UrlSourceErrorCode =
  /** fetch itself failed (no connection, CORS refusal, aborted). */
  | 'network'
  /** The server answered with a status other than 206 (404, 5xx, 416…). */
  | 'http-status'
  /** The server answered 200 with the whole file instead of the requested range. */
  | 'no-range-support'
  /** Content-Range missing, malformed, or not the range asked for. */
  | 'bad-content-range'
  /** The total size in Content-Range changed between requests (the file was replaced). */
  | 'changed'
  /** The body ended (or the connection dropped) before the requested bytes arrived. */
  | 'truncated'
  /** The body carried more bytes than the requested range. */
  | 'too-long';

export class UrlSourceError extends Error {
  override readonly name = 'UrlSourceError';

  constructor(
    readonly code: UrlSourceErrorCode,
    message: string,
    /** HTTP status, when a response arrived. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface UrlSourceOptions {
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
  /** Aborts the open and every later read. */
  signal?: AbortSignal;
  /** Defaults to the global fetch (tests may pass their own). */
  fetch?: typeof fetch;
}

/** `bytes START-END/SIZE` → its numbers, or undefined. */
export function parseContentRange(header: string | null): { start: number; end: number; size: number } | undefined {
  const match = header === null ? null : /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header.trim());
  if (!match) return undefined;
  const [start, end, size] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (![start, end, size].every(Number.isSafeInteger) || end < start || end >= size) return undefined;
  return { start, end, size };
}

export class UrlSource implements ByteSource {
  private constructor(
    readonly url: string,
    readonly size: number,
    private readonly options: UrlSourceOptions,
  ) {}

  /**
   * Learns the size with a one-byte range request (`bytes=0-0`), which also proves the server
   * answers ranges before any large read is attempted. (A HEAD would not tell us that.)
   */
  static async open(url: string, options: UrlSourceOptions = {}): Promise<UrlSource> {
    const probe = new UrlSource(url, Number.MAX_SAFE_INTEGER, options);
    const { response, range } = await probe.request(0, 0, options.signal);
    await response.body?.cancel();
    return new UrlSource(url, range.size, options);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const target = new Uint8Array(length);
    await this.readInto(offset, target);
    return target;
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    const length = target.length;
    checkRange(this.size, offset, length);
    if (length === 0) return;
    const { response } = await this.request(offset, offset + length - 1, this.options.signal);
    await this.copyBody(response, offset, target);
  }

  /** One range request, checked down to the Content-Range; the body is left unread. */
  private async request(start: number, end: number, signal?: AbortSignal): Promise<{ response: Response; range: { size: number } }> {
    const fetchImpl = this.options.fetch ?? globalThis.fetch;
    const what = `bytes ${start}-${end} of ${this.url}`;
    let response: Response;
    try {
      response = await fetchImpl(this.url, {
        headers: { ...this.options.headers, Range: `bytes=${start}-${end}` },
        signal,
        // Browsers' HTTP caches would store a second copy of a multi-GB file.
        cache: 'no-store',
      });
    } catch (error) {
      throw new UrlSourceError('network', `request for ${what} failed: ${String(error)}`, undefined, { cause: error });
    }
    const fail = async (code: UrlSourceErrorCode, message: string): Promise<never> => {
      await response.body?.cancel().catch(() => undefined);
      throw new UrlSourceError(code, message, response.status);
    };
    if (response.status === 200) {
      return fail('no-range-support', `the server sent the whole file (HTTP 200) when asked for ${what}: it does not support byte ranges`);
    }
    if (response.status !== 206) {
      return fail('http-status', `HTTP ${response.status} ${response.statusText} for ${what}`);
    }
    const header = response.headers.get('Content-Range');
    const range = parseContentRange(header);
    if (!range || range.start !== start || range.end !== end) {
      return fail('bad-content-range', `asked for ${what}, got Content-Range ${JSON.stringify(header)}`);
    }
    if (this.size !== Number.MAX_SAFE_INTEGER && range.size !== this.size) {
      return fail('changed', `${this.url} was ${this.size} bytes when opened and is now ${range.size} bytes`);
    }
    return { response, range };
  }

  /** Streams the body into `target` (e.g. a view of wasm memory), checking its length. */
  private async copyBody(response: Response, offset: number, target: Uint8Array): Promise<void> {
    const what = `${target.length} bytes at byte ${offset} of ${this.url}`;
    if (!response.body) throw new UrlSourceError('truncated', `empty response body for ${what}`, response.status);
    let got: number;
    try {
      got = await readStreamInto(response.body, target);
    } catch (error) {
      // A dropped connection mid-body (undici: "terminated", Chromium: "network error").
      throw new UrlSourceError('truncated', `connection lost while reading ${what}: ${String(error)}`,
        response.status, { cause: error });
    }
    if (got > target.length) {
      throw new UrlSourceError('too-long', `the server sent more than the ${what} asked for`, response.status);
    }
    if (got !== target.length) {
      throw new UrlSourceError('truncated', `the body ended after ${got} of ${what}`, response.status);
    }
  }
}
