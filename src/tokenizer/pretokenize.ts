// Pre-tokenizers: split normalized text into "words" that BPE encodes independently.
// llama.cpp selects one by the GGUF key `tokenizer.ggml.pre`; each entry here reproduces the
// HF tokenizer.json of that family (its normalizer and its Split regex).

import { TokenizerError } from './errors.ts';

export interface PreTokenizer {
  /** The `tokenizer.ggml.pre` value this was created for. */
  readonly name: string;
  /**
   * Unicode normalization the HF tokenizer applies before splitting. llama.cpp applies none,
   * so text that is not already in this form tokenizes differently there.
   */
  readonly normalization: 'NFC' | 'none';
  /** Calls `onWord` for each word of `text`, in order; the words concatenate to `text`. */
  forEachWord(text: string, onWord: (word: string) => void): void;
}

// `\s` as Rust/Oniguruma regex (HF tokenizers) and llama.cpp mean it: the Unicode White_Space
// property. JavaScript's `\s` differs: it also matches U+FEFF and misses U+0085.
const WS = '\\t\\n\\v\\f\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000';

// Qwen2/Qwen3 tokenizer.json Split regex:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// JavaScript has no inline (?i:...), so the contractions spell out both cases of each letter,
// as llama.cpp does (ASCII only: "'ſ" is not a contraction here or in llama.cpp).
const QWEN2_PATTERN =
  `'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])` +
  `|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+` +
  `|\\p{N}` +
  `| ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*` +
  `|[${WS}]*[\\r\\n]+` +
  `|[${WS}]+(?![^${WS}])` +
  `|[${WS}]+`;

class RegexPreTokenizer implements PreTokenizer {
  private readonly regex: RegExp;

  constructor(
    readonly name: string,
    readonly normalization: 'NFC' | 'none',
    pattern: string,
  ) {
    this.regex = new RegExp(pattern, 'gu');
  }

  forEachWord(text: string, onWord: (word: string) => void): void {
    const regex = this.regex;
    regex.lastIndex = 0;
    let end = 0;
    for (let match = regex.exec(text); match !== null; match = regex.exec(text)) {
      // Every character matches some alternative, so words are contiguous; a gap would be a
      // bug in the pattern, and dropping text silently would be worse than emitting it.
      if (match.index > end) onWord(text.slice(end, match.index));
      onWord(match[0]);
      end = regex.lastIndex;
    }
    if (end < text.length) onWord(text.slice(end));
  }
}

type PreTokenizerFactory = (name: string) => PreTokenizer;

const qwen2: PreTokenizerFactory = (name) => new RegexPreTokenizer(name, 'NFC', QWEN2_PATTERN);

// `tokenizer.ggml.pre` values llama.cpp maps onto the same pre-tokenizer. Add new families here.
// (llama.cpp also maps "deepseek-r1-qwen", "megrez", ... onto qwen2; add them once their HF
// normalizers are checked.)
const PRE_TOKENIZERS: Record<string, PreTokenizerFactory> = {
  qwen2,
};

export const SUPPORTED_PRE_TOKENIZERS: readonly string[] = Object.keys(PRE_TOKENIZERS);

export function createPreTokenizer(pre: string): PreTokenizer {
  const factory = Object.hasOwn(PRE_TOKENIZERS, pre) ? PRE_TOKENIZERS[pre] : undefined;
  if (factory === undefined) {
    throw new TokenizerError(
      'unsupported-pre',
      `unsupported pre-tokenizer tokenizer.ggml.pre="${pre}" (supported: ${SUPPORTED_PRE_TOKENIZERS.join(', ')})`,
    );
  }
  return factory(pre);
}
