import { has, fieldError, readId, readText, readTokens, UniqueIds } from "./fields.js";
import { type JsonlOptions, readJsonlObjects } from "./jsonl.js";

/** One training document: a line `{"id", "text"}` or `{"id", "tokens"}` of a corpus JSONL file. */
export type CorpusDocument = { id: string; line: number } & ({ text: string; tokens?: undefined } | { tokens: number[]; text?: undefined });

export interface CorpusOptions extends JsonlOptions {
  /** When given, token ids must be below it. */
  vocabSize?: number;
}

/**
 * Streams the documents of a corpus JSONL file in file order, checking each line; blank lines are
 * skipped. Ids are unique across the file (1 and "1" are the same id).
 */
export async function* readCorpus(file: string, options: CorpusOptions = {}): AsyncGenerator<CorpusDocument> {
  const ids = new UniqueIds();
  for await (const { line, value } of readJsonlObjects(file, options)) {
    const where = `${file}, line ${line}`;
    const id = readId(value, where);
    ids.add(id, line, where);
    const hasText = has(value, "text");
    if (hasText === has(value, "tokens")) {
      throw fieldError(where, hasText ? `has both "text" and "tokens"; give one` : `needs "text" (a string) or "tokens" (an array of token ids)`);
    }
    yield hasText ? { id, line, text: readText(value, "text", where) } : { id, line, tokens: readTokens(value, "tokens", where, options.vocabSize) };
  }
}
