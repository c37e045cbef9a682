/** Right-padded batches of token sequences of different lengths. */
import { InputError } from "../util/errors.js";

export interface Batch {
  /** Sequences in the batch. */
  size: number;
  /** Padded length: every sequence occupies `length` consecutive rows of the flattened batch. */
  length: number;
  /** Real (unpadded) length of each sequence. */
  lengths: number[];
  /** Token ids, [size * length], padding filled with 0. */
  ids: Int32Array;
  /** 1 for real tokens, 0 for padding, [size * length]. */
  mask: Float32Array;
}

export function makeBatch(sequences: readonly (readonly number[])[], contextLength: number, vocabSize: number): Batch {
  if (sequences.length === 0) throw new InputError("empty batch: no sequences given");
  const lengths = sequences.map((s) => s.length);
  const length = Math.max(...lengths);
  if (length > contextLength) throw new InputError(`a sequence of ${length} tokens exceeds the model's context of ${contextLength}`);
  if (Math.min(...lengths) === 0) throw new InputError("a sequence has no tokens");
  const ids = new Int32Array(sequences.length * length);
  const mask = new Float32Array(sequences.length * length);
  sequences.forEach((seq, b) => {
    seq.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new InputError(`token id ${id} at position ${t} is outside the vocabulary (0..${vocabSize - 1})`);
      }
      ids[b * length + t] = id;
      mask[b * length + t] = 1;
    });
  });
  return { size: sequences.length, length, lengths, ids, mask };
}
