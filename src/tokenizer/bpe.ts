// Byte-pair encoding of one pre-tokenized word over token ids.
//
// A word starts as one symbol per UTF-8 byte (the byte-level token of that byte). Repeatedly,
// the adjacent pair with the lowest merge rank is merged (leftmost first on ties) until no
// adjacent pair has a merge. Symbols form a doubly linked list over arrays and candidate pairs
// sit in a binary min-heap; pairs made stale by an earlier merge are skipped when popped.
// This is the algorithm of llama.cpp's llm_tokenizer_bpe_session and HF tokenizers' BPE.

import { TokenizerError } from './errors.ts';
import { BYTE_TO_CHAR, pushUtf8 } from './byte-level.ts';

// Token ids fit in 18 bits for every vocabulary we load (checked in the constructor), so a
// pair of ids packs into one exact double: left * 2^18 + right.
const ID_BITS = 18;
const ID_LIMIT = 1 << ID_BITS;

const WORD_CACHE_LIMIT = 65_536;

export class BytePairEncoder {
  // (left id, right id) -> rank * 2^18 + merged id
  private readonly merges = new Map<number, number>();
  // byte -> id of the single-byte token
  private readonly byteTokens = new Int32Array(256);
  private readonly cache = new Map<string, readonly number[]>();

  /** `idOf`: token text -> id, all ids below `vocabSize`; `merges`: "a b", highest priority first. */
  constructor(idOf: ReadonlyMap<string, number>, merges: readonly string[], vocabSize: number) {
    if (vocabSize > ID_LIMIT) {
      throw new TokenizerError('invalid-data', `vocabulary of ${vocabSize} tokens exceeds ${ID_LIMIT}`);
    }
    for (let byte = 0; byte < 256; byte++) {
      const id = idOf.get(BYTE_TO_CHAR[byte]);
      if (id === undefined) {
        throw new TokenizerError(
          'invalid-data',
          `byte-level vocabulary lacks the token for byte 0x${byte.toString(16).padStart(2, '0')}`,
        );
      }
      this.byteTokens[byte] = id;
    }
    for (let rank = 0; rank < merges.length; rank++) {
      const merge = merges[rank];
      // "a b": split at the first space after the first character, as llama.cpp does.
      const space = merge.indexOf(' ', 1);
      if (space < 0) throw new TokenizerError('invalid-data', `merge ${rank} "${merge}" has no space`);
      const left = idOf.get(merge.slice(0, space));
      const right = idOf.get(merge.slice(space + 1));
      const merged = idOf.get(merge.slice(0, space) + merge.slice(space + 1));
      // HF refuses to load such merges; llama.cpp would merge text that no token spells. A merge
      // that cannot produce a token can never appear in a valid encoding, so skip it.
      if (left === undefined || right === undefined || merged === undefined) continue;
      const key = left * ID_LIMIT + right;
      // Duplicates keep their first (lowest) rank, like llama.cpp.
      if (!this.merges.has(key)) this.merges.set(key, rank * ID_LIMIT + merged);
    }
  }

  /** Appends the token ids of one word to `out`. */
  encodeWord(word: string, out: number[]): void {
    let ids = this.cache.get(word);
    if (ids === undefined) {
      ids = this.mergeWord(word);
      if (this.cache.size >= WORD_CACHE_LIMIT) this.cache.clear();
      this.cache.set(word, ids);
    }
    for (const id of ids) out.push(id);
  }

  private mergeWord(word: string): number[] {
    const bytes: number[] = [];
    pushUtf8(word, bytes);
    const n = bytes.length;
    const ids = new Int32Array(n);
    for (let i = 0; i < n; i++) ids[i] = this.byteTokens[bytes[i]];
    if (n < 2) return Array.from(ids);

    // Linked list of live symbols; a merged-away symbol gets id -1.
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }

    const heap = new PairHeap();
    const pushPair = (left: number): void => {
      const right = next[left];
      if (left < 0 || right < 0) return;
      const merge = this.merges.get(ids[left] * ID_LIMIT + ids[right]);
      if (merge === undefined) return;
      heap.push(Math.floor(merge / ID_LIMIT), left, ids[left], ids[right]);
    };
    for (let i = 0; i + 1 < n; i++) pushPair(i);

    while (heap.size > 0) {
      const { left, leftId, rightId } = heap.pop();
      const right = next[left];
      // Stale: one side was merged since this pair was queued.
      if (ids[left] !== leftId || right < 0 || ids[right] !== rightId) continue;
      const merge = this.merges.get(leftId * ID_LIMIT + rightId) as number;

      ids[left] = merge % ID_LIMIT;
      ids[right] = -1;
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      if (prev[left] >= 0) pushPair(prev[left]);
      pushPair(left);
    }

    const result: number[] = [];
    for (let i = 0; i >= 0; i = next[i]) result.push(ids[i]);
    return result;
  }
}

// Min-heap of candidate merges ordered by (rank, position of the left symbol).
class PairHeap {
  private ranks: number[] = [];
  private lefts: number[] = [];
  private leftIds: number[] = [];
  private rightIds: number[] = [];

  get size(): number {
    return this.ranks.length;
  }

  push(rank: number, left: number, leftId: number, rightId: number): void {
    this.ranks.push(rank);
    this.lefts.push(left);
    this.leftIds.push(leftId);
    this.rightIds.push(rightId);
    let i = this.ranks.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { rank: number; left: number; leftId: number; rightId: number } {
    const top = { rank: this.ranks[0], left: this.lefts[0], leftId: this.leftIds[0], rightId: this.rightIds[0] };
    const last = this.ranks.length - 1;
    this.swap(0, last);
    this.ranks.pop();
    this.lefts.pop();
    this.leftIds.pop();
    this.rightIds.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < last && this.less(l, smallest)) smallest = l;
      if (r < last && this.less(r, smallest)) smallest = r;
      if (smallest === i) break;
      this.swap(i, smallest);
      i = smallest;
    }
    return top;
  }

  private less(a: number, b: number): boolean {
    return this.ranks[a] < this.ranks[b] || (this.ranks[a] === this.ranks[b] && this.lefts[a] < this.lefts[b]);
  }

  private swap(a: number, b: number): void {
    [this.ranks[a], this.ranks[b]] = [this.ranks[b], this.ranks[a]];
    [this.lefts[a], this.lefts[b]] = [this.lefts[b], this.lefts[a]];
    [this.leftIds[a], this.leftIds[b]] = [this.leftIds[b], this.leftIds[a]];
    [this.rightIds[a], this.rightIds[b]] = [this.rightIds[b], this.rightIds[a]];
  }
}
