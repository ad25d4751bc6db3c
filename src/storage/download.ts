// The download side of the model store: what an HTTP answer says about the file (size, where its
// body starts, validators), whether a stored partial download may be continued, stalls, retries
// and backoff, progress, network errors in words, and the SHA-256 Hugging Face publishes.
// No IndexedDB here: model-store.ts writes what arrives into chunk-store.ts.
import { StorageError } from './errors.ts';
import { sha256FromHeader } from './sha256.ts';
import { parseContentRange } from './url-source.ts';

export const DEFAULT_RETRIES = 3;
/** No byte for this long (headers or body) means the connection stalled: drop it and resume. */
export const DEFAULT_STALL_TIMEOUT_MS = 30_000;
const PROGRESS_INTERVAL_MS = 100;
const RATE_WINDOW_MS = 5000;

export interface DownloadProgress {
  /** Bytes of the file received so far (including what earlier sessions stored). */
  loadedBytes: number;
  totalBytes: number;
  /** Recent transfer rate (last few seconds of this session). */
  bytesPerSecond: number;
  /** Seconds left at that rate; Infinity before any rate is known. */
  etaSeconds: number;
  /** Set while waiting to retry after a failed attempt: which attempt comes next and why. */
  retry?: DownloadRetry;
}

export interface DownloadRetry {
  /** The attempt about to start (2 = the first retry). */
  attempt: number;
  /** Attempts in all. */
  attempts: number;
  /** Seconds until it starts. */
  inSeconds: number;
  /** 'stalled' | 'network' | 'http-status': what went wrong. */
  code: string;
  /** The failure, in words. */
  reason: string;
  /** The browser says it is offline. */
  offline: boolean;
}

export function isOffline(): boolean {
  return typeof navigator !== 'undefined' && navigator.onLine === false;
}

/** A failed request in words a person can act on: offline, or the server out of reach. */
export function networkError(url: string, what: string, cause: unknown): StorageError {
  const host = (() => {
    try {
      return new URL(url).host;
    } catch {
      return url;
    }
  })();
  const lead = isOffline()
    ? 'You are offline, so the model cannot be downloaded now'
    : `The server ${host} cannot be reached`;
  return new StorageError('network', `${lead} (${what}). What was downloaded is kept; try again when the connection is back, or open a GGUF file from this device.`, { cause });
}

export function abortError(signal: AbortSignal | undefined): StorageError {
  return new StorageError('aborted', `download aborted${signal?.reason ? `: ${String(signal.reason)}` : ''}`, { cause: signal?.reason });
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Whether a failed attempt is worth another: the connection, a stall, or a 5xx/408/429 answer. */
export function isRetryable(error: unknown): error is StorageError {
  return error instanceof StorageError &&
    (error.code === 'network' || error.code === 'stalled' ||
      (error.code === 'http-status' && (error.status! >= 500 || error.status === 408 || error.status === 429)));
}

/** The wait before the attempt after attempt number `attempt` (from 0): 1 s, 2 s, 4 s…, at most 10 s. */
export function retryDelayMs(attempt: number): number {
  return Math.min(1000 * 2 ** attempt, 10_000);
}

function parseLength(header: string | null): number | undefined {
  if (header === null || !/^\s*\d+\s*$/.test(header)) return undefined;
  const n = Number(header);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Turns bytes-so-far into the rate and ETA of the last few seconds, calling back at most every 100 ms. */
export class ProgressMeter {
  private readonly samples: { time: number; bytes: number }[] = [];
  private lastReport = -Infinity;

  constructor(
    private readonly totalBytes: number,
    private readonly report: ((p: DownloadProgress) => void) | undefined,
  ) {}

  update(loadedBytes: number, force = false): void {
    if (!this.report) return;
    const now = performance.now();
    this.samples.push({ time: now, bytes: loadedBytes });
    while (this.samples.length > 2 && now - this.samples[0]!.time > RATE_WINDOW_MS) this.samples.shift();
    if (!force && now - this.lastReport < PROGRESS_INTERVAL_MS) return;
    this.lastReport = now;
    const first = this.samples[0]!;
    const seconds = (now - first.time) / 1000;
    const bytesPerSecond = seconds > 0 ? (loadedBytes - first.bytes) / seconds : 0;
    const remaining = this.totalBytes - loadedBytes;
    const etaSeconds = remaining <= 0 ? 0 : bytesPerSecond > 0 ? remaining / bytesPerSecond : Infinity;
    this.report({ loadedBytes, totalBytes: this.totalBytes, bytesPerSecond, etaSeconds });
  }
}

/**
 * The SHA-256 Hugging Face publishes for an LFS/Xet file (its `lfs.oid`), from the tree API, or
 * undefined if the URL is not a huggingface.co resolve URL or the API does not answer in time.
 */
export async function lookupHuggingFaceSha256(url: string, size: number, fetchImpl: typeof fetch, headers: Record<string, string>): Promise<string | undefined> {
  const match = /^https:\/\/huggingface\.co\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/([^?#]+)$/.exec(url);
  if (!match) return undefined;
  const [, repo, revision, filePath] = match as unknown as [string, string, string, string];
  const path = decodeURIComponent(filePath);
  const slash = path.lastIndexOf('/');
  const folder = slash < 0 ? '' : `/${path.slice(0, slash)}`;
  try {
    const response = await fetchImpl(`https://huggingface.co/api/models/${repo}/tree/${revision}${folder}`, {
      headers,
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) return undefined;
    const entries: unknown = await response.json();
    if (!Array.isArray(entries)) return undefined;
    for (const entry of entries as { path?: unknown; lfs?: { oid?: unknown; size?: unknown } }[]) {
      if (entry?.path !== path) continue;
      const oid = typeof entry.lfs?.oid === 'string' ? sha256FromHeader(entry.lfs.oid) : undefined;
      // Only a hash of this very file: same size as the download announces.
      return oid !== undefined && entry.lfs?.size === size ? oid : undefined;
    }
  } catch {
    // Offline, CORS, timeout: no hash to check against, the size check still applies.
  }
  return undefined;
}

/**
 * Runs `step` (a fetch, or a read of its body) with a stall timer: no answer within `stallMs`
 * aborts `request`. A failure is then the caller's abort, a stall ('stalled', worded by
 * `stalledMessage`) or a network error (worded by `networkWhat`).
 */
async function withStallTimeout<T>(
  step: () => Promise<T>, stallMs: number, url: string, signal: AbortSignal, request: AbortController,
  stalledMessage: () => string, networkWhat: (error: unknown) => string,
): Promise<T> {
  let stalled = false;
  const timer = setTimeout(() => {
    stalled = true;
    request.abort();
  }, stallMs);
  try {
    return await step();
  } catch (error) {
    if (signal.aborted) throw abortError(signal);
    if (stalled) throw new StorageError('stalled', stalledMessage(), { cause: error });
    throw networkError(url, networkWhat(error), error);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Asks `url` for its bytes from `start` on. `request` carries the caller's abort (`signal`) and a
 * stall; the answer is not checked here (readResponse does).
 */
export async function fetchFrom(
  fetchImpl: typeof fetch, url: string, start: number, options: { headers?: Record<string, string>; stallTimeoutMs?: number },
  signal: AbortSignal, request: AbortController,
): Promise<Response> {
  const stallMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  return withStallTimeout(
    () => fetchImpl(url, {
      headers: { ...options.headers, Range: `bytes=${start}-` },
      signal: request.signal,
      // The browser's HTTP cache would keep a second copy of a multi-GB file.
      cache: 'no-store',
    }),
    stallMs, url, signal, request,
    () => `${url} sent no answer for ${stallMs / 1000} s`,
    (error) => `the request from byte ${start} failed: ${String(error)}`,
  );
}

/**
 * The next piece of a response body, under the same stall timer as fetchFrom. `at` (the file
 * offset reached) and `total` only word the errors.
 */
export function readBody(
  reader: ReadableStreamDefaultReader<Uint8Array>, url: string, at: number, total: number, stallMs: number,
  signal: AbortSignal, request: AbortController,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  return withStallTimeout(
    () => reader.read(),
    stallMs, url, signal, request,
    () => `${url} stopped sending after byte ${at} of ${total} (nothing for ${stallMs / 1000} s)`,
    (error) => `the connection dropped after byte ${at} of ${total}: ${String(error)}`,
  );
}

/** Drops a response's body unread (the connection is not needed any more). */
export function discardBody(response: Response): void {
  void response.body?.cancel().catch(() => undefined);
}

/** What an answer to `Range: bytes=start-` says about the file. */
export interface ResponseInfo {
  /** The file's size in bytes. */
  total: number;
  /** File offset of the body's first byte: `start` for a 206, 0 for a 200 (the whole file). */
  bodyStart: number;
  etag: string | undefined;
  lastModified: string | undefined;
  /** SHA-256 named by an X-Linked-ETag header (Hugging Face LFS/Xet files). */
  linkedSha256: string | undefined;
}

/**
 * Reads the size, body start and validators of an answer to `Range: bytes=start-` from `url`. An
 * error status or an inconsistent answer throws a StorageError, after discarding the body.
 */
export function readResponse(response: Response, url: string, start: number, expectedBytes: number | undefined): ResponseInfo {
  const fail = (error: StorageError): never => {
    discardBody(response);
    throw error;
  };

  let total: number;
  let bodyStart: number;
  const contentLength = parseLength(response.headers.get('Content-Length'));
  if (response.status === 206) {
    const range = parseContentRange(response.headers.get('Content-Range'));
    if (!range || range.start !== start || range.end !== range.size - 1) {
      fail(new StorageError('bad-response', `asked ${url} for bytes ${start}- and got Content-Range ${JSON.stringify(response.headers.get('Content-Range'))}`, { status: 206 }));
    }
    total = range!.size;
    bodyStart = start;
    if (contentLength !== undefined && contentLength !== total - start) {
      fail(new StorageError('size-mismatch',
        `${url}: Content-Length ${contentLength} does not match the ${total - start} bytes of Content-Range ${response.headers.get('Content-Range')}`, { status: 206 }));
    }
  } else if (response.status === 200) {
    // No range support (or the server chose to ignore it): the body is the whole file.
    if (contentLength === undefined) {
      fail(new StorageError('bad-response', `${url} did not say how large it is (no Content-Length or Content-Range)`, { status: 200 }));
    }
    total = contentLength!;
    bodyStart = 0;
  } else {
    fail(new StorageError('http-status', `HTTP ${response.status} ${response.statusText} for ${url}`, { status: response.status }));
  }
  total = total!;
  bodyStart = bodyStart!;
  if (expectedBytes !== undefined && total !== expectedBytes) {
    fail(new StorageError('size-mismatch', `${url} is ${total} bytes, ${expectedBytes} were expected`, { status: response.status }));
  }
  const etag = response.headers.get('ETag') ?? undefined;
  const lastModified = response.headers.get('Last-Modified') ?? undefined;
  const linkedSha256 = sha256FromHeader(response.headers.get('X-Linked-ETag'));
  return { total, bodyStart, etag, lastModified, linkedSha256 };
}

/** What a stored partial download remembers of the file it came from. */
export interface StoredValidators {
  totalBytes: number;
  etag?: string;
  lastModified?: string;
  /** SHA-256 known in advance (header, API or caller). */
  expectedSha256?: string;
}

/**
 * Whether the partial download `stored` (bytes up to `start`) must start over instead of being
 * continued with `answer`: the file changed, or nothing proves that it did not.
 */
export function mustRestart(stored: StoredValidators, start: number, answer: ResponseInfo): boolean {
  const { total, etag, lastModified, linkedSha256 } = answer;
  const changed = total !== stored.totalBytes ||
    (stored.etag !== undefined && etag !== undefined && etag !== stored.etag) ||
    (stored.etag === undefined && stored.lastModified !== undefined && lastModified !== undefined && lastModified !== stored.lastModified) ||
    (stored.expectedSha256 !== undefined && linkedSha256 !== undefined && linkedSha256 !== stored.expectedSha256);
  // Without a validator (ETag, Last-Modified) nor a known hash, nothing proves that the bytes
  // after the stored ones belong to the same file: start over rather than store a mix.
  const unprovable = start > 0 && stored.etag === undefined && stored.lastModified === undefined && stored.expectedSha256 === undefined;
  return changed || unprovable;
}
