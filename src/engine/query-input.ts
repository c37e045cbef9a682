/** Validation of a query's prompt and completion, given as text or as token ids. */
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { InputError } from "../util/errors.js";
import type { QueryInput } from "./types.js";

export interface QueryTokens {
  promptTokens: number[];
  completionTokens: number[];
}

function tokenList(name: string, ids: unknown, vocabSize: number): number[] {
  if (!Array.isArray(ids) || !ids.every((t) => Number.isInteger(t) && t >= 0 && t < vocabSize)) {
    throw new InputError(`${name} must be token ids from 0 to ${vocabSize - 1}`);
  }
  return ids as number[];
}

export function queryTokens(input: QueryInput, tokenizer: Pick<Tokenizer, "encode">, limits: { contextLength: number; vocabSize: number }): QueryTokens {
  const text = input.prompt !== undefined || input.completion !== undefined;
  const tokens = input.promptTokens !== undefined || input.completionTokens !== undefined;
  if (text && tokens) throw new InputError("give the query either as text (prompt, completion) or as tokens (promptTokens, completionTokens), not both");
  let q: QueryTokens;
  if (tokens) {
    q = {
      promptTokens: tokenList("promptTokens", input.promptTokens ?? [], limits.vocabSize),
      completionTokens: tokenList("completionTokens", input.completionTokens ?? [], limits.vocabSize),
    };
  } else {
    if (typeof input.completion !== "string" || input.completion === "")
      throw new InputError("the completion is missing or empty: influence is measured on completion tokens");
    // Tokenized separately so that the boundary between prompt and completion is exact.
    q = { promptTokens: input.prompt ? tokenizer.encode(input.prompt) : [], completionTokens: tokenizer.encode(input.completion) };
  }
  if (q.completionTokens.length === 0) throw new InputError("the completion is missing or empty: influence is measured on completion tokens");
  if (q.promptTokens.length === 0) throw new InputError("the prompt is empty: the first completion token needs at least one token before it");
  const total = q.promptTokens.length + q.completionTokens.length;
  if (total > limits.contextLength) {
    throw new InputError(`prompt and completion are ${total} tokens, beyond the model's context of ${limits.contextLength}`);
  }
  return q;
}

/** Checks 0-based completion positions; undefined means every completion token. */
export function completionPositions(positions: readonly number[] | undefined, completionLength: number): number[] | undefined {
  if (positions === undefined) return undefined;
  if (positions.length === 0) throw new InputError("completionPositions must name at least one completion token");
  const bad = positions.find((p) => !Number.isInteger(p) || p < 0 || p >= completionLength);
  if (bad !== undefined) throw new InputError(`completion position ${bad} is outside the completion (0..${completionLength - 1})`);
  return [...new Set(positions)].sort((a, b) => a - b);
}
