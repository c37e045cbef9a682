/**
 * `npx tsx scripts/make-lds-setting.ts`: writes the demo's evaluation setting for `influence
 * evaluate` (and the bench's `lds` section) to demo/lds/:
 *  - queries.jsonl: 32 documents held out of the demo model's training (training/split.ts), each
 *    cut into a prompt (its first two thirds of tokens) and a completion (up to 8 next tokens);
 *  - corpus.jsonl: 256 trained-on documents of the demo corpus: for each query, the 6 that share
 *    the most of its rare tokens (summed inverse document frequency), then seeded random others.
 * A query's related documents are in the fine-tuning corpus, so which of them a subset holds moves
 * its loss; none of the queries' own documents is. Deterministic: same corpus, same files.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { readCorpus } from "../src/corpus/corpus.js";
import { loadTokenizer } from "../src/tokenizer/tokenizer.js";
import { isHeldOut } from "../src/training/split.js";
import { writeFileAtomic } from "../src/util/atomic-write.js";
import { uniformGenerator } from "../src/util/random.js";

const root = path.resolve(import.meta.dirname, "..");
const QUERIES = 32;
const NEIGHBOURS = 6;
const CORPUS = 256;
const COMPLETION_TOKENS = 8;

const tokenizer = await loadTokenizer(path.join(root, "demo/model"));
const docs: Array<{ id: string; text: string; tokens: number[]; heldOut: boolean }> = [];
let index = 0;
for await (const doc of readCorpus(path.join(root, "demo/corpus.jsonl.gz"))) {
  const text = doc.text as string;
  docs.push({ id: doc.id, text, tokens: tokenizer.encode(text), heldOut: isHeldOut(index++) });
}
const frequency = new Map<number, number>();
for (const d of docs) for (const t of new Set(d.tokens)) frequency.set(t, (frequency.get(t) ?? 0) + 1);
const idf = (t: number) => Math.log(docs.length / (frequency.get(t) ?? 1));

const queryDocs = docs.filter((d) => d.heldOut && d.tokens.length >= 12).slice(0, QUERIES);
const trained = docs.filter((d) => !d.heldOut);
const chosen = new Set<(typeof docs)[number]>();
for (const q of queryDocs) {
  const own = new Set(q.tokens);
  const related = trained
    .map((d) => ({ d, score: [...new Set(d.tokens)].reduce((s, t) => s + (own.has(t) ? idf(t) : 0), 0) }))
    .sort((a, b) => b.score - a.score || (a.d.id < b.d.id ? -1 : 1));
  for (const { d } of related.slice(0, NEIGHBOURS)) chosen.add(d);
}
const uniform = uniformGenerator(17);
while (chosen.size < CORPUS) chosen.add(trained[Math.floor(uniform() * trained.length)]);

const queries = queryDocs.map((q) => {
  const tokens = q.tokens.slice(0, 120);
  const cut = Math.floor((tokens.length * 2) / 3);
  return { id: q.id, prompt_tokens: tokens.slice(0, cut), completion_tokens: tokens.slice(cut, cut + COMPLETION_TOKENS) };
});
const corpus = [...chosen].sort((a, b) => (a.id < b.id ? -1 : 1)).map((d) => ({ id: d.id, text: d.text }));
const out = path.join(root, "demo/lds");
await mkdir(out, { recursive: true });
const jsonl = (rows: unknown[]) => `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`;
await writeFileAtomic(path.join(out, "queries.jsonl"), jsonl(queries));
await writeFileAtomic(path.join(out, "corpus.jsonl"), jsonl(corpus));
console.error(`wrote ${queries.length} queries and ${corpus.length} documents to ${path.relative(root, out)}`);
