import { existsSync } from "node:fs";
import path from "node:path";
import { InputError } from "../util/errors.js";
import type { Tokenizer } from "./tokenizer.js";

/**
 * The tokenizer of a model folder without tokenizer files: token ids pass, text is refused with
 * the files it would need, and a token shows as `#<id>` (as containsToken filters name ids).
 */
export class IdsOnlyTokenizer implements Tokenizer {
  readonly bosTokenId = undefined;
  readonly eosTokenId = undefined;

  constructor(
    private readonly modelDir: string,
    /** The model's embedding rows. */
    readonly vocabSize: number,
  ) {}

  encode(): number[] {
    throw this.noText();
  }

  encodeSequence(): number[] {
    throw this.noText();
  }

  encodeContinuation(): number[] {
    throw this.noText();
  }

  decode(): string {
    throw this.noText();
  }

  tokenText(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize)
      throw new InputError(`token id ${id} is not in the vocabulary of ${this.modelDir} (ids 0 to ${this.vocabSize - 1})`);
    return `#${id}`;
  }

  private noText(): InputError {
    // SentencePiece's own model file is what a folder without tokenizer.json most often has instead.
    const sentencePiece = existsSync(path.join(this.modelDir, "tokenizer.model")) ? " (its tokenizer.model, SentencePiece's own format, is not read)" : "";
    return new InputError(`${this.modelDir} has no tokenizer.json (nor vocab.json + merges.txt)${sentencePiece}: text input needs one; pass token ids instead`);
  }
}
