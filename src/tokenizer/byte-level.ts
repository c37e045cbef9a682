/**
 * GPT-2's byte-to-character table (`bytes_to_unicode` in the original encoder.py): byte-level BPE
 * vocabularies spell every byte as one printable character, so that tokens are ordinary strings.
 * `BYTE_LEVEL_CHARS[b]` is the character standing for byte b.
 */
export const BYTE_LEVEL_CHARS: readonly string[] = (() => {
  const chars: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    // Printable Latin-1 bytes stand for themselves; the others are moved past U+00FF in order.
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars[b] = String.fromCharCode(printable ? b : next++);
  }
  return chars;
})();
