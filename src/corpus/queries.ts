import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { fieldError, has, readId, readText, readTokens, UniqueIds } from "./fields.js";
import { type JsonlOptions, readJsonlObjects } from "./jsonl.js";
import { checkContextLength } from "./windows.js";

/** A query: the completion whose probability given the prompt is measured. */
export interface Query {
  id: string;
  line: number;
  promptTokens: number[];
  completionTokens: number[];
  /** Texts, when the query was given as text. */
  prompt?: string;
  completion?: string;
}

export interface QueryOptions extends JsonlOptions {
  contextLength: number;
}

type QueryTokenizer = Pick<Tokenizer, "encodeSequence" | "encodeContinuation" | "vocabSize">;

const TEXT_FIELDS = ["prompt", "completion"] as const;
const TOKEN_FIELDS = ["prompt_tokens", "completion_tokens"] as const;

/**
 * Reads a queries JSONL file: lines `{"id", "prompt", "completion"}` (texts, tokenized separately
 * so the boundary between them is exact) or `{"id", "prompt_tokens", "completion_tokens"}`.
 * Queries are few and used together, so they are returned as one array.
 */
export async function readQueries(file: string, tokenizer: QueryTokenizer, options: QueryOptions): Promise<Query[]> {
  checkContextLength(options.contextLength);
  const ids = new UniqueIds();
  const queries: Query[] = [];
  for await (const { line, value } of readJsonlObjects(file, options)) {
    const where = `${file}, line ${line}`;
    const id = readId(value, where);
    ids.add(id, line, where);
    const query = { id, line, ...readPromptAndCompletion(value, where, tokenizer) };
    checkQueryLength(query, where, options.contextLength);
    queries.push(query);
  }
  return queries;
}

function readPromptAndCompletion(record: Record<string, unknown>, where: string, tokenizer: QueryTokenizer): Omit<Query, "id" | "line"> {
  const textGiven = TEXT_FIELDS.some((field) => has(record, field));
  const tokensGiven = TOKEN_FIELDS.some((field) => has(record, field));
  if (textGiven && tokensGiven) {
    throw fieldError(where, `mixes text fields (prompt, completion) with token fields (prompt_tokens, completion_tokens); give one pair`);
  }
  const fields = tokensGiven ? TOKEN_FIELDS : TEXT_FIELDS;
  const missing = fields.filter((field) => !has(record, field));
  if (missing.length > 0) {
    throw fieldError(
      where,
      `missing ${missing.map((field) => `"${field}"`).join(" and ")} (a query is "prompt" and "completion", or "prompt_tokens" and "completion_tokens")`,
    );
  }
  if (tokensGiven) {
    return {
      promptTokens: readTokens(record, "prompt_tokens", where, tokenizer.vocabSize),
      completionTokens: readTokens(record, "completion_tokens", where, tokenizer.vocabSize),
    };
  }
  const prompt = readText(record, "prompt", where);
  const completion = readText(record, "completion", where);
  return { prompt, completion, promptTokens: tokenizer.encodeSequence(prompt), completionTokens: tokenizer.encodeContinuation(completion) };
}

function checkQueryLength(query: Query, where: string, contextLength: number): void {
  if (query.completionTokens.length === 0) throw fieldError(where, "empty completion: there is nothing to measure the probability of");
  if (query.promptTokens.length === 0) {
    // Without a bos token, a causal model does not predict the first token of its input.
    throw fieldError(where, "empty prompt: the first completion token would have nothing to be predicted from (use the end-of-text token as prompt)");
  }
  const total = query.promptTokens.length + query.completionTokens.length;
  if (total > contextLength) {
    throw fieldError(where, `prompt and completion are ${total} tokens, more than the context length ${contextLength}`);
  }
}
