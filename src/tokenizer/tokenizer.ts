// Byte-level BPE tokenizer (GGUF tokenizer.ggml.model = "gpt2") built from GGUF metadata alone.
//
// encode: split out special tokens -> normalize (NFC for Qwen, as the HF tokenizer.json says)
//         -> pre-tokenize into words (regex) -> UTF-8 bytes -> BPE merges -> ids.
// decode: ids -> bytes (byte-level alphabet reversed; special tokens as their text) -> UTF-8.
//
// Behaviour follows llama.cpp (llama-vocab.cpp) where it and HF differ, except that text is
// NFC-normalized as HF does (llama.cpp does not normalize; pass { normalize: false } to match it
// on text that is not NFC).

import { BytePairEncoder } from './bpe.ts';
import { byteLevelToBytes } from './byte-level.ts';
import { TokenizerError } from './errors.ts';
import { createPreTokenizer, type PreTokenizer } from './pretokenize.ts';
import { createStreamDecoder, type StreamDecoder } from './stream-decoder.ts';
import { TokenType } from './token-types.ts';
import type { TokenizerData } from '../gguf/metadata.ts';

// The tokenizer is built from GGUF metadata alone (src/gguf/metadata.ts readTokenizerData).
export type { TokenizerData } from '../gguf/metadata.ts';
export { TokenizerError, type TokenizerErrorCode } from './errors.ts';
export type { StreamDecoder } from './stream-decoder.ts';
export { TokenType } from './token-types.ts';

export interface TokenizerOptions {
  /** Apply the HF normalizer of the pre-tokenizer family (NFC for qwen2). Default true. */
  normalize?: boolean;
}

export interface EncodeOptions {
  /**
   * Recognise CONTROL token texts such as "<|im_start|>" in the input. Default false: user
   * content cannot inject control tokens. USER_DEFINED tokens (e.g. "<think>") are recognised
   * either way, as in llama.cpp.
   */
  parseSpecial?: boolean;
  /** Prepend BOS when the model asks for it (tokenizer.ggml.add_bos_token). Default false. */
  addSpecial?: boolean;
  /**
   * A string that occurs nowhere in the real text, inserted by escapeControlText() into control
   * -token texts that must stay text (a chat message's content). Special-token matching sees it,
   * so those texts are not matched; it is removed before BPE, so the text tokenizes as it reads.
   */
  escapeMark?: string;
}

export interface DecodeOptions {
  /** Render CONTROL tokens as their text. Default false: they render as nothing. */
  renderSpecial?: boolean;
}

// Token texts llama.cpp treats as end of generation whatever their declared role
// (llama-vocab.cpp: special_eog_ids, including the FIM pad / repo / file-separator tokens).
const END_OF_GENERATION_TEXTS = [
  '<|im_end|>',
  '<|endoftext|>',
  '<|eot_id|>',
  '<|eom_id|>',
  '<|end|>',
  '<end_of_turn>',
  '<|end_of_text|>',
  '<EOT>',
  '<|fim_pad|>',
  '<|repo_name|>',
  '<|file_sep|>',
];

// llama.cpp forces these to CONTROL whatever type the file gives them (older conversions marked
// Qwen's FIM tokens USER_DEFINED), which hides them from decoded text and from user input.
const FORCED_CONTROL_TEXTS = [
  ...END_OF_GENERATION_TEXTS,
  '<|fim_prefix|>',
  '<|fim_suffix|>',
  '<|fim_middle|>',
];

const EMPTY = new Uint8Array(0);

/** Longest text encode() accepts, in UTF-16 units (far beyond any context; bounds the memory one call may take). */
export const MAX_ENCODE_CHARS = 1 << 24;

const PRIVATE_USE_RANGES = [[0xe000, 0xf8ff], [0xf0000, 0xffffd]] as const;
const PRIVATE_USE = /[\u{E000}-\u{F8FF}\u{F0000}-\u{FFFFD}]/gu;

/** NFC composes at most this many UTF-16 units into one (Hangul jamo L+V+T into a syllable). */
const NFC_MAX_SHRINK = 3;

export class Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly addBos: boolean;
  /** Ids that end generation: eos, eot and the end-of-turn texts llama.cpp knows. */
  readonly eogIds: ReadonlySet<number>;

  private readonly tokens: readonly string[];
  private readonly types: Uint8Array;
  private readonly idOf: Map<string, number>;
  private readonly bpe: BytePairEncoder;
  private readonly preTokenizer: PreTokenizer;
  private readonly normalize: boolean;
  // Tokens matched as whole strings before BPE (CONTROL, USER_DEFINED, UNKNOWN), longest first.
  private readonly specialTokens: { id: number; text: string; utf8Length: number; control: boolean }[];
  private readonly bytesCache: (Uint8Array | undefined)[];
  private readonly textEncoder = new TextEncoder();
  /** Texts of the CONTROL tokens that parseSpecial gates (what escapeControlText() guards). */
  private readonly controlTexts: readonly string[];
  /** UTF-8 bytes of the longest token: no token covers more text than this. */
  private readonly maxTokenBytes: number;

  private constructor(data: TokenizerData, options: TokenizerOptions) {
    if (data.model !== 'gpt2') {
      throw new TokenizerError(
        'unsupported-model',
        `unsupported tokenizer model tokenizer.ggml.model="${data.model}" (supported: gpt2, byte-level BPE)`,
      );
    }
    this.preTokenizer = createPreTokenizer(data.pre);
    this.normalize = (options.normalize ?? true) && this.preTokenizer.normalization === 'NFC';

    const n = data.tokens.length;
    if (data.tokenTypes.length !== n) {
      throw new TokenizerError('invalid-data', `${n} tokens but ${data.tokenTypes.length} token types`);
    }
    this.tokens = data.tokens;
    this.vocabSize = n;
    this.types = new Uint8Array(n);
    this.idOf = new Map();
    for (let id = 0; id < n; id++) {
      this.types[id] = data.tokenTypes[id];
      // First id wins for duplicate texts, as llama.cpp's token_to_id map.
      if (!this.idOf.has(data.tokens[id])) this.idOf.set(data.tokens[id], id);
    }
    for (const text of FORCED_CONTROL_TEXTS) {
      const id = this.idOf.get(text);
      if (id !== undefined) this.types[id] = TokenType.CONTROL;
    }
    for (const [key, id] of [['bos', data.bosId], ['eos', data.eosId], ['pad', data.padId], ['eot', data.eotId]] as const) {
      if (id !== undefined && !(Number.isInteger(id) && id >= 0 && id < n)) {
        throw new TokenizerError('invalid-data', `${key} token id ${id} is outside the vocabulary of ${n}`);
      }
    }
    this.bosId = data.bosId;
    this.eosId = data.eosId;
    this.addBos = data.addBos;

    this.bpe = new BytePairEncoder(this.idOf, data.merges);

    this.specialTokens = [];
    for (let id = 0; id < n; id++) {
      const type = this.types[id];
      if (type === TokenType.CONTROL || type === TokenType.USER_DEFINED || type === TokenType.UNKNOWN) {
        if (data.tokens[id].length === 0) continue;
        const text = data.tokens[id];
        const utf8Length = this.textEncoder.encode(text).length;
        this.specialTokens.push({ id, text, utf8Length, control: type !== TokenType.USER_DEFINED });
      }
    }
    // llama.cpp sorts by UTF-8 length, longest first, and splits the text by one token at a time.
    this.specialTokens.sort((a, b) => b.utf8Length - a.utf8Length || a.id - b.id);
    this.controlTexts = this.specialTokens.filter((t) => t.control).map((t) => t.text);
    let maxTokenBytes = 1;
    for (let id = 0; id < n; id++) {
      // A byte-level spelling has one character per byte; any other text at most 3 bytes per unit.
      const text = this.tokens[id];
      const byteLevel = byteLevelToBytes(text) !== null;
      maxTokenBytes = Math.max(maxTokenBytes, byteLevel ? text.length : text.length * 3);
    }
    for (const special of this.specialTokens) maxTokenBytes = Math.max(maxTokenBytes, special.utf8Length);
    this.maxTokenBytes = maxTokenBytes;

    const eog = new Set<number>();
    if (data.eosId !== undefined) eog.add(data.eosId);
    if (data.eotId !== undefined) eog.add(data.eotId);
    for (const text of END_OF_GENERATION_TEXTS) {
      const id = this.idOf.get(text);
      if (id !== undefined) eog.add(id);
    }
    this.eogIds = eog;
    this.bytesCache = new Array<Uint8Array | undefined>(n);
  }

  static fromData(data: TokenizerData, options: TokenizerOptions = {}): Tokenizer {
    return new Tokenizer(data, options);
  }

  /** Does now the work the first encode() would (the BPE merge table), e.g. while the engine is idle. */
  prepare(): void {
    this.bpe.prepare();
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (text.length > MAX_ENCODE_CHARS) {
      throw new TokenizerError('too-long', `a text of ${text.length} characters is longer than the ${MAX_ENCODE_CHARS} one call may encode`);
    }
    const out: number[] = [];
    if (options.addSpecial && this.addBos && this.bosId !== undefined) out.push(this.bosId);
    const mark = options.escapeMark;
    for (const fragment of this.splitSpecial(text, options.parseSpecial ?? false)) {
      if (typeof fragment === 'number') {
        out.push(fragment);
        continue;
      }
      const raw = mark ? fragment.replaceAll(mark, '') : fragment;
      const normalized = this.normalize ? raw.normalize('NFC') : raw;
      this.preTokenizer.forEachWord(normalized, (word) => this.bpe.encodeWord(word, out));
    }
    return out;
  }

  /**
   * `text` with `mark` inserted after the first character of every occurrence of a control
   * -token text, so that encode(…, { parseSpecial: true, escapeMark: mark }) reads those as
   * plain text. Insertions only break occurrences, never make new ones, so one pass per token
   * text suffices. `mark` must occur in no token text and nowhere in the text being encoded.
   */
  escapeControlText(text: string, mark: string): string {
    let starts: number[] | undefined;
    for (const control of this.controlTexts) {
      if (control.length < 2) continue; // a one-character text cannot be broken; llama.cpp vocabularies have none
      for (let at = text.indexOf(control); at >= 0; at = text.indexOf(control, at + 1)) (starts ??= []).push(at);
    }
    if (!starts) return text;
    starts.sort((a, b) => a - b);
    let escaped = '';
    let from = 0;
    for (const start of starts) {
      if (start + 1 <= from) continue; // the same position from another token text
      escaped += text.slice(from, start + 1) + mark;
      from = start + 1;
    }
    return escaped + text.slice(from);
  }

  /**
   * A private-use character (U+E000…U+F8FF, then plane 15) found in none of `texts` and in no
   * special-token text: an escape mark for escapeControlText(). Undefined only if every one is taken.
   */
  escapeMarkFor(texts: Iterable<string>): string | undefined {
    const used = new Set<number>();
    for (const text of [...texts, ...this.specialTokens.map((t) => t.text)]) {
      for (const match of text.matchAll(PRIVATE_USE)) used.add(match[0].codePointAt(0)!);
    }
    for (const [first, last] of PRIVATE_USE_RANGES) {
      for (let cp = first; cp <= last; cp++) if (!used.has(cp)) return String.fromCodePoint(cp);
    }
    return undefined;
  }

  /** A number of tokens encode(text) can never go below, known without encoding (text / longest token). */
  minTokens(text: string): number {
    return Math.floor(text.length / (this.maxTokenBytes * NFC_MAX_SHRINK));
  }

  decode(ids: Iterable<number>, options: DecodeOptions = {}): string {
    const renderSpecial = options.renderSpecial ?? false;
    const pieces: Uint8Array[] = [];
    let length = 0;
    for (const id of ids) {
      const piece = this.pieceBytes(id, renderSpecial);
      pieces.push(piece);
      length += piece.length;
    }
    const bytes = new Uint8Array(length);
    let offset = 0;
    for (const piece of pieces) {
      bytes.set(piece, offset);
      offset += piece.length;
    }
    return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(bytes);
  }

  createStreamDecoder(options: DecodeOptions = {}): StreamDecoder {
    return createStreamDecoder(this, options.renderSpecial ?? false);
  }

  /**
   * The bytes token `id` stands for: the byte-level spelling reversed for normal tokens, the
   * UTF-8 text for special ones, nothing for UNUSED padding rows. Do not modify the result.
   */
  tokenToBytes(id: number): Uint8Array {
    this.checkId(id);
    let bytes = this.bytesCache[id];
    if (bytes === undefined) {
      const type = this.types[id];
      const text = this.tokens[id];
      if (type === TokenType.UNUSED) {
        bytes = EMPTY;
      } else if (type === TokenType.CONTROL || type === TokenType.USER_DEFINED || type === TokenType.UNKNOWN) {
        bytes = this.textEncoder.encode(text);
      } else {
        // A normal token outside the byte-level alphabet is taken as plain text.
        bytes = byteLevelToBytes(text) ?? this.textEncoder.encode(text);
      }
      this.bytesCache[id] = bytes;
    }
    return bytes;
  }

  /** Bytes to show for `id` in decoded text (llama.cpp token_to_piece). */
  pieceBytes(id: number, renderSpecial: boolean): Uint8Array {
    this.checkId(id);
    const type = this.types[id];
    if (!renderSpecial && (type === TokenType.CONTROL || type === TokenType.UNKNOWN)) return EMPTY;
    return this.tokenToBytes(id);
  }

  /** The vocabulary string of `id` (byte-level spelling for normal tokens). */
  tokenText(id: number): string {
    this.checkId(id);
    return this.tokens[id];
  }

  tokenType(id: number): number {
    this.checkId(id);
    return this.types[id];
  }

  /** The id whose vocabulary string is `text`, if any. */
  tokenId(text: string): number | undefined {
    return this.idOf.get(text);
  }

  isControl(id: number): boolean {
    return this.tokenType(id) === TokenType.CONTROL;
  }

  private checkId(id: number): void {
    if (!(Number.isInteger(id) && id >= 0 && id < this.vocabSize)) {
      throw new TokenizerError('invalid-token', `token id ${id} is outside the vocabulary of ${this.vocabSize}`);
    }
  }

  // Cuts `text` into raw-text fragments and special-token ids, the way llama.cpp's
  // tokenizer_st_partition does: for each special token, longest first, every remaining
  // raw fragment is split at each occurrence of its text.
  private splitSpecial(text: string, parseSpecial: boolean): (string | number)[] {
    let fragments: (string | number)[] = text.length > 0 ? [text] : [];
    for (const special of this.specialTokens) {
      if (special.control && !parseSpecial) continue;
      // Fragments are substrings of text: a token absent from text is absent from all.
      if (!text.includes(special.text)) continue;
      const next: (string | number)[] = [];
      for (const fragment of fragments) {
        if (typeof fragment === 'number') {
          next.push(fragment);
          continue;
        }
        let start = 0;
        for (let at = fragment.indexOf(special.text); at >= 0; at = fragment.indexOf(special.text, start)) {
          if (at > start) next.push(fragment.slice(start, at));
          next.push(special.id);
          start = at + special.text.length;
        }
        if (start < fragment.length) next.push(start === 0 ? fragment : fragment.slice(start));
      }
      fragments = next;
    }
    return fragments;
  }
}
