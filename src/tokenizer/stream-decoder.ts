// Incremental detokenization. A UTF-8 character may be split across tokens (emoji and CJK often
// are): its first bytes are held back until the rest arrives, so every string returned is
// final. Invalid sequences become U+FFFD exactly as a one-shot TextDecoder would produce them,
// so the concatenation of all pushes and the flush equals decode() of the whole sequence.

export interface TokenPieces {
  /** Bytes to show for `id`: empty for tokens that render as nothing. */
  pieceBytes(id: number, renderSpecial: boolean): Uint8Array;
}

export interface StreamDecoder {
  /** Adds one token; returns the text that became complete (possibly ''). */
  push(id: number): string;
  /** Ends the stream: returns held-back bytes, an incomplete character as U+FFFD. */
  flush(): string;
}

export function createStreamDecoder(pieces: TokenPieces, renderSpecial: boolean): StreamDecoder {
  // ignoreBOM: a U+FEFF the model emits is text, not a byte-order mark to strip.
  let utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  return {
    push(id: number): string {
      return utf8.decode(pieces.pieceBytes(id, renderSpecial), { stream: true });
    },
    flush(): string {
      const rest = utf8.decode();
      utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
      return rest;
    },
  };
}
