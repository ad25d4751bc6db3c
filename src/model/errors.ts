// Typed failures of the model runtime, so callers (engine, UI) can tell the user what to do.
export type ModelErrorCode =
  /** Weights + KV cache + buffers exceed what a wasm32 memory (4 GiB) holds. */
  | 'model-too-large'
  /** A tensor type the kernels do not implement (e.g. Q5_K). */
  | 'unsupported-quant'
  /** The file lacks a tensor or has shapes the forward pass cannot use. */
  | 'bad-model'
  /** More tokens than the KV cache holds. */
  | 'context-overflow';

export class ModelError extends Error {
  override readonly name = 'ModelError';

  constructor(
    readonly code: ModelErrorCode,
    message: string,
  ) {
    super(message);
  }
}
