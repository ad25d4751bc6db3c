// Token types as GGUF stores them in `tokenizer.ggml.token_type` (llama.cpp's llama_token_type).
export const TokenType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3, // special tokens: <|im_start|>, <|endoftext|>; parsed only with parseSpecial
  USER_DEFINED: 4, // added tokens such as <think>: llama.cpp parses them even in user text
  UNUSED: 5, // padding rows of the embedding that no text maps to
  BYTE: 6, // sentencepiece byte fallback (<0x0A>); unused by byte-level BPE
} as const;

export type TokenTypeId = (typeof TokenType)[keyof typeof TokenType];
