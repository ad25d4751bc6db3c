export type TokenizerErrorCode =
  | 'unsupported-model' // tokenizer.ggml.model is not byte-level BPE ("gpt2")
  | 'unsupported-pre' // tokenizer.ggml.pre names a pre-tokenizer we do not implement
  | 'invalid-data' // the vocabulary arrays are inconsistent
  | 'invalid-token' // a token id outside the vocabulary
  | 'too-long'; // text longer than the tokenizer accepts in one call

export class TokenizerError extends Error {
  readonly code: TokenizerErrorCode;

  constructor(code: TokenizerErrorCode, message: string) {
    super(message);
    this.name = 'TokenizerError';
    this.code = code;
  }
}
