// Typed failures of the model store. Every code names one thing a caller (the UI) can explain
// or act on; the message carries the numbers.

export type StorageErrorCode =
  /** Not enough storage space: `neededBytes` / `availableBytes` say how much. */
  | 'quota'
  /** The model is only partly downloaded: resume the download before loading it. */
  | 'incomplete'
  /** No cached model with that id. */
  | 'not-found'
  /** fetch failed or the connection dropped mid-body; what was stored stays, a retry resumes. */
  | 'network'
  /** The server stopped sending (no byte for the stall timeout); what was stored stays, a retry resumes. */
  | 'stalled'
  /** The server answered with an error status (404, 5xx…): `status` says which. */
  | 'http-status'
  /** The server's answer is inconsistent (Content-Range not the range asked for, missing size…). */
  | 'bad-response'
  /** The bytes received do not add up to the size the server announced. */
  | 'size-mismatch'
  /** The downloaded bytes do not have the SHA-256 the server (or caller) named. */
  | 'hash-mismatch'
  /** The caller aborted (AbortSignal) or deleted the model meanwhile. */
  | 'aborted'
  /** A stored chunk is missing or has the wrong length (storage damaged or cleared under us). */
  | 'corrupt'
  /** No IndexedDB here (Node, or a browser with storage disabled). */
  | 'unsupported';

export class StorageError extends Error {
  override readonly name = 'StorageError';

  constructor(
    readonly code: StorageErrorCode,
    message: string,
    readonly details: {
      /** HTTP status, when a response arrived. */
      status?: number;
      /** For 'quota': bytes the operation still needed. */
      neededBytes?: number;
      /** For 'quota': bytes the browser reported as free for this origin (undefined if unknown). */
      availableBytes?: number;
      cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
  }

  get status(): number | undefined {
    return this.details.status;
  }
}
