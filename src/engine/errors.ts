// Typed failures of an Engine. They cross the worker boundary as plain objects (see
// errorInfo / errorFromInfo) so a page sees the same name, code and message as in-process code.

export type EngineErrorCode =
  /** chat.completions.create() before load() finished (or after unload()). */
  | 'no-model'
  /** The engine is doing something that cannot overlap (e.g. a load while loading). */
  | 'busy'
  /** The newest user message alone (with room to answer) does not fit the context. */
  | 'context-overflow'
  /** A request field is invalid (the message names it). */
  | 'bad-request'
  /** The model could not be opened or placed in memory; `detail` carries the underlying code. */
  | 'load-failed'
  /** load() was cancelled through its signal. */
  | 'aborted'
  /** The engine's worker died or was terminated. */
  | 'worker-failed'
  /** The spec or request needs something this engine or host lacks (e.g. a file path in a browser, tools). */
  | 'unsupported'
  /** The model's chat template does not parse, fails, or renders nothing (a broken model file). */
  | 'bad-template'
  /** The model's chat template needed far more steps, memory or time than the conversation justifies. */
  | 'template-too-costly'
  /** The model computed invalid numbers (NaN or infinite logits): its weights are corrupt. */
  | 'bad-model'
  /** An unexpected failure inside the engine (a bug); the message says what failed. */
  | 'internal';

export class EngineError extends Error {
  override readonly name = 'EngineError';

  constructor(
    readonly code: EngineErrorCode,
    message: string,
    options: { cause?: unknown; detail?: string } = {},
  ) {
    super(message, { cause: options.cause });
    this.detail = options.detail;
  }

  /** The underlying error's code, e.g. 'model-too-large', 'http-status', 'bad-magic'. */
  readonly detail: string | undefined;
}

export function isEngineError(error: unknown, code?: EngineErrorCode): error is EngineError {
  return error instanceof EngineError && (code === undefined || error.code === code);
}

/** What survives structured cloning of an error. */
export interface ErrorInfo {
  name: string;
  message: string;
  code?: string;
  detail?: string;
  /** HTTP status, for URL failures. */
  status?: number;
}

export function errorInfo(error: unknown): ErrorInfo {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const info: ErrorInfo = { name: error.name, message: error.message };
  const { code, detail, status } = error as { code?: unknown; detail?: unknown; status?: unknown };
  if (typeof code === 'string') info.code = code;
  if (typeof detail === 'string') info.detail = detail;
  if (typeof status === 'number') info.status = status;
  return info;
}

/** Rebuilds an error on this side: an EngineError when it was one, else an Error with the same name and code. */
export function errorFromInfo(info: ErrorInfo): Error {
  if (info.name === 'EngineError' && info.code) {
    return new EngineError(info.code as EngineErrorCode, info.message, { detail: info.detail });
  }
  const error = new Error(info.message) as Error & { code?: string };
  error.name = info.name;
  if (info.code) error.code = info.code;
  return error;
}
