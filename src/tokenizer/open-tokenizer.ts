import { existsSync } from "node:fs";
import path from "node:path";
import { IdsOnlyTokenizer } from "./ids-only.js";
import { loadTokenizer, TOKENIZER_FILES, type Tokenizer } from "./tokenizer.js";

/**
 * The tokenizer of a model folder; a folder with no tokenizer file at all takes token ids below the
 * model's `vocabSize` and refuses text (ids-only.ts), so that token-id corpora and queries need none.
 */
export async function openTokenizer(modelDir: string, vocabSize: number): Promise<Tokenizer> {
  const hasFiles = TOKENIZER_FILES.some((file) => existsSync(path.join(modelDir, file)));
  return hasFiles ? loadTokenizer(modelDir) : new IdsOnlyTokenizer(modelDir, vocabSize);
}
