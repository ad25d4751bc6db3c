// The one error type of the GGUF layer. Every failure of a byte source, the reader or the
// metadata helpers is a GGUFError with a machine-readable `code` and a message that names the
// field, tensor or byte offset at fault.

export type GGUFErrorCode =
  | 'bad-magic' // the file does not start with "GGUF"
  | 'unsupported-version' // version other than 2 or 3 (v1, a big-endian file, a future version)
  | 'truncated' // the file ends before a field it declares
  | 'limit-exceeded' // a count, length, depth or size beyond what we accept or what the file can hold
  | 'invalid-value' // a value of the wrong type or out of its range
  | 'duplicate-key' // the same metadata key twice
  | 'duplicate-tensor' // the same tensor name twice
  | 'unsupported-type' // unknown metadata value type or ggml tensor type
  | 'bad-tensor' // a tensor's shape, offset or presence is wrong
  | 'tensor-out-of-bounds' // a tensor's data runs past the end of the file
  | 'tensor-overlap' // two tensors share bytes
  | 'unsupported-architecture' // general.architecture is not one we run
  | 'missing-key' // a required metadata key is absent
  | 'read-stalled'; // the source stopped delivering bytes, and did again each time the read was restarted

export class GGUFError extends Error {
  readonly code: GGUFErrorCode;

  constructor(code: GGUFErrorCode, message: string) {
    super(message);
    this.name = 'GGUFError';
    this.code = code;
  }
}

export function isGGUFError(e: unknown, code?: GGUFErrorCode): e is GGUFError {
  return e instanceof GGUFError && (code === undefined || e.code === code);
}
