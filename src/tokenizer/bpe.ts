// Byte-pair encoding of one pre-tokenized word over token ids.
//
// A word starts as one symbol per UTF-8 byte (the byte-level token of that byte). Repeatedly,
// the adjacent pair with the lowest merge rank is merged (leftmost first on ties) until no
// adjacent pair has a merge. This is the algorithm of llama.cpp's llm_tokenizer_bpe_session and
// HF tokenizers' BPE, in O(n log n): symbols form a doubly linked list over typed arrays and
// candidate pairs are (rank, left position) keys packed into one double. A long word's first pairs
// are put in order by a counting sort over ranks and read in sequence; pairs that merges make go
// to a binary min-heap; each step takes the smaller of the two heads.
// An entry goes stale when a merge changes either side of its pair; it is recognised when popped
// because the pair now at its position has another rank (or is gone): a rank names exactly one
// (left id, right id) pair, and a merged symbol never has the id it had before.
//
// Nothing here allocates per pair, so a word of megabytes costs tens of bytes per byte of memory
// and stays fast; only short words are cached, in a bounded map.

import { TokenizerError } from './errors.ts';
import { BYTE_TO_CHAR } from './byte-level.ts';

/** Words up to this many UTF-16 units are cached (long words are rare and would bloat the cache). */
const CACHED_WORD_LENGTH = 64;
const WORD_CACHE_LIMIT = 65_536;
/** Positions are packed below the rank: a word may hold up to 2^28 bytes. */
const POSITION_BITS = 28;
const POSITION_LIMIT = 2 ** POSITION_BITS;
const EMPTY_KEYS: Float64Array = new Float64Array(0);
/** Work arrays up to this many entries are kept between words; larger ones are left to the GC. */
const KEPT_SCRATCH = 1 << 16;

/** (left id, right id) -> merge rank, open addressing over typed arrays. */
class MergeTable {
  private readonly lefts: Int32Array;
  private readonly rights: Int32Array;
  private readonly ranks: Int32Array;
  private readonly mask: number;

  constructor(capacity: number) {
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.lefts = new Int32Array(size).fill(-1);
    this.rights = new Int32Array(size);
    this.ranks = new Int32Array(size);
    this.mask = size - 1;
  }

  private slot(left: number, right: number): number {
    return ((Math.imul(left, 0x9e3779b1) ^ Math.imul(right + 0x7f4a7c15, 0x85ebca77)) >>> 0) & this.mask;
  }

  /** Adds the pair unless present (the first, lowest rank wins, as in llama.cpp). */
  add(left: number, right: number, rank: number): void {
    for (let i = this.slot(left, right); ; i = (i + 1) & this.mask) {
      if (this.lefts[i] === -1) {
        this.lefts[i] = left;
        this.rights[i] = right;
        this.ranks[i] = rank;
        return;
      }
      if (this.lefts[i] === left && this.rights[i] === right) return;
    }
  }

  /** The rank of merging `left` with `right`, or -1. */
  rank(left: number, right: number): number {
    for (let i = this.slot(left, right); ; i = (i + 1) & this.mask) {
      const l = this.lefts[i];
      if (l === -1) return -1;
      if (l === left && this.rights[i] === right) return this.ranks[i];
    }
  }
}

export class BytePairEncoder {
  // Built by prepare() (on first use, or when the engine is idle after a load): the merges' 150,000
  // string lookups are a good part of a model's time to ready, and nothing needs them before.
  private table!: MergeTable;
  /** rank -> id of the merged token. */
  private mergedIds!: Int32Array;
  private prepared = false;
  private readonly idOf: ReadonlyMap<string, number>;
  private readonly merges: readonly string[];
  /** byte -> id of the single-byte token. */
  private readonly byteTokens = new Int32Array(256);
  private readonly cache = new Map<string, readonly number[]>();
  private readonly encoder = new TextEncoder();
  private bytes = new Uint8Array(256);
  private ids = new Int32Array(256);
  private prev = new Int32Array(256);
  private next = new Int32Array(256);
  private heap = new Float64Array(256);
  private heapSize = 0;

  /** `idOf`: token text -> id; `merges`: "a b", highest priority first. */
  constructor(idOf: ReadonlyMap<string, number>, merges: readonly string[]) {
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
    if (merges.length >= 2 ** (53 - POSITION_BITS)) {
      throw new TokenizerError('invalid-data', `${merges.length} merges are more than the encoder can rank`);
    }
    // "a b": split at the first space after the first character, as llama.cpp does. A merge
    // without one makes the vocabulary unusable: refused now, at load.
    for (let rank = 0; rank < merges.length; rank++) {
      if (merges[rank].indexOf(' ', 1) < 0) throw new TokenizerError('invalid-data', `merge ${rank} "${merges[rank]}" has no space`);
    }
    this.idOf = idOf;
    this.merges = merges;
  }

  /** Builds the merge table (idempotent; encoding does it first if nothing did). */
  prepare(): void {
    if (this.prepared) return;
    const { idOf, merges } = this;
    this.table = new MergeTable(merges.length);
    this.mergedIds = new Int32Array(merges.length).fill(-1);
    for (let rank = 0; rank < merges.length; rank++) {
      const merge = merges[rank];
      const space = merge.indexOf(' ', 1);
      const leftText = merge.slice(0, space), rightText = merge.slice(space + 1);
      const left = idOf.get(leftText);
      const right = idOf.get(rightText);
      const merged = idOf.get(leftText + rightText);
      // HF refuses to load such merges; llama.cpp would merge text that no token spells. A merge
      // that cannot produce a token can never appear in a valid encoding, so skip it.
      if (left === undefined || right === undefined || merged === undefined) continue;
      this.mergedIds[rank] = merged;
      this.table.add(left, right, rank);
    }
    this.prepared = true;
  }

  /** Appends the token ids of one word to `out`. */
  encodeWord(word: string, out: number[]): void {
    if (word.length > CACHED_WORD_LENGTH) {
      this.mergeWord(word, out);
      return;
    }
    let ids = this.cache.get(word);
    if (ids === undefined) {
      const merged: number[] = [];
      this.mergeWord(word, merged);
      ids = merged;
      if (this.cache.size >= WORD_CACHE_LIMIT) this.cache.clear();
      this.cache.set(word, ids);
    }
    for (const id of ids) out.push(id);
  }

  private mergeWord(word: string, out: number[]): void {
    this.prepare();
    // UTF-8 (lone surrogates become U+FFFD, as everywhere else in the tokenizer).
    if (this.bytes.length < word.length * 3) this.bytes = new Uint8Array(word.length * 3);
    const n = this.encoder.encodeInto(word, this.bytes).written;
    if (n >= POSITION_LIMIT) throw new TokenizerError('too-long', `a word of ${n} bytes is longer than the encoder handles`);
    const bytes = this.bytes;
    if (n < 2) {
      if (n === 1) out.push(this.byteTokens[bytes[0]]);
      this.releaseScratch();
      return;
    }
    this.reserve(n);
    const { ids, prev, next } = this;
    for (let i = 0; i < n; i++) {
      ids[i] = this.byteTokens[bytes[i]];
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    // The first pairs, in (rank, position) order: a counting sort for long words (one pass, read
    // in order afterwards), a heapified array for short ones. Pairs made by merges go to the heap.
    let sorted: Float64Array = EMPTY_KEYS;
    let sortedCount = 0;
    this.heapSize = 0;
    if (n > this.mergedIds.length >> 3) {
      ({ sorted, count: sortedCount } = this.sortFirstPairs(n));
    } else {
      const heap = this.heap;
      let size = 0;
      for (let i = 0; i + 1 < n; i++) {
        const rank = this.table.rank(ids[i], ids[i + 1]);
        if (rank >= 0) heap[size++] = rank * POSITION_LIMIT + i;
      }
      this.heapSize = size;
      for (let i = (size >> 1) - 1; i >= 0; i--) this.siftDown(i, heap[i]);
    }

    let read = 0;
    while (read < sortedCount || this.heapSize > 0) {
      const key = this.heapSize > 0 && (read >= sortedCount || this.heap[0] < sorted[read]) ? this.popMin() : sorted[read++];
      const rank = Math.floor(key / POSITION_LIMIT);
      const left = key - rank * POSITION_LIMIT;
      const right = next[left];
      // Stale: the left symbol was merged away, or the pair at `left` is no longer this merge.
      if (ids[left] < 0 || right < 0 || this.table.rank(ids[left], ids[right]) !== rank) continue;
      ids[left] = this.mergedIds[rank];
      ids[right] = -1;
      const after = next[right];
      next[left] = after;
      if (after >= 0) prev[after] = left;
      if (prev[left] >= 0) this.pushPair(prev[left]);
      this.pushPair(left);
    }
    for (let i = 0; i >= 0; i = next[i]) out.push(ids[i]);
    this.releaseScratch();
  }

  /** The word's first pairs as (rank, position) keys in ascending order, by counting sort over ranks. */
  private sortFirstPairs(n: number): { sorted: Float64Array; count: number } {
    const { ids } = this;
    const pairRanks = new Int32Array(n - 1);
    const starts = new Int32Array(this.mergedIds.length + 1);
    let count = 0;
    for (let i = 0; i + 1 < n; i++) {
      const rank = this.table.rank(ids[i], ids[i + 1]);
      pairRanks[i] = rank;
      if (rank >= 0) {
        starts[rank + 1]++;
        count++;
      }
    }
    for (let r = 1; r < starts.length; r++) starts[r] += starts[r - 1];
    const sorted = new Float64Array(count);
    for (let i = 0; i + 1 < n; i++) {
      const rank = pairRanks[i];
      if (rank >= 0) sorted[starts[rank]++] = rank * POSITION_LIMIT + i;
    }
    return { sorted, count };
  }

  /** Queues the pair starting at symbol `left`, if it has a merge. */
  private pushPair(left: number): void {
    const right = this.next[left];
    if (right < 0) return;
    const rank = this.table.rank(this.ids[left], this.ids[right]);
    if (rank < 0) return;
    if (this.heapSize === this.heap.length) {
      const grown = new Float64Array(this.heap.length * 2);
      grown.set(this.heap);
      this.heap = grown;
    }
    const heap = this.heap;
    const key = rank * POSITION_LIMIT + left;
    let i = this.heapSize++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent] <= key) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = key;
  }

  private popMin(): number {
    const top = this.heap[0];
    const size = --this.heapSize;
    if (size > 0) this.siftDown(0, this.heap[size]);
    return top;
  }

  /** Places `key` at `i` or below, moving smaller children up. */
  private siftDown(i: number, key: number): void {
    const heap = this.heap;
    const size = this.heapSize;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && heap[child + 1] < heap[child]) child++;
      if (heap[child] >= key) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = key;
  }

  /** Work arrays for a word of `n` bytes (the heap starts with room for its n - 1 first pairs). */
  private reserve(n: number): void {
    if (this.ids.length < n) {
      this.ids = new Int32Array(n);
      this.prev = new Int32Array(n);
      this.next = new Int32Array(n);
    }
    if (this.heap.length < n) this.heap = new Float64Array(n);
  }

  /** Lets the work arrays of a very long word go, so one huge word does not pin its memory. */
  private releaseScratch(): void {
    if (this.ids.length > KEPT_SCRATCH) {
      this.ids = new Int32Array(256);
      this.prev = new Int32Array(256);
      this.next = new Int32Array(256);
    }
    if (this.heap.length > KEPT_SCRATCH) this.heap = new Float64Array(256);
    if (this.bytes.length > 3 * KEPT_SCRATCH) this.bytes = new Uint8Array(256);
  }
}
