import { InputError } from "../util/errors.js";

export interface TokenizedDocument {
  id: string;
  tokens: readonly number[];
  /** The document's text, when it was given as text. */
  text?: string;
}

/** A training sequence: one window of a document, at most contextLength tokens. */
export interface Sequence {
  documentId: string;
  /** The document id, plus `#<offset>` when the document was split into several windows. */
  externalId: string;
  /** Token offset of the window in its document. */
  offset: number;
  tokens: number[];
  /** Text of the window, when the document had text. */
  text?: string;
}

export interface WindowOptions {
  /** The model's context length: the most tokens in one window. */
  contextLength: number;
  /** Tokens between window starts; contextLength (no overlap) by default. */
  stride?: number;
  /** Gives the text of a window of a split text document. */
  decode?: (ids: number[]) => string;
}

/**
 * Splits a document into the training sequences of a causal language model: consecutive windows
 * of contextLength tokens starting every `stride` tokens, the last one ending at the document's end.
 * A window of fewer than 2 tokens has no next token to predict, so no loss and no gradient: it is
 * left out. Thus a document of 0 or 1 tokens gives no sequence, and one of k*contextLength + 1
 * tokens loses its last token.
 */
export function windowSequences(doc: TokenizedDocument, options: WindowOptions): Sequence[] {
  const { contextLength } = options;
  checkContextLength(contextLength);
  const stride = options.stride ?? contextLength;
  if (!Number.isInteger(stride) || stride < 1 || stride > contextLength) {
    throw new InputError(`stride must be an integer from 1 to the context length ${contextLength}, got ${stride}`);
  }
  const length = doc.tokens.length;
  const split = length > contextLength;
  if (split && doc.text !== undefined && options.decode === undefined) {
    throw new TypeError(`windowSequences: document ${doc.id} has text and is split, so a decode function is needed`);
  }
  const sequences: Sequence[] = [];
  for (let offset = 0; length - offset >= 2; offset += stride) {
    const tokens = doc.tokens.slice(offset, offset + contextLength);
    sequences.push({
      documentId: doc.id,
      externalId: split ? `${doc.id}#${offset}` : doc.id,
      offset,
      tokens,
      // Decoding a window gives its exact text, save U+FFFD for a character cut at a window edge.
      ...(doc.text === undefined ? {} : { text: split ? options.decode!(tokens) : doc.text }),
    });
    if (offset + contextLength >= length) break;
  }
  return sequences;
}

export function checkContextLength(contextLength: number): void {
  if (!Number.isInteger(contextLength) || contextLength < 2) {
    throw new InputError(`context length must be an integer of at least 2, got ${contextLength}`);
  }
}
