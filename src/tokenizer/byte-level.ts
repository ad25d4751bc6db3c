// GPT-2 byte-level alphabet: every byte 0..255 has a printable stand-in character, so that
// byte sequences can be stored as vocabulary strings. Bytes that are already printable
// ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68 bytes (controls, space,
// 0x7F..0xA0, 0xAD) are mapped in order onto U+0100, U+0101, ... (space becomes 'Ġ' U+0120).

function isSelfPrintable(byte: number): boolean {
  return (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
}

/** BYTE_TO_CHAR[b] is the one-character string standing for byte b. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const table: string[] = new Array<string>(256);
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    table[byte] = String.fromCharCode(isSelfPrintable(byte) ? byte : next++);
  }
  return table;
})();

// Stand-ins are all below U+0144, so a flat table indexed by char code is enough.
const CHAR_TO_BYTE: Int16Array = (() => {
  const table = new Int16Array(0x144).fill(-1);
  BYTE_TO_CHAR.forEach((char, byte) => {
    table[char.charCodeAt(0)] = byte;
  });
  return table;
})();

/** The byte a stand-in character represents, or -1 if `charCode` is not in the alphabet. */
export function charToByte(charCode: number): number {
  return charCode < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[charCode] : -1;
}

/**
 * Bytes spelled by a byte-level token string (e.g. "Ġhello" -> " hello").
 * Returns null if some character is outside the alphabet (not a byte-level token).
 */
export function byteLevelToBytes(text: string): Uint8Array | null {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const byte = charToByte(text.charCodeAt(i));
    if (byte < 0) return null;
    bytes[i] = byte;
  }
  return bytes;
}

/** The byte-level spelling of some bytes (inverse of byteLevelToBytes). */
export function bytesToByteLevel(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += BYTE_TO_CHAR[byte];
  return text;
}

/**
 * Appends the UTF-8 bytes of `text` to `out`. Lone surrogates become U+FFFD (EF BF BD),
 * as TextEncoder does.
 */
export function pushUtf8(text: string, out: number[]): void {
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    if (cp >= 0xd800 && cp <= 0xdfff) {
      const low = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (cp <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        i++;
      } else {
        cp = 0xfffd;
      }
    }
    if (cp < 0x80) {
      out.push(cp);
    } else if (cp < 0x800) {
      out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
    } else if (cp < 0x10000) {
      out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    } else {
      out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    }
  }
}
