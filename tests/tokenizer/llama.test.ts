// Our tokenizer against llama.cpp's (node-llama-cpp 3.21.1), both reading the same GGUF: the
// tiny fixture carries Qwen3's full vocabulary as convert_hf_to_gguf.py writes it. Our side is
// built from that file's metadata alone (readTokenizerData), as the app does.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTokenizerData } from '../../src/gguf/metadata.ts';
import { NodeFileSource } from '../../src/gguf/node-file-source.ts';
import { readGGUF } from '../../src/gguf/reader.ts';
import { BYTE_TO_CHAR } from '../../src/tokenizer/byte-level.ts';
import { Tokenizer, type TokenizerData } from '../../src/tokenizer/tokenizer.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { openOracle, type Oracle } from '../oracle/llama-oracle.ts';
import { generateTokenizerCorpus } from './corpus.ts';

let oracle: Oracle;
let data: TokenizerData;
let tokenizer: Tokenizer; // NFC, as HF
let rawTokenizer: Tokenizer; // no normalization, as llama.cpp

const corpus = generateTokenizerCorpus();
const show = (text: string): string => JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text);
const same = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

beforeAll(async () => {
  const path = await ensureFixture('tiny-f32');
  const source = await NodeFileSource.open(path);
  try {
    data = readTokenizerData(await readGGUF(source));
  } finally {
    await source.close();
  }
  tokenizer = Tokenizer.fromData(data);
  rawTokenizer = Tokenizer.fromData(data, { normalize: false });
  oracle = await openOracle(path, { contextSize: 64, threads: 1 });
});

afterAll(async () => {
  await oracle?.close();
});

describe('encode vs llama.cpp', () => {
  for (const parseSpecial of [true, false]) {
    it(`gives llama.cpp's ids on every NFC corpus string, parseSpecial ${parseSpecial}`, () => {
      expect(corpus.length).toBeGreaterThanOrEqual(2000);
      const mismatches: string[] = [];
      for (const { kind, text } of corpus) {
        const nfc = text.normalize('NFC');
        const ours = tokenizer.encode(nfc, { parseSpecial });
        const theirs = oracle.tokenize(nfc, parseSpecial);
        if (!same(ours, theirs)) mismatches.push(`${kind} ${show(nfc)}\n  ours  ${ours.join(',')}\n  llama ${theirs.join(',')}`);
      }
      expect(mismatches.slice(0, 5).join('\n')).toBe('');
    });
  }

  it('matches llama.cpp on text that is not NFC once normalization is off (llama.cpp does not normalize)', () => {
    const mismatches: string[] = [];
    let notNfc = 0;
    for (const { text } of corpus) {
      if (text !== text.normalize('NFC')) notNfc++;
      for (const parseSpecial of [true, false]) {
        const ours = rawTokenizer.encode(text, { parseSpecial });
        const theirs = oracle.tokenize(text, parseSpecial);
        if (!same(ours, theirs)) mismatches.push(`${show(text)}\n  ours  ${ours.join(',')}\n  llama ${theirs.join(',')}`);
      }
    }
    expect(notNfc).toBeGreaterThan(20); // the corpus does exercise normalization
    expect(mismatches.slice(0, 5).join('\n')).toBe('');
    // ... and so, by default (NFC, as HF), decomposed input tokenizes differently from llama.cpp
    expect(oracle.tokenize('Cafe\u0301', false)).not.toEqual(tokenizer.encode('Cafe\u0301'));
    expect(oracle.tokenize('Café', false)).toEqual(tokenizer.encode('Cafe\u0301'));
  });

  it('treats whitespace as Unicode White_Space (U+0085 yes, U+FEFF no), contractions ASCII-only', () => {
    const texts = [
      // each of these splits differently if U+0085 / U+FEFF changes sides (JavaScript's \s)
      ' \u0085a', '  \u0085', '.\u0085.a', ' \ufeffa', '\ufeff.a', '  \ufeff', ' \t\ufeff', '\ufeff  ',
      'a\u0085b', 'x \u0085\u0085 y', '\u0085\n', 'a\ufeffb', '\ufeff\ufeff hi', '\ufeff',
      "'ſ", "don'ſ", "'K", "'\u212a", "WE'LL'VE", "'\u0307s",
      'x\ud800y', '\udfff', // lone surrogates become U+FFFD on both sides
    ];
    for (const text of texts) {
      const nfc = text.normalize('NFC'); // U+212A KELVIN SIGN is 'K' in NFC
      for (const parseSpecial of [true, false]) {
        expect(tokenizer.encode(nfc, { parseSpecial }), show(nfc)).toEqual(oracle.tokenize(nfc, parseSpecial));
        expect(rawTokenizer.encode(text, { parseSpecial }), show(text)).toEqual(oracle.tokenize(text, parseSpecial));
      }
    }
  });

  it('parses user-defined tokens even without parseSpecial, control tokens only with it', () => {
    const text = '<|im_start|>user\n<think>x</think><tool_call>{}</tool_call><|im_end|>[PAD151700]';
    const withSpecial = oracle.tokenize(text, true);
    const withoutSpecial = oracle.tokenize(text, false);
    expect(tokenizer.encode(text, { parseSpecial: true })).toEqual(withSpecial);
    expect(tokenizer.encode(text, { parseSpecial: false })).toEqual(withoutSpecial);
    expect(withSpecial).toContain(151644);
    expect(withoutSpecial).not.toContain(151644);
    expect(withoutSpecial).toContain(151667); // <think>
    expect(withoutSpecial).not.toContain(151700); // UNUSED pads are never parsed
  });
});

describe('long words vs llama.cpp', () => {
  // One pre-tokenized word of many kilobytes: the BPE's heap and its staleness rule on long inputs
  // (ranks met many times, merges cascading across the word), where a bug would show as one id off.
  const rng = (seed: number) => () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) / 2 ** 24;
  const word = (length: number, alphabet: string, seed: number) => {
    const next = rng(seed);
    const chars = Array.from(alphabet);
    return Array.from({ length }, () => chars[Math.floor(next() * chars.length)]).join('');
  };
  const cases: [string, string][] = [
    ['random letters', word(60_000, 'abcdefghijklmnopqrstuvwxyz', 1)],
    ['few letters', word(60_000, 'abe', 2)],
    ['one letter', 'a'.repeat(50_000)],
    ['spaces', ' '.repeat(40_000)],
    ['spaces then a word', ' '.repeat(30_000) + 'word'],
    ['CJK', word(20_000, '的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年', 3)],
    ['mixed scripts', word(20_000, 'aéßДж中ع', 4)],
    ['punctuation run', word(40_000, '=-_*#~+.', 5)],
    ['repeated pattern', 'abcab'.repeat(12_000)],
  ];
  for (const [kind, text] of cases) {
    it(`gives llama.cpp's ids for a ${text.length}-character word: ${kind}`, () => {
      const ours = tokenizer.encode(text);
      const theirs = oracle.tokenize(text, false);
      expect(ours.length).toBe(theirs.length);
      const firstDifference = ours.findIndex((id, i) => id !== theirs[i]);
      expect(firstDifference).toBe(-1);
    });
  }
});

describe('decode vs llama.cpp', () => {
  it('detokenizes corpus encodings as llama.cpp does', () => {
    const mismatches: string[] = [];
    for (const { text } of corpus) {
      const ids = tokenizer.encode(text.normalize('NFC'), { parseSpecial: true });
      for (const renderSpecial of [true, false]) {
        const ours = tokenizer.decode(ids, { renderSpecial });
        const theirs = oracle.detokenize(ids, renderSpecial);
        if (ours !== theirs) mismatches.push(`${show(text)} renderSpecial ${renderSpecial}: ${show(ours)} != ${show(theirs)}`);
      }
    }
    expect(mismatches.slice(0, 5).join('\n')).toBe('');
  });

  it('renders control, user-defined and unused tokens as llama.cpp does', () => {
    const ids = [151644, 872, 198, 151667, 6023, 151668, 151659, 151645, 151700, 151935];
    for (const renderSpecial of [true, false]) {
      expect(tokenizer.decode(ids, { renderSpecial })).toBe(oracle.detokenize(ids, renderSpecial));
    }
  });

  it('agrees on byte sequences that are not valid UTF-8', () => {
    const byteToken = (byte: number): number => tokenizer.tokenId(BYTE_TO_CHAR[byte]) as number;
    const sequences = [[0x41, 0x80, 0x42], [0xe4, 0xbd], [0xf0, 0x9f, 0x98, 0x41], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xff]];
    for (const bytes of sequences) {
      const ids = bytes.map(byteToken);
      expect(tokenizer.decode(ids), bytes.join(',')).toBe(oracle.detokenize(ids, false));
    }
  });

  it('has the vocabulary size llama.cpp reports', () => {
    expect(tokenizer.vocabSize).toBe(oracle.vocabSize);
  });
});
